// One censor on path, inside its router's namespace (netns mode). It sniffs what the router
// forwards from the client side ("left") and injects forged packets while the originals still pass,
// as the real injectors do: DNS answers racing the genuine one, resets with the censor's
// fingerprint (src/lab/netns/forge.ts), injected block pages; residual blocking of (client,
// server, port). What the real censors do IN path is nftables in this namespace: null routes
// (SYNs dropped), refused connections (RST from the router), throttling (a rate limit per flow).
// The decisions are the loopback lab's (Policy, RuleSet, peekClientHello, HttpRequestScanner), so
// both modes and the ground truth agree by construction.
import { execFileSync, spawn } from 'node:child_process';
import dnsPacket from 'dns-packet';
import { prng, scenarioAt, timelineTimes, type ResetFingerprint, type Scenario } from '../../model/index.js';
import {
  deviceMac,
  encodeUdpPacket,
  ETH_HEADER,
  forwardedTcpCopy,
  frame,
  openCapture,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  type Capture,
  type CapturedFrame,
  type DecodedPacket,
} from '../../probe/index.js';
import { peekClientHello } from '../clienthello.js';
import { forgedReply } from '../dns.js';
import { blockPage, HttpRequestScanner, parseHttpHead, ResidualTable } from '../front.js';
import { poolInjector } from '../lab.js';
import { DEFAULT_FINGERPRINT, Policy, type Action } from '../policy.js';
import { divertedHello, EsniCensor, helloDivertBpf } from '../esni.js';
import { DEFAULT_FET_RESIDUAL_S, FetCensor } from '../fet.js';
import { Timers } from '../timers.js';
import { forgeReset, forgeResponse } from './forge.js';
import { WORLD_NET } from './topology.js';

export interface RouterConfig {
  scenario: Scenario;
  censorIndex: number;
  /** Routers between this one and the client (forged packets lose one TTL per router). */
  hopsBack: number;
  /** Lab addresses of every site (null routes and rejects name domains). */
  siteAddresses: Record<string, string[]>;
  /** Where the lab's client addresses live (in-path rules apply to traffic from there). */
  clientNet: string;
}

export interface RouterEvent {
  t: number;
  censor: string;
  action: 'dns' | 'reset' | 'residual' | 'blockpage' | 'throttle' | 'fet' | 'esni' | 'timeline';
  client: string;
  server: string;
  name: string | null;
}

/** IP TTL behaviour of the k-th DNS injector: a fixed initial TTL, or a copy of the query's TTL (TRIPLET). */
export const DNS_INJECTOR_IP_TTL: Array<number | 'copy'> = [64, 'copy', 128];

interface Flow {
  synSeen: boolean;
  next: number;
  buf: Buffer;
  tlsDone: boolean;
  http: HttpRequestScanner | null;
  requests: number;
  fired: boolean;
  /** The FET censor saw this flow's first data packet. */
  fetSeen: boolean;
  /** The ESNI censor has read this flow's ClientHello (or knows there is none). */
  esniDone: boolean;
  /** The client's stream so far, while the ESNI censor waits for a whole ClientHello. */
  esniBuf: Buffer;
}

const MAX_FLOWS = 65536;
const MAX_STREAM = 16 * 1024;

