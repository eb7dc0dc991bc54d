// Benchmark: the start-up cost of the `wallscope` command, side by side with bare Node. Runs each
// command RUNS times (BENCH_RUNS, default 10) taking turns (round-robin) and prints the median and the
// fastest wall time:
//   node -e 0                          (bare Node: the floor)
//   wallscope --help                   (lists the commands; loads none of them: src/cli/main.ts)
//   wallscope measure --help           (loads the measure command only)
//   wallscope measure not-a-url        (a usage error: exit 2, nothing measured)
//   wallscope measure http://127.0.0.2:PORT/   (one real loopback URL, IP literal, no helper,
//                                       --allow-net 127.0.0.0/8: nothing leaves the machine)
// and, for the last one, the same measurement in-process (no start-up), so the difference is what
// start-up costs a one-URL measure. Then the time to first packet (spawn to the site's accepting
// the TCP connection) of that measure, side by side with a bare Node that only connects. And the
// load average before and after, since the machine may be shared. Not a test. `node dist/bench/cli-startup.js [BIN]` (BIN: another
// checkout's bin/wallscope.js, for a before/after comparison on the same machine).
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
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

/**
 * Wall time of each command, RUNS times, round-robin (one run of each in turn) so that every command
 * sees the same load; median and fastest per command.
 */
async function timeSideBySide(cmds: Array<{ args: string[]; expect: number }>): Promise<Array<{ median: number; min: number }>> {
  const ms: number[][] = cmds.map(() => []);
  for (let i = 0; i < RUNS; i++)
    for (const [k, { args, expect }] of cmds.entries()) {
      const t = process.hrtime.bigint();
      const r = await run(args);
      ms[k]!.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (r.status !== expect) throw new Error(`${args.join(' ')}: exit ${r.status}, expected ${expect}: ${r.stderr.slice(0, 300)}`);
    }
  return ms.map(stats);
}

const stats = (ms: number[]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]! };
};

// The time of the site's first accepted connection since `since` (ms), for the run in flight.
let since = 0n;
let firstPacketMs: number | null = null;
const onConnection = () => {
  if (firstPacketMs === null && since) firstPacketMs = Number(process.hrtime.bigint() - since) / 1e6;
};

/** Time from spawn to the site's first accepted connection, in ms. */
async function firstPacketOnce(args: string[]): Promise<number> {
  firstPacketMs = null;
  since = process.hrtime.bigint();
  const r = await run(args);
  since = 0n;
  if (r.status !== 0 || firstPacketMs === null)
    throw new Error(`${args.join(' ')}: exit ${r.status}, no connection: ${r.stderr.slice(0, 300)}`);
  return firstPacketMs;
}

const loadBefore = loadavg();
const site = await startSite({ host: '127.0.0.2', onConnection });
try {
  const url = `http://127.0.0.2:${site.port}/`;
  const measureArgs = [bin, 'measure', url, '--allow-net', '127.0.0.0/8', '--no-attribution', '--no-fingerprints', '--json'];
  const cmds: Array<[string, string[], number]> = [
    ['node -e 0', ['-e', '0'], 0],
    ['wallscope --help', [bin, '--help'], 0],
    ['wallscope measure --help', [bin, 'measure', '--help'], 0],
    ['wallscope measure not-a-url', [bin, 'measure', 'not-a-url'], Number(process.env.BENCH_BAD_URL_EXIT ?? 2)],
    ['wallscope measure <one loopback URL>', measureArgs, 0],
  ];
  const timed = await timeSideBySide(cmds.map(([, args, expect]) => ({ args, expect })));
  const rows = cmds.map(([name], k): [string, { median: number; min: number }] => [name, timed[k]!]);
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
  // Time to first packet, the two runs alternating so that both see the same load.
  const bare = ['-e', `require('net').connect(${site.port}, '127.0.0.2').on('connect', function () { this.end(); })`];
  const bareMs: number[] = [];
  const measureMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    bareMs.push(await firstPacketOnce(bare));
    measureMs.push(await firstPacketOnce(measureArgs));
  }
  const firstRows: Array<[string, { median: number; min: number }]> = [
    ['first packet: bare node connecting', stats(bareMs)],
    ['first packet: wallscope measure <URL>', stats(measureMs)],
  ];
  for (const [name, r] of firstRows) console.log(`${name.padEnd(40)} ${r.median.toFixed(0).padStart(6)} / ${r.min.toFixed(0).padStart(6)}`);
  const fmt = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  console.log(`load average: before ${fmt(loadBefore)}, after ${fmt(loadavg())} (1, 5, 15 min)`);
} finally {
  await site.close();
}
