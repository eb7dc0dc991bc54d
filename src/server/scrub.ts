// The collector's own privacy pass (the probe scrubs too, but the server never trusts that):
// every string of a measurement, keys included, loses the submitter's address.
import ipaddr from 'ipaddr.js';

export const SCRUBBED = '[scrubbed]';

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The textual forms of the submitter's address worth looking for, or [] when there is nothing to
 * scrub. Loopback and unspecified addresses are exempt: a probe that withholds its address writes
 * 127.0.0.1 (OONI's convention) and lab measurements are full of 127.0.0.0/8 addresses, so a
 * submitter on loopback would otherwise erase the evidence.
 */
export function addressForms(ip: string): string[] {
  if (!ipaddr.isValid(ip)) return [];
  let addr = ipaddr.parse(ip);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  const range = addr.range();
  if (range === 'loopback' || range === 'unspecified') return [];
  if (addr.kind() === 'ipv4') return [addr.toString()];
  const v6 = addr as ipaddr.IPv6;
  return [...new Set([v6.toString(), v6.toNormalizedString()])];
}

const cache = new Map<string, ((s: string) => string) | null>();

/** A function replacing whole occurrences of the forms (1.2.3.4 does not hit 11.2.3.45). Cached per address. */
export function scrubberFor(ip: string): ((s: string) => string) | null {
  const hit = cache.get(ip);
  if (hit !== undefined) return hit;
  const made = makeScrubber(ip);
  if (cache.size >= 1024) cache.clear(); // bounded: a busy collector sees many clients
  cache.set(ip, made);
  return made;
}

function makeScrubber(ip: string): ((s: string) => string) | null {
  const forms = addressForms(ip);
  if (!forms.length) return null;
  const parts = forms.map((f) => (f.includes(':') ? `(?<![0-9a-f:])${escapeRe(f)}(?![0-9a-f:])` : `(?<![0-9.])${escapeRe(f)}(?![0-9]|\\.[0-9])`));
  const re = new RegExp(parts.join('|'), 'gi');
  return (s) => s.replace(re, SCRUBBED);
}

/** A deep copy with every string and key scrubbed, and how many strings changed. */
export function scrubMeasurement<T>(value: T, ip: string): { value: T; replaced: number } {
  const scrub = scrubberFor(ip);
  if (!scrub) return { value, replaced: 0 };
  let replaced = 0;
  const s = (x: string) => {
    const y = scrub(x);
    if (y !== x) replaced++;
    return y;
  };
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return s(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[s(k)] = walk(x);
      return out;
    }
    return v;
  };
  return { value: walk(value) as T, replaced };
}

/** Nesting depth of a JSON value, measured without recursion (hostile input may be deep). */
export function jsonDepth(value: unknown, limit = 1000): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (x !== null && typeof x === 'object') stack.push([x, d + 1]);
  }
  return max;
}
