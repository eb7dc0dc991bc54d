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
const TABLE = 'wallscope_censor';

/** What the steps of one router censor share. */
interface RouterCensor {
  cfg: RouterConfig;
  spec: Scenario['censors'][number];
  /** This censor as the scenario's timeline has it at lab time t (entries at 0 hold from the start). */
  censorAt: (t: number) => Scenario;
  policy: Policy;
  censor: Policy['censors'][number];
  fingerprint: ResetFingerprint;
  rng: () => number;
  injector: ReturnType<typeof poolInjector>;
  residual: ResidualTable;
  flows: Map<string, Flow>;
  timers: Timers;
  leftMac: string;
  rightMac: string;
  rightNeighbor: string | null;
  leftCap: Capture | null;
  rightCap: Capture | null;
  fet: FetCensor | null;
  fetResidualS: number;
  esni: EsniCensor | null;
  namesOf: Map<string, string[]>;
  /** One command to the long-lived `nft -i` (set elements per flow). */
  nftLater: (cmd: string) => void;
  nftShell: ReturnType<typeof spawn> | null;
  event: (action: RouterEvent['action'], p: DecodedPacket, name: string | null) => void;
  onEvent: (e: RouterEvent) => void;
}

const nft = (script: string) => execFileSync('nft', ['-f', '-'], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });

export function startRouterCensor(
  cfg: RouterConfig,
  onEvent: (e: RouterEvent) => void,
): { close(): void; startTimeline(startedAt: number): void } {
  const c = routerCensor(cfg, onEvent);
  installNftables(c);
  const onTcp = tcpHandler(c);
  const esniBlocks = esniBlocker(c);
  const onDivertedHello = divertedHelloHandler(c, esniBlocks);
  const onDns = dnsHandler(c);
  const fromClient = (f: CapturedFrame) => {
    const p = f.packet;
    // Only what arrives from the client side; our own injections leave through this device too.
    if (p.dstMac !== c.leftMac || p.srcMac === c.leftMac) return;
    if (c.esni && p.tcp && divertedHello(p.ip.ttl, p.tcp.payload) && onDivertedHello(f)) return;
    if (p.udp && p.udp.dstPort === 53) onDns(p);
    else if (p.tcp) onTcp(p, esniBlocks);
  };
  const fromInternet = (f: CapturedFrame) => {
    if (f.packet.dstMac === c.rightMac && f.packet.srcMac !== c.rightMac) c.rightNeighbor = f.packet.srcMac;
  };
  // Only what a censor reads: DNS queries, and TCP segments that open, close or carry data (the
  // client's pure ACKs of a large download are most of the traffic and tell the censor nothing).
  c.leftCap = openCapture(
    'left',
    'udp dst port 53 or (tcp and (tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) > 0))',
    fromClient,
  );
  // The internet-side neighbour's MAC (for the resets to the server), from its SYN-ACKs only.
  c.rightCap = openCapture('right', 'tcp[tcpflags] & tcp-syn != 0', fromInternet);
  return {
    startTimeline: (startedAt: number) => followTimeline(c, startedAt),
    close() {
      c.timers.clear();
      c.leftCap?.close();
      c.rightCap?.close();
      c.nftShell?.stdin?.end();
      c.nftShell?.kill();
      c.leftCap = c.rightCap = null;
    },
  };
}

