// POST /api/v1/submit_measurements: many measurements in one request, for probes flushing a spool
// and for importers. OONI's protocol (one measurement per POST) stays the reference; this route
// speaks the same submissions, one per line (NDJSON, application/x-ndjson):
//
//   {"format":"json","content":{...measurement...}}\n   (the body of POST /api/v1/submit_measurement)
//
// Every line is checked exactly as the single route checks it (the same schema, report, depth,
// scrub and analysis); the lines that pass are stored in ONE store call (one SQLite transaction,
// one ClickHouse insert), so the answer comes after all of them are durable or none is
// acknowledged. The answer lists one result per non-empty line, in order:
//   { line, measurement_uid, report_id, inserted }      stored now (inserted) or already (duplicate)
//   { line, error, code, statusCode }                   refused, as the single route would refuse it
// A bad line never fails its neighbours. The whole request fails (and stores nothing) only when it
// is too large, has more than maxItems lines, or the store fails (503: retry the batch; the uids
// are idempotent, so a retry after a lost answer stores nothing twice).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import sjson from 'secure-json-parse';
import type { Measurement, Verdict } from '../model/index.js';
import type { MeasurementStore } from '../store/index.js';
import { ApiError, ERRORS, createError, type ErrorCode } from './errors.js';
import { SubmitBody } from './schemas.js';

export const NDJSON = 'application/x-ndjson';

export interface BatchOptions {
  store: MeasurementStore;
  /** Checks, scrubs and analyses one submission as the single route does; throws ApiError to refuse it. */
  prepare: (req: FastifyRequest, body: SubmitBody, text: string) => { m: Measurement; verdict: Verdict; reportId: string };
  /**
   * Called once per batch with the report ids its lines name, before any line is prepared: looks
   * up (and caches) which are closed, so prepare() refuses lines to a closed report synchronously.
   * Rejects (503, nothing acknowledged) when the lookup fails.
   */
  lookupReports: (req: FastifyRequest, reportIds: string[]) => Promise<void>;
  /** Largest batch body in bytes. */
  bodyLimit: number;
  /** Most lines in one batch. */
  maxItems: number;
  /** Counts the batch's items beyond the one request against the client's rate limit; > 0 = refuse (seconds to wait). */
  chargeItems: (req: FastifyRequest, extra: number) => number;
  onResult: (result: 'stored' | 'duplicate' | 'rejected', n: number) => void;
}

export type BatchLineResult =
  | { line: number; measurement_uid: string; report_id: string; inserted: boolean }
  | { line: number; error: string; code: ErrorCode; statusCode: number };

export interface BatchResponse {
  results: BatchLineResult[];
  stored: number;
  duplicates: number;
  rejected: number;
}

type ValidateFn = ((v: unknown) => boolean) & { errors?: Array<{ instancePath?: string; message?: string }> | null };

function schemaError(validate: ValidateFn): string {
  const e = validate.errors?.[0];
  return `invalid body: body${e?.instancePath ?? ''} ${e?.message ?? 'does not match the schema'}`.slice(0, 500);
}

export function registerBatchRoute(app: FastifyInstance, o: BatchOptions): void {
  // The body arrives as text and is split here: one malformed line is that line's error.
  app.addContentTypeParser(NDJSON, { parseAs: 'string', bodyLimit: o.bodyLimit }, (_req, body, done) => done(null, body));

  app.post<{ Body: string }>('/api/v1/submit_measurements', { bodyLimit: o.bodyLimit }, async (req, reply): Promise<BatchResponse> => {
    const ct = String(req.headers['content-type'] ?? '')
      .split(';')[0]
      .trim()
      .toLowerCase();
    if (ct !== NDJSON || typeof req.body !== 'string')
      throw createError(
        'WS_UNSUPPORTED_MEDIA_TYPE',
        `unsupported content type: send ${NDJSON}, one {"format":"json","content":{...}} per line`,
      );
    const lines = req.body.split('\n');
    const numbered: Array<{ line: number; text: string }> = [];
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i].trim();
      if (text) numbered.push({ line: i + 1, text });
    }
    if (!numbered.length) throw createError('WS_BAD_REQUEST', 'empty batch: send one submission per line');
    if (numbered.length > o.maxItems)
      throw createError('WS_BODY_TOO_LARGE', `batch too large: ${numbered.length} lines, the limit is ${o.maxItems}`);
    const wait = o.chargeItems(req, numbered.length - 1);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      throw createError('WS_RATE_LIMITED', `rate limit exceeded by this batch's ${numbered.length} measurements: retry in ${wait} s`);
    }

    // The same compiled schema as POST /api/v1/submit_measurement (Fastify caches it per schema).
    const validate = req.compileValidationSchema(SubmitBody, 'body') as ValidateFn;
    const results: BatchLineResult[] = new Array(numbered.length);
    const accepted: Array<{ at: number; m: Measurement; verdict: Verdict; reportId: string }> = [];
    const refuse = (at: number, code: ErrorCode, error: string) => {
      results[at] = { line: numbered[at].line, error, code, statusCode: ERRORS[code].status };
    };
    // First pass: JSON and schema per line; second pass (after the named reports are looked up): the rest.
    const bodies: Array<SubmitBody | null> = new Array(numbered.length).fill(null);
    const named = new Set<string>();
    for (let at = 0; at < numbered.length; at++) {
      let body: unknown;
      try {
        // As Fastify parses the single route's body: __proto__ / constructor.prototype keys are refused.
        // A text with neither word nor any \u escape cannot hold them: plain JSON.parse (same result, no scan).
        const text = numbered[at].text;
        body =
          text.includes('proto') || text.includes('constructor') || text.includes('\\u')
            ? sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
            : JSON.parse(text);
      } catch (e) {
        refuse(at, 'WS_INVALID_JSON', `invalid JSON: ${(e as Error).message}`.slice(0, 300));
        continue;
      }
      if (!validate(body)) {
        refuse(at, 'WS_BAD_MEASUREMENT', schemaError(validate));
        continue;
      }
      bodies[at] = body as SubmitBody;
      const rid = (body as SubmitBody).content.report_id;
      if (typeof rid === 'string' && rid) named.add(rid);
    }
    if (named.size) await o.lookupReports(req, [...named]);
    for (let at = 0; at < numbered.length; at++) {
      const body = bodies[at];
      if (!body) continue;
      try {
        accepted.push({ at, ...o.prepare(req, body, numbered[at].text) });
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        refuse(at, e.code, e.message);
      }
    }
    const rejected = numbered.length - accepted.length;
    if (rejected) o.onResult('rejected', rejected);

    let stored = 0;
    if (accepted.length) {
      let put;
      try {
        put = await o.store.putMany(accepted.map((a) => ({ m: a.m, verdict: a.verdict })));
      } catch (e) {
        req.log.error({ err: e }, 'store failed (batch)');
        throw createError(
          'WS_STORE_UNAVAILABLE',
          `the store failed; none of the ${accepted.length} measurements was acknowledged, retry later`,
        );
      }
      accepted.forEach((a, k) => {
        const r = put[k];
        if (r.inserted) stored++;
        results[a.at] = { line: numbered[a.at].line, measurement_uid: r.measurement_uid, report_id: a.reportId, inserted: r.inserted };
      });
      if (stored) o.onResult('stored', stored);
      if (accepted.length - stored) o.onResult('duplicate', accepted.length - stored);
    }
    req.log.info({ lines: numbered.length, stored, duplicates: accepted.length - stored, rejected }, 'batch received');
    return { results, stored, duplicates: accepted.length - stored, rejected };
  });
}
