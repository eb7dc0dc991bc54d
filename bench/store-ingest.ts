// Ingest rate into the store through the HTTP API (`wallscope serve` in a child process, 64
// concurrent connections, autocannon) beside the raw insert rate of the same rows with the
// database client alone, in the same run. SQLite always; ClickHouse when WALLSCOPE_CLICKHOUSE_URL
// is set. Usage: node dist/bench/store-ingest.js [N=4000]  (raw baselines: N rows; HTTP: BENCH_DURATION_S=5 s
// of distinct measurements from the same generator; rates from autocannon's own duration)
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { analyzeMeasurement } from '../src/analysis/index.js';
import { serveChild } from '../src/server/serve-child.js';
import { loadMeasurement, submitLoad } from '../src/server/load.js';
import { ClickHouseStore, SqliteStore, SQLITE_MIGRATIONS } from '../src/store/index.js';
import { flatten, measurementUid } from '../src/store/row.js';
import { compressBody } from '../src/store/sqlite.js';
import type { Measurement } from '../src/model/index.js';

const N = Number(process.argv[2] ?? 4000);
const CONNECTIONS = 64;

/** The same measurements the HTTP run submits (loadMeasurement), for the raw baselines. */
function measurements(tag: string): Measurement[] {
  return Array.from({ length: N }, (_, i) => loadMeasurement(tag, i, START));
}

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const START = new Date('2026-11-22T05:00:00Z');

/** HTTP: 64 connections for DURATION_S seconds, every request a distinct measurement (loadMeasurement). */
async function httpIngest(url: string, prefix: string): Promise<{ perSecond: number; ok: number; bad: number; p50: number; p99: number }> {
  const r = await submitLoad(url, { connections: CONNECTIONS, durationS: DURATION_S, prefix, start: START });
  return { perSecond: r.perSecond, ok: r.ok, bad: r.errors + r.timeouts + r.non2xx, p50: r.p50Ms, p99: r.p99Ms };
}

function rate(n: number, t0: number): number {
  return n / ((performance.now() - t0) / 1000);
}

async function sqlite(dir: string): Promise<void> {
  const ms = measurements('sq');
  // Raw: the same flat rows and compressed bodies, prepared in advance, one transaction per row as
  // the collector commits one per acknowledged measurement; and all in one transaction.
  const rows = ms.map((m) => ({ row: flatten(m, analyzeMeasurement(m), measurementUid(m)), body: compressBody(JSON.stringify(m)) }));
  const raw = (name: string, batched: boolean) => {
    const db = new Database(join(dir, name));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(SQLITE_MIGRATIONS[0].sql);
    const cols = Object.keys(rows[0].row);
    const ins = db.prepare(`INSERT OR IGNORE INTO measurements (${cols.join(', ')}) VALUES (${cols.map((c) => '@' + c).join(', ')})`);
    const insRaw = db.prepare('INSERT INTO raw_measurements (uid, body) VALUES (?, ?)');
    const one = db.transaction((r: (typeof rows)[number]) => {
      if (ins.run(r.row).changes) insRaw.run(r.row.uid, r.body);
    });
    const t0 = performance.now();
    if (batched) db.transaction(() => rows.forEach((r) => one(r)))();
    else for (const r of rows) one(r);
    const v = rate(rows.length, t0);
    db.close();
    return v;
  };
  const rawRow = raw('raw1.sqlite', false);
  const rawBatch = raw('raw2.sqlite', true);
  // The store's put() in-process (flatten + compress + insert), no HTTP.
  const store = new SqliteStore(join(dir, 'put.sqlite'));
  const ms2 = measurements('put');
  const t0 = performance.now();
  for (const m of ms2) await store.put(m, analyzeMeasurement(m));
  const putRate = rate(ms2.length, t0);
  await store.close();
  const srv = await serveChild(['--db', join(dir, 'http.sqlite')]);
  const http = await httpIngest(srv.url, 'http');
  await srv.stop('SIGTERM');
  const check = new SqliteStore(join(dir, 'http.sqlite'));
  const stored = await check.count();
  await check.close();
  console.log(`SQLite, ${N} measurements (web_connectivity-shaped, ~${Math.round(JSON.stringify(ms[0]).length)} bytes each)`);
  console.log(`  raw better-sqlite3, one transaction per row : ${rawRow.toFixed(0)} rows/s`);
  console.log(`  raw better-sqlite3, one transaction in all  : ${rawBatch.toFixed(0)} rows/s`);
  console.log(`  SqliteStore.put() in-process (+analysis)    : ${putRate.toFixed(0)} /s`);
  console.log(`  HTTP submit_measurement, ${CONNECTIONS} conns, ${DURATION_S} s: ${http.perSecond.toFixed(0)} /s (ok ${http.ok}, bad ${http.bad}, stored ${stored}; p50 ${http.p50} ms, p99 ${http.p99} ms)`);
  console.log(`  ratio HTTP / raw per-row                    : ${(http.perSecond / rawRow).toFixed(3)}`);
}

