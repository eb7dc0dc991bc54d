// How a censor matches names and URLs. Rules are regexes over the lower-cased name, tested
// unanchored unless the rule anchors itself, exactly as the inferred GFW/Henan rules are written
// (censors.md section 1): `(^|\.)kw$` is exact-or-subdomain, `kw$` overblocks `notkw`.
// Keywords are substrings of the %-decoded path or Host (Rambert21: path and Host only).
//
// Lists are large (Henan: 4,196,532 names, censors.md section 5), so a rule whose shape is one of
// the published ones over a literal name (`^kw$`, `(^|\.)kw$` = `^(.*\.)?kw$`, `kw$`,
// `(^|\.)kw` = `^(.*\.)?kw`, `^kw`, `kw`) is not compiled to a RegExp: its literal goes into one
// of two compact hash tables (end-anchored shapes keyed by the reversed literal, the others by the
// literal) and a name is matched by one walk over its suffixes and one over its substrings, with
// the shape checked at each hit. Any other rule stays a RegExp. The answer is the RegExp's, byte
// for byte: the `.*` of `^(.*\.)?` does not cross a line terminator, and neither does the table.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';

// Shape bits of a literal in the table of end-anchored shapes (keys reversed).
const EXACT = 1; // ^kw$
const LABEL_SUFFIX = 2; // (^|\.)kw$
const LABEL_SUFFIX_DS = 4; // ^(.*\.)?kw$  (the `.*` stops at line terminators)
const ENDS = 8; // kw$
// Shape bits in the table of the other shapes (keys as written).
const PREFIX = 1; // ^kw
const LABEL_START = 2; // (^|\.)kw
const LABEL_START_DS = 4; // ^(.*\.)?kw
const ANY = 8; // kw

const MAX_KEY = 255;
/** murmur3's finaliser: spreads FNV-1a's bits before they index the table (fewer probe clusters). */
function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * An open-addressing hash set of short byte strings, each with a byte of shape bits, stored in one
 * arena: about (length + 10) bytes per key, no object per key, so 4 million rules stay compact.
 */
class LiteralTable {
  private arena = new Uint8Array(1 << 16);
  private used = 0;
  private off = new Uint32Array(1024);
  private len = new Uint8Array(1024);
  private bits = new Uint8Array(1024);
  private slots = new Int32Array(2048); // key index + 1, 0 = empty
  count = 0;
  /** lengths[l] = 1 when some key has length l: walks look up only those lengths. */
  readonly lengths = new Uint8Array(MAX_KEY + 1);
  maxLen = 0;
  /** Union of the shape bits of all keys. */
  allBits = 0;

  private static hash(b: Uint8Array, start: number, n: number): number {
    let h = FNV_OFFSET;
    for (let i = start; i < start + n; i++) h = Math.imul(h ^ b[i]!, FNV_PRIME);
    return h >>> 0;
  }

  private equal(k: number, b: Uint8Array, start: number, n: number): boolean {
    if (this.len[k] !== n) return false;
    const o = this.off[k]!;
    for (let i = 0; i < n; i++) if (this.arena[o + i] !== b[start + i]) return false;
    return true;
  }

  /** Shape bits of the key b[start, start+n) whose FNV-1a hash is h, 0 when absent. */
  find(h: number, b: Uint8Array, start: number, n: number): number {
    const mask = this.slots.length - 1;
    for (let s = fmix(h) & mask; ; s = (s + 1) & mask) {
      const k = this.slots[s]!;
      if (k === 0) return 0;
      if (this.equal(k - 1, b, start, n)) return this.bits[k - 1]!;
    }
  }

