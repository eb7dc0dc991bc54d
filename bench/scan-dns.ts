// `scan dns` side by side with dnsperf (Debian) in the same run: the same names, the same lab
// silent address (only the lab's two injectors answer there). Prints queries/s of each, replies
// kept by scan dns, and scan dns's peak RSS per list size (it streams the list: RSS should stay flat).
// Usage: node dist/bench/scan-dns.js [names for the rate comparison, default 100000] [their rate for RSS, default 10000]
//   BENCH_NAMES=100000,1000000,10000000  list sizes for the RSS runs (default 100000,1000000); each list
//   is generated streaming into a temporary file and deleted after its run.
//   BENCH_CPU_PROF=DIR  the scan processes write V8 CPU profiles there (read them with bench/cpu-profile.ts).
//   BENCH_SKIP_RATE=1   only the RSS runs.
//   BENCH_NODE_ARGS="--trace-gc ..."  more node flags for the scan processes; BENCH_SCAN_LOG=DIR keeps
//   each scan's stderr there (scan-<names>-<n>.log), e.g. to read its GC trace.
// The scan runs as dnsperf does (no rate, at most 1000 queries awaiting a first reply; on one machine
// an open-loop rate overruns the lab's injectors, which share its cores, and their replies are lost),
// then at dnsperf's measured rate, then with two sending threads.
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../src/probe/index.js';
import { startInjectionLab, type InjectionLab } from '../src/testing/injection-lab.js';

const N = Number(process.argv[2] ?? 100_000);
const RSS_RATE = Number(process.argv[3] ?? 10000);
const SIZES = (process.env.BENCH_NAMES ?? '100000,1000000').split(',').filter(Boolean).map(Number);
const PROF = process.env.BENCH_CPU_PROF;
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
const SCAN_LOG = process.env.BENCH_SCAN_LOG;
let scans = 0;
const dir = mkdtempSync(join(tmpdir(), 'wallscope-scan-bench-'));
const bin = join(repoRoot, 'bin', 'wallscope.js');
/** Each query's window as long as dnsperf's timeout (-t 2): both wait as long for an answer. */
const WAIT_MS = 2000;
/** dnsperf's -q and the scan's --outstanding: at most this many queries wait for a first reply. */
const OUTSTANDING = 1000;

