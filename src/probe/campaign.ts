// Campaigns (DESIGN.md "Contracts of the next capabilities": Campaigns; "Time"): a list of URLs
// measured again every period, unattended, on a volunteer's machine. One source of truth for what
// was measured: the upload spool (spool.ts) holds every measurement from the moment it exists until
// the collector acknowledges it, and a small journal beside it (one fsynced line per measurement,
// written after the spool file) remembers the acknowledged ones. A restart after a kill -9 rebuilds
// "what is done in this round" from both, so nothing is measured twice and nothing is lost:
//   - killed while measuring URL X: X has no spool file and no journal line; measured on restart
//     (the unfinished measurement never existed);
//   - killed after X's spool file, before its journal line: the spool file says X is done;
//   - killed during an upload: the file stays spooled and is sent again; the collector is idempotent
//     on the measurement uid, so the store holds it once.
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeSync,
  fsyncSync,
  closeSync,
  existsSync,
  unlinkSync,
} from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import { prng, type Measurement } from '../model/index.js';
import { measureMany } from './runner.js';
import { flushSpool, pendingFiles, spoolMeasurement } from './spool.js';
import { readTargetList, type Target } from './targets.js';
import type { ProbeOptions } from './webconnectivity.js';
import { sleep } from './sleep.js';

export interface CampaignSpec {
  name: string;
  /** Absolute path of the file it was read from. */
  source: string;
  targets: Target[];
  /** The period, in seconds. */
  everyS: number;
  collector?: string;
  /** Most measurements started in any hour (the budget); none: unlimited. */
  perHour?: number;
  /** URLs measured at once (default 4: a small footprint). */
  concurrency: number;
  /** The file was an OONI Run v2 descriptor. */
  ooniRun: boolean;
  /** What was read but will not be run (an OONI Run descriptor's other nettests), one line each. */
  warnings: string[];
}

export class CampaignError extends Error {
  readonly code = 'WALLSCOPE_CAMPAIGN_INVALID';
}

/** `10`, `10s`, `5m`, `6h`, `1d` -> seconds; null when it is none of these. */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v > 0 ? v : null;
  if (typeof v !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(v);
  if (!m) return null;
  const n = Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return n > 0 ? n : null;
}

const CAMPAIGN_KEYS = ['name', 'urls', 'lists', 'every', 'collector', 'limits'] as const;
const LIMIT_KEYS = ['per_hour', 'concurrency'] as const;
/** OONI Run v2 descriptor keys (a link's descriptor, as the OONI Run API serves and stores it). */
const OONI_RUN_KEYS = [
  'name',
  'name_intl',
  'short_description',
  'short_description_intl',
  'description',
  'description_intl',
  'author',
  'icon',
  'color',
  'nettests',
  'oonirun_link_id',
  'descriptor_creation_time',
  'translation_creation_time',
  'revision',
  'is_expired',
  'date_created',
  'date_updated',
  'expiration_date',
  'is_mine',
  'revisions',
  'archived',
];

export interface CampaignOverrides {
  every?: string;
  collector?: string;
  perHour?: number;
  concurrency?: number;
}

/** What the steps of parseCampaign share: the file's positions, the problems and warnings found. */
interface CampaignReader {
  file: string;
  source: string;
  lines: LineCounter;
  problems: string[];
  warnings: string[];
  targets: Target[];
  fail: (node: Node | null | undefined, path: string, message: string) => void;
}

/** The settings a campaign file gives (the OONI Run descriptor gives none of them). */
interface CampaignSettings {
  name: string;
  everyS: number | null;
  collector?: string;
  perHour?: number;
  concurrency: number;
}

/**
 * Reads a campaign: a YAML (or JSON) with `urls:` and/or `lists:`, `every:`, `collector:`,
 * `limits: {per_hour, concurrency}`; or an OONI Run v2 descriptor (`nettests: [{test_name,
 * inputs}]`; web_connectivity's inputs are measured, other tests are refused by name). Every
 * problem names file:line:col; a bad list line names the list's file:line.
 */
