// Kill -9 of the collector during sustained ingest: every acknowledged measurement is in the store
// after a restart, none twice, and the store is intact. The server runs as the real CLI in a child
// process (`wallscope serve`), so the kill is a real SIGKILL of a real process.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouseStore, JournaledStore, SqliteStore } from '../store/index.js';
import { sampleMeasurement } from '../testing/seed.js';
import { serveChild, type ServeChild } from '../testing/serve-child.js';

async function post(url: string, i: number): Promise<string | null> {
  try {
    const r = await fetch(`${url}/api/v1/submit_measurement`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ format: 'json', content: sampleMeasurement({ input: `https://crash-${i}.example/` }) }),
      signal: AbortSignal.timeout(10_000),
    });
    if (r.status !== 200) return null;
    return ((await r.json()) as { measurement_uid: string }).measurement_uid;
  } catch {
    return null;
  }
}

/** serveChild() for one test: every child it started is SIGKILLed, then `cleanup` runs, when the test ends. */
function servesFor(t: { after: (fn: () => unknown) => void }, cleanup: () => unknown): (args: string[]) => Promise<ServeChild> {
  const children: ServeChild[] = [];
  t.after(async () => {
    for (const c of children) await c.stop('SIGKILL');
    await cleanup();
  });
  return async (args) => {
    const c = await serveChild(args);
    children.push(c);
    return c;
  };
}

/** 16 submitters against the child until `want` are acknowledged (at most 30 s), then a SIGKILL mid-stream. */
async function ingestUntilKilled(
  child: ServeChild,
  want: number,
  perSubmitter: number,
): Promise<{ acked: Map<number, string>; attempted: number }> {
  const acked = new Map<number, string>();
  let next = 0;
  let dead = false;
  const loops = Array.from({ length: 16 }, async () => {
    // Bounded: each submitter stops at the kill, or after perSubmitter requests at most.
    for (let k = 0; k < perSubmitter && !dead; k++) {
      const i = next++;
      const uid = await post(child.url, i);
      if (uid) acked.set(i, uid);
      else if (dead) break;
    }
  });
  for (let w = 0; w < 600 && acked.size < want; w++) await new Promise((r) => setTimeout(r, 50));
  await child.stop('SIGKILL');
  dead = true;
  await Promise.all(loops);
  return { acked, attempted: next };
}

/** Resubmits every attempted measurement (as a probe's spool would), 32 at a time: each is answered, an acknowledged one with its first uid. */
async function resubmitAll(url: string, attempted: number, acked: Map<number, string>): Promise<void> {
  for (let i = 0; i < attempted; i += 32) {
    const batch = Array.from({ length: Math.min(32, attempted - i) }, (_, k) => i + k);
    const uids = await Promise.all(batch.map((j) => post(url, j)));
    uids.forEach((uid, k) => {
      assert.ok(uid, `resubmission ${batch[k]} failed`);
      if (acked.has(batch[k])) assert.equal(uid, acked.get(batch[k]));
    });
  }
}

describe('collector under kill -9 (wallscope serve, SQLite)', () => {
  it('keeps every acknowledged measurement exactly once across a SIGKILL and a restart', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-crash-'));
    const db = join(dir, 'crash.sqlite');
    const serve = servesFor(t, async () => {
      rmSync(dir, { recursive: true, force: true });
    });
    const first = await serve(['--db', db]);
    // Let ingest run until a few hundred are acknowledged, then kill mid-stream.
    const { acked, attempted } = await ingestUntilKilled(first, 300, 2000);
    t.diagnostic(`acknowledged before the kill: ${acked.size} of ${attempted} attempted`);
    assert.ok(acked.size >= 50, `ingest was running (${acked.size} acknowledged)`);

    // After the crash: the file opens (WAL recovery), is intact, and holds every acknowledged one.
    const store = new SqliteStore(db);
    assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
    for (const [i, uid] of acked) {
      const got = await store.get(uid);
      assert.ok(got, `acknowledged measurement ${i} (${uid}) is lost`);
      assert.equal(got.measurement.input, `https://crash-${i}.example/`);
    }
    const rows = (store.db.prepare('SELECT COUNT(*) AS n FROM measurements').get() as { n: number }).n;
    const raws = (store.db.prepare('SELECT COUNT(*) AS n FROM raw_measurements').get() as { n: number }).n;
    assert.equal(rows, raws, 'row and raw body are stored together or not at all');
    assert.ok(rows >= acked.size && rows <= attempted);
    await store.close();

    // Restart and resubmit everything (as a probe's spool would): the acknowledged ones are
    // recognised (same uid, not stored again), the rest are stored; nothing twice.
    const second = await serve(['--db', db]);
    await resubmitAll(second.url, attempted, acked);
    await second.stop('SIGTERM');
    const after = new SqliteStore(db);
    assert.equal(await after.count(), attempted, 'every measurement exactly once');
    const distinct = (after.db.prepare('SELECT COUNT(DISTINCT input) AS n FROM measurements').get() as { n: number }).n;
    assert.equal(distinct, attempted);
    await after.close();
  });
});

