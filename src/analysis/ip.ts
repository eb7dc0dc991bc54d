// Address classification for the analysis: bogons (RFC 6890 special-purpose ranges that never
// answer for a public name) and CIDR membership for lab mode. Pure: no resolver, no I/O.
import ipaddr from 'ipaddr.js';

type Parsed = ipaddr.IPv4 | ipaddr.IPv6;
export type Cidr = [Parsed, number];

// Fast path: a canonical dotted quad (no leading zeros) needs no parsing to be recognised.
const QUAD = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

// Parsed addresses are cached: the same few addresses recur across a measurement and a run.
// Robustness: the cache is bounded (cleared when full), so hostile input cannot grow it.
const cache = new Map<string, Parsed | null>();
const CACHE_MAX = 50_000;

/** Parse an address, unwrapping IPv4-mapped IPv6 ("::ffff:1.2.3.4"). null when not an address. */
/** Characters any IPv4 (decimal, hex, octal) or IPv6 text form can have, with an optional zone. */
const MAYBE_IP = /^[0-9a-fA-FxX.:]+(%[\w.-]+)?$/;

export function parseIp(s: string): Parsed | null {
  if (typeof s !== 'string' || s.length > 64) return null;
  const hit = cache.get(s);
  if (hit !== undefined) return hit;
  const a = parseUncached(s);
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(s, a);
  return a;
}

function parseUncached(s: string): Parsed | null {
  // Most strings asked about are host names: refuse them before ipaddr.isValid(), which throws and
  // catches internally for each (about a tenth of the collector's CPU in a profile).
  if (!MAYBE_IP.test(s)) return null;
  if (!ipaddr.isValid(s)) return null;
  try {
    const a = ipaddr.parse(s);
    if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) return (a as ipaddr.IPv6).toIPv4Address();
    return a;
  } catch {
    return null;
  }
}

export function isIp(s: string): boolean {
  return QUAD.test(s) || parseIp(s) !== null;
}

/** Canonical text form, so that "::FFFF:1.2.3.4", "1.2.3.4" compare equal. */
const canonical = new Map<string, string>();
export function canonicalIp(s: string): string {
  if (QUAD.test(s)) return s;
  let c = canonical.get(s);
  if (c === undefined) {
    const a = parseIp(s);
    c = a ? a.toString() : s;
    if (canonical.size >= CACHE_MAX) canonical.clear();
    canonical.set(s, c);
  }
  return c;
}

/** Parse CIDR strings; a bare address is a /32 or /128. Bad entries are skipped (the caller validated). */
export function parseCidrs(nets: readonly string[] | undefined): Cidr[] {
  const out: Cidr[] = [];
  for (const n of nets ?? []) {
    try {
      if (n.includes('/')) {
        const [addr, bits] = ipaddr.parseCIDR(n);
        out.push([addr, bits]);
      } else {
        const a = parseIp(n);
        if (a) out.push([a, a.kind() === 'ipv4' ? 32 : 128]);
      }
    } catch {
      /* Robustness: a malformed allow-net entry simply allows nothing. */
    }
  }
  return out;
}

export function inCidrs(ip: string, cidrs: readonly Cidr[]): boolean {
  const a = parseIp(ip);
  if (!a) return false;
  for (const [net, bits] of cidrs) {
    if (net.kind() === a.kind() && a.match(net as never, bits)) return true;
  }
  return false;
}

// ipaddr.js range names that are not globally routable (RFC 6890, RFC 6598, RFC 4193 ...).
const BOGON_RANGES = new Set([
  'unspecified', 'broadcast', 'multicast', 'linkLocal', 'loopback', 'carrierGradeNat', 'private',
  'reserved', 'uniqueLocal', 'ipv4Mapped', 'rfc6145', 'rfc6052', 'benchmarking', 'as112', 'as112v6', 'orchid2', 'deprecated',
]);

// range() is costly (subnet matching over every special range): remembered per parsed address.
const ranges = new WeakMap<Parsed, string>();

const ALWAYS_BOGON = new Set(['127.0.0.1', '0.0.0.0', '::1', '::']);

/**
 * A bogon: an address that cannot be a public server (private, loopback, link-local, reserved ...).
 * Addresses inside `allow` (lab mode, e.g. 127.0.0.0/8) count as public.
 */
export function isBogon(ip: string, allow: readonly Cidr[] = []): boolean {
  const a = parseIp(ip);
  if (!a) return false;
  // The classic "localhost" block answers (127.0.0.1, ::1, 0.0.0.0, ::) stay bogons even inside
  // allow-nets: no lab puts a site there, and a resolver answering them is blocking.
  if (allow.length > 0 && inCidrs(ip, allow) && !ALWAYS_BOGON.has(a.toString())) return false;
  // 198.18.0.0/15 ("benchmarking") is a bogon too: the netns lab lives there, so only allow-nets make it public.
  let r = ranges.get(a);
  if (r === undefined) {
    r = a.range();
    ranges.set(a, r);
  }
  return BOGON_RANGES.has(r);
}
