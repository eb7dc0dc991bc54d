// Infers the RULE behind a blocked name from the blocking of its variants (DESIGN.md "Rules and
// lists"; the method of GFWatch and SP25, censors.md sections 1 and 5), and isolates the keyword
// behind a blocked URL path by bisection (Rambert21). Pure: the measurements are an oracle passed
// in (`blocked(candidate)`), so this file does no I/O and has no clock.
//
// The shapes, as the censors' lists write them:
//   exact `^kw$`, suffix `(^|\.)kw$` (= `^(.*\.)?kw$`), end `kw$` (overblocks `notkw`),
//   suffix-noend `(^|\.)kw` (overblocks `kw.evil.org`), prefix `^kw`, unanchored `kw`.
// End-anchored rules block every suffix of the name down to kw and no name with a label after it;
// unanchored-on-the-right ones do not care what follows. So: one variant decides the right anchor,
// a bisection over the name's suffixes (or substrings) finds kw, and two variants on kw decide the
// left anchor (a label boundary, none, or the start).

export type InferredShape = 'exact' | 'suffix' | 'end' | 'suffix-noend' | 'prefix' | 'unanchored';

/** The nine variants of the published method, named. */
export const VARIANTS = [
  'exact',
  'child',
  'left_pad',
  'right_label',
  'right_pad',
  'both_labels',
  'left_pad_right_label',
  'parent',
  'sibling',
] as const;
export type VariantName = (typeof VARIANTS)[number];

export interface InferredRule {
  name: string;
  shape: InferredShape;
  /** The literal the rule is built on (`.com.au` for a second-level wildcard). */
  kw: string;
  /** A JavaScript regex over the lower-cased name that blocks what the censor's rule blocks. */
  rule: string;
  variants: Partial<Record<VariantName, boolean>>;
  /** Blocked names seen that are neither the name nor its subdomains. */
  overblocks: string[];
  /** Trials spent (each distinct candidate once). */
  queries: number;
}

/** `s` as a regex matching exactly it (also inside a character class: `-` is escaped too). */
export function escapeRegexLiteral(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
}

export function ruleOf(shape: InferredShape, kw: string): string {
  const e = escapeRegexLiteral(kw);
  switch (shape) {
    case 'exact':
      return `^${e}$`;
    case 'suffix':
      return `(^|\\.)${e}$`;
    case 'end':
      return `${e}$`;
    case 'suffix-noend':
      return `(^|\\.)${e}`;
    case 'prefix':
      return `^${e}`;
    case 'unanchored':
      return e;
  }
}

export type Oracle = (candidate: string) => Promise<boolean>;

/** Memoises an oracle and counts distinct trials. */
class Trials {
  readonly seen = new Map<string, boolean>();
  constructor(private readonly oracle: Oracle) {}
  async blocked(c: string): Promise<boolean> {
    const hit = this.seen.get(c);
    if (hit !== undefined) return hit;
    const b = await this.oracle(c);
    this.seen.set(c, b);
    return b;
  }
  get count(): number {
    return this.seen.size;
  }
}

