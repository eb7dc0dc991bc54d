// `wallscope platform watch` and `wallscope platform keywords` (DESIGN.md "Contracts of the next
// capabilities", Platform). Wiring only: the tracker and the keyword tester live in src/probe.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { analyzeMeasurement } from '../analysis/index.js';
import {
  keywordMeasurement,
  KeywordTestError,
  testKeywords,
  trackedPosts,
  watchMeasurement,
  WatchStateError,
  watchPlatform,
  type VanishedPost,
} from '../probe/index.js';
import { openStore, type MeasurementStore } from '../store/index.js';
import { collect } from './serve.js';

function usageError(message: string, exitCode = 2): Error {
  return Object.assign(new Error(message), { exitCode });
}

/** Seconds as `90`, `90s`, `5m`, `2h`. */
export function parseSeconds(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw usageError(`${flag}: expected seconds (e.g. 30, 30s, 5m, 2h), got ${JSON.stringify(v)}`);
  const n = Number(m[1]) * ({ ms: 0.001, s: 1, m: 60, h: 3600 } as const)[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  if (!(n > 0)) throw usageError(`${flag}: must be more than 0, got ${JSON.stringify(v)}`);
  return n;
}

function positive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw usageError(`${flag}: expected a positive number, got ${JSON.stringify(v)}`);
  return n;
}

export function platformUrl(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw usageError(`${JSON.stringify(v)} is not a URL (e.g. http://127.42.0.10:8080)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usageError(`${v}: an http or https URL is needed`);
  return u.toString().replace(/\/+$/, '');
}

/** Lines of a list file: `#` comments and blank lines skipped; `check` says what is wrong with a line. */
function readLines(file: string, check: (fields: string[]) => string | null): string[][] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw usageError(`${file}: ${(e as Error).message}`, 1);
  }
  const out: string[][] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const fields = line.split(/\s+/);
    const bad = check(fields);
    if (bad) throw usageError(`${file}:${i + 1}: ${bad}`);
    out.push(fields);
  });
  return out;
}

const ACCOUNT_RE = /^[^\s/?#]{1,128}$/;
const accountCheck = (f: string[]) =>
  f.length !== 1 ? 'expected one account name per line' : ACCOUNT_RE.test(f[0]!) ? null : `${JSON.stringify(f[0])} is not an account name`;
const tokenCheck = (f: string[]) =>
  f.length !== 2 ? 'expected "ACCOUNT TOKEN" per line' : ACCOUNT_RE.test(f[0]!) ? null : `${JSON.stringify(f[0])} is not an account name`;

function readToken(file: string): string {
  let t: string;
  try {
    t = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw usageError(`${file}: ${(e as Error).message}`, 1);
  }
  if (!/^\S{1,4096}$/.test(t)) throw usageError(`${file}: expected one token (no spaces)`);
  return t;
}

function labSource(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (isIP(v) === 0) throw usageError(`--lab-source: ${JSON.stringify(v)} is not an IP address`);
  return v;
}

interface WatchCli {
  accounts?: string;
  interval: string;
  duration?: string;
  rounds?: string;
  rate: string;
  concurrency: string;
  state?: string;
  tokenFile?: string;
  authorTokens?: string;
  db?: string;
  json?: boolean;
  labSource?: string;
}

interface KeywordsCli {
  account?: string[];
  accountFile?: string;
  texts?: string;
  wait: string;
  poll: string;
  rate: string;
  labSource?: string;
  db?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const platform = program.command('platform').description('social platforms: deleted posts and the keywords that get posts removed');
  registerWatch(platform);
  registerKeywords(platform);
}

function registerWatch(platform: Command): void {
  platform
    .command('watch')
    .description(
      'poll the timelines of accounts, re-check every vanished post logged out, and classify it: removed, author_deleted, account_banned or shadow_hidden',
    )
    .argument('<url>', "the platform's base URL (e.g. the lab platform that `lab up` prints)")
    .argument('[accounts...]', 'account names to watch')
    .option('--accounts <file>', 'account names, one per line (# comments)')
    .option('--interval <seconds>', 'between two polls of every account (30, 30s, 5m)', '60')
    .option('--duration <seconds>', 'stop after this long (default: --rounds, else 1h)')
    .option('--rounds <n>', 'stop after this many polls of every account')
    .option('--rate <rps>', 'requests per second at most (halved on every 429)', '5')
    .option('--concurrency <n>', 'accounts polled at once', '4')
    .option('--state <file>', 'state file: tracked posts and what was reported; a watch with the same file resumes')
    .option('--token-file <file>', "bearer token of the watcher's own account for the timelines (logged out otherwise)")
    .option('--author-tokens <file>', '"ACCOUNT TOKEN" lines: confirm shadow removal from the author\'s side (your own test accounts)')
    .option('--db <file>', 'also store each vanished post as a measurement (test_name x_platform_watch) in this SQLite store')
    .option('--lab-source <ip>', 'lab platforms only: the address the watcher declares it comes from (X-Wallscope-Lab-Source)')
    .option('--json', 'one JSON line per vanished post')
    .action(platformWatch);
}

/** `platform watch`: poll, report every vanished post, store them with --db. */
async function platformWatch(url: string, names: string[], o: WatchCli): Promise<void> {
  const { base, accounts, intervalS, rounds, durationS, authorTokens, token, rate, concurrency, source } = watchSettings(url, names, o);
  let store: MeasurementStore | null = null;
  if (o.db) store = await openStore({ db: o.db, sqliteWriterThread: false });
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const res = await watchPlatform({
      base,
      accounts: [...new Set(accounts)],
      intervalMs: intervalS * 1000,
      rounds,
      durationMs: durationS === undefined ? undefined : durationS * 1000,
      rate,
      concurrency,
      token,
      authorTokens,
      statePath: o.state,
      labSource: source,
      signal: ac.signal,
      persist: async (v: VanishedPost) => {
        if (!store) return;
        const m = watchMeasurement(v, { platform: base, intervalS });
        await store.put(m, analyzeMeasurement(m));
      },
      onVanished: (v: VanishedPost) => {
        process.stdout.write(o.json ? JSON.stringify(v) + '\n' : describeVanished(v));
      },
    });
    // The posts still there: the denominator of removal rates (docs/INTERNAL-API.md).
    if (store) {
      const items = trackedPosts(res.state)
        .map((v) => watchMeasurement(v, { platform: base, intervalS }))
        .map((m) => ({ m, verdict: analyzeMeasurement(m) }));
      if (items.length) await store.putMany(items);
    }
    process.stderr.write(watchSummary(res));
  } catch (e) {
    if (e instanceof WatchStateError) throw usageError(e.message, 1);
    throw e;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await store?.close();
  }
}

