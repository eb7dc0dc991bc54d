// Benchmark: the netns lab (root) side by side with the loopback lab in one run, on the same
// 1,000-target scenario (bench/scenario.ts): wall time and verdicts; then, from the netns run's
// own measurements, the injection latency per layer as the probe saw it (trigger sent -> reset,
// x_reset_latency_ms) against the published means (Henan 2.82 ms, GFW 17.98 ms, SP25), and the
// share of races the injectors won (first DNS answer forged; reset before any server byte).
//   node dist/bench/netns-lab.js [sites=500] [concurrency=16]
import { evalNetnsScenario, evalScenario, netnsMissing, type EvalRun } from '../src/lab/index.js';
import { benchScenario } from './scenario.js';

const SITES = Number(process.argv[2] ?? 500);
const CONCURRENCY = Number(process.argv[3] ?? 16);
const missing = netnsMissing();
if (missing.length) {
  process.stderr.write(`netns-lab bench needs ${missing.join(', ')}\n`);
  process.exit(1);
}
const s = benchScenario(SITES);

function summary(label: string, run: EvalRun, wallMs: number): string[] {
  const r = run.report;
  return [
    `${label}: ${r.targets} targets, wall ${(wallMs / 1000).toFixed(2)} s (start ${(run.startMs / 1000).toFixed(2)} s, measuring ${(run.measureMs / 1000).toFixed(2)} s), blocking agreement ${r.blocking_agreement}, mismatches ${r.mismatches.length}`,
    ...Object.entries(r.per_mechanism).map(
      ([m, x]) => `    ${m.padEnd(15)} precision ${x.precision} recall ${x.recall} (tp ${x.tp} fp ${x.fp} fn ${x.fn})`,
    ),
    ...Object.entries(r.per_layer).map(([m, x]) => `    layer ${m.padEnd(9)} precision ${x.precision} recall ${x.recall}`),
  ];
}

const t0 = performance.now();
const loop = await evalScenario(s, { concurrency: CONCURRENCY });
const loopMs = performance.now() - t0;
const t1 = performance.now();
const ns = await evalNetnsScenario(s, { concurrency: CONCURRENCY });
const nsMs = performance.now() - t1;

// Verdicts side by side, target by target.
const same = ns.rows.filter(
  (r, i) => r.got.blocking === loop.rows[i]!.got.blocking && r.got.mechanism === loop.rows[i]!.got.mechanism,
).length;

// Injection latency per layer, from the netns measurements.
const lat: Record<string, number[]> = {};
let dnsTargets = 0;
let dnsWon = 0;
let resetTargets = 0;
let resetWon = 0;
for (const r of ns.rows) {
  const tk = (r.measurement?.test_keys ?? {}) as {
    tls_handshakes?: Array<{ failure: string | null; x_reset_latency_ms?: number }>;
    requests?: Array<{ failure: string | null; x_reset_latency_ms?: number }>;
    queries?: Array<{ answers?: Array<{ ipv4?: string }> | null }>;
  };
  if (r.expected.mechanism === 'dns.injection') {
    dnsTargets++;
    const first = tk.queries?.[0]?.answers?.[0]?.ipv4 ?? '';
    // The world's sites live in 198.19.1.0 - 198.19.99.255, the remapped forged pool from 198.19.100.1.
    if (Number(first.split('.')[2] ?? 0) >= 100) dnsWon++;
  }
  if (r.expected.mechanism === 'tls.reset' || r.expected.mechanism === 'http.reset') {
    resetTargets++;
    if (r.got.mechanism === r.expected.mechanism) resetWon++;
    for (const e of [...(tk.tls_handshakes ?? []), ...(tk.requests ?? [])])
      if (e.failure === 'connection_reset' && typeof e.x_reset_latency_ms === 'number')
        (lat[r.expected.layer ?? 'unknown'] ??= []).push(e.x_reset_latency_ms);
  }
}
const stats = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const q = (p: number) => v[Math.min(v.length - 1, Math.floor(p * v.length))]!;
  return `n ${v.length}, mean ${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(2)} ms, p50 ${q(0.5).toFixed(2)}, p95 ${q(0.95).toFixed(2)}`;
};
const published: Record<string, string> = { regional: 'Henan 2.82 ms', national: 'GFW 17.98 ms' };
process.stdout.write(
  [
    `netns vs loopback lab eval, ${s.world.sites.length} sites, concurrency ${CONCURRENCY}, one run, this machine (2 cores, shared)`,
    ...summary('loopback', loop, loopMs),
    ...summary('netns   ', ns, nsMs),
    `  wall-time ratio netns/loopback: ${(nsMs / loopMs).toFixed(2)}`,
    `  same verdict (blocking, mechanism) in both modes: ${same}/${ns.rows.length}`,
    ...Object.entries(lat).map(
      ([layer, xs]) =>
        `  injection latency ${layer.padEnd(9)} (trigger -> reset, probe side): ${stats(xs)}; published mean ${published[layer] ?? '-'}`,
    ),
    `  races won by the injectors: DNS ${dnsWon}/${dnsTargets} (first answer forged), resets ${resetWon}/${resetTargets} (reset before the genuine reply)`,
  ].join('\n') + '\n',
);