async function clickhouse(url: string): Promise<void> {
  const db = `wallscope_bench_${process.pid}`;
  const ms = measurements('ch');
  const rows = ms.map((m) => flatten(m, analyzeMeasurement(m), measurementUid(m)));
  // Raw: the same rows, JSONEachRow inserts with the client alone, one insert per row (as a
  // naive collector would) and batches of 1000.
  const base = await ClickHouseStore.open({ url, database: db });
  const client = createClient({ url, database: db, max_open_connections: CONNECTIONS });
  const rawInsert = async (table: string, batch: number, limit: number, parallel: number) => {
    await base.client.command({ query: `CREATE TABLE ${table} AS measurements` });
    const sel = rows.slice(0, limit);
    const t0 = performance.now();
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < sel.length; i += batch) {
      jobs.push(client.insert({ table, values: sel.slice(i, i + batch).map((r) => ({ ...r, deleted: 0, version: 1 })), format: 'JSONEachRow' }));
      if (jobs.length >= parallel) await Promise.all(jobs.splice(0));
    }
    await Promise.all(jobs);
    const v = rate(sel.length, t0);
    await base.client.command({ query: `DROP TABLE ${table}` });
    return v;
  };
  // One-row inserts make one part each: 18.16 throttles them hard, so only 500, 8 at a time.
  const rawRow = await rawInsert('raw_one', 1, Math.min(N, 500), 8);
  const rawBatch = await rawInsert('raw_batch', 1000, N, 4);
  await client.close();
  await base.close();
  const srv = await serveChild(['--clickhouse', `${url}/${db}`]);
  const http = await httpIngest(srv.url, 'chhttp');
  await srv.stop('SIGTERM');
  const check = await ClickHouseStore.open({ url, database: db });
  const stored = await check.count();
  await check.dropDatabase();
  await check.close();
  console.log(`ClickHouse ${url}, ${N} measurements`);
  console.log(`  raw client.insert, one row per insert (8 parallel, 500 rows): ${rawRow.toFixed(0)} rows/s`);
  console.log(`  raw client.insert, 1000 rows per insert : ${rawBatch.toFixed(0)} rows/s`);
  console.log(`  HTTP submit_measurement, ${CONNECTIONS} conns, ${DURATION_S} s: ${http.perSecond.toFixed(0)} /s (ok ${http.ok}, bad ${http.bad}, stored ${stored}; p50 ${http.p50} ms, p99 ${http.p99} ms)`);
  console.log(`  ratio HTTP / raw one-row inserts        : ${(http.perSecond / rawRow).toFixed(3)}`);
  console.log(`  ratio HTTP / raw 1000-row inserts       : ${(http.perSecond / rawBatch).toFixed(3)}`);
}

const dir = mkdtempSync(join(tmpdir(), 'wallscope-bench-ingest-'));
try {
  await sqlite(dir);
  if (process.env.WALLSCOPE_CLICKHOUSE_URL) await clickhouse(process.env.WALLSCOPE_CLICKHOUSE_URL);
  else console.log('ClickHouse: skipped (WALLSCOPE_CLICKHOUSE_URL is unset)');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
