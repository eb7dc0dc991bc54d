import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Measurement, WebConnectivityTestKeys } from '../model/index.js';
import { analyzeWebConnectivity, ANALYSIS_VERSION, type AnalysisContext } from './webconnectivity.js';
import { emptyFingerprintSet, parseAddressList, parseFingerprintCsv } from './fingerprints.js';

// A measurement of a site that works, as our probe writes it; each case below breaks one thing.
const SITE = '93.184.216.34';
const PAGE = '<html><head><title>Example Domain Homepage</title></head><body>' + 'x'.repeat(1400) + '</body></html>';

type TK = WebConnectivityTestKeys & Record<string, unknown>;

function base(url = 'https://www.example.com/'): Measurement<TK> {
  const u = new URL(url);
  const port = u.protocol === 'https:' ? 443 : 80;
  const ep = `${SITE}:${port}`;
  const tk = {
    agent: 'redirect',
    client_resolver: null,
    retries: null,
    socksproxy: null,
    network_events: [],
    queries: [
      {
        engine: 'udp',
        resolver_address: '127.0.0.53:53',
        hostname: u.hostname,
        query_type: 'A',
        failure: null,
        answers: [{ answer_type: 'A', ipv4: SITE, ttl: 60 }],
        t: 0.01,
      },
    ],
    tcp_connect: [{ ip: SITE, port, status: { success: true, failure: null }, t: 0.02 }],
    tls_handshakes:
      port === 443
        ? [
            {
              address: ep,
              server_name: u.hostname,
              failure: null,
              tls_version: 'TLSv1.3',
              cipher_suite: '',
              negotiated_protocol: 'http/1.1',
              no_tls_verify: false,
              peer_certificates: null,
              t: 0.03,
            },
          ]
        : [],
    requests: [
      {
        failure: null,
        request: { url, method: 'GET', headers: {}, body: '', body_is_truncated: false },
        response: { code: 200, headers: { 'Content-Type': 'text/html', 'X-Site': 'a' }, body: PAGE, body_is_truncated: false },
        t: 0.05,
      },
    ],
    control: {
      tcp_connect: { [ep]: { status: true, failure: null } },
      http_request: {
        body_length: PAGE.length,
        failure: null,
        title: 'Example Domain Homepage',
        headers: { 'Content-Type': 'text/html', 'X-Site': 'a' },
        status_code: 200,
      },
      dns: { failure: null, addrs: [SITE] },
    },
    control_failure: null,
    dns_experiment_failure: null,
    dns_consistency: null,
    http_experiment_failure: null,
    body_length_match: null,
    body_proportion: null,
    headers_match: null,
    status_code_match: null,
    title_match: null,
    blocking: null,
    accessible: null,
  } as unknown as TK;
  return {
    annotations: {},
    data_format_version: '0.2.0',
    input: url,
    measurement_start_time: '2026-11-22 00:00:00',
    probe_asn: 'AS0',
    probe_cc: 'ZZ',
    probe_ip: '127.0.0.1',
    probe_network_name: '',
    report_id: 'r',
    resolver_asn: 'AS0',
    resolver_ip: '127.0.0.1',
    resolver_network_name: '',
    software_name: 'wallscope',
    software_version: '0',
    test_helpers: {},
    test_keys: tk,
    test_name: 'web_connectivity',
    test_runtime: 1,
    test_start_time: '2026-11-22 00:00:00',
    test_version: '0.5.0',
  };
}

/** The request failed the way our probe records it when no endpoint worked (or the fetch failed). */
function failRequest(tk: TK, failure: string): void {
  tk.requests![0].failure = failure as never;
  tk.requests![0].response = null;
  tk.http_experiment_failure = failure as never;
}
function failTls(tk: TK, failure: string, extra: Record<string, unknown> = {}): void {
  Object.assign(tk.tls_handshakes![0], { failure, ...extra });
  failRequest(tk, failure);
}