async function writeNames(file: string, n: number, withType: boolean): Promise<void> {
  const out = createWriteStream(file);
  for (let i = 0; i < n; i++)
    if (!out.write(`n${i}.blocked.example${withType ? ' A' : ''}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  await new Promise<void>((r) => out.end(r));
}

function exec(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, stdout, stderr, ms: performance.now() - t0 }),
    );
  });
}

/** `scan dns` over a list file; its summary line parsed (queries, seconds, replies, late, peak RSS). */
async function runScan(lab: InjectionLab, list: string, out: string, rate: number, waitMs: number, threads = 1, outstanding = 0) {
  rmSync(out, { force: true });
  const prof = PROF ? ['--cpu-prof', '--cpu-prof-dir', PROF] : [];
  const args = [
    'scan',
    'dns',
    '--target',
    lab.silent.target,
    '--list',
    list,
    '--rate',
    String(rate),
    '--wait',
    String(waitMs),
    '--threads',
    String(threads),
    '--outstanding',
    String(outstanding),
  ];
  const sc = await exec(process.execPath, [...prof, ...NODE_ARGS, bin, ...args, '--out', out, '--no-ip-ttl']);
  if (SCAN_LOG) writeFileSync(join(SCAN_LOG, `scan-${basename(list)}-${++scans}.log`), sc.stdout + sc.stderr);
  const line = sc.stderr.trim().split('\n').pop() ?? '';
  const m = /(\d+) queries in ([\d.]+) s .*?(\d+) replies, (\d+) late.*peak RSS (\d+) MB/.exec(line);
  if (!m) throw new Error(`scan dns said: ${sc.stderr}`);
  return { queries: Number(m[1]), secs: Number(m[2]), replies: Number(m[3]), late: Number(m[4]), rssMb: Number(m[5]) };
}

/** Replies kept in a scan's JSONL file (read streaming). */
async function keptReplies(file: string): Promise<number> {
  let kept = 0;
  for await (const l of createInterface({ input: createReadStream(file) }))
    if (l) kept += (JSON.parse(l) as { replies: unknown[] }).replies.length;
  return kept;
}

/** dnsperf: one pass over the names (OUTSTANDING queries at most awaiting their answer, -q). */
async function runDnsperf(lab: InjectionLab, perf: string): Promise<number> {
  const mark = lab.lab.stats().silent;
  const dp = await exec('dnsperf', [
    '-s',
    lab.silent.host,
    '-p',
    String(lab.silent.port),
    '-d',
    perf,
    '-n',
    '1',
    '-q',
    String(OUTSTANDING),
    '-t',
    '2',
  ]);
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(dp.stdout)?.[1] ?? NaN);
  const done = /Queries completed:\s+(\d+)/.exec(dp.stdout)?.[1];
  const lost = /Queries lost:\s+(\d+)/.exec(dp.stdout)?.[1];
  const now = lab.lab.stats().silent;
  process.stdout.write(
    `dnsperf: ${N} names: ${qps.toFixed(0)} q/s (completed ${done}, lost ${lost}; the lab answered ${now.queries - mark.queries} queries with ${now.forged - mark.forged} forged replies)\n`,
  );
  return qps;
}

/** The scan at a rate, against dnsperf's figure. */
async function compareScan(lab: InjectionLab, names: string, rate: number, threads: number, label: string, dpQps: number): Promise<void> {
  const out = join(dir, 'scan.jsonl');
  const mark = lab.lab.stats().silent;
  const r = await runScan(lab, names, out, rate, WAIT_MS, threads, OUTSTANDING);
  const now = lab.lab.stats().silent;
  // The last window (WAIT_MS) is not sending time; dnsperf's figure has no such tail either.
  const qps = r.queries / Math.max(0.001, r.secs - WAIT_MS / 1000);
  const kept = await keptReplies(out);
  rmSync(out, { force: true });
  process.stdout.write(
    `scan dns ${label} --threads ${threads} --outstanding ${OUTSTANDING}: ${r.queries} names in ${r.secs.toFixed(2)} s incl. the last ${WAIT_MS} ms window: ${qps.toFixed(0)} q/s sending (${(r.queries / r.secs).toFixed(0)} q/s overall); ` +
      `the lab answered ${now.queries - mark.queries} queries with ${now.forged - mark.forged} forged replies, ${kept} kept in the file (${r.late} arrived after their window); peak RSS ${r.rssMb} MB; ` +
      `${(qps / dpQps).toFixed(2)}x dnsperf\n`,
  );
}

/** Peak RSS per list size: the list is streamed and the out file appended, so RSS should not grow. */
async function rssRuns(lab: InjectionLab): Promise<void> {
  for (const size of SIZES) {
    const f = join(dir, `rss-${size}.txt`);
    const o = join(dir, `rss-${size}.jsonl`);
    try {
      await writeNames(f, size, false);
      const r = await runScan(lab, f, o, RSS_RATE, 500);
      process.stdout.write(`scan dns ${size} names at --rate ${RSS_RATE}: ${r.secs} s, ${r.replies} replies, peak RSS ${r.rssMb} MB\n`);
    } finally {
      rmSync(o, { force: true });
      rmSync(f, { force: true });
    }
  }
}

async function main(): Promise<void> {
  // Every name is blocked, so every query is answered (twice): dnsperf counts a query as lost
  // after its timeout, and unanswered names would measure its timeout, not its rate.
  const lab = await startInjectionLab({ rules: ['(^|\\.)blocked\\.example$'], injectors: 2 });
  try {
    if (!process.env.BENCH_SKIP_RATE) {
      const names = join(dir, 'names.txt');
      const perf = join(dir, 'perf.txt');
      await writeNames(names, N, false);
      await writeNames(perf, N, true);
      const dpQps = await runDnsperf(lab, perf);
      await compareScan(lab, names, 0, 1, '--rate 0 (as dnsperf runs: bound by --outstanding alone)', dpQps);
      await compareScan(lab, names, Math.round(dpQps), 1, `--rate ${Math.round(dpQps)} (dnsperf's)`, dpQps);
      await compareScan(lab, names, 0, 2, '--rate 0', dpQps);
    }
    await rssRuns(lab);
  } finally {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
});
