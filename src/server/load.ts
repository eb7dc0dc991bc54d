// A load generator for the collector (autocannon): N connections submitting distinct
// measurements for a bounded time. Used by the load test and bench/load-collector.ts; not by the
// server itself (autocannon is a dev dependency).
import { createRequire } from 'node:module';
import { ooniTime, type Measurement } from '../model/index.js';
import { sampleMeasurement } from '../store/index.js';

interface AutocannonResult {
  latency: { p50: number; p90: number; p99: number; average: number; max: number };
  requests: { average: number; total: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  duration: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;

export interface LoadResult {
  connections: number;
  durationS: number;
  ok: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  perSecond: number;
  /** measurement_uid of every acknowledged submission. */
  uids: Set<string>;
}

/** The i-th measurement of a load run: distinct input per i, three countries, spread over a day. */
export function loadMeasurement(prefix: string, i: number, start: Date): Measurement {
  const m = sampleMeasurement({ input: `https://${prefix}-${i}.example/`, start: new Date(start.getTime() - (i % 86400) * 1000), probe_cc: ['CN', 'IR', 'RU'][i % 3] });
  m.test_start_time = ooniTime(start);
  return m;
}

/** Submits distinct measurements (unique input per request) to `url` for `durationS` seconds. */
export async function submitLoad(url: string, opts: { connections?: number; durationS?: number; prefix?: string; start?: Date } = {}): Promise<LoadResult> {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const connections = opts.connections ?? 64;
  const durationS = opts.durationS ?? 3;
  const prefix = opts.prefix ?? `load-${process.pid}-${Date.now()}`;
  const uids = new Set<string>();
  let n = 0;
  const start = opts.start ?? new Date();
  const res = await autocannon({
    url,
    connections,
    duration: durationS,
    timeout: 30,
    requests: [
      {
        method: 'POST',
        path: '/api/v1/submit_measurement',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req: Record<string, unknown>) => {
          const m = loadMeasurement(prefix, n++, start);
          return { ...req, body: JSON.stringify({ format: 'json', content: m }) };
        },
        onResponse: (status: number, body: string) => {
          if (status === 200) {
            try {
              uids.add((JSON.parse(body) as { measurement_uid: string }).measurement_uid);
            } catch {
              // counted as ok by status; a body without uid shows up as a missing uid
            }
          }
        },
      },
    ],
  });
  return {
    connections,
    durationS,
    ok: res['2xx'],
    errors: res.errors,
    timeouts: res.timeouts,
    non2xx: res.non2xx,
    p50Ms: res.latency.p50,
    p90Ms: res.latency.p90,
    p99Ms: res.latency.p99,
    maxMs: res.latency.max,
    perSecond: res['2xx'] / res.duration,
    uids,
  };
}
