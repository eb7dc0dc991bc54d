// The lab's emulated social platform (scenario `platform:`, scenarios/README.md "Platform";
// DESIGN.md "Platforms"): accounts, posts and comments over HTTP, a JSON API and HTML pages, every
// post and comment stamped with its poster's "IP territory" (src/probe/territory.ts), and the
// moderation that deletion trackers observe (Weiboscope, Zhu et al. 2013; Fu et al. 2013): keyword
// rules (combinations of words), a delay before removal drawn from a distribution, distinct notices
// for "removed by the platform" and "deleted by the author", shadow removal (visible to the author
// only) and account bans after repeated hits. The ground truth is served at /_lab/truth.
//
// Where a post comes from: lab clients connect over loopback, which no geolocation database
// places. A post is stamped from, in order: the `X-Wallscope-Lab-Source` header (an IP address; only
// honoured from a loopback peer, i.e. a lab-local client, which is who a loopback lab serves), the
// posting account's scenario `address`, the peer address when it is not loopback; else 未知.
import http from 'node:http';
import { isIP } from 'node:net';
import {
  firstMatchingRule,
  PLATFORM_NOTICES,
  prng,
  sampleDelay,
  type DelaySpec,
  type PlatformErrorCode,
  type PlatformSpec,
  type PostStatus,
  type Territory,
} from '../model/index.js';
import { territoryOf } from '../probe/index.js';

export const LAB_SOURCE_HEADER = 'x-wallscope-lab-source';
const MAX_TEXT = 2000; // Weibo's limit for a post
const MAX_BODY = 64 * 1024;
const PAGE_MAX = 200;

interface Comment {
  id: string;
  account: Account;
  text: string;
  created: number;
  territory: Territory;
  removeAt: number | null;
  action: 'remove' | 'shadow' | null;
}

interface Post {
  id: string;
  seq: number;
  account: Account;
  text: string;
  created: number;
  territory: Territory;
  removeAt: number | null;
  action: 'remove' | 'shadow' | null;
  rule: string[] | null;
  deletedAt: number | null;
  comments: Comment[];
}

interface Account {
  name: string;
  token: string;
  address: string | undefined;
  posts: Post[];
}

/** What a viewer gets for one post at one time. */
type View = { kind: 'visible'; shadow: boolean } | { kind: 'gone'; code: PlatformErrorCode; at: number };

export interface PlatformTruthPost {
  id: string;
  account: string;
  text: string;
  created_at: string;
  /** What an outside, logged-out observer sees now (visible, or the status of the vanished post). */
  status: 'visible' | 'pending' | PostStatus;
  /** When it vanished for that observer (ISO), or null. */
  gone_at: string | null;
  /** The moderation rule's words that matched (even when the author deleted it first), or null. */
  rule: string[] | null;
  territory: Territory;
}

export interface PlatformTruth {
  now: string;
  accounts: Array<{ name: string; banned_at: string | null; hits: number }>;
  posts: PlatformTruthPost[];
}

export interface RunningPlatform {
  url: string;
  host: string;
  port: number;
  name: string;
  /** The ground truth at this moment. */
  truth(): PlatformTruth;
  stats(): { requests: number; limited: number; errors: number };
  close(): Promise<void>;
}

export interface PlatformOptions {
  host: string;
  port: number;
  spec: PlatformSpec;
  seed: number;
  /** Clock (ms); Date.now by default. Lab time 0 is the start. */
  now?: () => number;
}

const iso = (ms: number) => new Date(ms).toISOString();

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

type Moderation = { removeAt: number | null; action: 'remove' | 'shadow' | null; rule: string[] | null };

/** The platform's state (accounts, posts, comments) and its moderation, with no HTTP in it. */
class PlatformModel {
  readonly accounts = new Map<string, Account>();
  readonly byToken = new Map<string, Account>();
  readonly posts = new Map<string, Post>();
  private seq = 0;
  private commentSeq = 0;
  private readonly rules: NonNullable<PlatformSpec['moderation']>['rules'];
  private readonly defaultDelay: DelaySpec;
  private readonly banAfter: number;
  private readonly delayRand: () => number;

