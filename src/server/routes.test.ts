// Each part of the server as a fastify plugin on its own (inject(), no sockets), over a real SQLite
// store: the plugins work without buildApp's other parts, with only the options they declare.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { ANALYSIS_VERSION } from '../analysis/index.js';
import { SqliteStore } from '../store/index.js';
import { openReport } from '../testing/app-harness.js';
import { sampleMeasurement, syntheticMeasurements } from '../testing/seed.js';
import adminRoutes from './admin-routes.js';
import collectorRoutes from './collector-routes.js';
import type { ServerContext } from './context.js';
import metricsRoutes, { serverMetrics } from './metrics-routes.js';
import queryRoutes from './query-routes.js';
import { analyzerWith, safeAnalyzer } from './reanalyze.js';
import { SCHEMA_CHECKING } from './schemas.js';

async function part(
  t: { after: (fn: () => unknown) => void },
  register: (app: FastifyInstance, ctx: ServerContext) => PromiseLike<unknown>,
): Promise<{ app: FastifyInstance; ctx: ServerContext }> {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-part-'));
  const store = new SqliteStore(join(dir, 'db.sqlite'));
  const ctx: ServerContext = {
    store,
    analyze: safeAnalyzer(analyzerWith(undefined), ANALYSIS_VERSION),
    analysisVersion: ANALYSIS_VERSION,
    secret: Buffer.from('a test secret'),
    limiter: null,
    metrics: serverMetrics(store),
  };
  const app = Fastify({ ajv: SCHEMA_CHECKING });
  await register(app, ctx);
  await app.ready();
  t.after(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { app, ctx };
}

describe('server parts as plugins', () => {
  it('collector-routes: opens a report, takes a measurement into the store, closes the report, refuses more', async (t) => {
    const { app, ctx } = await part(t, (app, ctx) => app.register(collectorRoutes, { ...ctx, batchBodyLimit: 1 << 20, batchMaxItems: 10 }));
    const m = sampleMeasurement();
    const open = await openReport(app, { probe_asn: m.probe_asn, probe_cc: m.probe_cc, test_name: m.test_name });
    assert.equal(open.statusCode, 200, open.body);
    const { report_id } = open.json() as { report_id: string };
    const sub = await app.inject({ method: 'POST', url: `/report/${report_id}`, payload: { format: 'json', content: m } });
    assert.equal(sub.statusCode, 200, sub.body);
    const { measurement_uid } = sub.json() as { measurement_uid: string };
    const stored = await ctx.store.get(measurement_uid);
    assert.equal(stored?.measurement.report_id, report_id);
    assert.equal(stored?.verdict.analysis_version, ANALYSIS_VERSION);
    assert.equal((await app.inject({ method: 'POST', url: `/report/${report_id}/close` })).statusCode, 200);
    const late = await app.inject({ method: 'POST', url: `/report/${report_id}`, payload: { format: 'json', content: m } });
    assert.equal(late.statusCode, 409, late.body);
    assert.match(await ctx.metrics.registry.render(), /wallscope_measurements_total\{result="stored"\} 1/);
  });

  it('collector-routes: refuses bodies and parameters its schemas do not allow with 400, and stores nothing', async (t) => {
    const { app, ctx } = await part(t, (app, ctx) => app.register(collectorRoutes, { ...ctx, batchBodyLimit: 1 << 20, batchMaxItems: 10 }));
    const m = sampleMeasurement();
    for (const over of [{ probe_cc: 'china' }, { probe_asn: '4134' }, { test_name: 'Web Connectivity' }, { format: 5 }]) {
      const r = await openReport(app, over);
      assert.equal(r.statusCode, 400, `${JSON.stringify(over)}: ${r.body}`);
    }
    const { data_format_version: _dfv, ...noVersion } = m;
    for (const content of [
      noVersion,
      { ...m, measurement_start_time: 'yesterday' },
      { ...m, test_keys: 'none' },
      { ...m, input: 'x'.repeat(8193) },
    ]) {
      const r = await app.inject({ method: 'POST', url: '/api/v1/submit_measurement', payload: { format: 'json', content } });
      assert.equal(r.statusCode, 400, r.body);
    }
    assert.equal((await app.inject({ method: 'POST', url: '/api/v1/submit_measurement', payload: { content: m } })).statusCode, 400);
    // A report id longer than Fastify's maxParamLength (100) is a 414 before the schema (256) is asked.
    const longId = 'r'.repeat(257);
    assert.equal((await app.inject({ method: 'POST', url: `/report/${longId}`, payload: { format: 'json', content: m } })).statusCode, 414);
    assert.equal((await app.inject({ method: 'POST', url: `/report/${longId}/close` })).statusCode, 414);
    const batch = await app.inject({
      method: 'POST',
      url: '/api/v1/submit_measurements',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: [JSON.stringify({ format: 'json', content: noVersion }), '{not json'].join('\n'),
    });
    assert.equal(batch.statusCode, 200, batch.body);
    assert.deepEqual(
      (batch.json() as { results: Array<{ code: string }> }).results.map((r) => r.code),
      ['WS_BAD_MEASUREMENT', 'WS_INVALID_JSON'],
    );
    assert.equal(await ctx.store.count(), 0);
  });

  it('query-routes: lists, gets, aggregates (JSON and CSV) and reports health over the store', async (t) => {
    const { app, ctx } = await part(t, (app, ctx) => app.register(queryRoutes, ctx));
    await ctx.store.putMany([...syntheticMeasurements(30, { seed: 4 })]);
    const list = await app.inject({ url: '/api/v1/measurements?limit=5' });
    assert.equal(list.statusCode, 200, list.body);
    const rows = (list.json() as { results: Array<{ measurement_uid: string }> }).results;
    assert.equal(rows.length, 5);
    const one = await app.inject({ url: `/api/v1/measurement/${rows[0]!.measurement_uid}` });
    assert.equal(one.statusCode, 200);
    assert.equal((one.json() as { measurement_uid: string }).measurement_uid, rows[0]!.measurement_uid);
    assert.equal((await app.inject({ url: '/api/v1/measurement/nope' })).statusCode, 404);
    const agg = await app.inject({ url: '/api/v1/aggregation?axis_x=probe_cc' });
    const result = agg.json() as { result: Array<{ measurement_count: number }>; dimension_count: number };
    assert.equal(result.dimension_count, 1);
    assert.equal(
      result.result.reduce((n, r) => n + r.measurement_count, 0),
      30,
    );
    const csv = await app.inject({ url: '/api/v1/aggregation?axis_x=probe_cc&format=csv' });
    assert.match(csv.headers['content-type'] as string, /^text\/csv/);
    assert.match(csv.body, /^probe_cc,measurement_count,ok_count,anomaly_count,confirmed_count,failure_count\r\n/);
    assert.equal(((await app.inject({ url: '/api/v1/health' })).json() as { ok: boolean; store: string }).store, 'sqlite');
  });

  it('query-routes: refuses filters, axes and uids its schemas do not allow with 400', async (t) => {
    const { app } = await part(t, (app, ctx) => app.register(queryRoutes, ctx));
    for (const url of [
      '/api/v1/measurements?probe_cc=cn',
      '/api/v1/measurements?limit=1001',
      '/api/v1/measurements?blocking=maybe',
      '/api/v1/measurements?colour=red',
      '/api/v1/aggregation?axis_x=evil',
      '/api/v1/aggregation?time_grain=fortnight',
      '/api/v1/aggregation?format=xml',
      "/api/v1/measurement/x'%20OR%201=1",
    ]) {
      const r = await app.inject({ url });
      assert.equal(r.statusCode, 400, `${url}: ${r.body}`);
    }
  });

  it('admin-routes: disabled without a token; with one, refuses a wrong bearer and reanalyses and deletes with the right one', async (t) => {
    const off = await part(t, (app, ctx) => app.register(adminRoutes, ctx));
    assert.equal((await off.app.inject({ method: 'POST', url: '/api/v1/admin/reanalyze', payload: {} })).statusCode, 403);
    const { app, ctx } = await part(t, (app, ctx) => app.register(adminRoutes, { ...ctx, adminToken: 'tok' }));
    await ctx.store.putMany([...syntheticMeasurements(3, { seed: 1 })]);
    assert.equal(
      (await app.inject({ method: 'POST', url: '/api/v1/admin/reanalyze', payload: {}, headers: { authorization: 'Bearer nope' } }))
        .statusCode,
      401,
    );
    const r = await app.inject({ method: 'POST', url: '/api/v1/admin/reanalyze', payload: {}, headers: { authorization: 'Bearer tok' } });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal((r.json() as { scanned: number }).scanned, 3);
    const uid = (await ctx.store.list({}, { limit: 1 })).results[0]!.measurement_uid;
    const del = await app.inject({ method: 'DELETE', url: `/api/v1/measurement/${uid}`, headers: { authorization: 'Bearer tok' } });
    assert.equal(del.statusCode, 200, del.body);
    assert.equal(await ctx.store.get(uid), null);
    const auth = { authorization: 'Bearer tok' };
    for (const payload of [{ limit: 0 }, { only_outdated: 'yes' }, { limit: 1, everything: true }]) {
      const bad = await app.inject({ method: 'POST', url: '/api/v1/admin/reanalyze', payload, headers: auth });
      assert.equal(bad.statusCode, 400, `${JSON.stringify(payload)}: ${bad.body}`);
    }
    assert.equal((await app.inject({ method: 'DELETE', url: '/api/v1/measurement/a%20b', headers: auth })).statusCode, 400);
  });

  it('metrics-routes: the Prometheus text of the server metrics', async (t) => {
    const { app, ctx } = await part(t, (app, ctx) => app.register(metricsRoutes, ctx));
    ctx.metrics.countIngest({ result: 'duplicate' }, 2);
    const r = await app.inject({ url: '/metrics' });
    assert.equal(r.statusCode, 200);
    assert.match(r.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
    assert.match(r.body, /^# TYPE wallscope_measurements_total counter$/m);
    assert.match(r.body, /^wallscope_measurements_total\{result="duplicate"\} 2$/m);
    assert.match(r.body, /^process_resident_memory_bytes \d+/m);
  });
});
