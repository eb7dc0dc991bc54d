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
import { prng, scenarioAt, timelineTimes, type Scenario, type SiteSpec, type TimelineEntry } from '../model/index.js';
import { createCA, startTestHelper, type CA, type ProbeOptions } from '../probe/index.js';
import { startResolver, type DnsAnswerPlan, type Injector, type RunningResolver } from './dns.js';
import { EsniCensor } from './esni.js';
import { FetCensor } from './fet.js';
import { ResidualTable, startFront, type FrontEvent, type RunningFront } from './front.js';
import { installNullRoute, nftAvailable, sweepStaleTables, type NullRoute } from './nft.js';
import { startOrigin, type Origin } from './origin.js';
import { Policy } from './policy.js';
import { RuleSet } from './rules.js';
import { startServiceFront } from './service.js';
import { startPlatform, type RunningPlatform } from './platform.js';
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
  /** The ESNI censor's state (counts, residual). */
  esni: EsniCensor;
  /** The emulated social platform (scenario `platform:`), at 127.R.0.10 unless told otherwise; null without one. */
  platform: RunningPlatform | null;
  /** A client source address inside the lab range, the i-th of 13,750. */
  clientAddress(i: number): string;
  /** DNS counters: the two resolvers', and the silent address's (injection scans) apart. */
  stats(): { queries: number; forged: number; silent: { queries: number; forged: number } };
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
      return { addresses, ttls, leadMs, censors: cs.map((c) => c.name) };
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

/** What the steps of startOn share: the scenario, its policies and addresses, and what to close. */
interface LabBuild {
  scenario: Scenario;
  /** The censors' policy (none in netns mode, where the routers censor). */
  policy: Policy;
  truthPolicy: Policy;
  ca: CA;
  net: LabNet;
  standard: boolean;
  opts: LabOptions;
  /** netns mode: genuine answers leave this late (the distance to the internet). */
  delayMs: number;
  closers: Array<() => Promise<void> | void>;
  warnings: string[];
  addressesOf: (domain: string) => string[];
  sitesByName: Map<string, SiteSpec>;
  truth: TruthModel;
  /** Runs fn, turning bind errors into LabErrors that say what to do. */
  bind: <T>(what: string, host: string, port: number, fn: () => Promise<T>) => Promise<T>;
}

// The lab's fixed addresses on 127.R.0.0/16 (the header comment).
const hostsOf = (net: LabNet) => ({
  isp: `${net}.0.2`,
  pub: `${net}.0.3`,
  helper: `${net}.0.4`,
  origin: `${net}.0.5`,
  proxy: `${net}.0.6`,
  mitm: `${net}.0.7`,
  silent: `${net}.0.8`,
  // Ghost DNS blocking (resolvers.isp.ghost): the ISP resolver answers this address; nothing listens on it.
  ghost: `${net}.0.9`,
});

/**
 * Starts the whole world on `net`, step by step (each step below); on any failure everything
 * started so far is closed again.
 */
