// What both stores share: the measurement uid, the flat row of a measurement + verdict, cursors
// and time parsing. Pure functions; the SQL lives in each store.
import { createHash } from 'node:crypto';
import { domainOf } from '../model/index.js';
import { toOoniBlocking, type Measurement, type OoniBlocking, type Verdict } from '../model/index.js';
import { StoreInputError, type MeasurementRow } from './types.js';

/** The flat columns, in the order both stores keep them. */
export interface FlatRow {
  uid: string;
  report_id: string;
  input: string | null;
  domain: string | null;
  test_name: string;
  probe_cc: string;
  probe_asn: number;
  region: string | null;
  measurement_start_time: string;
  ts: number; // unix seconds
  day: string; // YYYY-MM-DD
  status: Verdict['status'];
  blocking: string | null; // OONI's value as text: 'false' | class | null
  accessible: number | null; // 1 | 0 | null
  mechanism: string | null;
  layer: string | null;
  confidence: number;
  confirmed: number; // 1 | 0
  explanation: string;
  category_code: string | null;
  analysis_version: string;
  verdict: string; // JSON
}

const OONI_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/** "YYYY-MM-DD hh:mm:ss" (UTC) -> unix seconds, or null when malformed. */
export function parseOoniTime(s: string): number | null {
  const m = OONI_TIME.exec(s);
  if (!m) return null;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

/**
 * A user's time bound: "YYYY-MM-DD", "YYYY-MM-DD hh:mm:ss", ISO 8601 with zone, or unix seconds.
 * Throws StoreInputError on anything else.
 */
export function parseTimeBound(s: string, name: string): number {
  const t = s.trim();
  if (/^\d{1,12}$/.test(t)) return Number(t);
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) {
    const ms = Date.parse(`${t}T00:00:00Z`);
    if (Number.isFinite(ms)) return ms / 1000;
  }
  const ooni = parseOoniTime(t);
  if (ooni !== null) return ooni;
  if (/^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})$/.test(t)) {
    const ms = Date.parse(t);
    if (Number.isFinite(ms)) return Math.floor(ms / 1000);
  }
  throw new StoreInputError(
    `${name}: expected a date (YYYY-MM-DD), a time (YYYY-MM-DD hh:mm:ss or ISO 8601) or unix seconds, got ${JSON.stringify(s.slice(0, 40))}`,
  );
}

/** "AS1234" | "1234" -> 1234; throws StoreInputError otherwise. */
export function parseAsn(s: string): number {
  const m = /^(?:AS)?(\d{1,10})$/i.exec(s.trim());
  if (!m || Number(m[1]) > 4294967295) throw new StoreInputError(`probe_asn: expected AS<number>, got ${JSON.stringify(s.slice(0, 40))}`);
  return Number(m[1]);
}

/** The analysis' domainOf for URL inputs; a bare host name (dns_check, tor inputs) is its own domain. */
export function hostOfInput(input: string | null): string | null {
  if (!input) return null;
  return domainOf(input) ?? (/^[a-z0-9.-]{1,253}$/i.test(input) ? input.toLowerCase() : null);
}

/**
 * The measurement uid. A measurement served by OONI keeps its own; otherwise it is derived from the
 * content (minus report_id and measurement_uid), so a retried submission, even under another
 * report, gets the same uid and is stored once. Shape follows OONI's:
 * `YYYYMMDDhhmmss.000000_CC_testname_<hash>`.
 */
export function measurementUid(m: Measurement): string {
  if (typeof m.measurement_uid === 'string' && /^[A-Za-z0-9._-]{8,128}$/.test(m.measurement_uid)) return m.measurement_uid;
  const { report_id: _r, measurement_uid: _u, ...rest } = m;
  return uidFrom(m, JSON.stringify(rest));
}

/**
 * measurementUid(m) and JSON.stringify(m) from one serialisation when report_id is m's last key
 * (as the collector builds it): the uid hashes m without report_id (and measurement_uid), which is
 * m's JSON minus its last member. Otherwise both the slow way; the results are the same either way
 * (tested on random key orders).
 */
export function serializeMeasurement(m: Measurement): { uid: string; json: string } {
  const json = JSON.stringify(m);
  if (typeof m.measurement_uid === 'string' && /^[A-Za-z0-9._-]{8,128}$/.test(m.measurement_uid)) return { uid: m.measurement_uid, json };
  const rid = m.report_id;
  if (m.measurement_uid === undefined && typeof rid === 'string') {
    const member = `"report_id":${JSON.stringify(rid)}}`;
    let rest: string | null = null;
    // The text can end so only when report_id is the top-level object's last member: a nested one would
    // leave a second "}", and a `,"` inside a string value would be escaped.
    if (json.endsWith(`,${member}`)) rest = `${json.slice(0, json.length - member.length - 1)}}`;
    else if (json === `{${member}`) rest = '{}';
    if (rest !== null) return { uid: uidFrom(m, rest), json };
  }
  return { uid: measurementUid(m), json };
}

/**
 * The content uid of m from `restJson`, m's JSON without report_id and measurement_uid (a bulk
 * loader that renders that JSON itself hands it here, so its uids are put()'s).
 */
export function uidFrom(m: Pick<Measurement, 'measurement_start_time' | 'test_name' | 'probe_cc'>, restJson: string): string {
  const hash = createHash('sha256').update(restJson).digest('hex').slice(0, 24);
  const t = (m.measurement_start_time ?? '')
    .replace(/[^0-9]/g, '')
    .slice(0, 14)
    .padEnd(14, '0');
  const tn = String(m.test_name ?? 'unknown')
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase();
  return `${t}.000000_${String(m.probe_cc ?? 'ZZ').toUpperCase()}_${tn}_${hash}`;
}

