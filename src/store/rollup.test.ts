// The SQLite rollups answer exactly what the raw GROUP BY over the measurements answers, on a real
// store file: after a bulk load, after ingest through put/putMany (the writer thread), late and
// duplicate measurements, re-analysis (setVerdict) and deletes, and after the migration that
// backfills them on an existing store.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { realisticBatches } from '../testing/realistic-seed.js';
import { sampleVerdict, syntheticMeasurements } from '../testing/seed.js';
import { AXES, type AggregationQuery, type Axis, type MeasurementFilter, type TimeGrain } from './types.js';
import { bulkLoadSqlite } from './sqlite-bulk.js';
import { SQLITE_MIGRATIONS, SqliteStore, migrateSqlite } from './sqlite.js';
import { pendingRollupRows, ROLLUP_FOLD_ROWS, ROLLUPS } from './sqlite-rollup.js';

const DAY = 86400;
const FILTERS: MeasurementFilter[] = [
  {},
  { probe_cc: 'CN' },
  { probe_cc: 'IR', blocking: 'true' },
  { probe_asn: 4134 },
  { region: 'Henan' },
  { domain: 'youtube.com' },
  { domain: 'www.bbc.com', blocking: 'null' },
  { category_code: 'NEWS', confirmed: true },
  { mechanism: 'dns.injection', anomaly: true },
  { layer: 'national', test_name: 'web_connectivity' },
  { since: Date.UTC(2026, 9, 23) / 1000 },
  { since: Date.UTC(2026, 5, 1) / 1000, until: Date.UTC(2026, 7, 1) / 1000, probe_cc: 'RU' },
  { blocking: 'false' },
];
const GRAINS: TimeGrain[] = ['day', 'week', 'month'];

/** Every axis alone and with a second, over several filters: the rollup's answer equals the raw one. */
function compareAll(store: SqliteStore): { viaRollup: number; total: number } {
  let viaRollup = 0;
  let total = 0;
  const axes: Array<[Axis | undefined, Axis | undefined]> = [[undefined, undefined]];
  for (const x of AXES) {
    axes.push([x, undefined]);
    for (const y of ['mechanism', 'probe_cc', 'region', 'domain'] as Axis[]) if (y !== x) axes.push([x, y]);
  }
  for (const filter of FILTERS)
    for (const [axis_x, axis_y] of axes)
      for (const time_grain of axis_x === 'measurement_start_day' || axis_y === 'measurement_start_day'
        ? GRAINS
        : (['day'] as TimeGrain[])) {
        const q: AggregationQuery = { axis_x, axis_y, time_grain, filter };
        const got = store.aggregateSync(q);
        const raw = store.rawAggregationSql(q);
        const want = store.runAggregation(raw.sql, raw.params);
        assert.deepEqual(got, want, JSON.stringify(q));
        total++;
        if (ROLLUPS.some((r) => store.aggregationSql(q).sql.includes(` FROM ${r.name} `))) viaRollup++;
      }
  return { viaRollup, total };
}