/** The first request redirected to `url`, whose fetch then failed with `failure` (OONI order: last first). */
function redirectTo(tk: TK, url: string, failure: string): void {
  const first = tk.requests![0];
  first.response = { code: 302, headers: { Location: url }, body: '', body_is_truncated: false };
  tk.requests!.unshift({
    failure: failure as never,
    request: { url, method: 'GET', headers: {}, body: '', body_is_truncated: false },
    response: null,
    t: 0.3,
  });
  tk.http_experiment_failure = failure as never;
}

interface Case {
  name: string;
  url?: string;
  edit: (tk: TK) => void;
  ctx?: AnalysisContext;
  want: {
    status: string;
    blocking?: string | null;
    accessible?: boolean | null;
    mechanism?: string | null;
    layer?: string | null;
    evidence?: string[];
    confirmed?: boolean;
  };
}

const fps = parseFingerprintCsv(
  'name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\n' +
    'test.nat_page,nat,,body,contains,This site is blocked by order,5,ZZ,test,,\n' +
    'test.dns_1,nat,,dns,full,46.82.174.68,5,ZZ,test,,\n',
  'inline',
);
parseAddressList('31.13.94.37\n157.240.17.35\n', 'pool', fps);

const CASES: Case[] = [
  {
    name: 'a working https site is accessible',
    edit: () => {},
    want: { status: 'ok', blocking: null, accessible: true, mechanism: 'none', layer: null },
  },
  {
    name: 'a working http site whose page matches is accessible',
    url: 'http://www.example.com/',
    edit: () => {},
    want: { status: 'ok', accessible: true, mechanism: 'none' },
  },
  // DNS
  {
    name: 'two different replies to one query: national injection',
    edit: (tk) => {
      tk.queries![0].answers = [{ answer_type: 'A', ipv4: '31.13.94.99', ttl: 60 }];
      tk.x_dns_duplicate_responses = [
        {
          engine: 'udp',
          resolver_address: '127.0.0.53:53',
          hostname: 'www.example.com',
          query_type: 'A',
          failure: null,
          answers: [{ answer_type: 'A', ipv4: SITE, ttl: 60 }],
          t: 0.02,
        },
      ];
    },
    want: {
      status: 'blocked',
      blocking: 'dns',
      mechanism: 'dns.injection',
      layer: 'national',
      evidence: ['queries[0]', 'x_dns_duplicate_responses[0]'],
    },
  },
  {
    name: 'identical duplicate replies are not injection',
    edit: (tk) => {
      tk.x_dns_duplicate_responses = [{ ...tk.queries![0] }];
    },
    want: { status: 'ok' },
  },
  {
    name: 'an A record answering an AAAA query is forged',
    edit: (tk) => {
      tk.queries!.push({
        engine: 'udp',
        resolver_address: '127.0.0.53:53',
        hostname: 'www.example.com',
        query_type: 'AAAA',
        failure: null,
        answers: [{ answer_type: 'A', ipv4: SITE, ttl: 60 }],
        t: 0.01,
      });
    },
    want: { status: 'blocked', blocking: 'dns', mechanism: 'dns.injection', layer: 'national' },
  },
  {
    name: 'an answer from a known forged pool is injection',
    ctx: { fingerprints: fps },
    edit: (tk) => {
      tk.queries![0].answers = [{ answer_type: 'A', ipv4: '157.240.17.35', ttl: 60 }];
      tk.tcp_connect![0] = { ip: '157.240.17.35', port: 443, status: { success: false, failure: 'generic_timeout_error' }, t: 1 };
    },
    want: { status: 'blocked', blocking: 'dns', mechanism: 'dns.injection', layer: 'national', confirmed: true },
  },
  {
    name: 'an answer matching a DNS fingerprint is confirmed injection',
    ctx: { fingerprints: fps },
    edit: (tk) => {
      tk.queries![0].answers = [{ answer_type: 'A', ipv4: '46.82.174.68', ttl: 60 }];
    },
    want: { status: 'blocked', blocking: 'dns', mechanism: 'dns.injection', confirmed: true },
  },
  {
    name: 'NXDOMAIN from the ISP resolver while the control resolves: dns.nxdomain, isp',
    edit: (tk) => {
      tk.queries![0].failure = 'dns_nxdomain_error';
      tk.queries![0].answers = null;
      tk.tcp_connect = [];
      tk.tls_handshakes = [];
      failRequest(tk, 'dns_nxdomain_error');
    },
    want: { status: 'blocked', blocking: 'dns', accessible: false, mechanism: 'dns.nxdomain', layer: 'isp' },
  },
  {
    name: 'SERVFAIL from the ISP resolver: dns.servfail',
    edit: (tk) => {
      tk.queries![0].failure = 'dns_servfail_error';
      tk.queries![0].answers = null;
      tk.tcp_connect = [];
      tk.tls_handshakes = [];
      failRequest(tk, 'dns_servfail_error');
    },
    want: { status: 'blocked', blocking: 'dns', mechanism: 'dns.servfail', layer: 'isp' },
  },
  {
    name: 'NXDOMAIN for the probe and the control: the site is down',
    edit: (tk) => {
      tk.queries![0].failure = 'dns_nxdomain_error';
      tk.queries![0].answers = null;
      tk.tcp_connect = [];
      tk.tls_handshakes = [];
      failRequest(tk, 'dns_nxdomain_error');
      (tk.control as Record<string, unknown>).dns = { failure: 'dns_name_error', addrs: [] };
    },
    want: { status: 'down', blocking: null, accessible: false, mechanism: 'none' },
  },
  {
    name: 'a loopback answer is a bogon',
    edit: (tk) => {
      tk.queries![0].answers = [{ answer_type: 'A', ipv4: '127.0.0.2', ttl: 60 }];
    },
    want: { status: 'blocked', blocking: 'dns', mechanism: 'dns.bogon', layer: 'isp' },
  },
  {
    name: 'a private answer is a bogon even with allowNets elsewhere',
    ctx: { allowNets: ['127.0.0.0/8'] },
    edit: (tk) => {
      tk.queries![0].answers = [{ answer_type: 'A', ipv4: '10.10.34.35', ttl: 60 }];
    },
    want: { status: 'blocked', blocking: 'dns', mechanism: 'dns.bogon' },
  },
  {
    name: 'lab mode: 127.x answers inside allowNets are public addresses',
    ctx: { allowNets: ['127.0.0.0/8'] },
    edit: (tk) => {
      for (const q of tk.queries!) q.answers = [{ answer_type: 'A', ipv4: '127.1.0.5', ttl: 60 }];
      tk.tcp_connect![0].ip = '127.1.0.5';
      tk.tls_handshakes![0].address = '127.1.0.5:443';
      (tk.control as Record<string, unknown>).dns = { failure: null, addrs: ['127.1.0.5'] };
    },
    want: { status: 'ok', mechanism: 'none' },
  },
  {
    name: 'the site resolves to a private address for the control too: down',
    edit: (tk) => {
      tk.queries![0].answers = [{ answer_type: 'A', ipv4: '127.0.0.1', ttl: 60 }];
      tk.tcp_connect = [];
      tk.tls_handshakes = [];
      tk.requests = [];
      (tk.control as Record<string, unknown>).dns = { failure: null, addrs: ['127.0.0.1'] };
    },
    want: { status: 'down', accessible: false },
  },
  {
    name: 'an inconsistent answer whose address fails is injection (isp)',
    edit: (tk) => {
      tk.queries![0].answers = [{ answer_type: 'A', ipv4: '46.82.174.1', ttl: 60 }];
      tk.tcp_connect = [{ ip: '46.82.174.1', port: 443, status: { success: false, failure: 'connection_refused' }, t: 1 }];
      tk.tls_handshakes = [];
      failRequest(tk, 'connection_refused');
    },
    want: { status: 'blocked', blocking: 'dns', mechanism: 'dns.injection', layer: 'isp' },
  },
  {
    name: 'an inconsistent answer leading to an untrusted certificate: tls.mitm via DNS (isp)',
    edit: (tk) => {
      tk.queries![0].answers = [{ answer_type: 'A', ipv4: '46.82.174.1', ttl: 60 }];
      tk.tcp_connect![0].ip = '46.82.174.1';
      tk.tls_handshakes![0].address = '46.82.174.1:443';
      tk.tls_handshakes![0].failure = 'ssl_unknown_authority';
      failRequest(tk, 'ssl_unknown_authority');
    },
    want: { status: 'blocked', blocking: 'dns', mechanism: 'tls.mitm', layer: 'isp' },
  },
  {
    name: 'an inconsistent answer in the same ASN (CDN) is consistent',
    ctx: { asnOf: (ip) => (ip.startsWith('93.184.') ? { asn: 15133, org: 'Edgecast' } : null) },
    edit: (tk) => {
      tk.queries![0].answers = [{ answer_type: 'A', ipv4: '93.184.216.99', ttl: 60 }];
      tk.tcp_connect![0].ip = '93.184.216.99';
      tk.tls_handshakes![0].address = '93.184.216.99:443';
    },
    want: { status: 'ok' },
  },
  {
    name: 'an inconsistent answer serving a different plain-http page is dns',
    url: 'http://www.example.com/',
    edit: (tk) => {
      tk.queries![0].answers = [{ answer_type: 'A', ipv4: '46.82.174.1', ttl: 60 }];
      tk.tcp_connect![0].ip = '46.82.174.1';
      tk.requests![0].response = { code: 200, headers: { Server: 'x' }, body: '<title>Nothing here</title>', body_is_truncated: false };
    },
    want: { status: 'blocked', blocking: 'dns', mechanism: 'dns.injection' },
  },
  // TCP
  {
    name: 'every connect times out while the control connects: tcp.timeout, national',
    edit: (tk) => {
      tk.tcp_connect![0].status = { success: false, failure: 'generic_timeout_error' };
      tk.tls_handshakes = [];
      failRequest(tk, 'generic_timeout_error');
    },
    want: {
      status: 'blocked',
      blocking: 'tcp_ip',
      mechanism: 'tcp.timeout',
      layer: 'national',
      evidence: ['tcp_connect[0]', 'control.tcp_connect'],
    },
  },
  {
    name: 'every connect refused while the control connects: tcp.refused',
    edit: (tk) => {
      tk.tcp_connect![0].status = { success: false, failure: 'connection_refused' };
      tk.tls_handshakes = [];
      failRequest(tk, 'connection_refused');
    },
    want: { status: 'blocked', blocking: 'tcp_ip', mechanism: 'tcp.refused', layer: 'isp' },
  },
  {
    name: 'connect fails for the control too: down',
    edit: (tk) => {
      tk.tcp_connect![0].status = { success: false, failure: 'connection_refused' };
      tk.tls_handshakes = [];
      failRequest(tk, 'connection_refused');
      (tk.control as Record<string, { [k: string]: unknown }>).tcp_connect[`${SITE}:443`] = {
        status: false,
        failure: 'connection_refused_error',
      };
    },
    want: { status: 'down', accessible: false },
  },
  {
    name: 'an unreachable IPv6 address beside a working IPv4 one is not blocking',
    edit: (tk) => {
      tk.tcp_connect!.push({ ip: '2001:db8::1', port: 443, status: { success: false, failure: 'host_unreachable' }, t: 1 });
    },
    want: { status: 'ok' },
  },
  // TLS
  {
    name: 'TLS reset, benign decoy after it also reset: tls.reset, national (residual behaviour)',
    edit: (tk) => {
      failTls(tk, 'connection_reset');
      tk.x_tls_sni_variants = [
        { tag: 'decoy-before', address: `${SITE}:443`, server_name: 'example.org', failure: null },
        { tag: 'no-sni', address: `${SITE}:443`, server_name: null, failure: null },
        { tag: 'decoy-after', address: `${SITE}:443`, server_name: 'example.org', failure: 'connection_reset' },
      ];
    },
    want: {
      status: 'blocked',
      blocking: 'http-failure',
      mechanism: 'tls.reset',
      layer: 'national',
      evidence: ['tls_handshakes[0]', 'control.http_request', 'x_tls_sni_variants[2]'],
    },
  },
  {
    name: 'TLS reset, benign decoy after it fine: tls.reset, regional',
    edit: (tk) => {
      failTls(tk, 'connection_reset');
      tk.x_tls_sni_variants = [
        { tag: 'decoy-before', address: `${SITE}:443`, server_name: 'example.org', failure: null },
        { tag: 'decoy-after', address: `${SITE}:443`, server_name: 'example.org', failure: null },
      ];
    },
    want: { status: 'blocked', blocking: 'http-failure', mechanism: 'tls.reset', layer: 'regional' },
  },
  {
    name: 'TLS reset with no follow-ups: layer from reset latency (fast: regional)',
    edit: (tk) => {
      failTls(tk, 'connection_reset', { x_reset_latency_ms: 2.8 });
    },
    want: { status: 'blocked', mechanism: 'tls.reset', layer: 'regional' },
  },
  {
    name: 'TLS reset with no follow-ups: layer from reset latency (slow: national)',
    edit: (tk) => {
      failTls(tk, 'connection_reset', { x_reset_latency_ms: 18 });
    },
    want: { status: 'blocked', mechanism: 'tls.reset', layer: 'national' },
  },
  {
    name: 'TLS reset with nothing else known: layer unknown',
    edit: (tk) => {
      failTls(tk, 'eof_error');
    },
    want: { status: 'blocked', mechanism: 'tls.reset', layer: 'unknown' },
  },
  {
    name: 'a benign decoy reset BEFORE the real handshake: residual, national',
    edit: (tk) => {
      failTls(tk, 'connection_reset');
      tk.x_tls_sni_variants = [
        { tag: 'decoy-before', address: `${SITE}:443`, server_name: 'example.org', failure: 'connection_reset' },
        { tag: 'decoy-after', address: `${SITE}:443`, server_name: 'example.org', failure: 'connection_reset' },
      ];
    },
    want: { status: 'blocked', blocking: 'http-failure', mechanism: 'residual', layer: 'national' },
  },
  {
    name: 'TLS handshake timeout: tls.timeout',
    edit: (tk) => {
      failTls(tk, 'generic_timeout_error');
    },
    want: { status: 'blocked', blocking: 'http-failure', mechanism: 'tls.timeout' },
  },
  {
    name: 'TLS timeout after bytes arrived: throttle',
    edit: (tk) => {
      failTls(tk, 'generic_timeout_error');
      tk.network_events = [{ operation: 'read', address: `${SITE}:443`, failure: null, num_bytes: 517, t: 0.5 }];
    },
    want: { status: 'blocked', blocking: 'http-failure', mechanism: 'throttle' },
  },
  {
    name: 'unknown certificate authority while the control is fine: tls.mitm',
    edit: (tk) => {
      failTls(tk, 'ssl_unknown_authority');
    },
    want: { status: 'blocked', blocking: 'http-failure', mechanism: 'tls.mitm' },
  },
  {
    name: 'bad certificate for the control too: down',
    edit: (tk) => {
      failTls(tk, 'ssl_invalid_certificate');
      Object.assign((tk.control as { http_request: Record<string, unknown> }).http_request, {
        failure: 'ssl_invalid_certificate',
        status_code: -1,
        body_length: -1,
      });
    },
    want: { status: 'down', accessible: false },
  },
  // HTTP
  {
    name: 'plain http reset, benign request after it also reset: http.reset, national',
    url: 'http://www.example.com/',
    edit: (tk) => {
      failRequest(tk, 'connection_reset');
      tk.x_residual_checks = [{ tag: 'decoy-after', address: `${SITE}:80`, host: 'example.org', failure: 'connection_reset' }];
    },
    want: {
      status: 'blocked',
      blocking: 'http-failure',
      mechanism: 'http.reset',
      layer: 'national',
      evidence: ['requests[0]', 'control.http_request', 'x_residual_checks[0]'],
    },
  },
  {
    name: 'plain http reset, benign request after it fine: http.reset, regional',
    url: 'http://www.example.com/',
    edit: (tk) => {
      failRequest(tk, 'connection_reset');
      tk.x_residual_checks = [{ tag: 'decoy-after', address: `${SITE}:80`, host: 'example.org', failure: null }];
    },
    want: { status: 'blocked', mechanism: 'http.reset', layer: 'regional' },
  },
  {
    name: 'plain http timeout with no bytes: http.timeout',
    url: 'http://www.example.com/',
    edit: (tk) => {
      failRequest(tk, 'generic_timeout_error');
    },
    want: { status: 'blocked', blocking: 'http-failure', mechanism: 'http.timeout' },
  },
  {
    name: 'http body stalls after the headers arrived: throttle',
    url: 'http://www.example.com/',
    edit: (tk) => {
      tk.requests![0].failure = 'generic_timeout_error';
      tk.http_experiment_failure = 'generic_timeout_error';
      tk.requests![0].response = { code: 200, headers: {}, body: 'x'.repeat(300), body_is_truncated: true };
    },
    want: { status: 'blocked', blocking: 'http-failure', mechanism: 'throttle', layer: 'national' },
  },
  {
    name: 'a page matching a national blockpage fingerprint: confirmed http.blockpage',
    url: 'http://www.example.com/',
    ctx: { fingerprints: fps },
    edit: (tk) => {
      tk.requests![0].response!.body = '<html><title>Notice</title>This site is blocked by order of the court</html>';
    },
    want: { status: 'blocked', blocking: 'http-diff', mechanism: 'http.blockpage', layer: 'national', confirmed: true },
  },
  {
    name: 'a fingerprint inside the real page (it matches the control) is not evidence',
    url: 'http://www.example.com/',
    ctx: { fingerprints: fps },
    edit: (tk) => {
      tk.requests![0].response!.body = PAGE.replace('</body>', 'This site is blocked by order</body>');
    },
    want: { status: 'ok', mechanism: 'none', confirmed: false },
  },
  {
    name: 'a blockpage fingerprint still counts when the control could not fetch the page',
    url: 'http://www.example.com/',
    ctx: { fingerprints: fps },
    edit: (tk) => {
      tk.requests![0].response!.body = '<html><title>Notice</title>This site is blocked by order</html>';
      Object.assign((tk.control as { http_request: Record<string, unknown> }).http_request, {
        failure: 'generic_timeout_error',
        status_code: -1,
        body_length: -1,
      });
    },
    want: { status: 'blocked', blocking: 'http-diff', mechanism: 'http.blockpage', confirmed: true },
  },
  {
    name: 'a small page with another title, status 200: http.blockpage (isp)',
    url: 'http://www.example.com/',
    edit: (tk) => {
      tk.requests![0].response = {
        code: 200,
        headers: { Server: 'filter' },
        body: '<html><title>Access Denied</title></html>',
        body_is_truncated: false,
      };
    },
    want: { status: 'blocked', blocking: 'http-diff', mechanism: 'http.blockpage', layer: 'isp' },
  },
  {
    name: 'a different status and body: http.diff',
    url: 'http://www.example.com/',
    edit: (tk) => {
      tk.requests![0].response = { code: 503, headers: { Server: 'x' }, body: 'error', body_is_truncated: false };
    },
    want: { status: 'blocked', blocking: 'http-diff', mechanism: 'http.diff', layer: 'unknown' },
  },
  {
    name: 'a page with the same status and title but other size is accessible',
    url: 'http://www.example.com/',
    edit: (tk) => {
      tk.requests![0].response!.body = PAGE + 'y'.repeat(5000);
      tk.requests![0].response!.headers = { Other: '1' };
    },
    want: { status: 'ok' },
  },
  // Redirect chains: later steps are often only in network_events (our probe, OONI v0.4)
  {
    name: 'the site redirects to an unusable Location (OONI: http_invalid_redirect_location_host): http-failure, no mechanism, no layer',
    url: 'http://www.example.com/',
    edit: (tk) => {
      tk.requests![0].response = { code: 302, headers: { Location: 'http://' }, body: '', body_is_truncated: false };
      tk.requests![0].failure = 'http_invalid_redirect_location_host' as never;
      tk.http_experiment_failure = 'http_invalid_redirect_location_host' as never;
    },
    want: { status: 'blocked', blocking: 'http-failure', accessible: false, mechanism: 'none', layer: null, evidence: ['requests[0]'] },
  },
  {
    name: 'the site redirects to an unusable Location (our probe: unknown_failure, the control fails too): still http-failure, no mechanism',
    edit: (tk) => {
      tk.requests![0].response = { code: 302, headers: { Location: 'https://' }, body: '', body_is_truncated: false };
      tk.http_experiment_failure = 'unknown_failure: bad redirect location: https://' as never;
      tk.control!.http_request = { body_length: -1, failure: 'unknown_error', title: '', headers: {}, status_code: -1 } as never;
    },
    want: { status: 'blocked', blocking: 'http-failure', accessible: false, mechanism: 'none', layer: null },
  },
  {
    name: 'redirect target on another port closed by EOF, a follow-up to that endpoint too: http.reset, national (endpoint from the failed transaction)',
    url: 'https://www.example.com/',
    edit: (tk) => {
      redirectTo(tk, 'http://www.example.org:8080/', 'eof_error');
      tk.network_events = [
        { operation: 'connect', address: '93.184.216.35:8080', failure: null, t0: 0.2, t: 0.21 },
        { operation: 'write', address: '93.184.216.35:8080', failure: null, t0: 0.22, t: 0.22 },
        { operation: 'http_transaction_done', address: '93.184.216.35:8080', failure: 'eof_error', t0: 0.21, t: 0.24 },
      ];
      tk.x_residual_checks = [{ tag: 'decoy-after', address: '93.184.216.35:8080', host: 'www.example.com', failure: 'eof_error' }];
    },
    want: { status: 'blocked', blocking: 'http-failure', mechanism: 'http.reset', layer: 'national', evidence: ['x_residual_checks[0]'] },
  },
  {
    name: 'redirect target: TLS reset seen only in network_events, 28 ms after the ClientHello: tls.reset, national',
    edit: (tk) => {
      redirectTo(tk, 'https://www.example.org/', 'connection_reset');
      tk.network_events = [
        { operation: 'tls_handshake_start', address: '93.184.216.35:443', failure: null, t: 0.294 },
        // our probe logs the handshake's bytes as a write stamped with the handshake's end
        { operation: 'write', address: '93.184.216.35:443', failure: null, num_bytes: 517, t: 0.322 },
        { operation: 'tls_handshake_done', address: '93.184.216.35:443', failure: 'connection_reset', t: 0.322 },
      ];
    },
    want: {
      status: 'blocked',
      blocking: 'http-failure',
      mechanism: 'tls.reset',
      layer: 'national',
      evidence: ['requests[0]', 'network_events[2]'],
    },
  },
  {
    name: 'redirect target: the resolver says NXDOMAIN: dns.nxdomain, isp',
    url: 'http://www.example.com/',
    edit: (tk) => {
      redirectTo(tk, 'http://www.example.org/', 'dns_nxdomain_error');
    },
    want: { status: 'blocked', blocking: 'dns', mechanism: 'dns.nxdomain', layer: 'isp' },
  },
  {
    name: 'redirect target: connect timeout: tcp.timeout (http-failure class), national',
    url: 'http://www.example.com/',
    edit: (tk) => {
      redirectTo(tk, 'http://www.example.org/', 'generic_timeout_error');
      tk.network_events = [{ operation: 'connect', address: '93.184.216.35:80', failure: 'generic_timeout_error', t: 1.5 }];
    },
    want: { status: 'blocked', blocking: 'http-failure', mechanism: 'tcp.timeout', layer: 'national' },
  },
  {
    name: 'HTTPS: the handshake completed, then the request starved until the timeout: throttle',
    edit: (tk) => {
      failRequest(tk, 'generic_timeout_error');
      tk.network_events = [
        { operation: 'tls_handshake_start', address: `${SITE}:443`, failure: null, t: 0.001 },
        { operation: 'tls_handshake_done', address: `${SITE}:443`, failure: null, t: 0.12 },
        { operation: 'tls_handshake_start', address: `${SITE}:443`, failure: null, t: 0.2 },
        { operation: 'tls_handshake_done', address: `${SITE}:443`, failure: null, t: 0.92 },
      ];
    },
    want: { status: 'blocked', blocking: 'http-failure', mechanism: 'throttle' },
  },
  // control
  {
    name: 'no control: unknown, unless HTTPS loaded',
    url: 'http://www.example.com/',
    edit: (tk) => {
      tk.control = null;
      tk.control_failure = 'connection_refused';
    },
    want: { status: 'unknown', blocking: null, accessible: null, mechanism: null },
  },
  {
    name: 'no control but HTTPS loaded with a valid certificate: accessible',
    edit: (tk) => {
      tk.control = {};
      tk.control_failure = 'generic_timeout_error';
    },
    want: { status: 'ok', accessible: true },
  },
];

