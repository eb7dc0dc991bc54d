// The collector: OONI's report protocol (POST /report, /report/:report_id, /report/:report_id/close),
// POST /api/v1/submit_measurement and the NDJSON batch route (batch.ts). Every submission is
// checked, scrubbed of the submitter's address (scrub.ts), analysed and stored; report ids are
// signed (report-id.ts) and closed reports refuse more (closed-reports.ts).
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Measurement, Verdict } from '../model/index.js';
import { registerBatchRoute } from './batch.js';
import { ClosedReports } from './closed-reports.js';
import type { ServerContext } from './context.js';
import { createError } from './errors.js';
import { issueReportId, parseReportId, reportMismatch } from './report-id.js';
import { CC, Str, TEST_NAME } from './schemas.js';
import { jsonDepth, mayHoldAddress, scrubMeasurement } from './scrub.js';

// The collector's schemas (the batch route checks each line against SubmitBody too).
// OONI's probe_asn (the query API's filter also takes the bare number: its own schema).
const ASN = Str(12, '^AS[0-9]{1,10}$');
const OONI_TIME = Str(19, '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$');

/** What the collector needs of a measurement (OONI data format 0.2.0); other keys pass through. */
export const MeasurementSchema = Type.Object(
  {
    data_format_version: Str(16),
    input: Type.Union([Str(8192), Type.Null()]),
    measurement_start_time: OONI_TIME,
    probe_asn: ASN,
    probe_cc: CC,
    probe_ip: Type.Optional(Str(64)),
    report_id: Type.Optional(Str(256)),
    software_name: Str(128),
    software_version: Str(64),
    test_name: TEST_NAME,
    test_start_time: Type.Optional(OONI_TIME),
    test_version: Type.Optional(Str(64)),
    test_keys: Type.Object({}, { additionalProperties: true }),
    annotations: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: true },
);

export const OpenReportBody = Type.Object(
  {
    data_format_version: Str(16),
    format: Str(16),
    probe_asn: ASN,
    probe_cc: CC,
    software_name: Str(128),
    software_version: Str(64),
    test_name: TEST_NAME,
    test_start_time: Type.Optional(Str(32)),
    test_version: Str(64),
  },
  { additionalProperties: true },
);
export type OpenReportBody = Static<typeof OpenReportBody>;

export const SubmitBody = Type.Object({ format: Str(16), content: MeasurementSchema }, { additionalProperties: true });
export type SubmitBody = Static<typeof SubmitBody>;

export const ReportParams = Type.Object({ report_id: Str(256) });

export const BACKEND_VERSION = 'wallscope-collector/1';
/** Deeper than any real measurement (OONI's nest about 8 levels); deeper input is refused, not recursed into. */
export const MAX_JSON_DEPTH = 64;

export interface CollectorOptions extends ServerContext {
  /** Largest body of POST /api/v1/submit_measurements in bytes. */
  batchBodyLimit: number;
  /** Most measurements in one batch; each counts against the rate limit. */
  batchMaxItems: number;
}

/**
 * What the collector's routes do with a submission: check its report, scrub, analyse and store
 * it; report ids issued, cached per (country, network, test) and hour, and closed.
 */
class Collector {
  /** Reports assigned to submissions that come without one (reportFor). */
  readonly reportCache = new Map<string, { id: string; until: number }>();
  // Closed reports: the store remembers them (across restarts, between collectors on one store);
  // this process caches them (closed-reports.ts) so a run of submissions to an open report asks
  // the store about it once per 30 s, not once per measurement.
  readonly closedReports: ClosedReports;

  constructor(private readonly o: CollectorOptions) {
    this.closedReports = new ClosedReports(o.store);
  }

