// Words and colours the explorer uses for the verdict vocabulary (../shared/DESIGN.md). The vocabulary
// itself comes from src/model so the explorer can never drift from the analysis.
import { LAYERS, MECHANISMS } from '../../src/model/verdict.js';

export { LAYERS, MECHANISMS };

export const MECHANISM_TEXT: Record<string, string> = {
  none: 'no interference',
  'dns.injection': 'forged DNS replies injected on the path',
  'dns.nxdomain': 'the resolver says the name does not exist',
  'dns.bogon': 'the resolver answers a private or bogus address',
  'dns.servfail': 'the resolver refuses to answer',
  'tcp.timeout': 'connections to the site time out (dropped / null-routed)',
  'tcp.refused': 'connections to the site are refused',
  'tls.reset': 'the TLS handshake is reset (SNI filtering)',
  'tls.timeout': 'the TLS handshake stalls',
  'tls.mitm': 'the TLS certificate is not the site\u2019s (interception)',
  'http.reset': 'the HTTP request is reset (Host or keyword filtering)',
  'http.timeout': 'the HTTP request stalls',
  'http.blockpage': 'a block page is served instead of the site',
  'http.diff': 'the page differs from what the control saw',
  throttle: 'the connection is slowed down',
  residual: 'blocked because of an earlier trigger (residual censorship)',
};

export const LAYER_TEXT: Record<string, string> = {
  national: 'national backbone firewall',
  regional: 'provincial / regional firewall',
  isp: 'the internet provider',
  unknown: 'layer not determined',
};

export type CountKey = 'ok' | 'anomaly' | 'confirmed' | 'failure';
export const COUNT_KEYS: CountKey[] = ['ok', 'anomaly', 'confirmed', 'failure'];
export const COUNT_LABEL: Record<CountKey, string> = {
  ok: 'OK',
  anomaly: 'Anomaly',
  confirmed: 'Confirmed',
  failure: 'Failure',
};
// Chosen for at least 4.5:1 contrast against white (WCAG AA for text), as they are also text colours.
export const COUNT_COLOR: Record<CountKey, string> = {
  ok: '#1a7f37',
  anomaly: '#a35200',
  confirmed: '#b42318',
  failure: '#57606a',
};

export function statusOf(r: { status?: string; anomaly?: boolean; confirmed?: boolean; failure?: boolean }): CountKey {
  if (r.confirmed) return 'confirmed';
  if (r.anomaly || r.status === 'blocked') return 'anomaly';
  if (r.failure || r.status === 'unknown') return 'failure';
  return 'ok';
}

export function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}

/** "2026-11-20" from an aggregation day value ("2026-11-20", "2026-11-20T00:00:00Z", ...). */
export function dayOf(v: unknown): string | null {
  if (typeof v !== 'string' && typeof v !== 'number') return null;
  const s = String(v);
  const m = /^(\d{4}-\d{2}-\d{2})/.exec(s);
  return m ? m[1]! : null;
}

/** Unix seconds of an aggregation time value: "2026-11-20", "2026-11-20 05:00:00", ISO 8601. */
export function timeOf(v: unknown): number | null {
  if (typeof v !== 'string') return null;
  const m = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2})?))?/.exec(v);
  if (!m) return null;
  const ms = Date.parse(`${m[1]}T${m[2] ?? '00:00:00'}Z`);
  return Number.isFinite(ms) ? ms / 1000 : null;
}

export function dayToUnix(day: string): number {
  return Date.parse(day + 'T00:00:00Z') / 1000;
}

/** "YYYY-MM-DD" plus n days (n may be negative). */
export function addDays(day: string, n: number): string {
  const d = new Date(day + 'T00:00:00Z');
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** The first day after a time bucket that starts on `day`. */
export function bucketEnd(day: string, grain: string): string {
  const d = new Date(day + 'T00:00:00Z');
  if (grain === 'month') d.setUTCMonth(d.getUTCMonth() + 1);
  else if (grain === 'week') d.setUTCDate(d.getUTCDate() + 7);
  else d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

export function grainSeconds(grain: string): number {
  return grain === 'month' ? 30 * 86400 : grain === 'week' ? 7 * 86400 : grain === 'hour' ? 3600 : 86400;
}

export function pct(n: number, total: number): string {
  return total ? `${((100 * n) / total).toFixed(1)}%` : '\u2013';
}
