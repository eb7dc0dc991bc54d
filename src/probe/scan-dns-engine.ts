// The query engine of `scan dns` (src/probe/scan-dns.ts), apart so that its sending threads
// (scan-dns-worker.ts) load only this: the sockets, the queries in flight in send order, each closed
// window turned into its line, and the pacing of the sends.
import type { Capture } from './capture.js';
import { BatchScanSocket, loadUdpBatch, openDgramSocket, type ScanSocket } from './scan-dns-io.js';
import { scanReplyJson } from './scan-dns-wire.js';
import { sleep } from './sleep.js';

/** Query types a scan may ask (blackbox.c answers A to all but AAAA: the others reveal it). */
export const SCAN_QTYPES = ['A', 'AAAA', 'MX', 'TXT', 'NS', 'CNAME', 'SOA', 'SRV', 'PTR', 'CAA'] as const;
export type ScanQtype = (typeof SCAN_QTYPES)[number];

export interface DnsScanProgress {
  sent: number;
  written: number;
  skipped: number;
  replies: number;
  late: number;
}

interface Pending {
  name: string;
  qtype: ScanQtype;
  sentAt: number;
  deadline: number;
  sock: number;
  id: number;
  /** The replies as received, and when (parsed only when the line is written). */
  raw: Buffer[];
  at: number[];
  /** With a capture: each reply's payload, to find its IP TTL among the captured frames. */
  keys?: string[];
  /** With the udp-batch addon asked for TTLs: each reply's IP TTL as its socket read it. */
  ttls?: Array<number | null>;
}

const MAX_PER_SOCKET = 30_000; // in flight per source port: DNS ids are 16 bits
const MAX_SOCKETS = 64;
const TTL_GRACE_MS = 1000;
/** What the query engine needs: the target, the windows and the bounds of one sender. */
export interface ScanEngineOptions {
  host: string;
  port: number;
  waitMs: number;
  /** Queries per second of this sender (0: unbounded). */
  rate: number;
  /**
   * At most this many queries waiting for their first reply (0: no bound), as dnsperf's -q: a target
   * that answers (the lab's injectors on one machine) is never sent more than it has answered plus
   * this. A window stays open for its whole length either way (later injected replies are kept).
   */
  outstanding?: number;
  /** Send and read through the udp-batch addon (scan-dns-io.ts; the caller checked that it loads), else dgram. */
  batch?: boolean;
  /** With `batch`: read each reply's IP TTL from its socket (IP_RECVTTL). */
  socketTtl?: boolean;
}

/** Windows open at most for a rate (0: unbounded) and window. */
export function inFlightBound(rate: number, waitMs: number): number {
  // A second's worth of slack past the windows themselves: the flush that closes them runs on
  // a timer, which a loaded machine delays; without slack that delay would throttle sending.
  return rate > 0 ? Math.ceil((rate * (waitMs + 1000)) / 1000) + 256 : UNPACED_IN_FLIGHT;
}

/**
 * Without a rate: windows open at most. Why this many: every window stays open its whole --wait,
 * so this over the wait caps the rate; at 50,000 a 2 s window capped an unpaced scan at 25k q/s,
 * under what the lab answers on one machine (bench/scan-dns.ts, beside dnsperf's 31-34k q/s), and
 * --outstanding, not this, is to bound an unpaced scan. A window costs well under 1 KiB.
 */
const UNPACED_IN_FLIGHT = 100_000;

/**
 * One sender's queries: its sockets, the queries in flight (in send order); each closed window
 * becomes one line, handed to `emit` in send order.
 */
export class ScanRun {
  ttlOf = new Map<string, number[]>();
  capture: Capture | null = null;
  /**
   * Per socket, the query in flight under each DNS id (65,536 slots). Why slots, not a Map: tens of
   * thousands of entries set and deleted per second made a Map's table reallocate and rehash as it
   * grew and shrank, garbage-collector work in the sending thread; the slots cost 512 KiB a socket.
   */
  private readonly pending: Array<Array<Pending | undefined>> = [];
  private readonly sockets: ScanSocket[] = [];
  private readonly ids: number[] = [];
  private readonly queue: Pending[] = [];
  private head = 0;
  readonly inFlightMax: number;
  /** Queries sent that no reply has come for yet (their window open). */
  unanswered = 0;
  readonly outstanding: number;
  /** Whether a flush of the batched sockets is queued (or waiting to retry what the kernel did not take). */
  private flushQueued = false;
  private firstStaged = 0;

