// Blockpage and forged-answer fingerprints in OONI's CSV format (ooni/blocking-fingerprints:
// name, scope, other_names, location_found, pattern_type, pattern, confidence_no_fp,
// expected_countries, source, exp_url, notes). Parsing is pure: text in, FingerprintSet out;
// reading the files lives in probe/fingerprints-load.ts.
import { CsvSyntaxError, parseCsv, type CsvRow } from '../model/csv.js';
import { canonicalIp, isIp } from './ip.js';

export type FingerprintScope = 'nat' | 'isp' | 'prod' | 'inst' | 'vbw' | 'fp' | string;

export interface Fingerprint {
  name: string;
  scope: FingerprintScope;
  /** "body", "header.<lowercase name>" or "dns". */
  location: string;
  patternType: 'full' | 'prefix' | 'contains' | 'regexp';
  pattern: string;
  expectedCountries: string[];
  confidenceNoFp: number | null;
  regexp?: RegExp;
}

export interface FingerprintSet {
  http: Fingerprint[];
  dns: Fingerprint[];
  /** dns fingerprints of type "full" keyed by canonical address (fast path). */
  dnsByAddress: Map<string, Fingerprint>;
  /** The other dns fingerprints (prefix, contains, regexp, non-address), checked one by one. */
  dnsOther: Fingerprint[];
  /** Addresses known from forged-answer pools (e.g. the GFW's): an answer among them is injection. */
  forgedAddresses: Set<string>;
  /** Rows that could not be used, with the reason: shown by the CLI, never fatal. */
  skipped: Array<{ source: string; line: number; reason: string }>;
}

export function emptyFingerprintSet(): FingerprintSet {
  return { http: [], dns: [], dnsByAddress: new Map(), dnsOther: [], forgedAddresses: new Set(), skipped: [] };
}

// The CSV reader is model/csv.ts (csv-parse), shared with the test lists.
export { parseCsv } from '../model/csv.js';

const PATTERN_TYPES = new Set(['full', 'prefix', 'contains', 'regexp']);

/** Parse one fingerprint CSV (HTTP or DNS, told apart by location_found) into `into`. */
export function parseFingerprintCsv(text: string, source: string, into: FingerprintSet = emptyFingerprintSet()): FingerprintSet {
  let rows: CsvRow[];
  try {
    rows = parseCsv(text);
  } catch (e) {
    if (!(e instanceof CsvSyntaxError)) throw e;
    into.skipped.push({ source, line: e.line, reason: `bad CSV: ${e.message}` });
    return into;
  }
  if (rows.length === 0) return into;
  const header = rows[0].fields.map((h) => h.trim().toLowerCase());
  const col = (name: string): number => header.indexOf(name);
  const iName = col('name'),
    iScope = col('scope'),
    iLoc = col('location_found'),
    iType = col('pattern_type'),
    iPat = col('pattern'),
    iConf = col('confidence_no_fp'),
    iCc = col('expected_countries');
  if (iName < 0 || iLoc < 0 || iType < 0 || iPat < 0) {
    into.skipped.push({ source, line: 1, reason: 'not a fingerprint CSV: missing name/location_found/pattern_type/pattern columns' });
    return into;
  }
  for (const { line, fields } of rows.slice(1)) {
    const get = (i: number): string => (i >= 0 && i < fields.length ? fields[i].trim() : '');
    const patternType = get(iType);
    const location = get(iLoc).toLowerCase();
    const pattern = iPat < fields.length ? fields[iPat] : '';
    if (!PATTERN_TYPES.has(patternType)) {
      into.skipped.push({ source, line, reason: `unknown pattern_type "${patternType.slice(0, 40)}"` });
      continue;
    }
    if (pattern === '') {
      into.skipped.push({ source, line, reason: 'empty pattern' });
      continue;
    }
    const conf = Number.parseInt(get(iConf), 10);
    const fp: Fingerprint = {
      name: get(iName),
      scope: get(iScope),
      location,
      patternType: patternType as Fingerprint['patternType'],
      pattern,
      expectedCountries: get(iCc)
        .split(/[,\s]+/)
        .map((s) => s.toUpperCase())
        .filter(Boolean),
      confidenceNoFp: Number.isFinite(conf) ? conf : null,
    };
    if (fp.patternType === 'regexp') {
      try {
        fp.regexp = new RegExp(pattern);
      } catch (e) {
        into.skipped.push({ source, line, reason: `regexp not usable in JavaScript: ${(e as Error).message.slice(0, 80)}` });
        continue;
      }
    }
    if (location === 'dns') {
      into.dns.push(fp);
      if (fp.patternType === 'full' && isIp(pattern)) into.dnsByAddress.set(canonicalIp(pattern), fp);
      else into.dnsOther.push(fp);
    } else if (location === 'body' || location.startsWith('header.')) {
      into.http.push(fp);
    } else {
      into.skipped.push({ source, line, reason: `unknown location_found "${location.slice(0, 40)}"` });
    }
  }
  return into;
}

