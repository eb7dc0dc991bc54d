// The OONI data format 0.2.0 (ooni/spec data-formats/df-000-base.md and the df-00x building
// blocks), as wallscope writes it and reads it. Our own keys are prefixed `x_`.
import type { Failure } from './failure.js';

/** OONI's `blocking` at the format boundary: false, a string class, or null (unknown). */
export type OoniBlocking = false | 'dns' | 'tcp_ip' | 'http-failure' | 'http-diff' | null;

export interface Measurement<TK = Record<string, unknown>> {
  annotations: Record<string, string>;
  data_format_version: '0.2.0';
  input: string | null;
  measurement_start_time: string; // "YYYY-MM-DD hh:mm:ss" UTC
  probe_asn: string; // "AS1234", "AS0" when unknown/withheld
  probe_cc: string; // "ZZ" when unknown/withheld
  probe_ip: string; // always "127.0.0.1" from wallscope (withheld)
  probe_network_name: string;
  report_id: string;
  resolver_asn: string;
  resolver_ip: string;
  resolver_network_name: string;
  software_name: string;
  software_version: string;
  test_helpers: Record<string, unknown>;
  test_keys: TK;
  test_name: string;
  test_runtime: number;
  test_start_time: string;
  test_version: string;
  /** Present on measurements served by OONI's API and by our collector. */
  measurement_uid?: string;
  [extra: `x_${string}`]: unknown;
}

/** df-002-dnst answers[] */
export interface DnsAnswer {
  answer_type: string; // A, AAAA, CNAME, ...
  ipv4?: string;
  ipv6?: string;
  hostname?: string;
  asn?: number;
  as_org_name?: string;
  ttl: number | null;
}

/** df-002-dnst queries[] */
export interface DnsQuery {
  engine: string; // getaddrinfo | udp | tcp | dot | doh
  resolver_address: string;
  hostname: string;
  query_type: string; // A | AAAA | ANY ...
  failure: Failure | null;
  rcode?: number;
  raw_response?: string | null; // base64
  answers: DnsAnswer[] | null;
  dial_id?: number;
  t0?: number;
  t: number;
  transaction_id?: number;
  tags?: string[] | null;
}

/** df-005-tcpconnect tcp_connect[] */
export interface TcpConnectEntry {
  ip: string;
  port: number;
  status: { success: boolean; failure: Failure | null; blocked?: boolean | null };
  t0?: number;
  t: number;
  transaction_id?: number;
  tags?: string[] | null;
}

/** df-006-tlshandshake tls_handshakes[] */
export interface TlsHandshakeEntry {
  network?: string;
  address: string; // "ip:port"
  server_name: string;
  failure: Failure | null;
  tls_version: string;
  cipher_suite: string;
  negotiated_protocol: string;
  no_tls_verify: boolean;
  peer_certificates: Array<{ format: 'base64'; data: string }> | null;
  alpn?: string[];
  t0?: number;
  t: number;
  transaction_id?: number;
  tags?: string[] | null;
}

/** A body or header value that may not be UTF-8. */
export type MaybeBinary = string | { format: 'base64'; data: string };

/** df-001-httpt requests[] */
export interface HttpRequestEntry {
  network?: string;
  address?: string;
  alpn?: string;
  failure: Failure | null;
  request: {
    url: string;
    method: string;
    headers: Record<string, MaybeBinary>;
    headers_list?: Array<[string, MaybeBinary]>;
    body: MaybeBinary;
    body_is_truncated: boolean;
    tor?: { exit_ip: string | null; exit_name: string | null; is_tor: boolean };
    x_transport?: string;
  };
  response: {
    code: number;
    headers: Record<string, MaybeBinary>;
    headers_list?: Array<[string, MaybeBinary]>;
    body: MaybeBinary | null;
    body_is_truncated: boolean;
  } | null;
  t0?: number;
  t: number;
  transaction_id?: number;
  tags?: string[] | null;
}

/** df-008-netevents network_events[] */
export interface NetworkEvent {
  operation: string; // connect | read | write | close | tls_handshake_start | ...
  address?: string;
  proto?: string;
  failure: Failure | null;
  num_bytes?: number;
  t0?: number;
  t: number;
  transaction_id?: number;
  tags?: string[] | null;
}

/** Request to a web_connectivity test helper (OONI th protocol). */
export interface ControlRequest {
  http_request: string;
  http_request_headers: Record<string, string[]>;
  tcp_connect: string[]; // "ip:port"
  x_quic_enabled?: boolean;
}

/** Response of a web_connectivity test helper (OONI th protocol). */
export interface ControlResponse {
  tcp_connect: Record<string, { status: boolean; failure: Failure | null }>;
  tls_handshake?: Record<string, { server_name: string; status: boolean; failure: Failure | null }>;
  http_request: {
    body_length: number;
    discovered_h3_endpoint?: string;
    failure: Failure | null;
    title: string;
    headers: Record<string, string>;
    status_code: number;
  };
  dns: { failure: Failure | null; addrs: string[] };
  ip_info?: Record<string, { asn: number; flags: number }>;
}

/** The web_connectivity test keys (nettests/ts-017-web-connectivity.md, v0.4/v0.5). */
export interface WebConnectivityTestKeys {
  agent: string;
  client_resolver: string | null;
  retries: number | null;
  socksproxy: string | null;
  network_events: NetworkEvent[] | null;
  queries: DnsQuery[] | null;
  tcp_connect: TcpConnectEntry[] | null;
  tls_handshakes: TlsHandshakeEntry[] | null;
  requests: HttpRequestEntry[] | null;
  control: ControlResponse | Record<string, never> | null;
  control_failure: Failure | string | null;
  x_dns_duplicate_responses?: DnsQuery[];
  /** `measure --capture`: the packets that ended each failed or suspicious operation (model/packets.ts). */
  x_captured?: import('./packets.js').CapturedOperation[];
  dns_experiment_failure: Failure | null;
  dns_consistency: 'consistent' | 'inconsistent' | null;
  http_experiment_failure: Failure | null;
  body_length_match: boolean | null;
  body_proportion: number | null;
  headers_match: boolean | null;
  status_code_match: boolean | null;
  title_match: boolean | null;
  blocking: OoniBlocking;
  accessible: boolean | null;
  [extra: `x_${string}`]: unknown;
}

/** Format a Date as OONI's "YYYY-MM-DD hh:mm:ss" UTC. */
export function ooniTime(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

/** software_name of the measurements wallscope's own probe writes (their pair is our verdict, not a reference's). */
export const WALLSCOPE_SOFTWARE_NAME = 'wallscope';
