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
import { inShard, type DnsScanLine, type DnsScanReply } from '../analysis/index.js';
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
  replies: Array<{ reply: DnsScanReply; key: string | null }>;
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

export async function runDnsScan(o: DnsScanOptions): Promise<DnsScanResult> {
  const t0 = performance.now();
  let skip = 0;
  let last: { name: string; qtype: string } | null = null;
  if (existsSync(o.out)) {
    if (!o.resume) throw new DnsScanError(`${o.out} exists; pass --resume to continue that scan, or remove it`, 'SCAN_OUT_EXISTS');
    ({ done: skip, last } = resumePoint(o.out));
  }
  let fd: number;
  try {
    fd = openSync(o.out, 'a');
  } catch (e) {
    throw new DnsScanError(`cannot write ${o.out}: ${(e as Error).message}`, 'SCAN_OUT_UNWRITABLE');
  }

  // Reply IP TTLs come from a capture of the target's replies (a socket cannot read them in Node).
  let capture: Capture | null = null;
  const ttlOf = new Map<string, number[]>();
  let ipTtl: DnsScanResult['ipTtl'] = { available: false, reason: 'not asked (--no-ip-ttl)' };
  if (o.ipTtl !== false) {
    const can = captureAvailable();
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
            // Bounded: replies the socket never claimed (late ones) must not pile up.
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
    if (o.ipTtl === true && !ipTtl.available) {
      closeSync(fd);
      throw new Error(`--ip-ttl: ${ipTtl.reason}`);
    }
  }

  const inFlightMax = o.rate > 0 ? Math.max(256, Math.ceil((o.rate * o.waitMs) / 1000) + 256) : 50_000;
  // At least 8: each source port has its own receive queue, so a burst of replies spreads over them.
  const nSockets = Math.min(MAX_SOCKETS, Math.max(8, Math.ceil(inFlightMax / MAX_PER_SOCKET)));
  const pending: Array<Map<number, Pending>> = [];
  const sockets: dgram.Socket[] = [];
  const progress: DnsScanProgress = { sent: 0, written: 0, skipped: 0, replies: 0, late: 0 };
  const ids: number[] = [];
  for (let s = 0; s < nSockets; s++) {
    const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    const map = new Map<number, Pending>();
    pending.push(map);
    sockets.push(sock);
    ids.push(Math.floor(Math.random() * 0x10000));
    sock.on('error', () => undefined);
    sock.on('message', (msg, rinfo) => {
      const at = performance.now();
      if (msg.length < 12 || rinfo.port !== o.port || rinfo.address !== o.host) return; // (connected: only the target)
      const p = map.get(msg.readUInt16BE(0));
      if (!p) {
        progress.late++;
        return;
      }
      let d: dnsPacket.DecodedPacket;
      try {
        d = dnsPacket.decode(msg) as dnsPacket.DecodedPacket;
      } catch {
        d = { id: msg.readUInt16BE(0), flags: msg.readUInt16BE(2), questions: [], answers: [] } as unknown as dnsPacket.DecodedPacket;
      }
      const q = d.questions?.[0];
      if (q && q.name.toLowerCase() !== p.name) return; // a stray reply reusing the id
      const flags = msg.readUInt16BE(2);
      progress.replies++;
      p.replies.push({
        reply: {
          ms: Math.round((at - p.sentAt) * 100) / 100,
          ip_ttl: null,
          rcode: (d as { rcode?: string }).rcode ?? String(flags & 0xf),
          flags,
          answers: decodeAnswers(d),
        },
        key: capture ? msg.toString('latin1') : null,
      });
    });
    // Connected: the kernel drops datagrams from anyone but the target, and send() skips the
    // per-packet address lookup dgram does otherwise (a fifth of the sending cost).
    await new Promise<void>((res, rej) => {
      sock.once('error', rej);
      sock.connect(o.port, o.host, () => {
        sock.off('error', rej);
        res();
      });
    });
  }

  // The queue of sent queries, in send order (deadlines grow with it).
  const queue: Pending[] = [];
  let head = 0;
  let lastSync = performance.now();
  const flush = (all: boolean) => {
    const now = performance.now();
    let text = '';
    while (head < queue.length && (all || queue[head]!.deadline <= now)) {
      const p = queue[head]!;
      // libpcap hands frames over in batches that can lag the socket under load: a reply whose
      // frame has not come yet holds the line (and those after it, to keep list order) a while.
      if (!all && capture && now < p.deadline + TTL_GRACE_MS && p.replies.some((r) => r.key !== null && !ttlOf.has(r.key))) break;
      head++;
      pending[p.sock]!.delete(p.id);
      const replies = p.replies.map(({ reply, key }) => {
        if (key !== null) {
          const q = ttlOf.get(key);
          if (q?.length) {
            reply.ip_ttl = q.shift()!;
            if (!q.length) ttlOf.delete(key);
          }
        }
        return reply;
      });
      const line: DnsScanLine = { name: p.name, qtype: p.qtype, injected: replies.length > 0, replies };
      text += `${JSON.stringify(line)}\n`;
      progress.written++;
    }
    if (head > 4096 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
    if (text) {
      writeSync(fd, text);
      o.onProgress?.(progress);
    }
    if (now - lastSync >= SYNC_EVERY_MS || all) {
      fdatasyncSync(fd);
      lastSync = now;
    }
  };
  const ticker = setInterval(() => flush(false), 5);

  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  const tick = () => new Promise<void>((r) => setImmediate(r));
  let k = 0; // index of the (name, qtype) pair in this shard
  let rr = 0;
  let started = performance.now();
  let sentThisRun = 0;
  try {
    for await (const raw of o.names) {
      const name = raw.toLowerCase().replace(/\.$/, '');
      if (!inShard(name, o.shard.i, o.shard.n)) continue;
      for (const qtype of o.qtypes) {
        if (k < skip) {
          if (k === skip - 1 && last && (last.name !== name || last.qtype !== qtype))
            throw new DnsScanError(
              `${o.out}: its line ${skip} is ${last.name} ${last.qtype}, but this list and shard give ${name} ${qtype} there; not the same scan`,
              'SCAN_RESUME_MISMATCH',
            );
          k++;
          progress.skipped++;
          continue;
        }
        k++;
        // Rate: never ahead of rate * elapsed; and never more than inFlightMax unanswered windows.
        for (;;) {
          const inFlight = queue.length - head;
          let allowed = o.rate > 0 ? Math.floor(((performance.now() - started) * o.rate) / 1000) + 1 - sentThisRun : Infinity;
          // After a stall (GC, a busy machine) catch up by at most 50 ms worth: a burst of a
          // second's queries would overflow the receive queues of the target and of our sockets.
          if (o.rate > 0 && allowed > o.rate / 20 + 1) {
            started += ((allowed - Math.ceil(o.rate / 20)) * 1000) / o.rate;
            allowed = Math.ceil(o.rate / 20);
          }
          if (allowed > 0 && inFlight < inFlightMax) break;
          await (allowed > 0 ? tick() : sleep(1));
        }
        const s = rr++ % nSockets;
        let id = ids[s]!;
        // Skip ids still in flight on this socket (only when it wrapped around).
        while (pending[s]!.has(id)) id = (id + 1) & 0xffff;
        ids[s] = (id + 1) & 0xffff;
        const now = performance.now();
        const p: Pending = { name, qtype, sentAt: now, deadline: now + o.waitMs, sock: s, id, replies: [] };
        pending[s]!.set(id, p);
        queue.push(p);
        sockets[s]!.send(encodeQuery(name, qtype, id));
        sentThisRun++;
        progress.sent++;
        if (sentThisRun % 64 === 0) await tick();
      }
    }
    if (k < skip)
      throw new DnsScanError(
        `${o.out} holds ${skip} lines but this list and shard give only ${k}: not the same scan`,
        'SCAN_RESUME_MISMATCH',
      );
    // Every window closes, then the last lines go out.
    while (head < queue.length) await sleep(Math.max(1, Math.min(50, queue[queue.length - 1]!.deadline - performance.now())));
    flush(true);
  } finally {
    clearInterval(ticker);
    // On an error, queries whose window is still open are not written: a resume asks them again.
    try {
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
      capture?.close();
      await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    }
  }
  return { ...progress, ipTtl, elapsedMs: performance.now() - t0 };
}
