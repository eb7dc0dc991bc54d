// `wallscope lists generate`: a realistic censor list from a seed (src/lab/lists.ts), one rule a
// line, for `rules_file:` and friends in lab scenarios and for the benchmarks. Wiring only.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import {
  csvField,
  diffSnapshots,
  layerOverlap,
  ruleHistory,
  snapshotFromInfer,
  type InferLike,
  type ListSnapshot,
} from '../analysis/index.js';
import { generateRules, LIST_PROFILES, type ListProfile } from '../lab/index.js';

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw usageError(`${file}: ${(e as Error).message}`, 1);
  }
}

/** `infer --json` lines, or `lab eval --infer --json` objects (their "infer" array). */
function readInferLines(file: string): InferLike[] {
  const out: InferLike[] = [];
  readText(file)
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        throw usageError(`${file}:${i + 1}: not JSON`, 1);
      }
      const items = v && typeof v === 'object' && Array.isArray((v as { infer?: unknown }).infer) ? (v as { infer: unknown[] }).infer : [v];
      for (const it of items) {
        const l = it as InferLike;
        if (!l || typeof l.name !== 'string' || typeof l.rule !== 'string' || typeof l.protocol !== 'string')
          throw usageError(`${file}:${i + 1}: not an infer line (name, protocol, layer, rule)`, 1);
        out.push(l);
      }
    });
  return out;
}

function readSnapshot(file: string): ListSnapshot {
  let v: ListSnapshot;
  try {
    v = JSON.parse(readText(file)) as ListSnapshot;
  } catch {
    throw usageError(`${file}: not JSON`, 1);
  }
  if (!v || typeof v.date !== 'string' || typeof v.layers !== 'object') throw usageError(`${file}: not a list snapshot (date, layers)`, 1);
  return v;
}

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
    .description(
      'write COUNT rules in the published shape proportions of a profile (gfw: ^(.*\\.)?kw$ 85%, ^kw$ 9.3%, ^(.*\\.)?kw 3.8%, kw$ 1.3%, kw 0.3%; henan: end-anchored, 36% kw$, second-level wildcards)',
    )
    .requiredOption('--seed <n>', 'the seed (same seed, same list)', whole('--seed', 0))
    .requiredOption('--count <n>', 'number of rules', whole('--count', 1))
    .requiredOption('--out <file>', 'the list file (written whole or not at all)')
    .option('--profile <gfw|henan>', 'the censor whose list it imitates', 'gfw')
    .option('--shapes <file>', 'also write "rule<TAB>shape<TAB>literal" per line here (the truth, for scoring inference)')
    .action((o: { seed: number; count: number; out: string; profile: string; shapes?: string }) => {
      if (!(LIST_PROFILES as readonly string[]).includes(o.profile))
        throw usageError(`--profile must be one of ${LIST_PROFILES.join(', ')}, got ${o.profile}`);
      const targets = [o.out, ...(o.shapes ? [o.shapes] : [])];
      const tmp = targets.map((f) => `${f}.tmp-${process.pid}`);
      const fds: number[] = [];
      try {
        for (const t of tmp) fds.push(openSync(t, 'w'));
        const bufs = fds.map(() => [] as string[]);
        const flush = () =>
          bufs.forEach((b, i) => {
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

  lists
    .command('snapshot')
    .description(
      'a snapshot of the blocked rules and names per layer at a date, from `infer --json` lines or `lab eval --infer --json` output',
    )
    .argument('<files...>', 'infer JSONL files')
    .requiredOption('--date <YYYY-MM-DD>', 'the date the measurements were made')
    .requiredOption('--out <file.json>', 'the snapshot (written whole or not at all)')
    .action((files: string[], o: { date: string; out: string }) => {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(o.date) || Number.isNaN(Date.parse(o.date)))
        throw usageError(`--date must be YYYY-MM-DD, got ${o.date}`);
      const snap = snapshotFromInfer(files.flatMap(readInferLines), o.date);
      const tmp = `${o.out}.tmp-${process.pid}`;
      try {
        writeFileSync(tmp, `${JSON.stringify(snap, null, 1)}\n`);
        renameSync(tmp, o.out);
      } catch (e) {
        rmSync(tmp, { force: true });
        throw usageError(`cannot write ${o.out}: ${(e as Error).message}`, 1);
      }
      process.stderr.write(
        `snapshot ${o.date}: ${Object.entries(snap.layers)
          .map(([l, r]) => `${l} ${r.length} rules`)
          .join(', ')}\n`,
      );
    });
  lists
    .command('diff')
    .description('rules added and removed per layer between two snapshots')
    .argument('<old>', 'snapshot JSON')
    .argument('<new>', 'snapshot JSON')
    .option('--csv', 'CSV rows: layer,change,protocol,rule,names')
    .action((a: string, b: string, o: { csv?: boolean }) => {
      const d = diffSnapshots(readSnapshot(a), readSnapshot(b));
      if (!o.csv) return void process.stdout.write(`${JSON.stringify(d)}\n`);
      process.stdout.write('layer,change,protocol,rule,names\n');
      for (const [layer, x] of Object.entries(d.layers))
        for (const [change, rules] of [
          ['added', x.added],
          ['removed', x.removed],
        ] as const)
          for (const r of rules)
            process.stdout.write(`${[layer, change, r.protocol, r.rule, r.names.join(' ')].map(csvField).join(',')}\n`);
    });
  lists
    .command('history')
    .description(
      "over a series of snapshots: each rule's first and last date and block duration, and the Jaccard overlap of the layers' blocked names per snapshot",
    )
    .argument('<snapshots...>', 'snapshot JSON files')
    .option('--csv', 'the rules as CSV: layer,protocol,rule,first_seen,last_seen,days,present,seen')
    .action((files: string[], o: { csv?: boolean }) => {
      const snaps = files.map(readSnapshot);
      const rules = ruleHistory(snaps);
      if (o.csv) {
        process.stdout.write('layer,protocol,rule,first_seen,last_seen,days,present,seen\n');
        for (const r of rules)
          process.stdout.write(
            `${[r.layer, r.protocol, r.rule, r.first_seen, r.last_seen, r.days, r.present, r.seen].map(csvField).join(',')}\n`,
          );
        return;
      }
      process.stdout.write(`${JSON.stringify({ rules, overlap: snaps.map((s) => ({ date: s.date, pairs: layerOverlap(s) })) })}\n`);
    });
}
