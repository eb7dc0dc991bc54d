// The server HTTP API (docs/INTERNAL-API.md "server HTTP API"), as the explorer consumes it.
// Same origin only: the explorer never talks to any other host.
import type { Measurement } from '../../src/model/measurement.js';
import type { Verdict } from '../../src/model/verdict.js';

// The row is the store's own type (src/model/aggregation.ts), not a copy.
export type { MeasurementRow } from '../../src/model/aggregation.js';
import type { MeasurementRow } from '../../src/model/aggregation.js';

export interface MeasurementList {
  results: MeasurementRow[];
  next_cursor: string | null;
}

export interface StoredMeasurementResponse {
  measurement_uid: string;
  measurement: Measurement;
  verdict: Verdict;
  analysis_version: string;
}

export interface Counts {
  measurement_count: number;
  ok_count: number;
  anomaly_count: number;
  confirmed_count: number;
  failure_count: number;
}
export type AggregationRow = Counts & Record<string, string | number | null>;
export interface Aggregation {
  result: AggregationRow[];
  dimension_count: number;
}

// The axes are the server's own list (src/model/aggregation.ts), not a copy.
export { AXES, type Axis } from '../../src/model/aggregation.js';

/** The filter parameters both the list and the aggregation endpoints take. */
export const FILTER_KEYS = ['probe_cc', 'probe_asn', 'region', 'domain', 'test_name', 'mechanism', 'layer', 'since', 'until'] as const;
export type Filters = Partial<Record<(typeof FILTER_KEYS)[number] | 'blocking', string>>;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function apiUrl(path: string, params: Record<string, string | undefined | null> = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const qs = p.toString();
  // Relative to the page, so the explorer also works when served under a prefix.
  return 'api/v1/' + path + (qs ? '?' + qs : '');
}

// Identical requests within a minute share one answer: a page's panels often ask the same
// aggregation, and back/forward should not re-run full-table GROUP BYs on a big store.
const CACHE_MS = 60_000;
const cache = new Map<string, { at: number; p: Promise<unknown> }>();

/** GET an API path. The signal is accepted for symmetry but the shared request is never aborted;
 *  callers drop stale answers themselves (useFetch does). */
export function getJSON<T>(path: string, params: Record<string, string | undefined | null> = {}, _signal?: AbortSignal): Promise<T> {
  const url = apiUrl(path, params);
  const now = Date.now();
  const hit = cache.get(url);
  if (hit && now - hit.at < CACHE_MS) return hit.p as Promise<T>;
  const p = fetchJSON<T>(url);
  cache.set(url, { at: now, p });
  p.catch(() => cache.delete(url)); // errors are not cached
  if (cache.size > 200) cache.delete(cache.keys().next().value!);
  return p;
}

async function fetchJSON<T>(url: string): Promise<T> {
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { message?: unknown; error?: unknown; code?: unknown };
      // The server's errors: { error, code, statusCode } (fastify's own: { message }).
      if (typeof body.error === 'string' && body.error.length > 0 && typeof body.code === 'string') msg = body.error;
      else if (typeof body.message === 'string') msg = body.message;
      if (typeof body.code === 'string') msg = `${body.code}: ${msg}`;
    } catch {
      /* not JSON: keep the status line */
    }
    throw new ApiError(res.status, msg);
  }
  return (await res.json()) as T;
}

export function sumCounts(rows: Counts[]): Counts {
  const c: Counts = { measurement_count: 0, ok_count: 0, anomaly_count: 0, confirmed_count: 0, failure_count: 0 };
  for (const r of rows) {
    c.measurement_count += r.measurement_count;
    c.ok_count += r.ok_count;
    c.anomaly_count += r.anomaly_count;
    c.confirmed_count += r.confirmed_count;
    c.failure_count += r.failure_count;
  }
  return c;
}
