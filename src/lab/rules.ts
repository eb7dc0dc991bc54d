// How a censor matches names and URLs. Rules are regexes over the lower-cased name, tested
// unanchored unless the rule anchors itself, exactly as the inferred GFW/Henan rules are written
// (censors.md section 1): `(^|\.)kw$` is exact-or-subdomain, `kw$` overblocks `notkw`.
// Keywords are substrings of the %-decoded path or Host (Rambert21: path and Host only).
import { createHash } from 'node:crypto';

export class RuleSet {
  private readonly res: RegExp[];
  constructor(readonly sources: readonly string[]) {
    this.res = sources.map((s) => new RegExp(s, 'i'));
  }
  get empty(): boolean {
    return this.res.length === 0;
  }
  matches(name: string | null | undefined): boolean {
    if (!name) return false;
    const n = name.toLowerCase().replace(/\.$/, '');
    return this.res.some((r) => r.test(n));
  }
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

export function containsKeyword(keywords: readonly string[] | undefined, ...texts: string[]): boolean {
  if (!keywords?.length) return false;
  const hay = texts.map((t) => t.toLowerCase());
  return keywords.some((k) => hay.some((h) => h.includes(k.toLowerCase())));
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

