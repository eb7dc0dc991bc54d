// `infer` on 1,000 blocked names of a generated list: wall time, trials per inferred rule, and
// how many inferred rules equal the list's (shape and literal). SNI trials go to one lab front (the
// censor matches the SNI whatever the server), each from a fresh lab client address (no residual
// pollution); DNS trials to the lab's silent address with a 300 ms window.
// Usage: node dist/bench/infer.js [names, default 1000] [concurrency, default 16]
import { generateRules, inferJobs, type InferJob, type InferProtocol } from '../src/lab/index.js';
import { dnsTrial, sniTrial } from '../src/probe/index.js';
import { startInjectionLab } from '../src/testing/injection-lab.js';

const N = Number(process.argv[2] ?? 1000);
const C = Number(process.argv[3] ?? 16);

async function main(): Promise<void> {
  const gen = [...generateRules(77, 200_000, 'gfw')];
  const injection = await startInjectionLab({ rules: gen.map((g) => g.rule), sni: true });
  const { lab } = injection;
  try {
    const front = lab.sites[0]!;
    const picked = gen.filter((_, i) => i % Math.floor(gen.length / N) === 0).slice(0, N);
    const nameOf = (g: (typeof gen)[number]) => (g.shape === 'unanchored' ? `${g.kw}.org` : g.kw);
    let client = 0;
    const fresh = { localAddress: () => lab.clientAddress(client++), timeoutMs: 3000 };
    const { host: h, port: p } = injection.silent;
    for (const protocol of ['sni', 'dns'] as InferProtocol[]) {
      const jobs: InferJob[] = picked.map((g) => ({ name: nameOf(g), protocol, layer: 'national' }));
      const t0 = performance.now();
      const lines = await inferJobs(
        jobs,
        {
          dns: dnsTrial({ host: h, port: Number(p) }, { ...fresh, timeoutMs: 300 }),
          sni: () => sniTrial({ host: front.address, port: front.httpsPort! }, fresh),
        },
        { concurrency: C },
      );
      const ms = performance.now() - t0;
      const truth = new Map(picked.map((g) => [nameOf(g), g]));
      const right = lines.filter((l) => l.x_shape === truth.get(l.name)!.shape && l.x_kw === truth.get(l.name)!.kw).length;
      const q = lines.reduce((a, l) => a + l.queries, 0);
      process.stdout.write(
        `${protocol}: ${N} names, ${lines.length} rules inferred in ${(ms / 1000).toFixed(1)} s at concurrency ${C} (${(ms / lines.length).toFixed(0)} ms of wall time per rule), ` +
          `${(q / lines.length).toFixed(1)} trials per rule; ${right} equal to the list's rule (${((right / lines.length) * 100).toFixed(1)}%)\n`,
      );
    }
  } finally {
    await injection.close();
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
});