export function parseCampaign(text: string, file: string, over: CampaignOverrides = {}): CampaignSpec {
  const { r, root, entries } = readRoot(text, file);
  const ooniRun = entries.has('nettests');
  checkKeys(r, root, ooniRun);
  const nameNode = entries.get('name');
  const name = isScalar(nameNode) && typeof nameNode.value === 'string' && nameNode.value.trim() ? nameNode.value.trim() : '';
  if (nameNode && !name) r.fail(nameNode, 'name', 'expected a non-empty string');
  const settings: CampaignSettings = { name, everyS: null, concurrency: 4 };
  if (ooniRun) {
    readOoniRun(r, entries.get('nettests'));
    if (!settings.name) settings.name = 'oonirun';
  } else readCampaignFile(r, root, entries, settings);
  applyOverrides(r, settings, over);
  if (settings.everyS === null && !r.problems.length)
    r.problems.push(
      `${file}: no period: give every: in the file${ooniRun ? ' (an OONI Run descriptor has none: give --every)' : ''} or --every`,
    );
  // The same URL twice would be measured twice per round: keep the first.
  const seen = new Set<string>();
  const unique = r.targets.filter((t) => (seen.has(t.url) ? false : (seen.add(t.url), true)));
  if (!r.problems.length && unique.length === 0)
    r.problems.push(
      `${file}: nothing to measure (no URL in urls:, lists: or the web_connectivity nettests' inputs)${r.warnings.length ? `; ${r.warnings.join('; ')}` : ''}`,
    );
  if (r.problems.length) throw new CampaignError(r.problems.join('\n'));
  return {
    name: settings.name,
    source: r.source,
    targets: unique,
    everyS: settings.everyS!,
    ...(settings.collector ? { collector: settings.collector } : {}),
    ...(settings.perHour ? { perHour: settings.perHour } : {}),
    concurrency: settings.concurrency,
    ooniRun,
    warnings: r.warnings,
  };
}

/** The YAML document's top-level mapping (YAML errors and a non-mapping are fatal at once). */
function readRoot(text: string, file: string): { r: CampaignReader; root: YAMLMap; entries: Map<string, Node> } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const problems: string[] = [];
  const r: CampaignReader = {
    file,
    source: isAbsolute(file) ? file : resolve(file),
    lines,
    problems,
    warnings: [],
    targets: [],
    fail: (node, path, message) => {
      const pos = lines.linePos(node?.range?.[0] ?? 0);
      problems.push(`${file}:${pos.line}:${pos.col}: ${path ? path + ': ' : ''}${message}`);
    },
  };
  for (const e of doc.errors) {
    const pos = lines.linePos(e.pos[0]);
    problems.push(`${file}:${pos.line}:${pos.col}: YAML: ${e.message.split('\n')[0]}`);
  }
  if (problems.length) throw new CampaignError(problems.join('\n'));
  const root = doc.contents as Node | null;
  if (!isMap(root))
    throw new CampaignError(`${file}:1:1: expected a mapping (a campaign with urls:/lists:, or an OONI Run v2 descriptor with nettests:)`);
  const entries = new Map<string, Node>();
  for (const pair of root.items as Pair<Node, Node>[]) if (isScalar(pair.key)) entries.set(String(pair.key.value), pair.value as Node);
  return { r, root, entries };
}

function checkKeys(r: CampaignReader, root: YAMLMap, ooniRun: boolean): void {
  const allowed: readonly string[] = ooniRun ? OONI_RUN_KEYS : CAMPAIGN_KEYS;
  for (const pair of root.items as Pair<Node, Node>[]) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    if (!allowed.includes(key))
      r.fail(
        pair.key,
        key,
        `unknown key '${key}' (allowed: ${ooniRun ? 'an OONI Run v2 descriptor: name, description, author, nettests, ...' : CAMPAIGN_KEYS.join(', ')})`,
      );
  }
}