/** The censor's decisions (the loopback lab's Policy) and the state its packet handlers share. */
function routerCensor(cfg: RouterConfig, onEvent: (e: RouterEvent) => void): RouterCensor {
  const spec = cfg.scenario.censors[cfg.censorIndex];
  if (!spec) throw new Error(`no censor #${cfg.censorIndex} in the scenario`);
  const censorAt = (t: number): Scenario => {
    const s = scenarioAt(cfg.scenario, t);
    return { ...s, censors: [s.censors[cfg.censorIndex]!] };
  };
  const policy = new Policy(cfg.scenario.timeline ? censorAt(0) : { ...cfg.scenario, censors: [spec] });
  const censor = policy.censors[0]!;
  const rng = prng((cfg.scenario.seed ^ (0x9e3779b9 * (cfg.censorIndex + 1))) >>> 0);
  const namesOf = new Map<string, string[]>();
  for (const [name, addresses] of Object.entries(cfg.siteAddresses))
    for (const a of addresses) (namesOf.get(a) ?? namesOf.set(a, []).get(a)!).push(name);
  return {
    cfg,
    spec,
    censorAt,
    policy,
    censor,
    fingerprint: censor.sni?.fingerprint ?? DEFAULT_FINGERPRINT[censor.layer],
    rng,
    injector: poolInjector(policy, WORLD_NET, rng),
    residual: new ResidualTable(),
    flows: new Map(),
    timers: new Timers(),
    leftMac: deviceMac('left'),
    rightMac: deviceMac('right'),
    rightNeighbor: null,
    leftCap: null,
    rightCap: null,
    fet: spec.fet ? new FetCensor({ ...cfg.scenario, censors: [spec] }) : null,
    fetResidualS: spec.fet?.residual_s ?? DEFAULT_FET_RESIDUAL_S,
    esni: spec.esni_drop ? new EsniCensor({ ...cfg.scenario, censors: [spec] }) : null,
    namesOf,
    nftLater: () => undefined,
    nftShell: null,
    onEvent,
    event: (action, p, name) =>
      onEvent({
        t: Date.now(),
        censor: censor.name,
        action,
        client: `${p.ip.src}:${p.tcp?.srcPort ?? p.udp?.srcPort}`,
        server: `${p.ip.dst}:${p.tcp?.dstPort ?? p.udp?.dstPort}`,
        name,
      }),
  };
}

/**
 * The in-path elements of the censor as of `policy` now: the addresses it null-routes and refuses
 * (sites named by domain, or lab addresses), and its throttle rule (none: empty chain).
 */
function inPathScript(c: RouterCensor): string {
  const censor = c.policy.censors[0]!;
  const inPath = (set: Set<string>, acts: (domain: string, a: string[]) => unknown) =>
    [...set].flatMap((x) =>
      /^\d+\.\d+\.\d+\.\d+$/.test(x) ? [x] : acts(x, c.cfg.siteAddresses[x] ?? []) ? (c.cfg.siteAddresses[x] ?? []) : [],
    );
  const drop = [...new Set(inPath(censor.nullRoute, (d, a) => c.policy.nullRouter(d, a)))];
  const reject = [...new Set(inPath(censor.reject, (d, a) => c.policy.rejecter(d, a)))];
  const lines = [`flush set ip ${TABLE} null_routed`, `flush set ip ${TABLE} rejected`, `flush chain ip ${TABLE} throttle`];
  if (drop.length) lines.push(`add element ip ${TABLE} null_routed { ${drop.join(', ')} }`);
  if (reject.length) lines.push(`add element ip ${TABLE} rejected { ${reject.join(', ')} }`);
  // Throttling is per flow: a flow enters `throttled` once its SNI or Host matched, and each
  // throttled flow gets its own token bucket (the dynamic set `buckets`) on the server->client side.
  if (censor.throttle) {
    const bytesPerS = Math.max(1, Math.round((censor.throttle.kbps * 1000) / 8));
    const key = 'ip saddr . ip daddr . tcp sport . tcp dport';
    lines.push(
      `add rule ip ${TABLE} throttle ${key} @throttled update @buckets { ${key} limit rate over ${bytesPerS} bytes/second burst 1500 bytes } drop`,
    );
  }
  return lines.join('\n') + '\n';
}

/**
 * The nftables table of this router: what the real censors do in path (null routes, refused
 * connections, throttling: named sets and a chain the timeline rewrites), FET's and ESNI's timed
 * sets, and the long-lived `nft -i` that adds elements per flow.
 */
