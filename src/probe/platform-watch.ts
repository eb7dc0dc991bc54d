// `wallscope platform watch`: a deletion tracker in the manner of Weiboscope (Fu, Chan and Chau
// 2013) and Zhu et al. 2013: poll the timelines of a set of accounts, and re-check every post that
// disappears from a second, logged-out vantage, to tell a post removed by the platform from one its
// author deleted, a banned account and a post hidden from everyone but its author (shadow removal).
// The time to removal is bracketed by the last poll that saw the post and the first that missed it.
// State (tracked posts, pending re-checks, reported posts) lives in a JSON file written atomically
// after every batch of accounts, so a killed watch resumes without repeating or losing a post.
import { createHash } from 'node:crypto';
import { appendFileSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { ooniTime, POST_STATUSES, PLATFORM_NOTICES, type Measurement, type PostStatus, type Territory } from '../model/index.js';
import { PlatformClient, transient, type ApiReply } from './platform-client.js';
import { ooniEnvelope } from './envelope.js';
import { sleep } from './sleep.js';

export interface VanishedPost {
  account: string;
  post: string;
  status: PostStatus;
  /** First poll that saw it (ISO). */
  seen_at: string;
  /** First poll that missed it (ISO): the removal happened before this and after last_seen_at. */
  gone_at: string;
  last_seen_at: string;
  created_at: string | null;
  territory: Territory | null;
  /** The notice the logged-out vantage got, or null. */
  notice: string | null;
  /** shadow_hidden confirmed by reading the post as its author (only with the author's token). */
  confirmed_by_author: boolean;
}

interface TrackedPost {
  account: string;
  seen_at: number;
  last_seen_at: number;
  created_at: string | null;
  territory: Territory | null;
  /** First poll that missed it (ms), while its re-check is pending. */
  missing_since?: number;
}

export interface WatchState {
  version: 1;
  platform: string;
  rounds: number;
  posts: Record<string, TrackedPost>;
  /** Reported posts and their status: never reported twice, also across resumes. */
  reported: Record<string, PostStatus>;
  /** Accounts the platform does not know. */
  unknown_accounts: string[];
}

export interface WatchOptions {
  base: string;
  accounts: string[];
  /** Between the starts of two rounds (ms). */
  intervalMs: number;
  /** Stop after this many rounds (this run) ... */
  rounds?: number;
  /** ... or after this long (ms). At least one of the two bounds the watch. */
  durationMs?: number;
  /** Requests per second at most (default 5). */
  rate?: number;
  /** Accounts polled at once (default 4). */
  concurrency?: number;
  /** Bearer token of the watcher's own account for the timeline vantage (logged out when absent). */
  token?: string;
  /** Authors' tokens (account -> token): confirms shadow removal from the author's side. */
  authorTokens?: ReadonlyMap<string, string>;
  statePath?: string;
  timeoutMs?: number;
  maxBackoffMs?: number;
  labSource?: string;
  signal?: AbortSignal;
  /** Called once per vanished post before it is recorded as reported (e.g. an idempotent store write). */
  persist?: (v: VanishedPost) => Promise<void> | void;
  /**
   * Called once per vanished post after it is recorded as reported (in the state's log), so that
   * even a kill -9 never makes a resumed watch report it again (printing goes here).
   */
  onVanished?: (v: VanishedPost) => Promise<void> | void;
  /** Called after every round. */
  onRound?: (r: { round: number; tracked: number; pending: number; requests: number }) => void;
}

export interface WatchResult {
  state: WatchState;
  vanished: VanishedPost[];
  requests: PlatformClient['counts'];
}

export class WatchStateError extends Error {
  readonly code = 'WALLSCOPE_WATCH_STATE';
}

/** Reads a state file; a missing file is a new state, a corrupt or foreign one an error (never overwritten). */
export function loadWatchState(path: string | undefined, base: string): WatchState {
  const fresh: WatchState = { version: 1, platform: base, rounds: 0, posts: {}, reported: {}, unknown_accounts: [] };
  if (!path) return fresh;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return fresh;
    throw new WatchStateError(`${path}: ${(e as Error).message}`);
  }
  let s: WatchState;
  try {
    s = JSON.parse(text) as WatchState;
  } catch (e) {
    throw new WatchStateError(`${path}: not a watch state file (${(e as Error).message})`);
  }
  if (!s || s.version !== 1 || typeof s.posts !== 'object' || typeof s.reported !== 'object')
    throw new WatchStateError(`${path}: not a watch state file (version ${String(s?.version)})`);
  if (s.platform !== base) throw new WatchStateError(`${path}: the state of a watch of ${s.platform}, not ${base}`);
  s.unknown_accounts ??= [];
  // Reports since the last full save (one JSON line each; a line torn by a kill is ignored).
  let log = '';
  try {
    log = readFileSync(`${path}.log`, 'utf8');
  } catch {
    /* no log: nothing reported since the last save */
  }
  for (const line of log.split('\n')) {
    try {
      const r = JSON.parse(line) as { id?: unknown; status?: unknown };
      if (typeof r.id === 'string' && typeof r.status === 'string' && (POST_STATUSES as readonly string[]).includes(r.status)) {
        s.reported[r.id] = r.status as PostStatus;
        delete s.posts[r.id];
      }
    } catch {
      /* a torn last line */
    }
  }
  return s;
}

