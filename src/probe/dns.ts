// DNS steps: the system resolver (getaddrinfo), UDP to a chosen resolver (keeping EVERY reply
// within a window after the first: two replies to one query is the injection signature), TCP
// (RFC 1035 4.2.2 length-prefixed) and DoH (RFC 8484, POST application/dns-message).
// Each returns OONI df-002 queries and never throws for a network outcome; malformed replies
// become failures.
import dgram from 'node:dgram';
import net from 'node:net';
import { lookup } from 'node:dns/promises';
import { randomInt } from 'node:crypto';
import dnsPacket from 'dns-packet';
import { classifyError, unknownFailure, WallscopeTimeoutError, type DnsAnswer, type DnsQuery, type Failure } from '../model/index.js';
import type { Trace } from './trace.js';
import { splitHostPort } from './policy.js';
import { httpExchange } from './http.js';
import { encodeQuery } from './scan-dns-wire.js';
import type { NetPolicy } from './policy.js';

export type QueryType = 'A' | 'AAAA';

export interface DnsStepOptions {
  trace: Trace;
  timeoutMs: number;
  /** UDP only: how long to keep listening after the first reply (ms). */
  windowMs?: number;
  /** UDP only: most replies kept for one query. */
  maxReplies?: number;
  tags?: string[];
}

export interface DnsResult {
  query: DnsQuery;
  /** Addresses in the answers of `query` (A/AAAA). */
  addrs: string[];
}

export interface UdpDnsResult extends DnsResult {
  /** The first reply had the TC bit set: ask again over TCP. */
  truncated: boolean;
  /** Resolves when the window after the first reply closes: every further reply. */
  late: Promise<DnsQuery[]>;
}

// RFC 1035 4.1.1 RCODE values
const RCODE: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };

// encodeQuery lives in scan-dns-wire.ts, which the scan's sending threads load without the rest of this module.
export { encodeQuery };

function rcodeNumber(p: dnsPacket.DecodedPacket): number {
  const r = (p as { rcode?: string }).rcode;
  if (typeof r === 'string' && r in RCODE) return RCODE[r]!;
  return ((p.flags ?? 0) & 0xf) as number;
}

function answersOf(p: dnsPacket.DecodedPacket): DnsAnswer[] {
  const out: DnsAnswer[] = [];
  for (const a of p.answers ?? []) {
    const ttl = typeof (a as { ttl?: number }).ttl === 'number' ? (a as { ttl: number }).ttl : null;
    if ((a.type === 'A' || a.type === 'AAAA') && (typeof a.data !== 'string' || !net.isIP(a.data))) continue;
    if (a.type === 'A' && typeof a.data === 'string') out.push({ answer_type: 'A', ipv4: a.data, ttl });
    else if (a.type === 'AAAA' && typeof a.data === 'string') out.push({ answer_type: 'AAAA', ipv6: a.data, ttl });
    else if (a.type === 'CNAME' && typeof a.data === 'string') out.push({ answer_type: 'CNAME', hostname: a.data, ttl });
  }
  return out;
}

/**
 * Addresses of the query's own type in its answers. Why: an injector answering a AAAA query with
 * an A record leaves that record in `answers` (the evidence) but it is not an address to dial.
 */
export function addrsOf(q: DnsQuery): string[] {
  const out: string[] = [];
  for (const a of q.answers ?? []) {
    if (a.ipv4 && q.query_type !== 'AAAA') out.push(a.ipv4);
    else if (a.ipv6 && q.query_type !== 'A') out.push(a.ipv6);
  }
  return out;
}

interface Parsed {
  failure: Failure | null;
  /** The TC bit: the reply did not fit in UDP (RFC 1035 4.2.1). */
  truncated?: boolean;
  rcode?: number;
  answers: DnsAnswer[] | null;
  id?: number;
}

/**
 * Decode one reply for (name, type). Robustness: anything that does not decode, or whose question
 * is not ours, becomes a failure string; nothing here throws.
 */
