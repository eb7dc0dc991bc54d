// The comparisons OONI's web_connectivity writes into test_keys (ts-017): DNS consistency and the
// HTTP body/status/headers/title matches between the probe and the control. These are evidence
// keys, not a verdict: the verdict comes from src/analysis.
import net from 'node:net';
import type { ControlResponse } from '../model/index.js';
import { compareHttp as analysisCompareHttp } from '../analysis/index.js';
import type { NetPolicy } from './policy.js';
import { lookupAsn } from './geo.js';

/** ts-017 DNS consistency, v0.4 rules, with lab ranges counted as public (policy). */
export function dnsConsistency(
  host: string,
  probeAddrs: string[],
  probeFailure: string | null,
  control: ControlResponse | null,
  policy: NetPolicy,
): 'consistent' | 'inconsistent' | null {
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

/**
 * The ts-017 HTTP keys the probe writes, computed by the analysis' one comparison
 * (analysis/http-compare.ts, the reference's rules), so that recorded and re-derived keys agree.
 */
export function compareHttp(
  probe: { status: number; headers: string[]; bodyLength: number; truncated: boolean; title: string } | null,
  control: ControlResponse | null,
): HttpComparison {
  const none: HttpComparison = {
    body_length_match: null,
    body_proportion: null,
    status_code_match: null,
    headers_match: null,
    title_match: null,
  };
  if (!probe || !control || control.http_request.failure !== null || control.http_request.status_code <= 0) return none;
  const c = control.http_request;
  const cmp = analysisCompareHttp(
    {
      code: probe.status,
      bodyLength: probe.bodyLength,
      truncated: probe.truncated,
      headerNames: probe.headers,
      title: probe.title || null,
    },
    { status_code: c.status_code, body_length: c.body_length, headerNames: Object.keys(c.headers), title: c.title || null },
  );
  return {
    body_length_match: cmp.bodyLengthMatch,
    body_proportion: cmp.bodyProportion,
    status_code_match: cmp.statusCodeMatch,
    headers_match: cmp.headersMatch,
    title_match: cmp.titleMatch,
  };
}