function saveState(path: string | undefined, s: WatchState): void {
  if (!path) return;
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(s));
  renameSync(tmp, path);
  // The full state now holds every report: the log starts over.
  rmSync(`${path}.log`, { force: true });
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The status a logged-out re-check of a vanished post tells (null: still visible or unknown). */
export function statusFromReply(r: ApiReply): { status: PostStatus | 'visible' | null; notice: string | null } {
  if (r.status === 200) return { status: 'visible', notice: null };
  const code = typeof r.body?.error === 'string' ? r.body.error : null;
  const notice = typeof r.body?.notice === 'string' ? r.body.notice : null;
  if (code && (POST_STATUSES as readonly string[]).includes(code) && code !== 'shadow_hidden')
    return { status: code as PostStatus, notice };
  // Without a code, the notice text decides (as a scraper of the HTML page would).
  for (const k of ['removed', 'author_deleted', 'account_banned'] as const)
    if (notice === PLATFORM_NOTICES[k]) return { status: k, notice };
  // Seen by us, now "does not exist" for a logged-out reader, with no deletion notice: hidden.
  if (code === 'not_found' || r.status === 404) return { status: 'shadow_hidden', notice };
  return { status: null, notice };
}

export async function watchPlatform(o: WatchOptions): Promise<WatchResult> {
  if (o.rounds === undefined && o.durationMs === undefined) throw new Error('watchPlatform needs rounds or durationMs');
  const w = new Watcher(o);
  const deadline = o.durationMs === undefined ? Infinity : Date.now() + o.durationMs;
  for (let round = 0; ; round++) {
    if (o.rounds !== undefined && round >= o.rounds) break;
    if (Date.now() >= deadline || o.signal?.aborted) break;
    const roundStart = Date.now();
    await w.round();
    const wait = roundStart + o.intervalMs - Date.now();
    const last = (o.rounds !== undefined && round + 1 >= o.rounds) || Date.now() + Math.max(0, wait) >= deadline;
    if (last) break;
    if (wait > 0) await sleep(wait, o.signal);
  }
  saveState(o.statePath, w.state);
  return { state: w.state, vanished: w.vanished, requests: { ...w.client.counts } };
}

/** One watch: its state, the tracked posts per account, and the rounds of polls and re-checks. */
class Watcher {
  readonly state: WatchState;
  readonly client: PlatformClient;
  readonly vanished: VanishedPost[] = [];
  private readonly unknown: Set<string>;
  /** The tracked posts of each account (an index over state.posts, kept in step with it). */
  private readonly byAccount = new Map<string, Set<string>>();

  constructor(private readonly o: WatchOptions) {
    this.state = loadWatchState(o.statePath, o.base);
    this.client = new PlatformClient({
      base: o.base,
      rate: o.rate,
      timeoutMs: o.timeoutMs,
      maxBackoffMs: o.maxBackoffMs,
      labSource: o.labSource,
      signal: o.signal,
    });
    this.unknown = new Set(this.state.unknown_accounts);
    for (const [id, t] of Object.entries(this.state.posts)) this.index(id, t.account);
  }

  private index(id: string, account: string): void {
    let set = this.byAccount.get(account);
    if (!set) this.byAccount.set(account, (set = new Set()));
    set.add(id);
  }

  save(): void {
    this.state.unknown_accounts = [...this.unknown];
    saveState(this.o.statePath, this.state);
  }