/** The watch's settings from its arguments; a usage error for a bad one. */
function watchSettings(url: string, names: string[], o: WatchCli) {
  const base = platformUrl(url);
  const accounts = [...names];
  for (const n of names) if (!ACCOUNT_RE.test(n)) throw usageError(`${JSON.stringify(n)} is not an account name`);
  if (o.accounts) accounts.push(...readLines(o.accounts, accountCheck).map((f) => f[0]!));
  if (accounts.length === 0) throw usageError('no account to watch: give names or --accounts FILE');
  const intervalS = parseSeconds(o.interval, '--interval');
  const rounds = o.rounds === undefined ? undefined : Math.floor(positive(o.rounds, '--rounds'));
  const durationS = o.duration === undefined ? (rounds === undefined ? 3600 : undefined) : parseSeconds(o.duration, '--duration');
  const authorTokens = o.authorTokens ? new Map(readLines(o.authorTokens, tokenCheck).map((f) => [f[0]!, f[1]!] as const)) : undefined;
  const token = o.tokenFile ? readToken(o.tokenFile) : undefined;
  const rate = positive(o.rate, '--rate');
  const concurrency = Math.floor(positive(o.concurrency, '--concurrency'));
  const source = labSource(o.labSource);
  return { base, accounts, intervalS, rounds, durationS, authorTokens, token, rate, concurrency, source };
}

/** One vanished post as a line of text. */
function describeVanished(v: VanishedPost): string {
  const life = v.created_at
    ? `${((Date.parse(v.gone_at) - Date.parse(v.created_at)) / 1000).toFixed(1)} s after posting`
    : 'time of posting unknown';
  return `${v.account} ${v.post}: ${v.status.replace('_', ' ')} between ${v.last_seen_at} and ${v.gone_at} (${life})${v.territory ? `, IP territory ${v.territory.label}` : ''}\n`;
}

/** The line on stderr at the end of a watch. */
function watchSummary(res: Awaited<ReturnType<typeof watchPlatform>>): string {
  const c = res.requests;
  return (
    `platform watch: ${res.state.rounds} round(s) so far, ${Object.keys(res.state.posts).length} posts tracked, ${res.vanished.length} vanished this run; ` +
    `${c.requests} requests (${c.limited} rate-limited, ${c.server_errors} server errors, ${c.network_errors} network errors)` +
    (res.state.unknown_accounts.length ? `; unknown accounts: ${res.state.unknown_accounts.slice(0, 10).join(', ')}` : '') +
    '\n'
  );
}

