// `scan dns`: a GFWatch-style injection scan (censors.md section 1; DESIGN.md "Contracts of the
// next capabilities"). Queries for a streamed list of names go at a controlled rate to an address
// that runs no resolver, so every reply is injected; each reply is kept (time, IP TTL, rcode,
// flags, answers) as one JSONL line per (name, query type), written in list order.
// Robustness: lines are appended in the order the queries were sent (each query's window closes
// in send order), and the file is fdatasync'd every second, so after a kill -9 the file is a
// prefix of the run plus at most one partial line: `--resume` truncates that line, counts the
// complete ones and skips exactly that many (name, qtype) pairs of the same list and shard.
import dgram from 'node:dgram';
import { closeSync, existsSync, fdatasyncSync, ftruncateSync, openSync, readSync, fstatSync, writeSync } from 'node:fs';
import dnsPacket from 'dns-packet';
import { inShard, type DnsScanReply } from '../analysis/index.js';
import { captureAvailable, openCapture, routeTo, type Capture } from './capture.js';
import { encodeQuery } from './dns.js';

/** Query types a scan may ask (blackbox.c answers A to all but AAAA: the others reveal it). */
export const SCAN_QTYPES = ['A', 'AAAA', 'MX', 'TXT', 'NS', 'CNAME', 'SOA', 'SRV', 'PTR', 'CAA'] as const;
export type ScanQtype = (typeof SCAN_QTYPES)[number];

export interface DnsScanOptions {
  host: string;
  port: number;
  /** Names in list order, already checked (a bad line is the caller's file:line error). */
  names: AsyncIterable<string> | Iterable<string>;
  qtypes: ScanQtype[];
  /** Queries per second (0: as fast as the in-flight bound allows). */
  rate: number;
  /** How long each query's replies are collected. */
  waitMs: number;
  shard: { i: number; n: number };
  out: string;
  resume: boolean;
  /** Read each reply's IP TTL from a packet capture: 'auto' = when root and libpcap allow it. */
  ipTtl: boolean | 'auto';
  /** Called after each batch of lines is written. */
  onProgress?: (p: DnsScanProgress) => void;
}

export interface DnsScanProgress {
  sent: number;
  written: number;
  skipped: number;
  replies: number;
  late: number;
}

export interface DnsScanResult extends DnsScanProgress {
  /** Whether replies carry their IP TTL, and why not when they do not. */
  ipTtl: { available: boolean; reason?: string };
  elapsedMs: number;
}

export class DnsScanError extends Error {
  constructor(
    message: string,
    readonly code: 'SCAN_OUT_EXISTS' | 'SCAN_RESUME_MISMATCH' | 'SCAN_OUT_UNWRITABLE',
  ) {
    super(message);
    this.name = 'DnsScanError';
  }
}

interface Pending {
  name: string;
  qtype: ScanQtype;
  sentAt: number;
  deadline: number;
  sock: number;
  id: number;
  replies: DnsScanReply[];
  /** With a capture: each reply's payload, to find its IP TTL among the captured frames. */
  keys?: string[];
}

const MAX_PER_SOCKET = 30_000; // in flight per source port: DNS ids are 16 bits
const MAX_SOCKETS = 64;
const SYNC_EVERY_MS = 1000;
const TTL_GRACE_MS = 1000;
/**
 * The capture ring. The `cap` addon fixes the snap length at 65,535 and libpcap sizes each ring
 * slot by it (by the MTU on lo, 64 KiB), so 8 MiB holds ~128 frames and a burst of replies while
 * Node is busy overflows it; 128 MiB holds ~2,000 on lo and ~80,000 on a 1500-byte-MTU device.
 */
const CAPTURE_RING_BYTES = 128 << 20;