describe('analyzeWebConnectivity(m, ctx)', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const m = base(c.url);
      c.edit(m.test_keys);
      const before = JSON.stringify(m);
      const v = analyzeWebConnectivity(m, c.ctx);
      assert.equal(JSON.stringify(m), before, 'the measurement must not be modified');
      const got: Record<string, unknown> = {};
      for (const k of Object.keys(c.want))
        got[k] =
          k === 'evidence' ? v.evidence.filter((e) => (c.want.evidence ?? []).includes(e)) : (v as unknown as Record<string, unknown>)[k];
      assert.deepEqual(got, c.want, v.explanation);
      assert.equal(v.analysis_version, ANALYSIS_VERSION);
      assert.ok(v.explanation.length > 20 && v.explanation.length < 600, 'a plain explanation');
      assert.ok(v.confidence >= 0 && v.confidence <= 1);
      if (v.status === 'blocked') assert.ok(v.evidence.length > 0, 'a blocked verdict names its evidence');
      if (v.status !== 'blocked') assert.equal(v.layer, null);
    });
  }

  test('the same context object is reused across calls (prepared once)', () => {
    const ctx: AnalysisContext = { allowNets: ['127.0.0.0/8'], fingerprints: emptyFingerprintSet() };
    const a = analyzeWebConnectivity(base(), ctx);
    const b = analyzeWebConnectivity(base(), ctx);
    assert.deepEqual(a, b);
  });

  test('never reads test_keys.blocking: a lying recorded verdict changes nothing', () => {
    const m = base();
    const v1 = analyzeWebConnectivity(m);
    m.test_keys.blocking = 'dns';
    m.test_keys.accessible = false;
    m.test_keys.dns_consistency = 'inconsistent';
    assert.deepEqual(analyzeWebConnectivity(m), v1);
  });
});
