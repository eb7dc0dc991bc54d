// Lab matching at Henan's size (censors.md section 5: 4,196,532 names): load a generated list of
// N rules (default 4,000,000, Henan's shape proportions) from a file, then match names against it.
// Prints load rate, names matched per second, table bytes and the RSS/heap growth.
// Usage: node dist/bench/list-match.js [rules] [profile gfw|henan] [names]
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateRules, type ListProfile } from '../src/lab/lists.js';
import { RuleSet } from '../src/lab/rules.js';

const N = Number(process.argv[2] ?? 4_000_000);
const profile = (process.argv[3] ?? 'henan') as ListProfile;
const NAMES = Number(process.argv[4] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'wallscope-list-bench-'));
const file = join(dir, 'list.txt');
const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;

async function main(): Promise<void> {
  // Probe names: a quarter the list's own literals, a quarter subdomains, a quarter padded on the
  // left (overblocked by `kw$`), a quarter unrelated; sampled every k-th rule while writing.
  const names: string[] = [];
  const every = Math.max(1, Math.floor(N / (NAMES / 4)));
  const out = createWriteStream(file);
  let i = 0;
  for (const r of generateRules(7, N, profile)) {
    if (!out.write(`${r.rule}\n`)) await new Promise<void>((res) => out.once('drain', () => res()));
    if (i++ % every === 0 && names.length < NAMES) {
      const kw = r.kw.replace(/^\./, 'x.');
      names.push(kw, `www.${kw}`, `not${kw}`, `unrelated${i}.example`);
    }
  }
  await new Promise<void>((res) => out.end(res));
  global.gc?.();
  const before = process.memoryUsage();
  const t0 = performance.now();
  const set = new RuleSet([], [file]);
  const loadMs = performance.now() - t0;
  global.gc?.();
  const after = process.memoryUsage();
  let hits = 0;
  const t1 = performance.now();
  for (const n of names) if (set.matches(n)) hits++;
  const matchMs = performance.now() - t1;
  process.stdout.write(
    `${set.size.toLocaleString()} ${profile} rules loaded in ${(loadMs / 1000).toFixed(2)} s (${Math.round(set.size / (loadMs / 1000)).toLocaleString()} rules/s)\n` +
      `tables ${mb(set.tableBytes)} (${(set.tableBytes / set.size).toFixed(1)} B/rule); RSS +${mb(after.rss - before.rss)}, heap+external +${mb(after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers)}\n` +
      `${names.length.toLocaleString()} names matched in ${(matchMs / 1000).toFixed(2)} s: ${Math.round(names.length / (matchMs / 1000)).toLocaleString()} names/s against all rules (${hits.toLocaleString()} blocked)\n`,
  );
}

main()
  .catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