/** Reads the complete lines of an existing out file: their count and the last one; cuts a partial tail. */
function resumePoint(out: string): { done: number; last: { name: string; qtype: string } | null } {
  const fd = openSync(out, 'r+');
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(1 << 20);
    let pos = 0;
    let lines = 0;
    let lastNl = -1;
    let prevNl = -1;
    while (pos < size) {
      const got = readSync(fd, buf, 0, buf.length, pos);
      if (got <= 0) break;
      for (let i = buf.indexOf(0x0a, 0); i >= 0 && i < got; i = buf.indexOf(0x0a, i + 1)) {
        lines++;
        prevNl = lastNl;
        lastNl = pos + i;
      }
      pos += got;
    }
    // Robustness: a line cut by the kill is dropped; its name is asked again.
    if (lastNl + 1 !== size) ftruncateSync(fd, lastNl + 1);
    if (lines === 0) return { done: 0, last: null };
    const len = lastNl - (prevNl + 1);
    const lb = Buffer.alloc(len);
    readSync(fd, lb, 0, len, prevNl + 1);
    let last: { name: string; qtype: string };
    try {
      last = JSON.parse(lb.toString('utf8')) as { name: string; qtype: string };
    } catch {
      throw new DnsScanError(`${out}: line ${lines} is not a scan line; not resuming into it`, 'SCAN_RESUME_MISMATCH');
    }
    return { done: lines, last };
  } finally {
    closeSync(fd);
  }
}

function decodeAnswers(p: dnsPacket.DecodedPacket): DnsScanReply['answers'] {
  return (p.answers ?? []).map((a) => {
    const d = (a as { data?: unknown }).data;
    const data = typeof d === 'string' ? d : Buffer.isBuffer(d) ? d.toString('hex') : JSON.stringify(d ?? null);
    return { type: a.type, data, ttl: (a as { ttl?: number }).ttl ?? 0 };
  });
}

/** The out file opened for appending, after the resume point of an existing one (or a refusal). */
function openOut(o: DnsScanOptions): { fd: number; skip: number; last: { name: string; qtype: string } | null } {
  let skip = 0;
  let last: { name: string; qtype: string } | null = null;
  if (existsSync(o.out)) {
    if (!o.resume) throw new DnsScanError(`${o.out} exists; pass --resume to continue that scan, or remove it`, 'SCAN_OUT_EXISTS');
    ({ done: skip, last } = resumePoint(o.out));
  }
  try {
    return { fd: openSync(o.out, 'a'), skip, last };
  } catch (e) {
    throw new DnsScanError(`cannot write ${o.out}: ${(e as Error).message}`, 'SCAN_OUT_UNWRITABLE');
  }
}

/**
 * Reply IP TTLs come from a capture of the target's replies (a socket cannot read them in Node):
 * the capture's TTLs by reply payload, bounded (replies the socket never claimed must not pile up).
 */
async function openTtlCapture(
  o: DnsScanOptions,
  ttlOf: Map<string, number[]>,
): Promise<{ capture: Capture | null; ipTtl: DnsScanResult['ipTtl'] }> {
  if (o.ipTtl === false) return { capture: null, ipTtl: { available: false, reason: 'not asked (--no-ip-ttl)' } };
  const can = captureAvailable();
  let capture: Capture | null = null;
  let ipTtl: DnsScanResult['ipTtl'];
  if (!can.ok) ipTtl = { available: false, reason: can.reason };
  else {
    try {
      const dev = (await routeTo(o.host)).dev;
      capture = openCapture(
        dev,
        `udp and src host ${o.host} and src port ${o.port}`,
        (f) => {
          const payload = f.packet.udp?.payload;
          if (!payload) return;
          const key = payload.toString('latin1');
          const q = ttlOf.get(key);
          if (q) q.push(f.packet.ip.ttl);
          else ttlOf.set(key, [f.packet.ip.ttl]);
          if (ttlOf.size > 200_000)
            for (const k of ttlOf.keys()) {
              ttlOf.delete(k);
              if (ttlOf.size <= 150_000) break;
            }
        },
        { bufferBytes: CAPTURE_RING_BYTES },
      );
      ipTtl = { available: true };
    } catch (e) {
      ipTtl = { available: false, reason: (e as Error).message };
    }
  }
  if (o.ipTtl === true && !ipTtl.available) throw new Error(`--ip-ttl: ${ipTtl.reason}`);
  return { capture, ipTtl };
}

/** One reply as a scan line keeps it; null for a stray datagram (too short, or another name's). */
function replyOf(msg: Buffer, p: Pending, at: number): DnsScanReply | null {
  let d: dnsPacket.DecodedPacket;
  try {
    d = dnsPacket.decode(msg) as dnsPacket.DecodedPacket;
  } catch {
    d = { id: msg.readUInt16BE(0), flags: msg.readUInt16BE(2), questions: [], answers: [] } as unknown as dnsPacket.DecodedPacket;
  }
  const q = d.questions?.[0];
  if (q && q.name.toLowerCase() !== p.name) return null; // a stray reply reusing the id
  const flags = msg.readUInt16BE(2);
  return {
    ms: Math.round((at - p.sentAt) * 100) / 100,
    ip_ttl: null,
    rcode: (d as { rcode?: string }).rcode ?? String(flags & 0xf),
    flags,
    answers: decodeAnswers(d),
  };
}

