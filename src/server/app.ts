// The collector and query API: `buildApp(opts)` makes the Fastify app; listen.ts puts it on a
// socket. Routes (docs/INTERNAL-API.md "server HTTP API"):
//   collector  POST /report, POST /report/:report_id, POST /report/:report_id/close,
//              POST /api/v1/submit_measurement
//   query      GET /api/v1/measurements, GET /api/v1/measurement/:uid, GET /api/v1/aggregation
//   admin      POST /api/v1/admin/reanalyze, DELETE /api/v1/measurement/:uid  (bearer token)
//   ops        GET /metrics, GET /api/v1/health; the explorer (web/dist) at /
import compress from '@fastify/compress';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { ANALYSIS_VERSION, type AnalysisContext } from '../analysis/index.js';
import { repoRoot, type Measurement, type Verdict } from '../model/index.js';
import {
  StoreInputError,
  parseAsn,
  parseTimeBound,
  normalizeRegion,
  analyzerWith,
  JournaledStore,
  reanalyzeStore,
  safeAnalyzer,
  type Analyzer,
  type MeasurementFilter,
  type MeasurementStore,
  trackChanges,
  type ChangeStore,
} from '../store/index.js';
import changesRoutes from './changes-routes.js';
import anomalyRoutes from './anomaly-routes.js';
import { registerBatchRoute } from './batch.js';
import { ApiError, ERRORS, createError, type ErrorBody, type ErrorCode } from './errors.js';
import { Metrics } from './metrics.js';
import { RateLimiter, type RateLimitOptions } from './ratelimit.js';
import { ClosedReports } from './closed-reports.js';
import { issueReportId, parseReportId, reportMismatch } from './report-id.js';
import {
  AggregationQuerySchema,
  ListQuery,
  ListResponse,
  OpenReportBody,
  ReanalyzeBody,
  ReportParams,
  SubmitBody,
  UidParams,
} from './schemas.js';
import { jsonDepth, mayHoldAddress, scrubMeasurement } from './scrub.js';

/** Deeper than any real measurement (OONI's nest about 8 levels); deeper input is refused, not recursed into. */
export const MAX_JSON_DEPTH = 64;
import { registerStatic } from './static.js';

export interface AppOptions {
  store: MeasurementStore;
  /** The analysis run on ingest and by reanalyze: default analyzeMeasurement(m, analysisContext). */
  analyze?: Analyzer;
  /** Fingerprints, ASN lookup, lab ranges for the default analysis (loaded by the caller). */
  analysisContext?: AnalysisContext;
  /** The version recorded with verdicts and compared by reanalyze's only_outdated (default ANALYSIS_VERSION). */
  analysisVersion?: string;
  /** Largest accepted body in bytes (default 4 MiB). */
  bodyLimit?: number;
  /** Largest body of POST /api/v1/submit_measurements in bytes (default 16 MiB). */
  batchBodyLimit?: number;
  /** Most measurements in one batch (default 5000); each counts against the rate limit. */
  batchMaxItems?: number;
  /** Bearer token for admin routes; admin routes are disabled without one. */
  adminToken?: string;
  /** Per-client limit; false disables (default 6000 requests per minute). */
  rateLimit?: RateLimitOptions | false;
  /** Secret for report ids (share it between collectors behind one balancer). Default: random. */
  reportSecret?: string | Buffer;
  /** Directory of the built explorer; default web/dist when it exists; false disables. */
  webRoot?: string | false;
  /** Fastify/pino logger options (structured JSON logs); default off. */
  logger?: boolean | Record<string, unknown>;
  trustProxy?: boolean | string | string[];
  /** Change detection on ingest and its routes (/api/v1/changes, .atom, /api/v1/states); off without one. */
  changes?: ChangeStore;
}

export const BACKEND_VERSION = 'wallscope-collector/1';

function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: message, code, statusCode: ERRORS[code].status };
}

function sendError(reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  return reply.code(ERRORS[code].status).type('application/json; charset=utf-8').send(errorBody(code, message));
}

/** CSV per RFC 4180; cells that a spreadsheet would run as a formula get a leading quote. */
export function toCsv(columns: string[], rows: Array<Record<string, unknown>>): string {
  const cell = (v: unknown): string => {
    let s = v === null || v === undefined ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns.join(','), ...rows.map((r) => columns.map((c) => cell(r[c])).join(','))].join('\r\n') + '\r\n';
}