function strList(r: CampaignReader, node: Node | undefined, path: string): Array<[string, Node]> {
  if (!isSeq(node)) {
    r.fail(node, path, 'expected a list of strings');
    return [];
  }
  const out: Array<[string, Node]> = [];
  (node.items as Node[]).forEach((n, i) => {
    if (isScalar(n) && typeof n.value === 'string' && n.value.trim()) out.push([n.value.trim(), n]);
    else r.fail(n, `${path}[${i}]`, 'expected a non-empty string');
  });
  return out;
}

function checkUrl(r: CampaignReader, url: string, node: Node, path: string): boolean {
  try {
    const u = new URL(url);
    if (u.protocol === 'http:' || u.protocol === 'https:') return true;
  } catch {
    // fall through
  }
  r.fail(node, path, `'${url}' is not an http or https URL`);
  return false;
}

/** An OONI Run v2 descriptor's nettests: web_connectivity's inputs; other tests skipped with a warning. */
function readOoniRun(r: CampaignReader, nt: Node | undefined): void {
  if (!isSeq(nt)) return r.fail(nt, 'nettests', 'expected a list of {test_name, inputs}');
  (nt.items as Node[]).forEach((n, i) => {
    const p = `nettests[${i}]`;
    if (!isMap(n)) return r.fail(n, p, 'expected a mapping {test_name, inputs, options, ...}');
    const m = new Map((n.items as Pair<Node, Node>[]).map((x) => [isScalar(x.key) ? String(x.key.value) : '', x.value as Node]));
    const tn = m.get('test_name');
    const testName = isScalar(tn) ? String(tn.value) : '';
    if (testName !== 'web_connectivity') {
      const pos = r.lines.linePos((tn ?? n).range?.[0] ?? 0);
      return void r.warnings.push(
        `${r.file}:${pos.line}:${pos.col}: ${p}.test_name: '${testName}' skipped (wallscope campaigns run web_connectivity)`,
      );
    }
    for (const [url, node] of m.has('inputs') ? strList(r, m.get('inputs'), `${p}.inputs`) : [])
      if (checkUrl(r, url, node, `${p}.inputs`)) r.targets.push({ url });
  });
}

/** A campaign file's urls, lists (relative to the file), every, collector and limits. */
function readCampaignFile(r: CampaignReader, root: YAMLMap, entries: Map<string, Node>, settings: CampaignSettings): void {
  if (entries.has('urls'))
    for (const [url, node] of strList(r, entries.get('urls'), 'urls')) if (checkUrl(r, url, node, 'urls')) r.targets.push({ url });
  if (entries.has('lists'))
    for (const [list, node] of strList(r, entries.get('lists'), 'lists')) {
      const path = isAbsolute(list) ? list : resolve(dirname(r.source), list);
      let body: string;
      try {
        body = readFileSync(path, 'utf8');
      } catch (e) {
        r.fail(node, 'lists', `cannot read ${list}: ${(e as Error).message}`);
        continue;
      }
      const t = readTargetList(body);
      for (const err of t.errors) r.problems.push(`${path}:${err.line}: ${err.error}`);
      r.targets.push(...t.targets);
    }
  if (!entries.has('urls') && !entries.has('lists')) r.fail(root, '', 'a campaign needs urls: or lists:');
  if (entries.has('every')) {
    settings.everyS = parseDuration(isScalar(entries.get('every')) ? (entries.get('every') as { value: unknown }).value : undefined);
    if (settings.everyS === null)
      r.fail(entries.get('every'), 'every', "expected a period: seconds, or a number with s, m, h or d ('10s', '6h')");
  }
  if (entries.has('collector')) {
    const c = entries.get('collector');
    const v = isScalar(c) && typeof c.value === 'string' ? c.value : '';
    if (!/^https?:\/\/[^/]/.test(v)) r.fail(c, 'collector', `expected the collector's http(s) URL, got ${JSON.stringify(v)}`);
    else settings.collector = v;
  }
  if (entries.has('limits')) readLimits(r, entries.get('limits'), settings);
  if (!settings.name) settings.name = r.source.replace(/^.*[\\/]/, '').replace(/\.(ya?ml|json)$/, '');
}