export function parseReply(buf: Buffer, name: string, type: QueryType): Parsed {
  let p: dnsPacket.DecodedPacket;
  try {
    p = dnsPacket.decode(buf);
  } catch (err) {
    return { failure: unknownFailure(`dns_malformed_reply: ${(err as Error).message}`), answers: null };
  }
  // Robustness: dns-packet reads past the end of a short buffer without throwing (it yields
  // "127.0.undefined" addresses); decode.bytes tells how much it consumed.
  const consumed = (dnsPacket.decode as unknown as { bytes?: number }).bytes ?? 0;
  if (consumed > buf.length)
    return { failure: unknownFailure(`dns_malformed_reply: truncated (${buf.length} of ${consumed} bytes)`), answers: null };
  if (p.type !== 'response') return { failure: unknownFailure('dns_malformed_reply: not a response'), answers: null, id: p.id };
  const q = p.questions?.[0];
  if (q && (q.name.toLowerCase() !== name.toLowerCase().replace(/\.$/, '') || q.type !== type)) {
    return { failure: unknownFailure('dns_malformed_reply: question mismatch'), answers: null, id: p.id };
  }
  const rcode = rcodeNumber(p);
  const answers = answersOf(p);
  let failure: Failure | null = null;
  if (rcode === 3) failure = 'dns_nxdomain_error';
  else if (rcode === 2) failure = 'dns_servfail_error';
  else if (rcode === 5) failure = 'dns_refused_error';
  else if (rcode !== 0) failure = 'dns_non_recoverable_failure';
  else if (!answers.some((a) => a.answer_type === type)) failure = 'dns_no_answer';
  const truncated = ((p.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) !== 0;
  return {
    failure,
    rcode,
    answers: failure === null || answers.length > 0 ? answers : null,
    ...(p.id !== undefined ? { id: p.id } : {}),
    ...(truncated ? { truncated } : {}),
  };
}

function baseQuery(engine: string, resolver: string, name: string, type: QueryType, t0: number, opts: DnsStepOptions): DnsQuery {
  return {
    engine,
    resolver_address: resolver,
    hostname: name,
    query_type: type,
    failure: null,
    answers: null,
    t0,
    t: t0,
    ...(opts.tags ? { tags: opts.tags } : { tags: null }),
  };
}

/**
 * One query over UDP to `resolver` ("ip:port"). Returns with the first reply (or the failure);
 * keeps listening `windowMs` more and hands every further reply to `late`.
 */
export function resolveUdp(
  name: string,
  type: QueryType,
  resolver: string,
  policy: NetPolicy,
  opts: DnsStepOptions,
): Promise<UdpDnsResult> {
  const { trace } = opts;
  const t0 = trace.now();
  const txid = trace.nextTransaction();
  const base = baseQuery('udp', resolver, name, type, t0, opts);
  base.transaction_id = txid;
  const failed = (failure: Failure): Promise<UdpDnsResult> =>
    Promise.resolve({ query: { ...base, failure, t: trace.now() }, addrs: [], late: Promise.resolve([]), truncated: false });
  let hp: { host: string; port: number };
  try {
    hp = splitHostPort(resolver, 53);
  } catch (err) {
    return failed(unknownFailure((err as Error).message));
  }
  const refused = policy.checkDial(hp.host);
  if (refused) return failed(refused);
  return new Promise<UdpDnsResult>((resolveFirst) => new UdpExchange(name, type, resolver, hp, policy, opts, base, resolveFirst).start());
}

/**
 * One UDP query and its replies: the first good reply settles the query; every later one within
 * the window (a duplicate: the injector's and the resolver's both arrive) is kept for `late`.
 */
class UdpExchange {
  private readonly id = randomInt(0, 65536);
  private readonly sock: dgram.Socket;
  private readonly late: DnsQuery[] = [];
  private first: DnsQuery | null = null;
  /** A reply that did not decode, kept in case nothing better comes. */
  private firstFailure: DnsQuery | null = null;
  private wrongId = 0;
  private replies = 0;
  private closed = false;
  private tc = false;
  private resolveLate!: (q: DnsQuery[]) => void;
  private readonly latePromise = new Promise<DnsQuery[]>((r) => (this.resolveLate = r));
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly name: string,
    private readonly type: QueryType,
    private readonly resolver: string,
    private readonly hp: { host: string; port: number },
    private readonly policy: NetPolicy,
    private readonly opts: DnsStepOptions,
    private readonly base: DnsQuery,
    private readonly resolveFirst: (r: UdpDnsResult) => void,
  ) {
    this.sock = dgram.createSocket(net.isIP(hp.host) === 6 ? 'udp6' : 'udp4');
  }

  start(): void {
    const { sock, opts } = this;
    this.timer = setTimeout(() => this.onTimeout(), opts.timeoutMs);
    sock.on('error', (err) => {
      if (!this.first) this.finish({ ...this.base, failure: classifyError(err), t: opts.trace.now() });
      this.close();
    });
    sock.on('message', (msg) => this.onMessage(msg));
    const doConnect = (): void => sock.connect(this.hp.port, this.hp.host, () => this.send());
    if (this.policy.localAddress) sock.bind({ address: this.policy.localAddress, port: 0 }, doConnect);
    else doConnect();
  }

  private send(): void {
    const { trace } = this.opts;
    const pkt = encodeQuery(this.name, this.type, this.id);
    this.sock.send(pkt, (err) => {
      const failure = err ? classifyError(err) : null;
      trace.event({
        operation: 'write_to',
        address: this.resolver,
        proto: 'udp',
        num_bytes: pkt.length,
        failure,
        transaction_id: this.base.transaction_id!,
      });
      if (failure && !this.first) {
        this.finish({ ...this.base, failure, t: trace.now() });
        this.close();
      }
    });
  }

  private finish(q: DnsQuery): void {
    this.first = q;
    this.resolveFirst({ query: q, addrs: addrsOf(q), late: this.latePromise, truncated: this.tc });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    try {
      this.sock.close();
    } catch {
      /* already closed */
    }
    this.resolveLate(this.late);
  }

  private onTimeout(): void {
    if (!this.first) {
      const failure: Failure = this.firstFailure
        ? this.firstFailure.failure!
        : this.wrongId > 0
          ? 'dns_reply_with_wrong_query_id'
          : 'generic_timeout_error';
      this.finish(this.firstFailure ?? { ...this.base, failure, t: this.opts.trace.now() });
    }
    this.close();
  }

  private onMessage(msg: Buffer): void {
    if (this.closed) return;
    const { trace } = this.opts;
    const t = trace.now();
    trace.event({
      operation: 'read_from',
      address: this.resolver,
      proto: 'udp',
      num_bytes: msg.length,
      t,
      transaction_id: this.base.transaction_id!,
    });
    if (msg.length >= 2 && msg.readUInt16BE(0) !== this.id) {
      this.wrongId++;
      return;
    }
    const parsed = parseReply(msg, this.name, this.type);
    const q: DnsQuery = {
      ...this.base,
      failure: parsed.failure,
      ...(parsed.rcode !== undefined ? { rcode: parsed.rcode } : {}),
      answers: parsed.answers,
      raw_response: msg.toString('base64'),
      t,
    };
    this.replies++;
    const maxReplies = this.opts.maxReplies ?? 16;
    const malformed = parsed.rcode === undefined;
    if (this.first) this.late.push(q);
    else if (malformed) {
      // Robustness: a garbled packet may be followed by the real reply; wait for it.
      this.firstFailure ??= q;
      if (this.replies >= maxReplies) {
        this.finish(this.firstFailure);
        this.close();
      }
      return;
    } else {
      this.tc = parsed.truncated === true;
      this.finish(q);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.close(), this.opts.windowMs ?? 500);
    }
    if (this.replies >= maxReplies) this.close();
  }
}

