// One trial each of what `infer` asks (src/analysis/infer.ts): is this name blocked over DNS, in a
// TLS SNI, in an HTTP Host, or is this path blocked? Each trial is a fresh connection or socket
// (a fresh source port), optionally from a fresh source address, after an optional pause, so
// that the residual blocking a censor keeps on (client, server, port) after one trial does not
// read as a block of the next (Clayton06, SP25: 90-180 s). Trials never throw for a network outcome.
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import dnsPacket from 'dns-packet';
import { encodeQuery } from './dns.js';

export interface TrialOptions {
  /** A source address for the next trial (fresh ones avoid residual blocking), or undefined. */
  localAddress?: () => string | undefined;
  /** Pause before every trial but the first (ms): the residual-blocking pause on real networks. */
  pauseMs?: number;
  /** How long a trial waits for a block or an answer (ms). */
  timeoutMs?: number;
}

export type Trial = (candidate: string) => Promise<boolean>;

function paced(opts: TrialOptions, run: (c: string, local: string | undefined) => Promise<boolean>): Trial {
  let first = true;
  return async (c) => {
    if (!first && opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    first = false;
    return run(c, opts.localAddress?.());
  };
}

/**
 * DNS: a query for the name to an address that runs no resolver (GFWatch): any reply is injected.
 * Resolves true at the first reply, false after the window.
 */
export function dnsTrial(target: { host: string; port: number }, opts: TrialOptions = {}): Trial {
  return paced(
    opts,
    (name, local) =>
      new Promise<boolean>((resolve) => {
        const sock = dgram.createSocket('udp4');
        const id = Math.floor(Math.random() * 0x10000);
        let done = false;
        const finish = (b: boolean) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          sock.close();
          resolve(b);
        };
        const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 1000);
        sock.on('error', () => finish(false));
        sock.on('message', (msg, rinfo) => {
          if (rinfo.address !== target.host || rinfo.port !== target.port || msg.length < 12 || msg.readUInt16BE(0) !== id) return;
          try {
            const q = (dnsPacket.decode(msg) as dnsPacket.DecodedPacket).questions?.[0];
            if (q && q.name.toLowerCase() !== name) return;
          } catch {
            /* a reply we cannot decode is still a reply */
          }
          finish(true);
        });
        sock.bind({ port: 0, ...(local ? { address: local } : {}) }, () => sock.send(encodeQuery(name, 'A', id), target.port, target.host));
      }),
  );
}

/** A reset or a close before any answer reads as blocked; an answer, an alert or silence does not. */
const BLOCK_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** TLS: a ClientHello carrying the name as SNI to `server`. */
export function sniTrial(server: { host: string; port: number }, opts: TrialOptions = {}): Trial {
  return paced(
    opts,
    (name, local) =>
      new Promise<boolean>((resolve) => {
        let done = false;
        const s = tls.connect({
          host: server.host,
          port: server.port,
          servername: name,
          rejectUnauthorized: false,
          checkServerIdentity: () => undefined,
          ...(local ? { localAddress: local } : {}),
        });
        const finish = (b: boolean) => {
          if (done) return;
          done = true;
          s.destroy();
          resolve(b);
        };
        s.setTimeout(opts.timeoutMs ?? 3000, () => finish(false));
        s.on('secureConnect', () => finish(false));
        s.on('error', (e: NodeJS.ErrnoException) =>
          finish(BLOCK_CODES.has(e.code ?? '') || /socket disconnected|ECONNRESET/.test(e.message)),
        );
        s.on('close', () => finish(true));
      }),
  );
}

function httpExchange(
  server: { host: string; port: number },
  host: string,
  path: string,
  local: string | undefined,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let done = false;
    const s = net.connect({ host: server.host, port: server.port, ...(local ? { localAddress: local } : {}) });
    const finish = (b: boolean) => {
      if (done) return;
      done = true;
      s.destroy();
      resolve(b);
    };
    s.setTimeout(timeoutMs, () => finish(false));
    s.on('connect', () =>
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: wallscope-infer\r\nAccept: */*\r\nConnection: close\r\n\r\n`),
    );
    s.on('data', () => finish(false)); // any response: the request went through
    s.on('error', (e: NodeJS.ErrnoException) => finish(BLOCK_CODES.has(e.code ?? '')));
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
  });
}

/** HTTP: a request with the name as Host (path `/`) to `server`. */
export function httpHostTrial(server: { host: string; port: number }, opts: TrialOptions = {}): Trial {
  return paced(opts, (name, local) => httpExchange(server, name, '/', local, opts.timeoutMs ?? 3000));
}

/** HTTP: a request for a path made of `text` alone (%-encoded), with an unblocked Host. */
export function httpPathTrial(server: { host: string; port: number }, host: string, opts: TrialOptions = {}): Trial {
  return paced(opts, (text, local) => httpExchange(server, host, `/${encodeURIComponent(text)}`, local, opts.timeoutMs ?? 3000));
}
