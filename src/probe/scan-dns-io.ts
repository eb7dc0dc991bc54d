// The sockets of `scan dns` (scan-dns-engine.ts): one connected UDP socket to the target per source
// port, in one of two ways that give the engine the same replies.
// - batch: the udp-batch addon (native/udp-batch, built by scripts/setup.sh): the queries of an
//   event-loop turn are staged back to back and leave in one sendmmsg(2); replies come in with
//   recvmmsg(2), many per wake-up, each with its IP TTL from the socket (IP_RECVTTL: no capture, no
//   root). Why: with dgram one system call and one libuv request per datagram were a quarter of the
//   scan's CPU, and the scan shares its machine (in the lab: with the lab's injectors).
// - dgram: Node's own sockets, one send per query; the fallback when the addon is not built.
import dgram from 'node:dgram';
import { join } from 'node:path';
import { repoRoot } from './paths.js';
import type { ScanQtype } from './scan-dns-engine.js';
import { encodeScanQuery, encodeScanQueryInto, MAX_SCAN_QUERY } from './scan-dns-wire.js';

/** A reply from the target: its bytes, when it came (performance.now()), its IP TTL if read. */
export type OnScanReply = (msg: Buffer, at: number, ipTtl: number | null) => void;

/** One source port's socket, as the engine uses it. */
export interface ScanSocket {
  /** Whether queries wait in a batch until flush() (else they leave at once). */
  readonly batched: boolean;
  query(name: string, qtype: ScanQtype, id: number): void;
  /** Sends the batch; false when the kernel took only part of it (the rest goes at the next flush). */
  flush(): boolean;
  close(): Promise<void>;
}

/** The addon's class (native/udp-batch/src/udp_batch.c documents it). */
export interface UdpBatchSocket {
  send(buf: Buffer, lens: Uint32Array, count: number): number;
  address(): { address: string; port: number };
  close(): void;
}
export type UdpBatchClass = new (
  host: string,
  port: number,
  onReplies: (data: Buffer, meta: Int32Array, n: number) => void,
  recvBufferSize: number,
  sendBufferSize: number,
  wantTtl: boolean,
) => UdpBatchSocket;

/** Where setup.sh builds the addon. */
export const UDP_BATCH_PATH = join(repoRoot, 'native', 'udp-batch', 'build', 'Release', 'udp_batch.node');

let loaded: { UdpBatch: UdpBatchClass | null; reason: string } | undefined;

/** The addon's class, or null and why not (not built, not Linux, a load error). Loaded once per thread. */
export function loadUdpBatch(): { UdpBatch: UdpBatchClass | null; reason: string } {
  if (loaded) return loaded;
  try {
    // process.dlopen, not require: the addon is a build output beside the sources, not a module of
    // a layer (scripts/check-layers.mjs follows imports between src/ layers).
    const m = { exports: {} as { UdpBatch?: UdpBatchClass } };
    process.dlopen(m, UDP_BATCH_PATH);
    if (typeof m.exports.UdpBatch !== 'function') throw new Error('it exports no UdpBatch');
    loaded = { UdpBatch: m.exports.UdpBatch, reason: 'native/udp-batch: sendmmsg/recvmmsg' };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ERR_DLOPEN_FAILED' && /No such file/.test(err.message) ? 'not built (bash scripts/setup.sh)' : err.message;
    loaded = { UdpBatch: null, reason: `native/udp-batch not loaded: ${why}` };
  }
  return loaded;
}

const BUFFER_BYTES = 4 << 20;

/** Node's dgram: each query is its own send. */
export async function openDgramSocket(host: string, port: number, onReply: OnScanReply): Promise<ScanSocket> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: BUFFER_BYTES, sendBufferSize: BUFFER_BYTES });
  sock.on('error', () => undefined);
  sock.on('message', (msg, rinfo) => {
    if (rinfo.port === port && rinfo.address === host) onReply(msg, performance.now(), null); // (connected: only the target)
  });
  // Connected: the kernel drops datagrams from anyone but the target, and send() skips the
  // per-packet address lookup dgram does otherwise (a fifth of the sending cost).
  await new Promise<void>((res, rej) => {
    sock.once('error', rej);
    sock.connect(port, host, () => {
      sock.off('error', rej);
      res();
    });
  });
  return {
    batched: false,
    query: (name, qtype, id) => sock.send(encodeScanQuery(name, qtype, id)),
    flush: () => true,
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

/** Queries staged per socket before they must go (a turn of the engine stages far fewer). */
const STAGE_QUERIES = 1024;

/** The udp-batch addon: queries staged back to back, sent with one sendmmsg per flush. */
export class BatchScanSocket implements ScanSocket {
  readonly batched = true;
  private readonly sock: UdpBatchSocket;
  private stage = Buffer.allocUnsafe(STAGE_QUERIES * 64);
  private lens = new Uint32Array(STAGE_QUERIES);
  private used = 0;
  private count = 0;

  constructor(UdpBatch: UdpBatchClass, host: string, port: number, wantTtl: boolean, onReply: OnScanReply) {
    const hostNum = host.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    this.sock = new UdpBatch(
      host,
      port,
      (data, meta, n) => {
        const at = performance.now();
        let off = 0;
        for (let i = 0; i < n; i++) {
          const len = meta[4 * i]!;
          // (connected: only the target) Addresses come as signed 32-bit numbers.
          if (meta[4 * i + 2]! >>> 0 === hostNum && meta[4 * i + 3] === port) {
            const ttl = meta[4 * i + 1]!;
            onReply(data.subarray(off, off + len), at, ttl < 0 ? null : ttl);
          }
          off += len;
        }
      },
      BUFFER_BYTES,
      BUFFER_BYTES,
      wantTtl,
    );
  }

  query(name: string, qtype: ScanQtype, id: number): void {
    let len = this.count < this.lens.length ? encodeScanQueryInto(this.stage, this.used, name, qtype, id) : -1;
    if (len < 0) {
      // Full: send what is staged; what the kernel does not take yet stays, in a bigger stage.
      this.flush();
      if (this.count === this.lens.length || this.used + MAX_SCAN_QUERY * 2 > this.stage.length) this.grow();
      len = encodeScanQueryInto(this.stage, this.used, name, qtype, id);
      if (len < 0) throw new Error(`scan dns: the query for ${name} does not fit in a datagram`);
    }
    this.lens[this.count++] = len;
    this.used += len;
  }

  private grow(): void {
    const stage = Buffer.allocUnsafe(this.stage.length * 2);
    this.stage.copy(stage, 0, 0, this.used);
    const lens = new Uint32Array(this.lens.length * 2);
    lens.set(this.lens.subarray(0, this.count));
    this.stage = stage;
    this.lens = lens;
  }

  flush(): boolean {
    if (this.count === 0) return true;
    const sent = this.sock.send(this.stage, this.lens, this.count);
    if (sent === this.count) {
      this.count = 0;
      this.used = 0;
      return true;
    }
    let bytes = 0;
    for (let i = 0; i < sent; i++) bytes += this.lens[i]!;
    this.stage.copy(this.stage, 0, bytes, this.used);
    this.lens.copyWithin(0, sent, this.count);
    this.used -= bytes;
    this.count -= sent;
    return false;
  }

  close(): Promise<void> {
    this.sock.close();
    return Promise.resolve();
  }
}
