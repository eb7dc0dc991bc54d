// A big synthetic store for benchmarks, shaped like an observatory's data rather than uniform noise:
//   - countries by a skewed share (a few countries carry most measurements, as in OONI's), each
//     with 2-6 networks (the first carries most) and, for some, self-declared regions;
//   - 600 domains by a Zipf law (s = 1: the top domain ~14% of measurements, the tail a few each),
//     each with a test-list category;
//   - 365 days with growing volume and a weekly rhythm;
//   - verdicts from each country's censorship: a domain is on a country's list with the country's
//     probability, blocked there by one mechanism and layer (some from a day on, some lifted later,
//     so the store has real changes), otherwise ok, with failures and sites down.
// Measurements come out in batches of one day, sorted by uid, for bulkLoadSqlite. Deterministic
// from the seed. Never used for real data.
import { prng, type Measurement, type Verdict } from '../model/index.js';
import { BLOCKED, sampleMeasurement, sampleVerdict } from './seed.js';

const COUNTRIES: Array<{ cc: string; share: number; censorship: number; asns: number[]; regions?: string[] }> = [
  { cc: 'US', share: 16, censorship: 0.005, asns: [7922, 701, 7018, 20115] },
  { cc: 'RU', share: 14, censorship: 0.12, asns: [12389, 8359, 3216, 31213, 25513], regions: ['Moscow', 'Saint Petersburg'] },
  { cc: 'IR', share: 11, censorship: 0.3, asns: [58224, 44244, 197207, 12880], regions: ['Tehran', 'Isfahan'] },
  { cc: 'CN', share: 9, censorship: 0.28, asns: [4134, 4837, 9808, 56046, 4812, 9394], regions: ['Henan', 'Beijing', 'Xinjiang'] },
  { cc: 'IN', share: 8, censorship: 0.04, asns: [55836, 45609, 9829] },
  { cc: 'DE', share: 6, censorship: 0.004, asns: [3320, 3209, 6805] },
  { cc: 'BR', share: 5, censorship: 0.006, asns: [28573, 18881, 26599] },
  { cc: 'TR', share: 5, censorship: 0.09, asns: [9121, 15897, 16135, 34984] },
  { cc: 'IT', share: 4, censorship: 0.02, asns: [3269, 30722, 1267] },
  { cc: 'ID', share: 4, censorship: 0.08, asns: [7713, 17974, 23693] },
  { cc: 'MM', share: 3, censorship: 0.1, asns: [136255, 9988] },
  { cc: 'VE', share: 3, censorship: 0.05, asns: [8048, 21826] },
  { cc: 'EG', share: 3, censorship: 0.07, asns: [8452, 24863] },
  { cc: 'PK', share: 3, censorship: 0.06, asns: [17557, 45595] },
  { cc: 'KZ', share: 2, censorship: 0.05, asns: [9198, 206026] },
  { cc: 'BY', share: 2, censorship: 0.06, asns: [6697, 25106] },
  { cc: 'TH', share: 1, censorship: 0.04, asns: [45758, 23969] },
  { cc: 'CU', share: 1, censorship: 0.08, asns: [27725] },
];
const CATEGORIES = ['NEWS', 'POLR', 'HUMR', 'SRCH', 'GRP', 'COMT', 'MMED', 'LGBT', 'REL', 'ANON', 'CULTR', 'HOST'];
export const REALISTIC_DOMAINS = 600;
const DAYS = 365;

/** A stable hash of a string into [0, 1): the same country and domain always get the same policy. */
function unit(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  h ^= h >>> 13;
  h = Math.imul(h, 0x5bd1e995);
  return ((h ^ (h >>> 15)) >>> 0) / 4294967296;
}

