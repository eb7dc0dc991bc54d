#!/usr/bin/env node
// Regenerates src/probe/data/cn-provinces.csv, the province table wallscope ships for the "IP
// territory" labels of Chinese platforms (DESIGN.md "Platforms"). Source: the ip2region database
// (lionsoul2014/ip2region, "country|area|province|city|ISP" per IPv4 range), as packaged in the npm
// package ip2region@2.3.0 (data/ip2region.db, v1 block format). wallscope does not depend on that
// package: run `npm pack ip2region@2.3.0`, unpack it, and give this script the .db file:
//   node scripts/make-cn-provinces.mjs package/data/ip2region.db > src/probe/data/cn-provinces.csv
// Output: a header comment, then `start,end,code` rows (IPv4 as integers, inclusive), adjacent
// ranges of one province merged; code is ISO 3166-2:CN (CN-GD ...). Only mainland ranges whose
// province ip2region names are kept; the label text lives in src/probe/territory.ts.
import { readFileSync } from 'node:fs';

// ip2region's province names (with their 省/市/自治区 suffix as it writes them) -> ISO 3166-2:CN.
const ISO = {
  北京: 'CN-BJ',
  天津: 'CN-TJ',
  河北: 'CN-HE',
  山西: 'CN-SX',
  内蒙古: 'CN-NM',
  辽宁: 'CN-LN',
  吉林: 'CN-JL',
  黑龙江: 'CN-HL',
  上海: 'CN-SH',
  江苏: 'CN-JS',
  浙江: 'CN-ZJ',
  安徽: 'CN-AH',
  福建: 'CN-FJ',
  江西: 'CN-JX',
  山东: 'CN-SD',
  河南: 'CN-HA',
  湖北: 'CN-HB',
  湖南: 'CN-HN',
  广东: 'CN-GD',
  广西: 'CN-GX',
  海南: 'CN-HI',
  重庆: 'CN-CQ',
  四川: 'CN-SC',
  贵州: 'CN-GZ',
  云南: 'CN-YN',
  西藏: 'CN-XZ',
  陕西: 'CN-SN',
  甘肃: 'CN-GS',
  青海: 'CN-QH',
  宁夏: 'CN-NX',
  新疆: 'CN-XJ',
};
const short = (p) => p.replace(/(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)$/, '');

const file = process.argv[2];
if (!file) {
  console.error('usage: make-cn-provinces.mjs path/to/ip2region.db');
  process.exit(2);
}
const db = readFileSync(file);
const first = db.readUInt32LE(0);
const last = db.readUInt32LE(4);
const rows = [];
const unknown = new Map();
for (let pos = first; pos <= last; pos += 12) {
  const sip = db.readUInt32LE(pos);
  const eip = db.readUInt32LE(pos + 4);
  const ptr = db.readUInt32LE(pos + 8);
  const len = (ptr >>> 24) & 0xff;
  const off = ptr & 0xffffff;
  const region = db.toString('utf8', off + 4, off + len);
  const [country, , province] = region.split('|');
  if (country !== '中国' || !province || province === '0') continue;
  const code = ISO[short(province)];
  if (!code) {
    unknown.set(province, (unknown.get(province) ?? 0) + 1);
    continue;
  }
  const prev = rows[rows.length - 1];
  if (prev && prev[2] === code && prev[1] + 1 === sip) prev[1] = eip;
  else rows.push([sip, eip, code]);
}
const out = [
  '# IPv4 ranges (start,end as integers, inclusive) -> ISO 3166-2:CN province, for the "IP territory" labels.',
  '# Source: ip2region (github.com/lionsoul2014/ip2region, Apache-2.0) as packaged in npm ip2region@2.3.0',
  '# (data/ip2region.db); regenerate with scripts/make-cn-provinces.mjs. Only mainland provinces; adjacent ranges merged.',
  ...rows.map((r) => r.join(',')),
];
process.stdout.write(out.join('\n') + '\n');
if (unknown.size)
  console.error(
    'skipped (not a mainland province):',
    [...unknown]
      .slice(0, 20)
      .map(([k, v]) => `${k} x${v}`)
      .join(', '),
  );
console.error(`${rows.length} ranges`);
