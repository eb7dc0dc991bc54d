// Anomalies on aggregate series (src/analysis/anomaly.ts):
//   GET /api/v1/anomalies?axis=probe_asn|probe_cc|region|domain|category_code&time_grain=day|hour|week
//       [&since&until&probe_cc&probe_asn&region&domain&category_code&window&min_count&min_delta&min_z]
// -> {anomalies: [{axis, value, bucket, share, baseline_share, measurements, baseline_measurements, z, direction}]}
// The share of blocked measurements (anomalies + confirmed, OONI MAT's counts) per value of the
// axis and per time bucket, read through the store's aggregation (SQLite or ClickHouse alike).
import type { FastifyInstance } from 'fastify';
import { seriesAnomalies, type SeriesPoint } from '../analysis/index.js';
import { parseAsn, parseTimeBound, StoreInputError, type MeasurementFilter, type MeasurementStore } from '../store/index.js';

const AXES = ['probe_asn', 'probe_cc', 'region', 'domain', 'category_code'] as const;
const GRAINS = ['hour', 'day', 'week'] as const;

export default async function anomalyRoutes(app: FastifyInstance, opts: { store: MeasurementStore }): Promise<void> {
  const str = { type: 'string', maxLength: 256 } as const;
  const schema = {
    querystring: {
      type: 'object',
      properties: Object.fromEntries(
        [
          'axis',
          'time_grain',
          'since',
          'until',
          'probe_cc',
          'probe_asn',
          'region',
          'domain',
          'category_code',
          'window',
          'min_count',
          'min_delta',
          'min_z',
        ].map((k) => [k, str]),
      ),
      required: ['axis'],
      additionalProperties: false,
    },
  } as const;
  app.get('/api/v1/anomalies', { schema }, async (req) => {
    const q = req.query as Record<string, string | undefined>;
    const axis = q.axis as (typeof AXES)[number];
    if (!AXES.includes(axis)) throw new StoreInputError(`axis: one of ${AXES.join(', ')}`);
    const grain = (q.time_grain ?? 'day') as (typeof GRAINS)[number];
    if (!GRAINS.includes(grain)) throw new StoreInputError(`time_grain: one of ${GRAINS.join(', ')}`);
    const num = (k: string, min: number, max: number, integer: boolean): number | undefined => {
      if (q[k] === undefined) return undefined;
      const n = Number(q[k]);
      if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
        throw new StoreInputError(`${k}: a ${integer ? 'whole ' : ''}number from ${min} to ${max}`);
      return n;
    };
    const f: MeasurementFilter = {};
    if (q.since) f.since = parseTimeBound(q.since, 'since');
    if (q.until) f.until = parseTimeBound(q.until, 'until');
    if (q.probe_cc) f.probe_cc = q.probe_cc.toUpperCase();
    if (q.probe_asn) f.probe_asn = parseAsn(q.probe_asn);
    if (q.region) f.region = q.region;
    if (q.domain) f.domain = q.domain.toLowerCase();
    if (q.category_code) f.category_code = q.category_code;
    const rows = await opts.store.aggregate({ axis_x: 'measurement_start_day', axis_y: axis, time_grain: grain, filter: f });
    const series = new Map<string, SeriesPoint[]>();
    for (const r of rows) {
      const value = r[axis];
      if (value === null || value === undefined || value === '') continue;
      const k = String(value);
      let s = series.get(k);
      if (!s) series.set(k, (s = []));
      s.push({ bucket: String(r.measurement_start_day), measurements: r.measurement_count, blocked: r.anomaly_count + r.confirmed_count });
    }
    const o = {
      window: num('window', 1, 365, true),
      minCount: num('min_count', 1, 1e9, true),
      minDelta: num('min_delta', 0, 1, false),
      minZ: num('min_z', 0, 100, false),
    };
    const clean = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
    const anomalies = [...series].flatMap(([value, points]) =>
      seriesAnomalies(
        points.sort((a, b) => (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1 : 0)),
        clean,
      ).map((a) => ({ axis, value, ...a })),
    );
    anomalies.sort((a, b) => (a.bucket < b.bucket ? 1 : a.bucket > b.bucket ? -1 : Math.abs(b.z) - Math.abs(a.z)));
    return { anomalies };
  });
}
