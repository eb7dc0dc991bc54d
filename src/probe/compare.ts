// The comparisons OONI's web_connectivity writes into test_keys (ts-017): DNS consistency and the
// HTTP body/status/headers/title matches between the probe and the control. These are evidence
// keys, not a verdict: the verdict comes from src/analysis.
import net from 'node:net';
import type { ControlResponse, DnsQuery } from '../model/index.js';
import type { NetPolicy } from './policy.js';
import { lookupAsn } from './geo.js';

const COMMON_HEADERS = new Set([
  'date', 'content-type', 'server', 'cache-control', 'vary', 'set-cookie', 'location', 'expires', 'x-powered-by',
  'content-encoding', 'last-modified', 'accept-ranges', 'pragma', 'x-frame-options', 'etag', 'x-content-type-options',
  'age', 'via', 'p3p', 'x-xss-protection', 'content-language', 'cf-ray', 'strict-transport-security', 'link', 'x-varnish',
  'content-length', 'connection', 'transfer-encoding', 'keep-alive',
]);

/** ts-017 DNS consistency, v0.4 rules, with lab ranges counted as public (policy). */
export function dnsConsistency(host: string, probeAddrs: string[], probeFailure: string | null, control: ControlResponse | null, policy: NetPolicy): 'consistent' | 'inconsistent' | null {
  if (net.isIP(host)) return 'consistent';
  if (!control) return null;
  const cf = control.dns.failure as string | null;
  if (cf !== null) {
    if ((cf === 'dns_name_error' || cf === 'dns_nxdomain_error') && probeFailure === 'dns_nxdomain_error') return 'consistent';
    return null;
  }
  if (probeFailure !== null || probeAddrs.length === 0) return 'inconsistent';
  if (probeAddrs.some((a) => policy.isBogon(a))) return 'inconsistent';
  const ctl = new Set(control.dns.addrs);
  if (probeAddrs.some((a) => ctl.has(a))) return 'consistent';
  const asnOf = (ip: string): number => control.ip_info?.[ip]?.asn ?? lookupAsn(ip)?.asn ?? 0;
  const ctlAsns = new Set(control.dns.addrs.map(asnOf).filter((n) => n !== 0));
  if (probeAddrs.some((a) => ctlAsns.has(asnOf(a)))) return 'consistent';
  return 'inconsistent';
}

export interface HttpComparison {
  body_length_match: boolean | null;
  body_proportion: number | null;
  status_code_match: boolean | null;
  headers_match: boolean | null;
  title_match: boolean | null;
}

export function compareHttp(probe: { status: number; headers: string[]; bodyLength: number; truncated: boolean; title: string } | null, control: ControlResponse | null): HttpComparison {
  const none: HttpComparison = { body_length_match: null, body_proportion: null, status_code_match: null, headers_match: null, title_match: null };
  if (!probe || !control || control.http_request.failure !== null || control.http_request.status_code <= 0) return none;
  const c = control.http_request;
  let body_proportion: number | null = null;
  if (!probe.truncated && probe.bodyLength > 0 && c.body_length > 0) {
    body_proportion = Math.min(probe.bodyLength, c.body_length) / Math.max(probe.bodyLength, c.body_length);
  } else if (probe.bodyLength === 0 && c.body_length === 0) body_proportion = 1;
  const status_code_match = probe.status === c.status_code ? true : Math.floor(c.status_code / 100) === 5 ? null : false;
  const uncommon = (hs: string[]): Set<string> => new Set(hs.map((h) => h.toLowerCase()).filter((h) => !COMMON_HEADERS.has(h)));
  const ph = uncommon(probe.headers);
  const ch = uncommon(Object.keys(c.headers));
  const headers_match = ph.size === 0 && ch.size === 0 ? true : [...ph].some((h) => ch.has(h));
  const words = (t: string): string[] => t.toLowerCase().split(/\s+/).filter((w) => [...w].length >= 5);
  const cw = words(c.title);
  const pw = new Set(words(probe.title));
  const title_match = cw.length === 0 ? null : cw.some((w) => pw.has(w));
  return { body_length_match: body_proportion === null ? null : body_proportion > 0.7, body_proportion, status_code_match, headers_match, title_match };
}
