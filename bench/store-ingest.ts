// Ingest rate into the store through the HTTP API (`wallscope serve` in a child process, the load
// generator in this process) beside the raw insert rate of the same rows with the database client
// alone, interleaved in the same run (each round: raw, then the HTTP variants), BENCH_RUNS rounds
// (default 3); the summary gives medians and per-round ratios. SQLite always; ClickHouse when
// WALLSCOPE_CLICKHOUSE_URL is set.
//
// HTTP variants:
//   submit_measurement   OONI's protocol, one measurement per POST, 64 connections (autocannon).
//   submit_measurements  NDJSON batches of BENCH_BATCH_SIZE (1000) on BENCH_BATCH_CONNECTIONS (4)
//                        connections, bodies made before the clock starts (src/server/load.ts).
//   ClickHouse: each of them "direct" (acknowledged after ClickHouse's insert) and behind the
//   collector's local journal (`--journal`, acknowledged once journaled, shipped in batches); for
//   the journal, "in ClickHouse" also counts the shutdown that ships the backlog.
// "Raw" is the fastest sensible use of the library alone, N rows per round (default 50,000, about
// what the HTTP runs store, since per-row cost grows with the table):
//   SQLite      prepared INSERTs of the same flat rows and bodies (analysed, compressed in advance),
//               transactions of 1000 rows, the store's own connection pragmas (also shown: one
//               transaction per row, as a naive collector would).
//   ClickHouse  JSONEachRow inserts of the same rows (flat row + body) into a database with the
//               store's schema (incl. the view that fills the uid table), 1000 rows per insert,
//               4 in flight (BENCH_CH_RAW_PARALLEL=4,8 tries several and keeps the faster; 4 was the
//               faster in 4 of 4 runs on 2026-11-22), run right before each HTTP variant's run.
// CPU time per side: the server child's utime+stime (/proc/PID/stat, all its threads) and this
// process's (load generator) over the HTTP run; for raw, this process's CPU.
//
// Usage: [BENCH_ONLY=sqlite|clickhouse] [BENCH_RUNS=3] [BENCH_DURATION_S=5] node dist/bench/store-ingest.js [N=50000]
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { analyzeMeasurement } from '../src/analysis/index.js';
import Fastify from 'fastify';
import { fileURLToPath } from 'node:url';
import { forkRole } from './fork.js';
import { serveChild } from '../src/testing/serve-child.js';
import { loadMeasurement, submitBatches, submitLoad } from '../src/testing/load.js';
import { ClickHouseStore, SqliteStore, SQLITE_MIGRATIONS } from '../src/store/index.js';
import { flatten, measurementUid } from '../src/store/row.js';
import { compressBody } from '../src/store/sqlite.js';
import { configureConnection } from '../src/store/sqlite-writer.js';
import type { Measurement } from '../src/model/index.js';

