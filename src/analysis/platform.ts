// Platform measurements (x_platform_watch, x_platform_keywords; docs/INTERNAL-API.md "Platforms")
// into what the explorer shows: per platform, removal rate and time to removal over time, per
// territory of the posters, and the keyword table. Pure: stored measurements are hostile input,
// read defensively, never mutated.
import {
  POST_STATUSES,
  type KeywordRecord,
  type PlatformSummary,
  type PostStatus,
  type StatusCounts,
  type Territory,
} from '../model/index.js';

export type { KeywordRecord, PlatformSummary, StatusCounts };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, max = 2000): string | null => (typeof v === 'string' ? v.slice(0, max) : null);

export interface WatchRecord {
  measurement_uid: string;
  platform: string;
  account: string;
  post: string;
  status: PostStatus | 'visible';
  gone_at: string | null;
  time_to_removal_s: number | null;
  territory: Territory | null;
}

function territoryOf(v: unknown): Territory | null {
  if (!isObj(v)) return null;
  const label = str(v.label, 64);
  if (label === null) return null;
  return { code: str(v.code, 16), label };
}

/** A stored x_platform_watch measurement's keys, or null when they are not ours. */
export function watchRecord(uid: string, testKeys: unknown): WatchRecord | null {
  if (!isObj(testKeys)) return null;
  const status = testKeys.x_platform_status;
  const platform = str(testKeys.x_platform, 300);
  const account = str(testKeys.x_platform_account, 200);
  const post = str(testKeys.x_platform_post, 200);
  if (!platform || !account || !post || !(status === 'visible' || (POST_STATUSES as readonly unknown[]).includes(status))) return null;
  const ttr = testKeys.x_platform_time_to_removal_s;
  return {
    measurement_uid: uid,
    platform,
    account,
    post,
    status: status as WatchRecord['status'],
    gone_at: str(testKeys.x_platform_gone_at, 40),
    time_to_removal_s: typeof ttr === 'number' && Number.isFinite(ttr) && ttr >= 0 ? ttr : null,
    territory: territoryOf(testKeys.x_platform_territory),
  };
}

/** A stored x_platform_keywords measurement's keys, or null. */
export function keywordRecord(uid: string, measuredAt: string, testKeys: unknown): KeywordRecord | null {
  if (!isObj(testKeys)) return null;
  const platform = str(testKeys.x_platform, 300);
  const text = str(testKeys.x_platform_text);
  if (!platform || text === null || typeof testKeys.x_platform_removed !== 'boolean') return null;
  const trigger = Array.isArray(testKeys.x_platform_trigger)
    ? testKeys.x_platform_trigger
        .slice(0, 100)
        .map((w) => str(w, 200))
        .filter((w): w is string => w !== null)
    : [];
  const posts = testKeys.x_platform_test_posts;
  return {
    measurement_uid: uid,
    platform,
    text,
    removed: testKeys.x_platform_removed,
    trigger,
    status: str(testKeys.x_platform_status, 40),
    posts: typeof posts === 'number' ? posts : null,
    measured_at: measuredAt,
  };
}

const CENSORED: ReadonlySet<string> = new Set(['removed', 'shadow_hidden', 'account_banned']);

function quantile(sorted: number[], q: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function counts(records: WatchRecord[]): StatusCounts {
  const c: StatusCounts = {
    posts: records.length,
    visible: 0,
    removed: 0,
    author_deleted: 0,
    account_banned: 0,
    shadow_hidden: 0,
    removal_rate: null,
  };
  for (const r of records) c[r.status]++;
  c.removal_rate = records.length ? records.filter((r) => CENSORED.has(r.status)).length / records.length : null;
  return c;
}

/**
 * Summaries per platform. A post may have several records (a "visible" snapshot at the end of one
 * watch run, then its vanishing in a later one): the vanished record wins.
 */
export function summarizeWatch(records: readonly WatchRecord[]): PlatformSummary[] {
  const latest = new Map<string, WatchRecord>();
  for (const r of records) {
    const k = `${r.platform}\n${r.post}`;
    const prev = latest.get(k);
    if (!prev || (prev.status === 'visible' && r.status !== 'visible')) latest.set(k, r);
  }
  const byPlatform = new Map<string, WatchRecord[]>();
  for (const r of latest.values()) byPlatform.set(r.platform, [...(byPlatform.get(r.platform) ?? []), r]);
  return [...byPlatform.entries()]
    .sort((a, b) => a[0].localeCompare(b[0]))
    .map(([platform, rs]) => {
      const ttr = rs
        .filter((r) => (r.status === 'removed' || r.status === 'shadow_hidden') && r.time_to_removal_s !== null)
        .map((r) => r.time_to_removal_s!)
        .sort((a, b) => a - b);
      const days = new Map<string, WatchRecord[]>();
      for (const r of rs)
        if (r.status !== 'visible' && r.gone_at) days.set(r.gone_at.slice(0, 10), [...(days.get(r.gone_at.slice(0, 10)) ?? []), r]);
      const terr = new Map<string, WatchRecord[]>();
      for (const r of rs) {
        const k = r.territory ? `${r.territory.code ?? ''}\n${r.territory.label}` : '\n';
        terr.set(k, [...(terr.get(k) ?? []), r]);
      }
      return {
        platform,
        totals: counts(rs),
        time_to_removal: {
          n: ttr.length,
          median_s: quantile(ttr, 0.5),
          p90_s: quantile(ttr, 0.9),
          within_30_min: ttr.length ? ttr.filter((s) => s <= 1800).length / ttr.length : null,
          within_24_h: ttr.length ? ttr.filter((s) => s <= 86400).length / ttr.length : null,
        },
        per_day: [...days.entries()]
          .sort((a, b) => a[0].localeCompare(b[0]))
          .map(([day, ds]) => {
            const c = counts(ds);
            const t = ds
              .filter((r) => (r.status === 'removed' || r.status === 'shadow_hidden') && r.time_to_removal_s !== null)
              .map((r) => r.time_to_removal_s!)
              .sort((a, b) => a - b);
            return {
              day,
              removed: c.removed,
              author_deleted: c.author_deleted,
              account_banned: c.account_banned,
              shadow_hidden: c.shadow_hidden,
              median_time_to_removal_s: quantile(t, 0.5),
            };
          }),
        per_territory: [...terr.entries()]
          .map(([k, ts]) => {
            const [code, label] = k.split('\n');
            return { code: code || null, label: label || '未知', ...counts(ts) };
          })
          .sort((a, b) => b.posts - a.posts),
      };
    });
}

/** The keyword table: the latest result per (platform, text). */
export function keywordTable(records: readonly KeywordRecord[]): KeywordRecord[] {
  const latest = new Map<string, KeywordRecord>();
  for (const r of records) {
    const k = `${r.platform}\n${r.text}`;
    const prev = latest.get(k);
    if (!prev || prev.measured_at < r.measured_at) latest.set(k, r);
  }
  return [...latest.values()].sort(
    (a, b) => a.platform.localeCompare(b.platform) || Number(b.removed) - Number(a.removed) || a.text.localeCompare(b.text),
  );
}
