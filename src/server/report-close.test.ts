// The collector's closed reports, through app.inject() over real stores: SQLite (a temp file)
// always, ClickHouse (a fresh database) for the restart case when WALLSCOPE_CLICKHOUSE_URL is set.
// A restart is a new buildApp over a new store object on the same file/database.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Measurement } from '../model/index.js';
import { ClickHouseStore, SqliteStore, type MeasurementStore } from '../store/index.js';
import { openReport } from '../testing/app-harness.js';
import { sampleMeasurement } from '../testing/seed.js';
import { buildApp } from './app.js';

const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;
const SECRET = 'one secret for every collector of the test';
type T = { after: (fn: () => unknown) => void };

function sqliteFile(t: T): () => SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-close-'));
  const stores: SqliteStore[] = [];
  t.after(async () => {
    for (const s of stores) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const s = new SqliteStore(join(dir, 'db.sqlite'));
    stores.push(s);
    return s;
  };
}

async function collector(t: T, store: MeasurementStore): Promise<FastifyInstance> {
  const app = await buildApp({ store, webRoot: false, rateLimit: false, reportSecret: SECRET });
  t.after(() => app.close());
  return app;
}

async function openedReport(app: FastifyInstance): Promise<string> {
  const r = await openReport(app);
  assert.equal(r.statusCode, 200, r.body);
  return (r.json() as { report_id: string }).report_id;
}

const submitTo = (app: FastifyInstance, reportId: string, m: Measurement) =>
  app.inject({ method: 'POST', url: `/report/${reportId}`, payload: { format: 'json', content: m } });
const submitMeasurement = (app: FastifyInstance, content: unknown) =>
  app.inject({ method: 'POST', url: '/api/v1/submit_measurement', payload: { format: 'json', content } });
const close = (app: FastifyInstance, reportId: string) => app.inject({ method: 'POST', url: `/report/${reportId}/close` });

function assertClosedAnswer(r: { statusCode: number; json: () => unknown; body: string }, reportId: string): void {
  assert.equal(r.statusCode, 409, r.body);
  const body = r.json() as { code: string; error: string; statusCode: number };
  assert.equal(body.code, 'WS_REPORT_CLOSED');
  assert.equal(body.statusCode, 409);
  assert.ok(body.error.includes(reportId), 'the message names the report');
  assert.match(body.error, /closed/);
  assert.match(body.error, /POST \/report/, 'and says what to do');
}

/** The restart case on any store: close through one collector, refused by a new one on the same store. */
async function closedAcrossRestart(t: T, openStore: () => Promise<MeasurementStore>): Promise<void> {
  const a = await collector(t, await openStore());
  const reportId = await openedReport(a);
  const m = sampleMeasurement({ input: 'https://before-close.example/' });
  assert.equal((await submitTo(a, reportId, m)).statusCode, 200);
  assert.equal((await close(a, reportId)).statusCode, 200);

  const storeB = await openStore();
  const b = await collector(t, storeB); // the restarted collector: empty caches
  const n = await storeB.count();
  const later = sampleMeasurement({ input: 'https://after-restart.example/' });
  assertClosedAnswer(await submitTo(b, reportId, later), reportId);
  assertClosedAnswer(await submitMeasurement(b, { ...later, report_id: reportId }), reportId);
  assert.equal(await storeB.count(), n, 'nothing stored');
  // Closing again after the restart is still fine; a new report works.
  assert.equal((await close(b, reportId)).statusCode, 200);
  const fresh = await openedReport(b);
  assert.equal((await submitTo(b, fresh, later)).statusCode, 200);
  assert.equal(await storeB.count(), n + 1);
}