  add(b: Uint8Array, n: number, bit: number): void {
    this.allBits |= bit;
    const h = LiteralTable.hash(b, 0, n);
    const mask = this.slots.length - 1;
    for (let s = fmix(h) & mask; ; s = (s + 1) & mask) {
      const k = this.slots[s]!;
      if (k === 0) break;
      if (this.equal(k - 1, b, 0, n)) {
        this.bits[k - 1]! |= bit;
        return;
      }
    }
    if (this.count === this.off.length) {
      const grow = <T extends Uint8Array | Uint32Array>(a: T, make: (n: number) => T): T => {
        const x = make(a.length * 2);
        x.set(a);
        return x;
      };
      this.off = grow(this.off, (m) => new Uint32Array(m));
      this.len = grow(this.len, (m) => new Uint8Array(m));
      this.bits = grow(this.bits, (m) => new Uint8Array(m));
    }
    if (this.used + n > this.arena.length) {
      const a = new Uint8Array(Math.max(this.arena.length * 2, this.used + n));
      a.set(this.arena.subarray(0, this.used));
      this.arena = a;
    }
    const k = this.count++;
    for (let i = 0; i < n; i++) this.arena[this.used + i] = b[i]!;
    this.off[k] = this.used;
    this.len[k] = n;
    this.bits[k] = bit;
    this.used += n;
    this.lengths[n] = 1;
    if (n > this.maxLen) this.maxLen = n;
    if (this.count * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    else this.place(k, h);
  }

  private place(k: number, h: number): void {
    const mask = this.slots.length - 1;
    let s = fmix(h) & mask;
    while (this.slots[s] !== 0) s = (s + 1) & mask;
    this.slots[s] = k + 1;
  }

  private rehash(size: number): void {
    this.slots = new Int32Array(size);
    for (let k = 0; k < this.count; k++) this.place(k, LiteralTable.hash(this.arena, this.off[k]!, this.len[k]!));
  }

  /** Gives back the slack of the growth arrays once loading is done. */
  trim(): void {
    this.arena = this.arena.slice(0, this.used);
    this.off = this.off.slice(0, this.count);
    this.len = this.len.slice(0, this.count);
    this.bits = this.bits.slice(0, this.count);
  }

  bytes(): number {
    return this.arena.byteLength + this.off.byteLength + this.len.byteLength + this.bits.byteLength + this.slots.byteLength;
  }
}

const LINE_TERMINATOR = /[\n\r\u2028\u2029]/;

/** One compiled group of rules (the inline ones, or one list file). */
class CompiledRules {
  readonly ends = new LiteralTable(); // keys reversed
  readonly starts = new LiteralTable();
  readonly regexes: RegExp[] = [];
  size = 0;
  private readonly scratch = new Uint8Array(MAX_KEY + 1);

  /** Adds one rule written as `src` (bytes b[s, e)); returns an error message when it is not a valid regex. */
  add(b: Uint8Array, s: number, e: number, text: () => string): string | null {
    this.size++;
    if (this.addShaped(b, s, e)) return null;
    const src = text();
    try {
      this.regexes.push(new RegExp(src, 'i'));
      return null;
    } catch (err) {
      this.size--;
      return `not a valid regular expression: ${(err as Error).message}`;
    }
  }

  /** Recognises the published shapes over a literal; false sends the rule to the RegExp path. */
  private addShaped(b: Uint8Array, s: number, e: number): boolean {
    let end = false;
    if (e > s && b[e - 1] === 0x24 /* $ */ && !(e - 2 >= s && b[e - 2] === 0x5c && !escapedAt(b, s, e - 2))) {
      end = true;
      e--;
    }
    let head: 'none' | 'caret' | 'label' | 'label_ds' = 'none';
    for (const [p, kind] of HEADS) {
      if (startsWithAscii(b, s, e, p)) {
        head = kind;
        s += p.length;
        break;
      }
    }
    // The literal: [a-z0-9_-] (any case: the rule is case-insensitive), \. \- \_
    let n = 0;
    const out = this.scratch;
    for (let i = s; i < e; i++) {
      let c = b[i]!;
      if (c === 0x5c) {
        i++;
        if (i >= e) return false;
        c = b[i]!;
        if (c !== 0x2e && c !== 0x2d && c !== 0x5f) return false;
      } else if (c >= 0x41 && c <= 0x5a) c += 0x20;
      else if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) return false;
      if (n >= MAX_KEY) return false;
      out[n++] = c;
    }
    if (n === 0) return false;
    if (end) {
      const bit = head === 'caret' ? EXACT : head === 'label' ? LABEL_SUFFIX : head === 'label_ds' ? LABEL_SUFFIX_DS : ENDS;
      out.subarray(0, n).reverse();
      this.ends.add(out, n, bit);
    } else {
      const bit = head === 'caret' ? PREFIX : head === 'label' ? LABEL_START : head === 'label_ds' ? LABEL_START_DS : ANY;
      this.starts.add(out, n, bit);
    }
    return true;
  }

  trim(): void {
    this.ends.trim();
    this.starts.trim();
  }

