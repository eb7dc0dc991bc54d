// Lists as data (DESIGN.md "Rules and lists"): per layer and date, a snapshot of what is known to be
// blocked (the rules `infer` found and the names behind them); snapshots compared (added, removed),
// a series of them gives each rule's block duration, and layers are compared by the Jaccard index
// of their blocked names (SP25: Henan vs GFW 0.0885). Pure: snapshots in, tables out. Here in
// model/ because the CLI (files), the store (SQLite rows), the server (API) and the explorer (types)
// all share these shapes and this logic.

import { csvField } from './csv.js';

export interface SnapshotRule {
  rule: string;
  protocol: string;
  /** Measured names this rule blocks (the inferred names and their overblocks). */
  names: string[];
  overblocks: number;
}

export interface ListSnapshot {
  /** YYYY-MM-DD */
  date: string;
  layers: Record<string, SnapshotRule[]>;
}

/** The line shape `infer --json` writes (only the keys a snapshot needs). */
export interface InferLike {
  name: string;
  protocol: string;
  layer: string | null;
  rule: string;
  overblocks?: string[];
  keyword?: string;
}

/** A snapshot from `infer` lines: one entry per (layer, protocol, rule), names merged. */
export function snapshotFromInfer(lines: InferLike[], date: string): ListSnapshot {
  const layers: Record<string, Map<string, SnapshotRule>> = {};
  for (const l of lines) {
    const layer = l.layer ?? 'unknown';
    const m = (layers[layer] ??= new Map());
    const key = `${l.protocol}\0${l.rule}`;
    const r = m.get(key) ?? { rule: l.rule, protocol: l.protocol, names: [], overblocks: 0 };
    r.names = [...new Set([...r.names, l.name])].sort();
    r.overblocks = Math.max(r.overblocks, l.overblocks?.length ?? 0);
    m.set(key, r);
  }
  return {
    date,
    layers: Object.fromEntries(
      Object.entries(layers).map(([k, m]) => [
        k,
        [...m.values()].sort((a, b) => cmp(`${a.protocol}\0${a.rule}`, `${b.protocol}\0${b.rule}`)),
      ]),
    ),
  };
}

/** Code-unit order: the same on every machine, whatever its locale. */
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const keyOf = (r: SnapshotRule) => `${r.protocol}\0${r.rule}`;

export interface SnapshotDiff {
  from: string;
  to: string;
  layers: Record<string, { added: SnapshotRule[]; removed: SnapshotRule[]; kept: number }>;
}

export function diffSnapshots(a: ListSnapshot, b: ListSnapshot): SnapshotDiff {
  const out: SnapshotDiff = { from: a.date, to: b.date, layers: {} };
  for (const layer of [...new Set([...Object.keys(a.layers), ...Object.keys(b.layers)])].sort(cmp)) {
    const A = new Map((a.layers[layer] ?? []).map((r) => [keyOf(r), r]));
    const B = new Map((b.layers[layer] ?? []).map((r) => [keyOf(r), r]));
    out.layers[layer] = {
      added: [...B].filter(([k]) => !A.has(k)).map(([, r]) => r),
      removed: [...A].filter(([k]) => !B.has(k)).map(([, r]) => r),
      kept: [...B.keys()].filter((k) => A.has(k)).length,
    };
  }
  return out;
}

export interface RuleHistory {
  layer: string;
  protocol: string;
  rule: string;
  first_seen: string;
  last_seen: string;
  /** Days from first to last snapshot that held it (0 when seen once). */
  days: number;
  /** Still in the latest snapshot. */
  present: boolean;
  /** Snapshots that held it. */
  seen: number;
}

const day = (d: string) => Date.parse(`${d}T00:00:00Z`) / 86_400_000;