  /** Checks, scrubs and analyses one submission (the single and the batch route alike); throws ApiError to refuse it. */
  prepare(req: FastifyRequest, body: SubmitBody, reportId: string, text?: string): { m: Measurement; verdict: Verdict } {
    if (body.format.toLowerCase() !== 'json')
      throw createError('WS_BAD_FORMAT', `unsupported format ${JSON.stringify(body.format)}: only "json"`);
    if (jsonDepth(body.content, MAX_JSON_DEPTH) > MAX_JSON_DEPTH)
      throw createError('WS_BAD_MEASUREMENT', `the measurement is nested deeper than ${MAX_JSON_DEPTH} levels`);
    // With the submission's JSON text at hand (batch lines), a text that cannot hold the address skips the walk.
    const { value, replaced } =
      text !== undefined && !mayHoldAddress(text, req.ip)
        ? { value: body.content as unknown as Measurement, replaced: 0 }
        : scrubMeasurement(body.content as unknown as Measurement, req.ip);
    if (replaced) this.o.metrics.countScrub({}, replaced);
    // The uid is ours to assign (a submitter cannot choose or collide with one); report_id goes last,
    // which lets the store hash and serialise the measurement in one pass (serializeMeasurement).
    const { measurement_uid: _uid, report_id: _rid, ...rest } = value;
    const m: Measurement = { ...rest, report_id: reportId } as Measurement;
    return { m, verdict: this.o.analyze(m) };
  }

  async ingest(req: FastifyRequest, body: SubmitBody, reportId: string): Promise<{ measurement_uid: string; inserted: boolean }> {
    const { m, verdict } = this.prepare(req, body, reportId);
    let r;
    try {
      r = await this.o.store.put(m, verdict);
    } catch (e) {
      req.log.error({ err: e }, 'store failed');
      throw createError('WS_STORE_UNAVAILABLE', 'the store failed; the measurement was not stored, retry later');
    }
    this.o.metrics.countIngest({ result: r.inserted ? 'stored' : 'duplicate' });
    req.log.info(
      {
        measurement_uid: r.measurement_uid,
        inserted: r.inserted,
        test_name: m.test_name,
        probe_cc: m.probe_cc,
        analysis_version: verdict.analysis_version,
      },
      'measurement received',
    );
    return r;
  }

  // A report per (country, network, test) and hour for submissions that come without one, as a
  // probe opening one report per test run would; bounded.
  private reportFor(c: SubmitBody['content']): string {
    const key = `${c.probe_cc} ${c.probe_asn} ${c.test_name}`;
    const now = Date.now();
    const hit = this.reportCache.get(key);
    if (hit && hit.until > now) return hit.id;
    if (this.reportCache.size >= 10_000) this.reportCache.clear();
    const id = issueReportId(c, this.o.secret);
    this.reportCache.set(key, { id, until: now + 3600_000 });
    return id;
  }

  private closedError(reportId: string): Error {
    return createError(
      'WS_REPORT_CLOSED',
      `report ${JSON.stringify(reportId.slice(0, 80))} was closed and takes no more measurements: open a new one with POST /report`,
    );
  }

  /** Signature and consistency, and a report known (in memory) to be closed; refuseClosed() asks the store. */
  checkReport(reportId: string, content: SubmitBody['content'], requireSigned: boolean): void {
    const parsed = parseReportId(reportId, this.o.secret);
    if (!parsed || (requireSigned && !parsed.signed)) {
      throw createError('WS_UNKNOWN_REPORT', `unknown report id ${JSON.stringify(reportId.slice(0, 80))}: open one with POST /report`);
    }
    const bad = reportMismatch(parsed, content);
    if (bad) throw createError('WS_REPORT_MISMATCH', bad);
    if (parsed.signed && this.closedReports.knownClosed(reportId)) throw this.closedError(reportId);
  }

  /**
   * Whether the report is closed, from the cache or the store (which caches the answer). Only our
   * signed ids can be closed: others are never looked up. A store failure is a 503 saying `unstored`.
   */
  async isClosed(req: FastifyRequest, reportId: string, unstored: string): Promise<boolean> {
    if (!parseReportId(reportId, this.o.secret)?.signed) return false;
    try {
      return await this.closedReports.isClosed(reportId);
    } catch (e) {
      req.log.error({ err: e }, 'store failed (closed reports)');
      throw createError('WS_STORE_UNAVAILABLE', `the store failed; ${unstored}, retry later`);
    }
  }