/** Index into weights by a uniform draw (weights need not sum to 1). */
function pick(cum: number[], r: number): number {
  const x = r * cum[cum.length - 1]!;
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cum[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
const cumulative = (w: number[]): number[] => w.reduce<number[]>((a, x) => (a.push((a.at(-1) ?? 0) + x), a), []);

function domainName(i: number): string {
  const known = ['youtube.com', 'www.google.com', 'twitter.com', 'www.bbc.com', 'wikipedia.org', 'facebook.com', 'telegram.org'];
  return known[i] ?? `site${i}.example`;
}

/** How a country treats a domain over the year: blocked between two days (or never). */
function policy(cc: string, censorship: number, domain: string): { from: number; to: number; block: (typeof BLOCKED)[number] } | null {
  if (unit(`${cc}|${domain}`) >= censorship) return null;
  const u = unit(`${domain}|${cc}|when`);
  // Most blocks predate the year; a quarter start during it, and a tenth are lifted.
  const from = u < 0.75 ? 0 : Math.floor(unit(`${cc}${domain}from`) * DAYS);
  const to = unit(`${cc}${domain}lift`) < 0.1 ? from + Math.floor(unit(`${cc}${domain}to`) * (DAYS - from)) : DAYS;
  return { from, to, block: BLOCKED[Math.floor(unit(`${domain}${cc}mech`) * BLOCKED.length)]! };
}

/**
 * `count` measurements over the 365 days ending the day before `end`, one batch per day in uid order.
 */
export function* realisticBatches(
  count: number,
  opts: { seed?: number; end?: Date } = {},
): Generator<Array<{ m: Measurement; verdict: Verdict }>> {
  const rnd = prng(opts.seed ?? 7);
  const endDay = Math.floor((opts.end ?? new Date(Date.UTC(2026, 10, 22))).getTime() / 86_400_000) * 86400;
  const firstDay = endDay - DAYS * 86400;
  const ccCum = cumulative(COUNTRIES.map((c) => c.share));
  const domCum = cumulative(Array.from({ length: REALISTIC_DOMAINS }, (_, i) => 1 / (i + 1)));
  const asnCum = COUNTRIES.map((c) => cumulative(c.asns.map((_, i) => 1 / (i + 1) ** 1.2)));
  const dayWeight = Array.from(
    { length: DAYS },
    (_, d) => (0.6 + (0.8 * d) / DAYS) * (new Date((firstDay + d * 86400) * 1000).getUTCDay() % 6 === 0 ? 0.8 : 1),
  );
  const totalW = dayWeight.reduce((a, b) => a + b, 0);
  let made = 0;
  for (let d = 0; d < DAYS && made < count; d++) {
    const n = d === DAYS - 1 ? count - made : Math.min(count - made, Math.round((count * dayWeight[d]!) / totalW));
    const batch: Array<{ m: Measurement; verdict: Verdict; key: string }> = [];
    for (let i = 0; i < n; i++) {
      const ci = pick(ccCum, rnd());
      const c = COUNTRIES[ci]!;
      const di = pick(domCum, rnd());
      const domain = domainName(di);
      const t = new Date((firstDay + d * 86400 + Math.floor(rnd() * 86400)) * 1000);
      const region = c.regions ? [...c.regions, undefined][Math.floor(rnd() * (c.regions.length + 1))] : undefined;
      const m = sampleMeasurement({
        probe_cc: c.cc,
        probe_asn: `AS${c.asns[pick(asnCum[ci]!, rnd())]}`,
        region,
        input: `https://${domain}/`,
        start: t,
        extra: { x_seq: made + i, x_category_code: CATEGORIES[Math.floor(unit(domain) * CATEGORIES.length)] },
      });
      const p = policy(c.cc, c.censorship, domain);
      const r = rnd();
      let verdict: Verdict;
      if (p && d >= p.from && d < p.to && r < 0.9)
        verdict = sampleVerdict('blocked', { ...p.block, confirmed: p.block.mechanism === 'http.blockpage' && rnd() < 0.7 });
      else if (r < 0.94) verdict = sampleVerdict('ok');
      else if (r < 0.98) verdict = sampleVerdict('unknown');
      else verdict = sampleVerdict('down');
      batch.push({ m, verdict, key: m.measurement_start_time });
    }
    made += n;
    batch.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield batch.map(({ m, verdict }) => ({ m, verdict }));
  }
}
