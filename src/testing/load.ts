// A load generator for the collector (autocannon): N connections submitting distinct
// measurements for a bounded time. Test support: used by the load test and bench/store-ingest.ts; not by the
// server itself (autocannon is a dev dependency).
import { createRequire } from 'node:module';
import { ooniTime, type Measurement } from '../model/index.js';
import { sampleMeasurement } from './seed.js';

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
  const m = sampleMeasurement({
    input: `https://${prefix}-${i}.example/`,
    start: new Date(start.getTime() - (i % 86400) * 1000),
    probe_cc: ['CN', 'IR', 'RU'][i % 3],
  });
  m.test_start_time = ooniTime(start);
  return m;
}

/** Submits distinct measurements (unique input per request) to `url` for `durationS` seconds. */
export async function submitLoad(
  url: string,
  opts: {
    connections?: number;
    durationS?: number;
    prefix?: string;
    start?: Date;
    /** sent as X-Forwarded-For (a collector with --trust-proxy scrubs it) */ clientIp?: string;
  } = {},
): Promise<LoadResult> {
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
        headers: { 'content-type': 'application/json', ...(opts.clientIp ? { 'x-forwarded-for': opts.clientIp } : {}) },
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

export interface BatchLoadResult {
  connections: number;
  batchSize: number;
  /** Batches answered 200 and measurements they acknowledged (stored or duplicate). */
  batches: number;
  ok: number;
  /** Lines refused, requests failed (network or non-200), and whether the prepared bodies ran out early. */
  refused: number;
  failedRequests: number;
  exhausted: boolean;
  elapsedS: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  uids: Set<string>;
}

/**
 * `connections` clients each POSTing NDJSON batches of `batchSize` distinct measurements to
 * /api/v1/submit_measurements, one after another, for `durationS` seconds. The bodies are made
 * before the clock starts (up to `maxRate` measurements per second of duration), so the load
 * generator's own CPU during the run is little more than sending and reading.
 */
export async function submitBatches(
  url: string,
  opts: {
    connections?: number;
    durationS?: number;
    batchSize?: number;
    prefix?: string;
    start?: Date;
    maxRate?: number;
    clientIp?: string;
  } = {},
): Promise<BatchLoadResult> {
  const connections = opts.connections ?? 4;
  const durationS = opts.durationS ?? 3;
  const batchSize = opts.batchSize ?? 500;
  const prefix = opts.prefix ?? `batch-${process.pid}-${Date.now()}`;
  const start = opts.start ?? new Date();
  const nBatches = Math.ceil(((opts.maxRate ?? 30_000) * durationS) / batchSize);
  const bodies: string[] = [];
  for (let b = 0, i = 0; b < nBatches; b++) {
    let s = '';
    for (let k = 0; k < batchSize; k++, i++) s += JSON.stringify({ format: 'json', content: loadMeasurement(prefix, i, start) }) + '\n';
    bodies.push(s);
  }
  const target = new URL('/api/v1/submit_measurements', url).toString();
  const latencies: number[] = [];
  const uids = new Set<string>();
  let next = 0;
  let batches = 0;
  let refused = 0;
  let failedRequests = 0;
  const t0 = performance.now();
  const deadline = t0 + durationS * 1000;
  const worker = async () => {
    while (performance.now() < deadline && next < bodies.length) {
      const body = bodies[next++];
      const s = performance.now();
      try {
        const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
        if (opts.clientIp) headers['x-forwarded-for'] = opts.clientIp;
        const res = await fetch(target, { method: 'POST', headers, body, signal: AbortSignal.timeout(60_000) });
        const text = await res.text();
        latencies.push(performance.now() - s);
        if (res.status !== 200) {
          failedRequests++;
          continue;
        }
        batches++;
        for (const r of (JSON.parse(text) as { results: Array<{ measurement_uid?: string }> }).results) {
          if (r.measurement_uid) uids.add(r.measurement_uid);
          else refused++;
        }
      } catch {
        failedRequests++;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsedS = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]) : NaN;
  return {
    connections,
    batchSize,
    batches,
    ok: uids.size,
    refused,
    failedRequests,
    exhausted: next >= bodies.length,
    elapsedS,
    perSecond: uids.size / elapsedS,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    uids,
  };
}