describe('SQLite rollups', () => {
  it('equal the raw GROUP BY after a bulk load, ingest, late and duplicate measurements, re-analysis and deletes', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-rollup-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'store.sqlite');
    const load = bulkLoadSqlite(file, realisticBatches(15_000));
    assert.equal(load.inserted, 15_000);
    const store = new SqliteStore(file); // writer thread on: inserts count on their own connection
    t.after(() => store.close());
    const first = compareAll(store);
    // Most of the explorer's questions read a rollup; the rest (input axis, ...) the measurements.
    assert.ok(first.viaRollup > first.total * 0.8, `${first.viaRollup} of ${first.total} via a rollup`);

    // Ingest: new measurements, late ones (a year back, inside already-counted days), and duplicates.
    const fresh = [...syntheticMeasurements(600, { seed: 5, days: 400, end: new Date(Date.UTC(2026, 10, 22)) })];
    await store.putMany(fresh.slice(0, 300));
    const single = await Promise.all(fresh.slice(300).map((x) => store.put(x.m, x.verdict)));
    assert.ok(single.every((r) => r.inserted));
    const again = await store.putMany(fresh.slice(0, 100));
    assert.ok(
      again.every((r) => !r.inserted),
      'duplicates are not inserted',
    );
    const dupSingle = await store.put(fresh[400]!.m, fresh[400]!.verdict);
    assert.equal(dupSingle.inserted, false);
    compareAll(store);

    // Re-analysis moves a measurement between groups; delete removes it; a group that empties goes.
    const uids = (await store.list({ probe_cc: 'CN' }, { limit: 40 })).results.map((r) => r.measurement_uid);
    for (const uid of uids.slice(0, 20))
      assert.ok(await store.setVerdict(uid, sampleVerdict('blocked', { mechanism: 'tls.reset', layer: 'isp' })));
    for (const uid of uids.slice(20)) assert.ok(await store.delete(uid));
    assert.equal(await store.delete(uids[25]!), false);
    // Below the fold's threshold the deltas are still pending: reads count them with the rollups.
    assert.ok(pendingRollupRows(store.db) > 600, 'the ingest, re-analysis and deletes above are pending');
    compareAll(store);
    store.foldRollups();
    assert.equal(pendingRollupRows(store.db), 0);
    compareAll(store);
    for (const r of ROLLUPS) {
      const zero = store.db.prepare(`SELECT count(*) AS c FROM ${r.name} WHERE n <= 0`).get() as { c: number };
      assert.equal(zero.c, 0, `${r.name} keeps no empty group`);
    }
    // The writer folds by itself once ROLLUP_FOLD_ROWS deltas are pending, and reads stay exact.
    const more = [...syntheticMeasurements(ROLLUP_FOLD_ROWS + 1500, { seed: 9, days: 30, end: new Date(Date.UTC(2026, 10, 22)) })];
    for (let i = 0; i < more.length; i += 1000) await store.putMany(more.slice(i, i + 1000));
    assert.ok(pendingRollupRows(store.db) < ROLLUP_FOLD_ROWS, `${pendingRollupRows(store.db)} still pending`);
    compareAll(store);
    store.foldRollups();
    // The total of every rollup is the number of measurements.
    const count = await store.count();
    for (const r of ROLLUPS) assert.equal((store.db.prepare(`SELECT sum(n) AS s FROM ${r.name}`).get() as { s: number }).s, count, r.name);
  });

  it('count an insert batch by rollup key in its own transaction: duplicates in and across batches, late measurements, inline puts', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-rollup-batch-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'store.sqlite');
    bulkLoadSqlite(file, realisticBatches(5_000));
    const raw = new Database(file);
    assert.deepEqual(
      raw.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name").all(),
      [{ name: 'measurements_rollup_delete' }, { name: 'measurements_rollup_update' }],
      'no trigger per inserted row',
    );
    raw.close();
    const store = new SqliteStore(file);
    t.after(() => store.close());
    const end = new Date(Date.UTC(2026, 10, 22));
    // One batch: 400 measurements in 4 countries on 2 days (many share a rollup key), each of the
    // first 50 twice inside the batch, and 100 late ones spread over the year.
    const recent = [...syntheticMeasurements(400, { seed: 21, days: 2, end, ccs: ['CN', 'IR', 'RU', 'TR'] })];
    const late = [...syntheticMeasurements(100, { seed: 22, days: 360, end: new Date(Date.UTC(2026, 9, 1)) })];
    const batch = [...recent.slice(0, 50), ...recent, ...late];
    const pending0 = pendingRollupRows(store.db);
    const res = await store.putMany(batch);
    assert.equal(res.filter((r) => r.inserted).length, 500, 'each duplicate inside the batch is stored once');
    const added = pendingRollupRows(store.db) - pending0;
    assert.ok(added < 500, `${added} pending rows for 500 inserts: one per distinct key`);
    compareAll(store);
    // The same batch again: nothing inserted, nothing counted.
    const again = await store.putMany(batch);
    assert.ok(again.every((r) => !r.inserted));
    assert.equal(pendingRollupRows(store.db) - pending0, added);
    // Group commits of single puts (a few new, the rest duplicates), and inline puts on the main connection.
    const more = [...syntheticMeasurements(60, { seed: 23, days: 30, end })];
    const single = await Promise.all([...more.slice(0, 30), ...batch.slice(0, 30)].map((x) => store.put(x.m, x.verdict)));
    assert.equal(single.filter((r) => r.inserted).length, 30);
    for (const x of [...more.slice(30), ...late.slice(0, 10)]) store.putSync(x.m, x.verdict);
    compareAll(store);
    store.foldRollups();
    compareAll(store);
    const count = await store.count();
    for (const r of ROLLUPS) assert.equal((store.db.prepare(`SELECT sum(n) AS s FROM ${r.name}`).get() as { s: number }).s, count, r.name);
  });

  it('are backfilled by the migration on a store that had measurements before them', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-rollup-mig-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'old.sqlite');
    const before = SQLITE_MIGRATIONS.filter((m) => !m.name.startsWith('rollups'));
    const db = new Database(file);
    migrateSqlite(db, before);
    db.close();
    // An old store: measurements inserted through the old schema (no rollup tables yet).
    const rows = [...syntheticMeasurements(2_000, { seed: 9, days: 60 })];
    {
      const old = new Database(file);
      const cols =
        'uid, report_id, input, domain, test_name, probe_cc, probe_asn, region, measurement_start_time, ts, day, status, blocking, accessible, mechanism, layer, confidence, confirmed, explanation, category_code, analysis_version, verdict';
      const { flatten, serializeMeasurement } = await import('./row.js');
      const ins = old.prepare(
        `INSERT OR IGNORE INTO measurements (${cols}) VALUES (${cols
          .split(', ')
          .map((c) => '@' + c)
          .join(', ')})`,
      );
      const raw = old.prepare('INSERT OR IGNORE INTO raw_measurements (uid, body) VALUES (?, ?)');
      old.transaction(() => {
        for (const { m, verdict } of rows) {
          const { uid, json } = serializeMeasurement(m);
          ins.run(flatten(m, verdict, uid));
          raw.run(uid, json);
        }
      })();
      assert.deepEqual(old.prepare("SELECT count(*) AS c FROM sqlite_master WHERE name LIKE 'rollup_%'").get(), { c: 0 });
      old.close();
    }
    const store = new SqliteStore(file);
    t.after(() => store.close());
    assert.equal(await store.schemaVersion(), SQLITE_MIGRATIONS.at(-1)!.version);
    const { viaRollup } = compareAll(store);
    assert.ok(viaRollup > 0);
    assert.equal((store.db.prepare('SELECT sum(n) AS s FROM rollup_all').get() as { s: number }).s, await store.count());
    // Whole days only: a bound inside a day reads the measurements (and still answers right).
    const q: AggregationQuery = { axis_x: 'probe_cc', filter: { since: Date.UTC(2026, 9, 1) / 1000 + DAY / 2 } };
    assert.ok(store.aggregationSql(q).sql.includes(' FROM measurements '));
  });
});
