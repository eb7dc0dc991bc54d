// The lab's resolvers (UDP and TCP on one ip:port) and the on-path DNS injectors in front of the
// ISP resolver. A forged reply is built the way the GFW's injector builds it [WB blackbox.c]:
// question copied, flags 0x8400 when RD=0 and 0x8180 when RD=1, one answer with a compressed name
// pointer, a varied TTL, no EDNS OPT, and an A record whatever the query type (the tell-tale
// forged A to an MX/TXT query). Deliberate deviation: AAAA queries also get an A record, so the
// lab never hands out an address outside its own IPv4 range. Forged replies race ahead of the
// genuine one by lead_ms. Hostile packets are dropped, never thrown.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { FrontEvent } from './front.js';

export interface DnsAnswerPlan {
  rcode: 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL';
  addresses: string[]; // IPv4 only
  ttl: number;
}

export interface Injector {
  /** Forged replies for this name right now, or null when this injector lets it pass. */
  forge(qname: string): { addresses: string[]; ttls: number[]; leadMs: number; censors?: string[] } | null;
}

export interface ResolverOptions {
  host: string;
  port: number;
  /** The genuine answer; null = no resolver here (only on-path injectors may answer). */
  answer(qname: string, qtype: string): DnsAnswerPlan | null;
  /** On-path injectors (only in front of the ISP resolver). */
  injector?: Injector;
  /** Genuine UDP answers leave this much later (netns mode: the distance to the internet). */
  delayMs?: number;
  /** Told of every injection (`lab up --log`), as the fronts tell of their resets. */
  log?: (e: FrontEvent) => void;
}

export interface RunningResolver {
  address: string; // "ip:port"
  host: string;
  port: number;
  /** Counters for tests and the bench. */
  stats: { queries: number; forged: number; malformed: number };
  close(): Promise<void>;
}

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3 } as const;
const MAX_TCP_QUERIES = 64; // per connection: request loops stay bounded
const TCP_IDLE_MS = 5000;

function genuineReply(q: dnsPacket.DecodedPacket, plan: DnsAnswerPlan): Buffer {
  const question = q.questions![0]!;
  const rd = q.flag_rd ? dnsPacket.RECURSION_DESIRED : 0;
  const answers: dnsPacket.Answer[] =
    plan.rcode === 'NOERROR' && question.type === 'A'
      ? plan.addresses.map((a) => ({ name: question.name, type: 'A' as const, class: 'IN' as const, ttl: plan.ttl, data: a }))
      : [];
  return dnsPacket.encode({
    id: q.id,
    type: 'response',
    flags: rd | dnsPacket.RECURSION_AVAILABLE | RCODE[plan.rcode],
    questions: [question],
    answers,
  });
}

/** The injector's packet, byte for byte as blackbox.c describes it. */
export function forgedReply(query: Buffer, address: string, ttl: number): Buffer | null {
  if (query.length < 12 || (query[2]! & 0x80) !== 0) return null; // QR must be 0
  // Walk the first question's QNAME (labels only; a pointer in a query is malformed).
  let p = 12;
  let total = 0;
  while (p < query.length && query[p] !== 0) {
    const len = query[p]!;
    if (len > 63) return null;
    p += 1 + len;
    total += len + 1;
    if (total > 125) return null; // flattened QNAME limit in blackbox.c
  }
  if (p + 5 > query.length) return null;
  const qEnd = p + 5; // zero byte, QTYPE, QCLASS
  const rd = (query[2]! & 0x01) !== 0;
  const out = Buffer.alloc(qEnd + 16);
  query.copy(out, 0, 0, 2); // id
  out.writeUInt16BE(rd ? 0x8180 : 0x8400, 2);
  out.writeUInt16BE(1, 4); // QD
  out.writeUInt16BE(1, 6); // AN
  out.writeUInt16BE(0, 8); // NS
  out.writeUInt16BE(0, 10); // AR: the query's OPT is dropped
  query.copy(out, 12, 12, qEnd);
  let o = qEnd;
  out.writeUInt16BE(0xc00c, o); // name: pointer to the question
  out.writeUInt16BE(1, o + 2); // type A, whatever was asked
  out.writeUInt16BE(1, o + 4); // class IN
  out.writeUInt32BE(ttl >>> 0, o + 6);
  out.writeUInt16BE(4, o + 10);
  const parts = address.split('.').map(Number);
  for (let i = 0; i < 4; i++) out[o + 12 + i] = parts[i]! & 0xff;
  o += 16;
  return out.subarray(0, o);
}