/** Lines are buffered and written in chunks of this size (or at each sync), in send order. */
const WRITE_CHUNK = 256 << 10;

/** One scan's state: the sockets, the queries in flight (in send order) and the out file. */
class ScanRun {
  readonly progress: DnsScanProgress = { sent: 0, written: 0, skipped: 0, replies: 0, late: 0 };
  readonly ttlOf = new Map<string, number[]>();
  capture: Capture | null = null;
  private readonly pending: Array<Map<number, Pending>> = [];
  private readonly sockets: dgram.Socket[] = [];
  private readonly ids: number[] = [];
  private readonly queue: Pending[] = [];
  private head = 0;
  private lastSync = performance.now();
  private text: string[] = [];
  private textBytes = 0;
  readonly inFlightMax: number;

  constructor(
    private readonly o: DnsScanOptions,
    private readonly fd: number,
  ) {
    this.inFlightMax = o.rate > 0 ? Math.max(256, Math.ceil((o.rate * o.waitMs) / 1000) + 256) : 50_000;
  }

  get inFlight(): number {
    return this.queue.length - this.head;
  }

  /** At least 8 connected sockets: each source port has its own receive queue, so a burst of replies spreads over them. */
  async openSockets(): Promise<void> {
    const n = Math.min(MAX_SOCKETS, Math.max(8, Math.ceil(this.inFlightMax / MAX_PER_SOCKET)));
    for (let s = 0; s < n; s++) {
      const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      const map = new Map<number, Pending>();
      this.pending.push(map);
      this.sockets.push(sock);
      this.ids.push(Math.floor(Math.random() * 0x10000));
      sock.on('error', () => undefined);
      sock.on('message', (msg, rinfo) => this.onMessage(map, msg, rinfo));
      // Connected: the kernel drops datagrams from anyone but the target, and send() skips the
      // per-packet address lookup dgram does otherwise (a fifth of the sending cost).
      await new Promise<void>((res, rej) => {
        sock.once('error', rej);
        sock.connect(this.o.port, this.o.host, () => {
          sock.off('error', rej);
          res();
        });
      });
    }
  }

  private onMessage(map: Map<number, Pending>, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const at = performance.now();
    if (msg.length < 12 || rinfo.port !== this.o.port || rinfo.address !== this.o.host) return; // (connected: only the target)
    const p = map.get(msg.readUInt16BE(0));
    if (!p) {
      this.progress.late++;
      return;
    }
    const reply = replyOf(msg, p, at);
    if (!reply) return;
    this.progress.replies++;
    p.replies.push(reply);
    if (this.capture) (p.keys ??= []).push(msg.toString('latin1'));
  }

  /** Sends one query (the next id free on the next socket, round robin). */
  send(name: string, qtype: ScanQtype): void {
    const s = this.progress.sent % this.sockets.length;
    const inFlight = this.pending[s]!;
    let id = this.ids[s]!;
    // Skip ids still in flight on this socket (only when it wrapped around).
    while (inFlight.has(id)) id = (id + 1) & 0xffff;
    this.ids[s] = (id + 1) & 0xffff;
    const now = performance.now();
    const p: Pending = { name, qtype, sentAt: now, deadline: now + this.o.waitMs, sock: s, id, replies: [] };
    inFlight.set(id, p);
    this.queue.push(p);
    this.sockets[s]!.send(encodeQuery(name, qtype, id));
    this.progress.sent++;
  }

  /** The lines of the windows closed by now (every one when `all`), in send order; written in big chunks. */
  flush(all: boolean): void {
    const now = performance.now();
    const { queue, capture } = this;
    let lines = 0;
    while (this.head < queue.length && (all || queue[this.head]!.deadline <= now)) {
      const p = queue[this.head]!;
      // libpcap hands frames over in batches that can lag the socket under load: a reply whose
      // frame has not come yet holds the line (and those after it, to keep list order) a while.
      if (!all && capture && now < p.deadline + TTL_GRACE_MS && p.keys?.some((k) => !this.ttlOf.has(k))) break;
      this.head++;
      this.pending[p.sock]!.delete(p.id);
      if (p.keys) this.takeTtls(p);
      const line = `{"name":${JSON.stringify(p.name)},"qtype":"${p.qtype}","injected":${p.replies.length > 0},"replies":${JSON.stringify(p.replies)}}\n`;
      this.text.push(line);
      this.textBytes += line.length;
      lines++;
    }
    this.progress.written += lines;
    if (this.head > 4096 && this.head * 2 > queue.length) {
      queue.splice(0, this.head);
      this.head = 0;
    }
    const sync = all || now - this.lastSync >= SYNC_EVERY_MS;
    if (this.textBytes >= WRITE_CHUNK || (sync && this.textBytes > 0)) {
      writeSync(this.fd, this.text.join(''));
      this.text = [];
      this.textBytes = 0;
      this.o.onProgress?.(this.progress);
    }
    if (sync) {
      fdatasyncSync(this.fd);
      this.lastSync = now;
    }
  }

