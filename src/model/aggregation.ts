// The aggregation API's axes (OONI MAT's, plus region, mechanism and layer) and time grains: stated
// once here for the store, the server's query schema and the explorer (web/src/api.ts imports this
// file; it is pure and has no imports, so it bundles into the browser as is).
export const AXES = [
  'measurement_start_day',
  'probe_cc',
  'probe_asn',
  'region',
  'category_code',
  'domain',
  'input',
  'test_name',
  'blocking_type',
  'mechanism',
  'layer',
] as const;
export type Axis = (typeof AXES)[number];
export const TIME_GRAINS = ['hour', 'day', 'week', 'month'] as const;
export type TimeGrain = (typeof TIME_GRAINS)[number];
