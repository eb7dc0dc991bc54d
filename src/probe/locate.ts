// `locate`: where on the path each injector sits, by TTL-limited triggers [SP25 ttl script,
// censors.md section 6]. For IP TTL n = 1..max the trigger is sent with TTL n: a DNS query (UDP
// socket TTL), or, after a normal handshake, the ClientHello carrying the name's SNI or the HTTP
// request carrying its Host, injected as the connection's next segment with IP TTL n (the kernel
// socket keeps TTL 64 for the handshake). The smallest n that still draws an injected reply is the
// injector's hop. Every reply is captured with its IP TTL, IP ID and flags, so that
//  - replies are grouped by injector (its packet signature), not lumped together;
//  - an injector that COPIES the trigger's TTL into its reply (TRIPLET; CenTrace checks for it) is
//    recognised: its reply appears only from n = 2h-1 and arrives with TTL n - 2(h-1), one more for
//    each extra hop of n, so h = (n - arrival)/2 + 1 instead of the naive n;
//  - ICMP time-exceeded errors name the routers, and the first n that draws none is the destination.
// Needs root (capture and injection). Sends only to the target given; bounded: max TTL x one trigger.
import dgram from 'node:dgram';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { randomInt } from 'node:crypto';
import { deviceMac, openCapture, routeTo, type Capture, type CapturedFrame } from './capture.js';
import { encodeQuery } from './dns.js';
import { encodeTcpPacket, frame, TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN, tcpFlagNames, type DecodedPacket } from './packet.js';
import type { NetPolicy } from './policy.js';

export type LocateMechanism = 'dns' | 'sni' | 'http';

export interface LocatedPacket {
  /** IP TTL of the trigger that drew it. */
  trigger_ttl: number;
  ms: number;
  ip_ttl: number;
  ip_id: number;
  df: boolean;
  flags?: string;
  payload_len: number;
  payload_hex?: string;
  answers?: string[];
}

export interface InjectorHop {
  mechanism: LocateMechanism;
  /** What tells this injector's packets apart (flags, payload, DF, TTL behaviour). */
  signature: string;
  hop: number;
  first_trigger_ttl: number;
  ttl_behaviour: 'fixed' | 'copies-trigger';
  packets: LocatedPacket[];
}

export interface LocateResult {
  target: string;
  address: string;
  port: number;
  mechanism: LocateMechanism;
  /** hop -> router address from ICMP time-exceeded (missing where a router stayed silent). */
  routers: Record<number, string>;
  /** The first trigger TTL that reached the destination (no time-exceeded), or null. */
  destination_hop: number | null;
  injectors: InjectorHop[];
  triggers: number;
}

export interface LocateOptions {
  name: string;
  address: string;
  port?: number;
  mechanism: LocateMechanism;
  maxTtl?: number;
  /** How long to wait for replies after each trigger (ms). */
  waitMs?: number;
  policy: NetPolicy;
}

/** A real ClientHello for `sni` (Node's TLS stack, never sent anywhere by itself). */
export function clientHelloFor(sni: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let done = false;
    const sink = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        if (!done) {
          done = true;
          resolve(Buffer.from(chunk));
          setImmediate(() => t.destroy());
        }
        cb();
      },
    });
    const t = tls.connect({ socket: sink, servername: sni, rejectUnauthorized: false });
    t.on('error', (e) => !done && reject(e));
  });
}