/** Largest i in [lo, hi] with ok(i) true, given ok(lo) true and ok monotone (true then false). */
async function lastTrue(lo: number, hi: number, ok: (i: number) => Promise<boolean>): Promise<number> {
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (await ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Smallest j in [lo, hi] with ok(j) true, given ok(hi) true and ok monotone (false then true). */
async function firstTrue(lo: number, hi: number, ok: (j: number) => Promise<boolean>): Promise<number> {
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (await ok(mid)) hi = mid;
    else lo = mid + 1;
  }
  return hi;
}

const isSubOrSelf = (x: string, n: string) => x === n || x.endsWith(`.${n}`);

/**
 * The rule behind a blocked `name`, or null when the name itself is not blocked. `pad` is a
 * label of letters no list holds (a random one per name, from the caller), used for padding.
 */
export async function inferRule(name: string, blockedOracle: Oracle, pad: string): Promise<InferredRule | null> {
  const n = name.toLowerCase().replace(/\.$/, '');
  const t = new Trials(blockedOracle);
  const variants: Partial<Record<VariantName, boolean>> = {};
  const v = async (k: VariantName, c: string | null) => {
    if (c === null || c === '' || c.startsWith('.')) return false;
    const b = await t.blocked(c);
    variants[k] = b;
    return b;
  };
  if (!(await v('exact', n))) return null;
  const dot = n.indexOf('.');
  const parent = dot > 0 ? n.slice(dot + 1) : null;
  await v('child', `${pad}.${n}`);
  await v('left_pad', `${pad}${n}`);
  const rightLabel = await v('right_label', `${n}.${pad}`);
  await v('right_pad', `${n}${pad}`);
  await v('both_labels', `${pad}.${n}.${pad}`);
  await v('left_pad_right_label', `${pad}${n}.${pad}`);
  await v('parent', parent);
  await v('sibling', parent ? `${pad}.${parent}` : null);

  // A candidate that would start or end with a dot is not a name: try the one a character shorter,
  // which keeps the bisections monotone.
  const suffix = (s: string, i: number) => {
    let c = s.slice(i);
    while (c.startsWith('.')) c = c.slice(1);
    return c;
  };
  const prefix = (s: string, j: number) => {
    let c = s.slice(0, j);
    while (c.endsWith('.')) c = c.slice(0, -1);
    return c;
  };
  const ok = async (c: string) => c !== '' && (await t.blocked(c));

  let shape: InferredShape;
  let kw: string;
  if (!rightLabel) {
    // End-anchored: the shortest blocked suffix is kw.
    const i = await lastTrue(0, n.length - 1, (i) => ok(suffix(n, i)));
    kw = suffix(n, i);
    const kdot = kw.indexOf('.');
    const kparent = kdot > 0 ? kw.slice(kdot + 1) : null;
    // A wildcard (Henan's second-level `\.com\.au$`, or `\.gov$`) blocks every sibling of kw, not kw's parent.
    if (kparent && !(await ok(kparent)) && (await ok(`${pad}.${kparent}`)) && (await ok(`${pad}${pad}.${kparent}`))) {
      shape = 'end';
      kw = `.${kparent}`;
    } else if (await ok(`${pad}${kw}`)) shape = 'end';
    else if (await ok(`${pad}.${kw}`)) shape = 'suffix';
    else shape = 'exact';
  } else {
    // Not anchored on the right: trim on the left while blocked, then on the right.
    const i = await lastTrue(0, n.length - 1, (i) => ok(suffix(n, i)));
    const s = suffix(n, i);
    const j = await firstTrue(1, s.length, (j) => ok(prefix(s, j)));
    kw = prefix(s, j);
    if (await ok(`${pad}${kw}`)) shape = 'unanchored';
    else if (await ok(`${pad}.${kw}`)) shape = 'suffix-noend';
    else shape = 'prefix';
  }
  const overblocks = [...t.seen].filter(([c, b]) => b && !isSubOrSelf(c, n)).map(([c]) => c);
  return { name: n, shape, kw, rule: ruleOf(shape, kw), variants, overblocks, queries: t.count };
}

export interface IsolatedKeyword {
  keyword: string;
  queries: number;
}

/**
 * The minimal substring of `text` (a %-decoded URL path) whose presence alone still triggers the
 * block: bisect the start, then the end. `blocked(sub)` must test `sub` on its own; each trial
 * should come from a fresh source (address or port, or after the residual pause) so that residual
 * blocking left by one trial does not read as a block of the next. Null when `text` is not blocked.
 */
export async function isolateKeyword(text: string, blockedOracle: Oracle): Promise<IsolatedKeyword | null> {
  const t = new Trials(blockedOracle);
  if (!(await t.blocked(text))) return null;
  const i = await lastTrue(0, text.length - 1, async (i) => t.blocked(text.slice(i)));
  const s = text.slice(i);
  const j = await firstTrue(1, s.length, async (j) => t.blocked(s.slice(0, j)));
  return { keyword: s.slice(0, j), queries: t.count };
}