  /** Polls every known account once (concurrency at once), saving every 500 accounts and at the end. */
  async round(): Promise<void> {
    const { o, state } = this;
    const todo = o.accounts.filter((a) => !this.unknown.has(a));
    const conc = Math.max(1, o.concurrency ?? 4);
    let next = 0;
    let sinceSave = 0;
    await Promise.all(
      Array.from({ length: Math.min(conc, todo.length) }, async () => {
        while (next < todo.length && !o.signal?.aborted) {
          await this.pollAccount(todo[next++]!);
          if (++sinceSave >= 500) {
            sinceSave = 0;
            this.save();
          }
        }
      }),
    );
    state.rounds++;
    this.save();
    o.onRound?.({
      round: state.rounds,
      tracked: Object.keys(state.posts).length,
      pending: Object.values(state.posts).filter((t) => t.missing_since !== undefined).length,
      requests: this.client.counts.requests,
    });
  }

  /** Reads an account's timeline, then re-checks every tracked post missing from it. */
  private async pollAccount(account: string): Promise<void> {
    const mine = [...(this.byAccount.get(account) ?? [])].map((id) => [id, this.state.posts[id]!] as const);
    const seen = await this.readTimeline(account);
    if (!seen) return;
    for (const [id, t] of mine) {
      if (seen.present.has(id)) continue;
      t.missing_since ??= seen.gotAt;
      await this.recheck(id, t);
    }
  }

