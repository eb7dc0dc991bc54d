// The probe's spool against the real collector: spool, go offline, come back, flush; and the
// collector over ClickHouse (the same HTTP API on the scale store).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flushSpool, spoolMeasurement } from '../probe/index.js';
import { ClickHouseStore, JournaledStore, SqliteStore } from '../store/index.js';
import { sampleMeasurement } from '../testing/seed.js';
import { startServer } from './listen.js';

const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;

describe('flushSpool() to the real collector', () => {
  it('loses nothing while the collector is offline and uploads everything once it is back, exactly once', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-upload-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const spool = join(dir, 'spool');
    for (let i = 0; i < 20; i++) await spoolMeasurement(spool, sampleMeasurement({ input: `https://up-${i}.example/` }));
    const store = new SqliteStore(join(dir, 'c.sqlite'));
    t.after(() => store.close());
    // Offline: a collector that was there and is gone.
    const gone = await startServer({ store, webRoot: false, rateLimit: false });
    const url = gone.url;
    await gone.close();
    const offline = await flushSpool(spool, url, { retries: 1, baseDelayMs: 1 });
    assert.equal(offline.uploaded, 0);
    assert.equal(offline.remaining, 20);
    const port = Number(new URL(url).port);
    const back = await startServer({ store, webRoot: false, rateLimit: false, host: '127.0.0.1', port });
    t.after(() => back.close());
    const r = await flushSpool(spool, back.url, { baseDelayMs: 1 });
    assert.deepEqual({ uploaded: r.uploaded, remaining: r.remaining, rejected: r.rejected }, { uploaded: 20, remaining: 0, rejected: 0 });
    assert.deepEqual(readdirSync(spool), []);
    assert.equal(await store.count(), 20);
    // A lost acknowledgement means a second upload of the same file: still stored once.
    await spoolMeasurement(spool, sampleMeasurement({ input: 'https://up-3.example/' }));
    assert.equal((await flushSpool(spool, back.url)).uploaded, 1);
    assert.equal(await store.count(), 20);
  });

  it('keeps a measurement the collector refuses, in rejected/', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-upload-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const store = new SqliteStore(join(dir, 'c.sqlite'));
    t.after(() => store.close());
    const srv = await startServer({ store, webRoot: false, rateLimit: false });
    t.after(() => srv.close());
    await spoolMeasurement(join(dir, 'spool'), { ...sampleMeasurement(), probe_cc: 'not a country' });
    const r = await flushSpool(join(dir, 'spool'), srv.url, { baseDelayMs: 1 });
    assert.equal(r.rejected, 1);
    assert.match(r.errors[0], /WS_BAD_MEASUREMENT/);
    assert.equal(readdirSync(join(dir, 'spool', 'rejected')).length, 2);
    assert.equal(await store.count(), 0);
  });

  it('uploads a large spool in NDJSON batches, moves the refused ones aside, and falls back to one by one on a smaller limit', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-upload-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const spool = join(dir, 'spool');
    for (let i = 0; i < 250; i++)
      await spoolMeasurement(
        spool,
        i === 137 ? { ...sampleMeasurement(), probe_cc: 'bad' } : sampleMeasurement({ input: `https://bulk-${i}.example/` }),
      );
    const store = new SqliteStore(join(dir, 'c.sqlite'));
    t.after(() => store.close());
    const srv = await startServer({ store, webRoot: false, rateLimit: false });
    t.after(() => srv.close());
    const r = await flushSpool(spool, srv.url, { baseDelayMs: 1, batchSize: 100 });
    assert.deepEqual({ uploaded: r.uploaded, rejected: r.rejected, remaining: r.remaining }, { uploaded: 249, rejected: 1, remaining: 0 });
    assert.match(r.errors[0], /HTTP 400[\s\S]*WS_BAD_MEASUREMENT/);
    assert.equal(await store.count(), 249);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    const requests = (route: string) =>
      [...metrics.matchAll(/^wallscope_http_requests_total\{([^}]*)\} (\d+)$/gm)]
        .filter((m) => m[1].includes(`route="${route}"`))
        .reduce((n, m) => n + Number(m[2]), 0);
    assert.equal(requests('/api/v1/submit_measurements'), 3, '250 files in batches of 100');
    assert.equal(requests('/api/v1/submit_measurement'), 0);

    // A collector whose batch limit is smaller than one batch answers 413: the rest goes one by one.
    const small = await startServer({ store, webRoot: false, rateLimit: false, batchBodyLimit: 2048 });
    t.after(() => small.close());
    for (let i = 0; i < 5; i++) await spoolMeasurement(spool, sampleMeasurement({ input: `https://small-${i}.example/` }));
    const r2 = await flushSpool(spool, small.url, { baseDelayMs: 1 });
    assert.deepEqual({ uploaded: r2.uploaded, remaining: r2.remaining }, { uploaded: 5, remaining: 0 });
    assert.equal(await store.count(), 254);
  });
});