  constructor(spec: PlatformSpec, seed: number, t0: number) {
    this.rules = spec.moderation?.rules ?? [];
    this.defaultDelay = spec.moderation?.delay ?? { kind: 'fixed', s: 0 };
    this.banAfter = spec.moderation?.ban_after ?? 0;
    // Its own stream (the server draws errors from another): moderation delays stay reproducible
    // whatever the error draws do.
    this.delayRand = prng(seed ^ 0x5eed1);
    this.seedScenario(spec, t0);
  }

  /** The scenario's accounts, then its posts in the order of their lab time, so that ids grow with time as on a real platform. */
  private seedScenario(spec: PlatformSpec, t0: number): void {
    for (const a of spec.accounts) {
      const acc: Account = { name: a.name, token: a.token ?? `token-${a.name}`, address: a.address, posts: [] };
      this.accounts.set(a.name, acc);
      this.byToken.set(acc.token, acc);
    }
    const scheduled = spec.accounts.flatMap((a) => (a.posts ?? []).map((p) => ({ a, p })));
    scheduled.sort((x, y) => (x.p.at ?? 0) - (y.p.at ?? 0));
    for (const { a, p } of scheduled) {
      const acc = this.accounts.get(a.name)!;
      const created = t0 + Math.round((p.at ?? 0) * 1000);
      const post = this.addPost(
        acc,
        p.text,
        created,
        territoryOfAccount(acc),
        p.delete_at === undefined ? null : t0 + Math.round(p.delete_at * 1000),
      );
      for (const c of p.comments ?? []) {
        const by = this.accounts.get(c.account)!;
        this.addComment(post, by, c.text, Math.max(created, t0 + Math.round((c.at ?? p.at ?? 0) * 1000)), territoryOfAccount(by));
      }
    }
  }

  private moderate(text: string, created: number): Moderation {
    const rule = firstMatchingRule(this.rules, text);
    if (!rule) return { removeAt: null, action: null, rule: null };
    return {
      removeAt: created + Math.round(sampleDelay(rule.delay ?? this.defaultDelay, this.delayRand) * 1000),
      action: rule.action,
      rule: rule.words,
    };
  }

  addPost(account: Account, text: string, created: number, territory: Territory, deletedAt: number | null = null): Post {
    const id = String(4_900_000_000_000_000n + BigInt(++this.seq));
    const p: Post = { id, seq: this.seq, account, text, created, territory, deletedAt, comments: [], ...this.moderate(text, created) };
    account.posts.push(p);
    this.posts.set(id, p);
    return p;
  }

  addComment(post: Post, account: Account, text: string, created: number, territory: Territory): Comment {
    const m = this.moderate(text, created);
    const c: Comment = { id: `c${++this.commentSeq}`, account, text, created, territory, removeAt: m.removeAt, action: m.action };
    post.comments.push(c);
    return c;
  }

  /** When the account is banned: the removal time of its ban_after-th hit (a hit the author did not pre-empt). */
  banAt(a: Account): number | null {
    if (!this.banAfter) return null;
    const hits = a.posts
      .filter((p) => p.removeAt !== null && (p.deletedAt === null || p.deletedAt > p.removeAt))
      .map((p) => p.removeAt!)
      .sort((x, y) => x - y);
    return hits.length >= this.banAfter ? hits[this.banAfter - 1]! : null;
  }

  /** The account's ban when it is in force at `now`, else null. */
  bannedNow(a: Account, now: number): number | null {
    const ban = this.banAt(a);
    return ban !== null && ban <= now ? ban : null;
  }

  view(p: Post, viewer: Account | null, now: number, ban = this.banAt(p.account)): View | null {
    if (now < p.created) return null;
    // The post's own fate first, the account's ban after: a post removed before the ban keeps its
    // removal notice (and the post whose removal triggers the ban shows it too).
    const events: Array<{ at: number; code: PlatformErrorCode }> = [];
    if (p.deletedAt !== null && p.deletedAt <= now) events.push({ at: p.deletedAt, code: 'author_deleted' });
    if (p.removeAt !== null && p.removeAt <= now && p.action === 'remove') events.push({ at: p.removeAt, code: 'removed' });
    const shadowed = p.removeAt !== null && p.removeAt <= now && p.action === 'shadow';
    if (shadowed && viewer !== p.account) events.push({ at: p.removeAt!, code: 'not_found' });
    if (ban !== null && ban <= now) events.push({ at: ban + 0.5, code: 'account_banned' });
    events.sort((x, y) => x.at - y.at);
    if (events.length) return { kind: 'gone', code: events[0]!.code, at: Math.floor(events[0]!.at) };
    return { kind: 'visible', shadow: shadowed };
  }