function decodeQuery(buf: Buffer): dnsPacket.DecodedPacket | null {
  try {
    const q = dnsPacket.decode(buf) as dnsPacket.DecodedPacket;
    if (q.type !== 'query' || !q.questions || q.questions.length !== 1) return null;
    return q;
  } catch {
    return null;
  }
}

type ResolverStats = RunningResolver['stats'];

export async function startResolver(opts: ResolverOptions): Promise<RunningResolver> {
  const stats = { queries: 0, forged: 0, malformed: 0 };
  const timers = new Set<NodeJS.Timeout>();
  // A deep receive queue: an injection scan sends tens of thousands of queries a second here.
  const udp = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
  let closed = false;

  const later = (ms: number, fn: () => void) => {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const send = (b: Buffer, rinfo: dgram.RemoteInfo) => {
    if (!closed) udp.send(b, rinfo.port, rinfo.address, () => undefined);
  };
  udp.on('message', (msg, rinfo) =>
    answerUdp(
      opts,
      stats,
      msg,
      rinfo,
      () => udp.address().port,
      (b) => send(b, rinfo),
      later,
    ),
  );
  udp.on('error', () => undefined);

  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((sock) => serveTcp(opts, stats, sockets, sock));
  const port = await listenUdpThenTcp(udp, tcp, opts);
  return {
    address: `${opts.host}:${port}`,
    host: opts.host,
    port,
    stats,
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
}

/**
 * One query over UDP: the injector's forged replies at once (logged), then the genuine reply after
 * the configured delay plus the injector's lead, so that the forged ones win the race.
 */
function answerUdp(
  opts: ResolverOptions,
  stats: ResolverStats,
  msg: Buffer,
  rinfo: dgram.RemoteInfo,
  port: () => number,
  send: (b: Buffer) => void,
  later: (ms: number, fn: () => void) => void,
): void {
  const q = decodeQuery(msg);
  if (!q) {
    stats.malformed++;
    return;
  }
  stats.queries++;
  const question = q.questions![0]!;
  const forged = opts.injector?.forge(question.name);
  let delay = opts.delayMs ?? 0;
  if (forged) {
    opts.log?.({
      t: Date.now(),
      client: `${rinfo.address}:${rinfo.port}`,
      server: `${opts.host}:${port()}`,
      action: 'dns-injection',
      censor: forged.censors?.join('+'),
      name: question.name,
      detail: forged.addresses.join(', '),
    });
    forged.addresses.forEach((a, i) => {
      const b = forgedReply(msg, a, forged.ttls[i] ?? 60);
      if (b) {
        stats.forged++;
        send(b);
      }
    });
    delay += forged.leadMs;
  }
  const plan = opts.answer(question.name, question.type);
  if (plan) {
    const reply = genuineReply(q, plan);
    later(delay, () => send(reply));
  }
}

/** DNS over TCP (RFC 7766): length-prefixed queries, genuine answers only (injectors race UDP). */
function serveTcp(opts: ResolverOptions, stats: ResolverStats, sockets: Set<net.Socket>, sock: net.Socket): void {
  sockets.add(sock);
  sock.on('close', () => sockets.delete(sock));
  sock.on('error', () => undefined);
  sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
  let buf = Buffer.alloc(0);
  let served = 0;
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) break;
      const msg = buf.subarray(2, 2 + len);
      buf = buf.subarray(2 + len);
      const q = decodeQuery(msg);
      if (!q || ++served > MAX_TCP_QUERIES) {
        stats.malformed += q ? 0 : 1;
        sock.destroy();
        return;
      }
      stats.queries++;
      const plan = opts.answer(q.questions![0]!.name, q.questions![0]!.type);
      if (!plan) {
        sock.destroy();
        return;
      }
      const reply = genuineReply(q, plan);
      const framed = Buffer.alloc(2 + reply.length);
      framed.writeUInt16BE(reply.length, 0);
      reply.copy(framed, 2);
      sock.write(framed);
    }
    if (buf.length > 65537) sock.destroy();
  });
}

/** Binds UDP, then TCP on the same port; the port. */
async function listenUdpThenTcp(udp: dgram.Socket, tcp: net.Server, opts: ResolverOptions): Promise<number> {
  await new Promise<void>((resolveBind, reject) => {
    udp.once('error', reject);
    udp.bind(opts.port, opts.host, () => {
      udp.off('error', reject);
      resolveBind();
    });
  });
  const port = udp.address().port;
  try {
    await new Promise<void>((res, rej) => {
      tcp.once('error', rej);
      tcp.listen(port, opts.host, () => {
        tcp.off('error', rej);
        res();
      });
    });
  } catch (e) {
    udp.close();
    throw e;
  }
  return port;
}
