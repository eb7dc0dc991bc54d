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
import { ooniTime, prng, type Measurement, type Verdict } from '../model/index.js';
import { flatten, hostOfInput, uidFrom } from '../store/row.js';
import { compressBody } from '../store/sqlite.js';
import type { WriterRow } from '../store/sqlite-writer.js';
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

/** One measurement of the realistic mix, before it is rendered (as a Measurement, or as a store row). */
interface Spec {
  cc: string;
  asn: number;
  region: string | undefined;
  domain: string;
  /** measurement_start_time, OONI's format. */
  start: string;
  seq: number;
  category: string;
  verdict: Verdict;
}

/** The verdicts of the mix, built once each (every row of a kind shares its verdict object). */
function verdictTable(): { ok: Verdict; unknown: Verdict; down: Verdict; blocked: Verdict[] } {
  return {
    ok: sampleVerdict('ok'),
    unknown: sampleVerdict('unknown'),
    down: sampleVerdict('down'),
    // Index 2i: block kind i unconfirmed, 2i + 1: confirmed.
    blocked: BLOCKED.flatMap((b) => [
      sampleVerdict('blocked', { ...b, confirmed: false }),
      sampleVerdict('blocked', { ...b, confirmed: true }),
    ]),
  };
}

/** The specs of `count` measurements over the 365 days ending the day before `end`, one batch per day in time order. */
function* realisticSpecs(count: number, opts: { seed?: number; end?: Date }): Generator<Spec[]> {
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
  const verdicts = verdictTable();
  const policies = new Map<string, ReturnType<typeof policy>>();
  let made = 0;
  for (let d = 0; d < DAYS && made < count; d++) {
    const n = d === DAYS - 1 ? count - made : Math.min(count - made, Math.round((count * dayWeight[d]!) / totalW));
    const batch: Spec[] = [];
    for (let i = 0; i < n; i++) {
      const ci = pick(ccCum, rnd());
      const c = COUNTRIES[ci]!;
      const domain = domainName(pick(domCum, rnd()));
      const start = ooniTime(new Date((firstDay + d * 86400 + Math.floor(rnd() * 86400)) * 1000));
      const region = c.regions ? [...c.regions, undefined][Math.floor(rnd() * (c.regions.length + 1))] : undefined;
      const asn = c.asns[pick(asnCum[ci]!, rnd())]!;
      const pk = `${c.cc}|${domain}`;
      if (!policies.has(pk)) policies.set(pk, policy(c.cc, c.censorship, domain));
      const p = policies.get(pk)!;
      const r = rnd();
      let verdict: Verdict;
      if (p && d >= p.from && d < p.to && r < 0.9) {
        const confirmed = p.block.mechanism === 'http.blockpage' && rnd() < 0.7;
        verdict = verdicts.blocked[2 * BLOCKED.indexOf(p.block) + (confirmed ? 1 : 0)]!;
      } else if (r < 0.94) verdict = verdicts.ok;
      else if (r < 0.98) verdict = verdicts.unknown;
      else verdict = verdicts.down;
      batch.push({
        cc: c.cc,
        asn,
        region,
        domain,
        start,
        seq: made + i,
        category: CATEGORIES[Math.floor(unit(domain) * CATEGORIES.length)]!,
        verdict,
      });
    }
    made += n;
    batch.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    yield batch;
  }
}

function measurementOf(s: Spec): Measurement {
  return sampleMeasurement({
    probe_cc: s.cc,
    probe_asn: `AS${s.asn}`,
    region: s.region,
    input: `https://${s.domain}/`,
    start: new Date(s.start.replace(' ', 'T') + 'Z'),
    extra: { x_seq: s.seq, x_category_code: s.category },
  });
}

/**
 * `count` measurements over the 365 days ending the day before `end`, one batch per day in time order.
 */
export function* realisticBatches(
  count: number,
  opts: { seed?: number; end?: Date } = {},
): Generator<Array<{ m: Measurement; verdict: Verdict }>> {
  for (const batch of realisticSpecs(count, opts)) yield batch.map((s) => ({ m: measurementOf(s), verdict: { ...s.verdict } }));
}

/**
 * A measurement's JSON as fragments around its varying fields: sampleMeasurement's own JSON with
 * markers in their places, so the rendered text is JSON.stringify's, member for member (the
 * seed's test compares both on thousands of rows).
 */
function template(region: boolean, withReportId: boolean): Array<string | keyof typeof MARK> {
  const m = sampleMeasurement({
    probe_cc: MARK.cc,
    probe_asn: MARK.asn,
    region: region ? MARK.region : undefined,
    input: MARK.input,
    extra: { x_seq: MARK.seq, x_category_code: MARK.category },
  });
  m.measurement_start_time = MARK.start;
  m.test_start_time = MARK.start;
  if (!withReportId) delete (m as Partial<Measurement>).report_id;
  const parts = JSON.stringify(m).split(/"@@(\w+)@@"/);
  return parts.map((p, i) => (i % 2 === 1 ? (p as keyof typeof MARK) : p));
}
const MARK = {
  cc: '@@cc@@',
  asn: '@@asn@@',
  region: '@@region@@',
  input: '@@input@@',
  start: '@@start@@',
  seq: '@@seq@@',
  category: '@@category@@',
};

/**
 * The same measurements as realisticBatches, already as the store's rows (the uid, flat row and
 * body put() would store): rendered from a template instead of built and serialised twice each,
 * about 10x less CPU per row, for seeding millions (bulkLoadSqlite).
 */
export function* realisticRows(count: number, opts: { seed?: number; end?: Date } = {}): Generator<WriterRow[]> {
  const tpl = [false, true].map((region) => ({ body: template(region, true), rest: template(region, false) }));
  for (const batch of realisticSpecs(count, opts))
    yield batch.map((s) => {
      const input = `https://${s.domain}/`;
      const values: Record<keyof typeof MARK, string> = {
        cc: JSON.stringify(s.cc),
        asn: `"AS${s.asn}"`,
        region: JSON.stringify(s.region ?? ''),
        input: JSON.stringify(input),
        start: `"${s.start}"`,
        seq: String(s.seq),
        category: JSON.stringify(s.category),
      };
      const t = tpl[s.region === undefined ? 0 : 1]!;
      const render = (parts: string[]) => parts.map((p, i) => (i % 2 === 1 ? values[p as keyof typeof MARK] : p)).join('');
      const json = render(t.body);
      const head = { measurement_start_time: s.start, test_name: 'web_connectivity', probe_cc: s.cc };
      const uid = uidFrom(head, render(t.rest));
      // flatten() reads only these members of a measurement.
      const light = {
        ...head,
        report_id: '',
        input,
        probe_asn: `AS${s.asn}`,
        annotations: s.region === undefined ? {} : { region: s.region },
        test_keys: { x_category_code: s.category },
      } as unknown as Measurement;
      return { row: flatten(light, s.verdict, uid, hostOfInput), body: compressBody(json) };
    });
}
