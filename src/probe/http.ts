// HTTP/1.1 steps (df-001): one round trip over a connection we dialed ourselves (so the Host
// header, the address and the SNI are ours to choose), and a fetch that follows up to 10
// redirects. The body is kept up to a cap (`body_is_truncated`); nothing beyond the cap is held
// in memory. A network outcome never throws.
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { lookup } from 'node:dns/promises';
import {
  classifyError,
  unknownFailure,
  type Failure,
  type HttpRequestEntry,
  type MaybeBinary,
  type TcpConnectEntry,
  type TlsHandshakeEntry,
} from '../model/index.js';
import { titleOfBytes } from '../analysis/index.js';
import type { Trace } from './trace.js';
import { joinHostPort, type NetPolicy } from './policy.js';
import { tcpConnect } from './tcp.js';
import { tlsHandshake } from './tls.js';

export const MAX_REDIRECTS = 10;

/** The headers OONI's probe sends (a common browser's). */
export const DEFAULT_HEADERS: Record<string, string> = {
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'accept-language': 'en-US,en;q=0.9',
  'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
};

export interface RoundTripResult {
  entry: HttpRequestEntry & { x_reset_latency_ms?: number };
  failure: Failure | null;
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  truncated: boolean;
  title: string;
  location: string | null;
}

export interface RoundTripOptions {
  trace: Trace;
  /** The URL as requested (recorded); its path is sent. */
  url: string;
  /** Host header; defaults to the URL's host[:port]. */
  host?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  timeoutMs: number;
  maxBodyBytes: number;
  address: string;
  transactionId?: number;
  tags?: string[];
}

/** The page title ('' when none), by the analysis' one rule (analysis/http-compare.ts). */
export function extractTitle(body: Buffer): string {
  return titleOfBytes(body) ?? '';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A body or header as OONI stores it: a string when valid UTF-8, else base64. */
export function maybeBinary(b: Buffer): MaybeBinary {
  try {
    return utf8.decode(b);
  } catch {
    return { format: 'base64', data: b.toString('base64') };
  }
}

function hostHeaderOf(u: URL): string {
  return u.host; // includes a non-default port
}

/**
 * One HTTP/1.1 exchange over an already connected stream. The stream is consumed (closed after).
 */
export function httpRoundTrip(stream: Duplex, opts: RoundTripOptions): Promise<RoundTripResult> {
  const { trace } = opts;
  const t0 = trace.now();
  const txid = opts.transactionId ?? trace.nextTransaction();
  const u = new URL(opts.url);
  const method = opts.method ?? 'GET';
  const sentHeaders: Record<string, string> = { host: opts.host ?? hostHeaderOf(u), ...(opts.headers ?? DEFAULT_HEADERS) };
  if (opts.body) sentHeaders['content-length'] = String(opts.body.length);
  return new Promise((done) => {
    const cap = new BodyCap(opts.maxBodyBytes);
    let settled = false;
    let writeT: number | null = null;
    let sawEnd = false;
    let socketError: Error | null = null;
    let res: http.IncomingMessage | null = null;
    const onSockErr = (e: Error): void => {
      socketError ??= e;
    };
    stream.on('error', onSockErr);
    stream.once('end', () => (sawEnd = true));
    const req = http.request({
      method,
      path: `${u.pathname}${u.search}`,
      headers: sentHeaders,
      setHost: false,
      createConnection: () => stream as net.Socket,
    });
    const settle = (failure: Failure | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const t = trace.now();
      const body = cap.body();
      const truncated = cap.truncated;
      const got = responseHeaders(res);
      const entry = roundTripEntry(opts, { method, sentHeaders, txid, t0, t, failure }, res, got, body, truncated);
      if (failure === 'connection_reset' && writeT !== null) entry.x_reset_latency_ms = Math.round((t - writeT) * 1e6) / 1e3;
      trace.event({ operation: 'http_transaction_done', address: opts.address, failure, t0, t, transaction_id: txid });
      req.destroy();
      stream.destroy();
      stream.removeListener('error', onSockErr);
      stream.on('error', () => {});
      done({
        entry,
        failure,
        status: res?.statusCode ?? 0,
        headers: Object.fromEntries(Object.entries(got.first).map(([k, v]) => [k.toLowerCase(), v])),
        body,
        truncated,
        title: extractTitle(body),
        location: res?.headers.location ?? null,
      });
    };
    const failureOf = (err: Error): Failure => roundTripFailure(err, socketError, sawEnd);
    const timer = setTimeout(() => settle('generic_timeout_error'), opts.timeoutMs);
    req.on('error', (err) => settle(failureOf(err)));
    req.on('response', (r) => {
      res = r;
      trace.event({ operation: 'http_response_metadata', address: opts.address, transaction_id: txid });
      r.on('data', (chunk: Buffer) => {
        if (settled) return;
        trace.event({ operation: 'read', address: opts.address, proto: 'tcp', num_bytes: chunk.length, transaction_id: txid });
        // Robustness: stop reading at the cap; an endless body costs us nothing more.
        if (cap.add(chunk, r)) settle(null);
      });
      r.on('end', () => settle(null));
      r.on('error', (err) => settle(failureOf(err)));
      r.on('aborted', () => settle(failureOf(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }))));
    });
    req.on('finish', () => {
      writeT = trace.now();
      trace.event({ operation: 'write', address: opts.address, proto: 'tcp', t: writeT, transaction_id: txid });
    });
    req.end(opts.body);
  });
}

