// Reading OONI measurements as published: one JSON document (.json, possibly an array of them),
// one per line (.jsonl), or either with // comments (.jsonc). A record that cannot be read becomes
// a per-record error with its line; the run goes on. Pure: text in, records out.
import type { Measurement } from '../model/index.js';

/** Records larger than this are refused unparsed (bounded memory on hostile input). */
export const MAX_RECORD_CHARS = 16 * 1024 * 1024;

export type ReadResult = { ok: true; measurement: Measurement; line: number } | { ok: false; error: string; line: number };

/** Remove // and /* *\/ comments outside strings (JSONC), keeping line numbers. */
export function stripJsonComments(text: string): string {
  let out = '';
  let i = 0;
  let start = 0;
  let inStr = false;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (inStr) {
      if (ch === 92 /* \ */) {
        i += 2;
        continue;
      }
      if (ch === 34 /* " */) inStr = false;
      i++;
      continue;
    }
    if (ch === 34) {
      inStr = true;
      i++;
      continue;
    }
    if (ch === 47 /* / */ && text.charCodeAt(i + 1) === 47) {
      out += text.slice(start, i);
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl;
      start = i;
      continue;
    }
    if (ch === 47 && text.charCodeAt(i + 1) === 42 /* * */) {
      out += text.slice(start, i);
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
      start = i;
      continue;
    }
    i++;
  }
  return out + text.slice(start);
}

/** Keys that only web_connectivity's test_keys carry: a document with them and no test_name is one. */
const WEB_TK_KEYS = ['control', 'x_control_request', 'control_failure', 'dns_consistency'];

/**
 * A bare test_keys object as the reference keeps its own testdata (probe-cli's .jsonc files):
 * wrapped into a measurement, the input taken from the control request (or the first request
 * of the chain, which OONI lists last). Anything else is returned as it is.
 */
export function wrapBareTestKeys(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const o = v as Record<string, unknown>;
  if (o.test_name !== undefined || o.test_keys !== undefined) return v;
  if (!WEB_TK_KEYS.some((k) => k in o) || !('requests' in o || 'queries' in o)) return v;
  const cr = o.x_control_request as Record<string, unknown> | null | undefined;
  let input: unknown = cr && typeof cr === 'object' ? (cr.http_request as unknown) : undefined;
  if (typeof input !== 'string' && Array.isArray(o.requests) && o.requests.length > 0) {
    const first = o.requests[o.requests.length - 1] as { request?: { url?: unknown } } | null;
    input = first?.request?.url;
  }
  return { test_name: 'web_connectivity', input: typeof input === 'string' ? input : null, test_keys: o };
}

/** Check the shape the analysis relies on; the message says what is wrong. `test_keys: null` is a
 * measurement (the probe recorded nothing; the analysis says so), a missing test_keys is not. */
export function checkMeasurement(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return `not a measurement: a JSON ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v} instead of an object`;
  const o = v as Record<string, unknown>;
  if (typeof o.test_name !== 'string') return 'not a measurement: test_name is missing or not a string';
  if (o.test_keys !== null && (typeof o.test_keys !== 'object' || Array.isArray(o.test_keys)))
    return 'not a measurement: test_keys is missing or not an object';
  if (o.input !== undefined && o.input !== null && typeof o.input !== 'string') return 'not a measurement: input is not a string';
  return null;
}

function parseRecord(text: string, line: number): ReadResult {
  if (text.length > MAX_RECORD_CHARS) {
    return { ok: false, line, error: `record too large: ${text.length} characters (limit ${MAX_RECORD_CHARS})` };
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { ok: false, line, error: `invalid JSON: ${(e as Error).message.slice(0, 160)}` };
  }
  v = wrapBareTestKeys(v);
  const bad = checkMeasurement(v);
  return bad ? { ok: false, line, error: bad } : { ok: true, line, measurement: v as Measurement };
}

function* lines(text: string): Generator<{ text: string; line: number }> {
  let start = 0;
  let n = 1;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const s = text.slice(start, end).trim();
    if (s) yield { text: s, line: n };
    start = end + 1;
    n++;
  }
}

