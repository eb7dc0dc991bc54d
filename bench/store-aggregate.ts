// Aggregation of one country over a year by day on a large SQLite store: the HTTP API
// (/api/v1/aggregation through buildApp, over a loopback socket) beside the raw SQL GROUP BY on
// the same file, alternating in the same run. Issue 6 wants the API within 2x of the raw query.
//   node dist/bench/store-aggregate.js [N=1000000] [iterations=20]
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/server/index.js';
import { SqliteStore } from '../src/store/index.js';
import { syntheticMeasurements } from '../src/testing/seed.js';

const N = Number(process.argv[2] ?? 1_000_000);
const ITER = Number(process.argv[3] ?? 20);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'wallscope-bench-agg-'));
try {
  const file = join(dir, 'agg.sqlite');
  const store = new SqliteStore(file);
  let t0 = performance.now();
  let batch: Array<{ m: import('../src/model/index.js').Measurement; verdict: import('../src/model/index.js').Verdict }> = [];
  for (const item of syntheticMeasurements(N, { seed: 1, days: 365, end: new Date('2026-11-22T00:00:00Z') })) {
    batch.push(item);
    if (batch.length === 5000) {
      await store.putMany(batch);
      batch = [];
    }
  }
  if (batch.length) await store.putMany(batch);
  const seedS = (performance.now() - t0) / 1000;
  const app = await buildApp({ store, webRoot: false, rateLimit: false });
  const base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '');
  const url = `${base}/api/v1/aggregation?probe_cc=CN&since=2025-11-22&until=2026-11-22&axis_x=measurement_start_day&time_grain=day`;
  const { sql, params } = store.rawAggregationSql({
    axis_x: 'measurement_start_day',
    time_grain: 'day',
    filter: { probe_cc: 'CN', since: Date.parse('2025-11-22T00:00:00Z') / 1000, until: Date.parse('2026-11-22T00:00:00Z') / 1000 },
  });
  const raw = new Database(file, { readonly: true });
  const stmt = raw.prepare(sql);
  const api: number[] = [];
  const direct: number[] = [];
  let rows = 0;
  for (let i = 0; i < ITER + 2; i++) {
    t0 = performance.now();
    const body = (await (await fetch(url)).json()) as { result: unknown[] };
    const a = performance.now() - t0;
    t0 = performance.now();
    const r = stmt.all(...params);
    const d = performance.now() - t0;
    if (i >= 2) {
      api.push(a);
      direct.push(d);
    }
    rows = body.result.length;
    if (rows !== r.length) throw new Error(`API ${rows} rows, SQL ${r.length}`);
  }
  const plan = (raw.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((p) => p.detail).join('; ');
  console.log(
    `SQLite aggregation, ${N} measurements (seeded in ${seedS.toFixed(0)} s), CN over a year by day (${rows} rows), ${ITER} runs each, alternating`,
  );
  console.log(`  raw SQL GROUP BY (better-sqlite3) : median ${median(direct).toFixed(1)} ms`);
  console.log(`  GET /api/v1/aggregation (HTTP)    : median ${median(api).toFixed(1)} ms`);
  console.log(`  ratio API / raw                   : ${(median(api) / median(direct)).toFixed(2)} (target <= 2)`);
  console.log(`  plan: ${plan}`);
  raw.close();
  await app.close();
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