describe('collector under kill -9 (wallscope serve, ClickHouse)', () => {
  const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;
  if (!CH_URL) {
    it('SKIPPED: WALLSCOPE_CLICKHOUSE_URL is unset', { skip: 'WALLSCOPE_CLICKHOUSE_URL is unset' }, () => {});
    return;
  }
  it('keeps every acknowledged measurement exactly once across a SIGKILL and a restart', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-crash-'));
    const database = `wallscope_crash_${process.pid}`;
    const target = `${CH_URL}/${database}`;
    // The collector's side file (change detection) in the test's own directory, kept across the restart.
    const side = ['--changes-db', join(dir, 'changes.db')];
    const serve = servesFor(t, async () => {
      const s = await ClickHouseStore.open({ url: CH_URL, database });
      await s.dropDatabase();
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const first = await serve(['--clickhouse', target, ...side]);
    const { acked, attempted } = await ingestUntilKilled(first, 100, 500);
    t.diagnostic(`acknowledged before the kill: ${acked.size} of ${attempted} attempted`);
    assert.ok(acked.size >= 20, `ingest was running (${acked.size} acknowledged)`);
    const store = await ClickHouseStore.open({ url: CH_URL, database });
    for (const [i, uid] of acked)
      assert.equal((await store.get(uid))?.measurement.input, `https://crash-${i}.example/`, `acknowledged ${i} lost`);
    await store.close();
    const second = await serve(['--clickhouse', target, ...side]);
    await resubmitAll(second.url, attempted, acked);
    await second.stop('SIGTERM');
    const after = await ClickHouseStore.open({ url: CH_URL, database });
    assert.equal(await after.count(), attempted, 'every measurement exactly once');
    await after.close();
  });
});

/** POSTs measurements [from, from+n) as one NDJSON batch; their uids when acknowledged, else null. */
async function postBatch(url: string, from: number, n: number): Promise<string[] | null> {
  const body = Array.from({ length: n }, (_, k) =>
    JSON.stringify({ format: 'json', content: sampleMeasurement({ input: `https://crash-${from + k}.example/` }) }),
  ).join('\n');
  try {
    const r = await fetch(`${url}/api/v1/submit_measurements`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    if (r.status !== 200) return null;
    const results = ((await r.json()) as { results: Array<{ measurement_uid?: string }> }).results;
    return results.length === n && results.every((x) => x.measurement_uid) ? results.map((x) => x.measurement_uid!) : null;
  } catch {
    return null;
  }
}

describe('collector under kill -9 during NDJSON batches (wallscope serve, SQLite writer thread)', () => {
  it('keeps every acknowledged batch whole and exactly once; an unacknowledged batch is all or nothing', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-crash-'));
    const db = join(dir, 'crash.sqlite');
    const serve = servesFor(t, async () => {
      rmSync(dir, { recursive: true, force: true });
    });
    const first = await serve(['--db', db]);
    const SIZE = 50;
    const acked = new Map<number, string[]>(); // first index of the batch -> uids
    let next = 0;
    let dead = false;
    const loops = Array.from({ length: 4 }, async () => {
      for (let k = 0; k < 400 && !dead; k++) {
        const from = next;
        next += SIZE;
        const uids = await postBatch(first.url, from, SIZE);
        if (uids) acked.set(from, uids);
        else if (dead) break;
      }
    });
    for (let w = 0; w < 600 && acked.size < 20; w++) await new Promise((r) => setTimeout(r, 50));
    await first.stop('SIGKILL');
    dead = true;
    await Promise.all(loops);
    const attempted = next;
    t.diagnostic(`batches acknowledged before the kill: ${acked.size} of ${attempted / SIZE} attempted`);
    assert.ok(acked.size >= 5, `ingest was running (${acked.size} batches acknowledged)`);

    const store = new SqliteStore(db);
    assert.equal(store.db.pragma('integrity_check', { simple: true }), 'ok');
    for (const [from, uids] of acked)
      for (let k = 0; k < SIZE; k++)
        assert.equal((await store.get(uids[k]))?.measurement.input, `https://crash-${from + k}.example/`, `acknowledged ${from + k} lost`);
    // One transaction per batch: every batch is in the store whole or not at all.
    const inputs = new Set((store.db.prepare('SELECT input FROM measurements').all() as Array<{ input: string }>).map((r) => r.input));
    for (let from = 0; from < attempted; from += SIZE) {
      const have = Array.from({ length: SIZE }, (_, k) => inputs.has(`https://crash-${from + k}.example/`)).filter(Boolean).length;
      assert.ok(have === 0 || have === SIZE, `batch at ${from} is half-written (${have} of ${SIZE})`);
    }
    await store.close();

    const second = await serve(['--db', db]);
    for (let from = 0; from < attempted; from += SIZE) {
      const uids = await postBatch(second.url, from, SIZE);
      assert.ok(uids, `resubmission of the batch at ${from} failed`);
      if (acked.has(from)) assert.deepEqual(uids, acked.get(from));
    }
    await second.stop('SIGTERM');
    const after = new SqliteStore(db);
    assert.equal(await after.count(), attempted, 'every measurement exactly once');
    await after.close();
  });
});

describe('collector under kill -9 (wallscope serve, ClickHouse behind the local journal)', () => {
  const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;
  if (!CH_URL) {
    it('SKIPPED: WALLSCOPE_CLICKHOUSE_URL is unset', { skip: 'WALLSCOPE_CLICKHOUSE_URL is unset' }, () => {});
    return;
  }
  it('ships every acknowledged measurement exactly once after a SIGKILL and a restart', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-crash-'));
    const journal = join(dir, 'journal.sqlite');
    const database = `wallscope_crashj_${process.pid}`;
    const target = `${CH_URL}/${database}`;
    const serve = servesFor(t, async () => {
      const s = await ClickHouseStore.open({ url: CH_URL, database });
      await s.dropDatabase();
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const side = ['--changes-db', join(dir, 'changes.db')];
    const first = await serve(['--clickhouse', target, '--journal', journal, ...side]);
    const { acked, attempted } = await ingestUntilKilled(first, 300, 2000);
    t.diagnostic(`acknowledged before the kill: ${acked.size} of ${attempted} attempted`);
    assert.ok(acked.size >= 50, `ingest was running (${acked.size} acknowledged)`);
    // The next start ships what the journal kept; then ClickHouse itself holds every acknowledged one.
    const j = new JournaledStore(await ClickHouseStore.open({ url: CH_URL, database }), { file: journal });
    assert.equal(await j.flush(60_000), true, 'the journal drained');
    for (const [i, uid] of acked)
      assert.equal((await j.inner.get(uid))?.measurement.input, `https://crash-${i}.example/`, `acknowledged ${i} lost`);
    await j.close();
    const second = await serve(['--clickhouse', target, '--journal', journal, ...side]);
    await resubmitAll(second.url, attempted, acked);
    await second.stop('SIGTERM'); // drains the journal before exiting
    const after = await ClickHouseStore.open({ url: CH_URL, database });
    assert.equal(await after.count(), attempted, 'every measurement exactly once');
    await after.close();
  });
});