  /** The IP TTL of each reply, from the capture (the frame with the same payload). */
  private takeTtls(p: Pending): void {
    p.keys!.forEach((key, i) => {
      const q = this.ttlOf.get(key);
      if (!q?.length) return;
      p.replies[i]!.ip_ttl = q.shift()!;
      if (!q.length) this.ttlOf.delete(key);
    });
  }

  lastDeadline(): number {
    return this.queue[this.queue.length - 1]?.deadline ?? 0;
  }

  async close(): Promise<void> {
    this.capture?.close();
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const tick = () => new Promise<void>((r) => setImmediate(r));

/**
 * Sends every (name, qtype) of the shard past the resume point, at the rate: never ahead of
 * rate * elapsed, never more than inFlightMax windows open. Returns the pairs counted.
 */
async function sendAll(o: DnsScanOptions, run: ScanRun, skip: number, last: { name: string; qtype: string } | null): Promise<number> {
  let k = 0; // index of the (name, qtype) pair in this shard
  let started = performance.now();
  let sentThisRun = 0;
  for await (const raw of o.names) {
    const name = raw.toLowerCase().replace(/\.$/, '');
    if (!inShard(name, o.shard.i, o.shard.n)) continue;
    for (const qtype of o.qtypes) {
      if (k++ < skip) {
        if (k === skip && last && (last.name !== name || last.qtype !== qtype))
          throw new DnsScanError(
            `${o.out}: its line ${skip} is ${last.name} ${last.qtype}, but this list and shard give ${name} ${qtype} there; not the same scan`,
            'SCAN_RESUME_MISMATCH',
          );
        run.progress.skipped++;
        continue;
      }
      for (;;) {
        let allowed = o.rate > 0 ? Math.floor(((performance.now() - started) * o.rate) / 1000) + 1 - sentThisRun : Infinity;
        // After a stall (GC, a busy machine) catch up by at most 50 ms worth: a burst of a
        // second's queries would overflow the receive queues of the target and of our sockets.
        if (o.rate > 0 && allowed > o.rate / 20 + 1) {
          started += ((allowed - Math.ceil(o.rate / 20)) * 1000) / o.rate;
          allowed = Math.ceil(o.rate / 20);
        }
        if (allowed > 0 && run.inFlight < run.inFlightMax) break;
        await (allowed > 0 ? tick() : sleep(1));
      }
      run.send(name, qtype);
      if (++sentThisRun % 64 === 0) await tick();
    }
  }
  if (k < skip)
    throw new DnsScanError(
      `${o.out} holds ${skip} lines but this list and shard give only ${k}: not the same scan`,
      'SCAN_RESUME_MISMATCH',
    );
  return k;
}

export async function runDnsScan(o: DnsScanOptions): Promise<DnsScanResult> {
  const t0 = performance.now();
  const { fd, skip, last } = openOut(o);
  const run = new ScanRun(o, fd);
  let ipTtl: DnsScanResult['ipTtl'];
  try {
    ({ capture: run.capture, ipTtl } = await openTtlCapture(o, run.ttlOf));
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  const ticker = setInterval(() => run.flush(false), 5);
  try {
    await run.openSockets();
    await sendAll(o, run, skip, last);
    // Every window closes, then the last lines go out.
    while (run.inFlight > 0) await sleep(Math.max(1, Math.min(50, run.lastDeadline() - performance.now())));
    run.flush(true);
  } finally {
    clearInterval(ticker);
    // On an error, queries whose window is still open are not written: a resume asks them again.
    try {
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
      await run.close();
    }
  }
  return { ...run.progress, ipTtl, elapsedMs: performance.now() - t0 };
}
