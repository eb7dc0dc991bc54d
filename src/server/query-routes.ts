// The query API the explorer and researchers use: GET /api/v1/measurements (filters, cursor),
// /api/v1/measurement/:uid, /api/v1/aggregation (OONI MAT's axes, JSON or CSV) and /api/v1/health.
import type { FastifyInstance } from 'fastify';
import { csvField } from '../model/csv.js';
import { StoreInputError, parseAsn, parseTimeBound, normalizeRegion, type MeasurementFilter } from '../store/index.js';
import type { ServerContext } from './context.js';
import { createError } from './errors.js';
import { AggregationQuerySchema, ListQuery, ListResponse, UidParams } from './schemas.js';

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
