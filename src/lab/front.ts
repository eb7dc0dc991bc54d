// The censor front: holds a site's public ip:port, peeks at the client's first bytes (the TLS
// ClientHello's SNI, or the HTTP request line and Host), asks the policy what the censors on the
// path do, and then resets (a real RST via resetAndDestroy, after the layer's characteristic
// latency), injects a block page, throttles, or pipes the bytes to the genuine origin server.
// Residual blocking is kept per (client ip, server ip, server port). Connections from the test
// helper's address bypass the censors: the helper stands outside them.
import net from 'node:net';
import type { CloseKind, SiteDown } from '../model/index.js';
import { Timers } from './timers.js';
import { peekClientHello } from './clienthello.js';
import type { EsniCensor } from './esni.js';
import type { FetCensor } from './fet.js';
import type { Action, Policy } from './policy.js';
import { holdDropped } from './service.js';

const PEEK_LIMIT = 16 * 1024;
const PEEK_TIMEOUT_MS = 10_000;

export interface FrontSite {
  domain: string;
  down?: SiteDown;
  /**
   * The site tells clients apart (a CDN challenge): the front then connects to the origin from the
   * client's own address, so that the origin sees who is asking.
   */
  captcha?: boolean;
}

export interface FrontOptions {
  host: string;
  port: number;
  scheme: 'http' | 'https';
  site: FrontSite;
  origin: { host: string; port: number };
  policy: Policy;
  residual: ResidualTable;
  /** Source addresses outside the censors (the test helper). */
  exempt: ReadonlySet<string>;
  /** The fully-encrypted-traffic censor (fet.ts); it sees the first data segment of every flow. */
  fet?: FetCensor;
  /** The ESNI censor (esni.ts); it sees every ClientHello, and its residual holds whole flows. */
  esni?: EsniCensor;
  log?: (e: FrontEvent) => void;
  /**
   * Holds the client's first request (ClientHello or HTTP head) this long before the origin sees
   * it: the distance to the internet in netns mode, so that the routers' on-path injections win the
   * race as in the field (tc netem is not available on our machines). 0 on loopback.
   */
  responseDelayMs?: number;
}

export interface FrontEvent {
  t: number;
  client: string;
  server: string;
  action: Action['kind'] | 'residual' | 'down' | 'fet-drop' | 'esni-drop' | 'dns-injection';
  censor?: string;
  name?: string | null;
  /** dns-injection: the forged answers sent. */
  detail?: string;
}

export interface RunningFront {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** (client ip, server ip, server port) -> blocked until, with the latency of the censor that set it. */
export class ResidualTable {
  private readonly until = new Map<string, { until: number; latencyMs: number; censor: string; close: CloseKind }>();
  set(client: string, server: string, port: number, seconds: number, latencyMs: number, censor: string, close: CloseKind = 'reset'): void {
    if (seconds <= 0) return;
    this.until.set(`${client}|${server}|${port}`, { until: Date.now() + seconds * 1000, latencyMs, censor, close });
  }
  get(client: string, server: string, port: number): { latencyMs: number; censor: string; close: CloseKind } | null {
    const k = `${client}|${server}|${port}`;
    const e = this.until.get(k);
    if (!e) return null;
    if (Date.now() >= e.until) {
      this.until.delete(k);
      return null;
    }
    return e;
  }
  get size(): number {
    return this.until.size;
  }
}

export function parseHttpHead(buf: Buffer): { host: string; path: string } | 'incomplete' | 'invalid' {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return buf.length >= PEEK_LIMIT ? 'invalid' : 'incomplete';
  const head = buf.subarray(0, end).toString('latin1');
  const lines = head.split('\r\n');
  const m = /^[A-Z]+ (\S+) HTTP\/\d\.\d$/.exec(lines[0] ?? '');
  if (!m) return 'invalid';
  let host = '';
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0 && l.slice(0, i).trim().toLowerCase() === 'host') host = l.slice(i + 1).trim();
  }
  let path = m[1]!;
  if (/^https?:\/\//i.test(path)) {
    try {
      const u = new URL(path);
      host ||= u.host;
      path = u.pathname + u.search;
    } catch {
      /* keep as is */
    }
  }
  host = host
    .replace(/:\d+$/, '')
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  return { host, path };
}

