// Benchmark: `platform watch` over many accounts of the lab platform (issue 15): requests per
// detected removal, the watcher's CPU and peak memory, and whether every removal was detected and
// classified with its time within one polling period. The platform runs in this process, the
// watcher in a child (its own CPU and memory).
//   node dist/bench/platform-watch.js [accounts=10000] [interval_s=30] [duration_s=160] [rate=3000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScenario, startPlatform } from '../src/lab/index.js';
import { watchPlatform, type VanishedPost } from '../src/probe/index.js';
import { forkRole } from './fork.js';

const ACCOUNTS = Number(process.argv[3] === 'watcher' ? 0 : (process.argv[2] ?? 10_000));
const INTERVAL_S = Number(process.argv[3] ?? 30);
const DURATION_S = Number(process.argv[4] ?? 160);
const RATE = Number(process.argv[5] ?? 3000);

interface WatcherJob {
  base: string;
  accounts: string[];
  intervalMs: number;
  durationMs: number;
  rate: number;
}
interface WatcherReport {
  vanished: VanishedPost[];
  requests: Record<string, number>;
  cpu: NodeJS.CpuUsage;
  maxRssKb: number;
  wallMs: number;
  rounds: number;
  lastRoundMs: number;
  periodsMs: number[];
  seen: string[];
}