/** A response body kept up to a cap: nothing beyond it is held. */
class BodyCap {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  truncated = false;
  constructor(private readonly max: number) {}

  /** Keeps what fits of `chunk`; true once the cap is reached with more to come (stop reading). */
  add(chunk: Buffer, r: http.IncomingMessage): boolean {
    const room = this.max - this.kept;
    if (chunk.length < room) {
      this.chunks.push(chunk);
      this.kept += chunk.length;
      return false;
    }
    if (room > 0) this.chunks.push(chunk.subarray(0, room));
    this.kept += Math.max(room, 0);
    this.truncated = chunk.length > room || r.readableLength > 0 || !r.complete;
    return this.truncated;
  }

  body(): Buffer {
    return Buffer.concat(this.chunks, this.kept);
  }
}

/**
 * A round trip's failure. Why not the error alone: a reset after the peer's FIN is reported by node
 * as ECONNRESET "aborted"; the socket tells us what really happened.
 */
function roundTripFailure(err: Error, socketError: Error | null, sawEnd: boolean): Failure {
  if (socketError) return classifyError(socketError);
  const reset = (err as { code?: string }).code === 'ECONNRESET';
  if (sawEnd && reset) return 'eof_error';
  if (reset && /hang up/.test(err.message)) return 'connection_reset';
  return classifyError(err);
}

/** The response's headers in order (every one) and the first of each name. */
function responseHeaders(res: http.IncomingMessage | null): { list: Array<[string, MaybeBinary]>; first: Record<string, string> } {
  const first: Record<string, string> = {};
  const list: Array<[string, MaybeBinary]> = [];
  const raw = res?.rawHeaders ?? [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    list.push([name, value]);
    if (!(name in first)) first[name] = value;
  }
  return { list, first };
}

/** df-001's request entry for one round trip. */
function roundTripEntry(
  opts: RoundTripOptions,
  sent: { method: string; sentHeaders: Record<string, string>; txid: number; t0: number; t: number; failure: Failure | null },
  res: http.IncomingMessage | null,
  got: ReturnType<typeof responseHeaders>,
  body: Buffer,
  truncated: boolean,
): RoundTripResult['entry'] {
  return {
    network: 'tcp',
    address: opts.address,
    alpn: 'http/1.1',
    failure: sent.failure,
    request: {
      url: opts.url,
      method: sent.method,
      headers: sent.sentHeaders,
      headers_list: Object.entries(sent.sentHeaders),
      body: opts.body ? maybeBinary(opts.body) : '',
      body_is_truncated: false,
      tor: { exit_ip: null, exit_name: null, is_tor: false },
      x_transport: 'tcp',
    },
    response: res
      ? { code: res.statusCode ?? 0, headers: got.first, headers_list: got.list, body: maybeBinary(body), body_is_truncated: truncated }
      : null,
    t0: sent.t0,
    t: sent.t,
    transaction_id: sent.txid,
    tags: opts.tags ?? null,
  };
}

export interface DialOptions {
  trace: Trace;
  policy: NetPolicy;
  ca?: string[];
  connectTimeoutMs: number;
  tlsTimeoutMs: number;
  tags?: string[];
  /** Where to keep the TCP/TLS entries of every attempt (redirect hops are evidence too). */
  record?: DialRecord;
  /**
   * https only: work to run alongside each address's TCP connect, finished before the real
   * handshake starts (the experiment's decoy-before / no-sni follow-ups for redirect hops).
   */
  alongsideConnect?: (ip: string, port: number) => Promise<unknown>;
}

export interface DialRecord {
  tcp: TcpConnectEntry[];
  tls: Array<TlsHandshakeEntry & { x_reset_latency_ms?: number }>;
}

