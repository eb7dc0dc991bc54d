// Privacy: the probe's own IP never appears in a measurement. Like OONI, every string of the
// document is scrubbed (not only probe_ip), replacing the address with "[scrubbed]".
import net from 'node:net';

export const SCRUBBED = '[scrubbed]';

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A matcher for whole occurrences of the addresses (so 1.2.3.4 does not hit 11.2.3.45). */
export function scrubberFor(ips: string[]): ((s: string) => string) | null {
  const list = [...new Set(ips.filter((ip) => net.isIP(ip)))];
  if (list.length === 0) return null;
  const parts = list.map((ip) => (net.isIP(ip) === 4 ? `(?<![\\d.])${escape(ip)}(?!\\d|\\.\\d)` : `(?<![0-9a-fA-F:])${escape(ip)}(?![0-9a-fA-F:])`));
  const re = new RegExp(parts.join('|'), 'gi');
  return (s) => (s.length >= 2 ? s.replace(re, SCRUBBED) : s);
}

/** Deep copy of `value` with every string (keys included) scrubbed. */
export function scrubValue<T>(value: T, scrub: ((s: string) => string) | null): T {
  if (!scrub) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return scrub(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[scrub(k)] = walk(x);
      return out;
    }
    return v;
  };
  return walk(value) as T;
}
