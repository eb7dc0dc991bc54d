// Timelines (DESIGN.md "Contracts of the next capabilities", "Time"): a scenario may say WHEN its
// censors' rules are added and removed, in lab time (seconds since `lab up`). The truth at time t
// is the scenario with every entry up to t applied. Pure: parsing and validation live in
// src/lab/scenario.ts, the live application in src/lab/lab.ts.
import type { CensorSpec, Scenario } from './scenario.js';

/** The actions a timeline may change, and the list keys of each (null_route and reject are lists themselves). */
export const TIMELINE_ACTIONS = {
  dns_injection: ['rules'],
  sni_reset: ['rules'],
  http_reset: ['host_rules', 'keywords'],
  blockpage: ['host_rules'],
  throttle: ['sni_rules', 'host_rules'],
  null_route: [],
  reject: [],
} as const;
export type TimelineAction = keyof typeof TIMELINE_ACTIONS;
export const TIMELINE_ACTION_NAMES = Object.keys(TIMELINE_ACTIONS) as TimelineAction[];

/** `{<action>: {<key>: [...]}}`; for null_route and reject, `{<action>: [...]}`. */
export type TimelineDelta = Partial<Record<TimelineAction, Record<string, string[]> | string[]>>;

export interface TimelineEntry {
  /** Seconds of lab time since the lab came up. */
  at: number;
  /** The name of a censor of the scenario. */
  censor: string;
  add?: TimelineDelta;
  remove?: TimelineDelta;
}

/** Entries in the order they apply: by time, then as written. */
export function orderedTimeline(entries: readonly TimelineEntry[]): TimelineEntry[] {
  return entries
    .map((e, i) => [e, i] as const)
    .sort((a, b) => a[0].at - b[0].at || a[1] - b[1])
    .map(([e]) => e);
}

/** The distinct times at which the world changes, ascending. */
export function timelineTimes(s: Scenario): number[] {
  return [...new Set((s.timeline ?? []).map((e) => e.at))].sort((a, b) => a - b);
}

/** Why an entry cannot apply (the caller locates it), or null. */
export type TimelineIssue = { entry: TimelineEntry; action: TimelineAction; key: string | null; message: string };

function listOf(c: CensorSpec, action: TimelineAction, key: string | null, create: boolean): string[] | null {
  const spec = c as unknown as Record<string, unknown>;
  if (key === null) {
    if (!Array.isArray(spec[action])) {
      if (!create) return null;
      spec[action] = [];
    }
    return spec[action] as string[];
  }
  let a = spec[action] as Record<string, unknown> | undefined;
  if (!a) {
    if (!create) return null;
    // A throttle needs its rate: it cannot be conjured by a timeline.
    if (action === 'throttle') return null;
    a = spec[action] = {};
  }
  if (!Array.isArray(a[key])) {
    if (!create) return null;
    a[key] = [];
  }
  return a[key] as string[];
}

function deltaItems(d: TimelineDelta | undefined): Array<[TimelineAction, string | null, string[]]> {
  const out: Array<[TimelineAction, string | null, string[]]> = [];
  for (const action of TIMELINE_ACTION_NAMES) {
    const v = d?.[action];
    if (v === undefined) continue;
    if (Array.isArray(v)) out.push([action, null, v]);
    else for (const [k, list] of Object.entries(v)) out.push([action, k, list]);
  }
  return out;
}

/**
 * The scenario as it stands at lab time `t` (seconds): every entry with `at <= t` applied in order,
 * without its timeline (a static snapshot).
 * Additions keep a rule once (adding a present rule changes nothing); a removal takes the rule away.
 * Issues (a throttle added where none is declared, a rule removed that is not there) are returned,
 * not thrown: the parser reports them with their position, and a validated scenario has none.
 */
export function scenarioAt(s: Scenario, t: number, issues?: TimelineIssue[]): Scenario {
  const censors: CensorSpec[] = structuredClone(s.censors);
  const byName = new Map(censors.map((c) => [c.name, c]));
  for (const e of orderedTimeline(s.timeline ?? [])) {
    if (e.at > t) break;
    const c = byName.get(e.censor);
    if (!c) {
      issues?.push({ entry: e, action: 'dns_injection', key: null, message: `no censor named '${e.censor}'` });
      continue;
    }
    for (const [action, key, rules] of deltaItems(e.add)) {
      const list = listOf(c, action, key, true);
      if (!list) {
        issues?.push({
          entry: e,
          action,
          key,
          message: `censor '${c.name}' declares no ${action}: declare it (with its kbps) under censors, even with empty rules`,
        });
        continue;
      }
      for (const r of rules) if (!list.includes(r)) list.push(r);
    }
    for (const [action, key, rules] of deltaItems(e.remove)) {
      const list = listOf(c, action, key, false);
      for (const r of rules) {
        const i = list ? list.indexOf(r) : -1;
        if (i < 0)
          issues?.push({ entry: e, action, key, message: `'${r}' is not in ${e.censor}.${action}${key ? '.' + key : ''} at ${e.at} s` });
        else list!.splice(i, 1);
      }
    }
  }
  // A snapshot: the timeline is spent (applying the result again changes nothing).
  const { timeline: _spent, ...rest } = s;
  return { ...rest, censors };
}
