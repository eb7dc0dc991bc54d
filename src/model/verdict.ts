// The verdict vocabulary (../shared/DESIGN.md "Model" and "Scenario format"). A contract: scenario files,
// `lab eval --json`, the store and the explorer all speak these exact strings.
import type { OoniBlocking } from './measurement.js';

export const MECHANISMS = [
  'none',
  'dns.injection',
  'dns.nxdomain',
  'dns.bogon',
  'dns.servfail',
  'tcp.timeout',
  'tcp.refused',
  'tls.reset',
  'tls.timeout',
  'tls.mitm',
  'http.reset',
  'http.timeout',
  'http.blockpage',
  'http.diff',
  'throttle',
  'residual',
] as const;
export type Mechanism = (typeof MECHANISMS)[number];

export const LAYERS = ['national', 'regional', 'isp', 'unknown'] as const;
export type Layer = (typeof LAYERS)[number];

/** OONI's blocking classes, as a tagged value inside wallscope. */
export type BlockingClass = 'dns' | 'tcp_ip' | 'http-failure' | 'http-diff';

/**
 * What the analysis concludes about one measurement.
 * - `status`: 'ok' (reachable, no interference), 'blocked' (interference, with `blocking` class),
 *   'down' (the site itself fails for everyone), 'unknown' (not enough evidence, e.g. control failed).
 * `blocking`/`accessible` keep OONI's meaning so verdicts can be compared with the reference.
 */
export interface Verdict {
  status: 'ok' | 'blocked' | 'down' | 'unknown';
  blocking: BlockingClass | null; // set iff status === 'blocked'
  accessible: boolean | null;
  mechanism: Mechanism | null; // null only when status === 'unknown'
  layer: Layer | null; // null when nothing is blocked
  confidence: number; // 0..1
  /** References to the observations that decided it, e.g. "queries[0]", "requests[0]", "control.http_request". */
  evidence: string[];
  /** One or two plain sentences a volunteer understands. */
  explanation: string;
  /** Whether a fingerprint match confirms the blocking (OONI's "confirmed"). */
  confirmed: boolean;
  /** Name of the fingerprint(s) that matched, if any. */
  fingerprints: string[];
  analysis_version: string;
}

/** The one place where a verdict becomes OONI's `blocking` field. */
export function toOoniBlocking(v: Pick<Verdict, 'status' | 'blocking'>): OoniBlocking {
  switch (v.status) {
    case 'blocked':
      return v.blocking;
    case 'ok':
    case 'down':
      return false;
    case 'unknown':
      return null;
  }
}

export function isMechanism(s: unknown): s is Mechanism {
  return typeof s === 'string' && (MECHANISMS as readonly string[]).includes(s);
}
export function isLayer(s: unknown): s is Layer {
  return typeof s === 'string' && (LAYERS as readonly string[]).includes(s);
}