function readLimits(r: CampaignReader, l: Node | undefined, settings: CampaignSettings): void {
  if (!isMap(l)) return r.fail(l, 'limits', `expected a mapping with keys ${LIMIT_KEYS.join(', ')}`);
  for (const pair of l.items as Pair<Node, Node>[]) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    const v = isScalar(pair.value) ? pair.value.value : undefined;
    const ok = typeof v === 'number' && Number.isInteger(v) && v >= 1;
    if (key === 'per_hour') {
      if (ok) settings.perHour = v;
      else r.fail(pair.value as Node, 'limits.per_hour', 'expected a whole number of measurements per hour, at least 1');
    } else if (key === 'concurrency') {
      if (ok && v <= 64) settings.concurrency = v;
      else r.fail(pair.value as Node, 'limits.concurrency', 'expected a whole number from 1 to 64');
    } else r.fail(pair.key, `limits.${key}`, `unknown key '${key}' (allowed: ${LIMIT_KEYS.join(', ')})`);
  }
}

/** The command line's --every, --collector, --per-hour and --concurrency over the file's. */
function applyOverrides(r: CampaignReader, settings: CampaignSettings, over: CampaignOverrides): void {
  if (over.every !== undefined) {
    settings.everyS = parseDuration(over.every);
    if (settings.everyS === null)
      r.problems.push(
        `--every: expected a period: seconds, or a number with s, m, h or d ('10s', '6h'), got ${JSON.stringify(over.every)}`,
      );
  }
  if (over.collector !== undefined) {
    if (!/^https?:\/\/[^/]/.test(over.collector))
      r.problems.push(`--collector: expected the collector's http(s) URL, got ${JSON.stringify(over.collector)}`);
    settings.collector = over.collector;
  }
  if (over.perHour !== undefined) settings.perHour = over.perHour;
  if (over.concurrency !== undefined) settings.concurrency = over.concurrency;
}