function installNftables(c: RouterCensor): void {
  const { cfg } = c;
  const flow = 'ipv4_addr . ipv4_addr . inet_service . inet_service';
  const sets = [
    'set null_routed { type ipv4_addr; }',
    'set rejected { type ipv4_addr; }',
    `set throttled { type ${flow}; flags timeout; timeout 10m; }`,
    `set buckets { type ${flow}; flags dynamic,timeout; timeout 10m; }`,
  ];
  const rules = [
    `ip saddr ${cfg.clientNet} ip daddr @null_routed tcp flags & (syn | ack) == syn drop`,
    `ip saddr ${cfg.clientNet} ip daddr @rejected tcp flags & (syn | ack) == syn reject with tcp reset`,
    'jump throttle',
  ];
  // The FET censor (censors.md section 7) drops in path: a blocked flow's further packets (both
  // directions), then every flow on (client, server, port) for residual_s, SYNs included. The
  // decision is the loopback lab's (FetCensor); the kernel enforces it through two timed sets.
  if (c.fet) {
    sets.push('set fet_flows { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags timeout; timeout 10m; }');
    sets.push('set fet_residual { type ipv4_addr . ipv4_addr . inet_service; flags timeout; }');
    rules.push(
      'ip saddr . tcp sport . ip daddr . tcp dport @fet_flows drop',
      'ip daddr . tcp dport . ip saddr . tcp sport @fet_flows drop',
      'ip saddr . ip daddr . tcp dport @fet_residual drop',
      'ip daddr . ip saddr . tcp sport @fet_residual drop',
    );
  }
  // The ESNI drop (censors.md section 3) is in path, client to server only, on every port. The
  // kernel diverts every segment that starts a ClientHello (the xtables `bpf` match runs esni.ts's
  // program: dropped in forwarding, read by our capture all the same); onHello() re-sends the ones
  // that pass and, for a blocked one, puts the flow and its residual (client, server, port) into
  // two timed sets that drop the rest, SYNs included.
  if (c.esni) {
    sets.push('set esni_flows { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags timeout; timeout 10m; }');
    sets.push('set esni_residual { type ipv4_addr . ipv4_addr . inet_service; flags timeout; }');
    rules.push('ip saddr . tcp sport . ip daddr . tcp dport @esni_flows drop', 'ip saddr . ip daddr . tcp dport @esni_residual drop');
    execFileSync(
      'iptables',
      ['-w', '-A', 'FORWARD', '-i', 'left', '-p', 'tcp', '-m', 'bpf', '--bytecode', helloDivertBpf(), '-j', 'DROP'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  }
  nft(
    `table ip ${TABLE} {\n ${sets.join('\n ')}\n chain throttle {\n }\n chain pass {\n  type filter hook forward priority 0; policy accept;\n  ${rules.join('\n  ')}\n }\n}\n`,
  );
  nft(inPathScript(c));
  // Elements are added through one long-lived `nft -i`: a process start per flow would come later
  // than the genuine reply on a loaded machine.
  const nftShell = spawn('nft', ['-i'], { stdio: ['pipe', 'ignore', 'ignore'] });
  nftShell.stdin.on('error', () => undefined);
  c.nftShell = nftShell;
  c.nftLater = (cmd: string) => nftShell.stdin.write(`${cmd}\n`);
}

/**
 * The timeline, from lab time 0 (`startedAt`, epoch ms, sent once every part is up): at each time
 * the decisions' rule sets are swapped (DNS, SNI, HTTP, block page) and the in-path nftables
 * elements rewritten in one atomic `nft -f` (null routes, refused connections, the throttle rule).
 */
function followTimeline(c: RouterCensor, startedAt: number): void {
  for (const at of timelineTimes(c.cfg.scenario)) {
    if (at <= 0) continue;
    c.timers.later(Math.max(0, startedAt + at * 1000 - Date.now()), () => {
      c.policy.update(c.censorAt(at));
      nft(inPathScript(c));
      c.onEvent({ t: Date.now(), censor: c.censor.name, action: 'timeline', client: '', server: '', name: `lab time ${at} s` });
    });
  }
}

const toClient = (c: RouterCensor, p: DecodedPacket, ipPackets: Buffer[]) => {
  for (const ip of ipPackets) c.leftCap?.send(frame({ srcMac: c.leftMac, dstMac: p.srcMac }, ip));
};
const toServer = (c: RouterCensor, ipPackets: Buffer[]) => {
  if (!c.rightNeighbor) return; // nothing seen from the internet side yet: the server-side RST is skipped
  for (const ip of ipPackets) c.rightCap?.send(frame({ srcMac: c.rightMac, dstMac: c.rightNeighbor }, ip));
};
const reset = (c: RouterCensor, p: DecodedPacket, latencyMs: number, close: 'reset' | 'eof') =>
  c.timers.later(latencyMs, () => {
    const f = forgeReset(p, c.fingerprint, c.cfg.hopsBack, c.rng, close);
    toClient(c, p, f.toClient);
    toServer(c, f.toServer);
  });
const flowOf = (c: RouterCensor, p: DecodedPacket): Flow | undefined =>
  c.flows.get(`${p.ip.src}:${p.tcp!.srcPort}>${p.ip.dst}:${p.tcp!.dstPort}`);

/** Carries out a decision on a flow's segment; true when the censor acted. */
function apply(c: RouterCensor, p: DecodedPacket, a: Action, name: string | null, midConnection: boolean): boolean {
  const tcp = p.tcp!;
  switch (a.kind) {
    case 'pass':
      return false;
    case 'reset':
      c.event('reset', p, name);
      c.residual.set(p.ip.src, p.ip.dst, tcp.dstPort, a.residualS, a.latencyMs, c.censor.name, a.close);
      reset(c, p, a.latencyMs, a.close);
      return true;
    case 'blockpage':
      if (midConnection) return false;
      c.event('blockpage', p, name);
      toClient(c, p, forgeResponse(p, blockPage(a.title, a.bytes), c.cfg.hopsBack));
      return true;
    case 'throttle': {
      if (midConnection) return false;
      c.event('throttle', p, name);
      c.nftLater(`add element ip ${TABLE} throttled { ${p.ip.dst} . ${p.ip.src} . ${tcp.dstPort} . ${tcp.srcPort} }`);
      return true;
    }
  }
}

function dnsHandler(c: RouterCensor): (p: DecodedPacket) => void {
  return (p) => {
    const udp = p.udp!;
    let q: dnsPacket.DecodedPacket;
    try {
      q = dnsPacket.decode(udp.payload);
    } catch {
      return; // hostile or truncated: not a query the injector can read
    }
    if (q.type !== 'query' || q.questions?.length !== 1) return;
    const forged = c.injector.forge(q.questions[0]!.name);
    if (!forged) return;
    c.event('dns', p, q.questions[0]!.name);
    forged.addresses.forEach((a, k) => {
      const reply = forgedReply(udp.payload, a, forged.ttls[k] ?? 60);
      if (!reply) return;
      const behaviour = DNS_INJECTOR_IP_TTL[k % DNS_INJECTOR_IP_TTL.length]!;
      const ttl = behaviour === 'copy' ? p.ip.ttl : Math.min(255, behaviour);
      const ip = encodeUdpPacket(
        { src: p.ip.dst, dst: p.ip.src, ttl, id: Math.floor(c.rng() * 65536), df: false },
        { srcPort: udp.dstPort, dstPort: udp.srcPort, payload: reply },
      );
      toClient(c, p, [ip]);
    });
  };
}

/** SYN opens a flow, RST/FIN closes it; true when the segment needs nothing more. */
function trackFlow(c: RouterCensor, p: DecodedPacket): boolean {
  const tcp = p.tcp!;
  const key = `${p.ip.src}:${tcp.srcPort}>${p.ip.dst}:${tcp.dstPort}`;
  if (tcp.flags & TCP_SYN && !(tcp.flags & TCP_ACK)) {
    if (c.flows.size >= MAX_FLOWS) c.flows.delete(c.flows.keys().next().value!);
    c.flows.set(key, {
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
    return true;
  }
  if (tcp.flags & (TCP_RST | TCP_FIN)) {
    c.flows.delete(key);
    return true;
  }
  return tcp.payload.length === 0;
}

/** FET reads only the client's first data packet [FET]; true when it dropped the flow. */
function fetDrops(c: RouterCensor, p: DecodedPacket, flow: Flow | undefined): boolean {
  if (!c.fet || !flow || flow.fetSeen) return false;
  const tcp = p.tcp!;
  flow.fetSeen = true;
  const d = c.fet.decide(
    { client: p.ip.src, server: p.ip.dst, port: tcp.dstPort, serverNames: c.namesOf.get(p.ip.dst) ?? [] },
    tcp.payload,
    Date.now(),
  );
  if (d.kind !== 'drop') return false;
  flow.fired = true;
  c.event('fet', p, d.why);
  c.nftLater(`add element ip ${TABLE} fet_flows { ${p.ip.src} . ${tcp.srcPort} . ${p.ip.dst} . ${tcp.dstPort} }`);
  if (d.why === 'blocked' && c.fetResidualS > 0)
    c.nftLater(`add element ip ${TABLE} fet_residual { ${p.ip.src} . ${p.ip.dst} . ${tcp.dstPort} timeout ${c.fetResidualS}s }`);
  return true;
}

/**
 * A ClickHello split over segments: the ESNI censor reassembles it, and a blocked one loses the
 * rest of its flow (its first segment was diverted and judged incomplete, so it went on).
 */
function esniReassembles(c: RouterCensor, p: DecodedPacket, flow: Flow | undefined, esniBlocks: EsniBlocks): boolean {
  const tcp = p.tcp!;
  if (!c.esni || !flow || flow.esniDone || flow.fired || divertedHello(p.ip.ttl, tcp.payload)) return false;
  flow.esniBuf = Buffer.concat([flow.esniBuf, tcp.payload]);
  const peek = peekClientHello(flow.esniBuf);
  if (peek.kind === 'incomplete' && flow.esniBuf.length < MAX_STREAM) return false;
  flow.esniDone = true;
  flow.esniBuf = Buffer.alloc(0);
  return peek.kind === 'hello' && esniBlocks(p, peek.extensions, peek.sni);
}

/** Henan [SP25]: no handshake needed, no reassembly, and only a TCP header of exactly 20 bytes. */
function inspectSegment(c: RouterCensor, p: DecodedPacket, flow: Flow | undefined): void {
  const tcp = p.tcp!;
  if (tcp.headerLength !== 20) return;
  const data = tcp.payload;
  if (data[0] === 0x16) {
    const peek = peekClientHello(data);
    if (peek.kind === 'hello' && !peek.fragmented && apply(c, p, c.policy.onClientHello(peek.sni), peek.sni, false) && flow)
      flow.fired = true;
    return;
  }
  const head = parseHttpHead(data);
  if (typeof head === 'object' && apply(c, p, c.policy.onHttpRequest(head.host, head.path), head.host, false) && flow) flow.fired = true;
}

/** HTTP requests found in the client's stream, each judged; true when one was acted on. */
function httpRequestsBlocked(c: RouterCensor, p: DecodedPacket, flow: Flow, data: Buffer): boolean {
  for (const h of flow.http!.push(data)) {
    flow.requests++;
    if (apply(c, p, c.policy.onHttpRequest(h.host, h.path), h.host, flow.requests > 1)) {
      flow.fired = true;
      return true;
    }
  }
  return false;
}

/** The GFW needs the client's SYN and reassembles the client's TCP stream [SP25]. */
function inspectStream(c: RouterCensor, p: DecodedPacket, flow: Flow | undefined): void {
  const tcp = p.tcp!;
  if (!flow?.synSeen) return;
  if (tcp.seq !== flow.next) return; // a retransmission or out of order: the stream so far decides
  flow.next = (flow.next + tcp.payload.length) >>> 0;
  if (flow.http) {
    httpRequestsBlocked(c, p, flow, tcp.payload);
    return;
  }
  if (flow.tlsDone) return;
  flow.buf = Buffer.concat([flow.buf, tcp.payload]);
  if (flow.buf[0] === 0x16) {
    const peek = peekClientHello(flow.buf);
    if (peek.kind === 'incomplete' && flow.buf.length < MAX_STREAM) return;
    flow.tlsDone = true;
    if (peek.kind === 'hello' && apply(c, p, c.policy.onClientHello(peek.sni), peek.sni, false)) flow.fired = true;
    flow.buf = Buffer.alloc(0);
    return;
  }
  flow.http = new HttpRequestScanner();
  const pending = flow.buf;
  flow.buf = Buffer.alloc(0);
  httpRequestsBlocked(c, p, flow, pending);
}

function tcpHandler(c: RouterCensor): (p: DecodedPacket, esniBlocks: EsniBlocks) => void {
  return (p, esniBlocks) => {
    if (trackFlow(c, p)) return;
    const tcp = p.tcp!;
    const flow = flowOf(c, p);
    if (fetDrops(c, p, flow)) return;
    if (esniReassembles(c, p, flow, esniBlocks)) return;
    if (flow?.fired) return;
    const res = c.residual.get(p.ip.src, p.ip.dst, tcp.dstPort);
    if (res) {
      if (flow) flow.fired = true;
      c.event('residual', p, null);
      reset(c, p, res.latencyMs, res.close);
      return;
    }
    if (!c.censor.tcpReassembly) inspectSegment(c, p, flow);
    else inspectStream(c, p, flow);
  };
}

type EsniBlocks = (p: DecodedPacket, extensions: number[], sni: string | null) => boolean;

/** The ESNI censor's verdict on a flow's ClientHello; true when it blocked the flow. */
function esniBlocker(c: RouterCensor): EsniBlocks {
  return (p, extensions, sni) => {
    const tcp = p.tcp!;
    const d = c.esni!.decide({ client: p.ip.src, server: p.ip.dst, port: tcp.dstPort }, extensions, Date.now());
    if (d.kind === 'pass') return false;
    const flow = flowOf(c, p);
    if (flow) flow.fired = flow.esniDone = true;
    c.event('esni', p, sni);
    c.nftLater(`add element ip ${TABLE} esni_flows { ${p.ip.src} . ${tcp.srcPort} . ${p.ip.dst} . ${tcp.dstPort} }`);
    if (d.residualS)
      c.nftLater(`add element ip ${TABLE} esni_residual { ${p.ip.src} . ${p.ip.dst} . ${tcp.dstPort} timeout ${d.residualS}s }`);
    return true;
  };
}

/**
 * A segment the kernel diverted (it starts a ClientHello): re-sent towards the server as the
 * kernel would have forwarded it (TTL - 1), unless its ClientHello is blocked. True: dropped.
 */
function divertedHelloHandler(c: RouterCensor, esniBlocks: EsniBlocks): (f: CapturedFrame) => boolean {
  return (f) => {
    const p = f.packet;
    const flow = flowOf(c, p);
    const peek = peekClientHello(p.tcp!.payload);
    if (flow?.esniDone && flow.fired) return true; // a retransmission of a blocked hello
    if (peek.kind === 'hello') {
      if (flow) flow.esniDone = true;
      if (esniBlocks(p, peek.extensions, peek.sni)) return true;
    } else if (peek.kind === 'incomplete' && flow && !flow.esniDone) {
      flow.esniBuf = Buffer.from(p.tcp!.payload); // the rest comes in segments the kernel forwards
    }
    if (!c.rightNeighbor) return true; // nothing seen from the internet side yet: lost, as a queue drop
    const ip = forwardedTcpCopy(f.raw.subarray(ETH_HEADER));
    if (ip) c.rightCap?.send(frame({ srcMac: c.rightMac, dstMac: c.rightNeighbor }, ip));
    return false;
  };
}