/** Dial the first address that connects (and handshakes, for https). */
export async function dialUrl(
  u: URL,
  addrs: string[],
  opts: DialOptions,
): Promise<{ stream: Duplex | null; address: string; failure: Failure | null }> {
  const port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
  let last: { address: string; failure: Failure } = { address: '', failure: 'dns_no_answer' };
  for (const ip of addrs.slice(0, 8)) {
    const address = joinHostPort(ip, port);
    const txid = opts.trace.nextTransaction();
    const connect = tcpConnect(ip, port, opts.policy, {
      trace: opts.trace,
      timeoutMs: opts.connectTimeoutMs,
      transactionId: txid,
      ...(opts.tags ? { tags: opts.tags } : {}),
    });
    // An IP-literal URL sends no SNI: nothing for a decoy to compare with (as for the first hop).
    const named = !net.isIP(u.hostname.replace(/^\[|\]$/g, ''));
    const [c] = await Promise.all([
      connect,
      u.protocol === 'https:' && named && opts.alongsideConnect ? opts.alongsideConnect(ip, port) : undefined,
    ]);
    opts.record?.tcp.push(c.entry);
    if (!c.socket) {
      last = { address, failure: c.entry.status.failure ?? 'generic_timeout_error' };
      continue;
    }
    if (u.protocol !== 'https:') return { stream: c.socket, address, failure: null };
    const name = u.hostname.replace(/^\[|\]$/g, '');
    const h = await tlsHandshake(c.socket, {
      trace: opts.trace,
      timeoutMs: opts.tlsTimeoutMs,
      serverName: net.isIP(name) ? null : name,
      verifyName: name,
      verify: true,
      address,
      transactionId: txid,
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.tags ? { tags: opts.tags } : {}),
    });
    opts.record?.tls.push(h.entry);
    if (h.socket) return { stream: h.socket, address, failure: null };
    last = { address, failure: h.entry.failure ?? 'ssl_failed_handshake' };
  }
  return { stream: null, ...last };
}

/** Resolves a redirect target; `depth` is the hop number (1 for the first redirect). */
export type HostResolver = (host: string, depth: number) => Promise<{ addrs: string[]; failure: Failure | null }>;

export interface FetchOptions {
  trace: Trace;
  policy: NetPolicy;
  ca?: string[];
  resolve: HostResolver;
  connectTimeoutMs: number;
  tlsTimeoutMs: number;
  /** Budget for the whole chain of requests. */
  timeoutMs: number;
  maxBodyBytes: number;
  headers?: Record<string, string>;
  maxRedirects?: number;
  /**
   * A connection already dialed for the first hop (the experiment's own TCP/TLS step); or that
   * dial's failure (stream null): the hop then dials the other addresses, as dialUrl goes on after
   * a failed one, and reports this failure when there is none left.
   */
  first?: { stream: Duplex; address: string } | { stream: null; address: string; failure: Failure };
  tags?: string[];
  /** Keep the TCP/TLS entries of the hops' dials here (tagged depth=N). */
  record?: DialRecord;
  /** Passed to dialUrl for each hop's https dial (see DialOptions.alongsideConnect). */
  alongsideConnect?: (ip: string, port: number) => Promise<unknown>;
}

export interface FetchResult {
  /** Every hop, the LAST one first (OONI's order: requests[0] is the final response). */
  requests: RoundTripResult['entry'][];
  final: RoundTripResult | null;
  failure: Failure | null;
}

