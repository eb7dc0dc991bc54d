// Runs a scenario's world on loopback: every site on its own lab address 127.R.x.y behind a censor
// front (http and https), the genuine origin servers, the ISP resolver (behind the censors, with
// their DNS injectors and its own ISP behaviours), a public resolver and a test helper outside the
// censors, and the nftables null routes. One lab owns one /16 of 127.0.0.0/8 (127.R.0.0/16):
//   127.R.0.2 ISP resolver, .0.3 public resolver, .0.4 test helper, .0.5 origin servers,
//   .0.6 the ISP's transparent proxy, .0.7 its TLS-intercepting box, .0.8 a silent DNS address (only injectors answer),
//   .0.9 the ISP resolver's ghost address (resolvers.isp.ghost; nothing listens there),
//   127.R.1.1 .. 127.R.99.250 sites, 127.R.100.1 .. forged DNS pool (nothing listens there),
//   127.R.200.1 .. 127.R.254.250 client addresses (`lab eval` measures each target from its own,
//   so that residual blocking left by one target does not leak into the next).
import { prng, scenarioAt, timelineTimes, type Scenario, type SiteSpec } from '../model/index.js';
import { createCA, startTestHelper, type CA, type ProbeOptions } from '../probe/index.js';
import { startResolver, type DnsAnswerPlan, type Injector, type RunningResolver } from './dns.js';
import { FetCensor } from './fet.js';
import { ResidualTable, startFront, type FrontEvent, type RunningFront } from './front.js';
import { installNullRoute, nftAvailable, sweepStaleTables, type NullRoute } from './nft.js';
import { startOrigin, type Origin } from './origin.js';
import { Policy } from './policy.js';
import { RuleSet } from './rules.js';
import { startServiceFront } from './service.js';
import { scenarioTargets, TruthModel, type Truth } from './truth.js';

export interface LabOptions {
  /** Second octet R of the lab's 127.R.0.0/16; random free one when absent. */
  base?: number;
  /** Serve on 53/80/443 (default when root) instead of ephemeral ports. */
  standardPorts?: boolean;
  /** Port of both resolvers (default 53 with standard ports, else ephemeral). */
  dnsPort?: number;
  /** Every censor action, for `lab up` logs and tests. */
  log?: (e: FrontEvent) => void;
  /**
   * netns mode's world (src/lab/netns/): the lab's /16 (e.g. "198.19", inside the internet
   * namespace) instead of 127.R; the censors act on path in the routers, so the world's fronts,
   * resolvers and null routes apply none of them (the ground truth still counts them all).
   */
  world?: { net: LabNet; genuineDelayMs: number };
  /** Timelines: called when the censors' rules change at lab time `at` (seconds), with the scenario as it now stands. */
  onTimeline?: (at: number, now: Scenario) => void;
  /** Follow the timeline as lab time passes (default true); false holds the rules of lab time 0 (`lab eval` scores that snapshot). */
  followTimeline?: boolean;
}

export interface LabSite {
  domain: string;
  address: string;
  httpPort: number | null;
  httpsPort: number | null;
}

export interface LabTarget {
  /** The URL as the scenario wrote it. */
  url: string;
  /** The URL to measure (carries the lab port when it is not the default one). */
  dialUrl: string;
  truth: Truth;
}

export interface LabService {
  name: string;
  kind: 'sink' | 'echo' | 'forward';
  address: string;
  port: number;
}

