// The query API the explorer and researchers use: GET /api/v1/measurements (filters, cursor),
// /api/v1/measurement/:uid, /api/v1/aggregation (OONI MAT's axes, JSON or CSV) and /api/v1/health.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { LAYERS, MECHANISMS } from '../model/index.js';
import {
  AXES,
  BLOCKING_FILTERS,
  TIME_GRAINS,
  StoreInputError,
  parseAsn,
  parseTimeBound,
  normalizeRegion,
  type MeasurementFilter,
} from '../store/index.js';
import { csvField } from '../model/csv.js';
import type { ServerContext } from './context.js';
import { createError } from './errors.js';
import { CC, Str, TEST_NAME, UidParams } from './schemas.js';

const TimeBound = Str(40);
const FilterProps = {
  probe_cc: Type.Optional(CC),
  probe_asn: Type.Optional(Str(12, '^(AS)?[0-9]{1,10}$')),
  domain: Type.Optional(Str(253)),
  /** Self-declared region (annotations.region); normalised like the stored value, exact match. */
  region: Type.Optional(Str(256)),
  input: Type.Optional(Str(2048)),
  test_name: Type.Optional(TEST_NAME),
  category_code: Type.Optional(Str(16, '^[A-Z]{1,16}$')),
  since: Type.Optional(TimeBound),
  until: Type.Optional(TimeBound),
  blocking: Type.Optional(Type.Union(BLOCKING_FILTERS.map((b) => Type.Literal(b)))),
  mechanism: Type.Optional(Type.Union(MECHANISMS.map((m) => Type.Literal(m)))),
  layer: Type.Optional(Type.Union(LAYERS.map((l) => Type.Literal(l)))),
  // Query strings are text: no type coercion anywhere (a body is stored as submitted, never coerced).
  confirmed: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
  anomaly: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
};

export const ListQuery = Type.Object(
  { ...FilterProps, limit: Type.Optional(Str(4, '^(1000|[1-9][0-9]{0,2})$')), cursor: Type.Optional(Str(512)) },
  { additionalProperties: false },
);
export type ListQuery = Static<typeof ListQuery>;

const AxisT = Type.Union(AXES.map((a) => Type.Literal(a)));
export const AggregationQuerySchema = Type.Object(
  {
    ...FilterProps,
    axis_x: Type.Optional(AxisT),
    axis_y: Type.Optional(AxisT),
    time_grain: Type.Optional(Type.Union(TIME_GRAINS.map((g) => Type.Literal(g)))),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv'), Type.Literal('JSON'), Type.Literal('CSV')])),
  },
  { additionalProperties: false },
);
export type AggregationQuerySchema = Static<typeof AggregationQuerySchema>;

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
/** Response schema of a list row (serialisation is schema-driven: nothing else leaks out). */
export const MeasurementRowSchema = Type.Object({
  measurement_uid: Type.String(),
  report_id: Type.String(),
  input: Nullable(Type.String()),
  domain: Nullable(Type.String()),
  test_name: Type.String(),
  probe_cc: Type.String(),
  probe_asn: Type.String(),
  region: Nullable(Type.String()),
  measurement_start_time: Type.String(),
  status: Type.String(),
  blocking: Type.Union([Type.Literal(false), Type.String(), Type.Null()]),
  accessible: Nullable(Type.Boolean()),
  mechanism: Nullable(Type.String()),
  layer: Nullable(Type.String()),
  confidence: Type.Number(),
  confirmed: Type.Boolean(),
  explanation: Type.String(),
  anomaly: Type.Boolean(),
  failure: Type.Boolean(),
  category_code: Nullable(Type.String()),
  analysis_version: Type.String(),
});
export const ListResponse = Type.Object({ results: Type.Array(MeasurementRowSchema), next_cursor: Nullable(Type.String()) });

/** CSV per RFC 4180; cells that a spreadsheet would run as a formula get a leading quote. */
export function toCsv(columns: string[], rows: Array<Record<string, unknown>>): string {
  const cell = (v: unknown) =>
    csvField(v === null || v === undefined ? null : typeof v === 'object' ? String(v) : (v as string | number | boolean));
  return [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c])).join(','))].join('\r\n') + '\r\n';
}

function filterFrom(q: Record<string, unknown>): MeasurementFilter {
  const f: MeasurementFilter = {};
  const s = (k: string) => (typeof q[k] === 'string' ? (q[k] as string) : undefined);
  if (s('probe_cc')) f.probe_cc = s('probe_cc');
  if (s('probe_asn')) f.probe_asn = parseAsn(s('probe_asn')!);
  if (s('domain')) f.domain = s('domain')!.toLowerCase();
  if (s('region')) {
    const r = normalizeRegion(s('region'));
    if (r === null) throw new StoreInputError('region: empty after trimming');
    f.region = r;
  }
  if (s('input')) f.input = s('input');
  if (s('test_name')) f.test_name = s('test_name');
  if (s('category_code')) f.category_code = s('category_code');
  if (s('since')) f.since = parseTimeBound(s('since')!, 'since');
  if (s('until')) f.until = parseTimeBound(s('until')!, 'until');
  if (s('blocking')) f.blocking = s('blocking');
  if (s('mechanism')) f.mechanism = s('mechanism');
  if (s('layer')) f.layer = s('layer');
  if (q.confirmed === 'true' || q.confirmed === 'false') f.confirmed = q.confirmed === 'true';
  if (q.anomaly === 'true' || q.anomaly === 'false') f.anomaly = q.anomaly === 'true';
  return f;
}

export default async function queryRoutes(app: FastifyInstance, opts: Pick<ServerContext, 'store' | 'analysisVersion'>): Promise<void> {
  const { store, analysisVersion } = opts;

  app.get<{ Querystring: ListQuery }>(
    '/api/v1/measurements',
    { schema: { querystring: ListQuery, response: { 200: ListResponse } } },
    async (req) => {
      const { limit, cursor, ...rest } = req.query;
      return store.list(filterFrom(rest), { limit: limit ? Number(limit) : 50, cursor });
    },
  );

  app.get<{ Params: { uid: string } }>('/api/v1/measurement/:uid', { schema: { params: UidParams } }, async (req) => {
    const got = await store.get(req.params.uid);
    if (!got) throw createError('WS_NOT_FOUND', `no measurement ${req.params.uid}`);
    return {
      measurement_uid: got.measurement_uid,
      measurement: got.measurement,
      verdict: got.verdict,
      analysis_version: got.analysis_version,
    };
  });

  app.get<{ Querystring: AggregationQuerySchema }>(
    '/api/v1/aggregation',
    { schema: { querystring: AggregationQuerySchema } },
    async (req, reply) => {
      const { axis_x, axis_y, time_grain, format, ...rest } = req.query;
      if (axis_y && !axis_x) throw createError('WS_BAD_REQUEST', 'axis_y needs axis_x');
      const result = await store.aggregate({ axis_x, axis_y, time_grain, filter: filterFrom(rest) });
      const axes = [axis_x, axis_y].filter((a): a is NonNullable<typeof a> => !!a);
      if (format?.toLowerCase() === 'csv') {
        reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="wallscope-aggregation.csv"');
        return toCsv([...axes, 'measurement_count', 'ok_count', 'anomaly_count', 'confirmed_count', 'failure_count'], result);
      }
      return { result, dimension_count: axes.length };
    },
  );

  app.get('/api/v1/health', async () => ({
    ok: true,
    store: store.kind,
    schema_version: await store.schemaVersion(),
    analysis_version: analysisVersion,
  }));
}