// Role "empty-route": a Fastify app whose submit_measurement route only answers (the HTTP ceiling).
if (process.argv[2] === 'empty-route') {
  const app = Fastify({ bodyLimit: 4 * 1024 * 1024 });
  app.post('/api/v1/submit_measurement', async () => ({ measurement_uid: 'x', report_id: 'x' }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  process.send!((app.server.address() as { port: number }).port);
  await new Promise(() => undefined); // until killed
}
const N = Number(process.argv[2] ?? 50_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const SQLITE_CONNECTIONS = 64;
const CH_CONNECTIONS = (process.env.BENCH_CH_CONNECTIONS ?? '64').split(',').map(Number);
const BATCH_CONNECTIONS = Number(process.env.BENCH_BATCH_CONNECTIONS ?? 4);
// The submitters' address as the collector sees it (X-Forwarded-For, serve --trust-proxy): a public
// one, so the collector's scrubber walks every measurement as it would in the field (on loopback
// it has nothing to look for). BENCH_CLIENT_IP= (empty) measures without.
const CLIENT_IP = process.env.BENCH_CLIENT_IP ?? '203.0.113.7';
const SERVE_EXTRA = CLIENT_IP ? ['--trust-proxy'] : [];
const CH_BATCH_CONNECTIONS = (process.env.BENCH_CH_BATCH_CONNECTIONS ?? '4,8').split(',').map(Number);
const RAW_PARALLEL = (process.env.BENCH_CH_RAW_PARALLEL ?? '4').split(',').map(Number);
const BATCH_SIZE = Number(process.env.BENCH_BATCH_SIZE ?? 1000);
const START = new Date('2026-11-22T05:00:00Z');
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function measurements(tag: string, n = N): Measurement[] {
  return Array.from({ length: n }, (_, i) => loadMeasurement(tag, i, START));
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
/** CPU seconds (user + system) of a process so far. */
function procCpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14 and 15)
}
function selfCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

interface HttpRun {
  perSecond: number;
  ok: number;
  bad: number;
  p50: number;
  p99: number;
  serverCpuS: number;
  clientCpuS: number;
  stored: number;
  /** Acknowledged measurements per second counting the shutdown too (SIGTERM -> exit: a journal ships its backlog first). */
  landedPerSecond: number;
}

/** Stops the server (SIGTERM: it drains and exits) and times it. */
async function stopTimed(srv: { stop: (s?: NodeJS.Signals) => Promise<void> }): Promise<number> {
  const t0 = performance.now();
  await srv.stop('SIGTERM');
  return (performance.now() - t0) / 1000;
}

/** One HTTP round: a fresh `wallscope serve`, `connections` submitters for DURATION_S s. */
async function httpRound(storeArgs: string[], prefix: string, connections: number, count: () => Promise<number>): Promise<HttpRun> {
  const srv = await serveChild([...storeArgs, ...SERVE_EXTRA]);
  const pid = srv.child.pid!;
  const s0 = procCpu(pid);
  const c0 = selfCpu();
  const r = await submitLoad(srv.url, { connections, durationS: DURATION_S, prefix, start: START, clientIp: CLIENT_IP || undefined });
  const serverCpuS = procCpu(pid) - s0;
  const clientCpuS = selfCpu() - c0;
  const stopS = await stopTimed(srv);
  const landedPerSecond = r.ok / (r.ok / r.perSecond + stopS);
  return {
    perSecond: r.perSecond,
    ok: r.ok,
    bad: r.errors + r.timeouts + r.non2xx,
    p50: r.p50Ms,
    p99: r.p99Ms,
    serverCpuS,
    clientCpuS,
    stored: await count(),
    landedPerSecond,
  };
}

/** One batch round: a fresh `wallscope serve`, BATCH_CONNECTIONS clients posting NDJSON batches of BATCH_SIZE for DURATION_S s. */
async function batchRound(
  storeArgs: string[],
  prefix: string,
  count: () => Promise<number>,
  connections = BATCH_CONNECTIONS,
): Promise<HttpRun> {
  const srv = await serveChild([...storeArgs, ...SERVE_EXTRA]);
  const pid = srv.child.pid!;
  const s0 = procCpu(pid);
  const c0 = selfCpu();
  const r = await submitBatches(srv.url, {
    connections,
    batchSize: BATCH_SIZE,
    durationS: DURATION_S,
    prefix,
    start: START,
    clientIp: CLIENT_IP || undefined,
  });
  const serverCpuS = procCpu(pid) - s0;
  const clientCpuS = selfCpu() - c0;
  const stopS = await stopTimed(srv);
  if (r.exhausted)
    console.log(`  (batch round ${prefix}: the prepared bodies ran out before ${DURATION_S} s; the rate is still acknowledged / elapsed)`);
  return {
    perSecond: r.perSecond,
    ok: r.ok,
    bad: r.refused + r.failedRequests,
    p50: r.p50Ms,
    p99: r.p99Ms,
    serverCpuS,
    clientCpuS,
    stored: await count(),
    landedPerSecond: r.ok / (r.elapsedS + stopS),
  };
}

function httpLine(label: string, runs: HttpRun[]): string {
  const ok = median(runs.map((r) => r.ok));
  return (
    `${label}: ${median(runs.map((r) => r.perSecond)).toFixed(0)} /s  [runs ${runs.map((r) => r.perSecond.toFixed(0)).join(', ')}]` +
    `  p50 ${median(runs.map((r) => r.p50))} ms, p99 ${median(runs.map((r) => r.p99))} ms; ok ${ok}, bad ${runs.reduce((a, r) => a + r.bad, 0)}, stored ${runs.map((r) => r.stored).join('/')}` +
    `\n      CPU per side (median): server ${median(runs.map((r) => r.serverCpuS)).toFixed(2)} s` +
    ` (${median(runs.map((r) => (r.serverCpuS / Math.max(1, r.ok)) * 1e6)).toFixed(0)} µs per acknowledged measurement),` +
    ` autocannon+generator ${median(runs.map((r) => r.clientCpuS)).toFixed(2)} s, of ${DURATION_S} s wall on 2 shared cores`
  );
}

type SqliteRow = { row: ReturnType<typeof flatten>; body: ReturnType<typeof compressBody> };
type Rate = { rate: number; cpuUsPerRow: number };

/** Raw better-sqlite3 inserts of `rows` into a fresh file with the store's own pragmas and schema, `perTx` rows a transaction. */
function rawSqlite(dir: string, rows: SqliteRow[], name: string, perTx: number): Rate {
  const db = new Database(join(dir, name));
  configureConnection(db, 'NORMAL'); // the store's own pragmas (WAL, synchronous NORMAL, page cache)
  for (const mig of SQLITE_MIGRATIONS) db.exec(mig.sql); // the store's schema as of now
  const cols = Object.keys(rows[0].row);
  const ins = db.prepare(`INSERT OR IGNORE INTO measurements (${cols.join(', ')}) VALUES (${cols.map((c) => '@' + c).join(', ')})`);
  const insRaw = db.prepare('INSERT INTO raw_measurements (uid, body) VALUES (?, ?)');
  const tx = db.transaction((chunk: SqliteRow[]) => {
    for (const r of chunk) if (ins.run(r.row).changes) insRaw.run(r.row.uid, r.body);
  });
  const c0 = selfCpu();
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += perTx) tx(rows.slice(i, i + perTx));
  const rate = rows.length / ((performance.now() - t0) / 1000);
  const cpuUsPerRow = ((selfCpu() - c0) / rows.length) * 1e6;
  db.close();
  return { rate, cpuUsPerRow };
}

const countSqlite = (file: string) => async () => {
  const s = new SqliteStore(file);
  const n = await s.count();
  await s.close();
  return n;
};

/** The store's put() in-process, 64 at a time (analysis + flatten + compress + group commit), no HTTP; per second. */
async function putRate(file: string, prefix: string): Promise<number> {
  const store = new SqliteStore(file);
  const ms = measurements(prefix);
  const t0 = performance.now();
  for (let i = 0; i < ms.length; i += 64) await Promise.all(ms.slice(i, i + 64).map((m) => store.put(m, analyzeMeasurement(m))));
  const rate = ms.length / ((performance.now() - t0) / 1000);
  await store.close();
  return rate;
}

/** The HTTP ceiling: the same load against a route that parses the body and answers, nothing else; per second. */
async function ceilingRate(prefix: string): Promise<number> {
  const empty = await forkRole<number>(fileURLToPath(import.meta.url), 'empty-route');
  try {
    return (
      await submitLoad(`http://127.0.0.1:${empty.msg}`, { connections: SQLITE_CONNECTIONS, durationS: DURATION_S, prefix, start: START })
    ).perSecond;
  } finally {
    empty.proc.kill();
  }
}

type SqliteRounds = { rawBatch: Rate[]; rawRow: number[]; put: number[]; ceiling: number[]; http: HttpRun[]; batch: HttpRun[] };

function printSqlite(r: SqliteRounds, bytesEach: number): void {
  const { rawBatch, rawRow, put, ceiling, http, batch } = r;
  const rb = median(rawBatch.map((x) => x.rate));
  const h = median(http.map((x) => x.perSecond));
  console.log(`SQLite, ${N} rows per raw round, ${RUNS} rounds (web_connectivity-shaped measurements, ~${bytesEach} bytes each)`);
  console.log(
    `  raw better-sqlite3, transactions of 1000 rows  : ${rb.toFixed(0)} rows/s  [runs ${rawBatch.map((x) => x.rate.toFixed(0)).join(', ')}]  CPU ${median(rawBatch.map((x) => x.cpuUsPerRow)).toFixed(0)} µs/row`,
  );
  console.log(
    `  raw better-sqlite3, one transaction per row    : ${median(rawRow).toFixed(0)} rows/s  [runs ${rawRow.map((x) => x.toFixed(0)).join(', ')}]`,
  );
  console.log(
    `  SqliteStore.put() in-process, 64 at a time     : ${median(put).toFixed(0)} /s  [runs ${put.map((x) => x.toFixed(0)).join(', ')}]  (+ analysis, no HTTP)`,
  );
  console.log(
    `  HTTP ceiling: an empty Fastify route, same load : ${median(ceiling).toFixed(0)} /s  [runs ${ceiling.map((x) => x.toFixed(0)).join(', ')}]  (ratio to raw ${(median(ceiling) / rb).toFixed(3)}: no per-request collector can beat it here)`,
  );
  console.log(httpLine(`  HTTP submit_measurement, ${SQLITE_CONNECTIONS} conns, ${DURATION_S} s    `, http));
  console.log(
    `  ratio HTTP / raw batched (medians)             : ${(h / rb).toFixed(3)}   per round: ${http.map((x, i) => (x.perSecond / rawBatch[i].rate).toFixed(3)).join(', ')}`,
  );
  const hb = median(batch.map((x) => x.perSecond));
  console.log(httpLine(`  HTTP submit_measurements (NDJSON, ${BATCH_SIZE}/batch), ${BATCH_CONNECTIONS} conns, ${DURATION_S} s`, batch));
  console.log(
    `  ratio HTTP batches / raw batched (medians)     : ${(hb / rb).toFixed(3)}   per round: ${batch.map((x, i) => (x.perSecond / rawBatch[i].rate).toFixed(3)).join(', ')}`,
  );
}

async function sqlite(dir: string): Promise<void> {
  const ms = measurements('sq');
  const rows = ms.map((m) => ({ row: flatten(m, analyzeMeasurement(m), measurementUid(m)), body: compressBody(JSON.stringify(m)) }));
  const r: SqliteRounds = { rawBatch: [], rawRow: [], put: [], ceiling: [], http: [], batch: [] };
  for (let k = 0; k < RUNS; k++) {
    r.rawBatch.push(rawSqlite(dir, rows, `raw-batch-${k}.sqlite`, 1000));
    r.rawRow.push(rawSqlite(dir, rows, `raw-row-${k}.sqlite`, 1).rate);
    r.put.push(await putRate(join(dir, `put-${k}.sqlite`), `put${k}`));
    r.ceiling.push(await ceilingRate(`ceil${k}`));
    const file = join(dir, `http-${k}.sqlite`);
    r.http.push(await httpRound(['--db', file], `http${k}`, SQLITE_CONNECTIONS, countSqlite(file)));
    const bfile = join(dir, `batch-${k}.sqlite`);
    r.batch.push(await batchRound(['--db', bfile], `batch${k}`, countSqlite(bfile)));
  }
  printSqlite(r, JSON.stringify(ms[0]).length);
}

type ChRow = ReturnType<typeof flatten> & { body: string; deleted: number; version: number };

/**
 * Raw inserts of the same rows into a fresh database with the store's own schema (the migrations:
 * the measurements table and the materialized view that fills measurement_uids, as every store
 * insert does), 1000 rows per insert, `parallel` in flight (a sliding window).
 */
async function rawClickHouse(url: string, rows: ChRow[], database: string, parallel: number): Promise<Rate> {
  const store = await ClickHouseStore.open({ url, database });
  const client = createClient({ url, database, max_open_connections: parallel });
  const c0 = selfCpu();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let i = (next += 1000) - 1000; i < rows.length; i = (next += 1000) - 1000)
        await client.insert({ table: 'measurements', values: rows.slice(i, i + 1000), format: 'JSONEachRow' });
    }),
  );
  const rate = rows.length / ((performance.now() - t0) / 1000);
  const cpuUsPerRow = ((selfCpu() - c0) / rows.length) * 1e6;
  await client.close();
  await store.dropDatabase();
  await store.close();
  return { rate, cpuUsPerRow };
}

