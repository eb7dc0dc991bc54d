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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface KeywordRun {
  results: KeywordResult[];
  /** Test posts left on the platform (their author was banned before deleting them). */
  leftBehind: string[];
  requests: PlatformClient['counts'];
}

export async function testKeywords(texts: string[], o: KeywordOptions): Promise<KeywordRun> {
  if (o.accounts.length === 0) throw new KeywordTestError('no test account');
  const client = new PlatformClient({ base: o.base, rate: o.rate ?? 20, timeoutMs: o.timeoutMs, labSource: o.labSource, signal: o.signal });
  const accounts = [...o.accounts];
  const leftBehind: string[] = [];
  const pollMs = o.pollMs ?? 500;

  /** Posts `text`, watches it for waitMs, deletes it; resolves to how it vanished (null: kept). */
  const trial = async (text: string): Promise<'removed' | 'shadow_hidden' | null> => {
    for (;;) {
      const acc = accounts[0];
      if (!acc) throw new KeywordTestError('every test account is banned; give more with --account');
      const r = await client.request('POST', '/api/v1/posts', { token: acc.token, body: { text } });
      if (r.status === 403 && r.body?.error === 'account_banned') {
        if (accounts[0] === acc) accounts.shift();
        o.onProgress?.(`test account ${acc.name} is banned; ${accounts.length} left`);
        continue;
      }
      if (r.status === 401) throw new KeywordTestError(`the platform refuses the token of test account ${acc.name} (${String(r.body?.error ?? r.status)})`);
      if (r.status !== 201 || typeof r.body?.id !== 'string') throw new KeywordTestError(`posting failed: HTTP ${r.status}${r.failure ? ` (${r.failure})` : ''}${r.body?.error ? ` ${String(r.body.error)}` : ''}`);
      const id = r.body.id;
      let outcome: 'removed' | 'shadow_hidden' | null = null;
      const until = Date.now() + o.waitMs;
      for (;;) {
        await sleep(Math.min(pollMs, Math.max(0, until - Date.now())));
        const g = await client.request('GET', `/api/v1/posts/${id}`);
        if (!transient(g) && g.status !== 200) {
          // Gone for a logged-out reader: with the removal notice, or silently (visible to the author only).
          outcome = g.body?.error === 'not_found' ? 'shadow_hidden' : 'removed';
          if (g.body?.error === 'account_banned') outcome = 'removed';
          break;
        }
        if (Date.now() >= until) break;
      }
      // Clean up: the author deletes every test post, removed or not.
      const d = await client.request('DELETE', `/api/v1/posts/${id}`, { token: acc.token });
      if (d.status !== 200) {
        if (d.status === 403 && d.body?.error === 'account_banned' && accounts[0] === acc) accounts.shift();
        if (d.status !== 404 || d.body?.error !== 'not_found') leftBehind.push(id);
      }
      return outcome;
    }
  };

  const results: KeywordResult[] = [];
  for (const text of texts) {
    let posts = 0;
    const test = async (words: string[]) => {
      posts++;
      return trial(words.join(' '));
    };
    posts++;
    const first = await trial(text);
    if (!first) {
      results.push({ text, removed: false, trigger: [], status: null, posts });
      continue;
    }
    // Complement reduction over the words: drop a chunk when the rest still triggers.
    let s = textWords(text);
    let n = 2;
    while (s.length > 1) {
      const size = Math.ceil(s.length / n);
      const chunks: string[][] = [];
      for (let i = 0; i < s.length; i += size) chunks.push(s.slice(i, i + size));
      const rests = chunks.map((c) => s.filter((w) => !c.includes(w)));
      const par = Math.max(1, o.parallel ?? 8);
      let reduced: string[] | null = null;
      for (let i = 0; i < rests.length && !reduced; i += par) {
        const batch = rests.slice(i, i + par);
        const got = await Promise.all(batch.map((rest) => (rest.length ? test(rest) : Promise.resolve(null))));
        const k = got.findIndex((g) => g !== null);
        if (k >= 0) reduced = batch[k]!;
      }
      if (reduced) {
        s = reduced;
        n = Math.max(n - 1, 2);
      } else if (n >= s.length) break;
      else n = Math.min(s.length, n * 2);
    }
    o.onProgress?.(`${JSON.stringify(text)}: ${s.join(' + ')} (${posts} posts)`);
    results.push({ text, removed: true, trigger: s, status: first, posts });
  }
  return { results, leftBehind, requests: { ...client.counts } };
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
