// `measure --capture`: keeps the packets of the probe's own flows while it measures one URL, then
// records, for each failed or suspicious operation, only the packets that ended it (the RST/FIN
// that reset a handshake or request, what answered or did not answer a SYN, every reply of a DNS
// query that drew more than one). Injectors are told apart by exactly these fields: count, flags,
// IP ID, DF, TTL, window, payload and the sequence numbers relative to the flow (censors.md
// sections 3, 5, 9; SP25). Alone, a recorder's capture filter names only the URL's endpoints (and
// the resolver); in a run (measureMany, the lab), one CaptureHub per device reads TCP and the
// resolver's UDP once for all URLs and hands each frame only to the recorders watching its
// endpoint: a frame nobody watches is dropped on arrival, so unrelated traffic is never kept.
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { CapturedOperation, CapturedPacket, DnsQuery, HttpRequestEntry, TcpConnectEntry, TlsHandshakeEntry } from '../model/index.js';
import { openCapture, routeTo, type Capture } from './capture.js';
import { seqDiff, tcpFlagNames, TCP_FIN, TCP_RST, TCP_SYN, type DecodedPacket } from './packet.js';
import type { Trace } from './trace.js';

/** Frames kept per measurement at most (a hostile peer flooding the flow cannot grow memory without bound). */
export const MAX_FRAMES = 20_000;
const PAYLOAD_HEX_BYTES = 256;
/** libpcap hands frames over through the event loop: this long after the last step, late ones are still read. */
const DRAIN_MS = 30;
/** Per capture: one URL's handshakes need little, and a probe may hold 2 x concurrency captures open. */
const CAPTURE_BUFFER_BYTES = 1 << 20;
const ENDING_FAILURES = new Set(['connection_reset', 'eof_error', 'generic_timeout_error']);

interface Seen {
  at: number;
  p: DecodedPacket;
}

interface Flow {
  remote: string;
  remotePort: number;
  localPort: number;
  frames: Seen[];
}

type FrameSink = (f: { at: number; packet: DecodedPacket }) => void;

/**
 * One long-lived capture per device, shared by every measurement of a run: a frame is read and
 * decoded once and handed only to the recorders that watch one of its endpoints (remote ip:port),
 * instead of every URL opening its own captures, each of which also reads (and drops) the frames
 * of every concurrent URL to the same address. The kernel filter is the run's whole probe traffic:
 * TCP, and UDP to the resolver; a frame no recorder watches is dropped on arrival, never kept.
 */
export class CaptureHub {
  private readonly devices = new Map<string, Promise<Capture | Error>>();
  private readonly watchers = new Map<string, Set<FrameSink>>();
  private closed = false;

  /** `resolver` ("ip:port"): the UDP traffic the run's DNS queries make (none: TCP only). */
  constructor(private readonly resolver?: { host: string; port: number }) {}

  private filter(): string {
    const r = this.resolver;
    return r && net.isIPv4(r.host) ? `tcp or (udp and host ${r.host} and port ${r.port})` : 'tcp';
  }

  /** The capture of the device that routes to `ip`, opened on first use; an Error when it cannot be. */
  private device(ip: string): Promise<Capture | Error> {
    return routeTo(ip).then(
      ({ dev }) => {
        let c = this.devices.get(dev);
        if (!c) {
          c = Promise.resolve().then(() => {
            try {
              return this.closed ? new Error('capture hub closed') : openCapture(dev, this.filter(), this.dispatch);
            } catch (e) {
              return e as Error;
            }
          });
          this.devices.set(dev, c);
        }
        return c;
      },
      (e: Error) => e,
    );
  }

  private dispatch = (f: { at: number; packet: DecodedPacket }): void => {
    const p = f.packet;
    const l4 = p.tcp ?? p.udp;
    if (!l4) return;
    const a = this.watchers.get(`${p.ip.src}:${l4.srcPort}/${p.tcp ? 't' : 'u'}`);
    const b = this.watchers.get(`${p.ip.dst}:${l4.dstPort}/${p.tcp ? 't' : 'u'}`);
    if (a) for (const sink of a) sink(f);
    if (b) for (const sink of b) if (!a?.has(sink)) sink(f);
  };

  /** Hands `sink` every frame to or from ip:port over `proto`; resolves to a problem, or null. */
  async watch(proto: 'tcp' | 'udp', ip: string, port: number, sink: FrameSink): Promise<string | null> {
    const c = await this.device(ip);
    if (c instanceof Error) return c.message;
    const key = `${ip}:${port}/${proto === 'tcp' ? 't' : 'u'}`;
    (this.watchers.get(key) ?? this.watchers.set(key, new Set()).get(key)!).add(sink);
    return null;
  }

