// Benchmark: what `wallscope fet test` spends to decide at 99% (alpha = beta = 0.01) against the
// lab's FET censor at rates 26.3%, 10% and 0%, next to the fixed-count test with the same error
// rates (the smallest n and cutoff c with P(X >= c | p0) <= alpha and P(X < c | p1) <= beta);
// and the lab's cost per inspected flow (FetCensor.decide alone, and a connection through a
// service front with the censor on at rate 0 vs no censor).
//   node dist/bench/fet-test.js [runs=5] [residual_s=1]
import net from 'node:net';
import { FetCensor, parseScenario, startLab } from '../src/lab/index.js';
import { randomNonExempt, runFetTest } from '../src/probe/index.js';

const RUNS = Number(process.argv[2] ?? 5);
const RESIDUAL_S = Number(process.argv[3] ?? 1);
const P0 = 0.01;
const P1 = 0.08;
const ALPHA = 0.01;
const BETA = 0.01;

function binomCdf(n: number, p: number): number[] {
  const pmf: number[] = [];
  for (let k = 0; k <= n; k++) {
    let lc = 0;
    for (let i = 1; i <= k; i++) lc += Math.log((n - k + i) / i);
    pmf.push(Math.exp(lc + k * Math.log(p) + (n - k) * Math.log(1 - p)));
  }
  const cdf: number[] = [];
  pmf.reduce((acc, x, k) => ((cdf[k] = acc + x), acc + x), 0);
  return cdf;
}

function fixedCount(): { n: number; c: number } {
  for (let n = 1; n <= 2000; n++) {
    const c0 = binomCdf(n, P0);
    const c1 = binomCdf(n, P1);
    for (let c = 1; c <= n; c++) {
      const falseActive = 1 - c0[c - 1]!; // P(X >= c | p0)
      const missed = c1[c - 1]!; // P(X < c | p1)
      if (falseActive <= ALPHA && missed <= BETA) return { n, c };
    }
  }
  throw new Error('no fixed design up to 2000');
}

const yaml = (rate: number | null): string => `
name: fet-bench
seed: ${Date.now() % 100000}
world:
  sites: [{ domain: s.example }]
  helper: false
  services: [{ name: sink, kind: sink }]
censors:
  - name: gfw
    layer: national
${rate === null ? '    sampling: 1' : `    fet: { rate: ${rate}, residual_s: ${RESIDUAL_S} }`}
`;

async function main(): Promise<void> {
  const fixed = fixedCount();
  console.log(
    `SPRT p0=${P0} p1=${P1} alpha=${ALPHA} beta=${BETA}; fixed-count design with the same error rates: n=${fixed.n} random trials, active when >= ${fixed.c} blocked`,
  );
  console.log('rate   runs  verdicts                random trials mean/max  connections mean/max  blocks mean  lab wall s mean/max');
  for (const rate of [0.263, 0.1, 0]) {
    const rows: Array<{ verdict: string; random: number; conns: number; blocks: number; s: number }> = [];
    for (let i = 0; i < RUNS; i++) {
      const lab = await startLab(parseScenario(yaml(rate), 'bench.yaml'));
      try {
        const s = lab.services[0]!;
        const t = performance.now();
        const k = (await runFetTest(s.address, s.port, { timeoutMs: 300, residualStepMs: 250, maxResidualS: 30, maxSeconds: 600 }))
          .test_keys;
        rows.push({
          verdict: k.x_fet_verdict,
          random: k.x_fet_random.sent,
          conns: k.x_fet_trials_spent,
          blocks: k.x_fet_random.blocked,
          s: (performance.now() - t) / 1000,
        });
      } finally {
        await lab.close();
      }
    }
    const mean = (f: (r: (typeof rows)[0]) => number): string => (rows.reduce((a, r) => a + f(r), 0) / rows.length).toFixed(1);
    const max = (f: (r: (typeof rows)[0]) => number): string => String(Math.max(...rows.map(f)));
    const verdicts = [...new Set(rows.map((r) => r.verdict))].map((v) => `${v} x${rows.filter((r) => r.verdict === v).length}`).join(', ');
    console.log(
      `${rate.toFixed(3)}  ${String(RUNS).padEnd(4)}  ${verdicts.padEnd(22)}  ${mean((r) => r.random)}/${max((r) => r.random)}`.padEnd(64) +
        `${mean((r) => r.conns)}/${max((r) => r.conns)}`.padEnd(22) +
        `${mean((r) => r.blocks)}`.padEnd(13) +
        `${mean((r) => r.s)}/${Math.max(...rows.map((r) => r.s)).toFixed(1)}`,
    );
  }
  console.log(`(lab residual ${RESIDUAL_S} s; in the field each block costs the real residual, ~180 s, before the next random trial)`);

  // Cost per inspected flow.
  const fet = new FetCensor(parseScenario(yaml(0), 'bench.yaml'));
  const packets = Array.from({ length: 1000 }, () => randomNonExempt(512));
  const N = 200_000;
  let t = performance.now();
  for (let i = 0; i < N; i++) fet.decide({ client: `c${i & 1023}`, server: 's', port: 1 }, packets[i % 1000]!, 0);
  const decideUs = ((performance.now() - t) * 1000) / N;
  const perConnection = async (rate: number | null): Promise<number> => {
    const lab = await startLab(parseScenario(yaml(rate), 'bench.yaml'));
    try {
      const s = lab.services[0]!;
      const one = (i: number): Promise<void> =>
        new Promise((resolve) => {
          const c = net.connect({ host: s.address, port: s.port, localAddress: lab.clientAddress(i) }, () => c.write(packets[i % 1000]!));
          c.on('data', () => {
            c.destroy();
            resolve();
          });
          c.on('error', () => resolve());
        });
      for (let i = 0; i < 200; i++) await one(i); // warm-up
      t = performance.now();
      for (let i = 0; i < 3000; i += 50) await Promise.all(Array.from({ length: 50 }, (_, k) => one(i + k)));
      return ((performance.now() - t) * 1000) / 3000;
    } finally {
      await lab.close();
    }
  };
  const off = await perConnection(null);
  const on = await perConnection(0);
  console.log(
    `FetCensor.decide on a 512-byte first packet: ${decideUs.toFixed(2)} us; a connection through the service front: ${off.toFixed(0)} us without the censor, ${on.toFixed(0)} us with it (rate 0: every flow inspected); decide = ${((decideUs / off) * 100).toFixed(1)}% of a connection`,
  );
}

await main();