describe('buildApp(opts): closed reports', () => {
  it('a closed report refuses POST /report/{id} and submit_measurement with its report_id (409 WS_REPORT_CLOSED), stores nothing; closing twice is fine', async (t) => {
    const store = sqliteFile(t)();
    const app = await collector(t, store);
    const reportId = await openedReport(app);
    const m = sampleMeasurement();
    const ok = await submitTo(app, reportId, m);
    assert.equal(ok.statusCode, 200, ok.body);
    for (let i = 0; i < 2; i++) {
      const c = await close(app, reportId);
      assert.equal(c.statusCode, 200, c.body);
      assert.deepEqual(c.json(), {});
    }
    assert.equal(await store.isReportClosed(reportId), true);
    // A new measurement, the same measurement again, and submit_measurement naming the report.
    assertClosedAnswer(await submitTo(app, reportId, sampleMeasurement({ input: 'https://late.example/' })), reportId);
    assertClosedAnswer(await submitTo(app, reportId, m), reportId);
    assertClosedAnswer(
      await submitMeasurement(app, { ...sampleMeasurement({ input: 'https://late2.example/' }), report_id: reportId }),
      reportId,
    );
    assert.equal(await store.count(), 1, 'only the submission before the close');
    // Other reports are unaffected.
    const other = await openedReport(app);
    assert.equal((await submitTo(app, other, sampleMeasurement({ input: 'https://other.example/' }))).statusCode, 200);
    assert.equal(await store.count(), 2);
    const metrics = (await app.inject({ url: '/metrics' })).body;
    assert.match(metrics, /wallscope_measurements_total\{result="rejected"\} 3\b/);
    assert.match(metrics, /wallscope_http_requests_total\{route="\/report\/:report_id",method="POST",status="409"\} 2\b/);
  });

  it('a batch line (POST /api/v1/submit_measurements) naming a report closed through this collector is refused with WS_REPORT_CLOSED', async (t) => {
    const store = sqliteFile(t)();
    const app = await collector(t, store);
    const reportId = await openedReport(app);
    assert.equal((await close(app, reportId)).statusCode, 200);
    const lines = [
      { format: 'json', content: { ...sampleMeasurement({ input: 'https://batch-closed.example/' }), report_id: reportId } },
      { format: 'json', content: sampleMeasurement({ input: 'https://batch-open.example/' }) },
    ];
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/submit_measurements',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: lines.map((l) => JSON.stringify(l)).join('\n'),
    });
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json() as { results: Array<{ code?: string; statusCode?: number; inserted?: boolean }> };
    assert.equal(body.results[0].code, 'WS_REPORT_CLOSED');
    assert.equal(body.results[0].statusCode, 409);
    assert.equal(body.results[1].inserted, true);
    assert.equal(await store.count(), 1);
  });

  it('closing an id this collector never issued is a 404 and records nothing; a mismatched close target stays open', async (t) => {
    const store = sqliteFile(t)();
    const app = await collector(t, store);
    const reportId = await openedReport(app);
    const forged = reportId.slice(0, -1) + (reportId.endsWith('0') ? '1' : '0');
    for (const id of [forged, '20261122T000000Z_webconnectivity_CN_4134_n1_abcdefghijklmnop', 'not-a-report']) {
      const r = await close(app, id);
      assert.equal(r.statusCode, 404, id);
      assert.equal(r.json().code, 'WS_UNKNOWN_REPORT');
      assert.equal(await store.isReportClosed(id), false, id);
    }
    assert.equal((await submitTo(app, reportId, sampleMeasurement())).statusCode, 200, 'the real report is still open');
  });

  it('submissions without a report_id are not given a report that was closed', async (t) => {
    const store = sqliteFile(t)();
    const app = await collector(t, store);
    const first = await submitMeasurement(app, sampleMeasurement({ input: 'https://auto-1.example/' }));
    assert.equal(first.statusCode, 200, first.body);
    const auto = (first.json() as { report_id: string }).report_id;
    assert.equal(
      (await submitMeasurement(app, sampleMeasurement({ input: 'https://auto-2.example/' }))).json().report_id,
      auto,
      'the same report for the hour',
    );
    assert.equal((await close(app, auto)).statusCode, 200);
    const next = await submitMeasurement(app, sampleMeasurement({ input: 'https://auto-3.example/' }));
    assert.equal(next.statusCode, 200, next.body);
    assert.notEqual(next.json().report_id, auto, 'a new report after the close');
    assert.equal(await store.count(), 3);
  });

  it('an open report is looked up in the store once for a run of submissions, not once per measurement', async (t) => {
    const real = sqliteFile(t)();
    let lookups = 0;
    // The real store; only its isReportClosed calls are counted.
    const store = new Proxy(real, {
      get(target, key, recv) {
        if (key === 'isReportClosed')
          return (id: string) => {
            lookups++;
            return target.isReportClosed(id);
          };
        const v = Reflect.get(target, key, recv);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const app = await collector(t, store);
    const reportId = await openedReport(app);
    for (let i = 0; i < 20; i++)
      assert.equal((await submitTo(app, reportId, sampleMeasurement({ input: `https://run-${i}.example/` }))).statusCode, 200);
    assert.equal(lookups, 1);
    assert.equal((await close(app, reportId)).statusCode, 200);
    for (let i = 0; i < 5; i++)
      assert.equal((await submitTo(app, reportId, sampleMeasurement({ input: `https://after-${i}.example/` }))).statusCode, 409);
    assert.equal(lookups, 1, 'closed here: refused from memory');
    // Ids that are not ours (OONI probes' own) can never be closed: no lookup at all.
    const ooniId = '20261122T000000Z_webconnectivity_CN_4134_n1_abcdefghijklmnop';
    assert.equal(
      (await submitMeasurement(app, { ...sampleMeasurement({ input: 'https://ooni-id.example/' }), report_id: ooniId })).statusCode,
      200,
    );
    assert.equal(lookups, 1);
  });

  it('a store that fails to close or to answer gives 503 WS_STORE_UNAVAILABLE and stores nothing', async (t) => {
    const store = sqliteFile(t)();
    const app = await collector(t, store);
    const reportId = await openedReport(app);
    store.db.close(); // the store fails for real
    const c = await close(app, reportId);
    assert.equal(c.statusCode, 503, c.body);
    assert.equal(c.json().code, 'WS_STORE_UNAVAILABLE');
    assert.match(c.json().error, /not closed/);
    const s = await submitTo(app, reportId, sampleMeasurement());
    assert.equal(s.statusCode, 503, s.body);
    assert.equal(s.json().code, 'WS_STORE_UNAVAILABLE');
  });

  it('restart (SQLite): a report closed before the restart is refused after it', async (t) => {
    const open = sqliteFile(t);
    await closedAcrossRestart(t, async () => open());
  });

  it(
    'restart (ClickHouse): a report closed before the restart is refused after it',
    { skip: CH_URL ? false : 'WALLSCOPE_CLICKHOUSE_URL is unset' },
    async (t) => {
      const database = `wallscope_close_${process.pid}`;
      const stores: ClickHouseStore[] = [];
      t.after(async () => {
        if (stores[0]) await stores[0].dropDatabase();
        for (const s of stores) await s.close();
      });
      await closedAcrossRestart(t, async () => {
        const s = await ClickHouseStore.open({ url: CH_URL!, database });
        stores.push(s);
        return s;
      });
    },
  );
});