/**
 * Follows the request heads of a kept-alive (or pipelined) HTTP connection so that every request
 * is inspected, not only the first: the GFW filters each request (Rambert21). Bodies are skipped
 * by Content-Length; a chunked body or an unparsable head makes it stop inspecting (best effort).
 */
export class HttpRequestScanner {
  private buf: Buffer = Buffer.alloc(0);
  private skip = 0;
  private blind = false;

  push(d: Buffer): Array<{ host: string; path: string }> {
    const heads: Array<{ host: string; path: string }> = [];
    if (this.blind) return heads;
    let data: Buffer = d;
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length);
        this.skip -= n;
        data = data.subarray(n);
        if (this.skip > 0) return heads;
      }
      this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
      data = Buffer.alloc(0);
      // Robustness: stray CRLFs between requests are allowed (RFC 9112 2.2).
      while (this.buf.length >= 2 && this.buf[0] === 0x0d && this.buf[1] === 0x0a) this.buf = this.buf.subarray(2);
      if (!this.buf.length) return heads;
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.buf.length > PEEK_LIMIT) this.blind = true;
        return heads;
      }
      const head = parseHttpHead(this.buf.subarray(0, end + 4));
      const text = this.buf.subarray(0, end).toString('latin1');
      if (typeof head === 'string' || /\r\ntransfer-encoding:/i.test(text)) {
        this.blind = true;
        return heads;
      }
      heads.push(head);
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text);
      this.skip = cl ? Number(cl[1]) : 0;
      data = this.buf.subarray(end + 4);
      this.buf = Buffer.alloc(0);
      if (!data.length && this.skip === 0) return heads;
    }
  }
}