async function startOn(scenario: Scenario, truthPolicy: Policy, ca: CA, net: LabNet, standard: boolean, opts: LabOptions): Promise<Lab> {
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
  try {
    const b = labBuild(scenario, truthPolicy, ca, net, standard, opts, closers);
    const dns = await startResolvers(b);
    const world = await startSitesAndFronts(b);
    await startIspBoxes(b, world);
    const services = await startServices(b, world);
    const platform = await startLabPlatform(b);
    const installRoutes = nullRoutesInstaller(b, world, services);
    installRoutes();
    const { allowNet, helperUrl, range } = await startHelper(b, dns.pub);
    const targets = labTargets(b, world.sites);
    const { startedAt, truthAt } = followTimeline(b, installRoutes);
    let closed = false;
    return {
      startedAt,
      truthAt,
      scenario,
      range,
      resolver: dns.isp.address,
      publicResolver: dns.pub.address,
      silentDns: dns.silent.address,
      helperUrl,
      ca,
      sites: world.sites,
      targets,
      warnings: b.warnings,
      residual: world.residual,
      services,
      fet: world.fet,
      esni: world.esni,
      platform,
      clientAddress: (i) => clientAddress(net, i),
      stats: () => ({
        queries: dns.isp.stats.queries + dns.pub.stats.queries,
        forged: dns.isp.stats.forged,
        silent: { queries: dns.silent.stats.queries, forged: dns.silent.stats.forged },
      }),
      probeOptions: (extra = {}) => ({ resolver: dns.isp.address, helper: helperUrl ?? undefined, ca: [ca.certPem], allowNet, ...extra }),
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

function labBuild(
  scenario: Scenario,
  truthPolicy: Policy,
  ca: CA,
  net: LabNet,
  standard: boolean,
  opts: LabOptions,
  closers: LabBuild['closers'],
): LabBuild {
  const addr = new Map<string, string[]>();
  scenario.world.sites.forEach((s, i) => addr.set(s.domain, s.addresses?.length ? s.addresses : [siteAddress(net, i)]));
  const addressesOf = (d: string) => addr.get(d) ?? [];
  const bind = async <T>(what: string, host: string, port: number, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE')
        throw new LabError(
          `${what}: port ${port} on ${host} is already taken (another lab on ${net}.0.0/16? try another --base)`,
          'LAB_ADDRESS_IN_USE',
        );
      if (code === 'EACCES')
        throw new LabError(`${what}: no permission to bind ${host}:${port} (ports below 1024 need root)`, 'LAB_NO_PERMISSION');
      if (code === 'EMFILE' || code === 'ENFILE')
        throw new LabError(
          `${what}: out of file descriptors (each site holds 2 listeners; raise 'ulimit -n' or use fewer sites)`,
          'LAB_TOO_MANY_FILES',
        );
      throw e;
    }
  };
  return {
    scenario,
    // In netns mode the routers censor; the world itself is the uncensored internet.
    policy: opts.world ? new Policy({ ...scenario, censors: [] }) : truthPolicy,
    truthPolicy,
    ca,
    net,
    standard,
    opts,
    delayMs: opts.world?.genuineDelayMs ?? 0,
    closers,
    warnings: [],
    addressesOf,
    sitesByName: new Map(scenario.world.sites.map((s) => [s.domain, s])),
    truth: new TruthModel(scenario, truthPolicy, addressesOf),
    bind,
  };
}

/** What the ISP resolver (forIsp) or the public one answers for a name (the injectors race ahead separately). */
function resolverAnswers(b: LabBuild, forIsp: boolean): (qname: string) => DnsAnswerPlan {
  const { scenario, truth, sitesByName, addressesOf } = b;
  const hosts = hostsOf(b.net);
  const ruleCache = new Map<string[] | undefined, RuleSet>();
  const compiled = (rules: string[] | undefined): RuleSet => {
    let r = ruleCache.get(rules);
    if (!r) ruleCache.set(rules, (r = new RuleSet(rules ?? [])));
    return r;
  };
  return (qname: string): DnsAnswerPlan => {
    const name = qname.toLowerCase().replace(/\.$/, '');
    if (forIsp) {
      const isp = truth.ispResolverTruth(name);
      const r = scenario.world.resolvers.isp;
      const hit = (rules: string[] | undefined) => compiled(rules).matches(name);
      if (isp?.mechanism === 'dns.nxdomain' && hit(r.nodata) && !hit(r.nxdomain)) return { rcode: 'NOERROR', addresses: [], ttl: 300 };
      if (isp?.mechanism === 'dns.nxdomain') return { rcode: 'NXDOMAIN', addresses: [], ttl: 0 };
      if (isp?.mechanism === 'dns.servfail') return { rcode: 'SERVFAIL', addresses: [], ttl: 0 };
      if (isp && hit(r.localhost)) return { rcode: 'NOERROR', addresses: ['127.0.0.1'], ttl: 300 };
      if (isp && hit(r.ghost)) return { rcode: 'NOERROR', addresses: [hosts.ghost], ttl: 300 };
      if (isp) return { rcode: 'NOERROR', addresses: [BOGON_ANSWER], ttl: 300 };
      if (sitesByName.has(name) && hit(r.proxy)) return { rcode: 'NOERROR', addresses: [hosts.proxy], ttl: 300 };
      if (sitesByName.has(name) && hit(r.mitm)) return { rcode: 'NOERROR', addresses: [hosts.mitm], ttl: 300 };
    }
    const site = sitesByName.get(name);
    if (!site || site.down === 'nxdomain') return { rcode: 'NXDOMAIN', addresses: [], ttl: 0 };
    if (site.down === 'noaddrs') return { rcode: 'NOERROR', addresses: [], ttl: 300 };
    if (site.down === 'localhost') return { rcode: 'NOERROR', addresses: ['127.0.0.1'], ttl: 300 };
    return { rcode: 'NOERROR', addresses: addressesOf(name), ttl: 300 };
  };
}

/** The ISP resolver (behind the censors, with their injectors), the public one, and the silent address. */
async function startResolvers(b: LabBuild): Promise<{ isp: RunningResolver; pub: RunningResolver; silent: RunningResolver }> {
  const { bind, closers, delayMs, opts } = b;
  const hosts = hostsOf(b.net);
  const injector = poolInjector(b.policy, b.net, prng(b.scenario.seed));
  const dnsPort = opts.dnsPort ?? (b.standard ? 53 : 0);
  const isp = await bind('ISP resolver', hosts.isp, dnsPort, () =>
    startResolver({ host: hosts.isp, port: dnsPort, answer: resolverAnswers(b, true), injector, delayMs, log: opts.log }),
  );
  closers.push(() => isp.close());
  const pub = await bind('public resolver', hosts.pub, dnsPort, () =>
    startResolver({ host: hosts.pub, port: dnsPort, answer: resolverAnswers(b, false), delayMs }),
  );
  closers.push(() => pub.close());
  // An address with no DNS server behind the censors: only the injectors answer there, which is
  // how GFWatch-style injection scans measure (censors.md section 1).
  const silent = await bind('silent DNS address', hosts.silent, dnsPort, () =>
    startResolver({ host: hosts.silent, port: dnsPort, answer: () => null, injector, log: opts.log }),
  );
  closers.push(() => silent.close());
  return { isp, pub, silent };
}

/** The sites' origin servers and one censoring front per site address and scheme. */
interface LabWorld {
  origin: Origin;
  sites: LabSite[];
  fronts: RunningFront[];
  residual: ResidualTable;
  fet: FetCensor;
  esni: EsniCensor;
  /** Addresses no censor touches (the test helper's). */
  exempt: Set<string>;
  rewriteLocation: (location: string) => string;
  startOne: (site: SiteSpec, address: string, scheme: 'http' | 'https', want: number, via?: Origin) => Promise<number | null>;
}

/** Redirects to the lab's own sites carry the lab's ports (ephemeral ones included); `sites` fills in as they start. */
function locationRewriter(sites: LabSite[]): (location: string) => string {
  return (location) => {
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
}

/** Starts the fronts of every site, adding each to `sites` with its ports. */
async function startEveryFront(
  all: SiteSpec[],
  addressesOf: LabBuild['addressesOf'],
  standard: boolean,
  startOne: LabWorld['startOne'],
  sites: LabSite[],
): Promise<void> {
  // Bounded parallelism: thousands of listeners, started a batch at a time.
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
}

async function startSitesAndFronts(b: LabBuild): Promise<LabWorld> {
  const { scenario, bind, closers, policy, ca, opts, standard, addressesOf, delayMs } = b;
  const hosts = hostsOf(b.net);
  // Redirects to the lab's own sites carry the lab's ports (ephemeral ones included).
  const sites: LabSite[] = [];
  const rewriteLocation = locationRewriter(sites);
  const exempt = new Set([hosts.helper]);
  const origin: Origin = await bind('origin servers', hosts.origin, 0, () =>
    startOrigin({ host: hosts.origin, ca, sites: scenario.world.sites, rewriteLocation, exempt }),
  );
  closers.push(() => origin.close());
  const residual = new ResidualTable();
  // In netns mode the routers run the FET censor on the packets; the world applies none.
  const fet = new FetCensor(policy.scenario);
  const esni = new EsniCensor(policy.scenario);
  const fronts: RunningFront[] = [];
  closers.push(async () => {
    await Promise.all(fronts.map((f) => f.close()));
  });
  const startOne = async (
    site: SiteSpec,
    address: string,
    scheme: 'http' | 'https',
    want: number,
    via: Origin = origin,
  ): Promise<number | null> => {
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
        esni,
        log: opts.log,
        responseDelayMs: delayMs,
      }),
    );
    fronts.push(f);
    return f.port;
  };
  await startEveryFront(scenario.world.sites, addressesOf, standard, startOne, sites);
  return { origin, sites, fronts, residual, fet, esni, exempt, rewriteLocation, startOne };
}