// Each variant: the single route (OONI's protocol) or NDJSON batches, acknowledged after ClickHouse's
// insert ("direct") or after the collector's local journal ("journal", shipped in batches). Every
// HTTP run comes right after its own raw run (the best of RAW_PARALLEL), so each ratio compares
// two runs side by side, with ClickHouse in the same state.
type Variant = {
  label: string;
  batch: boolean;
  conns: number;
  journal: boolean;
  runs: HttpRun[];
  raws: number[];
  chRaw: number[];
  chHttp: number[];
};

function chVariants(): Variant[] {
  const mk = (label: string, batch: boolean, conns: number, journal: boolean): Variant => ({
    label,
    batch,
    conns,
    journal,
    runs: [],
    raws: [],
    chRaw: [],
    chHttp: [],
  });
  return [
    ...CH_CONNECTIONS.map((c) => mk(`HTTP submit_measurement, ${c} conns, direct`, false, c, false)),
    ...CH_CONNECTIONS.map((c) => mk(`HTTP submit_measurement, ${c} conns, journal`, false, c, true)),
    ...CH_BATCH_CONNECTIONS.map((c) => mk(`HTTP submit_measurements (NDJSON, ${BATCH_SIZE}/batch), ${c} conns, direct`, true, c, false)),
    ...CH_BATCH_CONNECTIONS.slice(-1).map((c) =>
      mk(`HTTP submit_measurements (NDJSON, ${BATCH_SIZE}/batch), ${c} conns, journal`, true, c, true),
    ),
  ];
}

