// The explorer's pages on a big SQLite store (issue 14 "Benchmark": every API call behind a page
// at p95 under 300 ms on 10 million measurements).
//   BENCH_MEASUREMENTS=10000000 node dist/bench/explorer-p95.js [requests per call = 60]
// 1. Seeds BENCH_MEASUREMENTS (default 200,000) realistic measurements (src/testing/realistic-seed.ts)
//    with the store's bulk load into a fresh file under $TMPDIR (deleted at the end; BENCH_KEEP=1
//    keeps it and prints its path, BENCH_DB=path reuses one).
//    BENCH_SEED_ONLY=1 stops there (with BENCH_DB: seed a store for several runs).
// 2. Opens it as the server does (SqliteStore + ChangeStore, rebuilt), serves the real app on
//    127.0.0.1, and fires each page's API calls through HTTP, one after another, printing p50 and
//    p95 per call. Before timing, each aggregation answer is checked against the raw GROUP BY over
//    the measurements: a fast wrong answer is no result.
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/server/index.js';
import { bulkLoadSqlite, ChangeStore, SqliteStore, parseTimeBound, type AggregationQuery, type Axis } from '../src/store/index.js';

import { realisticRows } from '../src/testing/realistic-seed.js';
import { rebuildRollups } from '../src/store/sqlite-rollup.js';

const N = Number(process.env.BENCH_MEASUREMENTS ?? 200_000);
const REQUESTS = Number(process.argv[2] ?? 60);

function pctile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