  /** The account's posts visible to the viewer, newest first. */
  visiblePosts(a: Account, viewer: Account | null, now: number, ban: number | null): Post[] {
    return a.posts.filter((p) => this.view(p, viewer, now, ban)?.kind === 'visible').sort((x, y) => y.created - x.created || y.seq - x.seq);
  }

  truth(now: number): PlatformTruth {
    const out: PlatformTruthPost[] = [];
    for (const p of this.posts.values()) {
      const v = this.view(p, null, now);
      let status: PlatformTruthPost['status'];
      let goneAt: string | null = null;
      if (v === null) status = 'pending';
      else if (v.kind === 'visible') status = 'visible';
      else {
        status = v.code === 'not_found' ? 'shadow_hidden' : v.code;
        goneAt = iso(v.at);
      }
      out.push({
        id: p.id,
        account: p.account.name,
        text: p.text,
        created_at: iso(p.created),
        status,
        gone_at: goneAt,
        rule: p.rule,
        territory: p.territory,
      });
    }
    return {
      now: iso(now),
      accounts: [...this.accounts.values()].map((a) => {
        const b = this.banAt(a);
        return {
          name: a.name,
          banned_at: b !== null && b <= now ? iso(b) : null,
          hits: a.posts.filter((p) => p.removeAt !== null && p.removeAt <= now && (p.deletedAt === null || p.deletedAt > p.removeAt))
            .length,
        };
      }),
      posts: out,
    };
  }
}

const territoryOfAccount = (a: Account): Territory => (a.address ? territoryOf(a.address) : { code: null, label: '未知' });

const commentJson = (c: Comment) => ({
  id: c.id,
  account: c.account.name,
  text: c.text,
  created_at: iso(c.created),
  territory: c.territory,
});
const visibleComments = (p: Post, viewer: Account | null, now: number) =>
  p.comments.filter(
    (c) => now >= c.created && !(c.removeAt !== null && c.removeAt <= now && (c.action === 'remove' || viewer !== c.account)),
  );
const postJson = (p: Post, viewer: Account | null, now: number) => ({
  id: p.id,
  account: p.account.name,
  text: p.text,
  created_at: iso(p.created),
  territory: p.territory,
  comments: visibleComments(p, viewer, now).map(commentJson),
});

/** Per client token buckets (rate_limit requests/s, a burst of 2 s worth); always allows without a rate. */
function tokenBuckets(rate: number | undefined): (client: string, now: number) => boolean {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (client, now) => {
    if (!rate) return true;
    const burst = Math.max(1, rate * 2);
    const b = buckets.get(client) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    buckets.set(client, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  };
}

/** Where a request's post comes from (see the head of this file for the order). */
function sourceTerritory(req: http.IncomingMessage, account: Account | null): Territory {
  const peer = req.socket.remoteAddress ?? '';
  const loopback = peer.startsWith('127.') || peer === '::1' || peer.startsWith('::ffff:127.');
  const declared = req.headers[LAB_SOURCE_HEADER];
  if (loopback && typeof declared === 'string' && isIP(declared.trim())) return territoryOf(declared.trim());
  if (account?.address) return territoryOf(account.address);
  if (!loopback && peer) return territoryOf(peer);
  return { code: null, label: '未知' };
}

/** One request as the route handlers see it. */
interface Exchange {
  req: http.IncomingMessage;
  url: URL;
  path: string;
  now: number;
  viewer: Account | null;
  /** Answers JSON; true, so that a route can `return send(...)` for "handled". */
  send(status: number, body: unknown, headers?: Record<string, string>): true;
  /** Answers an HTML page; true, as send. */
  html(status: number, title: string, body: string): true;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

function sendHtml(res: http.ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    'x-content-type-options': 'nosniff',
  });
  res.end(
    `<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`,
  );
}

/** A vanished post's status: 403 for what the platform took down, 404 for what merely is not there. */
const goneStatus = (code: PlatformErrorCode) => (code === 'removed' || code === 'account_banned' ? 403 : 404);

