// The collector and query API: `buildApp(opts)` makes the Fastify app; listen.ts puts it on a
// socket. buildApp sets what every route shares (compression, security headers, rate limit,
// request metrics, one error shape) and registers one plugin per part, each in its own file
// (docs/INTERNAL-API.md "server HTTP API"):
//   collector-routes.ts  POST /report, /report/:report_id, /report/:report_id/close,
//                        /api/v1/submit_measurement, /api/v1/submit_measurements (batch.ts)
//   query-routes.ts      GET /api/v1/measurements, /api/v1/measurement/:uid, /api/v1/aggregation, /api/v1/health
//   admin-routes.ts      POST /api/v1/admin/reanalyze, DELETE /api/v1/measurement/:uid (bearer token)
//   metrics-routes.ts    GET /metrics
//   lists-routes.ts      GET /api/v1/lists/... (list snapshots: sizes, overlap, diff, overblocking, export)
//   static.ts            the explorer (web/dist) at /
// A new part: its own `<name>-routes.ts` plugin and one `app.register(...)` line in registerParts.
import compress from '@fastify/compress';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { ANALYSIS_VERSION, type AnalysisContext } from '../analysis/index.js';
import { StoreInputError, trackChanges, type ChangeStore, type ListStore, type MeasurementStore } from '../store/index.js';
import adminRoutes from './admin-routes.js';
import anomalyRoutes from './anomaly-routes.js';
import changesRoutes from './changes-routes.js';
import collectorRoutes from './collector-routes.js';
import listsRoutes from './lists-routes.js';
import { sendError, type ServerContext } from './context.js';
import { ApiError } from './errors.js';
import metricsRoutes, { serverMetrics } from './metrics-routes.js';
import queryRoutes from './query-routes.js';
import { RateLimiter, type RateLimitOptions } from './ratelimit.js';
import { SCHEMA_CHECKING } from './schemas.js';
import { analyzerWith, safeAnalyzer, type Analyzer } from './reanalyze.js';
import platformRoutes from './platform-routes.js';
import { registerStatic } from './static.js';

export { BACKEND_VERSION, MAX_JSON_DEPTH } from './collector-routes.js';
export { toCsv } from './query-routes.js';

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
  /** Directory of the built explorer (the cli passes web/dist: the server does not look for the
   * repository itself, docs/ARCHITECTURE.md); false serves none. */
  webRoot: string | false;
  /**
   * The IP territory tables the explorer's self-check searches in the browser (the cli passes the
   * probe's territoryTablesV4: the server does no file I/O of its own); absent: that route is 404.
   */
  territoryTables?: () => unknown;
  /** Change detection on ingest and its routes (/api/v1/changes, .atom, /api/v1/states); off without one. */
  changes?: ChangeStore;
  /** Lists as data (lists-routes.ts: /api/v1/lists/...); absent: only /api/v1/lists/status answers. */
  lists?: ListStore;
  /** Fastify/pino logger options (structured JSON logs); default off. */
  logger?: boolean | Record<string, unknown>;
  trustProxy?: boolean | string | string[];
}

/** The Fastify app of a collector/query server over `opts.store`, ready (app.ready()). */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const analysisVersion = opts.analysisVersion ?? ANALYSIS_VERSION;
  const ctx: ServerContext = {
    // With change detection, every stored measurement also updates the (target, network, region) states.
    store: opts.changes ? trackChanges(opts.store, opts.changes) : opts.store,
    analyze: safeAnalyzer(opts.analyze ?? analyzerWith(opts.analysisContext), analysisVersion),
    analysisVersion,
    secret: opts.reportSecret === undefined ? randomBytes(32) : Buffer.from(opts.reportSecret),
    limiter: opts.rateLimit === false ? null : new RateLimiter(opts.rateLimit ?? { max: 6000, windowMs: 60_000 }),
    metrics: serverMetrics(opts.store),
  };
  const app = createFastify(opts);
  // Responses (API and explorer files) compressed per Accept-Encoding: br, gzip or deflate, above
  // 1 KiB (the collector's small acknowledgements stay plain). Request bodies are not inflated:
  // a compressed submission could expand far beyond the body limit.
  await app.register(compress, { global: true, globalDecompression: false, encodings: ['br', 'gzip', 'deflate'], threshold: 1024 });
  addSharedHooks(app, ctx);
  setErrorHandlers(app, ctx);
  await registerParts(app, ctx, opts);
  await app.ready();
  return app;
}

function createFastify(opts: AppOptions): FastifyInstance {
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
    ajv: SCHEMA_CHECKING,
  });
  // The API speaks JSON only: a text/plain body is a 415, not a string for the schema to puzzle over.
  app.removeContentTypeParser('text/plain');
  return app;
}

/** Root hooks, so every part has them: security headers, the per-client rate limit, request metrics. */
function addSharedHooks(app: FastifyInstance, ctx: ServerContext): void {
  const { limiter, metrics } = ctx;
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header(
      'content-security-policy',
      "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    );
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
    metrics.countRequest({ route, method: req.method, status: String(reply.statusCode) });
    metrics.observe({ route }, reply.elapsedTime / 1000);
  });
}

/** Every failure leaves as { error, code, statusCode } (errors.ts). */
function setErrorHandlers(app: FastifyInstance, ctx: ServerContext): void {
  const { countIngest } = ctx.metrics;
  app.setErrorHandler(
    (err: Error & { code?: string; statusCode?: number; validation?: unknown; validationContext?: string }, req, reply) => {
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
        return sendError(
          reply,
          collector && where === 'body' ? 'WS_BAD_MEASUREMENT' : 'WS_BAD_REQUEST',
          `invalid ${where}: ${err.message}`.slice(0, 500),
        );
      }
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
        return sendError(
          reply,
          'WS_BODY_TOO_LARGE',
          `body too large: the limit is ${req.routeOptions.bodyLimit ?? app.initialConfig.bodyLimit} bytes`,
        );
      if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
        return sendError(reply, 'WS_UNSUPPORTED_MEDIA_TYPE', 'unsupported content type: send application/json');
      if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY')
        return sendError(reply, 'WS_INVALID_JSON', `invalid JSON body: ${err.message}`.slice(0, 300));
      if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500)
        return sendError(reply, 'WS_BAD_REQUEST', err.message.slice(0, 300));
      req.log.error({ err }, 'unhandled error');
      return sendError(reply, 'WS_INTERNAL', 'internal error');
    },
  );
  app.setNotFoundHandler((req, reply) => sendError(reply, 'WS_NOT_FOUND', `no route ${req.method} ${req.url.slice(0, 200)}`));
}

/** The parts of the server, one plugin each (one line per part). */
async function registerParts(app: FastifyInstance, ctx: ServerContext, opts: AppOptions): Promise<void> {
  await app.register(collectorRoutes, {
    ...ctx,
    batchBodyLimit: opts.batchBodyLimit ?? 16 * 1024 * 1024,
    batchMaxItems: opts.batchMaxItems ?? 5000,
  });
  await app.register(queryRoutes, ctx);
  await app.register(adminRoutes, { ...ctx, adminToken: opts.adminToken });
  await app.register(metricsRoutes, ctx);
  await app.register(platformRoutes, { store: ctx.store, territoryTables: opts.territoryTables });
  await app.register(changesRoutes, opts.changes ? { changes: opts.changes } : {});
  await app.register(anomalyRoutes, { store: ctx.store });
  await app.register(listsRoutes, opts.lists ? { lists: opts.lists } : {});
  if (opts.webRoot !== false) await registerStatic(app, opts.webRoot);
}
