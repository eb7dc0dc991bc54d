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
import type { TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import sjson from 'secure-json-parse';
import type { Measurement, Verdict } from '../model/index.js';
import type { MeasurementStore } from '../store/index.js';
import { ApiError, ERRORS, createError, type ErrorCode } from './errors.js';
import type { SubmitBody } from './collector-routes.js';

export const NDJSON = 'application/x-ndjson';

export interface BatchOptions {
  store: MeasurementStore;
  /** The schema of one line: the collector's SubmitBody, the body of POST /api/v1/submit_measurement. */
  lineSchema: TSchema;
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

type Numbered = Array<{ line: number; text: string }>;
type Accepted = { at: number; m: Measurement; verdict: Verdict; reportId: string };

/** The non-empty lines of an NDJSON body, numbered from 1; refuses a wrong content type, an empty or too long batch. */
function numberedLines(req: FastifyRequest<{ Body: string }>, maxItems: number): Numbered {
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
  const numbered: Numbered = [];
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i].trim();
    if (text) numbered.push({ line: i + 1, text });
  }
  if (!numbered.length) throw createError('WS_BAD_REQUEST', 'empty batch: send one submission per line');
  if (numbered.length > maxItems)
    throw createError('WS_BODY_TOO_LARGE', `batch too large: ${numbered.length} lines, the limit is ${maxItems}`);
  return numbered;
}

/** One line's JSON, parsed as Fastify parses the single route's body: __proto__ / constructor.prototype keys are refused. */
function parseLine(text: string): unknown {
  // A text with neither word nor any \u escape cannot hold them: plain JSON.parse (same result, no scan).
  return text.includes('proto') || text.includes('constructor') || text.includes('\\u')
    ? sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
    : JSON.parse(text);
}

/** One batch being answered: its lines, their results so far, and the lines accepted for the store. */
class Batch {
  readonly results: BatchLineResult[];
  readonly accepted: Accepted[] = [];

  constructor(
    private readonly o: BatchOptions,
    private readonly req: FastifyRequest,
    readonly numbered: Numbered,
  ) {
    this.results = new Array(numbered.length);
  }

  refuse(at: number, code: ErrorCode, error: string): void {
    this.results[at] = { line: this.numbered[at].line, error, code, statusCode: ERRORS[code].status };
  }

  /** First pass: JSON and schema per line. Returns the lines' bodies (null where refused) and the report ids they name. */
  parse(): { bodies: Array<SubmitBody | null>; named: Set<string> } {
    // The same compiled schema as POST /api/v1/submit_measurement (Fastify caches it per schema).
    const validate = this.req.compileValidationSchema(this.o.lineSchema, 'body') as ValidateFn;
    const bodies: Array<SubmitBody | null> = new Array(this.numbered.length).fill(null);
    const named = new Set<string>();
    for (let at = 0; at < this.numbered.length; at++) {
      let body: unknown;
      try {
        body = parseLine(this.numbered[at].text);
      } catch (e) {
        this.refuse(at, 'WS_INVALID_JSON', `invalid JSON: ${(e as Error).message}`.slice(0, 300));
        continue;
      }
      if (!validate(body)) {
        this.refuse(at, 'WS_BAD_MEASUREMENT', schemaError(validate));
        continue;
      }
      bodies[at] = body as SubmitBody;
      const rid = (body as SubmitBody).content.report_id;
      if (typeof rid === 'string' && rid) named.add(rid);
    }
    return { bodies, named };
  }

  /** Second pass (after the named reports are looked up): report, depth, scrub and analysis per line. */
  prepare(bodies: Array<SubmitBody | null>): void {
    for (let at = 0; at < this.numbered.length; at++) {
      const body = bodies[at];
      if (!body) continue;
      try {
        this.accepted.push({ at, ...this.o.prepare(this.req, body, this.numbered[at].text) });
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        this.refuse(at, e.code, e.message);
      }
    }
  }

  /** The accepted lines in one store call; returns how many were new. A store failure acknowledges none (503). */
  async store(): Promise<number> {
    const { accepted } = this;
    if (!accepted.length) return 0;
    let put;
    try {
      put = await this.o.store.putMany(accepted.map((a) => ({ m: a.m, verdict: a.verdict })));
    } catch (e) {
      this.req.log.error({ err: e }, 'store failed (batch)');
      throw createError(
        'WS_STORE_UNAVAILABLE',
        `the store failed; none of the ${accepted.length} measurements was acknowledged, retry later`,
      );
    }
    let stored = 0;
    accepted.forEach((a, k) => {
      const r = put[k];
      if (r.inserted) stored++;
      this.results[a.at] = {
        line: this.numbered[a.at].line,
        measurement_uid: r.measurement_uid,
        report_id: a.reportId,
        inserted: r.inserted,
      };
    });
    if (stored) this.o.onResult('stored', stored);
    if (accepted.length - stored) this.o.onResult('duplicate', accepted.length - stored);
    return stored;
  }
}

export function registerBatchRoute(app: FastifyInstance, o: BatchOptions): void {
  // The body arrives as text and is split here: one malformed line is that line's error.
  app.addContentTypeParser(NDJSON, { parseAs: 'string', bodyLimit: o.bodyLimit }, (_req, body, done) => done(null, body));

  app.post<{ Body: string }>('/api/v1/submit_measurements', { bodyLimit: o.bodyLimit }, async (req, reply): Promise<BatchResponse> => {
    const numbered = numberedLines(req, o.maxItems);
    const wait = o.chargeItems(req, numbered.length - 1);
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      throw createError('WS_RATE_LIMITED', `rate limit exceeded by this batch's ${numbered.length} measurements: retry in ${wait} s`);
    }
    const batch = new Batch(o, req, numbered);
    const { bodies, named } = batch.parse();
    if (named.size) await o.lookupReports(req, [...named]);
    batch.prepare(bodies);
    const rejected = numbered.length - batch.accepted.length;
    if (rejected) o.onResult('rejected', rejected);
    const stored = await batch.store();
    const duplicates = batch.accepted.length - stored;
    req.log.info({ lines: numbered.length, stored, duplicates, rejected }, 'batch received');
    return { results: batch.results, stored, duplicates, rejected };
  });
}