/** GET `url`, following up to 10 redirects (each hop resolved and dialed anew). */
export async function fetchUrl(url: string, opts: FetchOptions): Promise<FetchResult> {
  const deadline = Date.now() + opts.timeoutMs;
  const maxRedirects = opts.maxRedirects ?? MAX_REDIRECTS;
  const hops: RoundTripResult['entry'][] = [];
  let current = new URL(url);
  let final: RoundTripResult | null = null;
  for (let hop = 0; ; hop++) {
    const left = deadline - Date.now();
    if (left <= 0) return { requests: hops.reverse(), final, failure: 'generic_timeout_error' };
    const given = hop === 0 ? opts.first : undefined;
    let stream: Duplex;
    let address: string;
    if (given?.stream) {
      ({ stream, address } = given);
    } else {
      const host = current.hostname.replace(/^\[|\]$/g, '');
      const r = net.isIP(host) ? { addrs: [host], failure: null } : await opts.resolve(host, hop);
      if (r.addrs.length === 0) {
        const failure = r.failure ?? 'dns_no_answer';
        hops.push(failedRequestEntry(current.href, '', failure, opts.trace));
        return { requests: hops.reverse(), final, failure };
      }
      const port = Number(current.port) || (current.protocol === 'https:' ? 443 : 80);
      const addrs = given ? r.addrs.filter((ip) => joinHostPort(ip, port) !== given.address) : r.addrs;
      if (given && addrs.length === 0) {
        hops.push(failedRequestEntry(current.href, given.address, given.failure, opts.trace));
        return { requests: hops.reverse(), final, failure: given.failure };
      }
      const d = await dialUrl(current, addrs, {
        trace: opts.trace,
        policy: opts.policy,
        connectTimeoutMs: Math.min(opts.connectTimeoutMs, left),
        tlsTimeoutMs: Math.min(opts.tlsTimeoutMs, left),
        tags: [...(opts.tags ?? []), `depth=${hop}`],
        ...(opts.ca ? { ca: opts.ca } : {}),
        ...(opts.record ? { record: opts.record } : {}),
        ...(opts.alongsideConnect ? { alongsideConnect: opts.alongsideConnect } : {}),
      });
      if (!d.stream) {
        hops.push(failedRequestEntry(current.href, d.address, d.failure!, opts.trace));
        return { requests: hops.reverse(), final, failure: d.failure };
      }
      ({ stream, address } = d as { stream: Duplex; address: string });
    }
    const rt = await httpRoundTrip(stream, {
      trace: opts.trace,
      url: current.href,
      timeoutMs: Math.max(1, deadline - Date.now()),
      maxBodyBytes: opts.maxBodyBytes,
      address,
      ...(opts.headers ? { headers: opts.headers } : {}),
      ...(opts.tags ? { tags: opts.tags } : {}),
    });
    hops.push(rt.entry);
    final = rt;
    if (rt.failure) return { requests: hops.reverse(), final, failure: rt.failure };
    const isRedirect = [301, 302, 303, 307, 308].includes(rt.status) && rt.location;
    if (!isRedirect) return { requests: hops.reverse(), final, failure: null };
    let next: URL;
    try {
      next = new URL(rt.location!, current);
    } catch {
      return { requests: hops.reverse(), final, failure: unknownFailure(`bad redirect location: ${rt.location}`) };
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') return { requests: hops.reverse(), final, failure: null };
    if (hops.length > maxRedirects) {
      const failure = unknownFailure('stopped after too many redirects'); // OONI's exact string
      rt.entry.failure = failure;
      return { requests: hops.reverse(), final, failure };
    }
    current = next;
  }
}

/**
 * The entry of a request that was never sent (its name did not resolve, or no address could be
 * dialed): OONI records it with the dial's failure and no response. `headers` are those the
 * request would have carried (the first hop records the probe's own; redirect hops record none).
 */
export function failedRequestEntry(
  url: string,
  address: string,
  failure: Failure,
  trace: Trace,
  headers: Record<string, string> = {},
): HttpRequestEntry {
  const t = trace.now();
  return {
    network: 'tcp',
    address,
    failure,
    request: {
      url,
      method: 'GET',
      headers,
      body: '',
      body_is_truncated: false,
      tor: { exit_ip: null, exit_name: null, is_tor: false },
      x_transport: 'tcp',
    },
    response: null,
    t0: t,
    t,
    tags: null,
  };
}

export interface ExchangeOptions {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  policy: NetPolicy;
  trace: Trace;
  timeoutMs: number;
  maxBodyBytes: number;
  ca?: string[];
  /** How to resolve a non-IP host; absent means the system resolver (refused when restricted). */
  resolveHost?: (host: string) => Promise<string[]>;
}

/** A single request to a service of ours (DoH server, test helper): no redirects. */
export async function httpExchange(
  o: ExchangeOptions,
): Promise<{ failure: Failure | null; status: number; body: Buffer; truncated: boolean }> {
  let u: URL;
  try {
    u = new URL(o.url);
  } catch {
    return { failure: unknownFailure(`bad URL ${o.url}`), status: 0, body: Buffer.alloc(0), truncated: false };
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  let addrs: string[];
  if (net.isIP(host)) addrs = [host];
  else if (o.resolveHost) addrs = await o.resolveHost(host);
  else if (o.policy.restricted)
    return {
      failure: unknownFailure(`refused to resolve ${host} with the system resolver in lab mode`),
      status: 0,
      body: Buffer.alloc(0),
      truncated: false,
    };
  else {
    try {
      addrs = (await lookup(host, { all: true })).map((a) => a.address);
    } catch (err) {
      return { failure: classifyError(err), status: 0, body: Buffer.alloc(0), truncated: false };
    }
  }
  const d = await dialUrl(u, addrs, {
    trace: o.trace,
    policy: o.policy,
    connectTimeoutMs: o.timeoutMs,
    tlsTimeoutMs: o.timeoutMs,
    ...(o.ca ? { ca: o.ca } : {}),
  });
  if (!d.stream) return { failure: d.failure, status: 0, body: Buffer.alloc(0), truncated: false };
  const rt = await httpRoundTrip(d.stream, {
    trace: o.trace,
    url: u.href,
    method: o.method ?? 'GET',
    headers: o.headers ?? {},
    ...(o.body ? { body: o.body } : {}),
    timeoutMs: o.timeoutMs,
    maxBodyBytes: o.maxBodyBytes,
    address: d.address,
  });
  return { failure: rt.failure, status: rt.status, body: rt.body, truncated: rt.truncated };
}