/** A plain list of addresses, one per line (# comments allowed): a known forged-answer pool. */
export function parseAddressList(text: string, source: string, into: FingerprintSet = emptyFingerprintSet()): FingerprintSet {
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const s = raw.replace(/#.*/, '').trim();
    if (!s) return;
    if (isIp(s)) into.forgedAddresses.add(canonicalIp(s));
    else into.skipped.push({ source, line: i + 1, reason: `not an address: "${s.slice(0, 40)}"` });
  });
  return into;
}

export function matchPattern(fp: Fingerprint, value: string): boolean {
  switch (fp.patternType) {
    case 'full':
      return value === fp.pattern;
    case 'prefix':
      return value.startsWith(fp.pattern);
    case 'contains':
      return value.includes(fp.pattern);
    case 'regexp':
      return fp.regexp !== undefined && fp.regexp.test(value);
  }
}

/** OONI's rule: a match confirms blocking when the scope is nat or isp, or the country is expected. */
export function isConfirmed(fp: Fingerprint, probeCc: string | null): boolean {
  if (fp.scope === 'nat' || fp.scope === 'isp') return true;
  return probeCc !== null && fp.expectedCountries.includes(probeCc.toUpperCase());
}

// Body "contains" patterns (about 900 of 8+ bytes in OONI's file) are found in ONE pass over the
// body: a hash of each pattern's first 8 bytes sets a bit in a filter; the scan computes the same
// hash at every body offset and verifies candidates only where the bit is set. Built lazily, once per set.
const GRAM = 8; // long enough that common HTML openings ("<title>", "https://") rarely collide
// The filter is a BIT set of 2^16 bits (8 KiB, 1.3% full): it stays in the CPU cache while the
// JSON parser streams megabytes past it. A byte per slot (256 KiB) missed the cache on nearly every
// body byte in the real run (profile: the filter load was 70% of matchHttp, 3x its cost in isolation).
const FILTER_BITS = 16;
interface BodyIndex {
  builtFor: number;
  filter: Uint32Array;
  buckets: Map<number, Array<{ fp: Fingerprint; bytes: Buffer }>>;
  /** Short "contains", "full", "prefix" and regexp body patterns; regexps with the literal that must occur. */
  others: Array<{ fp: Fingerprint; literal: string }>;
  headers: Map<string, Fingerprint[]>;
  order: Map<Fingerprint, number>;
}

/** The longest run of plain characters of a regexp source: a cheap includes() before the regexp. */
export function requiredLiteral(source: string): string {
  // Only sources without alternation or optional groups are safe to prefilter this way.
  if (/[|?]|\{0|\*\)/.test(source)) return '';
  let best = '';
  for (const run of source.split(/\\.|[.*+?()[\]{}^$|]/)) if (run.length > best.length) best = run;
  return best;
}
const indexes = new WeakMap<FingerprintSet, BodyIndex>();

// The hash of GRAM = 8 bytes is computed from two 32-bit words (bytes 0-3 and 4-7, big-endian),
// which the scan shifts one byte along per body byte: no multiply chain to roll back, two
// multiplies per byte. All arithmetic wraps modulo 2^32. The scan runs over the body's BYTES
// (UTF-8 patterns against the raw body): reading a Uint8Array is several times cheaper than
// charCodeAt, and a base64 body's non-ASCII text matches non-ASCII patterns as it should.
const mix = (lo: number, hi: number): number => (Math.imul(lo, 0x9e3779b1) ^ Math.imul(hi, 0x85ebca6b)) >>> (32 - FILTER_BITS);

