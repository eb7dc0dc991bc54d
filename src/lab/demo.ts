// `wallscope demo`: a built-in realistic world whose sites carry the domains of the Citizen Lab
// China test list (read at run time, served locally by the lab), censored by a national firewall,
// a provincial one and an ISP the way reference/censors.md describes, then measured and summed up.
// Which layer blocks what is decided by the list's categories (a plausible, documented policy,
// not a claim about the real lists):
//   GFW (national): DNS injection for the big foreign platforms; SNI and Host resets (residual)
//     for NEWS, HUMR, POLR, ANON, REL, LGBT; keyword resets on falun/tiananmen; null routing for FILE;
//     throttling of MMED (national by default: docs/INTERNAL-API.md attribution 5).
//   Henan (regional): SNI/Host resets for PORN, GMB, GAME, DATE and the second-level wildcards
//     *.com.au, *.co.za, *.org.uk (SP25), no residual.
//   ISP: a block page for HOST (the GFW never serves one).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CensorSpec, Scenario, SiteSpec, TargetSpec } from '../model/index.js';
import { fixturesDir } from '../probe/index.js';
import type { EvalRow } from './eval.js';

export const DEMO_LIST = join(fixturesDir, 'test-lists', 'cn.csv');

const DOMAIN_RE = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z]{2,63}$/;

/** Splits one CSV line (RFC 4180 quotes). */
export function csvFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (q) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') q = false;
      else cur += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

export interface ListEntry {
  url: string;
  host: string;
  category: string;
}

/** Reads a Citizen Lab test list; lines whose URL is not http(s) with a plain domain are skipped. */
export function readTestList(text: string): { entries: ListEntry[]; skipped: number } {
  const entries: ListEntry[] = [];
  let skipped = 0;
  const lines = text.split(/\r?\n/).filter((l) => l.trim());
  for (const line of lines.slice(1)) {
    const [url, category] = csvFields(line);
    try {
      const u = new URL(url ?? '');
      const host = u.hostname.toLowerCase();
      if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !DOMAIN_RE.test(host) || u.port) {
        skipped++;
        continue;
      }
      entries.push({ url: u.toString(), host, category: (category ?? '').trim() });
    } catch {
      skipped++;
    }
  }
  return { entries, skipped };
}

const esc = (d: string) => d.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const exact = (d: string) => `(^|\\.)${esc(d)}$`;

export function buildDemoScenario(listPath = DEMO_LIST, limit?: number): { scenario: Scenario; skipped: number } {
  const { entries: all, skipped } = readTestList(readFileSync(listPath, 'utf8'));
  const entries = limit ? all.slice(0, limit) : all;
  const cats = new Map<string, Set<string>>();
  for (const e of entries) {
    let s = cats.get(e.host);
    if (!s) cats.set(e.host, (s = new Set()));
    s.add(e.category);
  }
  const hostsIn = (...cs: string[]) => [...cats].filter(([, s]) => cs.some((c) => s.has(c))).map(([h]) => h);
  // Multimedia sites serve big pages, so that throttling them makes the fetch fail within the
  // probe's budget (a throttle that a page outruns is not blocking, and the truth says blocked).
  const mmed = new Set(hostsIn('MMED'));
  const sites: SiteSpec[] = [...cats.keys()].map((domain) => (mmed.has(domain) ? { domain, page: { bytes: 65536 } } : { domain }));
  const gfw: CensorSpec = {
    name: 'gfw',
    layer: 'national',
    dns_injection: {
      rules: ['(^|\\.)(google|youtube|facebook|twitter|instagram|blogspot|whatsapp|telegram)\\.(com|org|me)$'],
      injectors: 2,
      lead_ms: 20,
      ttl: [234, 185, 92],
    },
    sni_reset: { rules: hostsIn('NEWS', 'HUMR', 'POLR', 'ANON', 'REL', 'LGBT').map(exact), fingerprint: 'gfw-type-2', residual_s: 180 },
    http_reset: {
      host_rules: hostsIn('NEWS', 'HUMR', 'POLR', 'ANON', 'REL', 'LGBT').map(exact),
      keywords: ['falun', 'tiananmen'],
      residual_s: 90,
    },
    null_route: hostsIn('FILE'),
    throttle: { sni_rules: hostsIn('MMED').map(exact), host_rules: hostsIn('MMED').map(exact), kbps: 8 },
  };
  const henan: CensorSpec = {
    name: 'henan',
    layer: 'regional',
    sni_reset: {
      rules: [...hostsIn('PORN', 'GMB', 'GAME', 'DATE').map((d) => `${esc(d)}$`), '\\.com\\.au$', '\\.co\\.za$', '\\.org\\.uk$'],
      fingerprint: 'henan',
    },
    http_reset: {
      host_rules: [...hostsIn('PORN', 'GMB', 'GAME', 'DATE').map((d) => `${esc(d)}$`), '\\.com\\.au$', '\\.co\\.za$', '\\.org\\.uk$'],
    },
  };
  const isp: CensorSpec = {
    name: 'isp',
    layer: 'isp',
    blockpage: { host_rules: hostsIn('HOST').map(exact), page: { title: 'Access denied by your operator', bytes: 700 } },
  };
  // Path order: the provincial firewall is nearest the client, then the ISP's, then the border.
  const targets: TargetSpec[] = entries.map((e) => ({ url: e.url }));
  const scenario: Scenario = {
    name: 'demo-cn',
    seed: 1,
    world: { sites, resolvers: { isp: {}, public: {} }, helper: true },
    censors: [henan, isp, gfw],
    targets,
    source: listPath,
  };
  return { scenario, skipped };
}

export interface DemoSummary {
  targets: number;
  sites: number;
  blocked: number;
  accessible: number;
  other: number;
  byMechanism: Record<string, number>;
  byLayer: Record<string, number>;
  truthBlocked: number;
}

/** Counts what the probe concluded (not what the lab did: that is `truthBlocked` and the score). */
export function summarize(rows: EvalRow[], sites: number): DemoSummary {
  const s: DemoSummary = {
    targets: rows.length,
    sites,
    blocked: 0,
    accessible: 0,
    other: 0,
    byMechanism: {},
    byLayer: {},
    truthBlocked: 0,
  };
  for (const r of rows) {
    if (r.expected.blocking) s.truthBlocked++;
    if (r.got.blocking) {
      s.blocked++;
      const m = r.got.mechanism ?? 'unknown';
      const l = r.got.layer ?? 'unknown';
      s.byMechanism[m] = (s.byMechanism[m] ?? 0) + 1;
      s.byLayer[l] = (s.byLayer[l] ?? 0) + 1;
    } else if (r.got.accessible) s.accessible++;
    else s.other++;
  }
  return s;
}