/**
 * The ISP's transparent proxy (resolvers.isp.proxy) and its TLS-intercepting box
 * (resolvers.isp.mitm): one front per port of the sites they serve, on the path like any other
 * (the censors still see their traffic). The proxy serves the genuine sites; the MITM box serves
 * them over HTTPS with certificates from a CA the probe does not trust.
 */
async function startIspBoxes(b: LabBuild, w: LabWorld): Promise<void> {
  const { scenario, closers, ca } = b;
  const hosts = hostsOf(b.net);
  const boxes: Array<[string[] | undefined, string, () => Promise<Origin>]> = [
    [scenario.world.resolvers.isp.proxy, hosts.proxy, async () => w.origin],
    [
      scenario.world.resolvers.isp.mitm,
      hosts.mitm,
      async () => {
        const o = await startOrigin({
          host: hosts.origin,
          ca,
          sites: scenario.world.sites.map((s) => ({ ...s, cert: 'untrusted' as const, redirect: undefined })),
          rewriteLocation: w.rewriteLocation,
          exempt: w.exempt,
        });
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
    for (const s of w.sites) {
      if (!matched.matches(s.domain)) continue;
      for (const [scheme, port] of [
        ['http', s.httpPort],
        ['https', s.httpsPort],
      ] as const) {
        if (port === null || ports.has(`${scheme}:${port}`)) continue;
        ports.add(`${scheme}:${port}`);
        await w.startOne({ domain: s.domain, captcha: b.sitesByName.get(s.domain)?.captcha }, host, scheme, port, via);
      }
    }
  }
}

/** The emulated social platform (scenario `platform:`), outside the censors like the helper. */
async function startLabPlatform(b: LabBuild): Promise<RunningPlatform | null> {
  const ps = b.scenario.platform;
  if (!ps) return null;
  const host = ps.address ?? `${b.net}.0.10`;
  const port = ps.port ?? (b.standard ? 80 : 0);
  const platform = await b.bind('platform', host, port, () => startPlatform({ host, port, spec: ps, seed: b.scenario.seed }));
  b.closers.push(() => platform.close());
  return platform;
}

/** Plain TCP services (world.services), behind the censors like the sites; from 127.R.0.16. */
async function startServices(b: LabBuild, w: LabWorld): Promise<LabService[]> {
  const services: LabService[] = [];
  for (const [i, svc] of (b.scenario.world.services ?? []).entries()) {
    const address = svc.address ?? `${b.net}.0.${16 + i}`;
    const f = await b.bind(`service ${svc.name}`, address, svc.port ?? 0, () =>
      startServiceFront({ host: address, port: svc.port ?? 0, service: svc, fet: w.fet, exempt: w.exempt, log: b.opts.log }),
    );
    w.fronts.push(f);
    services.push({ name: svc.name, kind: svc.kind, address, port: f.port });
  }
  return services;
}

/** Null routes and rejects (nftables, root); without nft, a warning saying what is not emulated. */
/** Installs the null routes of the censors as they stand (again when a timeline changes them). */
function nullRoutesInstaller(b: LabBuild, w: LabWorld, services: LabService[]): () => void {
  let routes: NullRoute | null = null;
  b.closers.push(() => routes?.remove());
  return () => {
    const { policy, addressesOf } = b;
    const dropProbe: string[] = [];
    const dropAll: string[] = [];
    const rejectProbe: string[] = [];
    for (const site of b.scenario.world.sites) {
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
      if (nft.ok) routes = installNullRoute(dropProbe, dropAll, [...w.exempt], rejectProbe, b.opts.world ? 'input' : 'output');
      else if (!b.warnings.includes(nft.reason)) b.warnings.push(nft.reason);
    }
  };
}

/**
 * The scenario's timeline as lab time passes (loopback mode: in netns mode the routers hold the
 * censors and do not follow it): the policy's rule sets are swapped, null routes reinstalled.
 */
function followTimeline(
  b: LabBuild,
  installRoutes: () => void,
): { startedAt: number; truthAt: (t: number) => Array<{ url: string; truth: Truth }> } {
  const { scenario, opts, policy, addressesOf } = b;
  const startedAt = Date.now();
  const timers: NodeJS.Timeout[] = [];
  b.closers.push(() => timers.forEach((t) => clearTimeout(t)));
  const times = timelineTimes(scenario);
  // In netns mode the routers follow the timeline (router.ts), their in-path nftables rules too
  // (null_route, reject, throttle): the routes of this side are not reinstalled for them.
  const inPath = (d: TimelineEntry['add']) => Boolean(d && (d.null_route || d.reject || d.throttle));
  if (times.length && opts.world && (scenario.timeline ?? []).some((e) => inPath(e.add) || inPath(e.remove))) {
    // the routers apply them
  } else if (times.length && opts.followTimeline !== false) {
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
  return { startedAt, truthAt };
}

/** The test helper, outside the censors: it resolves through the public resolver. */
async function startHelper(b: LabBuild, pub: RunningResolver): Promise<{ range: string; allowNet: string[]; helperUrl: string | null }> {
  const { net, scenario } = b;
  const helperHost = hostsOf(net).helper;
  const range = `${net}.0.0/16`;
  const extraNets = scenario.world.sites.flatMap((s) => (s.addresses ?? []).filter((a) => !a.startsWith(`${net}.`)).map((a) => `${a}/32`));
  const allowNet = [range, ...extraNets];
  let helperUrl: string | null = null;
  if (scenario.world.helper) {
    const helperPort = b.standard ? 80 : 0;
    const helper = await b.bind('test helper', helperHost, helperPort, () =>
      startTestHelper({
        host: helperHost,
        port: helperPort,
        resolver: pub.address,
        ca: [b.ca.certPem],
        allowNet,
        localAddress: helperHost,
      }),
    );
    b.closers.push(() => helper.close());
    helperUrl = helper.url;
  }
  return { range, allowNet, helperUrl };
}

/** The scenario's targets with the URL to dial (the lab's ports) and the ground truth of each. */
function labTargets(b: LabBuild, sites: LabSite[]): LabTarget[] {
  const byDomain = new Map(sites.map((s) => [s.domain, s]));
  return scenarioTargets(b.scenario).map((t) => {
    const u = new URL(t.url);
    const s = byDomain.get(u.hostname.toLowerCase());
    const defaultPort = u.protocol === 'https:' ? 443 : 80;
    const port = s ? (u.protocol === 'https:' ? s.httpsPort : s.httpPort) : null;
    if (port !== null && port !== defaultPort && (u.port === '' || Number(u.port) === defaultPort)) u.port = String(port);
    return { url: t.url, dialUrl: u.toString(), truth: b.truth.truthOf(t) };
  });
}
