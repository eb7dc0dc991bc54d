// The emulated social platform of the lab (DESIGN.md "Platforms", the `platform:` section of a
// scenario) and the vocabulary its observers speak: the statuses of a vanished post, the notices a
// platform shows, keyword rules (a word or a combination of words) and delay distributions. Pure:
// no I/O, no clock; randomness comes in as a function.

/** A vanished post's fate (DESIGN.md "Contracts of the next capabilities", Platform). */
export const POST_STATUSES = ['removed', 'author_deleted', 'account_banned', 'shadow_hidden'] as const;
export type PostStatus = (typeof POST_STATUSES)[number];

/**
 * The notices the platform shows in place of a post, modelled on Weibo's (a removed post: "this post
 * was deleted for violating the community convention"; an author's deletion: "this post was deleted
 * by its author"; a banned account). The API also carries a stable error code beside each notice;
 * an observer classifies by the code, and by the notice text where it reads only the HTML page.
 */
export const PLATFORM_NOTICES = {
  removed: '该内容因违反《社区公约》的有关规定，已被删除。',
  author_deleted: '抱歉，此内容已被作者删除。',
  account_banned: '该账号因被投诉违反法律法规和《社区公约》的相关规定，现已无法查看。',
  not_found: '内容不存在。',
} as const;
export type PlatformErrorCode = keyof typeof PLATFORM_NOTICES;

/** How long after posting the moderation acts, in seconds. */
export type DelaySpec =
  | { kind: 'fixed'; s: number }
  | { kind: 'uniform'; min: number; max: number }
  /** Exponential with this mean, cut at max (the long tail of published deletion delays). */
  | { kind: 'exponential'; mean: number; max: number };

export interface ModerationRuleSpec {
  /** Every word must occur in the text (case-insensitive substring: no word boundaries, as Chinese platforms match). */
  words: string[];
  /** remove: gone for everyone with the platform's notice; shadow: visible to its author only. */
  action: 'remove' | 'shadow';
  delay?: DelaySpec;
}

export interface PlatformCommentSpec {
  account: string;
  text: string;
  at?: number;
}

export interface PlatformPostSpec {
  text: string;
  /** Seconds of lab time (since lab up) when it is posted (default 0). */
  at?: number;
  /** Seconds of lab time when its author deletes it (never when absent). */
  delete_at?: number;
  comments?: PlatformCommentSpec[];
}

export interface PlatformAccountSpec {
  name: string;
  /**
   * The public address this account posts from. Lab clients connect over loopback, which no
   * geolocation database places; the platform stamps this account's scenario posts (and API posts
   * that do not declare another source) with the territory of this address. Never dialled.
   */
  address?: string;
  /** Bearer token for the API (default `token-<name>`). */
  token?: string;
  posts?: PlatformPostSpec[];
}

export interface PlatformSpec {
  name?: string;
  /** Port of the platform's HTTP server (absent: 80 with standard ports, else ephemeral). */
  port?: number;
  /** Lab address (default 127.R.0.10). */
  address?: string;
  accounts: PlatformAccountSpec[];
  moderation?: {
    rules: ModerationRuleSpec[];
    /** Default delay of every rule (default fixed 0 s). */
    delay?: DelaySpec;
    /** Hits (removals or shadow removals) after which the account is banned (absent: never). */
    ban_after?: number;
  };
  /** Requests per second allowed per client address (token bucket, burst = 2 s worth); 429 beyond. */
  rate_limit?: number;
  /** Share of API requests answered 503 at random (a flaky platform), 0..1. */
  errors?: number;
}

/** Whether a rule's words all occur in the text (case-insensitive, as substrings). */
export function ruleMatches(rule: Pick<ModerationRuleSpec, 'words'>, text: string): boolean {
  const t = text.toLowerCase();
  return rule.words.length > 0 && rule.words.every((w) => t.includes(w.toLowerCase()));
}

/** The first rule that matches, in the scenario's order. */
export function firstMatchingRule(rules: readonly ModerationRuleSpec[], text: string): ModerationRuleSpec | null {
  for (const r of rules) if (ruleMatches(r, text)) return r;
  return null;
}

/** A delay in seconds drawn from the distribution with `rand` in [0, 1). */
export function sampleDelay(d: DelaySpec, rand: () => number): number {
  switch (d.kind) {
    case 'fixed':
      return d.s;
    case 'uniform':
      return d.min + (d.max - d.min) * rand();
    case 'exponential':
      return Math.min(d.max, -d.mean * Math.log(1 - rand()));
  }
}

/** The longest delay a distribution can draw (what a keyword test must wait at most). */
export function maxDelay(d: DelaySpec): number {
  return d.kind === 'fixed' ? d.s : d.max;
}

/** The words of a test text: whitespace-separated tokens, kept in order, duplicates kept once. */
export function textWords(text: string): string[] {
  const out: string[] = [];
  for (const w of text.split(/\s+/)) if (w && !out.includes(w)) out.push(w);
  return out;
}

/** A territory label as a platform shows it ("IP属地：广东"), with its code (ISO 3166-2:CN province or ISO country). */
export interface Territory {
  /** "CN-GD" for a mainland province, "CN" when the province is unknown, an ISO country code abroad; null when unknown. */
  code: string | null;
  /** The label text the platform shows after "IP属地：" (e.g. 广东, 美国, 中国香港, 未知). */
  label: string;
}

// The platform summary API's shapes (GET /api/v1/platform/summary): computed by
// src/analysis/platform.ts, served by the server, read by the explorer's Platforms page.

export interface KeywordRecord {
  measurement_uid: string;
  platform: string;
  text: string;
  removed: boolean;
  trigger: string[];
  status: string | null;
  posts: number | null;
  measured_at: string;
}

export interface StatusCounts {
  posts: number;
  visible: number;
  removed: number;
  author_deleted: number;
  account_banned: number;
  shadow_hidden: number;
  /** (removed + shadow_hidden + account_banned) / posts: what the platform took down, not its authors. */
  removal_rate: number | null;
}

export interface PlatformSummary {
  platform: string;
  totals: StatusCounts;
  /** Over removed and shadow_hidden posts (posting to the first poll that missed them: an upper bound). */
  time_to_removal: { n: number; median_s: number | null; p90_s: number | null; within_30_min: number | null; within_24_h: number | null };
  /** By the UTC day posts vanished. */
  per_day: Array<{
    day: string;
    removed: number;
    author_deleted: number;
    account_banned: number;
    shadow_hidden: number;
    median_time_to_removal_s: number | null;
  }>;
  /** By the IP territory the platform stamped on the posts. */
  per_territory: Array<{ code: string | null; label: string } & StatusCounts>;
}

export interface PlatformSummaryResponse {
  platforms: PlatformSummary[];
  keywords: KeywordRecord[];
  /** The summary read at most PLATFORM_SUMMARY_MAX measurements of each kind. */
  truncated: boolean;
}
