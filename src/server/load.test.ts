// 64 concurrent submitters for a bounded time against `wallscope serve` (SQLite) on loopback:
// zero errors, zero non-2xx, and every acknowledged measurement is in the store. Latencies are
// reported (t.diagnostic), never asserted.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouseStore, SqliteStore } from '../store/index.js';
import { submitLoad } from '../testing/load.js';
import { serveChild } from '../testing/serve-child.js';

describe('collector under load (64 concurrent submitters, wallscope serve, SQLite)', () => {
  it('answers every submission with 200 and loses none', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-load-'));
    const db = join(dir, 'load.sqlite');
    const srv = await serveChild(['--db', db]);
    t.after(async () => {
      await srv.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    const r = await submitLoad(srv.url, { connections: 64, durationS: 3 });
    t.diagnostic(
      `64 connections x 3 s: ${r.ok} acknowledged (${r.perSecond.toFixed(0)}/s), p50 ${r.p50Ms} ms, p90 ${r.p90Ms} ms, p99 ${r.p99Ms} ms, max ${r.maxMs} ms`,
    );
    assert.equal(r.errors, 0, 'connection errors');
    assert.equal(r.timeouts, 0, 'timeouts');
    assert.equal(r.non2xx, 0, 'non-2xx answers');
    assert.ok(r.ok > 0);
    assert.equal(r.uids.size, r.ok, 'every 200 carried a distinct measurement_uid');
    await srv.stop('SIGTERM');
    const store = new SqliteStore(db);
    t.after(() => store.close());
    for (const uid of r.uids) assert.ok(await store.get(uid), `acknowledged ${uid} is missing`);
    const count = await store.count();
    assert.ok(
      count >= r.ok && count <= r.ok + 64,
      `stored ${count}, acknowledged ${r.ok} (at most one in flight per connection at the end)`,
    );
  });
});

describe('collector under load (64 concurrent submitters, wallscope serve, ClickHouse)', () => {
  const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;
  if (!CH_URL) {
    it('SKIPPED: WALLSCOPE_CLICKHOUSE_URL is unset', { skip: 'WALLSCOPE_CLICKHOUSE_URL is unset' }, () => {});
    return;
  }
  it('answers every submission with 200 and loses none', async (t) => {
    const database = `wallscope_load_${process.pid}`;
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-load-ch-'));
    const srv = await serveChild(['--clickhouse', `${CH_URL}/${database}`, '--changes-db', join(dir, 'changes.db')]);
    t.after(async () => {
      await srv.stop('SIGKILL');
      const s = await ClickHouseStore.open({ url: CH_URL, database });
      await s.dropDatabase();
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const r = await submitLoad(srv.url, { connections: 64, durationS: 3 });
    t.diagnostic(
      `64 connections x 3 s: ${r.ok} acknowledged (${r.perSecond.toFixed(0)}/s), p50 ${r.p50Ms} ms, p90 ${r.p90Ms} ms, p99 ${r.p99Ms} ms, max ${r.maxMs} ms`,
    );
    assert.equal(r.errors + r.timeouts + r.non2xx, 0, `errors ${r.errors}, timeouts ${r.timeouts}, non-2xx ${r.non2xx}`);
    assert.ok(r.ok > 0);
    assert.equal(r.uids.size, r.ok);
    await srv.stop('SIGTERM');
    const store = await ClickHouseStore.open({ url: CH_URL, database });
    t.after(() => store.close());
    for (const uid of r.uids) assert.ok(await store.get(uid), `acknowledged ${uid} is missing`);
    const count = await store.count();
    assert.ok(count >= r.ok && count <= r.ok + 64, `stored ${count}, acknowledged ${r.ok}`);
  });
});
