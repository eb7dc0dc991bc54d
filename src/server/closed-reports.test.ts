// ClosedReports over a real SQLite store (a temp file); the store's calls are counted by a thin
// wrapper, which can also hold an answer back for a turn of the event loop (to order a race).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../store/index.js';
import { ClosedReports } from './closed-reports.js';

const ID = '20261122T080000Z_webconnectivity_CN_4134_n1_abcdefgh0123456789abcdef';

function world(t: { after: (fn: () => unknown) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-closed-'));
  const stores: SqliteStore[] = [];
  t.after(async () => {
    for (const s of stores) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  /** A store on the shared file (another process, or the same one after a restart). */
  const open = () => {
    const s = new SqliteStore(join(dir, 'db.sqlite'));
    stores.push(s);
    return s;
  };
  return { open };
}

/** The real store, its isReportClosed calls counted (and held back one turn when `slow`). */
function counted(store: SqliteStore, slow = false) {
  const c = {
    calls: 0,
    closeReport: (id: string) => store.closeReport(id),
    isReportClosed: async (id: string) => {
      c.calls++;
      const answer = await store.isReportClosed(id);
      if (slow) await new Promise((r) => setImmediate(r));
      return answer;
    },
  };
  return c;
}

describe('ClosedReports(store, opts)', () => {
  it('asks the store about an open report once per openTtlMs, and never again about a closed one', async (t) => {
    const { open } = world(t);
    const store = counted(open());
    let now = 1_000_000;
    const reports = new ClosedReports(store, { openTtlMs: 30_000, now: () => now });
    for (let i = 0; i < 100; i++) assert.equal(await reports.isClosed(ID), false);
    assert.equal(store.calls, 1, 'a run of submissions to one open report: one store call');
    now += 30_000;
    assert.equal(await reports.isClosed(ID), false);
    assert.equal(store.calls, 2, 'asked again after the TTL');
    assert.equal(reports.knownClosed(ID), false);
    await reports.close(ID);
    assert.equal(reports.knownClosed(ID), true, 'known in memory, synchronously');
    for (let i = 0; i < 100; i++) assert.equal(await reports.isClosed(ID), true);
    assert.equal(store.calls, 2, 'closed here: known at once, from memory');
    assert.equal(reports.storeLookups, 2);
    await reports.close(ID); // closing twice is fine
    assert.equal(await reports.isClosed(ID), true);
  });

  it('a close through another collector on the same store is seen within openTtlMs; after a restart from the store', async (t) => {
    const { open } = world(t);
    let now = 0;
    const a = new ClosedReports(open(), { openTtlMs: 10_000, now: () => now });
    const b = new ClosedReports(open(), { openTtlMs: 10_000, now: () => now });
    assert.equal(await a.isClosed(ID), false);
    await b.close(ID);
    assert.equal(await b.isClosed(ID), true);
    assert.equal(await a.isClosed(ID), false, 'within the TTL the other collector still trusts its answer (documented)');
    now += 10_000;
    assert.equal(await a.isClosed(ID), true, 'after the TTL it asks the store');
    const restarted = new ClosedReports(open());
    assert.equal(restarted.knownClosed(ID), false, 'memory starts empty');
    assert.equal(await restarted.isClosed(ID), true, 'correct across a restart: the store remembers');
    assert.equal(restarted.knownClosed(ID), true, 'and remembered once looked up');
    assert.equal(await restarted.isClosed(ID.replace('abcdef', 'abcdee')), false);
  });

  it('concurrent lookups of one report share one store call; a close during a lookup wins', async (t) => {
    const { open } = world(t);
    const store = counted(open(), true);
    const reports = new ClosedReports(store);
    assert.deepEqual(await Promise.all(Array.from({ length: 50 }, () => reports.isClosed(ID))), Array(50).fill(false));
    assert.equal(store.calls, 1);
    const other = ID.replace('abcdef', 'abcde0');
    const during = reports.isClosed(other); // the store answers "open", but only after the close below
    await reports.close(other);
    assert.equal(await during, true);
    assert.equal(await reports.isClosed(other), true);
    assert.equal(store.calls, 2);
  });

  it('stays bounded: evicted reports are asked again and still answered right', async (t) => {
    const { open } = world(t);
    const store = counted(open());
    const reports = new ClosedReports(store, { maxEntries: 3 });
    const ids = Array.from({ length: 10 }, (_, i) => ID.slice(0, -2) + String(i).padStart(2, '0'));
    for (const id of ids.slice(0, 5)) await reports.close(id);
    for (const id of ids) await reports.isClosed(id);
    const before = store.calls;
    for (let i = 0; i < ids.length; i++) assert.equal(await reports.isClosed(ids[i]), i < 5, ids[i]);
    assert.ok(store.calls - before >= 6, `evicted ids went back to the store (${store.calls - before} calls)`);
    const priv = reports as unknown as { closed: Set<string>; open: Map<string, number> };
    assert.ok(priv.closed.size <= 3 && priv.open.size <= 3, 'both caches bounded');
  });

  it('a store failure rejects the lookup and is not cached: the next call asks again', async (t) => {
    const { open } = world(t);
    const s = open();
    const reports = new ClosedReports(s);
    s.db.close(); // the store fails for real
    await assert.rejects(reports.isClosed(ID), /not open/);
    await assert.rejects(reports.isClosed(ID), /not open/);
    await assert.rejects(reports.close(ID), /not open/);
    assert.equal(reports.storeLookups, 2);
  });
});
