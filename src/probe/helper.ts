// A web_connectivity test helper speaking OONI's control protocol (the oohelperd request and
// response shapes, reference/measurement.md "Test helper"): POST a JSON
// {http_request, http_request_headers, tcp_connect} and get back what the target looks like from
// here. Our probe uses it; an OONI probe could too.
import http from 'node:http';
import type { Duplex } from 'node:stream';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { ControlRequest, ControlResponse, Failure } from '../model/index.js';
import { NetPolicy, joinHostPort, splitHostPort } from './policy.js';
import { Trace } from './trace.js';
import { resolveName } from './resolve.js';
import { tcpConnect } from './tcp.js';
import { tlsHandshake } from './tls.js';
import { DEFAULT_HEADERS, fetchUrl } from './http.js';
import { lookupAsn } from './geo.js';

export interface TestHelperOptions {
  host: string;
  port: number;
  /** Resolver the helper uses ("ip:port"); the system resolver otherwise (never in lab mode). */
  resolver?: string;
  doh?: string;
  ca?: string[];
  allowNet?: string[];
  /** Source address of all the helper's outgoing sockets (the lab exempts it from its censors). */
  localAddress?: string;
  timeoutMs?: number;
  maxBodyBytes?: number;
  /**
   * Control requests measured at once (default 64); more get 503 with Retry-After. Each one dials up
   * to 16 endpoints, so an unbounded helper is an amplifier for whoever floods it.
   */
  maxConcurrent?: number;
}

export interface TestHelper {
  url: string;
  close(): Promise<void>;
}

const MAX_REQUEST_BYTES = 64 * 1024;
const MAX_ENDPOINTS = 16;
const FORWARDED_HEADERS = new Set(['accept', 'accept-language', 'user-agent']);

export class BadControlRequest extends Error {
  readonly code = 'ERR_BAD_CONTROL_REQUEST';
}