function registerKeywords(platform: Command): void {
  platform
    .command('keywords')
    .description(
      'which words get a post removed: post each test text from test accounts, and narrow a removed one down to its minimal triggering words; every test post is deleted afterwards',
    )
    .argument('<url>', "the platform's base URL")
    .argument('[texts...]', 'test texts (words separated by spaces)')
    .option('--texts <file>', 'test texts, one per line (# comments)')
    .option(
      '--account <name:token>',
      'a test account (repeatable; prefer --account-file, the command line is visible to other users)',
      collect,
    )
    .option('--account-file <file>', '"ACCOUNT TOKEN" lines: test accounts, used in turn as they get banned')
    .option('--wait <seconds>', 'how long a post may take to be removed (the longest moderation delay you expect)', '60')
    .option('--poll <seconds>', 'between two looks at a test post', '1')
    .option('--rate <rps>', 'requests per second at most', '5')
    .option('--lab-source <ip>', 'lab platforms only: the address the test posts declare (X-Wallscope-Lab-Source)')
    .option('--db <file>', 'also store each result as a measurement (test_name x_platform_keywords) in this SQLite store')
    .option('--json', 'one JSON line per text')
    .action(platformKeywords);
}

/** `platform keywords`: post the test texts, narrow removed ones down to their trigger, delete the test posts. */
async function platformKeywords(url: string, args: string[], o: KeywordsCli): Promise<void> {
  const base = platformUrl(url);
  const texts = keywordTexts(args, o);
  const accounts = keywordAccounts(o);
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  try {
    const run = await testKeywords(texts, {
      base,
      accounts,
      waitMs: parseSeconds(o.wait, '--wait') * 1000,
      pollMs: parseSeconds(o.poll, '--poll') * 1000,
      rate: positive(o.rate, '--rate'),
      labSource: labSource(o.labSource),
      signal: ac.signal,
    });
    if (o.db) await storeKeywordResults(o.db, run.results, base, parseSeconds(o.wait, '--wait'));
    for (const r of run.results) {
      if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
      else
        process.stdout.write(
          r.removed
            ? `REMOVED (${r.status}) ${JSON.stringify(r.text)}: triggered by ${r.trigger.join(' + ')} (${r.posts} test posts)\n`
            : `kept    ${JSON.stringify(r.text)}\n`,
        );
    }
    if (run.leftBehind.length) {
      process.stderr.write(
        `platform keywords: ${run.leftBehind.length} test post(s) could not be deleted (banned account): ${run.leftBehind.join(', ')}\n`,
      );
      process.exitCode = 1;
    }
  } catch (e) {
    if (e instanceof KeywordTestError) throw usageError(`platform keywords: ${e.message}`, 1);
    throw e;
  } finally {
    process.off('SIGINT', stop);
  }
}

/** The test texts: the arguments, then --texts FILE's lines. */
function keywordTexts(args: string[], o: KeywordsCli): string[] {
  const texts = [...args];
  if (o.texts) {
    let text: string;
    try {
      text = readFileSync(o.texts, 'utf8');
    } catch (e) {
      throw usageError(`${o.texts}: ${(e as Error).message}`, 1);
    }
    text.split('\n').forEach((l, i) => {
      const t = l.trim();
      if (!t || t.startsWith('#')) return;
      if (t.length > 2000) throw usageError(`${o.texts}:${i + 1}: a test text of at most 2000 characters`);
      texts.push(t);
    });
  }
  if (texts.length === 0) throw usageError('no test text: give texts or --texts FILE');
  return texts;
}

/** The test accounts: --account NAME:TOKEN, then --account-file's lines. */
function keywordAccounts(o: KeywordsCli): Array<{ name: string; token: string }> {
  const accounts: Array<{ name: string; token: string }> = [];
  for (const a of o.account ?? []) {
    const i = a.indexOf(':');
    if (i <= 0 || i === a.length - 1) throw usageError(`--account: expected NAME:TOKEN, got ${JSON.stringify(a.replace(/:.*/, ':...'))}`);
    accounts.push({ name: a.slice(0, i), token: a.slice(i + 1) });
  }
  if (o.accountFile) accounts.push(...readLines(o.accountFile, tokenCheck).map((f) => ({ name: f[0]!, token: f[1]! })));
  if (accounts.length === 0) throw usageError('no test account: give --account NAME:TOKEN or --account-file FILE');
  return accounts;
}

/** --db: every result as a measurement (test_name x_platform_keywords). */
async function storeKeywordResults(
  db: string,
  results: Awaited<ReturnType<typeof testKeywords>>['results'],
  base: string,
  waitS: number,
): Promise<void> {
  const store = await openStore({ db, sqliteWriterThread: false });
  try {
    const at = new Date();
    await store.putMany(
      results.map((r) => keywordMeasurement(r, { platform: base, at, waitS })).map((m) => ({ m, verdict: analyzeMeasurement(m) })),
    );
  } finally {
    await store.close();
  }
}
