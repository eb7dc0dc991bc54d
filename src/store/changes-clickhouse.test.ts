// Change detection beside ClickHouse, against the real server (scripts/clickhouse.sh): the same
// pure state machine (model/changes.ts via ChangeStore) fed on ingest from a ClickHouse store, with
// its observation log, finds exactly the changes and states it finds beside SQLite for the same
// measurements, arriving in the same (shuffled, partly late and duplicated) order; and a change
// store filled from ClickHouse afterwards (syncFrom, as `serve --clickhouse` does on its first
// start) finds the same changes as a rebuild over the SQLite store. Following ClickHouse's row
// versions (`serve --clickhouse` every --changes-follow seconds) brings what other collectors wrote,
// their re-analyses and deletes: the result equals a fresh sync, and nothing is alerted twice.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { prng, type Measurement, type Verdict } from '../model/index.js';
import type { ChangeRecord } from '../model/changes.js';
import { realisticBatches } from '../testing/realistic-seed.js';
import { ChangeStore, trackChanges } from './changes.js';
import { ClickHouseStore } from './clickhouse.js';
import { measurementUid } from './row.js';
import { SqliteStore } from './sqlite.js';

const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;

/** A change without what differs by store and clock (its id, when it was detected). */
const comparable = (cs: ChangeRecord[]) =>
  cs
    .map(({ id: _id, detected_at: _d, ...c }) => JSON.stringify(c))
    .sort()
    .map((s) => JSON.parse(s) as Omit<ChangeRecord, 'id' | 'detected_at'>);