  /**
   * The pages of an account's timeline: tracks new posts, refreshes the tracked ones. Null when
   * nothing is to be decided this round (a failed poll, an unknown account, an unexpected reply).
   */
  private async readTimeline(account: string): Promise<{ present: Set<string>; gotAt: number } | null> {
    const present = new Set<string>();
    let cursor: string | null = null;
    let sentAt = Date.now();
    let gotAt = sentAt;
    for (let page = 0; page < 100; page++) {
      const q: string = `/api/v1/accounts/${encodeURIComponent(account)}/posts?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const sent = Date.now();
      const r = await this.client.request('GET', q, { token: this.o.token });
      if (page === 0) sentAt = sent;
      gotAt = Date.now();
      if (transient(r)) return null; // try again next round; nothing is decided on a failed poll
      if (r.status === 404 && r.body?.error === 'account_not_found') {
        this.unknown.add(account);
        return null;
      }
      // A banned account: every tracked post is missing; each re-check tells its own fate.
      if (r.status === 403 && r.body?.error === 'account_banned') break;
      if (r.status !== 200 || !Array.isArray(r.body?.posts)) return null;
      for (const p of r.body!.posts as Array<Record<string, unknown>>) this.track(account, p, sentAt, gotAt, present);
      cursor = typeof r.body?.next_cursor === 'string' ? r.body.next_cursor : null;
      if (!cursor) break;
    }
    return { present, gotAt };
  }

  /** One post of a timeline page: seen again, or tracked from now on. */
  private track(account: string, p: Record<string, unknown>, sentAt: number, gotAt: number, present: Set<string>): void {
    const { state } = this;
    const id = typeof p.id === 'string' ? p.id : null;
    if (!id || state.reported[id]) return;
    present.add(id);
    const t = state.posts[id];
    if (t) {
      t.last_seen_at = sentAt;
      delete t.missing_since;
    } else {
      const terr = p.territory && typeof p.territory === 'object' ? (p.territory as Territory) : null;
      state.posts[id] = {
        account,
        seen_at: gotAt,
        last_seen_at: sentAt,
        created_at: typeof p.created_at === 'string' ? p.created_at : null,
        territory: terr,
      };
      this.index(id, account);
    }
  }

  /** Re-checks a post missing from its account's timeline; leaves it pending on a transient failure. */
  private async recheck(id: string, t: TrackedPost): Promise<void> {
    const { client } = this;
    const r = await client.request('GET', `/api/v1/posts/${id}`);
    if (transient(r)) return;
    const { status, notice } = statusFromReply(r);
    if (status === 'visible') {
      // Visible to a logged-out reader after all (a timeline glitch, or hidden from our account only).
      delete t.missing_since;
      return;
    }
    if (status === null) return;
    let confirmed = false;
    const authorToken = this.o.authorTokens?.get(t.account);
    if (status === 'shadow_hidden' && authorToken) {
      const a = await client.request('GET', `/api/v1/posts/${id}`, { token: authorToken });
      if (transient(a)) return;
      if (a.status === 200) confirmed = true;
    }
    await this.report(id, t, status, notice, confirmed);
  }

  private async report(id: string, t: TrackedPost, status: PostStatus, notice: string | null, confirmed: boolean): Promise<void> {
    const { o, state } = this;
    const v: VanishedPost = {
      account: t.account,
      post: id,
      status,
      seen_at: iso(t.seen_at),
      gone_at: iso(t.missing_since!),
      last_seen_at: iso(t.last_seen_at),
      created_at: t.created_at,
      territory: t.territory,
      notice,
      confirmed_by_author: confirmed,
    };
    await o.persist?.(v);
    if (o.statePath) appendFileSync(`${o.statePath}.log`, JSON.stringify({ id, status }) + '\n');
    this.vanished.push(v);
    state.reported[id] = status;
    delete state.posts[id];
    this.byAccount.get(t.account)?.delete(id);
    await o.onVanished?.(v);
  }
}

/** An OONI 0.2.0 envelope for the platform tests; the uid comes from `uidSeed`, so that a record is stored once. */
export function platformMeasurement(
  testName: 'x_platform_watch' | 'x_platform_keywords',
  input: string,
  at: Date,
  uidSeed: string,
  testKeys: Record<string, unknown>,
  startedAt = at,
): Measurement {
  const hash = createHash('sha256').update(uidSeed).digest('hex').slice(0, 16);
  const name = testName.replace(/_/g, '');
  return ooniEnvelope({
    testName,
    testVersion: '0.1.0',
    input,
    start: at,
    testStart: startedAt,
    runtime: 0,
    measurementUid: `${at.toISOString().replace(/[-:T]/g, '').slice(0, 14)}.000000_ZZ_${name}_${hash}`,
    // The watcher's own location is not recorded (the envelope's default: AS0, ZZ).
    reportId: `${ooniTime(at).replace(/[- :]/g, '')}_ZZ_${name}_${hash}`,
    testKeys,
  });
}

/**
 * The measurement of one watched post (test_name x_platform_watch; docs/INTERNAL-API.md): a
 * vanished one, or (status "visible") one still there when a watch run ended, so that removal
 * rates have their denominator. One record per (platform, post, vanished|visible).
 */
export function watchMeasurement(
  v: Omit<VanishedPost, 'status'> & { status: PostStatus | 'visible' },
  meta: { platform: string; intervalS: number },
): Measurement {
  const platform = meta.platform.replace(/\/+$/, '');
  const created = v.created_at ? Date.parse(v.created_at) : NaN;
  const visible = v.status === 'visible';
  return platformMeasurement(
    'x_platform_watch',
    `${platform}/p/${v.post}`,
    new Date(visible ? v.last_seen_at : v.gone_at),
    `${platform}\n${v.post}${visible ? '\nvisible' : ''}`,
    {
      x_platform: platform,
      x_platform_account: v.account,
      x_platform_post: v.post,
      x_platform_status: v.status,
      x_platform_seen_at: v.seen_at,
      x_platform_last_seen_at: v.last_seen_at,
      x_platform_gone_at: visible ? null : v.gone_at,
      x_platform_created_at: v.created_at,
      x_platform_time_to_removal_s:
        !visible && Number.isFinite(created) ? Math.max(0, Math.round((Date.parse(v.gone_at) - created) / 100) / 10) : null,
      x_platform_territory: v.territory,
      x_platform_notice: v.notice,
      x_platform_confirmed_by_author: v.confirmed_by_author,
      x_platform_poll_interval_s: meta.intervalS,
    },
    new Date(v.seen_at),
  );
}

/** The posts a watch still tracks (visible at its last poll), as watchMeasurement takes them. */
export function trackedPosts(state: WatchState): Array<Omit<VanishedPost, 'status'> & { status: 'visible' }> {
  return Object.entries(state.posts)
    .filter(([, t]) => t.missing_since === undefined)
    .map(([id, t]) => ({
      account: t.account,
      post: id,
      status: 'visible' as const,
      seen_at: iso(t.seen_at),
      gone_at: iso(t.last_seen_at),
      last_seen_at: iso(t.last_seen_at),
      created_at: t.created_at,
      territory: t.territory,
      notice: null,
      confirmed_by_author: false,
    }));
}