/** Each rule's first and last date over a series of snapshots (any order), and its block duration. */
export function ruleHistory(snaps: ListSnapshot[]): RuleHistory[] {
  const sorted = [...snaps].sort((x, y) => x.date.localeCompare(y.date));
  const latest = sorted[sorted.length - 1]?.date;
  const h = new Map<string, RuleHistory>();
  for (const s of sorted)
    for (const [layer, rules] of Object.entries(s.layers))
      for (const r of rules) {
        const k = `${layer}\0${keyOf(r)}`;
        const e = h.get(k) ?? {
          layer,
          protocol: r.protocol,
          rule: r.rule,
          first_seen: s.date,
          last_seen: s.date,
          days: 0,
          present: false,
          seen: 0,
        };
        e.last_seen = s.date;
        e.days = daysBetween(e.first_seen, e.last_seen);
        e.present = s.date === latest;
        e.seen++;
        h.set(k, e);
      }
  return sortHistory([...h.values()]);
}

/** The order of rule histories: by layer, the longest block first, then by rule (code-unit order). */
export function sortHistory(h: RuleHistory[]): RuleHistory[] {
  return h.sort((a, b) => cmp(a.layer, b.layer) || b.days - a.days || cmp(a.rule, b.rule));
}

/** Days between two YYYY-MM-DD dates: a rule's block duration. */
export const daysBetween = (first: string, last: string): number => day(last) - day(first);

