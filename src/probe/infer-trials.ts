// One trial each of what `infer` asks (src/analysis/infer.ts): is this name blocked over DNS, in a
// TLS SNI, in an HTTP Host, or is this path blocked? Each trial is a fresh connection or socket
// (a fresh source port), optionally from a fresh source address, after an optional pause, so
// that the residual blocking a censor keeps on (client, server, port) after one trial does not
// read as a block of the next (Clayton06, SP25: 90-180 s). Trials never throw for a network outcome.
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import dnsPacket from 'dns-packet';
import { injectorBursts, matchInjector, type InjectorFingerprint, type PacketView } from '../analysis/index.js';
import type { Layer } from '../model/index.js';
import { encodeQuery } from './dns.js';
import type { CaptureHub } from './packet-evidence.js';
import { TCP_RST, tcpFlagNames } from './packet.js';

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

/** What one trial saw: blocked or not, and when the block came (ms after the connection began). */
export interface TrialOutcome {
  blocked: boolean;
  ms: number | null;
}

/**
 * The one outcome of a trial over socket `s`: the first call of the returned function settles it and
 * destroys the socket; silence for timeoutMs is "not blocked". A block's time counts from the TCP
 * connection (the trigger leaves at once), so the handshake's time is not the censor's.
 */
function settleOnce(s: net.Socket, timeoutMs: number, resolve: (o: TrialOutcome) => void): (blocked: boolean) => void {
  let done = false;
  let t0 = performance.now();
  s.once('connect', () => (t0 = performance.now()));
  const finish = (blocked: boolean) => {
    if (done) return;
    done = true;
    s.destroy();
    resolve({ blocked, ms: blocked ? performance.now() - t0 : null });
  };
  s.setTimeout(timeoutMs, () => finish(false));
  return finish;
}

/** TLS: a ClientHello carrying the name as SNI to `server`, from `local`. */
export function sniOutcome(
  server: { host: string; port: number },
  name: string,
  local: string | undefined,
  timeoutMs = 3000,
): Promise<TrialOutcome> {
  return new Promise<TrialOutcome>((resolve) => {
    const s = tls.connect({
      host: server.host,
      port: server.port,
      servername: name,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      ...(local ? { localAddress: local } : {}),
    });
    const finish = settleOnce(s, timeoutMs, resolve);
    s.on('secureConnect', () => finish(false));
    s.on('error', (e: NodeJS.ErrnoException) => finish(BLOCK_CODES.has(e.code ?? '') || /socket disconnected|ECONNRESET/.test(e.message)));
    s.on('close', () => finish(true));
  });
}

/** TLS: a ClientHello carrying the name as SNI to `server`. */
export function sniTrial(server: { host: string; port: number }, opts: TrialOptions = {}): Trial {
  return paced(opts, async (name, local) => (await sniOutcome(server, name, local, opts.timeoutMs)).blocked);
}

