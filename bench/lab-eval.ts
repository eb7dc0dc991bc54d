// Benchmark: `lab eval` of a 1,000-target scenario (500 sites over https and http, behind a
// national and a regional censor with every mechanism), wall time, and the share of it spent
// waiting on configured timeouts (connect 1.5 s, TLS/HTTP 3 s, the DNS duplicates window) versus
// our own work (CPU time of this process: lab, probe, helper and analysis all run in it).
//   node dist/bench/lab-eval.js [sites=500] [concurrency=16]
import { benchScenario } from './scenario.js';
import { evalScenario, timeoutWaitMs } from '../src/lab/index.js';

const SITES = Number(process.argv[2] ?? 500);
const CONCURRENCY = Number(process.argv[3] ?? 16);

const s = benchScenario(SITES);
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
  ...Object.entries(r.per_mechanism).map(
    ([m, x]) => `    ${m.padEnd(15)} precision ${x.precision} recall ${x.recall} (tp ${x.tp} fp ${x.fp} fn ${x.fn})`,
  ),
  ...(run.warnings.length ? [`  warnings: ${run.warnings.join('; ')}`] : []),
];
process.stdout.write(lines.join('\n') + '\n');