const countCh = (url: string, db: string) => async () => {
  const s = await ClickHouseStore.open({ url, database: db });
  const n = await s.count();
  await s.dropDatabase();
  await s.close();
  return n;
};

/** One round of one variant: the best raw run, then the HTTP run right after it; returns the raw rate. */
async function chVariantRound(url: string, rows: ChRow[], variant: Variant, v: number, k: number, chCpu: () => number): Promise<number> {
  let best = 0;
  let bestCh = NaN;
  for (const p of RAW_PARALLEL) {
    const c0 = chCpu();
    const r = await rawClickHouse(url, rows, `wallscope_bench_raw_${process.pid}_${k}_${v}_${p}`, p);
    if (r.rate > best) {
      best = r.rate;
      bestCh = ((chCpu() - c0) / N) * 1e6;
    }
  }
  variant.raws.push(best);
  variant.chRaw.push(bestCh);
  const db = `wallscope_bench_${process.pid}_${v}_${k}`;
  // The collector's side file (change detection) in the temporary directory, not the working one.
  const side = join(tmpdir(), `${db}.changes.db`);
  const args = [
    '--clickhouse',
    `${url}/${db}`,
    '--changes-db',
    side,
    ...(variant.journal ? ['--journal', join(tmpdir(), `${db}.journal`)] : []),
  ];
  const c0 = chCpu();
  const run = variant.batch
    ? await batchRound(args, `chb${v}_${k}`, countCh(url, db), variant.conns)
    : await httpRound(args, `chs${v}_${k}`, variant.conns, countCh(url, db));
  variant.chHttp.push(((chCpu() - c0) / Math.max(1, run.stored)) * 1e6);
  variant.runs.push(run);
  if (variant.journal) for (const x of ['', '-wal', '-shm']) rmSync(join(tmpdir(), `${db}.journal${x}`), { force: true });
  for (const x of ['', '-wal', '-shm']) rmSync(`${side}${x}`, { force: true });
  return best;
}

