// `wallscope lists generate`: a realistic censor list from a seed (src/lab/lists.ts), one rule a
// line, for `rules_file:` and friends in lab scenarios and for the benchmarks. Wiring only.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import { generateRules, LIST_PROFILES, type ListProfile } from '../lab/index.js';

function usageError(message: string, exitCode = 2): Error {
  return Object.assign(new Error(message), { exitCode });
}

const whole = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw usageError(`${name} must be a whole number >= ${min}, got ${v}`);
  return n;
};

export function register(program: Command): void {
  const lists = program.command('lists').description('censor lists: generate realistic ones for the lab');
  lists
    .command('generate')
    .description('write COUNT rules in the published shape proportions of a profile (gfw: ^(.*\\.)?kw$ 85%, ^kw$ 9.3%, ^(.*\\.)?kw 3.8%, kw$ 1.3%, kw 0.3%; henan: end-anchored, 36% kw$, second-level wildcards)')
    .requiredOption('--seed <n>', 'the seed (same seed, same list)', whole('--seed', 0))
    .requiredOption('--count <n>', 'number of rules', whole('--count', 1))
    .requiredOption('--out <file>', 'the list file (written whole or not at all)')
    .option('--profile <gfw|henan>', 'the censor whose list it imitates', 'gfw')
    .option('--shapes <file>', 'also write "rule<TAB>shape<TAB>literal" per line here (the truth, for scoring inference)')
    .action((o: { seed: number; count: number; out: string; profile: string; shapes?: string }) => {
      if (!(LIST_PROFILES as readonly string[]).includes(o.profile)) throw usageError(`--profile must be one of ${LIST_PROFILES.join(', ')}, got ${o.profile}`);
      const targets = [o.out, ...(o.shapes ? [o.shapes] : [])];
      const tmp = targets.map((f) => `${f}.tmp-${process.pid}`);
      const fds: number[] = [];
      try {
        for (const t of tmp) fds.push(openSync(t, 'w'));
        const bufs = fds.map(() => [] as string[]);
        const flush = () => bufs.forEach((b, i) => {
          if (b.length) writeSync(fds[i]!, b.join(''));
          b.length = 0;
        });
        for (const g of generateRules(o.seed, o.count, o.profile as ListProfile)) {
          bufs[0]!.push(`${g.rule}\n`);
          if (bufs[1]) bufs[1].push(`${g.rule}\t${g.shape}\t${g.kw}\n`);
          if (bufs[0]!.length >= 8192) flush();
        }
        flush();
        for (const fd of fds.splice(0)) {
          fsyncSync(fd);
          closeSync(fd);
        }
        tmp.forEach((t, i) => renameSync(t, targets[i]!));
      } catch (e) {
        for (const fd of fds) closeSync(fd);
        for (const t of tmp) rmSync(t, { force: true });
        throw usageError(`cannot write ${o.out}: ${(e as Error).message}`, 1);
      }
      process.stderr.write(`wrote ${o.count} ${o.profile} rules to ${o.out}\n`);
    });
}
