// POST /api/v1/submit_measurements over buildApp and a real SQLite store (writer thread on):
// per-line results, whole-request refusals that store nothing, the store failing, concurrency.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { SqliteStore } from '../store/index.js';
import { sampleMeasurement } from '../testing/seed.js';
import { appHarness, openReport } from '../testing/app-harness.js';
import { buildApp } from './app.js';
import { NDJSON, type BatchResponse } from './batch.js';
import { startServer } from './listen.js';

const harness = appHarness;

const line = (content: unknown) => JSON.stringify({ format: 'json', content });
const post = (app: FastifyInstance, payload: string, extra: Record<string, unknown> = {}) =>
  app.inject({ method: 'POST', url: '/api/v1/submit_measurements', headers: { 'content-type': NDJSON }, payload, ...extra });
const metric = async (app: FastifyInstance, result: string) => {
  const m = new RegExp(`wallscope_measurements_total\\{result="${result}"\\} (\\d+)`).exec((await app.inject({ url: '/metrics' })).body);
  return m ? Number(m[1]) : 0;
};

describe('POST /api/v1/submit_measurements (NDJSON batches)', () => {
  it('checks every line as the single route does, stores the good ones at once and answers per line, in order', async (t) => {
    const { app, store } = await harness(t);
    const a = sampleMeasurement({ input: 'https://a.example/' });
    const b = sampleMeasurement({ input: 'https://b.example/', probe_cc: 'IR' });
    const payload = [
      line(a),
      '',
      '{"format":"json","content":',
      line({ ...a, probe_cc: 'china' }),
      line({ ...b, report_id: '20261122T000000Z_webconnectivity_RU_1_n1_abcdefgh' }),
      '{"format":"json","content":{"__proto__":{"polluted":true}}}',
      JSON.stringify({ format: 'yaml', content: b }),
      line(b),
      line(a),
      '{"format":"json","content":{"\\u005f_proto__":{"polluted":true}}}',
      '{"format":"json","content":{"constructor":{"prototype":{"polluted":true}}}}',
      '',
    ].join('\n');
    const r = await post(app, payload);
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json() as BatchResponse;
    assert.deepEqual(
      body.results.map((x) => [x.line, 'code' in x ? x.code : x.inserted]),
      [
        [1, true],
        [3, 'WS_INVALID_JSON'],
        [4, 'WS_BAD_MEASUREMENT'],
        [5, 'WS_REPORT_MISMATCH'],
        [6, 'WS_INVALID_JSON'],
        [7, 'WS_BAD_FORMAT'],
        [8, true],
        [9, false], // line 1 again: a duplicate, stored once
        [10, 'WS_INVALID_JSON'], // __proto__ written with a \u escape
        [11, 'WS_INVALID_JSON'], // constructor.prototype
      ],
    );
    assert.match((body.results[2] as { error: string }).error, /probe_cc/);
    assert.deepEqual([body.stored, body.duplicates, body.rejected], [2, 1, 7]);
    assert.equal(await store.count(), 2);
    assert.deepEqual([await metric(app, 'stored'), await metric(app, 'duplicate'), await metric(app, 'rejected')], [2, 1, 7]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);

    // The single route sees the same measurement as already stored, with the same uid.
    const uidA = (body.results[0] as { measurement_uid: string }).measurement_uid;
    const single = await app.inject({ method: 'POST', url: '/api/v1/submit_measurement', payload: { format: 'json', content: a } });
    assert.equal(single.json().measurement_uid, uidA);
    assert.equal(await store.count(), 2);
    const got = await app.inject({ url: `/api/v1/measurement/${uidA}` });
    assert.equal(got.statusCode, 200);
    assert.equal(got.json().measurement.input, 'https://a.example/');
    assert.equal(got.json().measurement.report_id, (body.results[0] as { report_id: string }).report_id);
  });

  it('refuses a whole request that is not NDJSON, empty, too long or over the size limit, and stores nothing', async (t) => {
    const { app, store } = await harness(t, { batchMaxItems: 3, batchBodyLimit: 4096 });
    const asJson = await app.inject({
      method: 'POST',
      url: '/api/v1/submit_measurements',
      payload: { format: 'json', content: sampleMeasurement() },
    });
    assert.equal(asJson.statusCode, 415);
    assert.equal(asJson.json().code, 'WS_UNSUPPORTED_MEDIA_TYPE');
    assert.match(asJson.json().error, /x-ndjson/);
    const empty = await post(app, '\n\n');
    assert.equal(empty.statusCode, 400);
    assert.match(empty.json().error, /empty batch/);
    const four = Array.from({ length: 4 }, (_, i) => line(sampleMeasurement({ input: `https://n${i}.example/` }))).join('\n');
    const tooMany = await post(app, four);
    assert.equal(tooMany.statusCode, 413);
    assert.match(tooMany.json().error, /4 lines, the limit is 3/);
    const big = await post(app, line(sampleMeasurement({ extra: { pad: 'x'.repeat(5000) } })));
    assert.equal(big.statusCode, 413);
    assert.match(big.json().error, /limit is 4096 bytes/);
    assert.equal(await store.count(), 0);
  });

  it("charges every line to the client's rate limit: a batch over the allowance is refused whole", async (t) => {
    const { app, store } = await harness(t, { rateLimit: { max: 5, windowMs: 60_000 } });
    const batch = (n: number, tag: string) =>
      Array.from({ length: n }, (_, i) => line(sampleMeasurement({ input: `https://${tag}${i}.example/` }))).join('\n');
    const ok = await post(app, batch(3, 'ok'));
    assert.equal(ok.statusCode, 200);
    const over = await post(app, batch(3, 'over'));
    assert.equal(over.statusCode, 429);
    assert.ok(Number(over.headers['retry-after']) >= 1);
    assert.equal(await store.count(), 3);
  });

  it("scrubs the submitter's address from every line", async (t) => {
    const { app, store } = await harness(t);
    const ip = '203.0.113.77';
    const r = await post(
      app,
      [
        line({ ...sampleMeasurement(), probe_ip: ip }),
        line(sampleMeasurement({ input: `https://${ip}/`, extra: { note: `from ${ip}` } })),
      ].join('\n'),
      {
        remoteAddress: ip,
      },
    );
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().stored, 2);
    // Written with \u escapes, in a key, and inside a base64 body: the text holds no plain "203.0.113.77".
    const escaped = line(sampleMeasurement({ input: 'https://esc.example/' })).replace(
      '"https://esc.example/"',
      '"https://esc.example/","x_note":"seen \\u0032\\u0030\\u0033.0.113.77","x_\\u0032\\u0030\\u0033.0.113.77":1',
    );
    const b64 = line(
      sampleMeasurement({
        input: 'https://b64.example/',
        extra: { requests: [{ response: { body: { format: 'base64', data: Buffer.from(`<p>${ip}</p>`).toString('base64') } } }] },
      }),
    );
    const r2 = await post(app, [escaped, b64].join('\n'), { remoteAddress: ip });
    assert.equal(r2.json().stored, 2, r2.body);
    for (const x of [...r.json().results, ...r2.json().results] as Array<{ measurement_uid: string }>) {
      const got = await store.get(x.measurement_uid);
      assert.ok(got);
      const json = JSON.stringify(got.measurement);
      assert.doesNotMatch(json, /203\.0\.113\.77/);
      assert.doesNotMatch(Buffer.from(json.match(/"data":"([^"]*)"/)?.[1] ?? '', 'base64').toString('latin1'), /203\.0\.113\.77/);
    }
  });

  it('refuses the lines naming a closed report, also in a new app on the same store (the store remembers)', async (t) => {
    const { app, store } = await harness(t, { reportSecret: 'one secret for both collectors' });
    const open = await openReport(app);
    const reportId = open.json().report_id as string;
    const inReport = (i: number) => line({ ...sampleMeasurement({ input: `https://rep${i}.example/` }), report_id: reportId });
    const before = await post(app, [inReport(0), inReport(1)].join('\n'));
    assert.equal(before.json().stored, 2);
    assert.equal((await app.inject({ method: 'POST', url: `/report/${reportId}/close` })).statusCode, 200);
    const after = await post(app, [inReport(2), line(sampleMeasurement({ input: 'https://free.example/' }))].join('\n'));
    assert.deepEqual(
      after.json().results.map((x: { code?: string; inserted?: boolean }) => x.code ?? x.inserted),
      ['WS_REPORT_CLOSED', true],
    );
    // A restarted collector (empty cache) asks the store before preparing the lines.
    const app2 = await buildApp({ store, webRoot: false, rateLimit: false, reportSecret: 'one secret for both collectors' });
    t.after(() => app2.close());
    const again = await post(app2, inReport(3));
    assert.equal(again.json().results[0].code, 'WS_REPORT_CLOSED');
    assert.equal(await store.count(), 3);
  });

  it('answers 503 and acknowledges nothing when the store fails', async (t) => {
    const { app, store } = await harness(t);
    await store.close(); // a real failure: the writer thread and the connection are gone
    const r = await post(app, line(sampleMeasurement()));
    assert.equal(r.statusCode, 503);
    assert.equal(r.json().code, 'WS_STORE_UNAVAILABLE');
    assert.match(r.json().error, /none of the 1 measurements was acknowledged/);
  });

  it('stores each measurement once when batches overlap and race over real sockets', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-batch-'));
    const store = new SqliteStore(join(dir, 'db.sqlite'));
    const srv = await startServer({ store, webRoot: false, rateLimit: false });
    t.after(async () => {
      await srv.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const ms = Array.from({ length: 300 }, (_, i) => sampleMeasurement({ input: `https://race${i}.example/` }));
    // Four batches of 150: [0,150), [75,225), [150,300), [0,150) again; 300 distinct measurements.
    const slices = [ms.slice(0, 150), ms.slice(75, 225), ms.slice(150, 300), ms.slice(0, 150)];
    const answers = await Promise.all(
      slices.map(async (s) => {
        const res = await fetch(`${srv.url}/api/v1/submit_measurements`, {
          method: 'POST',
          headers: { 'content-type': NDJSON },
          body: s.map(line).join('\n'),
        });
        assert.equal(res.status, 200);
        return (await res.json()) as BatchResponse;
      }),
    );
    const inserted = new Map<string, number>();
    for (const a of answers)
      for (const x of a.results) {
        assert.ok('measurement_uid' in x, JSON.stringify(x));
        inserted.set(x.measurement_uid, (inserted.get(x.measurement_uid) ?? 0) + (x.inserted ? 1 : 0));
      }
    assert.equal(inserted.size, 300);
    assert.ok(
      [...inserted.values()].every((n) => n === 1),
      'each uid reported inserted exactly once',
    );
    assert.equal(
      answers.reduce((n, a) => n + a.stored, 0),
      300,
    );
    assert.equal(await store.count(), 300);
  });
});
