// The "IP territory" (IP属地) label that Chinese platforms stamp on posts and comments since 2022:
// the province for a mainland address, the country (or 中国香港/中国澳门/中国台湾) otherwise.
// Computed offline: the country from the bundled @ip-location-db/asn-country data (geo.ts), the
// mainland province from src/probe/data/cn-provinces.csv (ranges from ip2region; see
// scripts/make-cn-provinces.mjs). One function serves `wallscope whereami` and the lab platform, so
// that the lab shows exactly what the self-check predicts. Nothing here logs or sends an address.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ipaddr from 'ipaddr.js';
import type { Territory } from '../model/index.js';
import { repoRoot } from './paths.js';
import { countryRangesV4, lookupCountry } from './geo.js';

/** Short province names as the platforms print them (Weibo: "IP属地：广东"). */
export const CN_PROVINCES: Readonly<Record<string, string>> = {
  'CN-BJ': '北京',
  'CN-TJ': '天津',
  'CN-HE': '河北',
  'CN-SX': '山西',
  'CN-NM': '内蒙古',
  'CN-LN': '辽宁',
  'CN-JL': '吉林',
  'CN-HL': '黑龙江',
  'CN-SH': '上海',
  'CN-JS': '江苏',
  'CN-ZJ': '浙江',
  'CN-AH': '安徽',
  'CN-FJ': '福建',
  'CN-JX': '江西',
  'CN-SD': '山东',
  'CN-HA': '河南',
  'CN-HB': '湖北',
  'CN-HN': '湖南',
  'CN-GD': '广东',
  'CN-GX': '广西',
  'CN-HI': '海南',
  'CN-CQ': '重庆',
  'CN-SC': '四川',
  'CN-GZ': '贵州',
  'CN-YN': '云南',
  'CN-XZ': '西藏',
  'CN-SN': '陕西',
  'CN-GS': '甘肃',
  'CN-QH': '青海',
  'CN-NX': '宁夏',
  'CN-XJ': '新疆',
};

/** The platforms write the special administrative regions and Taiwan under 中国. */
const SPECIAL: Readonly<Record<string, string>> = { HK: '中国香港', MO: '中国澳门', TW: '中国台湾' };
export const UNKNOWN_LABEL = '未知';

interface ProvinceTable {
  start: Uint32Array;
  end: Uint32Array;
  code: string[];
}
let table: ProvinceTable | null = null;

export const PROVINCE_TABLE_FILE = join(repoRoot, 'src', 'probe', 'data', 'cn-provinces.csv');

function provinces(): ProvinceTable {
  if (table) return table;
  const rows = readFileSync(PROVINCE_TABLE_FILE, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));
  const t: ProvinceTable = { start: new Uint32Array(rows.length), end: new Uint32Array(rows.length), code: new Array<string>(rows.length) };
  rows.forEach((l, i) => {
    const [a, b, c] = l.split(',');
    t.start[i] = Number(a);
    t.end[i] = Number(b);
    t.code[i] = c!;
  });
  return (table = t);
}

function v4Number(ip: string): number | null {
  if (!ipaddr.isValid(ip)) return null;
  let a = ipaddr.parse(ip);
  if (a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress()) a = (a as ipaddr.IPv6).toIPv4Address();
  if (a.kind() !== 'ipv4') return null;
  return a.toByteArray().reduce((acc, b) => acc * 256 + b, 0);
}

/** The ISO 3166-2:CN province of a mainland IPv4 address, or null. */
export function lookupProvince(ip: string): string | null {
  const n = v4Number(ip);
  if (n === null) return null;
  const t = provinces();
  let lo = 0;
  let hi = t.start.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (t.start[mid]! > n) hi = mid - 1;
    else if (t.end[mid]! < n) lo = mid + 1;
    else return t.code[mid]!;
  }
  return null;
}

const countryNames = new Intl.DisplayNames(['zh-Hans-CN'], { type: 'region', fallback: 'code' });

/** The territory label a platform would show for this address (region granularity). */
export function territoryOf(ip: string): Territory {
  const cc = lookupCountry(ip);
  if (!cc) return { code: null, label: UNKNOWN_LABEL };
  if (cc === 'CN') {
    const p = lookupProvince(ip);
    return p && CN_PROVINCES[p] ? { code: p, label: CN_PROVINCES[p]! } : { code: 'CN', label: '中国' };
  }
  return { code: cc, label: countryLabel(cc) };
}

function countryLabel(cc: string): string {
  return SPECIAL[cc] ?? countryNames.of(cc) ?? cc;
}

/**
 * The IPv4 tables behind territoryOf, for a lookup in the user's browser (the explorer's "IP
 * territory" page downloads them and searches locally, so the address never leaves the browser):
 * country ranges, mainland province ranges, and the label of every code. Same data, same rule
 * (country first; for CN, the province; else 中国).
 */
export function territoryTablesV4(): {
  countries: Array<[number, number, string]>;
  provinces: Array<[number, number, string]>;
  labels: Record<string, string>;
  unknown: string;
} {
  const c = countryRangesV4();
  const countries: Array<[number, number, string]> = [];
  for (let i = 0; i < c.start.length; i++) {
    const code = c.names[c.value[i]!]!;
    const prev = countries[countries.length - 1];
    if (prev && prev[2] === code && prev[1] + 1 === c.start[i]) prev[1] = c.end[i]!;
    else countries.push([c.start[i]!, c.end[i]!, code]);
  }
  const p = provinces();
  const provs: Array<[number, number, string]> = [];
  for (let i = 0; i < p.start.length; i++) provs.push([p.start[i]!, p.end[i]!, p.code[i]!]);
  const labels: Record<string, string> = { CN: '中国', ...CN_PROVINCES };
  for (const name of new Set(c.names)) if (name !== 'CN') labels[name] = countryLabel(name);
  return { countries, provinces: provs, labels, unknown: UNKNOWN_LABEL };
}