  unwatch(sink: FrameSink): void {
    for (const [key, set] of this.watchers) if (set.delete(sink) && set.size === 0) this.watchers.delete(key);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of await Promise.all(this.devices.values())) if (!(c instanceof Error)) c.close();
    this.devices.clear();
    this.watchers.clear();
  }
}

export class PacketRecorder {
  private readonly captures: Capture[] = [];
  private readonly frames: Seen[] = [];
  /** performance.now() at the trace's origin, so that frame times become the trace's seconds. */
  private readonly perfOrigin: number;
  private readonly remotes = new Set<string>();
  dropped = 0;
  /** Why a capture could not be opened (the measurement goes on without it). */
  readonly problems: string[] = [];

  /** `hub`: the run's shared captures (measureMany); without one, the recorder opens its own. */
  constructor(
    private readonly trace: Trace,
    private readonly hub?: CaptureHub,
  ) {
    this.perfOrigin = performance.now() - trace.now() * 1000;
  }

  private keep = (f: { at: number; packet: DecodedPacket }): void => {
    if (this.frames.length >= MAX_FRAMES) {
      this.dropped++;
      return;
    }
    this.frames.push({ at: f.at, p: f.packet });
  };

  private async open(ips: string[], filterFor: (ips: string[]) => string): Promise<void> {
    const v4 = [...new Set(ips.filter((ip) => net.isIPv4(ip)))];
    const byDevice = new Map<string, string[]>();
    const devs = await Promise.allSettled(v4.map(async (ip) => (await routeTo(ip)).dev));
    devs.forEach((d, i) => {
      if (d.status === 'rejected') this.problems.push((d.reason as Error).message);
      else byDevice.set(d.value, [...(byDevice.get(d.value) ?? []), v4[i]!]);
    });
    for (const [dev, list] of byDevice) {
      try {
        this.captures.push(openCapture(dev, filterFor(list), this.keep, { bufferBytes: CAPTURE_BUFFER_BYTES }));
        for (const ip of list) this.remotes.add(ip);
      } catch (e) {
        this.problems.push((e as Error).message);
      }
    }
  }

  private async watchOnHub(proto: 'tcp' | 'udp', ips: string[], port: number): Promise<void> {
    const v4 = [...new Set(ips.filter((ip) => net.isIPv4(ip)))];
    const problems = await Promise.all(v4.map((ip) => this.hub!.watch(proto, ip, port, this.keep)));
    problems.forEach((p, i) => (p ? this.problems.push(p) : this.remotes.add(v4[i]!)));
  }

  /** Starts capturing the UDP exchange with the resolver ("ip:port"); call before the queries leave. */
  watchResolver(ip: string, port: number): Promise<void> {
    if (this.hub) return this.watchOnHub('udp', [ip], port);
    return this.open([ip], (l) => `udp and host ${l[0]} and port ${port}`);
  }

  /** Starts capturing TCP to these endpoints on `port`; call before the connects. */
  watchEndpoints(ips: string[], port: number): Promise<void> {
    if (this.hub) return this.watchOnHub('tcp', ips, port);
    return this.open(ips, (l) => `tcp and port ${port} and (${l.map((ip) => `host ${ip}`).join(' or ')})`);
  }

  /** Stops every capture once the frames still queued were read. */
  async stop(): Promise<void> {
    await new Promise((r) => setTimeout(r, DRAIN_MS));
    this.hub?.unwatch(this.keep);
    for (const c of this.captures.splice(0)) c.close();
  }

  private traceSeconds(at: number): number {
    return Math.round((at - this.perfOrigin) * 1000) / 1e6;
  }

  private flows(): Map<string, Flow> {
    const out = new Map<string, Flow>();
    for (const s of this.frames) {
      const t = s.p.tcp;
      if (!t) continue;
      const inbound = this.remotes.has(s.p.ip.src);
      const remote = inbound ? s.p.ip.src : s.p.ip.dst;
      const remotePort = inbound ? t.srcPort : t.dstPort;
      const localPort = inbound ? t.dstPort : t.srcPort;
      const key = `${remote}:${remotePort}/${localPort}`;
      let f = out.get(key);
      if (!f) out.set(key, (f = { remote, remotePort, localPort, frames: [] }));
      f.frames.push(s);
    }
    return out;
  }

