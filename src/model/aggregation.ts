// The query API's shapes, stated once for the store, the server and the explorer (web/src/api.ts
// imports this file; it is pure and imports only types, so it bundles into the browser as is):
// the row of a measurement list, the aggregation axes (OONI MAT's, plus region, mechanism and
// layer) and time grains.
import type { OoniBlocking } from './measurement.js';
import type { Verdict } from './verdict.js';
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

/** One flat row per measurement: what lists and aggregations read (never the raw body). */
export interface MeasurementRow {
  measurement_uid: string;
  report_id: string;
  input: string | null;
  domain: string | null;
  test_name: string;
  probe_cc: string;
  probe_asn: string; // "AS1234"
  /** The volunteer's self-declared region (annotations.region, normalised by normalizeRegion), or null. */
  region: string | null;
  measurement_start_time: string; // "YYYY-MM-DD hh:mm:ss" UTC
  status: Verdict['status'];
  blocking: OoniBlocking;
  accessible: boolean | null;
  mechanism: string | null;
  layer: string | null;
  confidence: number;
  confirmed: boolean;
  explanation: string;
  /** Blocked but not confirmed by a fingerprint (OONI's anomaly). */
  anomaly: boolean;
  /** The analysis could not decide (status unknown), OONI's failure. */
  failure: boolean;
  category_code: string | null;
  analysis_version: string;
}
