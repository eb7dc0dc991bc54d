// Test support (src/testing/: only tests and bench/ import it): a small loopback world, a DNS server with
// programmable misbehaviour, HTTP/HTTPS sites, and raw TCP servers for hostile peers. Everything
// listens on 127.0.0.0/8 and closes cleanly.
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import dnsPacket from 'dns-packet';
import { joinHostPort } from '../probe/index.js';

export interface Closable {
  close(): Promise<void>;
}

export type DnsBehaviour =
  | { kind: 'answer'; addrs: string[]; ttl?: number }
  | { kind: 'nxdomain' }
  | { kind: 'servfail' }
  | { kind: 'silent' }
  | { kind: 'malformed' }
  | { kind: 'truncated'; addrs: string[] }
  | { kind: 'wrong-id'; addrs: string[] }
  /** Over UDP an empty reply with the TC bit (RFC 1035 4.2.1: retry over TCP); over TCP the answer. */
  | { kind: 'tc'; addrs: string[] }
  /** Forged reply first, the genuine one `delayMs` later: the injection signature. The forged
   * reply carries A records whatever the query type (as the GFW's injectors do). */
  | { kind: 'inject'; forged: string[]; addrs: string[]; delayMs?: number };

export interface DnsServer extends Closable {
  /** "ip:port" (UDP and TCP on the same port). */
  address: string;
  /** How many queries arrived (UDP + TCP). */
  queries: number;
}

function answerPacket(q: dnsPacket.DecodedPacket, addrs: string[], ttl: number, rcode?: string, forceA = false): Buffer {
  const question = q.questions![0]!;
  const answers = forceA
    ? addrs.filter((a) => net.isIPv4(a)).map((a) => ({ type: 'A' as const, name: question.name, ttl, class: 'IN' as const, data: a }))
    : addrs
        .filter((a) => (question.type === 'AAAA' ? net.isIPv6(a) : question.type === 'A' ? net.isIPv4(a) : false))
        .map((a) => ({ type: question.type as 'A' | 'AAAA', name: question.name, ttl, class: 'IN' as const, data: a }));
  return dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (rcode === 'NXDOMAIN' ? 3 : rcode === 'SERVFAIL' ? 2 : 0),
    questions: q.questions,
    answers: rcode ? [] : answers,
  });
}

type Reply = { buf: Buffer; delay: number };

/** The replies the zone gives to one query (the last one is the one TCP sends); none for junk. */
function zoneReplies(zone: Record<string, DnsBehaviour>, msg: Buffer, overTcp: boolean): Reply[] {
  let q: dnsPacket.DecodedPacket;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return [];
  }
  const name = q.questions?.[0]?.name?.toLowerCase() ?? '';
  const b = zone[name] ?? { kind: 'nxdomain' };
  switch (b.kind) {
    case 'answer':
      return [{ buf: answerPacket(q, b.addrs, b.ttl ?? 60), delay: 0 }];
    case 'nxdomain':
      return [{ buf: answerPacket(q, [], 0, 'NXDOMAIN'), delay: 0 }];
    case 'servfail':
      return [{ buf: answerPacket(q, [], 0, 'SERVFAIL'), delay: 0 }];
    case 'silent':
      return [];
    case 'malformed': {
      const junk = Buffer.from([0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
      junk.writeUInt16BE(q.id ?? 0, 0);
      return [{ buf: junk, delay: 0 }];
    }
    case 'truncated': {
      const full = answerPacket(q, b.addrs, 60);
      return [{ buf: full.subarray(0, full.length - 3), delay: 0 }];
    }
    case 'wrong-id': {
      const r = answerPacket(q, b.addrs, 60);
      r.writeUInt16BE(((q.id ?? 0) + 1) & 0xffff, 0);
      return [{ buf: r, delay: 0 }];
    }
    case 'tc': {
      if (overTcp) return [{ buf: answerPacket(q, b.addrs, 60), delay: 0 }];
      const r = answerPacket(q, [], 60);
      r[2] = r[2]! | 0x02; // TC
      return [{ buf: r, delay: 0 }];
    }
    case 'inject':
      return [
        { buf: answerPacket(q, b.forged, 60, undefined, true), delay: 0 },
        { buf: answerPacket(q, b.addrs, 60), delay: b.delayMs ?? 20 },
      ];
  }
}

/** A DNS server answering from `zone` (name -> behaviour); unknown names get NXDOMAIN. */
export async function startDnsServer(zone: Record<string, DnsBehaviour>, host = '127.0.0.1'): Promise<DnsServer> {
  const timers = new Set<NodeJS.Timeout>();
  const state = { queries: 0 };
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2) {
        const len = buf.readUInt16BE(0);
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        state.queries++;
        const r = zoneReplies(zone, msg, true).at(-1);
        if (!r) continue;
        const framed = Buffer.alloc(r.buf.length + 2);
        framed.writeUInt16BE(r.buf.length, 0);
        r.buf.copy(framed, 2);
        s.write(framed);
      }
    });
  });
  const { udp, port } = await listenTwins(tcp, host);
  udp.on('message', (msg, rinfo) => {
    state.queries++;
    for (const r of zoneReplies(zone, msg, false)) {
      const send = (): void => udp.send(r.buf, rinfo.port, rinfo.address);
      if (r.delay === 0) send();
      else {
        const t = setTimeout(() => {
          timers.delete(t);
          send();
        }, r.delay);
        timers.add(t);
      }
    }
  });
  return {
    address: joinHostPort(host, port),
    get queries() {
      return state.queries;
    },
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
}