/** GET routes of the JSON API and the lab's truth; false when the request is not one of them. */
function serveApiReads(model: PlatformModel, x: Exchange, truth: () => PlatformTruth): boolean {
  const { req, url, path, now, viewer, send } = x;
  if (req.method !== 'GET') return false;
  let m: RegExpExecArray | null;
  if ((m = /^\/api\/v1\/accounts\/([^/]+)\/posts$/.exec(path))) {
    const a = model.accounts.get(decodeURIComponent(m[1]!));
    if (!a) return send(404, { error: 'account_not_found', notice: PLATFORM_NOTICES.not_found });
    const ban = model.banAt(a);
    if (ban !== null && ban <= now) return send(403, { error: 'account_banned', notice: PLATFORM_NOTICES.account_banned });
    const limit = Math.min(PAGE_MAX, Math.max(1, Number(url.searchParams.get('limit')) || 50));
    const cursor = url.searchParams.get('cursor');
    const [cc, cs] = cursor ? cursor.split('_').map(Number) : [Infinity, Infinity];
    const visible = model.visiblePosts(a, viewer, now, ban).filter((p) => p.created < cc! || (p.created === cc && p.seq < cs!));
    const page = visible.slice(0, limit);
    const last = page[page.length - 1];
    return send(200, {
      account: a.name,
      posts: page.map((p) => postJson(p, viewer, now)),
      next_cursor: visible.length > limit && last ? `${last.created}_${last.seq}` : null,
    });
  }
  if ((m = /^\/api\/v1\/posts\/([0-9]+)$/.exec(path))) {
    const p = model.posts.get(m[1]!);
    const v = p ? model.view(p, viewer, now) : null;
    if (!p || !v) return send(404, { error: 'not_found', notice: PLATFORM_NOTICES.not_found });
    if (v.kind === 'gone') return send(goneStatus(v.code), { error: v.code, notice: PLATFORM_NOTICES[v.code] });
    return send(200, postJson(p, viewer, now));
  }
  if (path === '/api/v1/whereami') return send(200, { territory: sourceTerritory(req, null) });
  if (path === '/_lab/truth') return send(200, truth());
  return false;
}

/** POST a post or a comment, DELETE a post; false when the request is not one of them. */
function serveWrites(model: PlatformModel, x: Exchange, clock: () => number): boolean {
  const { req, path, now, viewer, send } = x;
  const write =
    (req.method === 'POST' && (path === '/api/v1/posts' || /^\/api\/v1\/posts\/[0-9]+\/comments$/.test(path))) ||
    (req.method === 'DELETE' && /^\/api\/v1\/posts\/[0-9]+$/.test(path));
  if (!write) return false;
  if (!viewer) return send(401, { error: 'login_required' });
  if (model.bannedNow(viewer, now) !== null) return send(403, { error: 'account_banned', notice: PLATFORM_NOTICES.account_banned });
  if (req.method === 'DELETE') {
    const p = model.posts.get(path.split('/').pop()!);
    if (!p || p.account !== viewer || now < p.created) return send(404, { error: 'not_found' });
    if (p.deletedAt === null || p.deletedAt > now) p.deletedAt = now;
    return send(200, { id: p.id, deleted: true });
  }
  readJsonBody(req, send, (body) => {
    const text = (body as { text?: unknown })?.text;
    if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TEXT)
      return send(400, { error: 'bad_text', message: `text: a string of 1 to ${MAX_TEXT} characters` });
    const at = clock();
    if (path === '/api/v1/posts') return send(201, postJson(model.addPost(viewer, text, at, sourceTerritory(req, viewer)), viewer, at));
    const p = model.posts.get(path.split('/')[4]!);
    const v = p ? model.view(p, viewer, at) : null;
    if (!p || v?.kind !== 'visible') return send(404, { error: 'not_found' });
    return send(201, commentJson(model.addComment(p, viewer, text, at, sourceTerritory(req, viewer))));
  });
  return true;
}

/** Reads a JSON body of at most MAX_BODY bytes and hands it on; answers 413 or 400 itself. */
function readJsonBody(req: http.IncomingMessage, send: Exchange['send'], then: (body: unknown) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_BODY) {
      send(413, { error: 'too_large' });
      req.destroy();
    } else chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return;
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return send(400, { error: 'bad_json' });
    }
    then(body);
  });
}