  constructor(
    private readonly o: ScanEngineOptions,
    private readonly emit: (line: string) => void,
    readonly progress: DnsScanProgress = { sent: 0, written: 0, skipped: 0, replies: 0, late: 0 },
  ) {
    this.inFlightMax = inFlightBound(o.rate, o.waitMs);
    this.outstanding = o.outstanding ?? 0;
  }

  get inFlight(): number {
    return this.queue.length - this.head;
  }

  /** At least 8 connected sockets: each source port has its own receive queue, so a burst of replies spreads over them. */
  async openSockets(): Promise<void> {
    const n = Math.min(MAX_SOCKETS, Math.max(8, Math.ceil(this.inFlightMax / MAX_PER_SOCKET)));
    const UdpBatch = this.o.batch ? loadUdpBatch().UdpBatch : null;
    if (this.o.batch && !UdpBatch) throw new Error(`scan dns: ${loadUdpBatch().reason}`);
    for (let s = 0; s < n; s++) {
      const map = new Array<Pending | undefined>(0x10000).fill(undefined);
      const onReply = (msg: Buffer, at: number, ttl: number | null) => this.onReply(map, msg, at, ttl);
      this.pending.push(map);
      this.ids.push(Math.floor(Math.random() * 0x10000));
      this.sockets.push(
        UdpBatch
          ? new BatchScanSocket(UdpBatch, this.o.host, this.o.port, !!this.o.socketTtl, onReply)
          : await openDgramSocket(this.o.host, this.o.port, onReply),
      );
    }
  }

  private onReply(map: Array<Pending | undefined>, msg: Buffer, at: number, ttl: number | null): void {
    if (msg.length < 12) return;
    const p = map[msg.readUInt16BE(0)];
    if (!p) {
      this.progress.late++;
      return;
    }
    if (p.raw.length === 0) this.unanswered--;
    p.raw.push(msg);
    p.at.push(at);
    if (this.capture) (p.keys ??= []).push(msg.toString('latin1'));
    else if (this.o.socketTtl) (p.ttls ??= []).push(ttl);
  }

  /** Sends one query (the next id free on the next socket, round robin). */
  send(name: string, qtype: ScanQtype): void {
    // Batched, BURST queries in a row share a socket, so that a turn's queries leave in one or two sendmmsg.
    const s = (this.o.batch ? Math.floor(this.progress.sent / BURST) : this.progress.sent) % this.sockets.length;
    const inFlight = this.pending[s]!;
    let id = this.ids[s]!;
    // Skip ids still in flight on this socket (only when it wrapped around).
    while (inFlight[id] !== undefined) id = (id + 1) & 0xffff;
    this.ids[s] = (id + 1) & 0xffff;
    const now = performance.now();
    const p: Pending = { name, qtype, sentAt: now, deadline: now + this.o.waitMs, sock: s, id, raw: [], at: [] };
    inFlight[id] = p;
    this.unanswered++;
    this.queue.push(p);
    const sock = this.sockets[s]!;
    sock.query(name, qtype, id);
    this.progress.sent++;
    // Batched: the queries of this turn go together once it yields (a microtask runs before any
    // timer or I/O callback), whatever the caller does next.
    if (sock.batched && !this.flushQueued) {
      this.flushQueued = true;
      this.firstStaged = s;
      queueMicrotask(this.flushSends);
    }
  }

  /**
   * Sends what the batched sockets staged, from the first socket staged on (the sockets take turns
   * in order, so the queries leave in send order); what the kernel did not take yet is retried in 1 ms.
   */
  private readonly flushSends = (): void => {
    let all = true;
    const n = this.sockets.length;
    for (let k = 0; k < n; k++) if (!this.sockets[(this.firstStaged + k) % n]!.flush()) all = false;
    if (all) this.flushQueued = false;
    else setTimeout(this.flushSends, 1);
  };