function filterFrom(q: Record<string, unknown>): MeasurementFilter {
  const f: MeasurementFilter = {};
  const s = (k: string) => (typeof q[k] === 'string' ? (q[k] as string) : undefined);
  if (s('probe_cc')) f.probe_cc = s('probe_cc');
  if (s('probe_asn')) f.probe_asn = parseAsn(s('probe_asn')!);
  if (s('domain')) f.domain = s('domain')!.toLowerCase();
  if (s('region')) {
    const r = normalizeRegion(s('region'));
    if (r === null) throw new StoreInputError('region: empty after trimming');
    f.region = r;
  }
  if (s('input')) f.input = s('input');
  if (s('test_name')) f.test_name = s('test_name');
  if (s('category_code')) f.category_code = s('category_code');
  if (s('since')) f.since = parseTimeBound(s('since')!, 'since');
  if (s('until')) f.until = parseTimeBound(s('until')!, 'until');
  if (s('blocking')) f.blocking = s('blocking');
  if (s('mechanism')) f.mechanism = s('mechanism');
  if (s('layer')) f.layer = s('layer');
  if (q.confirmed === 'true' || q.confirmed === 'false') f.confirmed = q.confirmed === 'true';
  if (q.anomaly === 'true' || q.anomaly === 'false') f.anomaly = q.anomaly === 'true';
  return f;
}

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const store = opts.changes ? trackChanges(opts.store, opts.changes) : opts.store;
  const analysisVersion = opts.analysisVersion ?? ANALYSIS_VERSION;
  const ctx = opts.analysisContext;
  const analyze = safeAnalyzer(opts.analyze ?? analyzerWith(ctx), analysisVersion);
  const secret = opts.reportSecret === undefined ? randomBytes(32) : Buffer.from(opts.reportSecret);
  const limiter = opts.rateLimit === false ? null : new RateLimiter(opts.rateLimit ?? { max: 6000, windowMs: 60_000 });
  const adminDigest = opts.adminToken ? createHash('sha256').update(opts.adminToken).digest() : null;

  const app = Fastify({
    bodyLimit: opts.bodyLimit ?? 4 * 1024 * 1024,
    // Robustness: a client that trickles its request (slowloris) is cut off.
    requestTimeout: 60_000,
    trustProxy: opts.trustProxy ?? false,
    // Privacy: the default request serializer logs the client's address; ours does not.
    logger:
      opts.logger === undefined || opts.logger === false
        ? false
        : {
            ...(typeof opts.logger === 'object' ? opts.logger : {}),
            serializers: { req: (r: FastifyRequest) => ({ method: r.method, url: r.url.slice(0, 300) }) },
          },
    // No coercion: a measurement is stored exactly as submitted or refused, never "fixed".
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } },
  });

  // The API speaks JSON only: a text/plain body is a 415, not a string for the schema to puzzle over.
  app.removeContentTypeParser('text/plain');

  // Responses (API and explorer files) compressed per Accept-Encoding: br, gzip or deflate, above
  // 1 KiB (the collector's small acknowledgements stay plain). Request bodies are not inflated:
  // a compressed submission could expand far beyond the body limit.
  await app.register(compress, { global: true, globalDecompression: false, encodings: ['br', 'gzip', 'deflate'], threshold: 1024 });

  // ---- metrics
  const metrics = new Metrics();
  const countRequest = metrics.counter('wallscope_http_requests_total', 'HTTP requests by route, method and status.');
  const observe = metrics.histogram('wallscope_http_request_duration_seconds', 'HTTP request latency by route.');
  const countIngest = metrics.counter('wallscope_measurements_total', 'Submitted measurements by result (stored, duplicate, rejected).');
  const countScrub = metrics.counter('wallscope_scrubbed_strings_total', "Strings from which the collector removed the submitter's address.");
  metrics.gauge('process_resident_memory_bytes', 'Resident memory of the server process.', () => process.memoryUsage().rss);
  metrics.gauge('wallscope_uptime_seconds', 'Seconds since the app was built.', () => process.uptime());
  if (store instanceof JournaledStore) {
    metrics.gauge('wallscope_journal_backlog', 'Measurements acknowledged from the local journal and not yet shipped to the store.', () => store.stats().backlog);
    metrics.gauge('wallscope_journal_refused', 'Journaled measurements the store refused alone (kept in the journal file).', () => store.stats().refused);
    metrics.gauge('wallscope_journal_failed_shipments', 'Shipments from the journal that failed (retried with backoff).', () => store.stats().failedShipments);
  }

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('content-security-policy', "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
    if (limiter && req.url !== '/metrics') {
      const wait = limiter.hit(req.ip);
      if (wait > 0) {
        reply.header('retry-after', String(wait));
        return sendError(reply, 'WS_RATE_LIMITED', `rate limit exceeded: retry in ${wait} s`);
      }
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    countRequest({ route, method: req.method, status: String(reply.statusCode) });
    observe({ route }, reply.elapsedTime / 1000);
  });

  // ---- errors: every failure leaves as { error, code, statusCode }
  app.setErrorHandler((err: Error & { code?: string; statusCode?: number; validation?: unknown; validationContext?: string }, req, reply) => {
    // A refused single submission counts as rejected here, once (the batch route counts its lines itself).
    const collector = req.routeOptions.url === '/report/:report_id' || req.routeOptions.url === '/api/v1/submit_measurement';
    if (err instanceof ApiError) {
      if (collector && err.statusCode >= 400 && err.statusCode < 500) countIngest({ result: 'rejected' });
      return sendError(reply, err.code, err.message);
    }
    if (err instanceof StoreInputError) return sendError(reply, 'WS_BAD_REQUEST', err.message);
    if (err.validation) {
      const where = err.validationContext ?? 'request';
      if (collector) countIngest({ result: 'rejected' });
      return sendError(reply, collector && where === 'body' ? 'WS_BAD_MEASUREMENT' : 'WS_BAD_REQUEST', `invalid ${where}: ${err.message}`.slice(0, 500));
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 'WS_BODY_TOO_LARGE', `body too large: the limit is ${req.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit} bytes`);
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 'WS_UNSUPPORTED_MEDIA_TYPE', 'unsupported content type: send application/json');
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY')
      return sendError(reply, 'WS_INVALID_JSON', `invalid JSON body: ${err.message}`.slice(0, 300));
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) return sendError(reply, 'WS_BAD_REQUEST', err.message.slice(0, 300));
    req.log.error({ err }, 'unhandled error');
    return sendError(reply, 'WS_INTERNAL', 'internal error');
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 'WS_NOT_FOUND', `no route ${req.method} ${req.url.slice(0, 200)}`));

  // ---- collector
  /** Checks, scrubs and analyses one submission (the single and the batch route alike); throws ApiError to refuse it. */
  function prepare(req: FastifyRequest, body: SubmitBody, reportId: string, text?: string): { m: Measurement; verdict: Verdict } {
    if (body.format.toLowerCase() !== 'json') throw createError('WS_BAD_FORMAT', `unsupported format ${JSON.stringify(body.format)}: only "json"`);
    if (jsonDepth(body.content, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw createError('WS_BAD_MEASUREMENT', `the measurement is nested deeper than ${MAX_JSON_DEPTH} levels`);
    // With the submission's JSON text at hand (batch lines), a text that cannot hold the address skips the walk.
    const { value, replaced } =
      text !== undefined && !mayHoldAddress(text, req.ip) ? { value: body.content as unknown as Measurement, replaced: 0 } : scrubMeasurement(body.content as unknown as Measurement, req.ip);
    if (replaced) countScrub({}, replaced);
    // The uid is ours to assign (a submitter cannot choose or collide with one); report_id goes last,
    // which lets the store hash and serialise the measurement in one pass (serializeMeasurement).
    const { measurement_uid: _uid, report_id: _rid, ...rest } = value;
    const m: Measurement = { ...rest, report_id: reportId } as Measurement;
    return { m, verdict: analyze(m) };
  }

  async function ingest(req: FastifyRequest, body: SubmitBody, reportId: string): Promise<{ measurement_uid: string; inserted: boolean }> {
    const { m, verdict } = prepare(req, body, reportId);
    let r;
    try {
      r = await store.put(m, verdict);
    } catch (e) {
      req.log.error({ err: e }, 'store failed');
      throw createError('WS_STORE_UNAVAILABLE', 'the store failed; the measurement was not stored, retry later');
    }
    countIngest({ result: r.inserted ? 'stored' : 'duplicate' });
    req.log.info({ measurement_uid: r.measurement_uid, inserted: r.inserted, test_name: m.test_name, probe_cc: m.probe_cc, analysis_version: verdict.analysis_version }, 'measurement received');
    return r;
  }

  // A report per (country, network, test) and hour for submissions that come without one, as a
  // probe opening one report per test run would; bounded.
  const reportCache = new Map<string, { id: string; until: number }>();
  function reportFor(c: SubmitBody['content']): string {
    const key = `${c.probe_cc} ${c.probe_asn} ${c.test_name}`;
    const now = Date.now();
    const hit = reportCache.get(key);
    if (hit && hit.until > now) return hit.id;
    if (reportCache.size >= 10_000) reportCache.clear();
    const id = issueReportId(c, secret);
    reportCache.set(key, { id, until: now + 3600_000 });
    return id;
  }

  // Closed reports: the store remembers them (across restarts, between collectors on one store);
  // this process caches them (closed-reports.ts) so a run of submissions to an open report asks
  // the store about it once per 30 s, not once per measurement.
  const closedReports = new ClosedReports(store);
  const closedError = (reportId: string) =>
    createError('WS_REPORT_CLOSED', `report ${JSON.stringify(reportId.slice(0, 80))} was closed and takes no more measurements: open a new one with POST /report`);

  /** Signature and consistency, and a report known (in memory) to be closed; refuseClosed() asks the store. */
  function checkReport(reportId: string, content: SubmitBody['content'], requireSigned: boolean): void {
    const parsed = parseReportId(reportId, secret);
    if (!parsed || (requireSigned && !parsed.signed)) {
      throw createError('WS_UNKNOWN_REPORT', `unknown report id ${JSON.stringify(reportId.slice(0, 80))}: open one with POST /report`);
    }
    const bad = reportMismatch(parsed, content);
    if (bad) throw createError('WS_REPORT_MISMATCH', bad);
    if (parsed.signed && closedReports.knownClosed(reportId)) throw closedError(reportId);
  }

  /**
   * Whether the report is closed, from the cache or the store (which caches the answer). Only our
   * signed ids can be closed: others are never looked up. A store failure is a 503 saying `unstored`.
   */
  async function isClosed(req: FastifyRequest, reportId: string, unstored: string): Promise<boolean> {
    if (!parseReportId(reportId, secret)?.signed) return false;
    try {
      return await closedReports.isClosed(reportId);
    } catch (e) {
      req.log.error({ err: e }, 'store failed (closed reports)');
      throw createError('WS_STORE_UNAVAILABLE', `the store failed; ${unstored}, retry later`);
    }
  }

  /** Refuses a submission to a closed report. */
  async function refuseClosed(req: FastifyRequest, reportId: string): Promise<void> {
    if (await isClosed(req, reportId, 'the measurement was not stored')) throw closedError(reportId);
  }

  /** The report of a submission without a report URL: its own report_id when it has OONI's shape and agrees with the measurement, else one of ours. */
  function reportOfSubmission(c: SubmitBody['content']): string {
    const own = typeof c.report_id === 'string' ? c.report_id : '';
    if (!own) return reportFor(c);
    checkReport(own, c, false);
    return own;
  }

  app.post<{ Body: OpenReportBody }>('/report', { schema: { body: OpenReportBody } }, async (req) => {
    if (req.body.format.toLowerCase() !== 'json') throw createError('WS_BAD_FORMAT', `unsupported format ${JSON.stringify(req.body.format)}: only "json"`);
    return { report_id: issueReportId(req.body, secret), supported_formats: ['json'], backend_version: BACKEND_VERSION };
  });

  app.post<{ Params: { report_id: string }; Body: SubmitBody }>('/report/:report_id', { schema: { params: ReportParams, body: SubmitBody } }, async (req) => {
    checkReport(req.params.report_id, req.body.content, true);
    await refuseClosed(req, req.params.report_id);
    const r = await ingest(req, req.body, req.params.report_id);
    return { measurement_uid: r.measurement_uid };
  });

  app.post<{ Params: { report_id: string } }>('/report/:report_id/close', { schema: { params: ReportParams } }, async (req) => {
    const reportId = req.params.report_id;
    const parsed = parseReportId(reportId, secret);
    if (!parsed?.signed) throw createError('WS_UNKNOWN_REPORT', `unknown report id ${JSON.stringify(reportId.slice(0, 80))}`);
    // Idempotent: closing a closed report answers {} again. The store has it before we answer.
    try {
      await closedReports.close(reportId);
    } catch (e) {
      req.log.error({ err: e }, 'store failed (close report)');
      throw createError('WS_STORE_UNAVAILABLE', 'the store failed; the report was not closed, retry later');
    }
    // Submissions without a report_id are not given this report any more.
    for (const [k, v] of reportCache) if (v.id === reportId) reportCache.delete(k);
    req.log.info({ report_id: reportId }, 'report closed');
    return {};
  });

  app.post<{ Body: SubmitBody }>('/api/v1/submit_measurement', { schema: { body: SubmitBody } }, async (req) => {
    const reportId = reportOfSubmission(req.body.content);
    // A report the submitter named may have been closed (one we assigned is never refused).
    if (reportId === req.body.content.report_id) await refuseClosed(req, reportId);
    const r = await ingest(req, req.body, reportId);
    return { measurement_uid: r.measurement_uid, report_id: reportId };
  });

  registerBatchRoute(app, {
    store,
    bodyLimit: opts.batchBodyLimit ?? 16 * 1024 * 1024,
    maxItems: opts.batchMaxItems ?? 5000,
    prepare: (req, body, text) => {
      const reportId = reportOfSubmission(body.content);
      return { ...prepare(req, body, reportId, text), reportId };
    },
    // Warms the closed-report cache, so checkReport() (in prepare) refuses lines to a closed report.
    lookupReports: async (req, reportIds) => {
      await Promise.all(reportIds.map((id) => isClosed(req, id, 'none of the measurements was acknowledged')));
    },
    chargeItems: (req, extra) => (limiter && extra > 0 ? limiter.hit(req.ip, Date.now(), extra) : 0),
    onResult: (result, n) => countIngest({ result }, n),
  });

  // ---- query
  app.get<{ Querystring: ListQuery }>('/api/v1/measurements', { schema: { querystring: ListQuery, response: { 200: ListResponse } } }, async (req) => {
    const { limit, cursor, ...rest } = req.query;
    return store.list(filterFrom(rest), { limit: limit ? Number(limit) : 50, cursor });
  });

  app.get<{ Params: { uid: string } }>('/api/v1/measurement/:uid', { schema: { params: UidParams } }, async (req) => {
    const got = await store.get(req.params.uid);
    if (!got) throw createError('WS_NOT_FOUND', `no measurement ${req.params.uid}`);
    return { measurement_uid: got.measurement_uid, measurement: got.measurement, verdict: got.verdict, analysis_version: got.analysis_version };
  });

  app.get<{ Querystring: AggregationQuerySchema }>('/api/v1/aggregation', { schema: { querystring: AggregationQuerySchema } }, async (req, reply) => {
    const { axis_x, axis_y, time_grain, format, ...rest } = req.query;
    if (axis_y && !axis_x) throw createError('WS_BAD_REQUEST', 'axis_y needs axis_x');
    const result = await store.aggregate({ axis_x, axis_y, time_grain, filter: filterFrom(rest) });
    const axes = [axis_x, axis_y].filter((a): a is NonNullable<typeof a> => !!a);
    if (format?.toLowerCase() === 'csv') {
      reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="wallscope-aggregation.csv"');
      return toCsv([...axes, 'measurement_count', 'ok_count', 'anomaly_count', 'confirmed_count', 'failure_count'], result);
    }
    return { result, dimension_count: axes.length };
  });

  app.get('/api/v1/health', async () => ({ ok: true, store: store.kind, schema_version: await store.schemaVersion(), analysis_version: analysisVersion }));

  app.get('/metrics', async (_req, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return metrics.render();
  });

  // ---- admin
  function requireAdmin(req: FastifyRequest): void {
    if (!adminDigest) throw createError('WS_ADMIN_DISABLED', 'admin routes are disabled: start the server with an admin token');
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(h);
    const given = createHash('sha256').update(m ? m[1] : '').digest();
    if (!m || !timingSafeEqual(given, adminDigest)) throw createError('WS_UNAUTHORIZED', 'admin route: missing or wrong bearer token');
  }

  app.post<{ Body: ReanalyzeBody }>('/api/v1/admin/reanalyze', { schema: { body: ReanalyzeBody } }, async (req) => {
    requireAdmin(req);
    const r = await reanalyzeStore(store, analyze, { onlyOutdatedFor: req.body.only_outdated ? analysisVersion : undefined, limit: req.body.limit });
    req.log.info({ ...r, analysis_version: analysisVersion }, 'reanalyzed');
    return { ...r, analysis_version: analysisVersion };
  });

  app.delete<{ Params: { uid: string } }>('/api/v1/measurement/:uid', { schema: { params: UidParams } }, async (req) => {
    requireAdmin(req);
    if (!(await store.delete(req.params.uid))) throw createError('WS_NOT_FOUND', `no measurement ${req.params.uid}`);
    req.log.info({ measurement_uid: req.params.uid }, 'measurement deleted');
    return { deleted: true, measurement_uid: req.params.uid };
  });

  // ---- explorer
  await app.register(changesRoutes, opts.changes ? { changes: opts.changes } : {});
  await app.register(anomalyRoutes, { store });
  if (opts.webRoot !== false) registerStatic(app, opts.webRoot ?? join(repoRoot, 'web', 'dist'));

  await app.ready();
  return app;
}