  /**
   * The evidence for the measurement's failed operations. Call after stop(). Entries appear in the
   * order tcp_connect, tls_handshakes, requests, dns.
   */
  evidence(keys: {
    tcp_connect: TcpConnectEntry[];
    tls_handshakes: TlsHandshakeEntry[];
    requests: HttpRequestEntry[];
    duplicates: DnsQuery[];
  }): CapturedOperation[] {
    const flows = this.flows();
    const flowOf = (address: string, localPort: number): Flow | undefined =>
      [...flows.values()].find((f) => f.localPort === localPort && `${f.remote}:${f.remotePort}` === address);
    const socketFlow = (txid: number | undefined, address: string): Flow | undefined => {
      const s = this.trace.sockets.find((x) => x.transaction_id === txid && x.address === address);
      return s ? flowOf(address, s.local_port) : undefined;
    };
    const out: CapturedOperation[] = [];
    for (const c of keys.tcp_connect) {
      if (c.status.success || !net.isIPv4(c.ip)) continue;
      const address = `${c.ip}:${c.port}`;
      const f = socketFlow(c.transaction_id, address) ?? this.unclaimedFlow(flows, address, c.t0 ?? c.t, c.t);
      if (!f) continue;
      // A SYN that drew no answer (or a forged one): the SYNs sent and whatever came back.
      const firstSyn = f.frames.find((s) => !this.isIn(s) && s.p.tcp!.flags & TCP_SYN);
      const picked = f.frames.filter((s) => this.isIn(s) || s.p.tcp!.flags & TCP_SYN);
      out.push(this.entry('tcp_connect', address, c.status.failure, c.transaction_id, firstSyn ?? null, f, picked));
    }
    for (const h of keys.tls_handshakes) {
      if (!h.failure || !ENDING_FAILURES.has(h.failure) || !h.address) continue;
      const f = socketFlow(h.transaction_id, h.address);
      if (f) out.push(this.ending('tls_handshake', h.address, h.failure, h.transaction_id, f));
    }
    for (const r of keys.requests) {
      if (!r.failure || !ENDING_FAILURES.has(r.failure) || !r.address) continue;
      // The request's own connection: an untagged socket to that address whose client bytes left
      // while the request was under way (follow-ups are tagged; redirect hops dial new sockets).
      const t0 = (r.t0 ?? r.t) - 0.001;
      const candidates = this.trace.sockets
        .filter((s) => s.address === r.address && !s.tags)
        .map((s) => flowOf(r.address!, s.local_port))
        .filter((f): f is Flow =>
          Boolean(
            f?.frames.some(
              (s) => !this.isIn(s) && s.p.tcp!.payload.length > 0 && this.traceSeconds(s.at) >= t0 && this.traceSeconds(s.at) <= r.t,
            ),
          ),
        );
      const f = candidates.at(-1);
      if (f) out.push(this.ending('http_request', r.address, r.failure, undefined, f));
    }
    if (keys.duplicates.length > 0) out.push(...this.dnsEvidence(keys.duplicates));
    return out;
  }

  /**
   * A refused connect never tells Node its local port (the error arrives before any callback could
   * read it): the flow to `address` whose first SYN left within [t0, t] and whose port no recorded
   * socket holds (every connect that got a port recorded it).
   */
  private unclaimedFlow(flows: Map<string, Flow>, address: string, t0: number, t: number): Flow | undefined {
    const claimed = new Set(this.trace.sockets.filter((s) => s.address === address).map((s) => s.local_port));
    return [...flows.values()].find((f) => {
      if (`${f.remote}:${f.remotePort}` !== address || claimed.has(f.localPort)) return false;
      const syn = f.frames.find((s) => !this.isIn(s) && s.p.tcp!.flags & TCP_SYN);
      const at = syn ? this.traceSeconds(syn.at) : -1;
      return at >= t0 - 0.001 && at <= t;
    });
  }

  private isIn(s: Seen): boolean {
    return this.remotes.has(s.p.ip.src);
  }

  /** The RST/FIN packets that ended the flow, after the last client payload before them (the trigger). */
  private ending(
    operation: CapturedOperation['operation'],
    address: string,
    failure: string,
    txid: number | undefined,
    f: Flow,
  ): CapturedOperation {
    const isEnd = (s: Seen): boolean => this.isIn(s) && (s.p.tcp!.flags & (TCP_RST | TCP_FIN)) !== 0;
    const firstEnd = f.frames.findIndex(isEnd);
    const before = firstEnd < 0 ? f.frames : f.frames.slice(0, firstEnd);
    const trigger = before.filter((s) => !this.isIn(s) && s.p.tcp!.payload.length > 0).at(-1) ?? null;
    return this.entry(operation, address, failure, txid, trigger, f, f.frames.filter(isEnd));
  }