export interface Lab {
  scenario: Scenario;
  range: string;
  resolver: string;
  publicResolver: string;
  /** ip:port where no resolver runs but the DNS injectors still answer (injection scans). */
  silentDns: string;
  helperUrl: string | null;
  ca: CA;
  sites: LabSite[];
  targets: LabTarget[];
  /** Mechanisms this lab could not emulate (e.g. null routing without root), in plain words. */
  warnings: string[];
  residual: ResidualTable;
  /** Plain TCP services (world.services) with the address and port their front listens on. */
  services: LabService[];
  /** The fully-encrypted-traffic censor's state (counts, residual). */
  fet: FetCensor;
  /** When the lab came up (epoch ms): lab time 0 of the scenario's timeline. */
  startedAt: number;
  /** The targets' truth at lab time `t` seconds (the timeline applied up to t). */
  truthAt(t: number): Array<{ url: string; truth: Truth }>;
  /** A client source address inside the lab range, the i-th of 13,750. */
  clientAddress(i: number): string;
  stats(): { queries: number; forged: number };
  /** Probe options for measuring through this lab (lab mode). */
  probeOptions(extra?: Partial<ProbeOptions>): ProbeOptions;
  close(): Promise<void>;
}

const MAX_SITES = 99 * 250;
/**
 * The ISP resolver's bogon answer. Safety: field bogons are private addresses (10.10.34.35 in
 * OONI's QA), but the lab never hands out an address off loopback, because a probe that is not
 * wallscope's (no --allow-net) would dial it. 127.0.0.2 is a bogon too, outside the lab range.
 */
export const BOGON_ANSWER = '127.0.0.2';
let swept = false;

/** The lab's /16 as its first two octets: "127.R" on loopback, "198.19" in netns mode. */
export type LabNet = string;
export function loopbackNet(base: number): LabNet {
  return `127.${base}`;
}
export function siteAddress(net: LabNet, i: number): string {
  return `${net}.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}
export function clientAddress(net: LabNet, i: number): string {
  const k = i % (55 * 250);
  return `${net}.${200 + Math.floor(k / 250)}.${1 + (k % 250)}`;
}
export function forgedAddress(net: LabNet, j: number): string {
  return `${net}.${100 + Math.floor(j / 250)}.${1 + (j % 250)}`;
}

/**
 * The DNS injectors of the censors that match a name: each walks the (remapped) forged pool
 * cyclically, as WB's injector 3 does, and draws its answer TTL from the censor's list. One
 * implementation for the loopback lab's resolver and the netns lab's on-path routers.
 */
export function poolInjector(policy: Policy, net: LabNet, rng: () => number): Injector {
  const poolCursor = new Map<string, number>();
  return {
    forge(qname) {
      const name = qname.toLowerCase().replace(/\.$/, '');
      const cs = policy.dnsInjectors(name);
      if (!cs.length) return null;
      const addresses: string[] = [];
      const ttls: number[] = [];
      let leadMs = 0;
      for (const c of cs) {
        const d = c.dns!;
        for (let k = 0; k < d.injectors; k++) {
          const key = `${c.name}#${k}`;
          const j = ((poolCursor.get(key) ?? k * 7) % d.pool.length) >>> 0;
          poolCursor.set(key, j + 1);
          addresses.push(forgedAddress(net, j));
          ttls.push(d.ttls[Math.floor(rng() * d.ttls.length)]!);
        }
        leadMs = Math.max(leadMs, d.leadMs);
      }
      return { addresses, ttls, leadMs };
    },
  };
}

export class LabError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'LabError';
  }
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export async function startLab(scenario: Scenario, opts: LabOptions = {}): Promise<Lab> {
  if (scenario.world.sites.length > MAX_SITES) throw new LabError(`a loopback lab holds at most ${MAX_SITES} sites`, 'LAB_TOO_BIG');
  // Throws on an unreadable pool, before anything starts. A timeline's entries at 0 hold from the start.
  const policy = new Policy(scenario.timeline ? scenarioAt(scenario, 0) : scenario);
  // Robustness: tables left by a lab that was killed (SIGKILL, power loss) go at the next start.
  if (isRoot() && !swept) {
    swept = true;
    sweepStaleTables();
  }
  const ca = await createCA(`wallscope lab CA (${scenario.name})`);
  const standard = opts.standardPorts ?? isRoot();
  if (opts.world) return startOn(scenario, policy, ca, opts.world.net, standard, opts);
  if (opts.base !== undefined) return startOn(scenario, policy, ca, baseNet(opts.base), standard, opts);
  let lastErr: unknown;
  for (let attempt = 0; attempt < 12; attempt++) {
    const base = 32 + Math.floor(Math.random() * 220);
    try {
      return await startOn(scenario, policy, ca, loopbackNet(base), standard, opts);
    } catch (e) {
      lastErr = e;
      if ((e as LabError).code !== 'LAB_ADDRESS_IN_USE') throw e;
    }
  }
  throw lastErr;
}