/** Validate a control request; throws BadControlRequest with a clear message. */
export function parseControlRequest(body: unknown): ControlRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadControlRequest('body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.http_request !== 'string') throw new BadControlRequest('http_request must be a URL string');
  let u: URL;
  try {
    u = new URL(b.http_request);
  } catch {
    throw new BadControlRequest(`http_request is not a URL: ${JSON.stringify(b.http_request).slice(0, 100)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new BadControlRequest('http_request must be http or https');
  const eps = b.tcp_connect ?? [];
  if (!Array.isArray(eps) || !eps.every((e) => typeof e === 'string'))
    throw new BadControlRequest('tcp_connect must be an array of "ip:port" strings');
  if (eps.length > MAX_ENDPOINTS) throw new BadControlRequest(`tcp_connect has more than ${MAX_ENDPOINTS} endpoints`);
  for (const e of eps as string[]) {
    try {
      const hp = splitHostPort(e);
      if (!net.isIP(hp.host)) throw new Error();
    } catch {
      throw new BadControlRequest(`tcp_connect entry is not ip:port: ${JSON.stringify(e).slice(0, 100)}`);
    }
  }
  const headers: Record<string, string[]> = {};
  if (b.http_request_headers && typeof b.http_request_headers === 'object') {
    for (const [k, v] of Object.entries(b.http_request_headers as Record<string, unknown>)) {
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) headers[k] = v as string[];
    }
  }
  return { http_request: u.href, http_request_headers: headers, tcp_connect: eps as string[] };
}

// The control's failure strings are oohelperd's, not the probe's (probe-cli oohelperd):
// NXDOMAIN is "dns_name_error", an HTTP fetch that could not resolve is "dns_lookup_error".
function controlDnsFailure(f: Failure | null): string | null {
  if (f === null) return null;
  if (f === 'dns_nxdomain_error') return 'dns_name_error';
  if (f === 'dns_no_answer') return 'dns_no_answer';
  if (f === 'generic_timeout_error') return 'generic_timeout_error';
  return 'dns_server_failure';
}
function controlHttpFailure(f: Failure | null): string | null {
  if (f === null) return null;
  if (f.startsWith('dns_')) return 'dns_lookup_error';
  if (['connection_refused', 'connection_reset', 'generic_timeout_error', 'eof_error'].includes(f)) return f;
  return 'unknown_error';
}

export interface ControlConfig {
  policy: NetPolicy;
  resolver?: string;
  doh?: string;
  ca?: string[];
  timeoutMs: number;
  maxBodyBytes: number;
}

/** Measure what the helper sees for one control request. */
export async function runControl(req: ControlRequest, cfg: ControlConfig): Promise<ControlResponse> {
  const trace = new Trace();
  const u = new URL(req.http_request);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const rcfg = {
    policy: cfg.policy,
    timeoutMs: cfg.timeoutMs,
    windowMs: 0,
    ...(cfg.resolver ? { resolver: cfg.resolver } : {}),
    ...(cfg.doh ? { doh: cfg.doh } : {}),
    ...(cfg.ca ? { ca: cfg.ca } : {}),
  };
  const dnsP = net.isIP(host) ? Promise.resolve({ addrs: [host], failure: null }) : resolveName(host, rcfg, trace);
  const endpoints = req.tcp_connect.map((ep) => controlEndpoint(ep, u, host, cfg, trace));
  // Like oohelperd, fetch with the probe's own request headers (only the ones that shape content).
  const headers: Record<string, string> = { ...DEFAULT_HEADERS };
  for (const [k, v] of Object.entries(req.http_request_headers)) {
    const name = k.toLowerCase();
    if (FORWARDED_HEADERS.has(name) && v[0] !== undefined && /^[\t\x20-\x7e]{0,512}$/.test(v[0])) headers[name] = v[0];
  }
  const httpP = (async () => {
    // The fetch dials the helper's own first answer, as fetchUrl would; when the probe's endpoints
    // include that address and the helper's connection to it (and handshake, for https) worked, the
    // fetch goes over that connection instead of a second one to the same ip:port: the same
    // outcome, for half the helper's connections and handshakes per URL.
    const dns = await dnsP;
    const first = await reusable(u, host, dns.addrs[0], req.tcp_connect, endpoints);
    return fetchUrl(u.href, {
      trace,
      headers,
      policy: cfg.policy,
      // The first hop's name is already resolved (dnsP, the control's dns): not asked twice.
      resolve: async (h, depth) => {
        const r = depth === 0 && h === host ? dns : await resolveName(h, rcfg, trace);
        return { addrs: r.addrs, failure: r.failure };
      },
      connectTimeoutMs: cfg.timeoutMs,
      tlsTimeoutMs: cfg.timeoutMs,
      timeoutMs: cfg.timeoutMs,
      maxBodyBytes: cfg.maxBodyBytes,
      ...(first ? { first } : {}),
      ...(cfg.ca ? { ca: cfg.ca } : {}),
    });
  })();
  const [dns, tcps, fetched] = await Promise.all([dnsP, Promise.all(endpoints), httpP]);
  for (const r of tcps) if (r.stream && !r.stream.destroyed) r.stream.destroy();
  return controlResponse(req, dns, tcps, fetched);
}

/** The helper's TCP connect (and TLS handshake, for https) to one of the probe's endpoints. */
async function controlEndpoint(ep: string, u: URL, host: string, cfg: ControlConfig, trace: Trace) {
  const { host: ip, port } = splitHostPort(ep);
  const c = await tcpConnect(ip, port, cfg.policy, { trace, timeoutMs: cfg.timeoutMs });
  const tcp = { status: c.entry.status.success, failure: c.entry.status.failure };
  let tlsr: { server_name: string; status: boolean; failure: Failure | null } | undefined;
  if (c.socket && (port === 443 || u.protocol === 'https:') && !net.isIP(host)) {
    const h = await tlsHandshake(c.socket, {
      trace,
      timeoutMs: cfg.timeoutMs,
      serverName: host,
      verify: true,
      // The control reports the outcome only: the chain is verified, not copied (tls.ts skipIdentityDecode).
      recordChain: false,
      address: joinHostPort(ip, port),
      ...(cfg.ca ? { ca: cfg.ca } : {}),
    });
    tlsr = { server_name: host, status: h.entry.failure === null, failure: h.entry.failure };
    return { ep, tcp, tlsr, stream: kept(h.socket) };
  }
  // An http URL's connection is kept for the fetch; a TLS-less connection of an https URL (an IP literal) is not.
  if (c.socket && u.protocol === 'https:') c.socket.destroy();
  return { ep, tcp, tlsr, stream: u.protocol === 'https:' ? null : kept(c.socket) };
}

/** A connection kept for the fetch: an error while it waits (a reset) must not be unhandled; the fetch sees the socket's state. */
function kept(s: Duplex | null): Duplex | null {
  s?.on('error', () => {});
  return s;
}

/**
 * The helper's connection to `ip` (its own first answer) among the probe's endpoints, ready for
 * the fetch's first hop: a TLS connection for an https URL with a name, a TCP one for http. Null
 * when there is none (the fetch dials, as before).
 */
async function reusable(
  u: URL,
  host: string,
  ip: string | undefined,
  eps: string[],
  endpoints: Array<Promise<Awaited<ReturnType<typeof controlEndpoint>>>>,
): Promise<{ stream: Duplex; address: string } | { stream: null; address: string; failure: Failure } | null> {
  if (ip === undefined) return null;
  const port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
  const https = u.protocol === 'https:';
  // An http URL on port 443 got a TLS handshake from controlEndpoint; an https one to an IP literal got none.
  if ((https && net.isIP(host)) || (!https && port === 443)) return null;
  const address = joinHostPort(ip, port);
  const i = eps.indexOf(address);
  if (i < 0) return null;
  const r = await endpoints[i]!;
  // That dial failed: the fetch does not dial the same ip:port again after it (which would add a
  // whole connect timeout to the control's time); it goes on to the other answers, or reports it.
  const failure = r.tlsr?.failure ?? r.tcp.failure;
  if (failure) return { stream: null, address, failure };
  if (!r.stream || r.stream.destroyed) return null;
  const stream = r.stream;
  r.stream = null; // the fetch owns it now
  return { stream, address };
}

/** The control response (oohelperd's shape) from the helper's own DNS, endpoints and fetch. */
function controlResponse(
  req: ControlRequest,
  dns: { addrs: string[]; failure: Failure | null },
  tcps: Array<Awaited<ReturnType<typeof controlEndpoint>>>,
  fetched: Awaited<ReturnType<typeof fetchUrl>>,
): ControlResponse {
  const tcp_connect: ControlResponse['tcp_connect'] = {};
  const tls_handshake: NonNullable<ControlResponse['tls_handshake']> = {};
  for (const r of tcps) {
    tcp_connect[r.ep] = r.tcp;
    if (r.tlsr) tls_handshake[r.ep] = r.tlsr;
  }
  const ok = fetched.failure === null && fetched.final !== null;
  const respHeaders: Record<string, string> = {};
  if (ok)
    for (const [k, v] of Object.entries(fetched.final!.entry.response?.headers ?? {})) respHeaders[k] = typeof v === 'string' ? v : '';
  const ip_info: NonNullable<ControlResponse['ip_info']> = {};
  const probeAddrs = new Set(req.tcp_connect.map((e) => splitHostPort(e).host));
  for (const ip of new Set([...dns.addrs, ...probeAddrs])) {
    // Flags (oohelperd): 1 resolved by the probe, 2 resolved by the helper.
    const flags = (probeAddrs.has(ip) ? 1 : 0) | (dns.addrs.includes(ip) ? 2 : 0);
    ip_info[ip] = { asn: lookupAsn(ip)?.asn ?? 0, flags };
  }
  return {
    tcp_connect,
    tls_handshake,
    http_request: {
      body_length: ok ? fetched.final!.body.length : -1,
      failure: controlHttpFailure(fetched.failure) as Failure | null,
      title: ok ? fetched.final!.title : '',
      headers: respHeaders,
      status_code: ok ? fetched.final!.status : -1,
      ...(ok && fetched.final!.truncated ? { x_body_is_truncated: true } : {}),
    },
    dns: { failure: controlDnsFailure(dns.failure) as Failure | null, addrs: dns.addrs },
    ip_info,
  };
}

/** The helper's request handler: one JSON control request per POST, at most `maxConcurrent` at once. */
function controlHandler(cfg: ControlConfig, maxConcurrent: number): http.RequestListener {
  let inFlight = 0;
  return (req, res) => {
    const reply = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method !== 'POST') return reply(405, { error: 'use POST with a JSON control request' });
    if (inFlight >= maxConcurrent) {
      res.setHeader('retry-after', '1');
      res.setHeader('connection', 'close');
      return reply(503, { error: `busy: ${maxConcurrent} control requests in progress` });
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        if (!tooBig) reply(413, { error: `request larger than ${MAX_REQUEST_BYTES} bytes` });
        tooBig = true;
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (tooBig) return;
      let parsed: ControlRequest;
      try {
        parsed = parseControlRequest(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        return reply(400, { error: err instanceof SyntaxError ? `not JSON: ${err.message}` : (err as Error).message });
      }
      if (inFlight >= maxConcurrent) {
        res.setHeader('retry-after', '1');
        return reply(503, { error: `busy: ${maxConcurrent} control requests in progress` });
      }
      inFlight++;
      runControl(parsed, cfg)
        .then(
          (r) => reply(200, r),
          (err: unknown) => reply(500, { error: String((err as Error)?.message ?? err) }),
        )
        .finally(() => inFlight--);
    });
  };
}

/** Start the helper on host:port (port 0 picks one). */
export async function startTestHelper(opts: TestHelperOptions): Promise<TestHelper> {
  const cfg: ControlConfig = {
    // Without --allow-net the helper serves the internet: it never connects to non-public addresses.
    policy: new NetPolicy(opts.allowNet, opts.localAddress, { publicOnly: true }),
    timeoutMs: opts.timeoutMs ?? 10_000,
    maxBodyBytes: opts.maxBodyBytes ?? 1 << 20,
    ...(opts.resolver ? { resolver: opts.resolver } : {}),
    ...(opts.doh ? { doh: opts.doh } : {}),
    ...(opts.ca ? { ca: opts.ca } : {}),
  };
  const server = http.createServer(controlHandler(cfg, opts.maxConcurrent ?? 64));
  server.keepAliveTimeout = 5_000;
  // A client that sends its headers or body slowly is cut off (node's defaults are 60 s / 300 s).
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Robustness: an accept error after listening (EMFILE under load) is emitted on the server; without a
  // listener it would end the process. The helper keeps serving the connections it has.
  server.on('error', (err) => process.emitWarning(`test helper: ${err.message}`));
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${joinHostPort(addr.address, addr.port)}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
