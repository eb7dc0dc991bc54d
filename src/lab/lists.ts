// Realistic censor lists from a seed, for the lab and the benchmarks: rule shapes in the published
// proportions (censors.md sections 1 and 5). GFW: `^(.*\.)?kw$` 85%, `^kw$` 9.3%, `^(.*\.)?kw`
// 3.8%, `kw$` 1.3%, unanchored 0.3% [SP25, GFWatch]. Henan: always end-anchored, 36% `kw$`
// (overblocking), the rest `(^|\.)kw$` and a few `^kw$`, plus second-level wildcards such as
// `*.com.au` (written `\.com\.au$`). Names are unique by construction (an invertible mix of the
// index, spelled in syllables), so a list of millions needs no set to deduplicate.
import { escapeRegexLiteral } from '../analysis/index.js';
import { prng } from '../model/index.js';

export type ListProfile = 'gfw' | 'henan';
export const LIST_PROFILES: readonly ListProfile[] = ['gfw', 'henan'];
/** The rule shapes, named as `infer` names them. */
export type RuleShape = 'exact' | 'suffix' | 'suffix-noend' | 'end' | 'unanchored' | 'prefix';

export interface GeneratedRule {
  /** The rule as a censor list line (a regex over the lower-cased name). */
  rule: string;
  shape: RuleShape;
  /** The literal the rule is built on (a name, `.com.au` for a wildcard, a word for unanchored). */
  kw: string;
}

const SYLLABLES = [
  'ba',
  'bo',
  'chi',
  'da',
  'de',
  'fa',
  'fu',
  'ga',
  'gu',
  'ha',
  'hu',
  'ji',
  'ka',
  'ke',
  'la',
  'li',
  'lu',
  'ma',
  'mi',
  'na',
  'ni',
  'pa',
  'po',
  'qi',
  'ra',
  'ru',
  'sa',
  'shi',
  'ta',
  'ti',
  'wa',
  'wu',
  'xi',
  'ya',
  'yu',
  'za',
  'zhe',
  'zo',
  'an',
  'en',
  'in',
  'on',
  'ang',
  'eng',
  'ong',
  'ai',
  'ei',
  'ao',
  'ou',
  'tv',
  'net',
  'web',
  'hot',
  'top',
  'vip',
  'app',
  'bet',
  'news',
  'live',
  'shop',
  'club',
  'media',
  'game',
];
const TLDS: Array<[string, number]> = [
  ['com', 50],
  ['net', 10],
  ['org', 8],
  ['cn', 6],
  ['com.cn', 4],
  ['info', 4],
  ['top', 4],
  ['xyz', 3],
  ['io', 2],
  ['me', 2],
  ['tv', 2],
  ['cc', 2],
  ['hk', 1],
  ['tw', 1],
  ['jp', 1],
];
/** Henan's second-level wildcards (SP25 names *.com.au, *.co.za, *.org.uk); none is a TLD above. */
export const WILDCARD_SUFFIXES = ['com.au', 'co.za', 'org.uk', 'co.uk', 'com.br', 'co.nz', 'com.sg', 'co.in', 'com.my', 'com.ar'];
const GFW_SHAPES: Array<[RuleShape, number]> = [
  ['suffix', 85.3],
  ['exact', 9.3],
  ['suffix-noend', 3.8],
  ['end', 1.3],
  ['unanchored', 0.3],
];
const HENAN_SHAPES: Array<[RuleShape, number]> = [
  ['suffix', 59.99],
  ['end', 36],
  ['exact', 4],
  ['suffix', 0.01],
];

/** The list line for a shape over a literal (the GFW-style spelling `^(.*\.)?` for suffixes). */
export function ruleFor(shape: RuleShape, kw: string): string {
  const e = escapeRegexLiteral(kw);
  switch (shape) {
    case 'exact':
      return `^${e}$`;
    case 'suffix':
      return `^(.*\\.)?${e}$`;
    case 'suffix-noend':
      return `^(.*\\.)?${e}`;
    case 'end':
      return `${e}$`;
    case 'prefix':
      return `^${e}`;
    case 'unanchored':
      return e;
  }
}

function pick<T>(rng: () => number, table: Array<[T, number]>): T {
  const total = table.reduce((a, [, w]) => a + w, 0);
  let x = rng() * total;
  for (const [v, w] of table) if ((x -= w) < 0) return v;
  return table[table.length - 1]![0];
}

/** An invertible 32-bit mix: distinct indexes give distinct outputs. */
function mix(i: number, seed: number): number {
  let x = (i ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** A syllable spelling of n (injective: a base-64 numeral with a non-zero leading digit after the first). */
function spell(n: number): string {
  let s = '';
  do {
    s = SYLLABLES[n % SYLLABLES.length]! + s;
    n = Math.floor(n / SYLLABLES.length);
  } while (n > 0);
  return s;
}

/**
 * The base name of index i: unique per (seed, i) for i < 2^32. Syllables can glue ambiguously
 * ("ba"+"an" vs "ban"), so a separator digit keeps the spelling injective.
 */
export function generatedName(seed: number, i: number, rng: () => number): string {
  const m = mix(i, seed);
  const base = `${spell(m >>> 16)}${m % 10}${spell(m & 0xffff)}`;
  return `${base}.${pick(rng, TLDS)}`;
}

/** `count` rules of a profile, the same for the same seed. */
export function* generateRules(seed: number, count: number, profile: ListProfile): Generator<GeneratedRule> {
  const rng = prng(seed ^ 0x5bd1e995);
  const shapes = profile === 'gfw' ? GFW_SHAPES : HENAN_SHAPES;
  let wildcards = 0;
  for (let i = 0; i < count; i++) {
    // Henan's wildcards: one in 10,000 rules, each suffix once.
    if (profile === 'henan' && wildcards < WILDCARD_SUFFIXES.length && rng() < 1e-4) {
      const kw = `.${WILDCARD_SUFFIXES[wildcards++]}`;
      yield { rule: `${escapeRegexLiteral(kw)}$`, shape: 'end', kw };
      continue;
    }
    const shape = pick(rng, shapes);
    const name = generatedName(seed, i, rng);
    // An unanchored rule is a word (the base without its digit and TLD); the others are names.
    const kw = shape === 'unanchored' ? `${name.split('.')[0]!.replace(/[0-9]/g, 'q')}` : name;
    yield { rule: ruleFor(shape, kw), shape, kw };
  }
}
