// Explorer benchmark: what a country page costs on a big store.
//   node dist/bench/explorer-aggregation.js [N=1000000] [iterations=30]
// 1. Seeds N synthetic measurements into a SQLite store through the store's own put path (cached
//    in bench/out/ and reused while N matches; delete the file to reseed).
// 2. Times, side by side and alternating in the same run, (a) the aggregation endpoint over HTTP
//    (buildApp on 127.0.0.1: parse, validate, query, serialise, transfer) for one country over a
//    year by day, and (b) the equivalent raw SQL GROUP BY on a separate connection to the same
//    file. Target: (a) at most 2x (b).
// 3. Page weight of the explorer's first load: the static files of web/dist (raw and gzip), and
//    the bytes the overview's API calls return on this store.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { repoRoot } from '../src/probe/index.js';
import { buildApp } from '../src/server/index.js';
import { SqliteStore } from '../src/store/index.js';
import { syntheticMeasurements } from '../src/testing/seed.js';

const N = Number(process.argv[2] ?? 1_000_000);
const ITER = Number(process.argv[3] ?? 30);
const END = new Date('2026-11-22T00:00:00Z');
const CC = 'CN';
const SINCE = '2025-11-22';
const UNTIL = '2026-11-22';

const outDir = join(repoRoot, 'bench', 'out');
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `explorer-${N}.sqlite`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
function pctile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

async function seed(): Promise<SqliteStore> {
  if (existsSync(file)) {
    const s = new SqliteStore(file);
    if ((await s.count()) === N) {
      console.log(`store: reusing ${file} (${N} measurements, ${(statSync(file).size / 1e6).toFixed(0)} MB)`);
      return s;
    }
    await s.close();
    rmSync(file, { force: true });
  }
  const s = new SqliteStore(file);
  const t0 = performance.now();
  const batchTx = s.db.transaction(
    (batch: Array<{ m: Parameters<SqliteStore['putSync']>[0]; verdict: Parameters<SqliteStore['putSync']>[1] }>) => {
      for (const x of batch) s.putSync(x.m, x.verdict);
    },
  );
  let batch: Parameters<typeof batchTx>[0] = [];
  let done = 0;
  for (const x of syntheticMeasurements(N, { seed: 42, days: 365, end: END })) {
    batch.push(x);
    if (batch.length === 10_000) {
      batchTx(batch);
      done += batch.length;
      batch = [];
      if (done % 100_000 === 0) process.stderr.write(`  seeded ${done}\n`);
    }
  }
  batchTx(batch);
  s.db.pragma('wal_checkpoint(TRUNCATE)');
  s.db.exec('ANALYZE');
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `store: seeded ${N} measurements in ${secs.toFixed(1)} s (${Math.round(N / secs)}/s, via put in 10k-row transactions), ${(statSync(file).size / 1e6).toFixed(0)} MB`,
  );
  return s;
}

const RAW_SQL = `SELECT day AS measurement_start_day,
  COUNT(*) AS measurement_count,
  SUM(CASE WHEN status IN ('ok', 'down') THEN 1 ELSE 0 END) AS ok_count,
  SUM(CASE WHEN status = 'blocked' AND confirmed = 0 THEN 1 ELSE 0 END) AS anomaly_count,
  SUM(CASE WHEN status = 'blocked' AND confirmed = 1 THEN 1 ELSE 0 END) AS confirmed_count,
  SUM(CASE WHEN status = 'unknown' THEN 1 ELSE 0 END) AS failure_count
FROM measurements WHERE probe_cc = ? AND ts >= ? AND ts < ? GROUP BY day ORDER BY day`;
// The same answer for day-aligned bounds, filtering on the day column, which leads the store's
// (probe_cc, day, ...) key: the best plain SQL we know for this question.
const RAW_SQL_DAY = RAW_SQL.replace('ts >= ? AND ts < ?', 'day >= ? AND day < ?');

async function main(): Promise<void> {
  const store = await seed();
  const app = await buildApp({ store, webRoot: join(repoRoot, 'web', 'dist'), logger: false });
  const base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '');
  const raw = new Database(file, { readonly: true });
  await endpointBesideSql(base, raw);
  await pageWeight(base);
  raw.close();
  await app.close();
  await store.close();
}

