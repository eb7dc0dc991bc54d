// `scan dns` side by side with dnsperf (Debian) in the same run: the same names, the same lab
// silent address (only the lab's two injectors answer there). Prints queries/s of each, replies
// kept by scan dns, and scan dns's peak RSS per list size (it streams the list: RSS should stay flat).
// Usage: node dist/bench/scan-dns.js [names for the rate comparison, default 100000] [list sizes for RSS, default 100000,1000000] [their rate, default 10000]
import { execFile } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab } from '../src/lab/index.js';
import type { Scenario } from '../src/model/index.js';
import { repoRoot } from '../src/probe/index.js';

const N = Number(process.argv[2] ?? 100_000);
const SIZES = (process.argv[3] ?? '100000,1000000').split(',').map(Number);
const RSS_RATE = Number(process.argv[4] ?? 10000);
const dir = mkdtempSync(join(tmpdir(), 'wallscope-scan-bench-'));
const bin = join(repoRoot, 'bin', 'wallscope.js');

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

async function main(): Promise<void> {
  // Every name is blocked, so every query is answered (twice): dnsperf counts a query as lost
  // after its timeout, and unanswered names would measure its timeout, not its rate.
  const scenario: Scenario = {
    name: 'scan-bench',
    seed: 1,
    world: { sites: [{ domain: 'ok.example' }], resolvers: { isp: {}, public: {} }, helper: false },
    censors: [{ name: 'gfw', layer: 'national', dns_injection: { rules: ['(^|\\.)blocked\\.example$'], injectors: 2, lead_ms: 0 } }],
  };
  const lab = await startLab(scenario, { standardPorts: false });
  try {
    const [host, port] = lab.silentDns.split(':') as [string, string];
    const names = join(dir, 'names.txt');
    const perf = join(dir, 'perf.txt');
    await writeNames(names, N, false);
    await writeNames(perf, N, true);

    // dnsperf: one pass over the names, as fast as it goes (its default 100 queries outstanding,
    // raised to 1000 so that it is not bound by the loopback round trip).
    let mark = lab.stats().silent;
    const dp = await exec('dnsperf', ['-s', host, '-p', port, '-d', perf, '-n', '1', '-q', '1000', '-t', '2']);
    const dpQps = Number(/Queries per second:\s+([\d.]+)/.exec(dp.stdout)?.[1] ?? NaN);
    const dpDone = /Queries completed:\s+(\d+)/.exec(dp.stdout)?.[1];
    const dpLost = /Queries lost:\s+(\d+)/.exec(dp.stdout)?.[1];
    let now = lab.stats().silent;
    process.stdout.write(
      `dnsperf: ${N} names: ${dpQps.toFixed(0)} q/s (completed ${dpDone}, lost ${dpLost}; the lab answered ${now.queries - mark.queries} queries with ${now.forged - mark.forged} forged replies)\n`,
    );

    // Each query's window as long as dnsperf's timeout (-t 2): both wait as long for an answer.
    const wait = 2000;
    const scan = async (rate: number, label: string) => {
      const out = join(dir, 'scan.jsonl');
      rmSync(out, { force: true });
      mark = lab.stats().silent;
      const sc = await exec(process.execPath, [
        bin,
        'scan',
        'dns',
        '--target',
        lab.silentDns,
        '--list',
        names,
        '--rate',
        String(rate),
        '--wait',
        String(wait),
        '--out',
        out,
        '--no-ip-ttl',
      ]);
      now = lab.stats().silent;
      const line = sc.stderr.trim().split('\n').pop() ?? '';
      const m = /(\d+) queries in ([\d.]+) s .*?(\d+) replies, (\d+) late.*peak RSS (\d+) MB/.exec(line);
      if (!m) throw new Error(`scan dns said: ${sc.stderr}`);
      const secs = Number(m[2]);
      // The last window (wait ms) is not sending time; dnsperf's figure has no such tail either.
      const qps = Number(m[1]) / Math.max(0.001, secs - wait / 1000);
      const kept = readFileSync(out, 'utf8')
        .split('\n')
        .filter(Boolean)
        .reduce((a, l) => a + (JSON.parse(l) as { replies: unknown[] }).replies.length, 0);
      process.stdout.write(
        `scan dns ${label}: ${m[1]} names in ${secs.toFixed(2)} s incl. the last ${wait} ms window: ${qps.toFixed(0)} q/s sending (${(Number(m[1]) / secs).toFixed(0)} q/s overall); ` +
          `the lab answered ${now.queries - mark.queries} queries with ${now.forged - mark.forged} forged replies, ${kept} kept in the file (${m[4]} arrived after their window); peak RSS ${m[5]} MB; ` +
          `${(qps / dpQps).toFixed(2)}x dnsperf\n`,
      );
    };
    await scan(Math.round(dpQps), `--rate ${Math.round(dpQps)} (dnsperf's)`);
    await scan(0, '--rate 0 (unbounded)');

    // Peak RSS per list size: the list is streamed, the out file appended.
    for (const size of SIZES) {
      const f = join(dir, `rss-${size}.txt`);
      await writeNames(f, size, false);
      const o = join(dir, `rss-${size}.jsonl`);
      const r = await exec(process.execPath, [
        bin,
        'scan',
        'dns',
        '--target',
        lab.silentDns,
        '--list',
        f,
        '--rate',
        String(RSS_RATE),
        '--wait',
        '500',
        '--out',
        o,
        '--no-ip-ttl',
      ]);
      const l = r.stderr.trim().split('\n').pop() ?? '';
      const mm = /(\d+) queries in ([\d.]+) s .*peak RSS (\d+) MB/.exec(l);
      process.stdout.write(`scan dns ${size} names: ${mm ? `${mm[2]} s, peak RSS ${mm[3]} MB` : l}\n`);
      rmSync(o, { force: true });
      rmSync(f, { force: true });
    }
  } finally {
    await lab.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
});