function httpRequestFor(host: string): Buffer {
  return Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: wallscope-locate\r\nAccept: */*\r\n\r\n`);
}

/** The trigger a time-exceeded error quotes (RFC 792: its IP header and first 8 bytes). */
function quotedPorts(p: DecodedPacket): { dst: string; sport: number } | null {
  if (!p.icmp || p.icmp.type !== 11) return null;
  const q = p.icmp.quoted;
  if (q.length < 20 || q[0]! >> 4 !== 4) return null;
  const ihl = (q[0]! & 0x0f) * 4;
  if (q.length < ihl + 4) return null;
  return { dst: `${q[16]}.${q[17]}.${q[18]}.${q[19]}`, sport: q.readUInt16BE(ihl) };
}

function signatureOf(p: LocatedPacket, mechanism: LocateMechanism): string {
  if (mechanism === 'dns') return `dns reply${p.df ? ' DF' : ''}`;
  return `${p.flags}${p.df ? ' DF' : ''}${p.payload_len ? ` payload ${p.payload_hex ?? p.payload_len}` : ''}`;
}

/**
 * Groups the replies of all TTLs into one series per injector and assigns hops. A reply at trigger
 * TTL n continues a series of its signature seen at n-1 with the same arrival TTL (a fixed-TTL
 * injector) or one less (an injector that copies the trigger's TTL); otherwise it starts a series.
 * A copier's series starts at n = 2h-1 with arrival TTL n - 2(h-1), which gives its hop.
 */
export function assignHops(mechanism: LocateMechanism, byTtl: Map<number, LocatedPacket[]>, destination: number | null): InjectorHop[] {
  interface Series {
    sig: string;
    packets: LocatedPacket[];
    copies: boolean | null;
  }
  const all: Series[] = [];
  const last = (x: Series) => x.packets.at(-1)!;
  for (const n of [...byTtl.keys()].sort((a, b) => a - b)) {
    const taken = new Set<Series>();
    const attach = (x: Series, p: LocatedPacket) => {
      if (x.copies === null && last(x).trigger_ttl === n - 1) x.copies = last(x).ip_ttl === p.ip_ttl - 1;
      x.packets.push(p);
      taken.add(x);
    };
    const open = (p: LocatedPacket) =>
      all.filter((x) => x.sig === signatureOf(p, mechanism) && !taken.has(x) && last(x).trigger_ttl === n - 1);
    // A burst (type II's three RSTs) from the same trigger with the same TTL is one injector.
    const burstOf = (p: LocatedPacket) =>
      all.find((x) => x.sig === signatureOf(p, mechanism) && taken.has(x) && last(x).trigger_ttl === n && last(x).ip_ttl === p.ip_ttl);
    const rest: LocatedPacket[] = [];
    // First the replies that continue a series exactly (same TTL: fixed; one more: a copier) ...
    for (const p of [...byTtl.get(n)!].sort((a, b) => a.ip_ttl - b.ip_ttl)) {
      const burst = burstOf(p);
      const s =
        open(p).find((x) => x.copies !== true && last(x).ip_ttl === p.ip_ttl) ??
        open(p).find((x) => x.copies !== false && last(x).ip_ttl === p.ip_ttl - 1);
      if (burst) burst.packets.push(p);
      else if (s) attach(s, p);
      else rest.push(p);
    }
    // ... then the others: a fixed injector whose TTL varies per injection (GFW type II: 39-238),
    // or a new injector.
    for (const p of rest) {
      const burst = burstOf(p);
      const s = open(p).find((x) => x.copies !== true);
      if (burst) burst.packets.push(p);
      else if (s) {
        s.copies = false;
        attach(s, p);
      } else {
        const fresh: Series = { sig: signatureOf(p, mechanism), packets: [p], copies: null };
        all.push(fresh);
        taken.add(fresh);
      }
    }
  }
  const out: InjectorHop[] = [];
  for (const x of all) {
    const first = x.packets[0]!;
    const copies = x.copies === true;
    // A genuine answer from the destination itself is not an injector.
    if (mechanism === 'dns' && !copies && destination !== null && first.trigger_ttl >= destination) continue;
    const hop = copies ? Math.round((first.trigger_ttl - first.ip_ttl) / 2) + 1 : first.trigger_ttl;
    out.push({
      mechanism,
      signature: x.sig,
      hop,
      first_trigger_ttl: first.trigger_ttl,
      ttl_behaviour: copies ? 'copies-trigger' : 'fixed',
      packets: x.packets,
    });
  }
  return out.sort((a, b) => a.hop - b.hop || a.first_trigger_ttl - b.first_trigger_ttl);
}

export async function locate(o: LocateOptions): Promise<LocateResult> {
  const maxTtl = o.maxTtl ?? 16;
  const port = o.port ?? (o.mechanism === 'dns' ? 53 : o.mechanism === 'sni' ? 443 : 80);
  if (!net.isIPv4(o.address)) throw new Error(`locate needs an IPv4 address, got ${o.address}`);
  const refused = o.policy.checkDial(o.address);
  if (refused) throw new Error(refused.replace(/^unknown_failure: /, ''));
  const route = await routeTo(o.address);
  const run = new LocateRun(o, port, route.src);
  const cap: Capture = openCapture(route.dev, `host ${o.address} or icmp`, (f) => run.onFrame(f));
  const ownMac = (() => {
    try {
      return deviceMac(route.dev);
    } catch {
      return null;
    }
  })();
  const trigger = o.mechanism === 'sni' ? await clientHelloFor(o.name) : o.mechanism === 'http' ? httpRequestFor(o.name) : null;
  try {
    for (let ttl = 1; ttl <= maxTtl; ttl++) {
      if (o.mechanism === 'dns') await run.triggerDns(ttl);
      else await run.triggerTcp(ttl, cap, ownMac, trigger!);
      // A TTL-copying injector at hop h answers only from n = 2h-1: go on to twice the path length.
      const last = Math.max(0, ...run.timeExceeded);
      if (ttl >= 2 * (last + 1) + 1) break;
    }
  } finally {
    cap.close();
  }
  const destination = destinationHop(run.timeExceeded, run.routers, maxTtl);
  return {
    target: o.name,
    address: o.address,
    port,
    mechanism: o.mechanism,
    routers: run.routers,
    destination_hop: destination,
    injectors: assignHops(o.mechanism, run.byTtl, destination),
    triggers: run.triggers,
  };
}

/** The first TTL past every Time Exceeded that got none (the destination itself), or null. */
function destinationHop(timeExceeded: Set<number>, routers: Record<number, string>, maxTtl: number): number | null {
  for (let n = 1; n <= maxTtl; n++) if (!timeExceeded.has(n) && Object.keys(routers).length && n > Math.max(...timeExceeded)) return n;
  return null;
}

/** One location run: the trigger in flight, and what the capture saw for each TTL. */
class LocateRun {
  readonly byTtl = new Map<number, LocatedPacket[]>();
  readonly routers: Record<number, string> = {};
  readonly timeExceeded = new Set<number>();
  triggers = 0;
  private current: { ttl: number; sport: number; t0: number } | null = null;
  private gatewayMac: string | null = null;
  private synAck: { seq: number; ack: number } | null = null;
  private readonly waitMs: number;

  constructor(
    private readonly o: LocateOptions,
    private readonly port: number,
    private readonly src: string,
  ) {
    this.waitMs = o.waitMs ?? 400;
  }

  onFrame(f: CapturedFrame): void {
    const p = f.packet;
    const current = this.current;
    if (!current) return;
    if (p.ip.dst !== this.src) return;
    const q = quotedPorts(p);
    if (q) {
      if (q.dst === this.o.address && q.sport === current.sport) {
        this.routers[current.ttl] = p.ip.src;
        this.timeExceeded.add(current.ttl);
      }
      return;
    }
    if (p.ip.src !== this.o.address) return;
    const ms = Math.round((f.at - current.t0) * 100) / 100;
    const base = { trigger_ttl: current.ttl, ms, ip_ttl: p.ip.ttl, ip_id: p.ip.id, df: p.ip.df };
    if (this.o.mechanism === 'dns' && p.udp && p.udp.srcPort === this.port && p.udp.dstPort === current.sport) {
      const answers: string[] = [];
      const pl = p.udp.payload;
      // A-record data at the end of a one-answer reply (the injectors' shape); kept as evidence only.
      if (pl.length >= 16 && pl.readUInt16BE(6) >= 1)
        answers.push(`${pl[pl.length - 4]}.${pl[pl.length - 3]}.${pl[pl.length - 2]}.${pl[pl.length - 1]}`);
      this.record(current.ttl, { ...base, payload_len: pl.length, answers });
    } else if (p.tcp && p.tcp.srcPort === this.port && p.tcp.dstPort === current.sport) {
      if (p.tcp.flags & TCP_SYN && p.tcp.flags & TCP_ACK) {
        this.gatewayMac = p.srcMac;
        this.synAck = { seq: p.tcp.seq, ack: p.tcp.ack };
        return;
      }
      if (!(p.tcp.flags & TCP_RST) && !(p.tcp.flags & 0x01)) return;
      this.record(current.ttl, {
        ...base,
        flags: tcpFlagNames(p.tcp.flags),
        payload_len: p.tcp.payload.length,
        ...(p.tcp.payload.length ? { payload_hex: p.tcp.payload.toString('hex') } : {}),
      });
    }
  }

  private record(ttl: number, p: LocatedPacket): void {
    (this.byTtl.get(ttl) ?? this.byTtl.set(ttl, []).get(ttl)!).push(p);
  }

  /** A DNS query with this TTL, then the replies it draws for waitMs. */
  async triggerDns(ttl: number): Promise<void> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, this.src, () => r()));
    sock.setTTL(ttl);
    this.current = { ttl, sport: sock.address().port, t0: performance.now() };
    sock.send(encodeQuery(this.o.name, 'A', randomInt(0, 65536)), this.port, this.o.address);
    this.triggers++;
    await new Promise((r) => setTimeout(r, this.waitMs));
    this.current = null;
    sock.close();
  }

  /**
   * A TCP connection with the full TTL, then the trigger (ClientHello or request) as a hand-made
   * segment with this TTL, sent on the capture's socket; then the replies it draws for waitMs.
   */
  async triggerTcp(ttl: number, cap: Capture, ownMac: string | null, trigger: Buffer): Promise<void> {
    const { o, port } = this;
    this.synAck = null;
    const s = new net.Socket();
    s.on('error', () => undefined);
    // A chosen source port, so that the capture knows the flow before the SYN leaves.
    const sport = randomInt(20000, 60000);
    const current = { ttl, sport, t0: performance.now() };
    this.current = current;
    const connected = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 3000);
      s.once('error', () => {
        clearTimeout(t);
        resolve(false);
      });
      s.connect({ host: o.address, port, localAddress: this.src, localPort: sport }, () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    // The SYN-ACK may be captured a moment after connect() resolved.
    for (let i = 0; i < 20 && !this.synAck; i++) await new Promise((r) => setTimeout(r, 5));
    const sa = this.synAck as { seq: number; ack: number } | null;
    if (!connected || !sa || !this.gatewayMac || !ownMac) {
      s.destroy();
      this.current = null;
      return; // a TCP-level block (null route) leaves nothing to trigger at this TTL
    }
    const seg = encodeTcpPacket(
      { src: this.src, dst: o.address, ttl, id: randomInt(0, 65536), df: true },
      {
        srcPort: s.localPort!,
        dstPort: port,
        seq: sa.ack,
        ack: (sa.seq + 1) >>> 0,
        flags: TCP_PSH | TCP_ACK,
        window: 64240,
        payload: trigger,
      },
    );
    current.t0 = performance.now();
    cap.send(frame({ srcMac: ownMac, dstMac: this.gatewayMac }, seg));
    this.triggers++;
    await new Promise((r) => setTimeout(r, this.waitMs));
    this.current = null;
    s.destroy();
  }
}