function seed(file: string): void {
  const t0 = performance.now();
  let last = 0;
  const r = bulkLoadSqlite(file, realisticRows(N), (n) => {
    if (n - last >= 1_000_000) {
      process.stderr.write(`  loaded ${n} (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
      last = n;
    }
  });
  const s = (performance.now() - t0) / 1000;
  console.log(
    `seed: ${r.inserted} measurements in ${s.toFixed(1)} s (rows ${r.insertS.toFixed(1)} s, indexes ${r.indexS.toFixed(1)} s, rollups+ANALYZE ${r.rollupS.toFixed(1)} s; ${Math.round(r.inserted / s)}/s), file ${(statSync(file).size / 1e9).toFixed(2)} GB`,
  );
}

/** The API calls behind each explorer page (web/src/pages/*.tsx), with the page's default filters. */
function pages(newestDay: string): Array<{ page: string; calls: string[] }> {
  const since30 = new Date(Date.parse(`${newestDay}T00:00:00Z`) - 29 * 86400_000).toISOString().slice(0, 10);
  return [...overviewAndLists(since30), ...entityPages(), ...changePages(since30)];
}

/** A country's, network's, region's or domain's page (web/src/pages/Entity.tsx). */
const entity = (key: string, value: string, related: Axis[]) => [
  `aggregation?${key}=${value}&axis_x=measurement_start_day&time_grain=day`,
  `aggregation?${key}=${value}&axis_x=measurement_start_day&axis_y=mechanism&time_grain=day`,
  `aggregation?${key}=${value}&axis_x=mechanism`,
  `aggregation?${key}=${value}&axis_x=layer`,
  ...related.map((a) => `aggregation?${key}=${value}&axis_x=${a}`),
  `measurements?${key}=${value}&limit=50`,
];

function overviewAndLists(since30: string): Array<{ page: string; calls: string[] }> {
  return [
    {
      page: 'overview (30 days)',
      calls: [
        'measurements?limit=1',
        'measurements?blocking=true&limit=15',
        `aggregation?since=${since30}&axis_x=mechanism`,
        `aggregation?since=${since30}&axis_x=layer`,
        `aggregation?since=${since30}&axis_x=probe_cc`,
        `aggregation?since=${since30}&axis_x=measurement_start_day&time_grain=day`,
        `measurements?since=${since30}&limit=50`,
      ],
    },
    {
      page: 'overview (all time)',
      calls: ['aggregation?axis_x=mechanism', 'aggregation?axis_x=probe_cc', 'aggregation?axis_x=measurement_start_day&time_grain=week'],
    },
    {
      page: 'chart builder',
      calls: [
        'aggregation?axis_x=measurement_start_day&time_grain=day&probe_cc=CN',
        'aggregation?axis_x=probe_cc&axis_y=mechanism',
        'aggregation?axis_x=category_code&axis_y=probe_cc&blocking=true',
        `aggregation?axis_x=domain&probe_cc=IR&since=${since30}`,
      ],
    },
    {
      page: 'measurements list',
      calls: [
        'measurements?limit=50',
        'measurements?probe_cc=CN&limit=50',
        'measurements?probe_cc=CN&blocking=true&limit=50',
        'measurements?domain=youtube.com&limit=50',
        'measurements?probe_asn=AS4134&mechanism=dns.injection&limit=50',
        'measurements?region=Henan&limit=50',
        'measurements?test_name=web_connectivity&confirmed=true&limit=50',
      ],
    },
  ];
}

function entityPages(): Array<{ page: string; calls: string[] }> {
  return [
    { page: 'country CN', calls: entity('probe_cc', 'CN', ['probe_asn', 'region', 'domain']) },
    { page: 'network AS4134', calls: entity('probe_asn', 'AS4134', ['domain', 'region', 'probe_cc']) },
    { page: 'region Henan', calls: entity('region', 'Henan', ['domain', 'probe_asn', 'probe_cc']) },
    {
      page: 'domain youtube.com (top)',
      calls: [
        ...entity('domain', 'youtube.com', ['probe_cc', 'probe_asn', 'region']),
        'states?domain=youtube.com',
        'changes?domain=youtube.com&limit=1000',
      ],
    },
    {
      page: 'domain site300.example (tail)',
      calls: [
        ...entity('domain', 'site300.example', ['probe_cc', 'probe_asn', 'region']),
        'states?domain=site300.example',
        'changes?domain=site300.example&limit=1000',
      ],
    },
  ];
}

function changePages(since30: string): Array<{ page: string; calls: string[] }> {
  return [
    {
      page: 'changes',
      calls: [
        'changes/status',
        'changes?limit=1000',
        `changes?since=${since30}&limit=1000`,
        'changes?probe_cc=CN&limit=1000',
        'states?blocked=true',
        'states?probe_cc=IR&blocked=true',
        'changes.atom?probe_cc=RU',
      ],
    },
    {
      // No explorer page calls the anomalies API (researchers and alerting do): measured beside them.
      page: 'anomalies API (no page)',
      calls: [
        'anomalies?axis=probe_asn&time_grain=day',
        'anomalies?axis=domain&probe_cc=IR&time_grain=day',
        'anomalies?axis=probe_cc&time_grain=week',
      ],
    },
  ];
}

/** The query an aggregation URL asks (the same parse as the route's, for the raw comparison). */
function asQuery(call: string): AggregationQuery | null {
  if (!call.startsWith('aggregation?')) return null;
  const p = new URLSearchParams(call.slice('aggregation?'.length));
  const q: AggregationQuery = { filter: {} };
  for (const [k, v] of p) {
    if (k === 'axis_x' || k === 'axis_y') q[k] = v as Axis;
    else if (k === 'time_grain') q.time_grain = v as AggregationQuery['time_grain'];
    else if (k === 'since' || k === 'until') q.filter[k] = parseTimeBound(v, k);
    else if (k === 'probe_asn') q.filter.probe_asn = Number(v.replace(/^AS/, ''));
    else (q.filter as Record<string, string>)[k] = v;
  }
  return q;
}

async function main(): Promise<void> {
  const dir = process.env.BENCH_DB ? null : mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), 'wallscope-explorer-p95-'));
  const file = process.env.BENCH_DB ?? join(dir!, 'explorer.sqlite');
  try {
    if (!existsSync(file)) seed(file);
    if (process.env.BENCH_SEED_ONLY === '1') return;
    if (process.env.BENCH_REBUILD_ROLLUPS === '1') {
      // A store seeded before the current set of rollups: count them again (before the store's
      // own statements are prepared against them).
      const t = performance.now();
      const db = new Database(file);
      db.transaction(() => rebuildRollups(db))();
      db.close();
      console.log(`rollups rebuilt in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const store = new SqliteStore(file);
    let t0 = performance.now();
    const changes = new ChangeStore(file);
    // BENCH_CHANGES_BUILT=1: the change store in BENCH_DB was built before (bench/changes.ts rebuilds it).
    if (process.env.BENCH_CHANGES_BUILT !== '1') {
      const rb = changes.rebuild();
      console.log(
        `changes: rebuilt ${rb.keys} keys, ${rb.changes} changes from ${rb.measurements} measurements in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
    const app = await buildApp({ store, changes, logger: false, rateLimit: false, webRoot: false });
    const base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '') + '/api/v1/';
    const newest = ((await (await fetch(base + 'measurements?limit=1')).json()) as { results: Array<{ measurement_start_time: string }> })
      .results[0]!;
    // BENCH_CALLS=regex: only the calls it matches (re-measuring a few after a fix).
    const only = process.env.BENCH_CALLS ? new RegExp(process.env.BENCH_CALLS) : null;
    const all = pages(newest.measurement_start_time.slice(0, 10))
      .map((p) => ({ ...p, calls: p.calls.filter((c) => !only || only.test(c)) }))
      .filter((p) => p.calls.length);
    // Same answers first.
    let checked = 0;
    for (const { calls } of all)
      for (const c of calls) {
        const q = asQuery(c);
        if (!q) continue;
        const api = ((await (await fetch(base + c)).json()) as { result: unknown[] }).result;
        const { sql, params } = store.rawAggregationSql(q);
        const raw = store.runAggregation(sql, params);
        if (JSON.stringify(api) !== JSON.stringify(raw)) throw new Error(`${c}: the API and the raw GROUP BY disagree`);
        checked++;
      }
    console.log(`checked: ${checked} aggregation calls answer exactly as the raw GROUP BY over the measurements`);
    console.log(`\n${N} measurements, ${REQUESTS} requests per call, sequential, through HTTP:`);
    let worst = { call: '', p95: 0 };
    for (const { page, calls } of all) {
      console.log(`  ${page}`);
      for (const c of calls) {
        const ms: number[] = [];
        let bytes = 0;
        for (let i = 0; i < REQUESTS + 2; i++) {
          t0 = performance.now();
          const res = await fetch(base + c);
          const body = await res.arrayBuffer();
          if (!res.ok) throw new Error(`${c}: HTTP ${res.status}: ${Buffer.from(body).toString().slice(0, 200)}`);
          if (i >= 2) ms.push(performance.now() - t0); // two warm-up requests
          bytes = body.byteLength;
        }
        const p95 = pctile(ms, 0.95);
        if (p95 > worst.p95) worst = { call: c, p95 };
        console.log(
          `    p50 ${pctile(ms, 0.5).toFixed(1).padStart(7)} ms  p95 ${p95.toFixed(1).padStart(7)} ms  ${String(bytes).padStart(8)} B  ${c}`,
        );
      }
    }
    console.log(`\nworst p95: ${worst.p95.toFixed(1)} ms (${worst.call}); target < 300 ms: ${worst.p95 < 300 ? 'MET' : 'NOT MET'}`);
    await app.close();
    changes.close();
    await store.close();
  } finally {
    if (dir && process.env.BENCH_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
    else console.log(`store kept: ${file}`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
