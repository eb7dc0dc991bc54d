// Change detection on a large SQLite store (issue 14 "Benchmark"): the incremental cost per new
// measurement (ChangeStore.observe after the store's put, in time order, and for a late one that
// recomputes its key), a full rebuild (ChangeStore.rebuild: every key's states and changes from the
// measurements table), and the raw SQL (window functions) that computes the same change points
// with 2 confirmations, on the same file.
//   [BENCH_DB=store.sqlite] node dist/bench/changes.js [N=1000000] [new=20000]
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bulkLoadSqlite, ChangeStore, SqliteStore } from '../src/store/index.js';
import { realisticRows } from '../src/testing/realistic-seed.js';
import { syntheticMeasurements } from '../src/testing/seed.js';

const N = Number(process.argv[2] ?? 1_000_000);
const NEW = Number(process.argv[3] ?? 20_000);
const END = new Date('2026-11-22T00:00:00Z');

// The change points with 2 confirmations in SQL: decided measurements per key in time order; a
// measurement that agrees with the previous one confirms its state; a change is a confirmation
// whose state differs from the previous confirmation's, dated by the first of the pair. (Layers
// are compared by ChangeStore only when both are known; this SQL compares blocking and mechanism.)
const RAW_SQL = `
  WITH d AS (
    SELECT input, probe_cc, probe_asn, coalesce(region, '') AS r, ts, uid,
           CASE WHEN blocking = 'false' THEN 'false|none' ELSE blocking || '|' || coalesce(mechanism, 'unknown') END AS s
    FROM measurements WHERE input IS NOT NULL AND status != 'unknown' AND blocking IS NOT NULL
  ), p AS (
    SELECT *, lag(s) OVER w AS ps, lag(ts) OVER w AS pts FROM d
    WINDOW w AS (PARTITION BY input, probe_cc, probe_asn, r ORDER BY ts, uid)
  ), c AS (
    SELECT pts AS at, s, lag(s) OVER (PARTITION BY input, probe_cc, probe_asn, r ORDER BY ts, uid) AS prev FROM p WHERE s = ps
  )
  SELECT count(*) AS changes FROM c WHERE prev IS NOT NULL AND s != prev`;

// BENCH_DB=file: a store seeded before (bench/explorer-p95.ts with BENCH_KEEP=1), used in place
// (new measurements are added to it). Otherwise N realistic measurements are bulk-loaded into a
// temporary file (src/testing/realistic-seed.ts), deleted at the end.
const dir = process.env.BENCH_DB ? null : mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'wallscope-bench-changes-'));
try {
  const file = process.env.BENCH_DB ?? join(dir!, 'changes.sqlite');
  let t0 = performance.now();
  if (!process.env.BENCH_DB) {
    const load = bulkLoadSqlite(file, realisticRows(N));
    console.log(`seeded ${load.inserted} measurements (bulk load) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const store = new SqliteStore(file);
  const n = await store.count();
  console.log(`store: ${n} measurements in ${file}`);
  t0 = performance.now();
  const changes = new ChangeStore(file);
  console.log(
    `ChangeStore opened (creates its tables and its (input, probe_cc, probe_asn, ts) index on the measurements): ${((performance.now() - t0) / 1000).toFixed(2)} s`,
  );

  t0 = performance.now();
  const r = changes.rebuild();
  const rebuildS = (performance.now() - t0) / 1000;
  console.log(
    `full rebuild (ChangeStore.rebuild):  ${rebuildS.toFixed(2)} s for ${r.measurements} measurements, ${r.keys} keys, ${r.changes} changes (${((rebuildS * 1e6) / r.measurements).toFixed(2)} us per measurement)`,
  );

  const raw = new Database(file, { readonly: true });
  t0 = performance.now();
  const sqlChanges = (raw.prepare(RAW_SQL).get() as { changes: number }).changes;
  const sqlS = (performance.now() - t0) / 1000;
  console.log(
    `raw SQL (window functions):          ${sqlS.toFixed(2)} s, ${sqlChanges} changes${sqlChanges === r.changes ? ' (same count)' : ` (ChangeStore: ${r.changes}; the difference is layer moves between two known layers)`}`,
  );
  raw.close();

  // Incremental: NEW measurements of the day after, each stored then observed (the collector's path).
  const fresh = [...syntheticMeasurements(NEW, { seed: 2, days: 1, end: new Date(END.getTime() + 86400_000) })].sort((a, b) =>
    a.m.measurement_start_time.localeCompare(b.m.measurement_start_time),
  );
  let observeMs = 0;
  let putMs = 0;
  let found = 0;
  for (let i = 0; i < fresh.length; i += 500) {
    const chunk = fresh.slice(i, i + 500);
    const p0 = performance.now();
    const res = await store.putMany(chunk);
    putMs += performance.now() - p0;
    const s = performance.now();
    found += changes.observeMany(res.flatMap((x, k) => (x.inserted ? [{ ...chunk[k]!, uid: x.measurement_uid }] : []))).length;
    observeMs += performance.now() - s;
  }
  console.log(
    `for scale: the store's own putMany of the same batches took ${((putMs * 1000) / fresh.length).toFixed(1)} us per measurement`,
  );
  console.log(
    `incremental (observeMany, batches of 500 as the collector's batch route stores them, in time order): ${((observeMs * 1000) / fresh.length).toFixed(1)} us per new measurement (${fresh.length} measurements, ${found} changes)`,
  );
  // One at a time (a collector taking single submissions: one transaction each).
  const single = [...syntheticMeasurements(Math.min(2000, NEW), { seed: 4, days: 1, end: new Date(END.getTime() + 2 * 86400_000) })].sort(
    (a, b) => a.m.measurement_start_time.localeCompare(b.m.measurement_start_time),
  );
  const sres = await store.putMany(single);
  const s1 = performance.now();
  sres.forEach((x, k) => x.inserted && changes.observe(single[k]!.m, single[k]!.verdict, x.measurement_uid));
  console.log(
    `incremental (observe, one transaction each): ${(((performance.now() - s1) * 1000) / single.length).toFixed(1)} us per new measurement (${single.length} measurements)`,
  );

  // Late arrivals: measurements older than their key's last one recompute that key from the table.
  const late = [...syntheticMeasurements(Math.min(1000, NEW), { seed: 3, days: 365, end: END })];
  const res = await store.putMany(late.slice(0, 200));
  let s = performance.now();
  res.forEach((x, k) => x.inserted && changes.observe(late[k]!.m, late[k]!.verdict, x.measurement_uid));
  console.log(
    `incremental, late measurement one at a time: ${(((performance.now() - s) * 1000) / res.length).toFixed(1)} us per measurement (its key recomputed; ${res.length} measurements, ${Math.round(n / r.keys)} measurements per key)`,
  );
  const rest = late.slice(200);
  const res2 = await store.putMany(rest);
  s = performance.now();
  changes.observeMany(res2.flatMap((x, k) => (x.inserted ? [{ ...rest[k]!, uid: x.measurement_uid }] : [])));
  console.log(
    `incremental, late measurements in one batch: ${(((performance.now() - s) * 1000) / res2.length).toFixed(1)} us per measurement (each key recomputed once; ${res2.length} measurements)`,
  );
  changes.close();
  await store.close();
} finally {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