export function startRouterCensor(
  cfg: RouterConfig,
  onEvent: (e: RouterEvent) => void,
): { close(): void; startTimeline(startedAt: number): void } {
  const spec = cfg.scenario.censors[cfg.censorIndex];
  if (!spec) throw new Error(`no censor #${cfg.censorIndex} in the scenario`);
  // This censor as the scenario's timeline has it at lab time t (entries at 0 hold from the start).
  const censorAt = (t: number): Scenario => {
    const s = scenarioAt(cfg.scenario, t);
    return { ...s, censors: [s.censors[cfg.censorIndex]!] };
  };
  const policy = new Policy(cfg.scenario.timeline ? censorAt(0) : { ...cfg.scenario, censors: [spec] });
  const censor = policy.censors[0]!;
  const fingerprint: ResetFingerprint = censor.sni?.fingerprint ?? DEFAULT_FINGERPRINT[censor.layer];
  const rng = prng((cfg.scenario.seed ^ (0x9e3779b9 * (cfg.censorIndex + 1))) >>> 0);
  const injector = poolInjector(policy, WORLD_NET, rng);
  const residual = new ResidualTable();
  const flows = new Map<string, Flow>();
  const timers = new Timers();
  const leftMac = deviceMac('left');
  const rightMac = deviceMac('right');
  let rightNeighbor: string | null = null;
  let leftCap: Capture | null = null;
  let rightCap: Capture | null = null;
  const table = 'wallscope_censor';
  const nft = (script: string) => execFileSync('nft', ['-f', '-'], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
  const event = (action: RouterEvent['action'], p: DecodedPacket, name: string | null) =>
    onEvent({
      t: Date.now(),
      censor: censor.name,
      action,
      client: `${p.ip.src}:${p.tcp?.srcPort ?? p.udp?.srcPort}`,
      server: `${p.ip.dst}:${p.tcp?.dstPort ?? p.udp?.dstPort}`,
      name,
    });

  // In path: null routes and refused connections for the sites (or lab addresses) named.
  const inPath = (set: Set<string>, acts: (domain: string, a: string[]) => unknown) =>
    [...set].flatMap((x) =>
      /^\d+\.\d+\.\d+\.\d+$/.test(x) ? [x] : acts(x, cfg.siteAddresses[x] ?? []) ? (cfg.siteAddresses[x] ?? []) : [],
    );
  const drop = inPath(censor.nullRoute, (d, a) => policy.nullRouter(d, a));
  const reject = inPath(censor.reject, (d, a) => policy.rejecter(d, a));
  const rules: string[] = [];
  if (drop.length) rules.push(`ip saddr ${cfg.clientNet} ip daddr { ${drop.join(', ')} } tcp flags & (syn | ack) == syn drop`);
  if (reject.length)
    rules.push(`ip saddr ${cfg.clientNet} ip daddr { ${reject.join(', ')} } tcp flags & (syn | ack) == syn reject with tcp reset`);
  // Throttling is per flow: a flow enters `throttled` once its SNI or Host matched, and each
  // throttled flow gets its own token bucket (the dynamic set `buckets`) on the server->client side.
  const sets: string[] = [];
  if (censor.throttle) {
    const bytesPerS = Math.max(1, Math.round((censor.throttle.kbps * 1000) / 8));
    const flow = 'ipv4_addr . ipv4_addr . inet_service . inet_service';
    sets.push(
      `set throttled { type ${flow}; flags timeout; timeout 10m; }`,
      `set buckets { type ${flow}; flags dynamic,timeout; timeout 10m; }`,
    );
    const key = 'ip saddr . ip daddr . tcp sport . tcp dport';
    rules.push(`${key} @throttled update @buckets { ${key} limit rate over ${bytesPerS} bytes/second burst 1500 bytes } drop`);
  }
  // The FET censor (censors.md section 7) drops in path: a blocked flow's further packets (both
  // directions), then every flow on (client, server, port) for residual_s, SYNs included. The
  // decision is the loopback lab's (FetCensor); the kernel enforces it through two timed sets.
  const fet = spec.fet ? new FetCensor({ ...cfg.scenario, censors: [spec] }) : null;
  const fetResidualS = spec.fet?.residual_s ?? DEFAULT_FET_RESIDUAL_S;
  if (fet) {
    sets.push('set fet_flows { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags timeout; timeout 10m; }');
    sets.push('set fet_residual { type ipv4_addr . ipv4_addr . inet_service; flags timeout; }');
    rules.push(
      'ip saddr . tcp sport . ip daddr . tcp dport @fet_flows drop',
      'ip daddr . tcp dport . ip saddr . tcp sport @fet_flows drop',
    );
    rules.push('ip saddr . ip daddr . tcp dport @fet_residual drop', 'ip daddr . ip saddr . tcp sport @fet_residual drop');
  }
  // The ESNI drop (censors.md section 3) is in path, client to server only, on every port. The
  // kernel diverts every segment that starts a ClientHello (the xtables `bpf` match runs esni.ts's
  // program: dropped in forwarding, read by our capture all the same); onHello() re-sends the ones
  // that pass and, for a blocked one, puts the flow and its residual (client, server, port) into
  // two timed sets that drop the rest, SYNs included.
  const esni = spec.esni_drop ? new EsniCensor({ ...cfg.scenario, censors: [spec] }) : null;
  if (esni) {
    sets.push('set esni_flows { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags timeout; timeout 10m; }');
    sets.push('set esni_residual { type ipv4_addr . ipv4_addr . inet_service; flags timeout; }');
    rules.push('ip saddr . tcp sport . ip daddr . tcp dport @esni_flows drop', 'ip saddr . ip daddr . tcp dport @esni_residual drop');
    execFileSync(
      'iptables',
      ['-w', '-A', 'FORWARD', '-i', 'left', '-p', 'tcp', '-m', 'bpf', '--bytecode', helloDivertBpf(), '-j', 'DROP'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  }
  const namesOf = new Map<string, string[]>();
  for (const [name, addresses] of Object.entries(cfg.siteAddresses))
    for (const a of addresses) (namesOf.get(a) ?? namesOf.set(a, []).get(a)!).push(name);
  nft(
    `table ip ${table} {\n ${sets.join('\n ')}\n chain pass {\n  type filter hook forward priority 0; policy accept;\n  ${rules.join('\n  ')}\n }\n}\n`,
  );
  // Elements are added through one long-lived `nft -i`: a process start per flow would come later
  // than the genuine reply on a loaded machine.
  const nftShell = spawn('nft', ['-i'], { stdio: ['pipe', 'ignore', 'ignore'] });
  nftShell.stdin.on('error', () => undefined);
  const nftLater = (cmd: string) => nftShell.stdin.write(`${cmd}\n`);

  const later = (ms: number, fn: () => void) => timers.later(ms, fn);
  const toClient = (p: DecodedPacket, ipPackets: Buffer[]) => {
    for (const ip of ipPackets) leftCap?.send(frame({ srcMac: leftMac, dstMac: p.srcMac }, ip));
  };
  const toServer = (ipPackets: Buffer[]) => {
    if (!rightNeighbor) return; // nothing seen from the internet side yet: the server-side RST is skipped
    for (const ip of ipPackets) rightCap?.send(frame({ srcMac: rightMac, dstMac: rightNeighbor }, ip));
  };

  const reset = (p: DecodedPacket, latencyMs: number, close: 'reset' | 'eof') =>
    later(latencyMs, () => {
      const f = forgeReset(p, fingerprint, cfg.hopsBack, rng, close);
      toClient(p, f.toClient);
      toServer(f.toServer);
    });

  const apply = (p: DecodedPacket, a: Action, name: string | null, midConnection: boolean): boolean => {
    const tcp = p.tcp!;
    switch (a.kind) {
      case 'pass':
        return false;
      case 'reset':
        event('reset', p, name);
        residual.set(p.ip.src, p.ip.dst, tcp.dstPort, a.residualS, a.latencyMs, censor.name, a.close);
        reset(p, a.latencyMs, a.close);
        return true;
      case 'blockpage':
        if (midConnection) return false;
        event('blockpage', p, name);
        toClient(p, forgeResponse(p, blockPage(a.title, a.bytes), cfg.hopsBack));
        return true;
      case 'throttle': {
        if (midConnection) return false;
        event('throttle', p, name);
        nftLater(`add element ip ${table} throttled { ${p.ip.dst} . ${p.ip.src} . ${tcp.dstPort} . ${tcp.srcPort} }`);
        return true;
      }
    }
  };

  const onDns = (p: DecodedPacket) => {
    const udp = p.udp!;
    let q: dnsPacket.DecodedPacket;
    try {
      q = dnsPacket.decode(udp.payload);
    } catch {
      return; // hostile or truncated: not a query the injector can read
    }
    if (q.type !== 'query' || q.questions?.length !== 1) return;
    const forged = injector.forge(q.questions[0]!.name);
    if (!forged) return;
    event('dns', p, q.questions[0]!.name);
    forged.addresses.forEach((a, k) => {
      const reply = forgedReply(udp.payload, a, forged.ttls[k] ?? 60);
      if (!reply) return;
      const behaviour = DNS_INJECTOR_IP_TTL[k % DNS_INJECTOR_IP_TTL.length]!;
      const ttl = behaviour === 'copy' ? p.ip.ttl : Math.min(255, behaviour);
      const ip = encodeUdpPacket(
        { src: p.ip.dst, dst: p.ip.src, ttl, id: Math.floor(rng() * 65536), df: false },
        { srcPort: udp.dstPort, dstPort: udp.srcPort, payload: reply },
      );
      toClient(p, [ip]);
    });
  };

  const flowOf = (p: DecodedPacket): Flow | undefined => flows.get(`${p.ip.src}:${p.tcp!.srcPort}>${p.ip.dst}:${p.tcp!.dstPort}`);

  const onTcp = (p: DecodedPacket) => {
    const tcp = p.tcp!;
    const key = `${p.ip.src}:${tcp.srcPort}>${p.ip.dst}:${tcp.dstPort}`;
    if (tcp.flags & TCP_SYN && !(tcp.flags & TCP_ACK)) {
      if (flows.size >= MAX_FLOWS) flows.delete(flows.keys().next().value!);
      flows.set(key, {
        synSeen: true,
        next: (tcp.seq + 1) >>> 0,
        buf: Buffer.alloc(0),
        tlsDone: false,
        http: null,
        requests: 0,
        fired: false,
        fetSeen: false,
        esniDone: false,
        esniBuf: Buffer.alloc(0),
      });
      return;
    }
    if (tcp.flags & (TCP_RST | TCP_FIN)) {
      flows.delete(key);
      return;
    }
    if (tcp.payload.length === 0) return;
    const flow = flowOf(p);
    if (fet && flow && !flow.fetSeen) {
      // Only the client's first data packet is inspected [FET].
      flow.fetSeen = true;
      const d = fet.decide(
        { client: p.ip.src, server: p.ip.dst, port: tcp.dstPort, serverNames: namesOf.get(p.ip.dst) ?? [] },
        tcp.payload,
        Date.now(),
      );
      if (d.kind === 'drop') {
        flow.fired = true;
        event('fet', p, d.why);
        nftLater(`add element ip ${table} fet_flows { ${p.ip.src} . ${tcp.srcPort} . ${p.ip.dst} . ${tcp.dstPort} }`);
        if (d.why === 'blocked' && fetResidualS > 0)
          nftLater(`add element ip ${table} fet_residual { ${p.ip.src} . ${p.ip.dst} . ${tcp.dstPort} timeout ${fetResidualS}s }`);
        return;
      }
    }
    if (esni && flow && !flow.esniDone && !flow.fired && !divertedHello(p.ip.ttl, tcp.payload)) {
      // A ClientHello split over segments: the censor reassembles it, and a blocked one loses the
      // rest of its flow (its first segment was diverted and judged incomplete, so it went on).
      flow.esniBuf = Buffer.concat([flow.esniBuf, tcp.payload]);
      const peek = peekClientHello(flow.esniBuf);
      if (peek.kind !== 'incomplete' || flow.esniBuf.length >= MAX_STREAM) {
        flow.esniDone = true;
        flow.esniBuf = Buffer.alloc(0);
        if (peek.kind === 'hello' && esniBlocks(p, peek.extensions, peek.sni)) return;
      }
    }
    if (flow?.fired) return;
    const res = residual.get(p.ip.src, p.ip.dst, tcp.dstPort);
    if (res) {
      if (flow) flow.fired = true;
      event('residual', p, null);
      reset(p, res.latencyMs, res.close);
      return;
    }
    if (!censor.tcpReassembly) {
      // Henan [SP25]: no handshake needed, no reassembly, and only a TCP header of exactly 20 bytes.
      if (tcp.headerLength !== 20) return;
      const data = tcp.payload;
      if (data[0] === 0x16) {
        const peek = peekClientHello(data);
        if (peek.kind === 'hello' && !peek.fragmented && apply(p, policy.onClientHello(peek.sni), peek.sni, false) && flow)
          flow.fired = true;
        return;
      }
      const head = parseHttpHead(data);
      if (typeof head === 'object' && apply(p, policy.onHttpRequest(head.host, head.path), head.host, false) && flow) flow.fired = true;
      return;
    }
    // The GFW needs the client's SYN and reassembles the client's TCP stream [SP25].
    if (!flow?.synSeen) return;
    if (tcp.seq !== flow.next) return; // a retransmission or out of order: the stream so far decides
    flow.next = (flow.next + tcp.payload.length) >>> 0;
    if (flow.http) {
      for (const h of flow.http.push(tcp.payload)) {
        flow.requests++;
        if (apply(p, policy.onHttpRequest(h.host, h.path), h.host, flow.requests > 1)) {
          flow.fired = true;
          return;
        }
      }
      return;
    }
    if (flow.tlsDone) return;
    flow.buf = Buffer.concat([flow.buf, tcp.payload]);
    if (flow.buf[0] === 0x16) {
      const peek = peekClientHello(flow.buf);
      if (peek.kind === 'incomplete' && flow.buf.length < MAX_STREAM) return;
      flow.tlsDone = true;
      if (peek.kind === 'hello' && apply(p, policy.onClientHello(peek.sni), peek.sni, false)) flow.fired = true;
      flow.buf = Buffer.alloc(0);
      return;
    }
    flow.http = new HttpRequestScanner();
    const pending = flow.buf;
    flow.buf = Buffer.alloc(0);
    for (const h of flow.http.push(pending)) {
      flow.requests++;
      if (apply(p, policy.onHttpRequest(h.host, h.path), h.host, flow.requests > 1)) {
        flow.fired = true;
        return;
      }
    }
  };

  /** The ESNI censor's verdict on a flow's ClientHello; true when it blocked the flow. */
  const esniBlocks = (p: DecodedPacket, extensions: number[], sni: string | null): boolean => {
    const tcp = p.tcp!;
    const d = esni!.decide({ client: p.ip.src, server: p.ip.dst, port: tcp.dstPort }, extensions, Date.now());
    if (d.kind === 'pass') return false;
    const flow = flowOf(p);
    if (flow) flow.fired = flow.esniDone = true;
    event('esni', p, sni);
    nftLater(`add element ip ${table} esni_flows { ${p.ip.src} . ${tcp.srcPort} . ${p.ip.dst} . ${tcp.dstPort} }`);
    if (d.residualS)
      nftLater(`add element ip ${table} esni_residual { ${p.ip.src} . ${p.ip.dst} . ${tcp.dstPort} timeout ${d.residualS}s }`);
    return true;
  };

  /**
   * A segment the kernel diverted (it starts a ClientHello): re-sent towards the server as the
   * kernel would have forwarded it (TTL - 1), unless its ClientHello is blocked. True: dropped.
   */
  const onDivertedHello = (f: CapturedFrame): boolean => {
    const p = f.packet;
    const flow = flowOf(p);
    const peek = peekClientHello(p.tcp!.payload);
    if (flow?.esniDone && flow.fired) return true; // a retransmission of a blocked hello
    if (peek.kind === 'hello') {
      if (flow) flow.esniDone = true;
      if (esniBlocks(p, peek.extensions, peek.sni)) return true;
    } else if (peek.kind === 'incomplete' && flow && !flow.esniDone) {
      flow.esniBuf = Buffer.from(p.tcp!.payload); // the rest comes in segments the kernel forwards
    }
    if (!rightNeighbor) return true; // nothing seen from the internet side yet: lost, as a queue drop
    const ip = forwardedTcpCopy(f.raw.subarray(ETH_HEADER));
    if (ip) rightCap?.send(frame({ srcMac: rightMac, dstMac: rightNeighbor }, ip));
    return false;
  };

  const fromClient = (f: CapturedFrame) => {
    const p = f.packet;
    // Only what arrives from the client side; our own injections leave through this device too.
    if (p.dstMac !== leftMac || p.srcMac === leftMac) return;
    if (esni && p.tcp && divertedHello(p.ip.ttl, p.tcp.payload) && onDivertedHello(f)) return;
    if (p.udp && p.udp.dstPort === 53) onDns(p);
    else if (p.tcp) onTcp(p);
  };
  const fromInternet = (f: CapturedFrame) => {
    if (f.packet.dstMac === rightMac && f.packet.srcMac !== rightMac) rightNeighbor = f.packet.srcMac;
  };
  // Only what a censor reads: DNS queries, and TCP segments that open, close or carry data (the
  // client's pure ACKs of a large download are most of the traffic and tell the censor nothing).
  leftCap = openCapture(
    'left',
    'udp dst port 53 or (tcp and (tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) > 0))',
    fromClient,
  );
  // The internet-side neighbour's MAC (for the resets to the server), from its SYN-ACKs only.
  rightCap = openCapture('right', 'tcp[tcpflags] & tcp-syn != 0', fromInternet);
  return {
    // The timeline, from lab time 0 (`startedAt`, epoch ms, sent once every part is up): the rule
    // sets of the decisions are swapped at each time (DNS, SNI, HTTP, block page); the in-path
    // nftables rules (null_route, reject, throttle) keep the rules of lab time 0.
    startTimeline(startedAt: number) {
      for (const at of timelineTimes(cfg.scenario)) {
        if (at <= 0) continue;
        timers.later(Math.max(0, startedAt + at * 1000 - Date.now()), () => {
          policy.update(censorAt(at));
          onEvent({ t: Date.now(), censor: censor.name, action: 'timeline', client: '', server: '', name: `lab time ${at} s` });
        });
      }
    },
    close() {
      timers.clear();
      leftCap?.close();
      rightCap?.close();
      nftShell.stdin.end();
      nftShell.kill();
      leftCap = rightCap = null;
    },
  };
}
