// `scan dns`: a GFWatch-style injection scan (censors.md section 1; DESIGN.md "Contracts of the
// next capabilities"). Queries for a streamed list of names go at a controlled rate to an address
// that runs no resolver, so every reply is injected; each reply is kept (time, IP TTL, rcode,
// flags, answers) as one JSONL line per (name, query type), written in list order.
// Robustness: lines are appended in the order the queries were sent (each query's window closes
// in send order), and the file is fdatasync'd every second, so after a kill -9 the file is a
// prefix of the run plus at most one partial line: `--resume` truncates that line, counts the
// complete ones and skips exactly that many (name, qtype) pairs of the same list and shard.
import { Worker } from 'node:worker_threads';
import { closeSync, existsSync, fdatasync, fdatasyncSync, ftruncateSync, openSync, readSync, fstatSync, writeSync } from 'node:fs';
import { inShard } from '../analysis/index.js';
import { captureAvailable, openCapture, routeTo, type Capture } from './capture.js';
import {
  inFlightBound,
  Pacer,
  ScanRun,
  type DnsScanProgress,
  type ScanBatch,
  type ScanBatchLines,
  type ScanEngineOptions,
  type ScanQtype,
} from './scan-dns-engine.js';
import { loadUdpBatch } from './scan-dns-io.js';
import { boundYoungGenerations, youngGenerationsBounded } from './heap.js';

export { SCAN_QTYPES, type DnsScanProgress, type ScanQtype } from './scan-dns-engine.js';

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
  /** At most this many queries waiting for a first reply (dnsperf's -q; default 0: no bound). */
  outstanding?: number;
  /** Sending threads (default 1); 1 when reply IP TTLs are captured (dgram only). */
  threads?: number;
  /**
   * The sockets: 'auto' (default) the udp-batch addon (sendmmsg/recvmmsg, reply IP TTLs read from
   * the socket) when it loads, else Node's dgram (IP TTLs from a packet capture); 'sendmmsg' fails
   * when the addon does not load; 'dgram' never uses it.
   */
  io?: 'auto' | 'sendmmsg' | 'dgram';
  /** Called after each batch of lines is written. */
  onProgress?: (p: DnsScanProgress) => void;
}

export interface DnsScanResult extends DnsScanProgress {
  /** Whether replies carry their IP TTL, and why not when they do not. */
  ipTtl: { available: boolean; reason?: string };
  /** Which sockets sent and read, and why (the addon's load error when it fell back to dgram). */
  io: { path: 'sendmmsg' | 'dgram'; reason: string };
  elapsedMs: number;
}

export class DnsScanError extends Error {
  constructor(
    message: string,
    readonly code: 'SCAN_OUT_EXISTS' | 'SCAN_RESUME_MISMATCH' | 'SCAN_OUT_UNWRITABLE' | 'SCAN_IO_UNAVAILABLE',
  ) {
    super(message);
    this.name = 'DnsScanError';
  }
}

const SYNC_EVERY_MS = 1000;
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

/** The scan's sockets: the udp-batch addon unless asked not to or it does not load (see DnsScanOptions.io). */
export function scanIo(asked: DnsScanOptions['io']): DnsScanResult['io'] {
  if (asked === 'dgram') return { path: 'dgram', reason: 'asked (--io dgram)' };
  const { UdpBatch, reason } = loadUdpBatch();
  if (UdpBatch) return { path: 'sendmmsg', reason };
  if (asked === 'sendmmsg') throw new DnsScanError(`--io sendmmsg: ${reason}`, 'SCAN_IO_UNAVAILABLE');
  return { path: 'dgram', reason };
}

/**
 * Reply IP TTLs: on the udp-batch addon each socket reads its replies' (IP_RECVTTL), so no capture
 * is opened; on dgram they come from a capture of the target's replies (a socket cannot read them in Node):
 * the capture's TTLs by reply payload, bounded (replies the socket never claimed must not pile up).
 */