/** The HTML pages, as the site shows them to a browser; false when the request is not one of them. */
function serveHtml(model: PlatformModel, x: Exchange, name: string): boolean {
  const { req, path, now, viewer, html } = x;
  if (req.method !== 'GET') return false;
  const notice = (code: PlatformErrorCode) => `<p class="notice">${PLATFORM_NOTICES[code]}</p>`;
  let m: RegExpExecArray | null;
  if (path === '/') {
    const items = [...model.accounts.values()]
      .slice(0, 1000)
      .map((a) => `<li><a href="/u/${encodeURIComponent(a.name)}">${escapeHtml(a.name)}</a></li>`);
    return html(200, name, `<h1>${escapeHtml(name)}</h1><ul>${items.join('')}</ul>`);
  }
  if ((m = /^\/u\/([^/]+)$/.exec(path))) {
    const a = model.accounts.get(decodeURIComponent(m[1]!));
    if (!a) return html(404, name, notice('not_found'));
    const ban = model.banAt(a);
    if (ban !== null && ban <= now) return html(403, a.name, notice('account_banned'));
    const items = model
      .visiblePosts(a, viewer, now, ban)
      .slice(0, PAGE_MAX)
      .map(
        (p) =>
          `<article id="p${p.id}"><p>${escapeHtml(p.text)}</p><footer><a href="/p/${p.id}">${iso(p.created)}</a> · IP属地：${escapeHtml(p.territory.label)}</footer></article>`,
      );
    return html(200, a.name, `<h1>${escapeHtml(a.name)}</h1>${items.join('')}`);
  }
  if ((m = /^\/p\/([0-9]+)$/.exec(path))) {
    const p = model.posts.get(m[1]!);
    const v = p ? model.view(p, viewer, now) : null;
    if (!p || !v) return html(404, name, notice('not_found'));
    if (v.kind === 'gone') return html(goneStatus(v.code), name, notice(v.code));
    const comments = visibleComments(p, viewer, now).map(
      (c) => `<li>${escapeHtml(c.account.name)}: ${escapeHtml(c.text)} · IP属地：${escapeHtml(c.territory.label)}</li>`,
    );
    return html(
      200,
      p.account.name,
      `<article><h1>${escapeHtml(p.account.name)}</h1><p>${escapeHtml(p.text)}</p><footer>${iso(p.created)} · IP属地：${escapeHtml(p.territory.label)}</footer><ul>${comments.join('')}</ul></article>`,
    );
  }
  return false;
}

export async function startPlatform(o: PlatformOptions): Promise<RunningPlatform> {
  const clock = o.now ?? Date.now;
  const spec = o.spec;
  const name = spec.name ?? 'platform';
  const model = new PlatformModel(spec, o.seed, clock());
  // Separate stream from the model's: moderation delays stay reproducible whatever the error draws do.
  const errorRand = prng(o.seed ^ 0x5eed2);
  const allow = tokenBuckets(spec.rate_limit);
  const stats = { requests: 0, limited: 0, errors: 0 };
  const truth = () => model.truth(clock());

  const server = http.createServer((req, res) => {
    stats.requests++;
    const now = clock();
    const send: Exchange['send'] = (status, body, headers) => {
      sendJson(res, status, body, headers);
      return true;
    };
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://platform.lab');
    } catch {
      return send(400, { error: 'bad_request' });
    }
    const path = url.pathname;
    if (path.startsWith('/api/')) {
      if (!allow(req.socket.remoteAddress ?? '', now)) {
        stats.limited++;
        return send(429, { error: 'rate_limited' }, { 'retry-after': String(Math.max(1, Math.ceil(1 / spec.rate_limit!))) });
      }
      if (spec.errors && errorRand() < spec.errors) {
        stats.errors++;
        return send(503, { error: 'unavailable' });
      }
    }
    const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const viewer = auth ? (model.byToken.get(auth[1]!) ?? null) : null;
    if (auth && !viewer) return send(401, { error: 'bad_token' });
    const html: Exchange['html'] = (status, title, body) => {
      sendHtml(res, status, title, body);
      return true;
    };
    const x: Exchange = { req, url, path, now, viewer, send, html };
    if (serveApiReads(model, x, truth) || serveWrites(model, x, clock) || serveHtml(model, x, name)) return;
    send(404, { error: 'no_such_route' });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${o.host}:${port}`,
    host: o.host,
    port,
    name,
    truth,
    stats: () => ({ ...stats }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
