// `wallscope platform keywords`: which words of a text make a platform remove it, found as the
// published keyword studies did (Knockel et al., "Every Rose Has Its Thorn", 2015; Ruan et al.
// 2016): post the text from a test account, see whether it disappears for a logged-out reader
// within the platform's moderation delay, and if it does, narrow it down by posting parts of it
// (ddmin-style complement reduction, Zeller 2002: halves first, then finer pieces) to a minimal set
// of words that still triggers: one word, or a combination whose every word is needed. Every test
// post is deleted by its author after its test. A banned test account is dropped and the next one
// (if any) carries on.
import { textWords } from '../model/index.js';
import type { Measurement } from '../model/index.js';
import { PlatformClient, transient } from './platform-client.js';
import { platformMeasurement } from './platform-watch.js';
import { sleep } from './sleep.js';

export interface KeywordResult {
  text: string;
  removed: boolean;
  trigger: string[];
  /** How the full text vanished for a logged-out reader: removed (with the platform's notice) or shadow_hidden; null when not removed. */
  status: 'removed' | 'shadow_hidden' | null;
  /** Test posts this text cost. */
  posts: number;
}

export interface KeywordOptions {
  base: string;
  /** Test accounts (name and bearer token), used in turn as they get banned. */
  accounts: Array<{ name: string; token: string }>;
  /** How long to wait for a post to be moderated before calling it kept (ms). */
  waitMs: number;
  /** Between two looks at a test post (ms, default 500). */
  pollMs?: number;
  rate?: number;
  timeoutMs?: number;
  labSource?: string;
  signal?: AbortSignal;
  /** Test posts at once (default 8). */
  parallel?: number;
  onProgress?: (s: string) => void;
}

export class KeywordTestError extends Error {
  readonly code = 'WALLSCOPE_KEYWORDS';
}

export interface KeywordRun {
  results: KeywordResult[];
  /** Test posts left on the platform (their author was banned before deleting them). */
  leftBehind: string[];
  requests: PlatformClient['counts'];
}

type Vanished = 'removed' | 'shadow_hidden' | null;

export async function testKeywords(texts: string[], o: KeywordOptions): Promise<KeywordRun> {
  if (o.accounts.length === 0) throw new KeywordTestError('no test account');
  const tester = new KeywordTester(o);
  const results: KeywordResult[] = [];
  for (const text of texts) results.push(await tester.test(text));
  return { results, leftBehind: tester.leftBehind, requests: { ...tester.client.counts } };
}

/** The test accounts, the platform client and the test posts left behind, over every text of a run. */
class KeywordTester {
  readonly client: PlatformClient;
  readonly leftBehind: string[] = [];
  private readonly accounts: Array<{ name: string; token: string }>;
  private readonly pollMs: number;
  private readonly par: number;

  constructor(private readonly o: KeywordOptions) {
    this.client = new PlatformClient({
      base: o.base,
      rate: o.rate ?? 20,
      timeoutMs: o.timeoutMs,
      labSource: o.labSource,
      signal: o.signal,
    });
    this.accounts = [...o.accounts];
    this.pollMs = o.pollMs ?? 500;
    this.par = Math.max(1, o.parallel ?? 8);
  }

  /** One text: kept, or removed with its minimal trigger. */
  async test(text: string): Promise<KeywordResult> {
    let posts = 1;
    const count = () => void posts++;
    const first = await this.trial(text);
    if (!first) return { text, removed: false, trigger: [], status: null, posts };
    // 1. Words (whitespace-separated) down to a 1-minimal set.
    const wordsFound = await this.reduce(textWords(text), (kept) => kept.join(' '), count);
    const pieces = await this.reduceCharacters(wordsFound, count);
    const out = await this.splitCombinations(pieces, count);
    this.o.onProgress?.(`${JSON.stringify(text)}: ${out.join(' + ')} (${posts} posts)`);
    return { text, removed: true, trigger: out, status: first, posts };
  }

  /** Drops a banned account (once, whoever notices first). */
  private dropAccount(acc: { name: string }, what: string): void {
    if (this.accounts[0] === acc) this.accounts.shift();
    this.o.onProgress?.(`test account ${acc.name} ${what}; ${this.accounts.length} left`);
  }

  /** Posts `text`, watches it for waitMs, deletes it; resolves to how it vanished (null: kept). */
  private async trial(text: string): Promise<Vanished> {
    const { client } = this;
    for (;;) {
      const acc = this.accounts[0];
      if (!acc) throw new KeywordTestError('every test account is banned; give more with --account');
      const r = await client.request('POST', '/api/v1/posts', { token: acc.token, body: { text } });
      if (r.status === 403 && r.body?.error === 'account_banned') {
        this.dropAccount(acc, 'is banned');
        continue;
      }
      if (r.status === 401)
        throw new KeywordTestError(`the platform refuses the token of test account ${acc.name} (${String(r.body?.error ?? r.status)})`);
      if (r.status !== 201 || typeof r.body?.id !== 'string')
        throw new KeywordTestError(
          `posting failed: HTTP ${r.status}${r.failure ? ` (${r.failure})` : ''}${r.body?.error ? ` ${String(r.body.error)}` : ''}`,
        );
      const id = r.body.id;
      const seen = await this.watchPost(id);
      if (seen === 'banned') {
        this.leftBehind.push(id);
        this.dropAccount(acc, 'was banned');
        continue;
      }
      // Clean up: the author deletes every test post, removed or not.
      const d = await client.request('DELETE', `/api/v1/posts/${id}`, { token: acc.token });
      if (d.status !== 200) {
        if (d.status === 403 && d.body?.error === 'account_banned' && this.accounts[0] === acc) this.accounts.shift();
        if (d.status !== 404 || d.body?.error !== 'not_found') this.leftBehind.push(id);
      }
      return seen;
    }
  }