function printClickHouse(url: string, variants: Variant[], rawAll: number[], chPid: number | null): void {
  console.log(
    `ClickHouse ${url}, ${N} rows per raw run, ${RUNS} rounds, a raw run (1000 rows/insert, the best of ${RAW_PARALLEL.join(' or ')} in flight) before every HTTP run`,
  );
  console.log(`  raw, all runs: median ${median(rawAll).toFixed(0)} rows/s  [${rawAll.map((r) => r.toFixed(0)).join(', ')}]`);
  for (const v of variants) {
    console.log(httpLine(`  ${v.label}, ${DURATION_S} s`, v.runs));
    const ratios = v.runs.map((r, i) => r.perSecond / v.raws[i]);
    const landed = v.runs.map((r, i) => r.landedPerSecond / v.raws[i]);
    console.log(
      `      its raw runs ${v.raws.map((r) => r.toFixed(0)).join(', ')} rows/s; ratio acknowledged / raw per round ${ratios.map((x) => x.toFixed(3)).join(', ')} (median ${median(ratios).toFixed(3)})` +
        `; in ClickHouse counting the shutdown drain: median ${median(landed).toFixed(3)}`,
    );
    if (chPid)
      console.log(
        `      ClickHouse server CPU per row (median): raw ${median(v.chRaw).toFixed(0)} µs, HTTP ${median(v.chHttp).toFixed(0)} µs (both on the same 2 cores as the collector)`,
      );
  }
  console.log('  (direct: an acknowledgement waits for its batch insert, so a connection gets about 1 / insert latency per second;');
  console.log('   journal: acknowledged once in the local journal; "in ClickHouse" adds the time SIGTERM took to ship the rest and exit.)');
}