  /** `n`: the lower-cased name; `b`: its UTF-16 units as bytes (0 for non-ASCII: no key holds 0). */
  matches(n: string, b: Uint8Array, rev: Uint8Array, lt: number): boolean {
    const L = n.length;
    // End-anchored shapes: one walk over the name's suffixes (prefixes of the reversed name).
    const E = this.ends;
    if (E.count) {
      let h = FNV_OFFSET;
      const max = Math.min(L, E.maxLen);
      for (let l = 1; l <= max; l++) {
        h = Math.imul(h ^ rev[l - 1]!, FNV_PRIME);
        if (!E.lengths[l]) continue;
        const bits = E.find(h >>> 0, rev, 0, l);
        if (!bits) continue;
        if (bits & ENDS) return true;
        if (l === L) return true; // EXACT and both label shapes hold for the whole name
        if (b[L - l - 1] === 0x2e) {
          if (bits & LABEL_SUFFIX) return true;
          if (bits & LABEL_SUFFIX_DS && (lt < 0 || lt >= L - l - 1)) return true;
        }
      }
    }
    const S = this.starts;
    if (S.count) {
      const anywhere = (S.allBits & ANY) !== 0;
      for (let p = 0; p < L; p++) {
        const labelStart = p === 0 || b[p - 1] === 0x2e;
        if (!anywhere && !labelStart) continue;
        if (p > 0 && !anywhere && !(S.allBits & (LABEL_START | LABEL_START_DS))) break;
        let h = FNV_OFFSET;
        const max = Math.min(L - p, S.maxLen);
        for (let l = 1; l <= max; l++) {
          h = Math.imul(h ^ b[p + l - 1]!, FNV_PRIME);
          if (!S.lengths[l]) continue;
          const bits = S.find(h >>> 0, b, p, l);
          if (!bits) continue;
          if (bits & ANY) return true;
          if (p === 0) return true; // PREFIX and both label shapes hold at the start
          if (labelStart) {
            if (bits & LABEL_START) return true;
            if (bits & LABEL_START_DS && (lt < 0 || lt >= p - 1)) return true;
          }
        }
      }
    }
    for (const r of this.regexes) if (r.test(n)) return true;
    return false;
  }

  bytes(): number {
    return this.ends.bytes() + this.starts.bytes();
  }
}

const HEADS: Array<[string, 'caret' | 'label' | 'label_ds']> = [
  ['(^|\\.)', 'label'],
  ['(?:^|\\.)', 'label'],
  ['^(.*\\.)?', 'label_ds'],
  ['^(?:.*\\.)?', 'label_ds'],
  ['^', 'caret'],
];

function startsWithAscii(b: Uint8Array, s: number, e: number, p: string): boolean {
  if (e - s < p.length) return false;
  for (let i = 0; i < p.length; i++) if (b[s + i] !== p.charCodeAt(i)) return false;
  return true;
}

/** Whether the byte at i is itself escaped by an odd run of backslashes before it. */
function escapedAt(b: Uint8Array, s: number, i: number): boolean {
  let k = 0;
  for (let j = i - 1; j >= s && b[j] === 0x5c; j--) k++;
  return k % 2 === 1;
}

/** A list entry that cannot be used, located in its file. */
export class ListError extends Error {
  readonly code = 'WALLSCOPE_LIST_INVALID';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'ListError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Calls `onLine(bytes, start, end, lineNumber)` for every entry of a list file: one entry a line,
 * surrounding blanks trimmed, blank lines and lines starting with `#` skipped. Read in chunks,
 * so a list of any size costs one chunk of memory beyond what `onLine` keeps.
 */
export function forEachListLine(file: string, onLine: (b: Uint8Array, s: number, e: number, line: number) => void): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new ListError(file, 0, `cannot read the list: ${(e as Error).message}`);
  }
  try {
    let buf = Buffer.alloc(1 << 20);
    let have = 0;
    let line = 0;
    let eof = false;
    while (!eof) {
      if (have === buf.length) {
        const bigger = Buffer.alloc(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      const got = readSync(fd, buf, have, buf.length - have, null);
      if (got === 0) eof = true;
      have += got;
      let s = 0;
      for (;;) {
        let nl = buf.indexOf(0x0a, s);
        if (nl < 0 || nl >= have) {
          if (!eof || s >= have) break;
          nl = have;
        }
        line++;
        let a = s;
        let z = nl;
        while (a < z && (buf[a] === 0x20 || buf[a] === 0x09 || buf[a] === 0x0d)) a++;
        while (z > a && (buf[z - 1] === 0x20 || buf[z - 1] === 0x09 || buf[z - 1] === 0x0d)) z--;
        if (z > a && buf[a] !== 0x23 /* # */) onLine(buf, a, z, line);
        s = nl + 1;
      }
      buf.copy(buf, 0, Math.min(s, have), have);
      have -= Math.min(s, have);
    }
  } finally {
    closeSync(fd);
  }
}

function decodeLine(file: string, line: number, b: Uint8Array, s: number, e: number): string {
  try {
    return utf8.decode(b.subarray(s, e));
  } catch {
    throw new ListError(file, line, 'not valid UTF-8');
  }
}

/** Compiled list files, by path, reused while the file is unchanged (validation and the lab share one load). */
const listCache = new Map<string, { mtimeMs: number; size: number; rules: CompiledRules }>();

function compileListFile(file: string): CompiledRules {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new ListError(file, 0, `cannot read the list: ${(e as Error).message}`);
  }
  const hit = listCache.get(file);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.rules;
  const rules = new CompiledRules();
  forEachListLine(file, (b, s, e, line) => {
    const err = rules.add(b, s, e, () => decodeLine(file, line, b, s, e));
    if (err) throw new ListError(file, line, err);
  });
  rules.trim();
  listCache.set(file, { mtimeMs: st.mtimeMs, size: st.size, rules });
  return rules;
}