function gramSlot(b: Uint8Array, i: number): number {
  const lo = (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3];
  const hi = (b[i + 4] << 24) | (b[i + 5] << 16) | (b[i + 6] << 8) | b[i + 7];
  return mix(lo, hi);
}

function bodyIndex(set: FingerprintSet): BodyIndex {
  let ix = indexes.get(set);
  if (ix && ix.builtFor === set.http.length) return ix;
  ix = {
    builtFor: set.http.length,
    filter: new Uint32Array((1 << FILTER_BITS) >>> 5),
    buckets: new Map(),
    others: [],
    headers: new Map(),
    order: new Map(),
  };
  for (const fp of set.http) {
    ix.order.set(fp, ix.order.size);
    if (fp.scope === 'fp') continue; // known false-positive patterns are not evidence
    if (fp.location !== 'body') {
      const name = fp.location.slice('header.'.length);
      const list = ix.headers.get(name);
      if (list) list.push(fp);
      else ix.headers.set(name, [fp]);
      continue;
    }
    const bytes = Buffer.from(fp.pattern, 'utf8');
    if (fp.patternType === 'contains' && bytes.length >= GRAM) {
      const h = gramSlot(bytes, 0);
      ix.filter[h >>> 5] |= 1 << (h & 31);
      const b = ix.buckets.get(h);
      if (b) b.push({ fp, bytes });
      else ix.buckets.set(h, [{ fp, bytes }]);
    } else ix.others.push({ fp, literal: fp.patternType === 'regexp' ? requiredLiteral(fp.pattern) : '' });
  }
  indexes.set(set, ix);
  return ix;
}

/**
 * HTTP fingerprints matching a response body and headers (lowercase names). `body` is the text
 * (for regexps and short patterns), `bytes` the raw body (for the one-pass scan); both bounded by
 * the caller. Without `bytes`, the text is encoded once here.
 */
export function matchHttp(
  set: FingerprintSet,
  body: string | null,
  headers: Map<string, string>,
  bytes?: Uint8Array | null,
): Fingerprint[] {
  const ix = bodyIndex(set);
  const found = new Set<Fingerprint>();
  const buf = bytes ?? (body !== null ? Buffer.from(body, 'utf8') : null);
  if (buf !== null) {
    const { filter, buckets } = ix;
    const len = buf.length;
    if (len >= GRAM) {
      let lo = (buf[0] << 24) | (buf[1] << 16) | (buf[2] << 8) | buf[3];
      let hi = (buf[4] << 24) | (buf[5] << 16) | (buf[6] << 8) | buf[7];
      for (let i = 0; ; i++) {
        // Window [i, i + GRAM): lo holds bytes i..i+3, hi bytes i+4..i+7.
        const h = mix(lo, hi);
        if ((filter[h >>> 5] & (1 << (h & 31))) !== 0) {
          for (const c of buckets.get(h)!) if (!found.has(c.fp) && startsWithBytes(buf, c.bytes, i)) found.add(c.fp);
        }
        const next = i + GRAM;
        if (next >= len) break;
        lo = (lo << 8) | (hi >>> 24);
        hi = (hi << 8) | buf[next];
      }
    }
  }
  if (body !== null) {
    for (const { fp, literal } of ix.others) if ((literal === '' || body.includes(literal)) && matchPattern(fp, body)) found.add(fp);
  }
  const out = [...found].sort((a, b) => ix!.order.get(a)! - ix!.order.get(b)!); // file order, stable
  // Only the headers the response has are looked at (a handful), not every header fingerprint.
  for (const [name, value] of headers) {
    const fps = ix.headers.get(name);
    if (fps) for (const fp of fps) if (matchPattern(fp, value)) out.push(fp);
  }
  return out;
}

function startsWithBytes(buf: Uint8Array, pat: Buffer, at: number): boolean {
  if (at + pat.length > buf.length) return false;
  for (let k = 0; k < pat.length; k++) if (buf[at + k] !== pat[k]) return false;
  return true;
}

/** DNS fingerprints matching one answer address. */
export function matchDns(set: FingerprintSet, address: string): Fingerprint[] {
  const c = canonicalIp(address);
  const direct = set.dnsByAddress.get(c);
  const out: Fingerprint[] = direct ? [direct] : [];
  for (const fp of set.dnsOther) if (matchPattern(fp, address)) out.push(fp);
  return out;
}