  /** Refuses a submission to a closed report. */
  async refuseClosed(req: FastifyRequest, reportId: string): Promise<void> {
    if (await this.isClosed(req, reportId, 'the measurement was not stored')) throw this.closedError(reportId);
  }

  /** The report of a submission without a report URL: its own report_id when it has OONI's shape and agrees with the measurement, else one of ours. */
  reportOfSubmission(c: SubmitBody['content']): string {
    const own = typeof c.report_id === 'string' ? c.report_id : '';
    if (!own) return this.reportFor(c);
    this.checkReport(own, c, false);
    return own;
  }
}

export default async function collectorRoutes(app: FastifyInstance, opts: CollectorOptions): Promise<void> {
  const { store, secret, limiter, metrics } = opts;
  const c = new Collector(opts);

  app.post<{ Body: OpenReportBody }>('/report', { schema: { body: OpenReportBody } }, async (req) => {
    if (req.body.format.toLowerCase() !== 'json')
      throw createError('WS_BAD_FORMAT', `unsupported format ${JSON.stringify(req.body.format)}: only "json"`);
    return { report_id: issueReportId(req.body, secret), supported_formats: ['json'], backend_version: BACKEND_VERSION };
  });

  app.post<{ Params: { report_id: string }; Body: SubmitBody }>(
    '/report/:report_id',
    { schema: { params: ReportParams, body: SubmitBody } },
    async (req) => {
      c.checkReport(req.params.report_id, req.body.content, true);
      await c.refuseClosed(req, req.params.report_id);
      const r = await c.ingest(req, req.body, req.params.report_id);
      return { measurement_uid: r.measurement_uid };
    },
  );

  app.post<{ Params: { report_id: string } }>('/report/:report_id/close', { schema: { params: ReportParams } }, async (req) => {
    const reportId = req.params.report_id;
    const parsed = parseReportId(reportId, secret);
    if (!parsed?.signed) throw createError('WS_UNKNOWN_REPORT', `unknown report id ${JSON.stringify(reportId.slice(0, 80))}`);
    // Idempotent: closing a closed report answers {} again. The store has it before we answer.
    try {
      await c.closedReports.close(reportId);
    } catch (e) {
      req.log.error({ err: e }, 'store failed (close report)');
      throw createError('WS_STORE_UNAVAILABLE', 'the store failed; the report was not closed, retry later');
    }
    // Submissions without a report_id are not given this report any more.
    for (const [k, v] of c.reportCache) if (v.id === reportId) c.reportCache.delete(k);
    req.log.info({ report_id: reportId }, 'report closed');
    return {};
  });

  app.post<{ Body: SubmitBody }>('/api/v1/submit_measurement', { schema: { body: SubmitBody } }, async (req) => {
    const reportId = c.reportOfSubmission(req.body.content);
    // A report the submitter named may have been closed (one we assigned is never refused).
    if (reportId === req.body.content.report_id) await c.refuseClosed(req, reportId);
    const r = await c.ingest(req, req.body, reportId);
    return { measurement_uid: r.measurement_uid, report_id: reportId };
  });

  registerBatchRoute(app, {
    store,
    lineSchema: SubmitBody,
    bodyLimit: opts.batchBodyLimit,
    maxItems: opts.batchMaxItems,
    prepare: (req, body, text) => {
      const reportId = c.reportOfSubmission(body.content);
      return { ...c.prepare(req, body, reportId, text), reportId };
    },
    // Warms the closed-report cache, so checkReport() (in prepare) refuses lines to a closed report.
    lookupReports: async (req, reportIds) => {
      await Promise.all(reportIds.map((id) => c.isClosed(req, id, 'none of the measurements was acknowledged')));
    },
    chargeItems: (req, extra) => (limiter && extra > 0 ? limiter.hit(req.ip, Date.now(), extra) : 0),
    onResult: (result, n) => metrics.countIngest({ result }, n),
  });
}