  /** Emits the lines of the windows closed by now (every one when `all`), in send order. */
  flush(all: boolean): void {
    const now = performance.now();
    const { queue, capture } = this;
    while (this.head < queue.length && (all || queue[this.head]!.deadline <= now)) {
      const p = queue[this.head]!;
      // libpcap hands frames over in batches that can lag the socket under load: a reply whose
      // frame has not come yet holds the line (and those after it, to keep list order) a while.
      if (!all && capture && now < p.deadline + TTL_GRACE_MS && p.keys?.some((k) => !this.ttlOf.has(k))) break;
      this.head++;
      this.pending[p.sock]![p.id] = undefined;
      if (p.raw.length === 0) this.unanswered--;
      this.emit(this.line(p));
    }
    if (this.head > 4096 && this.head * 2 > queue.length) {
      queue.splice(0, this.head);
      this.head = 0;
    }
  }

  /** A closed window's line: its replies (strays left out), each with its IP TTL from the capture if any. */
  private line(p: Pending): string {
    let replies = '';
    let n = 0;
    for (let i = 0; i < p.raw.length; i++) {
      const ms = Math.round((p.at[i]! - p.sentAt) * 100) / 100;
      const json = scanReplyJson(p.raw[i]!, p.name, ms, p.keys ? this.ipTtlOf(p.keys[i]!) : (p.ttls?.[i] ?? null));
      if (json === undefined) continue;
      replies += n++ ? `,${json}` : json;
    }
    this.progress.replies += n;
    return `{"name":${JSON.stringify(p.name)},"qtype":"${p.qtype}","injected":${n > 0},"replies":[${replies}]}\n`;
  }

  /** The IP TTL of a reply, from the capture (the frame with the same payload). */
  private ipTtlOf(key: string): number | null {
    const q = this.ttlOf.get(key);
    if (!q?.length) return null;
    const ttl = q.shift()!;
    if (!q.length) this.ttlOf.delete(key);
    return ttl;
  }

  lastDeadline(): number {
    return this.queue[this.queue.length - 1]?.deadline ?? 0;
  }

  /** Waits until every window has closed (flushing on a timer meanwhile is the caller's). */
  async drain(): Promise<void> {
    while (this.inFlight > 0) await sleep(Math.max(1, Math.min(50, this.lastDeadline() - performance.now())));
    this.flush(true);
  }

  async close(): Promise<void> {
    this.capture?.close();
    await Promise.all(this.sockets.map((s) => s.close()));
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Queries sent per event-loop turn at most: between turns the replies that came are read. */
const BURST = 64;

/**
 * The send schedule: by `elapsed * rate` queries may have gone. A stall (GC, a busy machine) leaves
 * a debt that later turns pay back, BURST per turn with the replies read in between, so the rate
 * asked is the rate kept on average; only a debt over one second's worth (the machine suspended)
 * is forgiven, so that a resumed machine does not send a whole stall's queries at once.
 */
export class Pacer {
  private started = performance.now();
  private sent = 0;
  constructor(private readonly rate: number) {}

  /** How many queries may go now (Infinity without a rate). */
  allowance(): number {
    if (this.rate <= 0) return Infinity;
    let allowed = Math.floor(((performance.now() - this.started) * this.rate) / 1000) + 1 - this.sent;
    const most = Math.max(1, Math.ceil(this.rate));
    if (allowed > most) {
      this.started += ((allowed - most) * 1000) / this.rate;
      allowed = most;
    }
    return allowed;
  }

  /** After the replies that came are read: how many may go this turn (waiting while none may). */
  async turn(run: ScanRun): Promise<number> {
    await tick();
    for (;;) {
      const open = run.outstanding > 0 ? run.outstanding - run.unanswered : Infinity;
      const allowed = Math.min(this.allowance(), BURST, run.inFlightMax - run.inFlight, open);
      if (allowed > 0) return allowed;
      await sleep(1);
    }
  }

  took(): void {
    this.sent++;
  }
}

/** A batch for a sending thread: its (name, qtype) pairs as two arrays. */
export interface ScanBatch {
  names: string[];
  qtypes: ScanQtype[];
}
/** A sending thread's answer: the lines of its oldest batch (in send order) and its counts since the last. */
export interface ScanBatchLines {
  /** The lines as UTF-8. */
  lines: Uint8Array;
  n: number;
  sent: number;
  replies: number;
  late: number;
}