function baseNet(base: number): LabNet {
  if (!Number.isInteger(base) || base < 1 || base > 254) throw new LabError(`lab base must be 1..254, got ${base}`, 'LAB_BAD_BASE');
  return loopbackNet(base);
}

async function startOn(scenario: Scenario, truthPolicy: Policy, ca: CA, net: LabNet, standard: boolean, opts: LabOptions): Promise<Lab> {
  // In netns mode the routers censor; the world itself is the uncensored internet.
  const policy = opts.world ? new Policy({ ...scenario, censors: [] }) : truthPolicy;
  const delayMs = opts.world?.genuineDelayMs ?? 0;
  const closers: Array<() => Promise<void> | void> = [];
  const closeAll = async () => {
    while (closers.length) {
      try {
        await closers.pop()!();
      } catch {
        /* keep closing the rest */
      }
    }
  };
  const bind = async <T>(what: string, host: string, port: number, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE')
        throw new LabError(`${what}: port ${port} on ${host} is already taken (another lab on ${net}.0.0/16? try another --base)`, 'LAB_ADDRESS_IN_USE');
      if (code === 'EACCES') throw new LabError(`${what}: no permission to bind ${host}:${port} (ports below 1024 need root)`, 'LAB_NO_PERMISSION');
      if (code === 'EMFILE' || code === 'ENFILE')
        throw new LabError(`${what}: out of file descriptors (each site holds 2 listeners; raise 'ulimit -n' or use fewer sites)`, 'LAB_TOO_MANY_FILES');
      throw e;
    }
  };
  try {
    const warnings: string[] = [];
    const addr = new Map<string, string[]>();
    scenario.world.sites.forEach((s, i) => addr.set(s.domain, s.addresses?.length ? s.addresses : [siteAddress(net, i)]));
    const addressesOf = (d: string) => addr.get(d) ?? [];
    const sitesByName = new Map(scenario.world.sites.map((s) => [s.domain, s]));
    const truth = new TruthModel(scenario, truthPolicy, addressesOf);

    // Resolvers.
    const ruleCache = new Map<string[] | undefined, RuleSet>();
    const compiled = (rules: string[] | undefined): RuleSet => {
      let r = ruleCache.get(rules);
      if (!r) ruleCache.set(rules, (r = new RuleSet(rules ?? [])));
      return r;
    };
    const rng = prng(scenario.seed);
    const answer = (forIsp: boolean) => (qname: string): DnsAnswerPlan => {
      const name = qname.toLowerCase().replace(/\.$/, '');
      if (forIsp) {
        const isp = truth.ispResolverTruth(name);
        const r = scenario.world.resolvers.isp;
        const hit = (rules: string[] | undefined) => compiled(rules).matches(name);
        if (isp?.mechanism === 'dns.nxdomain' && hit(r.nodata) && !hit(r.nxdomain)) return { rcode: 'NOERROR', addresses: [], ttl: 300 };
        if (isp?.mechanism === 'dns.nxdomain') return { rcode: 'NXDOMAIN', addresses: [], ttl: 0 };
        if (isp?.mechanism === 'dns.servfail') return { rcode: 'SERVFAIL', addresses: [], ttl: 0 };
        if (isp && hit(r.localhost)) return { rcode: 'NOERROR', addresses: ['127.0.0.1'], ttl: 300 };
        if (isp && hit(r.ghost)) return { rcode: 'NOERROR', addresses: [ghostHost], ttl: 300 };
        if (isp) return { rcode: 'NOERROR', addresses: [BOGON_ANSWER], ttl: 300 };
        if (sitesByName.has(name) && hit(r.proxy)) return { rcode: 'NOERROR', addresses: [proxyHost], ttl: 300 };
        if (sitesByName.has(name) && hit(r.mitm)) return { rcode: 'NOERROR', addresses: [mitmHost], ttl: 300 };
      }
      const site = sitesByName.get(name);
      if (!site || site.down === 'nxdomain') return { rcode: 'NXDOMAIN', addresses: [], ttl: 0 };
      if (site.down === 'noaddrs') return { rcode: 'NOERROR', addresses: [], ttl: 300 };
      if (site.down === 'localhost') return { rcode: 'NOERROR', addresses: ['127.0.0.1'], ttl: 300 };
      return { rcode: 'NOERROR', addresses: addressesOf(name), ttl: 300 };
    };
    const injector = poolInjector(policy, net, rng);
    const proxyHost = `${net}.0.6`;
    const mitmHost = `${net}.0.7`;
    // Ghost DNS blocking (resolvers.isp.ghost): the ISP resolver answers this address; nothing listens on it.
    const ghostHost = `${net}.0.9`;
    const dnsPort = opts.dnsPort ?? (standard ? 53 : 0);
    const ispHost = `${net}.0.2`;
    const pubHost = `${net}.0.3`;
    const isp: RunningResolver = await bind('ISP resolver', ispHost, dnsPort, () => startResolver({ host: ispHost, port: dnsPort, answer: answer(true), injector, delayMs }));
    closers.push(() => isp.close());
    const pub: RunningResolver = await bind('public resolver', pubHost, dnsPort, () => startResolver({ host: pubHost, port: dnsPort, answer: answer(false), delayMs }));
    closers.push(() => pub.close());
    // An address with no DNS server behind the censors: only the injectors answer there, which is
    // how GFWatch-style injection scans measure (censors.md section 1).
    const silentHost = `${net}.0.8`;
    const silent: RunningResolver = await bind('silent DNS address', silentHost, dnsPort, () => startResolver({ host: silentHost, port: dnsPort, answer: () => null, injector }));
    closers.push(() => silent.close());

    // Origins and fronts.
    const originHost = `${net}.0.5`;
    // Redirects to the lab's own sites carry the lab's ports (ephemeral ones included).
    const sites: LabSite[] = [];
    const rewriteLocation = (location: string): string => {
      let u: URL;
      try {
        u = new URL(location);
      } catch {
        return location; // a broken Location stays broken
      }
      const s = sites.find((x) => x.domain === u.hostname.toLowerCase());
      const def = u.protocol === 'https:' ? 443 : 80;
      const port = s ? (u.protocol === 'https:' ? s.httpsPort : s.httpPort) : null;
      if (port !== null && port !== def && (u.port === '' || Number(u.port) === def)) u.port = String(port);
      return u.toString();
    };
    const helperHost = `${net}.0.4`;
    const exempt = new Set([helperHost]);
    const origin: Origin = await bind('origin servers', originHost, 0, () => startOrigin({ host: originHost, ca, sites: scenario.world.sites, rewriteLocation, exempt }));
    closers.push(() => origin.close());
    const residual = new ResidualTable();
    // In netns mode the routers run the FET censor on the packets; the world applies none.
    const fet = new FetCensor(policy.scenario);
    const fronts: RunningFront[] = [];
    closers.push(async () => {
      await Promise.all(fronts.map((f) => f.close()));
    });
    const startOne = async (site: SiteSpec, address: string, scheme: 'http' | 'https', want: number, via: Origin = origin): Promise<number | null> => {
      if (site.down === 'refused' || site.down === 'nxdomain' || site.down === 'localhost') return want || null;
      const f = await bind(`front of ${site.domain} (${scheme})`, address, want, () =>
        startFront({
          host: address,
          port: want,
          scheme,
          site,
          origin: { host: via.host, port: scheme === 'http' ? via.httpPort : via.httpsPort },
          policy,
          residual,
          exempt,
          fet,
          log: opts.log,
          responseDelayMs: delayMs,
        }),
      );
      fronts.push(f);
      return f.port;
    };
    // Bounded parallelism: thousands of listeners, started a batch at a time.
    const all = scenario.world.sites;
    for (let i = 0; i < all.length; i += 64) {
      const batch = all.slice(i, i + 64);
      const got = await Promise.all(
        batch.map(async (site) => {
          const address = addressesOf(site.domain)[0]!;
          const httpPort = site.http === false ? null : await startOne(site, address, 'http', standard ? 80 : 0);
          const httpsPort = site.https === false ? null : await startOne(site, address, 'https', standard ? 443 : 0);
          return { domain: site.domain, address, httpPort, httpsPort };
        }),
      );
      sites.push(...got);
    }
    // Extra addresses of multi-address sites share the first one's ports only in standard mode.
    if (standard)
      for (const site of all)
        for (const a of addressesOf(site.domain).slice(1)) {
          if (site.http !== false) await startOne(site, a, 'http', 80);
          if (site.https !== false) await startOne(site, a, 'https', 443);
        }

    // The ISP's transparent proxy (resolvers.isp.proxy) and its TLS-intercepting box
    // (resolvers.isp.mitm): one front per port of the sites they serve, on the path like any other
    // (the censors still see their traffic). The proxy serves the genuine sites; the MITM box serves
    // them over HTTPS with certificates from a CA the probe does not trust.
    const boxes: Array<[string[] | undefined, string, () => Promise<Origin>]> = [
      [scenario.world.resolvers.isp.proxy, proxyHost, async () => origin],
      [
        scenario.world.resolvers.isp.mitm,
        mitmHost,
        async () => {
          const o = await startOrigin({ host: originHost, ca, sites: scenario.world.sites.map((s) => ({ ...s, cert: 'untrusted' as const, redirect: undefined })), rewriteLocation, exempt });
          closers.push(() => o.close());
          return o;
        },
      ],
    ];
    for (const [rules, host, originOf] of boxes) {
      const matched = new RuleSet(rules ?? []);
      if (matched.empty) continue;
      const via = await originOf();
      const ports = new Set<string>();
      for (const s of sites) {
        if (!matched.matches(s.domain)) continue;
        for (const [scheme, port] of [['http', s.httpPort], ['https', s.httpsPort]] as const) {
          if (port === null || ports.has(`${scheme}:${port}`)) continue;
          ports.add(`${scheme}:${port}`);
          await startOne({ domain: s.domain, captcha: sitesByName.get(s.domain)?.captcha }, host, scheme, port, via);
        }
      }
    }

    // Plain TCP services (world.services), behind the censors like the sites; from 127.R.0.16.
    const services: LabService[] = [];
    for (const [i, svc] of (scenario.world.services ?? []).entries()) {
      const address = svc.address ?? `${net}.0.${16 + i}`;
      const f = await bind(`service ${svc.name}`, address, svc.port ?? 0, () =>
        startServiceFront({ host: address, port: svc.port ?? 0, service: svc, fet, exempt, log: opts.log }));
      fronts.push(f);
      services.push({ name: svc.name, kind: svc.kind, address, port: f.port });
    }

    // Null routes (installed again when a timeline changes them).
    let routes: NullRoute | null = null;
    closers.push(() => routes?.remove());
    const installRoutes = (): void => {
      const dropProbe: string[] = [];
      const dropAll: string[] = [];
      const rejectProbe: string[] = [];
      for (const site of all) {
        const a = addressesOf(site.domain);
        if (site.down === 'timeout') dropAll.push(...a);
        else if (policy.nullRouter(site.domain, a)) dropProbe.push(...a);
        else if (policy.rejecter(site.domain, a)) rejectProbe.push(...a);
      }
      for (const svc of services) {
        if (policy.nullRouter(svc.name, [svc.address])) dropProbe.push(svc.address);
        else if (policy.rejecter(svc.name, [svc.address])) rejectProbe.push(svc.address);
      }
      routes?.remove();
      routes = null;
      if (dropProbe.length || dropAll.length || rejectProbe.length) {
        const nft = nftAvailable();
        if (nft.ok) routes = installNullRoute(dropProbe, dropAll, [...exempt], rejectProbe, opts.world ? 'input' : 'output');
        else if (!warnings.includes(nft.reason)) warnings.push(nft.reason);
      }
    };
    installRoutes();

    // The test helper, outside the censors: it resolves through the public resolver.
    const range = `${net}.0.0/16`;
    const extraNets = all.flatMap((s) => (s.addresses ?? []).filter((a) => !a.startsWith(`${net}.`)).map((a) => `${a}/32`));
    const allowNet = [range, ...extraNets];
    let helperUrl: string | null = null;
    if (scenario.world.helper) {
      const helperPort = standard ? 80 : 0;
      const helper = await bind('test helper', helperHost, helperPort, () =>
        startTestHelper({ host: helperHost, port: helperPort, resolver: pub.address, ca: [ca.certPem], allowNet, localAddress: helperHost }),
      );
      closers.push(() => helper.close());
      helperUrl = helper.url;
    }

    const byDomain = new Map(sites.map((s) => [s.domain, s]));
    const targets: LabTarget[] = scenarioTargets(scenario).map((t) => {
      const u = new URL(t.url);
      const s = byDomain.get(u.hostname.toLowerCase());
      const defaultPort = u.protocol === 'https:' ? 443 : 80;
      const port = s ? (u.protocol === 'https:' ? s.httpsPort : s.httpPort) : null;
      if (port !== null && port !== defaultPort && (u.port === '' || Number(u.port) === defaultPort)) u.port = String(port);
      return { url: t.url, dialUrl: u.toString(), truth: truth.truthOf(t) };
    });

    // The timeline (loopback mode: in netns mode the routers hold the censors and do not follow it).
    const startedAt = Date.now();
    const timers: NodeJS.Timeout[] = [];
    closers.push(() => timers.forEach((t) => clearTimeout(t)));
    const times = timelineTimes(scenario);
    if (times.length && opts.world) warnings.push('netns mode does not follow the timeline yet: the censors keep the rules of lab time 0');
    else if (times.length && opts.followTimeline !== false) {
      const apply = (at: number) => {
        const now = scenarioAt(scenario, at);
        policy.update(now);
        const nullRouting = (x: Scenario) => JSON.stringify(x.censors.map((c) => [c.null_route ?? [], c.reject ?? []]));
        if (nullRouting(now) !== nullRouting(scenarioAt(scenario, times[times.indexOf(at) - 1] ?? -1))) installRoutes();
        opts.onTimeline?.(at, now);
      };
      for (const at of times) {
        if (at > 0) timers.push(setTimeout(() => apply(at), Math.max(0, startedAt + at * 1000 - Date.now())).unref());
      }
    }
    const truthAt = (t: number) => {
      const s = scenarioAt(scenario, t);
      const model = new TruthModel(s, new Policy(s), addressesOf);
      return scenarioTargets(s).map((x) => ({ url: x.url, truth: model.truthOf(x) }));
    };

    let closed = false;
    return {
      startedAt,
      truthAt,
      scenario,
      range,
      resolver: isp.address,
      publicResolver: pub.address,
      silentDns: silent.address,
      helperUrl,
      ca,
      sites,
      targets,
      warnings,
      residual,
      services,
      fet,
      clientAddress: (i) => clientAddress(net, i),
      stats: () => ({ queries: isp.stats.queries + pub.stats.queries, forged: isp.stats.forged }),
      probeOptions: (extra = {}) => ({ resolver: isp.address, helper: helperUrl ?? undefined, ca: [ca.certPem], allowNet, ...extra }),
      async close() {
        if (closed) return;
        closed = true;
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