if (process.argv[2] === 'watcher') {
  process.once('message', async (job: WatcherJob) => {
    const t0 = Date.now();
    const ends: number[] = [t0];
    // With a state file, as a resumable watch runs (saved every 500 accounts and every round).
    const dir = mkdtempSync(join(tmpdir(), 'ws-bench-watch-'));
    const res = await watchPlatform({
      ...job,
      concurrency: 16,
      statePath: join(dir, 'state.json'),
      onRound: () => void ends.push(Date.now()),
    });
    rmSync(dir, { recursive: true, force: true });
    const periodsMs = ends.slice(1).map((e, i) => e - ends[i]!);
    const report: WatcherReport = {
      vanished: res.vanished,
      requests: res.requests,
      cpu: process.cpuUsage(),
      maxRssKb: process.resourceUsage().maxRSS,
      wallMs: Date.now() - t0,
      rounds: res.state.rounds,
      lastRoundMs: Date.now() - (ends[ends.length - 2] ?? t0),
      periodsMs,
      seen: [...Object.keys(res.state.posts), ...Object.keys(res.state.reported)],
    };
    process.send!(report, () => process.exit(0));
  });
} else {
  // Two posts per account; one post in ten hits a rule (removed after 5-25 s, a tenth of them
  // shadow-hidden), one in fifty is deleted by its author within the run. The delays are longer
  // than a first round over 10,000 accounts takes on a loaded machine, so that posts are seen first.
  const lines = ['name: bench-platform', 'seed: 1', 'world: { sites: [] }', 'platform:', '  accounts:'];
  for (let i = 0; i < ACCOUNTS; i++) {
    lines.push(`    - name: a${i}`, `      address: ${i % 2 ? '202.96.128.86' : '8.8.8.8'}`, '      posts:');
    for (let j = 0; j < 2; j++) {
      const k = i * 2 + j;
      const text = k % 10 === 3 ? (k % 100 === 3 ? `post ${k} about pooh` : `post ${k} about falun`) : `post ${k} about the weather`;
      lines.push(k % 50 === 7 ? `        - { text: '${text}', delete_at: ${30 + (k % 60)} }` : `        - '${text}'`);
    }
  }
  lines.push('  moderation:', '    delay_s: { min: 30, max: 90 }', '    keywords: [falun]', '    shadow_keywords: [pooh]');
  const scenario = parseScenario(lines.join('\n') + '\n', 'bench.yaml');
  const platform = await startPlatform({ host: '127.0.0.1', port: 0, spec: scenario.platform!, seed: 1 });
  const accounts = scenario.platform!.accounts.map((a) => a.name);
  const cpu0 = process.cpuUsage();
  const { msg } = await forkRole<WatcherReport>(fileURLToPath(import.meta.url), 'watcher', {
    base: platform.url,
    accounts,
    intervalMs: INTERVAL_S * 1000,
    durationMs: DURATION_S * 1000,
    rate: RATE,
  } satisfies WatcherJob);
  const platformCpu = process.cpuUsage(cpu0);
  // Only what vanished before the watcher's last poll of every account can be detected.
  const truth = platform.truth();
  const detectableUntil = Date.now() - msg.lastRoundMs;
  await platform.close();
  const gone = truth.posts.filter((p) => p.status !== 'visible' && p.status !== 'pending' && Date.parse(p.gone_at!) < detectableUntil);
  const period = Math.max(INTERVAL_S * 1000, ...msg.periodsMs.slice(0, -1));
  const byId = new Map(msg.vanished.map((v) => [v.post, v]));
  let right = 0;
  let inPeriod = 0;
  let bracketed = 0;
  let widest = 0;
  let maxLag = 0;
  for (const t of gone) {
    const v = byId.get(t.id);
    if (!v) continue;
    if (v.status === t.status) right++;
    const lag = Date.parse(v.gone_at) - Date.parse(t.gone_at!);
    maxLag = Math.max(maxLag, lag);
    if (lag >= 0 && lag <= period) inPeriod++;
    // The truth lies between the last poll that saw the post and the first that missed it.
    if (Date.parse(v.last_seen_at) <= Date.parse(t.gone_at!) && lag >= 0) bracketed++;
    widest = Math.max(widest, Date.parse(v.gone_at) - Date.parse(v.last_seen_at));
  }
  const removals = msg.vanished.filter((v) => v.status !== 'author_deleted').length;
  const r = msg.requests;
  console.log(
    `platform watch: ${ACCOUNTS} accounts, ${truth.posts.length} posts, interval ${INTERVAL_S} s, ${DURATION_S} s, rate cap ${RATE}/s, ${msg.rounds} rounds in ${(msg.wallMs / 1000).toFixed(1)} s`,
  );
  // A post that vanished before the watcher's first poll of its account was never seen: no tracker can report it.
  const seen = new Set(msg.seen);
  const unseen = gone.filter((t) => !seen.has(t.id)).length;
  const missed = gone.filter((t) => seen.has(t.id) && !byId.has(t.id)).length;
  console.log(
    `  rounds took ${msg.periodsMs.map((p) => (p / 1000).toFixed(1)).join(', ')} s (polling period = the longer of the interval and a round)`,
  );
  console.log(
    `  vanished before the last round (truth): ${gone.length}, of which ${unseen} before the watcher first saw them; seen and missed: ${missed}; status right: ${right}; gone_at within the longest round period (${(period / 1000).toFixed(1)} s): ${inPeriod}; truth inside [last_seen_at, gone_at]: ${bracketed}, widest bracket ${(widest / 1000).toFixed(1)} s; largest lag ${(maxLag / 1000).toFixed(2)} s`,
  );
  console.log(
    `  requests: ${r.requests} (${r.limited} limited, ${r.server_errors} 5xx, ${r.network_errors} network); per detected removal (not author deletions): ${removals ? (r.requests! / removals).toFixed(1) : '-'}; per vanished post: ${msg.vanished.length ? (r.requests! / msg.vanished.length).toFixed(1) : '-'}`,
  );
  console.log(
    `  watcher CPU: ${((msg.cpu.user + msg.cpu.system) / 1e6).toFixed(2)} s (${(((msg.cpu.user + msg.cpu.system) / 1e3 / msg.wallMs) * 100).toFixed(0)}% of a core); peak RSS ${(msg.maxRssKb / 1024).toFixed(0)} MiB`,
  );
  console.log(`  platform CPU (this process): ${((platformCpu.user + platformCpu.system) / 1e6).toFixed(2)} s`);
}
