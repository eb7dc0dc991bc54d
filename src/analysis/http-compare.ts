// Comparing the probe's HTTP response with the control's, as the reference does it
// (ooni/spec nettests/ts-017-web-connectivity.md; probe-cli webconnectivity HTTP analysis):
// body proportion > 0.7, status code, uncommon header names, title words of 5+ characters.
// Pure functions over already-decoded values.

/** Bodies longer than this are only measured, never scanned (bounded work per record). */
export const MAX_SCANNED_BODY = 1 << 20;

/** Headers every server sends: their presence says nothing about who answered. */
const COMMON_HEADERS = new Set([
  'date',
  'content-type',
  'server',
  'cache-control',
  'vary',
  'set-cookie',
  'location',
  'expires',
  'x-powered-by',
  'content-encoding',
  'last-modified',
  'accept-ranges',
  'pragma',
  'x-frame-options',
  'etag',
  'x-content-type-options',
  'age',
  'via',
  'p3p',
  'x-xss-protection',
  'content-language',
  'cf-ray',
  'strict-transport-security',
  'link',
  'x-varnish',
]);

const TITLE_RE = /<title[^>]*>([^<]{1,512})<\/title>/i;

/** How much of a body is looked at for its title, by the probe (bytes) and the analysis (characters). */
export const TITLE_SCAN = 65536;

/** The page title, or null when the body has none. Only the first 64 KiB are looked at. */
export function extractTitle(body: string): string | null {
  const m = TITLE_RE.exec(body.length > TITLE_SCAN ? body.slice(0, TITLE_SCAN) : body);
  return m ? m[1].trim() : null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The title of a body still in bytes (the probe, the test helper), read as the analysis will read
 * the stored body: as UTF-8 when the bytes are UTF-8 (the probe stores a string), else byte for byte
 * (the probe stores base64, which the analysis decodes as Latin-1).
 */
export function titleOfBytes(body: Uint8Array): string | null {
  const head = body.subarray(0, TITLE_SCAN);
  let text: string;
  try {
    text = utf8.decode(head, { stream: true });
  } catch {
    text = Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString('latin1');
  }
  return extractTitle(text);
}

/** shorter/longer; null when either side is unknown, empty, or the probe's body was truncated. */
export function bodyProportion(probeLen: number, truncated: boolean, controlLen: number): number | null {
  if (truncated || !(probeLen > 0) || !(controlLen > 0)) return null;
  return probeLen >= controlLen ? controlLen / probeLen : probeLen / controlLen;
}

export function statusCodeMatch(probe: number, control: number): boolean | null {
  if (!(probe > 0) || !(control > 0)) return null;
  if (probe === control) return true;
  // A 5xx at the control says the site is unwell, not that the probe's page is foreign.
  if (Math.floor(control / 100) === 5) return null;
  return false;
}

/**
 * The reference's rule (probe-cli webconnectivity httpanalysis.go HTTPHeadersMatch): the same
 * header names on both sides, or at least one uncommon header name in common.
 */
export function headersMatch(probe: Iterable<string>, control: Iterable<string>): boolean | null {
  const p = new Set<string>();
  const c = new Set<string>();
  for (const h of probe) p.add(h.toLowerCase());
  for (const h of control) c.add(h.toLowerCase());
  if (p.size === 0 || c.size === 0) return null;
  if (p.size === c.size && [...p].every((k) => c.has(k))) return true;
  for (const k of p) if (!COMMON_HEADERS.has(k) && c.has(k)) return true;
  return false;
}

function longWords(title: string): Set<string> {
  const out = new Set<string>();
  for (const w of title.split(/\s+/)) if ([...w].length >= 5) out.add(w.toLowerCase());
  return out;
}

/**
 * Titles match when every word of 5+ characters appears on both sides. null when there is no
 * title to compare (no title in the body, or no long words on either side).
 */
export function titleMatch(probeTitle: string | null, controlTitle: string | null): boolean | null {
  if (probeTitle === null || controlTitle === null) return null;
  const a = longWords(probeTitle);
  const b = longWords(controlTitle);
  if (a.size === 0 && b.size === 0) return null;
  if (a.size !== b.size) return false;
  for (const w of a) if (!b.has(w)) return false;
  return true;
}

export interface HttpComparison {
  bodyProportion: number | null;
  bodyLengthMatch: boolean | null;
  statusCodeMatch: boolean | null;
  headersMatch: boolean | null;
  titleMatch: boolean | null;
  /** The reference's rule: status matches AND (body length OR headers OR title) match. */
  matches: boolean;
}

export function compareHttp(
  probe: { code: number; bodyLength: number; truncated: boolean; headerNames: string[]; title: string | null },
  control: { status_code: number; body_length: number; headerNames: string[]; title: string | null },
): HttpComparison {
  const bp = bodyProportion(probe.bodyLength, probe.truncated, control.body_length);
  const blm = bp === null ? null : bp > 0.7;
  const sc = statusCodeMatch(probe.code, control.status_code);
  const hm = headersMatch(probe.headerNames, control.headerNames);
  const tm = titleMatch(probe.title, control.title);
  return {
    bodyProportion: bp,
    bodyLengthMatch: blm,
    statusCodeMatch: sc,
    headersMatch: hm,
    titleMatch: tm,
    matches: sc === true && (blm === true || hm === true || tm === true),
  };
}
