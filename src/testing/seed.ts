// Synthetic measurements and verdicts, deterministic from a seed: for tests, benchmarks and the
// explorer's browser tests (a store seeded with a known mix). Never used for real data.
import { noVerdict } from '../analysis/index.js';
import { ooniTime, prng, type Measurement, type Verdict } from '../model/index.js';

const CCS = ['CN', 'IR', 'RU', 'IT', 'US', 'TR'];
const ASNS = [4134, 4837, 9808, 58224, 44244, 12389, 3269, 7922, 9121];
const DOMAINS = [
  'youtube.com',
  'www.google.com',
  'twitter.com',
  'www.bbc.com',
  'example.org',
  'wikipedia.org',
  'facebook.com',
  'telegram.org',
  '011.com',
  'news.example',
];
/** Self-declared regions of the synthetic Chinese vantage points (every third CN measurement has none). */
export const SEED_REGIONS_CN = ['Henan', 'Beijing'] as const;
/** The block kinds the synthetic and the realistic seeds draw from. */
export const BLOCKED: Array<Pick<Verdict, 'blocking' | 'mechanism' | 'layer'>> = [
  { blocking: 'dns', mechanism: 'dns.injection', layer: 'national' },
  { blocking: 'http-failure', mechanism: 'tls.reset', layer: 'national' },
  { blocking: 'http-failure', mechanism: 'http.reset', layer: 'regional' },
  { blocking: 'http-diff', mechanism: 'http.blockpage', layer: 'isp' },
  { blocking: 'tcp_ip', mechanism: 'tcp.timeout', layer: 'unknown' },
];

export interface SampleOptions {
  probe_cc?: string;
  probe_asn?: string;
  input?: string;
  test_name?: string;
  start?: Date;
  /** annotations.region (the volunteer's self-declared region). */
  region?: string;
  extra?: Record<string, unknown>;
}

/** One web_connectivity-shaped measurement (minimal but schema-valid test keys). */
export function sampleMeasurement(o: SampleOptions = {}): Measurement {
  const start = ooniTime(o.start ?? new Date(Date.UTC(2026, 10, 22, 5, 0, 0)));
  return {
    annotations: o.region === undefined ? { platform: 'linux' } : { platform: 'linux', region: o.region },
    data_format_version: '0.2.0',
    input: o.input ?? 'https://example.org/',
    measurement_start_time: start,
    probe_asn: o.probe_asn ?? 'AS4134',
    probe_cc: o.probe_cc ?? 'CN',
    probe_ip: '127.0.0.1',
    probe_network_name: 'Chinanet',
    report_id: '',
    resolver_asn: 'AS4134',
    resolver_ip: '127.0.0.1',
    resolver_network_name: 'Chinanet',
    software_name: 'wallscope',
    software_version: '0.1.0',
    test_helpers: {},
    test_keys: { blocking: false, accessible: true, queries: [], tcp_connect: [], requests: [], ...(o.extra ?? {}) },
    test_name: o.test_name ?? 'web_connectivity',
    test_runtime: 1.5,
    test_start_time: start,
    test_version: '0.4.3',
  };
}

export function sampleVerdict(kind: 'ok' | 'blocked' | 'unknown' | 'down' = 'ok', over: Partial<Verdict> = {}): Verdict {
  const base: Verdict =
    kind === 'blocked'
      ? {
          status: 'blocked',
          blocking: 'dns',
          accessible: false,
          mechanism: 'dns.injection',
          layer: 'national',
          confidence: 0.9,
          evidence: ['queries[0]'],
          explanation: 'Forged DNS replies.',
          confirmed: false,
          fingerprints: [],
          analysis_version: 'seed/1',
        }
      : kind === 'unknown'
        ? { ...noVerdict('The control failed.'), analysis_version: 'seed/1' }
        : {
            status: kind,
            blocking: null,
            accessible: kind === 'ok',
            mechanism: 'none',
            layer: null,
            confidence: 0.9,
            evidence: [],
            explanation: kind === 'ok' ? 'Reachable.' : 'The site is down for everyone.',
            confirmed: false,
            fingerprints: [],
            analysis_version: 'seed/1',
          };
  return { ...base, ...over };
}

/**
 * `count` measurements spread over `days` days ending at `end`, across countries, networks and
 * domains, with a mix of ok, blocked (some confirmed), unknown and down verdicts.
 */
export function* syntheticMeasurements(
  count: number,
  opts: { seed?: number; days?: number; end?: Date; ccs?: string[] } = {},
): Generator<{ m: Measurement; verdict: Verdict }> {
  const rnd = prng(opts.seed ?? 1);
  const days = opts.days ?? 365;
  const end = (opts.end ?? new Date(Date.UTC(2026, 10, 22))).getTime();
  const ccs = opts.ccs ?? CCS;
  for (let i = 0; i < count; i++) {
    const t = new Date(end - Math.floor(rnd() * days * 86400) * 1000);
    const domain = DOMAINS[Math.floor(rnd() * DOMAINS.length)];
    const cc = ccs[Math.floor(rnd() * ccs.length)];
    const m = sampleMeasurement({
      probe_cc: cc,
      // Deterministic from i (no draw from rnd): the rest of the mix is the same as without regions.
      region: cc === 'CN' ? SEED_REGIONS_CN[i % 3] : undefined,
      probe_asn: `AS${ASNS[Math.floor(rnd() * ASNS.length)]}`,
      input: `https://${domain}/`,
      start: t,
      extra: { x_seq: i },
    });
    const r = rnd();
    let verdict: Verdict;
    if (r < 0.55) verdict = sampleVerdict('ok');
    else if (r < 0.85) {
      const b = BLOCKED[Math.floor(rnd() * BLOCKED.length)];
      verdict = sampleVerdict('blocked', { ...b, confirmed: b.mechanism === 'http.blockpage' && rnd() < 0.7 });
    } else if (r < 0.95) verdict = sampleVerdict('unknown');
    else verdict = sampleVerdict('down');
    yield { m, verdict };
  }
}