  private entry(
    operation: CapturedOperation['operation'],
    address: string,
    failure: string | null,
    txid: number | undefined,
    trigger: Seen | null,
    f: Flow,
    picked: Seen[],
  ): CapturedOperation {
    const rel = relativeSeq(f.frames, (s) => this.isIn(s));
    const packets = picked.map((s) => packetRecord(s, this.isIn(s), trigger, rel.get(s) ?? { seq: null, ack: null }));
    return {
      operation,
      address,
      failure,
      ...(txid !== undefined ? { transaction_id: txid } : {}),
      trigger_t: trigger ? this.traceSeconds(trigger.at) : null,
      count: packets.length,
      packets,
    };
  }

  /** Every reply to a query that drew more than one (the injection signature, censors.md section 1). */
  private dnsEvidence(duplicates: DnsQuery[]): CapturedOperation[] {
    const sent = new Map<string, { s: Seen; hostname: string; type: string }>();
    const replies = new Map<string, Seen[]>();
    for (const s of this.frames) {
      const u = s.p.udp;
      if (!u || u.payload.length < 12) continue;
      const inbound = this.remotes.has(s.p.ip.src);
      const key = `${inbound ? u.dstPort : u.srcPort}/${u.payload.readUInt16BE(0)}`;
      if (inbound) replies.set(key, [...(replies.get(key) ?? []), s]);
      else if (!sent.has(key)) {
        try {
          // Robustness: dns-packet throws on malformed input; our own queries are well formed.
          const q = dnsPacket.decode(u.payload).questions?.[0];
          if (q) sent.set(key, { s, hostname: q.name.toLowerCase(), type: q.type });
        } catch {
          /* not a DNS query */
        }
      }
    }
    const wanted = new Set(duplicates.map((d) => `${d.hostname.toLowerCase()}/${d.query_type}`));
    const out: CapturedOperation[] = [];
    for (const [key, q] of sent) {
      const got = replies.get(key) ?? [];
      if (got.length < 2 || !wanted.has(`${q.hostname}/${q.type}`)) continue;
      const packets = got.map((s) => packetRecord(s, true, q.s, { seq: null, ack: null }));
      out.push({
        operation: 'dns',
        address: `${q.s.p.ip.dst}:${q.s.p.udp!.dstPort}`,
        failure: null,
        query: { hostname: q.hostname, query_type: q.type },
        trigger_t: this.traceSeconds(q.s.at),
        count: packets.length,
        packets,
      });
    }
    return out;
  }
}

/** seq/ack of every packet relative to the flow as the probe saw it (see CapturedPacket). */
function relativeSeq(frames: Seen[], isIn: (s: Seen) => boolean): Map<Seen, { seq: number | null; ack: number | null }> {
  const out = new Map<Seen, { seq: number | null; ack: number | null }>();
  let isn: number | null = null;
  let sndNxt: number | null = null;
  let rcvNxt: number | null = null;
  for (const s of frames) {
    const t = s.p.tcp!;
    if (isIn(s)) {
      out.set(s, { seq: rcvNxt === null ? null : seqDiff(t.seq, rcvNxt), ack: sndNxt === null ? null : seqDiff(t.ack, sndNxt) });
      continue;
    }
    if (isn === null && t.flags & TCP_SYN) isn = t.seq;
    out.set(s, { seq: isn === null ? null : seqDiff(t.seq, isn), ack: null });
    const end = (t.seq + t.payload.length + (t.flags & TCP_SYN ? 1 : 0) + (t.flags & TCP_FIN ? 1 : 0)) >>> 0;
    if (sndNxt === null || seqDiff(end, sndNxt) > 0) sndNxt = end;
    if (t.flags & 0x10) rcvNxt = t.ack;
  }
  return out;
}

function packetRecord(s: Seen, inbound: boolean, trigger: Seen | null, rel: { seq: number | null; ack: number | null }): CapturedPacket {
  const { ip, tcp, udp } = s.p;
  const payload = tcp?.payload ?? udp?.payload ?? Buffer.alloc(0);
  return {
    dir: inbound ? 'in' : 'out',
    proto: tcp ? 'tcp' : 'udp',
    t_ms: trigger ? Math.round((s.at - trigger.at) * 1000) / 1000 : 0,
    src: `${ip.src}:${tcp?.srcPort ?? udp?.srcPort ?? 0}`,
    dst: `${ip.dst}:${tcp?.dstPort ?? udp?.dstPort ?? 0}`,
    ttl: ip.ttl,
    ip_id: ip.id,
    df: ip.df,
    flags: tcp ? tcpFlagNames(tcp.flags) : null,
    window: tcp ? tcp.window : null,
    seq_rel: tcp ? rel.seq : null,
    ack_rel: tcp ? rel.ack : null,
    tcp_header_length: tcp ? tcp.headerLength : null,
    payload_length: payload.length,
    payload_hex: payload.subarray(0, PAYLOAD_HEX_BYTES).toString('hex'),
  };
}