async function openTtlCapture(
  o: DnsScanOptions,
  ttlOf: Map<string, number[]>,
  batch: boolean,
): Promise<{ capture: Capture | null; ipTtl: DnsScanResult['ipTtl'] }> {
  if (o.ipTtl === false) return { capture: null, ipTtl: { available: false, reason: 'not asked (--no-ip-ttl)' } };
  if (batch) return { capture: null, ipTtl: { available: true } };
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

/** Lines are buffered and written in chunks of this size (or at each sync), in send order. */
const WRITE_CHUNK = 256 << 10;

/**
 * The out file's writer: lines copied into one buffer as they come (no string join), written when
 * it is full or a second has passed, then fdatasync'd off the event loop (a sync under a busy disk
 * would stall sending). Writes are appends in line order, so the file is a prefix of the scan at
 * any kill; the last sync (`pump(true)`) is synchronous.
 */
class FileSink {
  private readonly buf = Buffer.allocUnsafe(WRITE_CHUNK);
  private used = 0;
  private lastSync = performance.now();
  private syncing = false;

  constructor(
    private readonly fd: number,
    readonly progress: DnsScanProgress,
    private readonly onProgress: ((p: DnsScanProgress) => void) | undefined,
  ) {}

  /** Appends lines already encoded (a sending thread's batch). */
  addBytes(bytes: Uint8Array, lines: number): void {
    if (this.used + bytes.length > this.buf.length) {
      this.writeOut();
      if (bytes.length > this.buf.length) writeSync(this.fd, bytes);
    }
    if (bytes.length <= this.buf.length) {
      this.buf.set(bytes, this.used);
      this.used += bytes.length;
    }
    this.progress.written += lines;
  }

  add(text: string, lines: number): void {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    if (this.used + text.length * 3 > this.buf.length) {
      this.writeOut();
      if (text.length * 3 > this.buf.length) writeSync(this.fd, text);
    }
    if (text.length * 3 <= this.buf.length) this.used += this.buf.write(text, this.used);
    this.progress.written += lines;
  }

  private writeOut(): void {
    if (this.used === 0) return;
    writeSync(this.fd, this.buf, 0, this.used);
    this.used = 0;
    this.onProgress?.(this.progress);
  }

  /** Writes and syncs what is buffered once a second (everything, synchronously, when `all`). */
  pump(all: boolean): void {
    const now = performance.now();
    if (all) {
      this.writeOut();
      fdatasyncSync(this.fd);
    } else if (now - this.lastSync >= SYNC_EVERY_MS) {
      this.writeOut();
      this.lastSync = now;
      if (!this.syncing) {
        this.syncing = true;
        fdatasync(this.fd, () => (this.syncing = false));
      }
    }
  }
}

/** The (name, qtype) pairs of the shard past the resume point, in list order; checks the resume point. */
class ShardCursor {
  k = 0; // index of the (name, qtype) pair in this shard
  constructor(
    private readonly o: DnsScanOptions,
    private readonly progress: DnsScanProgress,
    private readonly skip: number,
    private readonly last: { name: string; qtype: string } | null,
  ) {}

  /** Calls `each` with the pairs of one list name that are to be sent (none outside the shard or before the resume point). */
  pairs(raw: string, each: (name: string, qtype: ScanQtype) => void): void {
    const name = (raw.endsWith('.') ? raw.slice(0, -1) : raw).toLowerCase();
    if (!inShard(name, this.o.shard.i, this.o.shard.n)) return;
    if (this.k >= this.skip)
      for (const qtype of this.o.qtypes) {
        this.k++;
        each(name, qtype);
      }
    else for (const qtype of this.o.qtypes) if (!this.before(name, qtype)) each(name, qtype);
  }

  private before(name: string, qtype: ScanQtype): boolean {
    if (this.k++ >= this.skip) return false;
    if (this.k === this.skip && this.last && (this.last.name !== name || this.last.qtype !== qtype))
      throw new DnsScanError(
        `${this.o.out}: its line ${this.skip} is ${this.last.name} ${this.last.qtype}, but this list and shard give ${name} ${qtype} there; not the same scan`,
        'SCAN_RESUME_MISMATCH',
      );
    this.progress.skipped++;
    return true;
  }

  end(): number {
    if (this.k < this.skip)
      throw new DnsScanError(
        `${this.o.out} holds ${this.skip} lines but this list and shard give only ${this.k}: not the same scan`,
        'SCAN_RESUME_MISMATCH',
      );
    return this.k;
  }
}

/** Every list name, walked synchronously when the list is (`for await` costs a promise per name). */
async function forEachName(names: DnsScanOptions['names'], each: (raw: string) => Promise<void> | void): Promise<void> {
  if (Symbol.iterator in names)
    for (const raw of names) {
      const w = each(raw);
      if (w) await w;
    }
  else for await (const raw of names) await each(raw);
}

/**
 * One thread sends, reads and writes (the capture of reply TTLs needs its lines built beside it):
 * never ahead of the Pacer's schedule, never more than inFlightMax windows open.
 */
async function scanInThread(o: DnsScanOptions, cursor: ShardCursor, sink: FileSink, capture: Capture | null, ttlOf: Map<string, number[]>) {
  const run = new ScanRun(o, (line) => sink.add(line, 1), sink.progress);
  run.capture = capture;
  run.ttlOf = ttlOf;
  const ticker = setInterval(() => {
    run.flush(false);
    sink.pump(false);
  }, 5);
  try {
    await run.openSockets();
    const pacer = new Pacer(o.rate);
    let budget = 0; // a name's query types all go in its turn
    const sendPair = (name: string, qtype: ScanQtype): void => {
      run.send(name, qtype);
      pacer.took();
      budget--;
    };
    const sendName = (raw: string): void => cursor.pairs(raw, sendPair);
    await forEachName(o.names, (raw) => {
      if (budget > 0) return sendName(raw);
      return pacer.turn(run).then((b) => {
        budget = b;
        sendName(raw);
      });
    });
    await run.drain();
  } finally {
    clearInterval(ticker);
    // On an error, queries whose window is still open are not written: a resume asks them again.
    await run.close();
  }
}

/** Pairs per batch handed to a sending thread. */
const BATCH = 256;

/**
 * A sending thread's old generation, by what it keeps: its windows (a query with its replies takes
 * under 1 KiB) past a base for code and buffers. Why a bound: the windows' objects outlive two
 * scavenges, so V8 promotes them and lets the old generation grow to a few times what is live
 * before it collects; the peak then grew with the run's length (174 MB at 100k names, 238 at 10M).
 * Bounded, the thread collects sooner and its peak no longer depends on the list size.
 */
export function oldGenerationMb(engine: ScanEngineOptions): number {
  return 48 + Math.ceil(inFlightBound(engine.rate, engine.waitMs) / 1024);
}

/** The sending threads, and the lines they return put back in list order. */
class SenderPool {
  private readonly workers: Worker[] = [];
  /** Per thread, the batches it owes lines for, oldest first. */
  private readonly owed: number[][] = [];
  private readonly ready = new Map<number, ScanBatchLines>();
  private nextWrite = 0;
  private nextBatch = 0;
  private done = 0;
  private failure: Error | null = null;
  private signal: () => void = () => undefined;
  readonly perThread: number;

  constructor(
    private readonly sink: FileSink,
    engine: ScanEngineOptions,
    threads: number,
  ) {
    // Enough batches owed per thread to fill its windows, and a few queued to send.
    this.perThread = Math.ceil(inFlightBound(engine.rate, engine.waitMs) / BATCH) + 4;
    const resourceLimits = { maxOldGenerationSizeMb: oldGenerationMb(engine), maxYoungGenerationSizeMb: 8 };
    for (let w = 0; w < threads; w++) {
      const worker = new Worker(new URL('./scan-dns-worker.js', import.meta.url), { workerData: { engine }, resourceLimits });
      this.owed.push([]);
      worker.on('message', (m: ScanBatchLines | { done: true }) => this.onMessage(w, m));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`scan dns: a sending thread exited with code ${code}`));
      });
      this.workers.push(worker);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.signal();
  }

  /** Called when the first lines come back. */
  onFirstLines: (() => void) | null = null;

  private onMessage(w: number, m: ScanBatchLines | { done: true }): void {
    if ('done' in m) this.done++;
    else {
      this.onFirstLines?.();
      this.onFirstLines = null;
      this.ready.set(this.owed[w]!.shift()!, m);
      const p = this.sink.progress;
      p.sent += m.sent;
      p.replies += m.replies;
      p.late += m.late;
      // Written in batch order, which is list order: the file stays a prefix of the scan.
      for (let r = this.ready.get(this.nextWrite); r; r = this.ready.get(this.nextWrite)) {
        this.sink.addBytes(r.lines, r.n);
        this.ready.delete(this.nextWrite++);
      }
    }
    this.signal();
  }

  private async changed(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((r) => (this.signal = r));
    if (this.failure) throw this.failure;
  }

  /** Hands a batch to the next thread in turn, once that thread owes few enough. */
  async dispatch(batch: ScanBatch): Promise<void> {
    const w = this.nextBatch % this.workers.length;
    while (this.owed[w]!.length >= this.perThread) await this.changed();
    if (this.failure) throw this.failure;
    this.workers[w]!.postMessage(batch);
    this.owed[w]!.push(this.nextBatch++);
  }

  /** After the last batch: every thread closes its windows and returns its last lines. */
  async finish(): Promise<void> {
    for (const w of this.workers) w.postMessage({ end: true });
    while (this.done < this.workers.length) await this.changed();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * Several threads send, each its share of the batches at its share of the rate, and read their
 * replies; this one reads the list and writes their lines in list order. Why threads: on dgram one
 * send system call per datagram is most of the cost (the udp-batch addon's sendmmsg takes a turn's
 * queries in one), and dnsperf too sends and reads on threads of its own; on a machine shared with
 * other work each thread gets its own share.
 */
async function scanInThreads(o: ScanEngineOptions & DnsScanOptions, cursor: ShardCursor, sink: FileSink, threads: number): Promise<void> {
  const outstanding = o.outstanding ? Math.max(1, Math.floor(o.outstanding / threads)) : 0;
  const { host, port, waitMs, batch, socketTtl } = o;
  const pool = new SenderPool(sink, { host, port, waitMs, rate: o.rate / threads, outstanding, batch, socketTtl }, threads);
  const ticker = setInterval(() => sink.pump(false), 20);
  try {
    // Again once the threads have sent and read a first batch (starting them undid it): by then
    // their own young generations have grown to their resourceLimits bound (8 MB), as they should:
    // held at their initial 1 MB, scavenges took over half of a sending thread's CPU.
    if (youngGenerationsBounded()) pool.onFirstLines = boundYoungGenerations;
    let batch: ScanBatch = { names: [], qtypes: [] };
    const add = (name: string, qtype: ScanQtype): void => {
      batch.names.push(name);
      batch.qtypes.push(qtype);
    };
    await forEachName(o.names, (raw) => {
      cursor.pairs(raw, add);
      if (batch.names.length < BATCH) return;
      const full = batch;
      batch = { names: [], qtypes: [] };
      return pool.dispatch(full);
    });
    if (batch.names.length) await pool.dispatch(batch);
    await pool.finish();
  } finally {
    clearInterval(ticker);
    // On an error, batches not returned are not written: a resume asks them again.
    await pool.close();
  }
}

// The young-generation bound (heap.ts): the CLI sets it first thing. Why here: the young generation
// of this thread (it reads the list and writes the lines) went from 16 to 32 MB some 10-18 s into a
// 1M-name scan, and the peak RSS with it: 138 MB at 100k names, 157-175 MB at 1M.
export { boundYoungGenerations };

export async function runDnsScan(o: DnsScanOptions): Promise<DnsScanResult> {
  const t0 = performance.now();
  const io = scanIo(o.io); // before the out file: an --io that cannot be had writes nothing
  const batch = io.path === 'sendmmsg';
  const { fd, skip, last } = openOut(o);
  const sink = new FileSink(fd, { sent: 0, written: 0, skipped: 0, replies: 0, late: 0 }, o.onProgress);
  const cursor = new ShardCursor(o, sink.progress, skip, last);
  const ttlOf = new Map<string, number[]>();
  let ipTtl: DnsScanResult['ipTtl'];
  let capture: Capture | null;
  try {
    ({ capture, ipTtl } = await openTtlCapture(o, ttlOf, batch));
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  try {
    // The capture's TTLs are matched to lines in this thread: with a capture, this thread does all.
    // Without, sending threads with a bounded heap send and read, and this one reads and writes.
    const threads = Math.max(1, o.threads ?? 1);
    if (capture) await scanInThread(o, cursor, sink, capture, ttlOf);
    else await scanInThreads({ ...o, batch, socketTtl: batch && ipTtl.available }, cursor, sink, threads);
    cursor.end();
    sink.pump(true);
  } finally {
    try {
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  return { ...sink.progress, ipTtl, io, elapsedMs: performance.now() - t0 };
}
