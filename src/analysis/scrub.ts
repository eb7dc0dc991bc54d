// Privacy: the probe's own IP never appears in a measurement. Like OONI, every string of the
// document is scrubbed (not only probe_ip), replacing the address with "[scrubbed]".
import ipaddr from 'ipaddr.js';

export const SCRUBBED = '[scrubbed]';

/** 4, 6 or 0 like node:net's isIP (analysis does no I/O, so not node:net): dotted quads only for v4. */
function ipKind(ip: string): 0 | 4 | 6 {
  if (ipaddr.IPv4.isValidFourPartDecimal(ip)) return 4;
  return ipaddr.IPv6.isValid(ip) ? 6 : 0;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A matcher for whole occurrences of the addresses (so 1.2.3.4 does not hit 11.2.3.45). */
export function scrubberFor(ips: string[]): ((s: string) => string) | null {
  const list = [...new Set(ips.filter((ip) => ipKind(ip) !== 0))];
  if (list.length === 0) return null;
  const parts = list.map((ip) =>
    ipKind(ip) === 4 ? `(?<![\\d.])${escape(ip)}(?!\\d|\\.\\d)` : `(?<![0-9a-fA-F:])${escape(ip)}(?![0-9a-fA-F:])`,
  );
  const re = new RegExp(parts.join('|'), 'gi');
  return (s) => (s.length >= 2 ? s.replace(re, SCRUBBED) : s);
}

/**
 * Deep copy of `value` with every string (keys included) scrubbed. A body kept as base64 (not
 * UTF-8: `{format: 'base64', data}`) is scrubbed inside: decoded, the address's bytes replaced,
 * re-encoded. Certificates (`peer_certificates`) are left whole: DER signed by someone else, and a
 * changed length would make them undecodable.
 */
export function scrubValue<T>(value: T, scrub: ((s: string) => string) | null): T {
  if (!scrub) return value;
  const walk = (v: unknown, inCerts: boolean): unknown => {
    if (typeof v === 'string') return scrub(v);
    if (Array.isArray(v)) return v.map((x) => walk(x, inCerts));
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (!inCerts && o.format === 'base64' && typeof o.data === 'string') {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(o)) out[scrub(k)] = k === 'data' ? scrubBase64(x as string, scrub) : walk(x, false);
        return out;
      }
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(o)) out[scrub(k)] = walk(x, inCerts || k === 'peer_certificates');
      return out;
    }
    return v;
  };
  return walk(value, false) as T;
}

/** Bytes through the string scrubber: latin1 maps each byte to one char, so an ASCII address matches as text. */
function scrubBase64(data: string, scrub: (s: string) => string): string {
  const text = Buffer.from(data, 'base64').toString('latin1');
  const clean = scrub(text);
  return clean === text ? data : Buffer.from(clean, 'latin1').toString('base64');
}