  /** Looks at a test post as a logged-out reader until it vanishes or waitMs is over. */
  private async watchPost(id: string): Promise<Vanished | 'banned'> {
    const until = Date.now() + this.o.waitMs;
    for (;;) {
      await sleep(Math.min(this.pollMs, Math.max(0, until - Date.now())));
      const g = await this.client.request('GET', `/api/v1/posts/${id}`);
      if (!transient(g) && g.status !== 200) {
        // The account was banned (by another test post's hit) before this post's own fate: this
        // test says nothing about the text; it is run again from the next account.
        if (g.body?.error === 'account_banned') return 'banned';
        // Gone for a logged-out reader: with the removal notice, or silently (visible to the author only).
        return g.body?.error === 'not_found' ? 'shadow_hidden' : 'removed';
      }
      if (Date.now() >= until) return null;
    }
  }

  /** Runs tests a batch at a time; the index of the first candidate that triggers, or -1. */
  private async firstTriggering(candidates: string[], count: () => void): Promise<number> {
    for (let i = 0; i < candidates.length; i += this.par) {
      const batch = candidates.slice(i, i + this.par);
      const got = await Promise.all(batch.map((t) => (count(), this.trial(t))));
      const k = got.findIndex((g) => g !== null);
      if (k >= 0) return i + k;
    }
    return -1;
  }

  /**
   * ddmin's complement reduction (Zeller 2002) over units (words, or the characters of one word):
   * drop a chunk when what is left still triggers, halves first, then finer; the result is
   * 1-minimal (dropping any single unit stops the removal). `build` makes the post's text.
   */
  private async reduce<U>(units: U[], build: (kept: U[]) => string, count: () => void): Promise<U[]> {
    let s = units;
    let n = 2;
    while (s.length > 1) {
      const size = Math.ceil(s.length / n);
      const rests: U[][] = [];
      for (let i = 0; i < s.length; i += size) rests.push([...s.slice(0, i), ...s.slice(i + size)]);
      const nonEmpty = rests.filter((r) => r.length > 0);
      const k = await this.firstTriggering(nonEmpty.map(build), count);
      if (k >= 0) {
        s = nonEmpty[k]!;
        n = Math.max(n - 1, 2);
      } else if (n >= s.length) break;
      else n = Math.min(s.length, n * 2);
    }
    return s;
  }

  /**
   * 2. Each word down to its needed characters, for a keyword inside a longer word ("falun" in
   * "falungong") and for texts without spaces (Chinese). Words are reduced side by side, each
   * with the others whole (for rules that need all their words, the reductions are independent).
   */
  private async reduceCharacters(fixedWords: string[], count: () => void): Promise<string[]> {
    const reducedPieces = await Promise.all(
      fixedWords.map(async (word, w) => {
        const chars = [...word];
        if (chars.length < 2) return [word];
        const kept = await this.reduce(
          chars.map((c, i) => ({ c, i })),
          (k) => fixedWords.map((x, j) => (j === w ? k.map((u) => u.c).join('') : x)).join(' '),
          count,
        );
        return adjacentPieces(kept);
      }),
    );
    return reducedPieces.flat();
  }

  /**
   * 3. A piece that still triggers when cut in two is two words of a combination ("六四天安门"
   * for the rule 六四 + 天安门): cut every piece at each place, keep the cuts that hold.
   */
  private async splitCombinations(piecesNow: string[], count: () => void): Promise<string[]> {
    const par = this.par;
    const split = await Promise.all(
      piecesNow.map(async (word, w) => {
        const chars = [...word];
        if (chars.length < 2) return [word];
        const cuts: number[] = [];
        for (let i = 1; i < chars.length; i += par) {
          const at = Array.from({ length: Math.min(par, chars.length - i) }, (_, k) => i + k);
          const got = await Promise.all(
            at.map(
              (c) => (
                count(),
                this.trial(piecesNow.map((x, j) => (j === w ? `${chars.slice(0, c).join('')} ${chars.slice(c).join('')}` : x)).join(' '))
              ),
            ),
          );
          got.forEach((g, k) => g !== null && cuts.push(at[k]!));
        }
        return cutAt(chars, cuts);
      }),
    );
    return split.flat();
  }
}

/** Characters kept from one word, in order: those that were not adjacent in the word are separate pieces. */
export function adjacentPieces(kept: Array<{ c: string; i: number }>): string[] {
  const pieces: string[] = [];
  kept.forEach((u, j) => (j > 0 && kept[j - 1]!.i === u.i - 1 ? (pieces[pieces.length - 1] += u.c) : pieces.push(u.c)));
  return pieces;
}

/** The characters cut at the given ascending positions. */
export function cutAt(chars: string[], cuts: number[]): string[] {
  const parts: string[] = [];
  let from = 0;
  for (const c of [...cuts, chars.length]) {
    parts.push(chars.slice(from, c).join(''));
    from = c;
  }
  return parts;
}

/** The measurement of one keyword test (test_name x_platform_keywords; docs/INTERNAL-API.md). */
export function keywordMeasurement(r: KeywordResult, meta: { platform: string; at: Date; waitS: number }): Measurement {
  const platform = meta.platform.replace(/\/+$/, '');
  return platformMeasurement('x_platform_keywords', platform, meta.at, `${platform}\n${meta.at.toISOString()}\n${r.text}`, {
    x_platform: platform,
    x_platform_text: r.text,
    x_platform_removed: r.removed,
    x_platform_trigger: r.trigger,
    x_platform_status: r.status,
    x_platform_test_posts: r.posts,
    x_platform_wait_s: meta.waitS,
  });
}