/** The aggregation endpoint beside the raw GROUP BY (two SQL forms), same answer first, then timed in turn. */
async function endpointBesideSql(base: string, raw: Database.Database): Promise<void> {
  const stmt = raw.prepare(RAW_SQL);
  const stmtDay = raw.prepare(RAW_SQL_DAY);
  const since = Date.parse(`${SINCE}T00:00:00Z`) / 1000;
  const until = Date.parse(`${UNTIL}T00:00:00Z`) / 1000;
  const url = `${base}/api/v1/aggregation?axis_x=measurement_start_day&time_grain=day&probe_cc=${CC}&since=${SINCE}&until=${UNTIL}`;

  type Row = { measurement_start_day: string; measurement_count: number };
  const viaApi = async (): Promise<Row[]> => {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`aggregation: HTTP ${res.status}: ${await res.text()}`);
    return ((await res.json()) as { result: Row[] }).result;
  };
  const viaSql = (): Row[] => stmt.all(CC, since, until) as Row[];
  const viaSqlDay = (): Row[] => stmtDay.all(CC, SINCE, UNTIL) as Row[];

  // Same answer first: a fast wrong endpoint is no result.
  const a = await viaApi();
  const b = viaSql();
  const c = viaSqlDay();
  const total = (rows: Row[]) => rows.reduce((s, r) => s + r.measurement_count, 0);
  if (a.length !== b.length || total(a) !== total(b))
    throw new Error(`endpoint and SQL disagree: ${a.length}/${total(a)} vs ${b.length}/${total(b)}`);
  if (c.length !== b.length || total(c) !== total(b))
    throw new Error(`the two SQL forms disagree: ${c.length}/${total(c)} vs ${b.length}/${total(b)}`);
  console.log(`query: ${CC}, ${SINCE}..${UNTIL} by day: ${a.length} days, ${total(a)} measurements`);

  for (let i = 0; i < 3; i++) {
    await viaApi();
    viaSql();
    viaSqlDay();
  }
  const t = { api: [] as number[], sql: [] as number[], sqlDay: [] as number[] };
  const kinds = ['api', 'sql', 'sqlDay'] as const;
  for (let i = 0; i < ITER; i++) {
    // Rotate which goes first so none always runs on a warmer cache.
    for (let j = 0; j < kinds.length; j++) {
      const which = kinds[(i + j) % kinds.length]!;
      const t0 = performance.now();
      if (which === 'api') await viaApi();
      else if (which === 'sql') viaSql();
      else viaSqlDay();
      t[which].push(performance.now() - t0);
    }
  }
  const mA = median(t.api);
  const mS = median(t.sql);
  const mD = median(t.sqlDay);
  console.log(`aggregation endpoint (HTTP):          median ${mA.toFixed(1)} ms, p90 ${pctile(t.api, 0.9).toFixed(1)} ms (${ITER} runs)`);
  console.log(`raw SQL GROUP BY, same predicate (ts): median ${mS.toFixed(1)} ms, p90 ${pctile(t.sql, 0.9).toFixed(1)} ms`);
  console.log(`raw SQL GROUP BY, day range:            median ${mD.toFixed(1)} ms, p90 ${pctile(t.sqlDay, 0.9).toFixed(1)} ms`);
  const best = Math.min(mS, mD);
  console.log(
    `ratio endpoint / raw SQL (medians): ${(mA / mS).toFixed(2)}x vs the same predicate, ${(mA / mD).toFixed(2)}x vs the day-range form; target <= 2x vs the best: ${mA / best <= 2 ? 'MET' : 'NOT MET'} (${(mA / best).toFixed(2)}x)`,
  );
}

/** Page weight: the static files of the first load, and the overview's API answers on this store. */
async function pageWeight(base: string): Promise<void> {
  const dist = join(repoRoot, 'web', 'dist');
  const files = [join(dist, 'index.html'), ...readdirSync(join(dist, 'assets')).map((f) => join(dist, 'assets', f))];
  let rawBytes = 0;
  let gzBytes = 0;
  for (const f of files) {
    const buf = readFileSync(f);
    rawBytes += buf.length;
    gzBytes += gzipSync(buf, { level: 9 }).length;
  }
  // What the overview asks by default (web/src/pages/Overview.tsx): the newest measurement, then
  // the 30 days up to it (totals share the by-mechanism answer), and the latest blocks.
  const newest = (
    (await (await fetch(`${base}/api/v1/measurements?limit=1`)).json()) as { results: Array<{ measurement_start_time: string }> }
  ).results[0];
  const newestDay = newest ? newest.measurement_start_time.slice(0, 10) : UNTIL;
  const winSince = new Date(Date.parse(`${newestDay}T00:00:00Z`) - 29 * 86400_000).toISOString().slice(0, 10);
  const overviewCalls = [
    'measurements?limit=1',
    'measurements?blocking=true&limit=15',
    `aggregation?since=${winSince}&axis_x=mechanism`,
    `aggregation?since=${winSince}&axis_x=layer`,
    `aggregation?since=${winSince}&axis_x=probe_cc`,
    `aggregation?since=${winSince}&axis_x=measurement_start_day&time_grain=day`,
    `measurements?since=${winSince}&limit=25`,
  ];
  let apiBytes = 0;
  const tOverview0 = performance.now();
  const perCall: string[] = [];
  for (const c of overviewCalls) {
    const t1 = performance.now();
    apiBytes += (await (await fetch(`${base}/api/v1/${c}`)).arrayBuffer()).byteLength;
    perCall.push(`${c.split('&axis_x=')[1]?.split('&')[0] ?? c.split('?')[0]} ${(performance.now() - t1).toFixed(0)} ms`);
  }
  const tOverview = performance.now() - tOverview0;
  console.log(
    `explorer first load: static ${rawBytes} bytes in ${files.length} files (${gzBytes} gzip-9), ` +
      `overview API answers ${apiBytes} bytes on ${N} measurements (${overviewCalls.length} calls, ${tOverview.toFixed(0)} ms sequential: ${perCall.join(', ')})`,
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