/**
 * The measurements of one file. `name` picks the format by extension (.jsonl, .jsonc, else .json);
 * a .json file that is not one document falls back to one document per line.
 */
export function* readMeasurements(text: string, name: string): Generator<ReadResult> {
  const lower = name.toLowerCase();
  const src = lower.endsWith('.jsonc') ? stripJsonComments(text) : text;
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) {
    for (const l of lines(src)) yield parseRecord(l.text, l.line);
    return;
  }
  const trimmed = src.trim();
  if (trimmed === '') return;
  if (trimmed.length > MAX_RECORD_CHARS && !trimmed.includes('\n')) {
    yield { ok: false, line: 1, error: `record too large: ${trimmed.length} characters (limit ${MAX_RECORD_CHARS})` };
    return;
  }
  if (trimmed.length <= MAX_RECORD_CHARS) {
    let v: unknown;
    let parsed = false;
    try {
      v = JSON.parse(trimmed);
      parsed = true;
    } catch {
      /* not one document: maybe one per line */
    }
    if (parsed) {
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const e = wrapBareTestKeys(v[i]);
          const bad = checkMeasurement(e);
          yield bad ? { ok: false, line: 1, error: `element ${i}: ${bad}` } : { ok: true, line: 1, measurement: e as Measurement };
        }
      } else {
        v = wrapBareTestKeys(v);
        const bad = checkMeasurement(v);
        yield bad ? { ok: false, line: 1, error: bad } : { ok: true, line: 1, measurement: v as Measurement };
      }
      return;
    }
    if (!trimmed.includes('\n')) {
      yield parseRecord(trimmed, 1);
      return;
    }
  }
  for (const l of lines(src)) yield parseRecord(l.text, l.line);
}

/** Whole documents (.json/.jsonc) read from a stream are refused beyond this size. */
export const MAX_DOCUMENT_BYTES = 256 * 1024 * 1024;

/**
 * The same records from a stream of chunks (the caller opens the file: this stays free of I/O).
 * JSONL is split on newlines as it arrives, so memory stays bounded by one record; an over-long
 * line is skipped up to its newline and reported, never buffered whole.
 */
export async function* readMeasurementStream(chunks: AsyncIterable<Buffer | string>, name: string): AsyncGenerator<ReadResult> {
  const lower = name.toLowerCase();
  if (!(lower.endsWith('.jsonl') || lower.endsWith('.ndjson'))) {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const c of chunks) {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      size += b.length;
      if (size > MAX_DOCUMENT_BYTES) {
        yield { ok: false, line: 1, error: `document too large: more than ${MAX_DOCUMENT_BYTES} bytes (use .jsonl for many measurements)` };
        return;
      }
      parts.push(b);
    }
    yield* readMeasurements(Buffer.concat(parts).toString('utf8'), name);
    return;
  }
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let skipping = false;
  let skippedLen = 0;
  let line = 1;
  const flush = function* (): Generator<ReadResult> {
    if (skipping) {
      yield { ok: false, line, error: `record too large: ${skippedLen} bytes (limit ${MAX_RECORD_CHARS})` };
    } else if (pendingLen > 0) {
      const s = (pending.length === 1 ? pending[0] : Buffer.concat(pending)).toString('utf8').trim();
      if (s) yield parseRecord(s, line);
    }
    pending = [];
    pendingLen = 0;
    skipping = false;
    skippedLen = 0;
    line++;
  };
  for await (const c of chunks) {
    let b = typeof c === 'string' ? Buffer.from(c) : c;
    for (;;) {
      const nl = b.indexOf(10);
      const piece = nl < 0 ? b : b.subarray(0, nl);
      if (skipping) skippedLen += piece.length;
      else if (pendingLen + piece.length > MAX_RECORD_CHARS) {
        skipping = true;
        skippedLen = pendingLen + piece.length;
        pending = [];
        pendingLen = 0;
      } else if (piece.length > 0) {
        // Copy: the stream may reuse its buffer.
        pending.push(Buffer.from(piece));
        pendingLen += piece.length;
      }
      if (nl < 0) break;
      yield* flush();
      b = b.subarray(nl + 1);
    }
  }
  if (skipping || pendingLen > 0) yield* flush();
}