// Shaped like a Squid-based ISP filter's page: its own title, size and an uncommon header.
export function blockPage(title: string, bytes: number): Buffer {
  const head = `<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1><p>This site is blocked.</p>`;
  const tail = '</body></html>';
  const body = head + ' '.repeat(Math.max(0, bytes - head.length - tail.length)) + tail;
  return Buffer.from(
    `HTTP/1.1 200 OK\r\nServer: squid\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * A censoring front for one site address and scheme: it reads the client's first bytes (the
 * ClientHello or the HTTP head), asks the policy, and passes, resets, serves a block page or
 * throttles (FrontConnection, one per client connection).
 */
export async function startFront(o: FrontOptions): Promise<RunningFront> {
  const sockets = new Set<net.Socket>();
  const timers = new Timers();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  };
  const server = net.createServer((client) => {
    track(client);
    new FrontConnection(o, client, track, (ms, fn) => timers.later(ms, fn)).start();
  });
  server.maxConnections = 4096;

  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(o.port, o.host, () => {
      server.off('error', rej);
      res();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: o.host,
    port,
    async close() {
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** One client connection through a front, from its first bytes to the censor's decision and after. */
class FrontConnection {
  private readonly clientIp: string;
  private readonly serverIp: string;
  private readonly port: number;
  private readonly exempt: boolean;
  private buf = Buffer.alloc(0);
  private decided = false;
  /** TCP reads before the decision: > 1 means the trigger was segmented. */
  private chunks = 0;

  constructor(
    private readonly o: FrontOptions,
    private readonly client: net.Socket,
    private readonly track: (s: net.Socket) => void,
    private readonly later: (ms: number, fn: () => void) => void,
  ) {
    this.clientIp = client.remoteAddress ?? '';
    this.serverIp = client.localAddress ?? o.host;
    this.port = client.localPort ?? o.port;
    this.exempt = o.exempt.has(this.clientIp);
  }

  start(): void {
    this.client.setTimeout(PEEK_TIMEOUT_MS, () => {
      if (!this.decided) this.client.destroy();
    });
    this.client.on('data', (d: Buffer) => this.onData(d));
  }

  private log(action: FrontEvent['action'], censor?: string, name?: string | null): void {
    this.o.log?.({
      t: Date.now(),
      client: `${this.clientIp}:${this.client.remotePort}`,
      server: `${this.serverIp}:${this.port}`,
      action,
      censor,
      name,
    });
  }

  // A RST (the default), or a FIN: the client then reads EOF (eof_error), as a censor that closes
  // the connection mid-request does (webconnectivityqa ...AndThenEOF).
  private reset(latencyMs: number, close: CloseKind = 'reset'): void {
    this.later(latencyMs, () => {
      if (close === 'eof') this.client.end(() => this.client.destroy());
      else this.client.resetAndDestroy();
    });
  }

  private pipe(first: Buffer, kbps?: number): void {
    const { o, client, clientIp } = this;
    // A captcha site must tell the helper from the probe: the front connects from the client's own
    // address when it can bind it (loopback; the helper's in netns mode), else from its own
    // address, which is never exempt (a netns client's address lives in another namespace).
    const from = o.exempt.has(clientIp) || (net.isIPv4(clientIp) && clientIp.startsWith('127.')) ? clientIp : o.host;
    const up = o.site.captcha
      ? net.connect({ port: o.origin.port, host: o.origin.host, localAddress: from })
      : net.connect(o.origin.port, o.origin.host);
    this.track(up);
    up.setNoDelay(true);
    up.write(first);
    client.pipe(up);
    client.on('close', () => up.destroy());
    if (kbps === undefined) {
      up.on('close', () => client.destroy());
      up.pipe(client);
      return;
    }
    throttled(up, client, kbps);
  }

  private apply(action: Action, name: string | null): void {
    const { o, client } = this;
    this.decided = true;
    client.setTimeout(0);
    switch (action.kind) {
      case 'pass':
        this.log('pass', undefined, name);
        if (o.scheme === 'http' && !this.exempt) this.inspectLaterRequests();
        return this.pipe(this.buf);
      case 'reset':
        this.log('reset', action.censor.name, name);
        o.residual.set(this.clientIp, this.serverIp, this.port, action.residualS, action.latencyMs, action.censor.name, action.close);
        return this.reset(action.latencyMs, action.close);
      case 'blockpage':
        this.log('blockpage', action.censor.name, name);
        client.end(blockPage(action.title, action.bytes));
        return;
      case 'throttle':
        this.log('throttle', action.censor.name, name);
        return this.pipe(this.buf, action.kbps);
    }
  }

  /** Later requests on a passed HTTP connection are inspected too (pipelined ones already in buf); only resets are injected mid-connection. */
  private inspectLaterRequests(): void {
    const { o, client } = this;
    const scanner = new HttpRequestScanner();
    const check = (heads: Array<{ host: string; path: string }>) => {
      for (const h of heads) {
        const a = o.policy.onHttpRequest(h.host, h.path);
        if (a.kind !== 'reset') continue;
        this.log('reset', a.censor.name, h.host);
        o.residual.set(this.clientIp, this.serverIp, this.port, a.residualS, a.latencyMs, a.censor.name, a.close);
        client.removeListener('data', onLater);
        this.reset(a.latencyMs, a.close);
        return;
      }
    };
    const onLater = (d: Buffer) => check(scanner.push(d));
    client.on('data', onLater);
    check(scanner.push(this.buf).slice(1));
  }

  // The client stays paused while the request travels to the (distant) origin.
  private decideAfterDelay(decide: () => void): void {
    this.client.pause();
    this.decided = true;
    const go = () => {
      decide();
      this.client.resume();
    };
    if (this.o.responseDelayMs) this.later(this.o.responseDelayMs, go);
    else go();
  }

  private onData(d: Buffer): void {
    if (this.decided) return;
    this.buf = Buffer.concat([this.buf, d]);
    this.chunks++;
    if (this.decidedBeforeInspection(d)) return;
    const { o, exempt, buf, chunks } = this;
    if (o.scheme === 'https') {
      const peek = peekClientHello(buf);
      if (peek.kind === 'incomplete') {
        if (buf.length >= PEEK_LIMIT) this.apply({ kind: 'pass' }, null);
        return;
      }
      const sni = peek.kind === 'hello' ? peek.sni : null;
      if (peek.kind === 'hello' && o.esni?.active && !exempt) {
        const e = o.esni.decide({ client: this.clientIp, server: this.serverIp, port: this.port }, peek.extensions, Date.now());
        if (e.kind === 'drop') return this.dropFlow(e.why === 'residual' ? 'residual' : 'esni-drop', e.censor, sni);
      }
      this.decideAfterDelay(() => this.apply(exempt ? { kind: 'pass' } : o.policy.onClientHello(sni, chunks > 1), sni));
    } else {
      const head = parseHttpHead(buf);
      if (head === 'incomplete') return;
      if (head === 'invalid') this.decideAfterDelay(() => this.apply({ kind: 'pass' }, null));
      else
        this.decideAfterDelay(() =>
          this.apply(exempt ? { kind: 'pass' } : o.policy.onHttpRequest(head.host, head.path, chunks > 1), head.host),
        );
    }
  }

  /** Dropped in path: the client's packets never reach the server, nothing is answered. */
  private dropFlow(action: FrontEvent['action'], censor: string, name: string | null = this.o.site.domain): void {
    this.decided = true;
    this.client.setTimeout(0);
    this.log(action, censor, name);
    holdDropped(this.client);
  }

  /** What is decided before the trigger is read: the FET censor's drop, a site that is down, residual blocking. */
  private decidedBeforeInspection(d: Buffer): boolean {
    const { o, client, exempt } = this;
    // The FET censor inspects the first data segment only (Wu et al. 2023); a TLS or HTTP start
    // is exempt, so it acts here only on what is neither (or under its residual blocking).
    if (this.chunks === 1 && o.fet?.active && !exempt) {
      const f = o.fet.decide(
        { client: this.clientIp, server: this.serverIp, port: this.port, serverNames: [o.site.domain] },
        d,
        Date.now(),
      );
      if (f.kind === 'drop') {
        this.decided = true;
        client.setTimeout(0);
        this.log(f.why === 'residual' ? 'residual' : 'fet-drop', f.censor, o.site.domain);
        holdDropped(client);
        return true;
      }
    }
    // Under an ESNI residual block every client-to-server packet is dropped: nothing passes. (On
    // loopback the connect itself completes; in netns mode the router drops the SYN too.)
    if (this.chunks === 1 && o.esni?.active && !exempt) {
      const r = o.esni.inResidual({ client: this.clientIp, server: this.serverIp, port: this.port }, Date.now());
      if (r) {
        this.dropFlow('residual', r);
        return true;
      }
    }
    // Site behaviours that everyone (the helper too) sees.
    if (o.site.down === 'reset' || o.site.down === 'eof') {
      this.decided = true;
      this.log('down', undefined, o.site.domain);
      client.pause();
      if (o.site.down === 'reset') client.resetAndDestroy();
      else client.end();
      return true;
    }
    if (!exempt) {
      const res = o.residual.get(this.clientIp, this.serverIp, this.port);
      if (res) {
        this.decided = true;
        client.pause();
        this.log('residual', res.censor);
        this.reset(res.latencyMs, res.close);
        return true;
      }
    }
    return false;
  }
}

/** Server -> client through a token bucket refilled every 100 ms (the throttle action). */
function throttled(up: net.Socket, client: net.Socket, kbps: number): void {
  const perTick = Math.max(1, Math.floor((kbps * 1000) / 8 / 10));
  const queue: Buffer[] = [];
  let ended = false;
  up.on('data', (d: Buffer) => {
    queue.push(d);
    if (queue.reduce((n, b) => n + b.length, 0) > 4 * 1024 * 1024) up.pause();
  });
  up.on('end', () => (ended = true));
  up.on('close', () => (ended = true));
  const tick = setInterval(() => {
    let budget = perTick;
    while (budget > 0 && queue.length) {
      const b = queue[0]!;
      const n = Math.min(budget, b.length);
      client.write(b.subarray(0, n));
      budget -= n;
      if (n === b.length) queue.shift();
      else queue[0] = b.subarray(n);
    }
    if (!queue.length) {
      up.resume();
      if (ended) {
        clearInterval(tick);
        client.end();
      }
    }
  }, 100);
  client.on('close', () => clearInterval(tick));
}
