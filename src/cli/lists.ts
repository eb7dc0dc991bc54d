// `wallscope lists`: `generate` a realistic censor list from a seed (src/lab/lists.ts), one rule a
// line, for `rules_file:` and friends in lab scenarios and for the benchmarks; `snapshot`, `import`,
// `diff` and `history` of what is known to be blocked per layer and date (src/model/lists.ts; the
// SQLite store's list tables, src/store/lists.ts). Wiring only.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import { generateRules, LIST_PROFILES, type ListProfile } from '../lab/index.js';
import {
  checkSnapshot,
  diffCsv,
  diffSnapshots,
  historyCsv,
  isListDate,
  layerOverlap,
  ruleHistory,
  snapshotFromInfer,
  type InferLike,
  type ListSnapshot,
} from '../model/index.js';
import { ListStore } from '../store/index.js';

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
  let v: unknown;
  try {
    v = JSON.parse(readText(file));
  } catch (e) {
    if ((e as { exitCode?: number }).exitCode) throw e;
    throw usageError(`${file}: not JSON`, 1);
  }
  const s = checkSnapshot(v);
  if (typeof s === 'string') throw usageError(`${file}: ${s}`, 1);
  return s;
}

/** Snapshots into the store's file, all or none. */
function storeSnapshots(file: string, snaps: ListSnapshot[]): void {
  let lists: ListStore | undefined;
  try {
    lists = new ListStore(file);
    lists.put(snaps);
  } catch (e) {
    throw usageError(`cannot store into ${file}: ${(e as Error).message}`, 1);
  } finally {
    lists?.close();
  }
}

/** Writes `text` to `file` whole or not at all. */
function writeWhole(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw usageError(`cannot write ${file}: ${(e as Error).message}`, 1);
  }
}

const sizesLine = (s: ListSnapshot) =>
  Object.entries(s.layers)
    .map(([l, r]) => `${l} ${r.length} rules`)
    .join(', ');

function usageError(message: string, exitCode = 2): Error {
  return Object.assign(new Error(message), { exitCode });
}

const whole = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw usageError(`${name} must be a whole number >= ${min}, got ${v}`);
  return n;
};

const DESCRIPTION =
  'censor lists: generate realistic ones for the lab; snapshots of the inferred rules per layer and date (store, diff, history)';

export function register(program: Command): void {
  const lists = program.command('lists').description(DESCRIPTION);
  registerGenerate(lists);
  registerSnapshot(lists);
  registerImport(lists);
  registerDiff(lists);
  registerHistory(lists);
}

function registerGenerate(lists: Command): void {
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
      writeGenerated(o.seed, o.count, o.profile as ListProfile, [o.out, ...(o.shapes ? [o.shapes] : [])]);
      process.stderr.write(`wrote ${o.count} ${o.profile} rules to ${o.out}\n`);
    });
}

/** The list (and the shapes file, when asked) written in big chunks, each whole or not at all. */
function writeGenerated(seed: number, count: number, profile: ListProfile, targets: string[]): void {
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
    for (const g of generateRules(seed, count, profile)) {
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
    throw usageError(`cannot write ${targets[0]}: ${(e as Error).message}`, 1);
  }
}

function registerSnapshot(lists: Command): void {
  lists
    .command('snapshot')
    .description(
      'a snapshot of the blocked rules and names per layer at a date, from `infer --json` lines or `lab eval --infer --json` output',
    )
    .argument('<files...>', 'infer JSONL files')
    .requiredOption('--date <YYYY-MM-DD>', 'the date the measurements were made')
    .option('--out <file.json>', 'the snapshot (written whole or not at all)')
    .option('--store <file.db>', "also into this SQLite store's list tables (what `serve --db` shows on the explorer's Lists page)")
    .action((files: string[], o: { date: string; out?: string; store?: string }) => {
      if (!isListDate(o.date)) throw usageError(`--date must be YYYY-MM-DD, got ${o.date}`);
      if (!o.out && !o.store) throw usageError('give --out FILE.json, --store FILE.db or both');
      const snap = snapshotFromInfer(files.flatMap(readInferLines), o.date);
      if (o.out) writeWhole(o.out, `${JSON.stringify(snap, null, 1)}\n`);
      if (o.store) storeSnapshots(o.store, [snap]);
      process.stderr.write(`snapshot ${o.date}: ${sizesLine(snap)}\n`);
    });
}

function registerImport(lists: Command): void {
  lists
    .command('import')
    .description("store snapshot files (from `lists snapshot --out`) in a SQLite store's list tables; all or none")
    .argument('<snapshots...>', 'snapshot JSON files')
    .requiredOption('--store <file.db>', 'the SQLite store (what `serve --db` serves)')
    .action((files: string[], o: { store: string }) => {
      // Every file is read and checked before anything is stored.
      const snaps = files.map(readSnapshot);
      storeSnapshots(o.store, snaps);
      for (const s of snaps) process.stderr.write(`stored ${s.date}: ${sizesLine(s)}\n`);
    });
}

function registerDiff(lists: Command): void {
  lists
    .command('diff')
    .description('rules added and removed per layer between two snapshots')
    .argument('<old>', 'snapshot JSON')
    .argument('<new>', 'snapshot JSON')
    .option('--csv', 'CSV rows: layer,change,protocol,rule,names')
    .action((a: string, b: string, o: { csv?: boolean }) => {
      const d = diffSnapshots(readSnapshot(a), readSnapshot(b));
      process.stdout.write(o.csv ? diffCsv(d) : `${JSON.stringify(d)}\n`);
    });
}

function registerHistory(lists: Command): void {
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
      if (o.csv) return void process.stdout.write(historyCsv(rules));
      process.stdout.write(`${JSON.stringify({ rules, overlap: snaps.map((s) => ({ date: s.date, pairs: layerOverlap(s) })) })}\n`);
    });
}