describe('the collector over ClickHouse', () => {
  if (!CH_URL) {
    it('SKIPPED: WALLSCOPE_CLICKHOUSE_URL is unset', { skip: 'WALLSCOPE_CLICKHOUSE_URL is unset' }, () => {});
    return;
  }
  it('stores, de-duplicates, lists and aggregates through the same HTTP API', async (t) => {
    const store = await ClickHouseStore.open({ url: CH_URL, database: `wallscope_srv_${process.pid}` });
    t.after(async () => {
      await store.dropDatabase();
      await store.close();
    });
    const srv = await startServer({ store, webRoot: false, rateLimit: false });
    t.after(() => srv.close());
    const uids = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const body = JSON.stringify({ format: 'json', content: sampleMeasurement({ input: `https://ch-${i % 5}.example/` }) });
      const r = await fetch(`${srv.url}/api/v1/submit_measurement`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      assert.equal(r.status, 200);
      uids.add(((await r.json()) as { measurement_uid: string }).measurement_uid);
    }
    assert.equal(uids.size, 5);
    assert.equal(await store.count(), 5);
    const list = (await (await fetch(`${srv.url}/api/v1/measurements?probe_cc=CN&limit=2`)).json()) as {
      results: unknown[];
      next_cursor: string;
    };
    assert.equal(list.results.length, 2);
    const rest = (await (await fetch(`${srv.url}/api/v1/measurements?probe_cc=CN&limit=10&cursor=${list.next_cursor}`)).json()) as {
      results: unknown[];
    };
    assert.equal(rest.results.length, 3);
    const agg = (await (await fetch(`${srv.url}/api/v1/aggregation?axis_x=domain`)).json()) as {
      result: Array<{ measurement_count: number }>;
    };
    assert.equal(agg.result.length, 5);
    const one = await fetch(`${srv.url}/api/v1/measurement/${[...uids][0]}`);
    assert.equal(one.status, 200);
  });

  it('behind the local journal: acknowledges at once, get() answers before shipping, /metrics shows the backlog, lists after shipping', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-upload-'));
    const database = `wallscope_srvj_${process.pid}`;
    const ch = await ClickHouseStore.open({ url: CH_URL, database });
    const store = new JournaledStore(ch, { file: join(dir, 'journal.sqlite') });
    t.after(async () => {
      await store.close();
      const s = await ClickHouseStore.open({ url: CH_URL, database });
      await s.dropDatabase();
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const srv = await startServer({ store, webRoot: false, rateLimit: false });
    t.after(() => srv.close());
    const body = Array.from({ length: 40 }, (_, i) =>
      JSON.stringify({ format: 'json', content: sampleMeasurement({ input: `https://chj-${i}.example/` }) }),
    ).join('\n');
    const r = await fetch(`${srv.url}/api/v1/submit_measurements`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body,
    });
    const answer = (await r.json()) as { stored: number; results: Array<{ measurement_uid: string }> };
    assert.equal(answer.stored, 40);
    const one = await fetch(`${srv.url}/api/v1/measurement/${answer.results[5].measurement_uid}`);
    assert.equal(one.status, 200, 'readable by uid whether shipped or not');
    assert.match(await (await fetch(`${srv.url}/metrics`)).text(), /^wallscope_journal_backlog \d+$/m);
    assert.equal(await store.flush(30_000), true);
    assert.match(await (await fetch(`${srv.url}/metrics`)).text(), /^wallscope_journal_backlog 0$/m);
    assert.equal(await ch.count(), 40);
    const list = (await (await fetch(`${srv.url}/api/v1/measurements?limit=100`)).json()) as { results: unknown[] };
    assert.equal(list.results.length, 40);
  });
});
