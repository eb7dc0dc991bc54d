// Packet capture and link-layer injection through libpcap (the `cap` npm addon, built from source
// against Debian's libpcap-dev). Used by the netns lab's on-path censors (sniff what a router
// forwards, inject forged packets while the originals still pass), by `measure --capture` and by
// `locate`. The addon is loaded on first use, so commands that never capture never load it.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { decodeFrame, type DecodedPacket } from './packet.js';

interface CapHandle {
  open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
  setMinBytes?(n: number): void;
  send(buffer: Buffer, length?: number): void;
  close(): void;
  on(event: 'packet', fn: (nbytes: number, truncated: boolean) => void): void;
  removeAllListeners(event?: string): void;
}
interface CapModule {
  Cap: { new (): CapHandle; deviceList(): Array<{ name: string }> };
}

/**
 * Robustness: closed handles are kept referenced for the life of the process. The addon's close()
 * stops its uv_poll handle but never uv_close()s it, so once the wrapper is garbage-collected
 * libuv's handle queue points into freed memory; a probe that opens and closes captures per URL
 * (`measure --capture`) then corrupts the heap ("malloc(): mismatching next->prev_size" after a few
 * hundred cycles). A closed handle without listeners holds no buffer: well under 1 KB each.
 */
const retired: CapHandle[] = [];

let capModule: CapModule | null = null;
let capError: string | null = null;

function loadCap(): CapModule {
  if (capModule) return capModule;
  if (capError) throw new CaptureError(capError, 'CAPTURE_UNAVAILABLE');
  try {
    capModule = createRequire(import.meta.url)('cap') as CapModule;
    return capModule;
  } catch (e) {
    capError = `packet capture is unavailable: the 'cap' addon did not load (${(e as Error).message.split('\n')[0]}); run 'npm run setup' as root (it needs libpcap-dev)`;
    throw new CaptureError(capError, 'CAPTURE_UNAVAILABLE');
  }
}

export class CaptureError extends Error {
  constructor(
    message: string,
    readonly code: 'CAPTURE_UNAVAILABLE' | 'CAPTURE_NO_PERMISSION' | 'CAPTURE_OPEN_FAILED',
  ) {
    super(message);
    this.name = 'CaptureError';
  }
}

/** Whether this process can capture: root (or CAP_NET_RAW) and the addon loads. */
export function captureAvailable(): { ok: true } | { ok: false; reason: string } {
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return { ok: false, reason: 'packet capture needs root (raw sockets): run as root, or without --capture' };
  try {
    loadCap();
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

export interface CapturedFrame {
  /** Milliseconds on the monotonic clock (performance.now()) when the frame reached us. */
  at: number;
  raw: Buffer;
  packet: DecodedPacket;
}

export interface Capture {
  readonly device: string;
  /** Sends a whole Ethernet frame out of this device. */
  send(frame: Buffer): void;
  close(): void;
}

export interface CaptureOptions {
  /** libpcap's kernel buffer in bytes (default 8 MiB; a probe with many captures open at once uses less). */
  bufferBytes?: number;
}

/**
 * Opens `device` with a BPF `filter` (tcpdump syntax) and calls `onFrame` for every IPv4 frame,
 * copied out of libpcap's buffer. Frames are delivered as soon as they arrive (min bytes 0).
 */
export function openCapture(device: string, filter: string, onFrame: (f: CapturedFrame) => void, opts: CaptureOptions = {}): Capture {
  const { Cap } = loadCap();
  const c = new Cap();
  const buf = Buffer.alloc(65535);
  let link: string;
  try {
    link = c.open(device, filter, opts.bufferBytes ?? 8 * 1024 * 1024, buf);
  } catch (e) {
    const msg = (e as Error).message;
    if (/permission|Operation not permitted/i.test(msg))
      throw new CaptureError(`cannot capture on ${device}: ${msg} (needs root)`, 'CAPTURE_NO_PERMISSION');
    throw new CaptureError(`cannot capture on ${device}: ${msg}`, 'CAPTURE_OPEN_FAILED');
  }
  if (link !== 'ETHERNET') {
    c.close();
    retired.push(c);
    throw new CaptureError(`cannot capture on ${device}: link type ${link}, only Ethernet is supported`, 'CAPTURE_OPEN_FAILED');
  }
  c.setMinBytes?.(0);
  let open = true;
  c.on('packet', (n) => {
    if (!open) return;
    const raw = Buffer.from(buf.subarray(0, n));
    const packet = decodeFrame(raw);
    if (packet) onFrame({ at: performance.now(), raw, packet });
  });
  return {
    device,
    send(frame) {
      if (open) c.send(frame, frame.length);
    },
    close() {
      if (!open) return;
      open = false;
      c.close();
      c.removeAllListeners('packet');
      retired.push(c);
    },
  };
}

export interface Route {
  /** The device the kernel sends through. */
  dev: string;
  /** The source address it picks. */
  src: string;
}

/**
 * Routes looked up once per process: `ip route get` costs a process (tens of ms on a loaded
 * machine) and a measurement run does not change its routes. A failed lookup is not kept.
 */
const routes = new Map<string, Promise<Route>>();

/** How the kernel routes `ip` (`ip -j route get`): where to capture and inject for it. */
export function routeTo(ip: string): Promise<Route> {
  let r = routes.get(ip);
  if (!r) {
    r = new Promise<Route>((resolve, reject) => {
      execFile('ip', ['-j', 'route', 'get', ip], { timeout: 3000 }, (err, stdout) => {
        let got: { dev?: string; prefsrc?: string } | undefined;
        try {
          got = (JSON.parse(stdout || '[]') as Array<{ dev?: string; prefsrc?: string }>)[0];
        } catch {
          got = undefined;
        }
        if (err || !got?.dev || !got.prefsrc) reject(new Error(`no route to ${ip}${err ? `: ${err.message.split('\n')[0]}` : ''}`));
        else resolve({ dev: got.dev, src: got.prefsrc });
      });
    });
    routes.set(ip, r);
    r.catch(() => routes.delete(ip));
  }
  return r;
}

/** A device's own MAC address (the source of the frames we inject through it). */
export function deviceMac(dev: string): string {
  return readFileSync(`/sys/class/net/${dev}/address`, 'utf8').trim();
}