/** Reads and checks a rule list (a bad line throws ListError naming file:line). */
export function checkRuleFile(file: string): number {
  return compileListFile(file).size;
}

const encoder = new TextEncoder();

export class RuleSet {
  private readonly parts: CompiledRules[] = [];
  /**
   * `sources`: rules written inline; `files`: list files (absolute paths) of rules in the same
   * language, one a line. Inline and file rules add up.
   */
  constructor(
    readonly sources: readonly string[],
    files: readonly string[] = [],
  ) {
    if (sources.length) {
      const inline = new CompiledRules();
      for (const src of sources) {
        const b = encoder.encode(src);
        const err = inline.add(b, 0, b.length, () => src);
        if (err) throw new SyntaxError(`${src}: ${err}`);
      }
      this.parts.push(inline);
    }
    for (const f of files) this.parts.push(compileListFile(f));
  }
  get empty(): boolean {
    return this.size === 0;
  }
  /** Number of rules. */
  get size(): number {
    return this.parts.reduce((a, p) => a + p.size, 0);
  }
  /** Bytes held by the literal tables (RegExp rules not counted). */
  get tableBytes(): number {
    return this.parts.reduce((a, p) => a + p.bytes(), 0);
  }
  matches(name: string | null | undefined): boolean {
    if (!name) return false;
    const n = name.toLowerCase().replace(/\.$/, '');
    if (!this.parts.length) return false;
    const L = n.length;
    const b = new Uint8Array(L);
    const rev = new Uint8Array(L);
    for (let i = 0; i < L; i++) {
      const c = n.charCodeAt(i);
      b[i] = c < 0x80 ? c : 0;
      rev[L - 1 - i] = b[i]!;
    }
    const lt = LINE_TERMINATOR.test(n) ? n.search(LINE_TERMINATOR) : -1;
    return this.parts.some((p) => p.matches(n, b, rev, lt));
  }
}

/**
 * Keywords: substrings of the %-decoded path or the Host, case-insensitive (Rambert21). A set of
 * keywords by length, so a long keyword list costs one lookup per (position, keyword length).
 */
export class KeywordSet {
  private readonly words = new Set<string>();
  private lengths: number[] = [];
  constructor(keywords: readonly string[] = [], files: readonly string[] = []) {
    for (const k of keywords) this.addWord(k);
    for (const f of files)
      forEachListLine(f, (b, s, e, line) => {
        this.addWord(decodeLine(f, line, b, s, e));
      });
    this.lengths = [...new Set([...this.words].map((w) => w.length))].sort((a, b) => a - b);
  }
  private addWord(k: string): void {
    if (k.length) this.words.add(k.toLowerCase());
  }
  get size(): number {
    return this.words.size;
  }
  /** Whether any of the texts contains a keyword. */
  matches(...texts: string[]): boolean {
    if (!this.words.size) return false;
    for (const t of texts) {
      const h = t.toLowerCase();
      for (let p = 0; p < h.length; p++)
        for (const l of this.lengths) {
          if (p + l > h.length) break;
          if (this.words.has(h.substr(p, l))) return true;
        }
    }
    return false;
  }
}

/** Reads and checks a keyword list (one keyword a line; invalid UTF-8 throws ListError naming file:line). */
export function checkKeywordFile(file: string): number {
  return new KeywordSet([], [file]).size;
}

/** %-decodes a URL path as the GFW does before keyword matching; invalid escapes are kept as is. */
export function decodePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path.replace(/%([0-9a-f]{2})/gi, (m, h: string) => {
      const c = parseInt(h, 16);
      return c < 0x80 ? String.fromCharCode(c) : m;
    });
  }
}

/**
 * Whether a censor with `sampling` acts on flows for `name`. Deterministic in (seed, censor, name)
 * so that the ground truth can be computed from the scenario: a sampled censor consistently lets a
 * given name through, which is what a measured ~75% reset rate looks like across a test list.
 */
export function sampled(seed: number, censor: string, name: string, sampling: number | undefined): boolean {
  if (sampling === undefined || sampling >= 1) return true;
  if (sampling <= 0) return false;
  const h = createHash('sha256').update(`${seed}\0${censor}\0${name.toLowerCase()}`).digest();
  return h.readUInt32BE(0) / 2 ** 32 < sampling;
}
