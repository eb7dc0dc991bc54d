// Benchmark: `lab eval` of a 1,000-target scenario (500 sites over https and http, behind a
// national and a regional censor with every mechanism), wall time, and the share of it spent
// waiting on configured timeouts (connect 1.5 s, TLS/HTTP 3 s, the DNS duplicates window) versus
// our own work (CPU time of this process: lab, probe, helper and analysis all run in it).
//   node dist/bench/lab-eval.js [sites=500] [concurrency=16]
import type { Scenario } from '../src/model/index.js';
import { evalScenario, timeoutWaitMs } from '../src/lab/index.js';

const SITES = Number(process.argv[2] ?? 500);
const CONCURRENCY = Number(process.argv[3] ?? 16);

function scenario(): Scenario {
  // Throttled sites serve 64 KiB, so that 8 kbps really makes them fail within the budget.
  const sites = Array.from({ length: SITES }, (_, i) => ({ domain: `s${String(i).padStart(4, '0')}.bench.example`, ...(i % 20 === 1 ? { page: { bytes: 65536 } } : {}) }));
  const pick = (k: (i: number) => boolean) => sites.filter((_, i) => k(i)).map((s) => `^${s.domain.replace(/\./g, '\\.')}$`);
  return {
    name: 'bench-1000',
    seed: 1,
    world: { sites, resolvers: { isp: {}, public: {} }, helper: true },
    censors: [
      { name: 'henan', layer: 'regional', sni_reset: { rules: pick((i) => i % 10 === 4) }, http_reset: { host_rules: pick((i) => i % 10 === 4) } },
      {
        name: 'gfw',
        layer: 'national',
        dns_injection: { rules: pick((i) => i % 10 === 5), injectors: 2, lead_ms: 20 },
        sni_reset: { rules: pick((i) => i % 10 === 2 || i % 10 === 3) },
        http_reset: { host_rules: pick((i) => i % 10 === 2 || i % 10 === 3) },
        null_route: sites.filter((_, i) => i % 20 === 0).map((s) => s.domain),
        throttle: { sni_rules: pick((i) => i % 20 === 1), host_rules: pick((i) => i % 20 === 1), kbps: 8 },
      },
    ],
  };
}

const s = scenario();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const run = await evalScenario(s, { concurrency: CONCURRENCY });
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const windowMs = run.probeOptions.dnsWindowMs ?? 0;
const { busyMs, waitMs } = timeoutWaitMs(run.rows, windowMs);
const r = run.report;
const lines = [
  `lab eval bench: ${r.targets} targets on ${SITES} sites, concurrency ${CONCURRENCY}`,
  `  wall time ${(wallMs / 1000).toFixed(2)} s (lab start ${(run.startMs / 1000).toFixed(2)} s, measuring ${(run.measureMs / 1000).toFixed(2)} s)`,
  `  per target: mean ${(busyMs / r.targets).toFixed(0)} ms`,
  `  share of target time spent waiting on configured timeouts (connect ${run.probeOptions.connectTimeoutMs} ms, TLS ${run.probeOptions.tlsTimeoutMs} ms, HTTP ${run.probeOptions.httpTimeoutMs} ms, DNS window ${windowMs} ms): ${((waitMs / busyMs) * 100).toFixed(1)}%`,
  `  our own work: CPU ${((cpu.user + cpu.system) / 1000 / 1000).toFixed(2)} s = ${(((cpu.user + cpu.system) / 1000 / wallMs) * 100).toFixed(1)}% of wall time (one process: lab + probe + helper + analysis)`,
  `  blocking agreement ${r.blocking_agreement}, mismatches ${r.mismatches.length}`,
  ...Object.entries(r.per_mechanism).map(([m, x]) => `    ${m.padEnd(15)} precision ${x.precision} recall ${x.recall} (tp ${x.tp} fp ${x.fp} fn ${x.fn})`),
  ...(run.warnings.length ? [`  warnings: ${run.warnings.join('; ')}`] : []),
];
process.stdout.write(lines.join('\n') + '\n');