function ooniBlockingText(v: Verdict): string | null {
  const b: OoniBlocking = toOoniBlocking(v);
  return b === null ? null : String(b);
}

/** The longest region kept, in characters (a province name needs far fewer). */
export const REGION_MAX = 64;

/**
 * A self-declared region as stored and filtered: control characters dropped, whitespace runs
 * collapsed to one space, trimmed, cut to REGION_MAX characters; null when nothing is left or the
 * value is not a string. The same function normalises stored values and filter values, so a
 * filter matches what put() stored.
 */
export function normalizeRegion(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const s = v
    // eslint-disable-next-line no-control-regex -- control characters are what is removed
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (!s) return null;
  return [...s].slice(0, REGION_MAX).join('').trim();
}

/** The region a measurement carries in annotations.region (OONI annotations are free string pairs). */
export function regionOf(m: Measurement): string | null {
  return normalizeRegion(m.annotations?.region);
}

/** Category of the input when the measurement carries it (OONI annotations or our x_ key). */
function categoryOf(m: Measurement): string | null {
  const a = m.annotations?.category_code;
  if (typeof a === 'string' && a) return a;
  const x = (m.test_keys as Record<string, unknown> | undefined)?.x_category_code;
  return typeof x === 'string' && x ? x : null;
}

export function flatten(
  m: Measurement,
  verdict: Verdict,
  uid: string,
  domainOf: (input: string | null) => string | null = hostOfInput,
): FlatRow {
  const ts = parseOoniTime(m.measurement_start_time) ?? 0;
  return {
    uid,
    report_id: m.report_id ?? '',
    input: m.input ?? null,
    domain: domainOf(m.input ?? null),
    test_name: m.test_name,
    probe_cc: m.probe_cc,
    probe_asn: Number(/^AS(\d+)$/.exec(m.probe_asn)?.[1] ?? 0),
    region: regionOf(m),
    measurement_start_time: m.measurement_start_time,
    ts,
    day: new Date(ts * 1000).toISOString().slice(0, 10),
    status: verdict.status,
    blocking: ooniBlockingText(verdict),
    accessible: verdict.accessible === null ? null : verdict.accessible ? 1 : 0,
    mechanism: verdict.mechanism,
    layer: verdict.layer,
    confidence: verdict.confidence,
    confirmed: verdict.confirmed ? 1 : 0,
    explanation: verdict.explanation,
    category_code: categoryOf(m),
    analysis_version: verdict.analysis_version,
    verdict: JSON.stringify(verdict),
  };
}

/** A flat row as the API returns it (MeasurementRow in docs/INTERNAL-API.md). */
export function toApiRow(r: {
  uid: string;
  report_id: string;
  input: string | null;
  domain: string | null;
  test_name: string;
  probe_cc: string;
  probe_asn: number | string;
  region?: string | null;
  measurement_start_time: string;
  status: string;
  blocking: string | null;
  accessible: number | boolean | null;
  mechanism: string | null;
  layer: string | null;
  confidence: number;
  confirmed: number | boolean;
  explanation: string;
  category_code: string | null;
  analysis_version: string;
}): MeasurementRow {
  const blocking: OoniBlocking = r.blocking === null ? null : r.blocking === 'false' ? false : (r.blocking as OoniBlocking);
  const confirmed = Boolean(Number(r.confirmed));
  return {
    measurement_uid: r.uid,
    report_id: r.report_id,
    input: r.input,
    domain: r.domain,
    test_name: r.test_name,
    probe_cc: r.probe_cc,
    probe_asn: `AS${Number(r.probe_asn)}`,
    region: r.region ?? null,
    measurement_start_time: r.measurement_start_time,
    status: r.status as MeasurementRow['status'],
    blocking,
    accessible: r.accessible === null ? null : Boolean(Number(r.accessible)),
    mechanism: r.mechanism,
    layer: r.layer,
    confidence: Number(r.confidence),
    confirmed,
    explanation: r.explanation,
    anomaly: r.status === 'blocked' && !confirmed,
    failure: r.status === 'unknown',
    category_code: r.category_code,
    analysis_version: r.analysis_version,
  };
}

/** Cursor: opaque base64url of [ts, uid] of the last row of the page (order: ts desc, uid desc). */
export function encodeCursor(ts: number, uid: string): string {
  return Buffer.from(JSON.stringify([ts, uid])).toString('base64url');
}

export function decodeCursor(c: string): { ts: number; uid: string } {
  try {
    const v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && Number.isInteger(v[0]) && typeof v[1] === 'string') return { ts: v[0], uid: v[1] };
  } catch {
    // fall through
  }
  throw new StoreInputError('cursor: not a cursor returned by this API');
}

/** The text of `blocking` filters: validated here so both stores accept the same values. */
export const BLOCKING_FILTERS = ['true', 'false', 'null', 'dns', 'tcp_ip', 'http-failure', 'http-diff'] as const;
export function checkBlockingFilter(s: string): string {
  if (!(BLOCKING_FILTERS as readonly string[]).includes(s))
    throw new StoreInputError(`blocking: expected one of ${BLOCKING_FILTERS.join(', ')}, got ${JSON.stringify(s.slice(0, 40))}`);
  return s;
}
