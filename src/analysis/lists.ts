// Lists as data (DESIGN.md "Rules and lists"): per layer and date, a snapshot of what is known to be
// blocked (the rules `infer` found and the names behind them); snapshots compared (added, removed),
// a series of them gives each rule's block duration, and layers are compared by the Jaccard index
// of their blocked names (SP25: Henan vs GFW 0.0885). Pure: snapshots in, tables out.

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
        e.days = day(e.last_seen) - day(e.first_seen);
        e.present = s.date === latest;
        e.seen++;
        h.set(k, e);
      }
  return [...h.values()].sort((a, b) => cmp(a.layer, b.layer) || b.days - a.days || cmp(a.rule, b.rule));
}

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

/** RFC 4180 field. */
export function csvField(v: string | number | boolean): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