describe(
  'change detection on ClickHouse',
  { skip: CH_URL ? false : 'WALLSCOPE_CLICKHOUSE_URL is unset (eval "$(bash scripts/clickhouse.sh start)")' },
  () => {
    it('finds the same changes and states as on SQLite, on ingest and from a sync', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'wallscope-changes-ch-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const database = `wallscope_changes_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
      const ch = await ClickHouseStore.open({ url: CH_URL!, database });
      t.after(async () => {
        await ch.dropDatabase();
        await ch.close();
      });
      const sqlite = new SqliteStore(join(dir, 'store.sqlite'));
      t.after(() => sqlite.close());
      const onSqlite = new ChangeStore(sqlite.file);
      const onCh = new ChangeStore(join(dir, 'changes.sqlite'), { observationLog: true });
      t.after(() => {
        onSqlite.close();
        onCh.close();
      });
      const a = trackChanges(sqlite, onSqlite);
      const b = trackChanges(ch, onCh);

      // A year of realistic measurements (blocks that start and are lifted during it), shuffled in
      // chunks so that some arrive after newer ones of their key (late), with some sent twice.
      const all: Array<{ m: Measurement; verdict: Verdict }> = [];
      for (const batch of realisticBatches(6000, { seed: 3 })) all.push(...batch);
      const rnd = prng(11);
      for (let i = 0; i < all.length; i += 1) {
        if (rnd() < 0.05) {
          const j = Math.max(0, i - Math.floor(rnd() * 2000));
          [all[i], all[j]] = [all[j]!, all[i]!];
        }
      }
      for (let i = 0; i < all.length; i += 500) {
        const chunk = all.slice(i, i + 500);
        const again = i > 0 ? all.slice(i - 50, i) : [];
        await a.putMany([...chunk, ...again]);
        await b.putMany([...chunk, ...again]);
      }
      const fromSqlite = onSqlite.list({ limit: 10_000 });
      const fromCh = onCh.list({ limit: 10_000 });
      assert.ok(fromSqlite.length > 5, `the year has changes (${fromSqlite.length})`);
      assert.deepEqual(comparable(fromCh), comparable(fromSqlite));
      assert.deepEqual(onCh.states({ limit: 10_000 }), onSqlite.states({ limit: 10_000 }));
      assert.equal(onCh.observationCount(), all.length);

      // A change store filled from ClickHouse afterwards = a rebuild over the SQLite store.
      const synced = new ChangeStore(join(dir, 'synced.sqlite'), { observationLog: true });
      t.after(() => synced.close());
      const r = await synced.syncFrom((after, n) => ch.changeRows(after, n), 700);
      assert.equal(r.measurements, all.length);
      const rebuilt = onSqlite.rebuild();
      assert.equal(r.changes, rebuilt.changes);
      assert.deepEqual(comparable(synced.list({ limit: 10_000 })), comparable(onSqlite.list({ limit: 10_000 })));
      assert.deepEqual(synced.states({ limit: 10_000 }), onSqlite.states({ limit: 10_000 }));
    });

    it('follows what other collectors write, re-analyse and delete: equal to a fresh sync, each change alerted once', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'wallscope-follow-ch-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const database = `wallscope_follow_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
      const mine = await ClickHouseStore.open({ url: CH_URL!, database });
      const other = await ClickHouseStore.open({ url: CH_URL!, database });
      t.after(async () => {
        await other.close();
        await mine.dropDatabase();
        await mine.close();
      });
      const changes = new ChangeStore(join(dir, 'changes.sqlite'), { observationLog: true });
      t.after(() => changes.close());
      const alerted: ChangeRecord[] = [];
      changes.onChange((c) => void alerted.push(c));
      changes.setFollowCursor({ version: await mine.maxVersion(), uid: '' });
      const follow = () => changes.follow((after, n) => mine.followRows(after, n), { pageSize: 300 });
      const synced = async (name: string) => {
        const s = new ChangeStore(join(dir, name), { observationLog: true });
        t.after(() => s.close());
        await s.syncFrom((after, n) => mine.changeRows(after, n), 1000);
        return s;
      };

      // This collector ingests (and observes) every other chunk; another writes the rest unseen.
      const ours = trackChanges(mine, changes);
      const all: Array<{ m: Measurement; verdict: Verdict }> = [];
      for (const batch of realisticBatches(3000, { seed: 5 })) all.push(...batch);
      for (let i = 0, k = 0; i < all.length; i += 250, k++) await (k % 2 ? other : ours).putMany(all.slice(i, i + 250));
      const onIngest = alerted.length;
      const first = await follow();
      assert.ok(first.rows >= all.length, `every row version read (${first.rows})`);
      assert.ok(alerted.length > onIngest, "changes found in the other collector's measurements are alerted");
      assert.equal(changes.observationCount(), all.length);
      const fresh = await synced('fresh.sqlite');
      assert.deepEqual(changes.states({ limit: 10_000 }), fresh.states({ limit: 10_000 }));
      assert.deepEqual(comparable(changes.list({ limit: 10_000 })), comparable(fresh.list({ limit: 10_000 })));

      // The other collector re-analyses one measurement of a changed key (its verdict becomes
      // another's) and deletes one: the follow rebuilds both keys.
      const changed = changes.list({ limit: 10_000 })[0]!;
      const ofKey = all.filter((x) => x.m.input === changed.target && x.m.probe_cc === changed.probe_cc);
      const uids = ofKey.map((x) => measurementUid(x.m));
      assert.ok(ofKey.length > 2, `the key has its measurements (${ofKey.length})`);
      const flip = ofKey.find((x) => x.verdict.status !== ofKey[0]!.verdict.status)!.verdict;
      assert.ok(await other.setVerdict(uids[0]!, flip));
      assert.ok(await other.delete(uids[1]!));
      await follow();
      assert.equal(changes.observationCount(), all.length - 1);
      const after = await synced('after.sqlite');
      assert.deepEqual(changes.states({ limit: 10_000 }), after.states({ limit: 10_000 }));
      assert.deepEqual(comparable(changes.list({ limit: 10_000 })), comparable(after.list({ limit: 10_000 })));

      // Nothing new: a follow reads the recent versions again (clock skew) and alerts nothing.
      const before = alerted.length;
      const again = await follow();
      assert.equal(again.changes, 0);
      assert.equal(alerted.length, before);
      assert.ok(new Set(alerted.map((c) => c.id)).size === alerted.length, 'no change alerted twice');

      // The race of the two paths: the follow saw rows before this collector's own observation of
      // them ran (it observes after ClickHouse acknowledged); that observation is then not a second step.
      const states = changes.states({ limit: 10_000 });
      const late = all
        .slice(0, 500)
        .map((x) => ({ ...x, uid: measurementUid(x.m) }))
        .filter((x) => x.uid !== uids[1]);
      assert.deepEqual(changes.observeMany(late), []);
      assert.deepEqual(changes.states({ limit: 10_000 }), states);
    });
  },
);
