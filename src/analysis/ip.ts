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

/**
 * The one IPv4-mapped normalisation ("::ffff:1.2.3.4" -> 1.2.3.4): Node reports IPv4 peers and
 * local addresses of dual-stack sockets in that form. Used by parseIp/canonicalIp here, the probe's
 * NetPolicy and geo lookup, and the collector's scrubber.
 */
export function unmap(a: Parsed): Parsed {
  return a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a;
}

/** Characters any IPv4 (decimal, hex, octal) or IPv6 text form can have, with an optional zone. */
const MAYBE_IP = /^[0-9a-fA-FxX.:]+(%[\w.-]+)?$/;

/** Parse an address, unwrapping IPv4-mapped IPv6 (unmap). null when not an address. */
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
    return unmap(ipaddr.parse(s));
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

// The bogon list of OONI's probe (ooni/probe-cli internal/netxlite/bogon.go, itself "extracted
// from https://ipinfo.io/bogon"), so that `dns.bogon` and dns_consistency mean what they mean in
// OONI's data. The probe (probe/policy.ts) and the analysis both use isBogon below.
const BOGONS_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '255.255.255.255/32',
];
const BOGONS_V6 = [
  '::/128',
  '::1/128',
  '::ffff:0:0/96',
  '::/96',
  '100::/64',
  '2001:10::/28',
  '2001:db8::/32',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
  // 6to4 and Teredo wrappers of the IPv4 bogons.
  '2002::/24',
  '2002:a00::/24',
  '2002:7f00::/24',
  '2002:a9fe::/32',
  '2002:ac10::/28',
  '2002:c000::/40',
  '2002:c000:200::/40',
  '2002:c0a8::/32',
  '2002:c612::/31',
  '2002:c633:6400::/40',
  '2002:cb00:7100::/40',
  '2002:e000::/20',
  '2002:f000::/20',
  '2002:ffff:ffff::/48',
  '2001::/40',
  '2001:0:a00::/40',
  '2001:0:7f00::/40',
  '2001:0:a9fe::/48',
  '2001:0:ac10::/44',
  '2001:0:c000::/56',
  '2001:0:c000:200::/56',
  '2001:0:c0a8::/48',
  '2001:0:c612::/47',
  '2001:0:c633:6400::/56',
  '2001:0:cb00:7100::/56',
  '2001:0:e000::/36',
  '2001:0:f000::/36',
  '2001:0:ffff:ffff::/64',
];
const BOGON4 = parseCidrs(BOGONS_V4);
const BOGON6 = parseCidrs(BOGONS_V6);

// Matching is a walk over the list: remembered per parsed address (the same few recur).
const bogonMemo = new WeakMap<Parsed, boolean>();

const ALWAYS_BOGON = new Set(['127.0.0.1', '0.0.0.0', '::1', '::']);

/**
 * A bogon by OONI's rule (above): an address that cannot be a public server. Addresses inside
 * `allow` (lab mode, e.g. 127.0.0.0/8) count as public, except the classic "localhost" answers.
 * Differences from netxlite.IsBogon, on purpose: a text that is not an address is false here (the
 * callers pass addresses; OONI says true), and an IPv4-mapped address inside `allow` is public.
 * As in OONI, any other IPv4-mapped IPv6 text (::ffff:0:0/96) is a bogon: a DNS answer never
 * carries one. Callers judging their own socket addresses pass canonicalIp(ip) instead.
 */
export function isBogon(ip: string, allow: readonly Cidr[] = []): boolean {
  const a = parseIp(ip);
  if (!a) return false;
  // The classic "localhost" block answers (127.0.0.1, ::1, 0.0.0.0, ::) stay bogons even inside
  // allow-nets: no lab puts a site there, and a resolver answering them is blocking.
  if (allow.length > 0 && inCidrs(ip, allow) && !ALWAYS_BOGON.has(a.toString())) return false;
  // parseIp unmapped it: the text was IPv6 (::ffff:a.b.c.d), a bogon in OONI's IPv6 list.
  if (a.kind() === 'ipv4' && ip.includes(':')) return true;
  // 198.18.0.0/15 is a bogon too: the netns lab lives there, so only allow-nets make it public.
  let r = bogonMemo.get(a);
  if (r === undefined) {
    r = (a.kind() === 'ipv4' ? BOGON4 : BOGON6).some(([net, bits]) => net.kind() === a.kind() && a.match(net as never, bits));
    bogonMemo.set(a, r);
  }
  return r;
}