async function clickhouse(url: string): Promise<void> {
  const rows: ChRow[] = measurements('ch').map((m) => ({
    ...flatten(m, analyzeMeasurement(m), measurementUid(m)),
    body: JSON.stringify(m),
    deleted: 0,
    version: 1,
  }));
  const variants = chVariants();
  const chPid = clickhousePid();
  const chCpu = () => (chPid ? procCpu(chPid) : NaN);
  const rawAll: number[] = [];
  for (let k = 0; k < RUNS; k++)
    for (const [v, variant] of variants.entries()) rawAll.push(await chVariantRound(url, rows, variant, v, k, chCpu));
  printClickHouse(url, variants, rawAll, chPid);
}

/** The local clickhouse-server process, to read its CPU time (none when the server runs elsewhere). */
function clickhousePid(): number | null {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (/clickhouse(-server| server)/.test(readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' '))) return Number(d);
    } catch {
      // gone
    }
  }
  return null;
}

const dir = mkdtempSync(join(tmpdir(), 'wallscope-bench-ingest-'));
try {
  console.log(`load average at start: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  console.log(
    CLIENT_IP
      ? `submitters appear as ${CLIENT_IP} (X-Forwarded-For, serve --trust-proxy): the collector scrubs that address from every measurement`
      : 'submitters on loopback: the collector has no address to scrub',
  );
  const only = process.env.BENCH_ONLY; // "sqlite" or "clickhouse": one side only
  if (only !== 'clickhouse') await sqlite(dir);
  if (only === 'sqlite') console.log('ClickHouse: skipped (BENCH_ONLY=sqlite)');
  else if (process.env.WALLSCOPE_CLICKHOUSE_URL) await clickhouse(process.env.WALLSCOPE_CLICKHOUSE_URL);
  else console.log('ClickHouse: skipped (WALLSCOPE_CLICKHOUSE_URL is unset)');
  console.log(`load average at end: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