/** One query over TCP (RFC 1035 4.2.2: two-byte length prefix). */
export function resolveTcp(name: string, type: QueryType, resolver: string, policy: NetPolicy, opts: DnsStepOptions): Promise<DnsResult> {
  const { trace } = opts;
  const t0 = trace.now();
  const base = baseQuery('tcp', resolver, name, type, t0, opts);
  let hp: { host: string; port: number };
  try {
    hp = splitHostPort(resolver, 53);
  } catch (err) {
    return Promise.resolve({ query: { ...base, failure: unknownFailure((err as Error).message), t: trace.now() }, addrs: [] });
  }
  const refused = policy.checkDial(hp.host);
  if (refused) return Promise.resolve({ query: { ...base, failure: refused, t: trace.now() }, addrs: [] });
  return new Promise<DnsResult>((done) => {
    const id = randomInt(0, 65536);
    let buf = Buffer.alloc(0);
    let settled = false;
    const sock = net.connect({ host: hp.host, port: hp.port, ...(policy.localAddress ? { localAddress: policy.localAddress } : {}) });
    const settle = (q: DnsQuery): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      done({ query: q, addrs: addrsOf(q) });
    };
    const timer = setTimeout(() => settle({ ...base, failure: 'generic_timeout_error', t: trace.now() }), opts.timeoutMs);
    sock.on('connect', () => {
      const q = encodeQuery(name, type, id);
      const framed = Buffer.alloc(q.length + 2);
      framed.writeUInt16BE(q.length, 0);
      q.copy(framed, 2);
      sock.write(framed);
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > 65537) return settle({ ...base, failure: unknownFailure('dns_malformed_reply: oversized'), t: trace.now() });
      if (buf.length < 2) return;
      const len = buf.readUInt16BE(0);
      if (buf.length < len + 2) return;
      const msg = buf.subarray(2, len + 2);
      if (msg.length >= 2 && msg.readUInt16BE(0) !== id)
        return settle({ ...base, failure: 'dns_reply_with_wrong_query_id', t: trace.now() });
      const parsed = parseReply(msg, name, type);
      settle({
        ...base,
        failure: parsed.failure,
        ...(parsed.rcode !== undefined ? { rcode: parsed.rcode } : {}),
        answers: parsed.answers,
        raw_response: msg.toString('base64'),
        t: trace.now(),
      });
    });
    sock.on('error', (err) => settle({ ...base, failure: classifyError(err), t: trace.now() }));
    sock.on('close', () => settle({ ...base, failure: 'eof_error', t: trace.now() }));
  });
}