function httpExchange(
  server: { host: string; port: number },
  host: string,
  path: string,
  local: string | undefined,
  timeoutMs: number,
): Promise<TrialOutcome> {
  return new Promise<TrialOutcome>((resolve) => {
    const s = net.connect({ host: server.host, port: server.port, ...(local ? { localAddress: local } : {}) });
    const finish = settleOnce(s, timeoutMs, resolve);
    s.on('connect', () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: wallscope-infer\r\nAccept: */*\r\nConnection: close\r\n\r\n`);
    });
    s.on('data', () => finish(false)); // any response: the request went through
    s.on('error', (e: NodeJS.ErrnoException) => finish(BLOCK_CODES.has(e.code ?? '')));
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
  });
}

/** HTTP: a request with the name as Host (path `/`) to `server`. */
export function httpHostTrial(server: { host: string; port: number }, opts: TrialOptions = {}): Trial {
  return paced(opts, async (name, local) => (await httpExchange(server, name, '/', local, opts.timeoutMs ?? 3000)).blocked);
}

/** HTTP: a request with the name as Host (path `/`) to `server`, from `local`. */
export function hostOutcome(
  server: { host: string; port: number },
  name: string,
  local: string | undefined,
  timeoutMs = 3000,
): Promise<TrialOutcome> {
  return httpExchange(server, name, '/', local, timeoutMs);
}

/** HTTP: a request for a path made of `text` alone (%-encoded), with an unblocked Host. */
export function httpPathTrial(server: { host: string; port: number }, host: string, opts: TrialOptions = {}): Trial {
  return paced(
    opts,
    async (text, local) => (await httpExchange(server, host, `/${encodeURIComponent(text)}`, local, opts.timeoutMs ?? 3000)).blocked,
  );
}

/** Which layers blocked one trial: the national firewall keeps residual blocking, the regional one resets fast. */
export interface LayeredOutcome {
  blocked: boolean;
  national: boolean;
  regional: boolean;
}

/**
 * The resets injected toward each client address, from a packet capture (netns mode and real
 * networks, root), so that a trial is told apart by WHO reset it: each injector's fingerprint
 * (censors.md sections 3 and 5: Henan's one client-only RST+ACK with IP ID 1 and a 10-byte payload,
 * the GFW's bursts) instead of how soon the reset came, which a busy machine skews.
 */
export class ResetWatcher {
  private readonly byLocal = new Map<string, PacketView[]>();
  private readonly servers = new Map<string, Promise<string | null>>();
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly hub: CaptureHub,
    private readonly fingerprints: readonly InjectorFingerprint[],
  ) {}

  /** Starts keeping the resets that come from `server` (once per server); a problem, or null. */
  watch(server: { host: string; port: number }): Promise<string | null> {
    const key = `${server.host}:${server.port}`;
    let w = this.servers.get(key);
    if (!w) {
      w = this.hub.watch('tcp', server.host, server.port, ({ packet: p }) => {
        if (!p.tcp || !(p.tcp.flags & TCP_RST) || p.ip.src !== server.host) return;
        const view: PacketView = {
          dir: 'in',
          flags: tcpFlagNames(p.tcp.flags),
          ttl: p.ip.ttl,
          ipId: p.ip.id,
          df: p.ip.df,
          window: p.tcp.window,
          payloadHex: p.tcp.payload.toString('hex'),
          tMs: performance.now(),
        };
        (this.byLocal.get(p.ip.dst) ?? this.byLocal.set(p.ip.dst, []).get(p.ip.dst)!).push(view);
        for (const wake of this.waiters) wake();
      });
      this.servers.set(key, w);
    }
    return w;
  }

  /** Whether an injector of `layer` reset a flow of `local`, waiting for its packets up to waitMs. */
  async saw(local: string, layer: Layer, waitMs: number): Promise<boolean> {
    const deadline = performance.now() + waitMs;
    const seen = () =>
      injectorBursts(this.byLocal.get(local) ?? []).some((burst) => matchInjector(this.fingerprints, burst)?.layer === layer);
    while (!seen()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((r) => {
        const done = () => {
          clearTimeout(t);
          this.waiters.delete(done);
          r();
        };
        const t = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
    return true;
  }

  forget(local: string): void {
    this.byLocal.delete(local);
  }
}

/**
 * A trial told apart by layer, the way the probe's attribution tells a measured reset apart
 * (analysis attributeReset; censors.md section 5): after a blocked trial, a harmless follow-up
 * from the same address to the same server:port; blocked too = residual blocking = the national
 * firewall saw the name; none = the regional firewall's. With a ResetWatcher (packets), a residual
 * name is the regional firewall's too when a reset with a regional injector's fingerprint came;
 * without one, when the first reset came sooner than REGIONAL_RESET_MS after the ClientHello (the
 * regional reset arrives first). Where the censors inject while the packet passes on (the netns lab,
 * real paths), a name both block shows both; where the first censor's reset ends the flow (the
 * loopback lab), the later one is masked.
 */
export function layeredTrial(
  outcome: (name: string, local: string | undefined) => Promise<TrialOutcome>,
  harmless: string,
  opts: TrialOptions & { regionalResetMs: number; resets?: { watcher: ResetWatcher; waitMs: number } },
): (name: string) => Promise<LayeredOutcome> {
  return async (name) => {
    const local = opts.localAddress?.();
    const first = await outcome(name, local);
    if (!first.blocked) return { blocked: false, national: false, regional: false };
    const started = performance.now();
    const follow = await outcome(harmless, local);
    if (!follow.blocked) return { blocked: true, national: false, regional: true };
    if (opts.resets && local) {
      // The regional reset is injected when the ClientHello passes, before the follow-up begins; the
      // wait covers a capture that hands frames over late and a regional injector that resets late
      // on a busy machine (in the netns lab a router process). It ends once that reset is seen, so
      // only a national-only trial waits it out (measured: a third of a netns infer run, docs/LISTS.md).
      const { watcher, waitMs } = opts.resets;
      const regional = await watcher.saw(local, 'regional', Math.max(0, waitMs - (performance.now() - started)));
      watcher.forget(local);
      return { blocked: true, national: true, regional };
    }
    // With residual, the regional one too only if the first reset came sooner than the national
    // firewall ever resets (a busy machine only delays resets, so this errs towards missing the
    // regional layer, never towards giving it the national's trials).
    const soonerThan = (o: TrialOutcome) => o.blocked && o.ms !== null && o.ms < opts.regionalResetMs;
    let sooner = soonerThan(first);
    // A busy machine delays the regional reset past the bound now and then (seen in CI under load):
    // one more try from a fresh address before saying only the national firewall saw the name.
    if (!sooner) sooner = soonerThan(await outcome(name, opts.localAddress?.()));
    return { blocked: true, national: true, regional: sooner };
  };
}
