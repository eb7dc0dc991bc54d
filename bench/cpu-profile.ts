// Reads a V8 .cpuprofile (`node --cpu-prof`, e.g. of bench/probe-web.ts) and prints where the CPU
// went: the functions with the most self time, then a text flame graph (the call tree top-down,
// each frame with its inclusive share, frames under --min percent of the busy time folded away).
// Idle time is left out of every share. Not a test:
//   node --cpu-prof --cpu-prof-dir /tmp/prof dist/bench/probe-web.js
//   node dist/bench/cpu-profile.js /tmp/prof/CPU....cpuprofile [--min 2] [--per N]
// `--per N` also prints each figure divided by N (e.g. the URLs measured: CPU ms per URL).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { min: { type: 'string', default: '2' }, per: { type: 'string' } },
});
const file = positionals[0];
if (!file) {
  process.stderr.write('usage: node dist/bench/cpu-profile.js FILE.cpuprofile [--min PERCENT] [--per N]\n');
  process.exit(2);
}
let profile: Profile;
try {
  profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  if (!Array.isArray(profile.nodes) || !Array.isArray(profile.samples)) throw new Error('no nodes or samples');
} catch (e) {
  process.stderr.write(`cpu-profile: ${file}: not a V8 .cpuprofile (${(e as Error).message})\n`);
  process.exit(1);
}
const minShare = Number(values.min) / 100;
const per = values.per ? Number(values.per) : null;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const label = (n: ProfileNode): string => {
  const where = n.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '');
  return `${n.callFrame.functionName || '(anonymous)'}${where ? ` ${where}:${n.callFrame.lineNumber + 1}` : ''}`;
};
const IDLE = new Set(['(idle)', '(program)']);
const inclusive = new Map<number, number>();
const total = (id: number): number => {
  const n = byId.get(id)!;
  if (IDLE.has(n.callFrame.functionName)) return 0;
  let t = selfUs.get(id) ?? 0;
  for (const c of n.children ?? []) t += total(c);
  inclusive.set(id, t);
  return t;
};
const root = profile.nodes[0]!;
const busy = total(root.id);
const ms = (us: number): string => `${(us / 1000).toFixed(0)} ms${per ? ` (${(us / 1000 / per).toFixed(3)} ms/unit)` : ''}`;

console.log(`busy CPU ${ms(busy)} (idle and "(program)" left out)`);
console.log('\nself time, top 20:');
const self = new Map<string, number>();
for (const [id, t] of selfUs) {
  const n = byId.get(id)!;
  if (!IDLE.has(n.callFrame.functionName)) self.set(label(n), (self.get(label(n)) ?? 0) + t);
}
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20))
  console.log(`  ${((t / busy) * 100).toFixed(1).padStart(5)}%  ${ms(t).padEnd(12)} ${k}`);

console.log(`\nflame graph (top-down, inclusive share of busy CPU, frames under ${(minShare * 100).toFixed(1)}% folded):`);
const walk = (id: number, depth: number): void => {
  const n = byId.get(id)!;
  const kids = (n.children ?? [])
    .filter((c) => (inclusive.get(c) ?? 0) >= busy * minShare)
    .sort((a, b) => inclusive.get(b)! - inclusive.get(a)!);
  for (const c of kids) {
    const t = inclusive.get(c)!;
    const bar = '#'.repeat(Math.max(1, Math.round((t / busy) * 40)));
    console.log(`${'  '.repeat(depth)}${((t / busy) * 100).toFixed(1).padStart(5)}% ${bar} ${label(byId.get(c)!)}`);
    walk(c, depth + 1);
  }
};
walk(root.id, 0);
