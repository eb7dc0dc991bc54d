// Benchmark: the start-up cost of the `wallscope` command, side by side with bare Node. Runs each
// command RUNS times (BENCH_RUNS, default 10) one after the other and prints the median and the
// fastest wall time:
//   node -e 0                          (bare Node: the floor)
//   wallscope --help                   (lists the commands; loads none of them: src/cli/main.ts)
//   wallscope measure --help           (loads the measure command only)
//   wallscope measure not-a-url        (a usage error: exit 2, nothing measured)
//   wallscope measure http://127.0.0.2:PORT/   (one real loopback URL, IP literal, no helper,
//                                       --allow-net 127.0.0.0/8: nothing leaves the machine)
// and, for the last one, the same measurement in-process (no start-up), so the difference is what
// start-up costs a one-URL measure. Not a test. `node dist/bench/cli-startup.js [BIN]` (BIN: another
// checkout's bin/wallscope.js, for a before/after comparison on the same machine).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { measureWebConnectivity } from '../src/probe/index.js';
import { startSite } from '../src/testing/probe-servers.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const bin = process.argv[2] ?? fileURLToPath(new URL('../../bin/wallscope.js', import.meta.url));

// Asynchronous children: the loopback site lives in this process and must keep answering.
function run(args: string[]): Promise<{ status: number; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, args, { encoding: 'utf8', timeout: 60_000 }, (err, _stdout, stderr) => {
      done({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr });
    });
  });
}

async function time(args: string[], expectCode: number): Promise<{ median: number; min: number }> {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    const r = await run(args);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.status !== expectCode) throw new Error(`${args.join(' ')}: exit ${r.status}, expected ${expectCode}: ${r.stderr.slice(0, 300)}`);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)]!, min: ms[0]! };
}

const site = await startSite({ host: '127.0.0.2' });
try {
  const url = `http://127.0.0.2:${site.port}/`;
  const measureArgs = [bin, 'measure', url, '--allow-net', '127.0.0.0/8', '--no-attribution', '--no-fingerprints', '--json'];
  const rows: Array<[string, { median: number; min: number }]> = [
    ['node -e 0', await time(['-e', '0'], 0)],
    ['wallscope --help', await time([bin, '--help'], 0)],
    ['wallscope measure --help', await time([bin, 'measure', '--help'], 0)],
    ['wallscope measure not-a-url', await time([bin, 'measure', 'not-a-url'], Number(process.env.BENCH_BAD_URL_EXIT ?? 2))],
    ['wallscope measure <one loopback URL>', await time(measureArgs, 0)],
  ];
  const inProcess: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    await measureWebConnectivity(url, { allowNet: ['127.0.0.0/8'], attribution: false });
    inProcess.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  inProcess.sort((a, b) => a - b);
  console.log(`bin: ${bin}; ${RUNS} runs each; wall ms (median / fastest)`);
  for (const [name, r] of rows) console.log(`${name.padEnd(40)} ${r.median.toFixed(0).padStart(6)} / ${r.min.toFixed(0).padStart(6)}`);
  console.log(
    `${'the same measurement in-process'.padEnd(40)} ${inProcess[Math.floor(RUNS / 2)]!.toFixed(0).padStart(6)} / ${inProcess[0]!.toFixed(0).padStart(6)}`,
  );
} finally {
  await site.close();
}