/**
 * UDP and TCP on the same port: take a free TCP port first, then try its UDP twin (retrying
 * when another process holds it).
 */
async function listenTwins(tcp: net.Server, host: string): Promise<{ udp: dgram.Socket; port: number }> {
  for (let attempt = 0; ; attempt++) {
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(0, host, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    const port = (tcp.address() as AddressInfo).port;
    const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const bound = await new Promise<boolean>((resolve) => {
      const onErr = (): void => resolve(false);
      udp.once('error', onErr);
      udp.bind(port, host, () => {
        udp.off('error', onErr);
        resolve(true);
      });
    });
    if (bound) return { udp, port };
    try {
      udp.close();
    } catch {
      /* never bound */
    }
    await new Promise<void>((r) => tcp.close(() => r()));
    if (attempt >= 20) throw new Error(`startDnsServer: no free UDP+TCP port pair on ${host}`);
  }
}

export interface Site extends Closable {
  host: string;
  port: number;
  /** "ip:port" */
  address: string;
}

export interface SiteOptions {
  host?: string;
  port?: number;
  /** Serve HTTPS with this certificate chain and key (PEM). */
  tls?: { cert: string; key: string };
  /** Default: a small page titled `title`. */
  handler?: http.RequestListener;
  title?: string;
  /** Sees every TCP connection as it is accepted (bench/cli-startup.ts times a probe's first packet). */
  onConnection?: () => void;
}

export function page(title: string, bytes = 1000): string {
  const head = `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1><p>`;
  const tail = '</p></body></html>';
  return head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail;
}

/** An HTTP or HTTPS site on loopback. */
export async function startSite(opts: SiteOptions = {}): Promise<Site> {
  const host = opts.host ?? '127.0.0.1';
  const title = opts.title ?? 'Example Domain';
  const body = page(title);
  const handler: http.RequestListener =
    opts.handler ??
    ((_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'x-site': 'wallscope-test',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : http.createServer(handler);
  server.on('clientError', (_e, s) => s.destroy());
  server.on('tlsClientError', () => {});
  if (opts.onConnection) server.on('connection', opts.onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host,
    port,
    address: joinHostPort(host, port),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A raw TCP server: `onConnection` plays the (hostile) peer. */
export async function startRawServer(onConnection: (s: net.Socket) => void, host = '127.0.0.1'): Promise<Site> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    onConnection(s);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host,
    port,
    address: joinHostPort(host, port),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Read until the end of the request head, then call `then`. */
export function afterRequestHead(s: net.Socket, then: (head: string) => void): void {
  let buf = '';
  const onData = (c: Buffer): void => {
    buf += c.toString('latin1');
    if (buf.includes('\r\n\r\n')) {
      s.removeListener('data', onData);
      then(buf);
    }
  };
  s.on('data', onData);
}

/**
 * A listener whose accept queue is full: a child process listens with a tiny backlog and then blocks its
 * own event loop, so the kernel drops further SYNs (what a null route looks like from a socket).
 */
export async function startBlackhole(): Promise<{ port: number; close(): void }> {
  const code = `const net=require('net'),fs=require('fs');const s=net.createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>{fs.writeSync(1,s.address().port+'\\n');Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0,60000);});`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  // Fill the queue (backlog 1 holds two on Linux; node treats backlog 0 as "default").
  const fillers = Array.from({ length: 3 }, () => net.connect(port, '127.0.0.1').on('error', () => {}));
  await new Promise((r) => setTimeout(r, 200));
  return {
    port,
    close: () => {
      for (const f of fillers) f.destroy();
      child.kill('SIGKILL');
    },
  };
}