/** The campaign's persistent state: the schedule's origin and the journal of measurements spooled. */
interface CampaignState {
  campaign: string;
  started_at: number;
  every_s: number;
}
interface JournalLine {
  round: number;
  url: string;
  t: number;
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** Journal lines; a torn last line (killed mid-write) is ignored, a line that is not ours is an error. */
function readJournal(file: string): JournalLine[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const out: JournalLine[] = [];
  const lines = text.split('\n');
  lines.forEach((l, i) => {
    if (!l.trim()) return;
    try {
      const j = JSON.parse(l) as JournalLine;
      if (typeof j.round === 'number' && typeof j.url === 'string' && typeof j.t === 'number') return void out.push(j);
    } catch {
      if (i === lines.length - 1) return; // torn last line
    }
    throw new CampaignError(`${file}:${i + 1}: not a campaign journal line (refusing to resume from it)`);
  });
  return out;
}

export interface CampaignRunOptions {
  /** Where the state, the journal and the spool live (one directory per campaign). */
  stateDir: string;
  probe: ProbeOptions;
  /** One line per event, without a newline (the CLI stamps and prints it). */
  log: (line: string) => void;
  signal?: AbortSignal;
  /** Stop once this many rounds since the campaign first started are over (tests; default: run forever). */
  rounds?: number;
  /** Upload retries per flush before leaving the rest for the next one (default 2). */
  uploadRetries?: number;
}

export interface CampaignSummary {
  rounds: number;
  measured: number;
  uploaded: number;
  spooled: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Fisher-Yates with a generator seeded by (campaign, round): a restarted round keeps its order. */
export function shuffled<T>(items: T[], seed: string): T[] {
  const rnd = prng(createHash('sha256').update(seed).digest().readUInt32BE(0));
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** What the steps of runCampaign share. */
interface CampaignRun {
  spec: CampaignSpec;
  o: CampaignRunOptions;
  log: (line: string) => void;
  spoolDir: string;
  journalFile: string;
  lockFile: string;
  everyMs: number;
  startedAt: number;
  /** Round numbers belong to one schedule (its start time, as text). */
  schedule: string;
  newSchedule: boolean;
  /** URLs measured per round (the journal, plus spooled measurements it may not have caught). */
  done: Map<number, Set<string>>;
  /** Start times of measurements in the budget window. */
  recent: number[];
  summary: CampaignSummary;
  flush: () => Promise<void>;
  flushing: () => Promise<void> | null;
}

/**
 * Runs a campaign until `signal` aborts (or `rounds` are over). Round k starts at started_at + k *
 * every (started_at is kept in the state directory, so a restart keeps the schedule); a round not
 * finished when its period ends is finished first, a round at most one period late runs late, and
 * older ones whose periods passed while the campaign was down are skipped (logged), never caught
 * up in a burst. Within a round the URLs go in
 * a random order; before each measurement the per-hour budget is checked (waiting when spent).
 */
export async function runCampaign(spec: CampaignSpec, o: CampaignRunOptions): Promise<CampaignSummary> {
  const run = openCampaign(spec, o);
  loadJournal(run);
  await recoverSpooled(run);
  await run.flush();
  let round = firstRound(run);
  const lastRound = o.rounds === undefined ? Infinity : o.rounds - 1;
  while (!o.signal?.aborted && round <= lastRound) {
    const roundStart = run.startedAt + round * run.everyMs;
    if (Date.now() < roundStart) {
      run.log(`round ${round}: next at ${new Date(roundStart).toISOString()}`);
      await sleep(roundStart - Date.now(), o.signal);
      if (o.signal?.aborted) break;
    }
    await measureRound(run, round);
    if (o.signal?.aborted) break;
    // Late by one period (a slow round, a short stop): the next round runs late. Later than that,
    // the rounds whose periods passed are skipped but the latest, never caught up in a burst.
    const next = Math.max(round + 1, roundOf(run, Date.now()) - 1);
    if (next > round + 1)
      run.log(`rounds ${round + 1}..${next - 1} skipped: their periods passed while measuring or while the campaign was down`);
    round = next;
  }
  await run.flush();
  const inFlight = run.flushing();
  if (inFlight) await inFlight;
  run.summary.spooled = (await pendingFiles(run.spoolDir)).length;
  try {
    if (readFileSync(run.lockFile, 'utf8').trim() === String(process.pid)) unlinkSync(run.lockFile);
  } catch {
    // gone already
  }
  return run.summary;
}

const roundOf = (run: CampaignRun, t: number) => Math.floor((t - run.startedAt) / run.everyMs);

function markDone(run: CampaignRun, round: number, url: string): void {
  let s = run.done.get(round);
  if (!s) run.done.set(round, (s = new Set()));
  s.add(url);
}

function appendJournal(run: CampaignRun, j: JournalLine): void {
  const fd = openSync(run.journalFile, 'a', 0o600);
  try {
    writeSync(fd, JSON.stringify(j) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The state directory: its lock (one campaign process each), its schedule, its spool. */
function openCampaign(spec: CampaignSpec, o: CampaignRunOptions): CampaignRun {
  const log = o.log;
  mkdirSync(o.stateDir, { recursive: true });
  const spoolDir = join(o.stateDir, 'spool');
  const stateFile = join(o.stateDir, 'state.json');
  // One campaign process per state directory: the journal and the spool are its alone.
  const lockFile = join(o.stateDir, 'lock');
  const holder = existsSync(lockFile) ? Number(readFileSync(lockFile, 'utf8').trim()) : NaN;
  if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder))
    throw new CampaignError(`${o.stateDir} is in use by another campaign (pid ${holder})`);
  writeAtomic(lockFile, `${process.pid}\n`);
  // Spool writes cut short by the kill (temp files never renamed) were never measurements: gone.
  mkdirSync(spoolDir, { recursive: true });
  for (const n of readdirSync(spoolDir)) if (n.startsWith('.tmp-')) unlinkSync(join(spoolDir, n));
  let state: CampaignState | null = existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as CampaignState) : null;
  if (state && (state.campaign !== spec.name || state.every_s !== spec.everyS)) {
    log(`state in ${o.stateDir} was for ${state.campaign} every ${state.every_s} s: starting a new schedule`);
    state = null;
  }
  let newSchedule = false;
  if (!state) {
    state = { campaign: spec.name, started_at: Date.now(), every_s: spec.everyS };
    writeAtomic(stateFile, JSON.stringify(state) + '\n');
    newSchedule = true;
  }
  const run: CampaignRun = {
    spec,
    o,
    log,
    spoolDir,
    journalFile: join(o.stateDir, 'journal.jsonl'),
    lockFile,
    everyMs: spec.everyS * 1000,
    startedAt: state.started_at,
    // Round numbers belong to one schedule: measurements are stamped with it, and a new schedule
    // does not take an old schedule's round k for its own.
    schedule: String(state.started_at),
    newSchedule,
    done: new Map(),
    recent: [],
    summary: { rounds: 0, measured: 0, uploaded: 0, spooled: 0 },
    flush: () => Promise.resolve(),
    flushing: () => null,
  };
  attachUploader(run);
  return run;
}

/** The journal, trimmed to what the budget and the current round need (a small footprint). */
function loadJournal(run: CampaignRun): void {
  // A new schedule keeps the old journal's times (the budget) but not its rounds.
  let journal = readJournal(run.journalFile).map((j) => (run.newSchedule ? { ...j, round: -1 } : j));
  const keepAfter = Date.now() - 3600_000;
  const current = roundOf(run, Date.now());
  journal = journal.filter((j) => j.t > keepAfter || j.round >= current - 1);
  writeAtomic(run.journalFile, journal.map((j) => JSON.stringify(j) + '\n').join(''));
  for (const j of journal) {
    markDone(run, j.round, j.url);
    run.recent.push(j.t);
  }
}

/** Spooled measurements the journal may not have caught (killed between the spool file and its line). */
async function recoverSpooled(run: CampaignRun): Promise<void> {
  let recovered = 0;
  for (const f of await pendingFiles(run.spoolDir)) {
    try {
      const m = JSON.parse(readFileSync(f, 'utf8')) as Measurement;
      const a = m.annotations ?? {};
      if (a.campaign !== run.spec.name || a.campaign_schedule !== run.schedule || typeof m.input !== 'string') continue;
      const round = Number(a.campaign_round);
      if (!run.done.get(round)?.has(m.input)) {
        recovered++;
        markDone(run, round, m.input);
        const t = Date.parse(String(m.measurement_start_time).replace(' ', 'T') + 'Z');
        run.recent.push(Number.isFinite(t) ? t : Date.now());
        appendJournal(run, { round, url: m.input, t: Number.isFinite(t) ? t : Date.now() });
      }
    } catch {
      // unreadable: flushSpool moves it aside
    }
  }
  if (recovered) run.log(`recovered ${recovered} spooled measurement(s) missing from the journal (the last run was killed)`);
}

/** Uploads: one flush at a time; a measurement that arrives during a flush asks for another. */
function attachUploader(run: CampaignRun): void {
  const { spec, o, log, spoolDir, summary } = run;
  let flushing: Promise<void> | null = null;
  let again = false;
  run.flushing = () => flushing;
  run.flush = (): Promise<void> => {
    if (!spec.collector) return Promise.resolve();
    if (flushing) {
      again = true;
      return flushing;
    }
    flushing = (async () => {
      do {
        again = false;
        const r = await flushSpool(spoolDir, spec.collector!, {
          retries: o.uploadRetries ?? 2,
          baseDelayMs: 500,
          maxDelayMs: 5000,
          timeoutMs: 15_000,
          onEvent: (e) => {
            if (e.type === 'rejected')
              log(`upload: refused by the collector (HTTP ${e.status}), kept in ${spoolDir}/rejected: ${e.reason.slice(0, 160)}`);
            if (e.type === 'gave_up')
              log(`upload: collector unreachable (${e.reason.slice(0, 120)}); kept in the spool, retried after the next measurement`);
          },
        });
        summary.uploaded += r.uploaded;
        if (r.uploaded) log(`upload: ${r.uploaded} sent to ${spec.collector}, ${r.remaining} still spooled`);
        summary.spooled = r.remaining;
      } while (again && !o.signal?.aborted);
      flushing = null;
    })();
    return flushing;
  };
}

/**
 * The round to start with: the current one, or the one before when the kill interrupted it (its
 * remaining URLs are measurements owed, not skipped; older rounds are not caught up).
 */
function firstRound(run: CampaignRun): number {
  const round = Math.max(0, roundOf(run, Date.now()));
  const owed = run.done.get(round - 1);
  if (owed && owed.size > 0 && run.spec.targets.some((t) => !owed.has(t.url))) {
    run.log(`round ${round - 1}: interrupted before its end; finishing it first`);
    return round - 1;
  }
  return round;
}

/** The round's URLs, each once the per-hour budget allows (waiting when it is spent). */
async function* withinBudget(run: CampaignRun, todo: Target[]): AsyncGenerator<Target> {
  const { spec, o, recent } = run;
  for (const t of todo) {
    if (spec.perHour !== undefined) {
      for (;;) {
        const cut = Date.now() - 3600_000;
        while (recent.length && recent[0]! <= cut) recent.shift();
        if (recent.length < spec.perHour) break;
        const wait = recent[0]! + 3600_000 - Date.now() + 10;
        run.log(`budget: ${spec.perHour} measurements in the last hour; waiting ${Math.ceil(wait / 1000)} s`);
        await sleep(wait, o.signal);
        if (o.signal?.aborted) return;
      }
    }
    if (o.signal?.aborted) return;
    recent.push(Date.now());
    yield t;
  }
}

/** One round: what is left of it, in its random order, spooled and journaled one by one. */
async function measureRound(run: CampaignRun, round: number): Promise<void> {
  const { spec, o, log } = run;
  const already = run.done.get(round) ?? new Set<string>();
  const todo = shuffled(
    spec.targets.filter((t) => !already.has(t.url)),
    `${spec.name}\0${round}`,
  );
  log(
    `round ${round}: ${todo.length} of ${spec.targets.length} URL(s) to measure${already.size ? ` (${already.size} already done before a restart)` : ''}`,
  );
  const t0 = Date.now();
  let blocked = 0;
  let measuredHere = 0;
  const probe: ProbeOptions = {
    ...o.probe,
    annotations: { ...(o.probe.annotations ?? {}), campaign: spec.name, campaign_schedule: run.schedule, campaign_round: String(round) },
  };
  await measureMany(
    withinBudget(run, todo),
    probe,
    spec.concurrency,
    async (r) => {
      if (!r.ok) {
        log(`round ${round}: ${r.target.url}: not measured: ${r.error}`);
        return;
      }
      await spoolMeasurement(run.spoolDir, r.measurement as unknown as Measurement);
      appendJournal(run, { round, url: r.target.url, t: Date.now() });
      markDone(run, round, r.target.url);
      run.summary.measured++;
      measuredHere++;
      const v = r.measurement.test_keys.x_verdict as { status?: string; mechanism?: string | null; layer?: string | null } | undefined;
      if (v?.status === 'blocked') blocked++;
      log(
        `round ${round}: ${r.target.url} ${v?.status ?? 'unknown'}${v?.mechanism && v.mechanism !== 'none' ? ` ${v.mechanism}` : ''}${v?.layer ? ` (${v.layer})` : ''}`,
      );
      void run.flush();
    },
    { signal: o.signal },
  );
  if (o.signal?.aborted) return;
  run.summary.rounds++;
  log(`round ${round}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${measuredHere} measured, ${blocked} blocked`);
}
