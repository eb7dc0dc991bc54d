// Offline IP -> ASN / country, from the CSV files shipped in @ip-location-db/asn and
// @ip-location-db/asn-country. Loaded lazily on first use (only public addresses are ever
// looked up), kept as sorted typed arrays, searched by binary search.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseIp } from '../analysis/index.js';
import { isBogonAddress } from './policy.js';

const require = createRequire(import.meta.url);

interface V4Table {
  start: Uint32Array;
  end: Uint32Array;
  value: Uint32Array;
  names: string[];
}
interface V6Table {
  start: bigint[];
  end: bigint[];
  value: Uint32Array;
  names: string[];
}

// The two packages' folders, resolved with literal names (scripts/check-layers.mjs follows only those).
const PKG_DIR = {
  '@ip-location-db/asn': () => dirname(require.resolve('@ip-location-db/asn/package.json')),
  '@ip-location-db/asn-country': () => dirname(require.resolve('@ip-location-db/asn-country/package.json')),
} as const;

function pkgFile(pkg: keyof typeof PKG_DIR, file: string): string {
  return join(PKG_DIR[pkg](), file);
}

/** Split "a,b,c,rest with, commas" into 3 numbers-ish fields and the (unquoted) rest. */
function splitRow(line: string): [string, string, string, string] | null {
  const a = line.indexOf(',');
  const b = line.indexOf(',', a + 1);
  if (a < 0 || b < 0) return null;
  const c = line.indexOf(',', b + 1);
  const third = c < 0 ? line.slice(b + 1) : line.slice(b + 1, c);
  let rest = c < 0 ? '' : line.slice(c + 1);
  if (rest.startsWith('"') && rest.endsWith('"')) rest = rest.slice(1, -1).replace(/""/g, '"');
  return [line.slice(0, a), line.slice(a + 1, b), third, rest];
}

function loadV4(file: string, kind: 'asn' | 'cc'): V4Table {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const t: V4Table = {
    start: new Uint32Array(lines.length),
    end: new Uint32Array(lines.length),
    value: new Uint32Array(lines.length),
    names: [],
  };
  const nameIdx = new Map<string, number>();
  let n = 0;
  for (const line of lines) {
    const r = splitRow(line);
    if (!r) continue;
    t.start[n] = Number(r[0]);
    t.end[n] = Number(r[1]);
    t.value[n] = labelIndex(r, kind, t.names, nameIdx);
    n++;
  }
  return { start: t.start.subarray(0, n), end: t.end.subarray(0, n), value: t.value.subarray(0, n), names: t.names };
}

/** The row's label (AS number and org, or country) as an index into `names`, each label stored once. */
function labelIndex(r: string[], kind: 'asn' | 'cc', names: string[], nameIdx: Map<string, number>): number {
  const label = kind === 'asn' ? `${r[2]}\u0000${r[3]}` : r[2];
  let idx = nameIdx.get(label);
  if (idx === undefined) {
    idx = names.length;
    names.push(label);
    nameIdx.set(label, idx);
  }
  return idx;
}

function loadV6(file: string, kind: 'asn' | 'cc'): V6Table {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const t: V6Table = { start: [], end: [], value: new Uint32Array(lines.length), names: [] };
  const nameIdx = new Map<string, number>();
  for (const line of lines) {
    const r = splitRow(line);
    if (!r) continue;
    t.start.push(BigInt(r[0]));
    t.end.push(BigInt(r[1]));
    t.value[t.start.length - 1] = labelIndex(r, kind, t.names, nameIdx);
  }
  return t;
}

function search<T extends number | bigint>(start: ArrayLike<T>, end: ArrayLike<T>, x: T): number {
  let lo = 0;
  let hi = start.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (start[mid]! > x) hi = mid - 1;
    else if (end[mid]! < x) lo = mid + 1;
    else return mid;
  }
  return -1;
}

const cache: { asn4?: V4Table; asn6?: V6Table; cc4?: V4Table; cc6?: V6Table } = {};

function key(ip: string): { v: 4; n: number } | { v: 6; n: bigint } | null {
  const a = parseIp(ip);
  if (!a) return null;
  if (a.kind() === 'ipv4') return { v: 4, n: a.toByteArray().reduce((acc, b) => acc * 256 + b, 0) };
  return { v: 6, n: a.toByteArray().reduce((acc, b) => acc * 256n + BigInt(b), 0n) };
}

function find(ip: string, kind: 'asn' | 'cc'): string | null {
  if (isBogonAddress(ip)) return null;
  const k = key(ip);
  if (!k) return null;
  const pkg: keyof typeof PKG_DIR = kind === 'asn' ? '@ip-location-db/asn' : '@ip-location-db/asn-country';
  const prefix = kind === 'asn' ? 'asn' : 'asn-country';
  if (k.v === 4) {
    const t =
      kind === 'asn'
        ? (cache.asn4 ??= loadV4(pkgFile(pkg, `${prefix}-ipv4-num.csv`), kind))
        : (cache.cc4 ??= loadV4(pkgFile(pkg, `${prefix}-ipv4-num.csv`), kind));
    const i = search(t.start, t.end, k.n);
    return i < 0 ? null : t.names[t.value[i]!]!;
  }
  const t =
    kind === 'asn'
      ? (cache.asn6 ??= loadV6(pkgFile(pkg, `${prefix}-ipv6-num.csv`), kind))
      : (cache.cc6 ??= loadV6(pkgFile(pkg, `${prefix}-ipv6-num.csv`), kind));
  const i = search(t.start, t.end, k.n);
  return i < 0 ? null : t.names[t.value[i]!]!;
}

/** The IPv4 country table itself (ranges as integers, inclusive; value indexes names), for the explorer's in-browser IP territory lookup. */
export function countryRangesV4(): { start: Uint32Array; end: Uint32Array; value: Uint32Array; names: string[] } {
  return (cache.cc4 ??= loadV4(pkgFile('@ip-location-db/asn-country', 'asn-country-ipv4-num.csv'), 'cc'));
}

/** ASN and organisation of a public address; null for bogons and unknown ranges. */
export function lookupAsn(ip: string): { asn: number; org: string } | null {
  const v = find(ip, 'asn');
  if (!v) return null;
  const [asn, org] = v.split('\u0000');
  return { asn: Number(asn), org: org ?? '' };
}

/** ISO country code of a public address; null when unknown. */
export function lookupCountry(ip: string): string | null {
  return find(ip, 'cc');
}

/** The probe's location as OONI writes it: "ZZ"/"AS0" when unknown. */
export function probeLocation(ip: string | null): { probe_cc: string; probe_asn: string; probe_network_name: string } {
  if (!ip) return { probe_cc: 'ZZ', probe_asn: 'AS0', probe_network_name: '' };
  const a = lookupAsn(ip);
  return { probe_cc: lookupCountry(ip) ?? 'ZZ', probe_asn: a ? `AS${a.asn}` : 'AS0', probe_network_name: a?.org ?? '' };
}