/** Jaccard index of the blocked names of every pair of layers in one snapshot. */
export function layerOverlap(s: ListSnapshot): Array<{ a: string; b: string; jaccard: number; both: number }> {
  const names = Object.fromEntries(Object.entries(s.layers).map(([l, rs]) => [l, new Set(rs.flatMap((r) => r.names))]));
  const layers = Object.keys(names).sort();
  const out: Array<{ a: string; b: string; jaccard: number; both: number }> = [];
  for (let i = 0; i < layers.length; i++)
    for (let j = i + 1; j < layers.length; j++) {
      const A = names[layers[i]!]!;
      const B = names[layers[j]!]!;
      const both = [...A].filter((n) => B.has(n)).length;
      const union = A.size + B.size - both;
      out.push({ a: layers[i]!, b: layers[j]!, jaccard: union ? both / union : 0, both });
    }
  return out;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** A YYYY-MM-DD that is a real calendar date. */
export function isListDate(d: string): boolean {
  return DATE.test(d) && new Date(`${d}T00:00:00Z`).toISOString().slice(0, 10) === d;
}

/** A parsed JSON value checked to be a snapshot, or the one-line reason it is not. */
export function checkSnapshot(v: unknown): ListSnapshot | string {
  if (!v || typeof v !== 'object') return 'not a list snapshot (date, layers)';
  const o = v as { date?: unknown; layers?: unknown };
  if (typeof o.date !== 'string' || !isListDate(o.date)) return 'not a list snapshot: "date" must be YYYY-MM-DD';
  if (!o.layers || typeof o.layers !== 'object' || Array.isArray(o.layers)) return 'not a list snapshot: "layers" must be an object';
  for (const [layer, rules] of Object.entries(o.layers as Record<string, unknown>)) {
    if (!layer || !Array.isArray(rules)) return `not a list snapshot: layer "${layer}" must be a list of rules`;
    for (const [i, r] of rules.entries()) {
      const x = r as Partial<SnapshotRule> | null;
      if (
        !x ||
        typeof x.rule !== 'string' ||
        typeof x.protocol !== 'string' ||
        !Array.isArray(x.names) ||
        !x.names.every((n) => typeof n === 'string') ||
        typeof x.overblocks !== 'number' ||
        !Number.isSafeInteger(x.overblocks) ||
        x.overblocks < 0
      )
        return `not a list snapshot: layer "${layer}" rule ${i + 1} needs rule, protocol, names (strings) and overblocks (a count)`;
    }
  }
  return v as ListSnapshot;
}

/** Per snapshot date and layer: how many rules and how many distinct blocked names (the store counts them). */
export interface ListSize {
  date: string;
  layer: string;
  rules: number;
  names: number;
}

/** A rule of a diff with its block duration over the series (first and last snapshot that held it). */
export type TimedRule = SnapshotRule & Pick<RuleHistory, 'first_seen' | 'last_seen' | 'days'>;

export interface TimedDiff {
  from: string;
  to: string;
  layers: Record<string, { added: TimedRule[]; removed: TimedRule[]; kept: number }>;
}

/**
 * The diff of the snapshots at `from` and `to`, each added or removed rule with its block duration
 * (a removed rule: from its first to its last date; an added one: 0). `history`: the rules' histories
 * over the snapshots up to `to` (ruleHistory of that series, or the store's own count of it).
 */
export function timedDiff(history: RuleHistory[], from: ListSnapshot, to: ListSnapshot): TimedDiff {
  const hist = new Map(history.map((h) => [`${h.layer}\0${h.protocol}\0${h.rule}`, h]));
  const time = (layer: string, r: SnapshotRule): TimedRule => {
    const h = hist.get(`${layer}\0${keyOf(r)}`);
    return { ...r, first_seen: h?.first_seen ?? to.date, last_seen: h?.last_seen ?? to.date, days: h?.days ?? 0 };
  };
  const d = diffSnapshots(from, to);
  return {
    from: d.from,
    to: d.to,
    layers: Object.fromEntries(
      Object.entries(d.layers).map(([layer, x]) => [
        layer,
        { added: x.added.map((r) => time(layer, r)), removed: x.removed.map((r) => time(layer, r)), kept: x.kept },
      ]),
    ),
  };
}

export interface OverblockingRule extends SnapshotRule {
  layer: string;
}

/** The rules of a snapshot that overblock the most (ties: layer, then rule, code-unit order). */
export function topOverblocking(s: ListSnapshot, limit: number): OverblockingRule[] {
  return Object.entries(s.layers)
    .flatMap(([layer, rules]) => rules.filter((r) => r.overblocks > 0).map((r) => ({ layer, ...r })))
    .sort((a, b) => b.overblocks - a.overblocks || cmp(a.layer, b.layer) || cmp(keyOf(a), keyOf(b)))
    .slice(0, limit);
}

const csvRow = (fields: Array<string | number | boolean>) => `${fields.map(csvField).join(',')}\n`;

/** A snapshot as CSV: layer,protocol,rule,names,overblocks (names space-separated). */
export function snapshotCsv(s: ListSnapshot): string {
  let out = 'date,layer,protocol,rule,names,overblocks\n';
  for (const layer of Object.keys(s.layers).sort(cmp))
    for (const r of s.layers[layer]!) out += csvRow([s.date, layer, r.protocol, r.rule, r.names.join(' '), r.overblocks]);
  return out;
}

/** A diff as CSV; with durations (a TimedDiff) the columns first_seen,last_seen,days follow. */
export function diffCsv(d: SnapshotDiff | TimedDiff): string {
  const timed = Object.values(d.layers).some((x) => [...x.added, ...x.removed].some((r) => 'days' in r));
  let out = `layer,change,protocol,rule,names${timed ? ',first_seen,last_seen,days' : ''}\n`;
  for (const [layer, x] of Object.entries(d.layers))
    for (const [change, rules] of [
      ['added', x.added],
      ['removed', x.removed],
    ] as const)
      for (const r of rules as Array<SnapshotRule & Partial<TimedRule>>)
        out += csvRow([
          layer,
          change,
          r.protocol,
          r.rule,
          r.names.join(' '),
          ...(timed ? [r.first_seen ?? '', r.last_seen ?? '', r.days ?? 0] : []),
        ]);
  return out;
}

/** Rule histories as CSV. */
export function historyCsv(rules: RuleHistory[]): string {
  let out = 'layer,protocol,rule,first_seen,last_seen,days,present,seen\n';
  for (const r of rules) out += csvRow([r.layer, r.protocol, r.rule, r.first_seen, r.last_seen, r.days, r.present, r.seen]);
  return out;
}
