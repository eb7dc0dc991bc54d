// What ClickHouseStore.put()'s uid SELECT per batch costs (checkStoredUids, the default since
// 2026-11-22: a duplicate stored before a restart answers inserted: false and is not inserted
// again) beside the same store without it (checkStoredUids: false), side by side in one run.
//
// In-process, no HTTP: `concurrency` submitters each put() the next measurement until N are stored
// (distinct uids, synthetic measurements over 60 days); each variant on its own fresh database,
// the order of the two variants alternating per round. Then the "restart" half: a NEW store on
// the same database takes all N again (the probe retried after the collector restarted) and we
// count what it answers and what it writes (uid rows: count() without FINAL, before background merges fold the copies).
// Rates are N / wall time. BENCH_RUNS rounds (default 3); medians, and the median of the per-round
// ratios check/no-check.
//
// Usage: WALLSCOPE_CLICKHOUSE_URL=http://127.0.0.1:18123 node dist/bench/clickhouse-dedupe.js [N=10000] [concurrency,...=64,512]
import { ClickHouseStore } from '../src/store/index.js';
import { syntheticMeasurements } from '../src/testing/seed.js';
import type { Measurement, Verdict } from '../src/model/index.js';

const URL_ = process.env.WALLSCOPE_CLICKHOUSE_URL;
const N = Number(process.argv[2] ?? 10_000);
const CONCURRENCY = (process.argv[3] ?? '64,512').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

type Item = { m: Measurement; verdict: Verdict };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function putAll(store: ClickHouseStore, items: Item[], concurrency: number): Promise<{ ms: number; inserted: number }> {
  let next = 0;
  let inserted = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const { m, verdict } = items[next++];
        if ((await store.put(m, verdict)).inserted) inserted++;
      }
    }),
  );
  return { ms: performance.now() - t0, inserted };
}

interface Run {
  rate: number;
  restartRate: number;
  restartInserted: number;
  uidRows: number;
  count: number;
}

async function variant(url: string, check: boolean, items: Item[], concurrency: number, tag: string): Promise<Run> {
  const database = `wallscope_bench_dedupe_${tag}_${process.pid}`;
  const first = await ClickHouseStore.open({ url, database, checkStoredUids: check });
  try {
    const a = await putAll(first, items, concurrency);
    if (a.inserted !== items.length) throw new Error(`${tag}: ${a.inserted} of ${items.length} inserted on first submission`);
    await first.close();
    const again = await ClickHouseStore.open({ url, database, checkStoredUids: check });
    const b = await putAll(again, items, concurrency);
    const uidRows = Number((await again.rows<{ n: string }>('SELECT count() AS n FROM measurement_uids'))[0].n);
    const count = await again.count();
    await again.dropDatabase();
    await again.close();
    return { rate: items.length / (a.ms / 1000), restartRate: items.length / (b.ms / 1000), restartInserted: b.inserted, uidRows, count };
  } catch (e) {
    const s = await ClickHouseStore.open({ url, database });
    await s.dropDatabase();
    await s.close();
    throw e;
  }
}

async function main(): Promise<void> {
  if (!URL_) {
    console.log('skipped: WALLSCOPE_CLICKHOUSE_URL is unset (eval "$(bash scripts/clickhouse.sh start)")');
    return;
  }
  console.log(
    `ClickHouse ${URL_}: put() of ${N} distinct measurements, then the same ${N} again through a new store (a restart); ${RUNS} rounds`,
  );
  for (const conc of CONCURRENCY) {
    const runs: Record<'check' | 'nocheck', Run[]> = { check: [], nocheck: [] };
    const ratios: number[] = [];
    for (let k = 0; k < RUNS; k++) {
      const items = [...syntheticMeasurements(N, { seed: 1000 + k, days: 60 })];
      const order: Array<'check' | 'nocheck'> = k % 2 ? ['nocheck', 'check'] : ['check', 'nocheck'];
      const got: Partial<Record<'check' | 'nocheck', Run>> = {};
      for (const v of order) got[v] = await variant(URL_, v === 'check', items, conc, `${v}${conc}_${k}`);
      runs.check.push(got.check!);
      runs.nocheck.push(got.nocheck!);
      ratios.push(got.check!.rate / got.nocheck!.rate);
      const line = (v: 'check' | 'nocheck') => {
        const r = got[v]!;
        return `${v.padEnd(7)} ${r.rate.toFixed(0).padStart(6)}/s, after restart ${r.restartRate.toFixed(0).padStart(6)}/s answered inserted:true ${r.restartInserted}, uid rows not yet merged ${r.uidRows}, count() ${r.count}`;
      };
      console.log(`  ${conc} submitters, round ${k + 1} (${order.join(' then ')}):\n    ${line('check')}\n    ${line('nocheck')}`);
    }
    const med = (v: 'check' | 'nocheck', f: (r: Run) => number) => median(runs[v].map(f)).toFixed(0);
    console.log(
      `  ${conc} submitters, medians: first submission check ${med('check', (r) => r.rate)}/s vs no-check ${med('nocheck', (r) => r.rate)}/s, ` +
        `ratio ${median(ratios).toFixed(2)} (rounds ${ratios.map((r) => r.toFixed(2)).join(', ')}); ` +
        `resubmission after restart check ${med('check', (r) => r.restartRate)}/s vs no-check ${med('nocheck', (r) => r.restartRate)}/s`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