export interface DohOptions extends DnsStepOptions {
  ca?: string[];
  /** Resolves the DoH server's own name (lab mode: never the system resolver). */
  resolveHost?: (host: string) => Promise<string[]>;
}

/** One query over DoH (RFC 8484 section 4.1, POST with application/dns-message). */
export async function resolveDoh(name: string, type: QueryType, url: string, policy: NetPolicy, opts: DohOptions): Promise<DnsResult> {
  const { trace } = opts;
  const t0 = trace.now();
  const base = baseQuery('doh', url, name, type, t0, opts);
  const q = encodeQuery(name, type, 0); // RFC 8484 4.1: id 0 for cache friendliness
  const res = await httpExchange({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/dns-message', accept: 'application/dns-message' },
    body: q,
    policy,
    trace,
    timeoutMs: opts.timeoutMs,
    maxBodyBytes: 65535,
    ...(opts.ca ? { ca: opts.ca } : {}),
    ...(opts.resolveHost ? { resolveHost: opts.resolveHost } : {}),
  });
  if (res.failure) return { query: { ...base, failure: res.failure, t: trace.now() }, addrs: [] };
  if (res.status !== 200)
    return { query: { ...base, failure: unknownFailure(`doh_http_status ${res.status}`), t: trace.now() }, addrs: [] };
  const parsed = parseReply(res.body, name, type);
  const out: DnsQuery = {
    ...base,
    failure: parsed.failure,
    ...(parsed.rcode !== undefined ? { rcode: parsed.rcode } : {}),
    answers: parsed.answers,
    raw_response: res.body.toString('base64'),
    t: trace.now(),
  };
  return { query: out, addrs: addrsOf(out) };
}

/** getaddrinfo through node's dns.lookup. Never call in lab mode: it lies outside loopback. */
export async function resolveSystem(name: string, opts: DnsStepOptions): Promise<DnsResult> {
  const { trace } = opts;
  const t0 = trace.now();
  const base = baseQuery('getaddrinfo', '', name, 'ANY' as QueryType, t0, opts);
  let timer: NodeJS.Timeout | undefined;
  try {
    const addrs = await Promise.race([
      lookup(name, { all: true, verbatim: true }),
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new WallscopeTimeoutError('getaddrinfo', opts.timeoutMs)), opts.timeoutMs)),
      ),
    ]);
    const answers: DnsAnswer[] = addrs.map((a) =>
      a.family === 6 ? { answer_type: 'AAAA', ipv6: a.address, ttl: null } : { answer_type: 'A', ipv4: a.address, ttl: null },
    );
    const q: DnsQuery = { ...base, answers, t: trace.now() };
    return { query: q, addrs: addrsOf(q) };
  } catch (err) {
    return { query: { ...base, failure: classifyError(err), t: trace.now() }, addrs: [] };
  } finally {
    clearTimeout(timer);
  }
}
