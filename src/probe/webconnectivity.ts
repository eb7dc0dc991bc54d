// The web_connectivity experiment (ooni/spec nettests/ts-017-web-connectivity.md): DNS, then every
// address's TCP connect (and TLS handshake for https), then the HTTP request, with the control
// from a test helper; plus the attribution follow-ups of docs/INTERNAL-API.md "Attribution"
// (decoy-before / no-sni / decoy-after handshakes, the HTTP residual check, reset latencies).
// The probe records evidence; the verdict comes from src/analysis.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import {
  type ControlResponse,
  type DnsQuery,
  type Failure,
  type HttpRequestEntry,
  type Measurement,
  type TcpConnectEntry,
  type TlsHandshakeEntry,
  type WebConnectivityTestKeys,
  unknownFailure,
} from '../model/index.js';
import { ooniEnvelope } from './envelope.js';
import { Trace } from './trace.js';
import { NetPolicy, joinHostPort, isBogonAddress, splitHostPort } from './policy.js';
import { resolveName, type ResolveConfig, type Resolution } from './resolve.js';
import { tcpConnect } from './tcp.js';
import { tlsHandshake } from './tls.js';
import { DEFAULT_HEADERS, failedRequestEntry, fetchUrl, httpRoundTrip, type DialRecord } from './http.js';
import { postControl } from './helperclient.js';
import { compareHttp, dnsConsistency } from './compare.js';
import { lookupAsn, probeLocation } from './geo.js';
import { scrubValue, scrubberFor } from '../analysis/index.js';
import { applyVerdict } from './verdict.js';
import { PacketRecorder, type CaptureHub } from './packet-evidence.js';
import type { FingerprintSet, InjectorFingerprint } from '../analysis/index.js';

export { SOFTWARE_NAME, SOFTWARE_VERSION } from './envelope.js';
export const TEST_VERSION = '0.4.3';
/**
 * A benign name for decoy handshakes and residual checks: no censor's rule should match it, and it
 * must look like any other site's name (a reserved name such as `*.invalid` or `*.example` is easy
 * for a censor to special-case, and `www.example.com` is itself a common test target: the lab's
 * scenarios block it, and Citizen Lab's global list carries it). The RFC Editor's site: an ordinary
 * `www.<name>.org`, in no test list or blocklist we have (Citizen Lab lists, GFWatch-derived
 * scenarios), and no suffix-overblocking rule shape (`kw$`) of censors.md plausibly reaches it.
 * Override with ProbeOptions.decoySni (`--decoy-sni NAME`) where it is blocked.
 */
export const DEFAULT_DECOY = 'www.rfc-editor.org';

export interface ProbeOptions {
  /** "ip:port" of the resolver to ask over UDP (lab mode: the lab's ISP resolver). */
  resolver?: string;
  /** DoH URL. */
  doh?: string;
  /** Test helper URL (OONI control protocol). */
  helper?: string;
  /** Extra trusted CA certificates (PEM texts). */
  ca?: string[];
  /** CIDRs: refuse to dial outside them; addresses inside count as public. */
  allowNet?: string[];
  /** Default for every step's time budget (ms) when the specific ones are absent. */
  timeoutMs?: number;
  dnsTimeoutMs?: number;
  /** How long to keep listening for more UDP replies after the first (ms, default 500). */
  dnsWindowMs?: number;
  connectTimeoutMs?: number;
  tlsTimeoutMs?: number;
  httpTimeoutMs?: number;
  controlTimeoutMs?: number;
  maxBodyBytes?: number;
  /** Benign name for decoy handshakes / residual checks (default DEFAULT_DECOY). */
  decoySni?: string;
  /** Older name of decoySni (kept for compatibility; decoySni wins). */
  decoy?: string;
  /** Also ask the resolver over TCP (engine "tcp"), beside UDP: tells on-path UDP injection from a lying resolver. */
  dnsTcp?: boolean;
  /** Attribution follow-ups (decoy-before/no-sni/decoy-after, HTTP residual). Default true. */
  attribution?: boolean;
  /** The probe's own public IP(s), scrubbed from every string; also locate the probe. */
  probeIps?: string[];
  /** Source address for the probe's sockets. */
  localAddress?: string;
  reportId?: string;
  annotations?: Record<string, string>;
  /**
   * The volunteer's self-declared region (e.g. a province, "Henan"), written to annotations.region.
   * Coarse by intent, never derived from the IP, not an identifier; trimmed and cut to 64 characters.
   */
  region?: string;
  /** Blocking fingerprints for the verdict (loaded by the caller: analysis loadFingerprints). */
  fingerprints?: FingerprintSet;
  /**
   * Capture the packets of the probe's own flows (root; libpcap) and record those that ended each
   * failed operation in test_keys.x_captured (model/packets.ts). Only IPv4 endpoints and a UDP
   * resolver given by `resolver`; redirect hops are not captured.
   */
  capture?: boolean;
  /** The run's shared captures (measureMany opens one when `capture` is set); else one per URL. */
  captureHub?: CaptureHub;
  /** Forged-reset fingerprints for the verdict (analysis loadInjectorFingerprints): the layer from captured packets. */
  injectors?: readonly InjectorFingerprint[];
}

export interface SniVariant {
  tag: 'decoy-before' | 'no-sni' | 'decoy-after';
  address: string;
  server_name: string | null;
  failure: Failure | null;
  t0: number;
  t: number;
  x_reset_latency_ms?: number;
}

export interface ResidualCheck {
  tag: 'decoy-after';
  address: string;
  host: string;
  failure: Failure | null;
  status_code: number | null;
  t0: number;
  t: number;
}

function decoyOf(o: ProbeOptions): string {
  return o.decoySni ?? o.decoy ?? DEFAULT_DECOY;
}

const HOSTNAME_RE = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/i;

/** A decoy must be a DNS name (an IP sends no SNI; a bare label is no site's name). Returns it lower-cased. */
export function checkDecoyName(name: string): string {
  if (net.isIP(name) || !HOSTNAME_RE.test(name)) throw new TypeError(`not a host name for a decoy: ${JSON.stringify(name)}`);
  return name.toLowerCase();
}

function budgets(o: ProbeOptions) {
  const d = o.timeoutMs;
  return {
    dns: o.dnsTimeoutMs ?? d ?? 5_000,
    window: o.dnsWindowMs ?? 500,
    connect: o.connectTimeoutMs ?? d ?? 10_000,
    tls: o.tlsTimeoutMs ?? d ?? 10_000,
    http: o.httpTimeoutMs ?? d ?? 15_000,
    control: o.controlTimeoutMs ?? Math.max(o.httpTimeoutMs ?? d ?? 15_000, 5_000) + 15_000,
    body: o.maxBodyBytes ?? 1 << 20,
  };
}

// Random bytes for report ids, drawn from the CSPRNG 4 KiB at a time: one randomBytes call per
// measurement (a synchronous call into the kernel's generator) was 1.4% of the probe's CPU on
// bench/probe-web.ts. Each id still takes 8 bytes no other id gets.
let idPool = Buffer.alloc(0);
let idPoolAt = 0;
function idBytes(): string {
  if (idPoolAt + 8 > idPool.length) {
    idPool = randomBytes(4096);
    idPoolAt = 0;
  }
  idPoolAt += 8;
  return idPool.toString('hex', idPoolAt - 8, idPoolAt);
}

export function newReportId(cc = 'ZZ', asn = 'AS0', now = new Date()): string {
  const ts = now.toISOString().replace(/[-:]/g, '').slice(0, 15) + 'Z';
  return `${ts}_webconnectivity_${cc}_${asn.replace(/^AS/, '')}_n1_${idBytes()}`;
}

/**
 * The same report id for another vantage point (a measurement re-placed, as the demo places its
 * lab measurements in CN / AS4837): the country and ASN parts follow probe_cc/probe_asn so the id
 * never contradicts the measurement. An id not in newReportId's form is returned as it is.
 */
export function placeReportId(reportId: string, cc: string, asn: string): string {
  const m = /^(\d{8}T\d{6}Z_[a-z_]+)_[A-Z]{2}_\d+_(.+)$/.exec(reportId);
  return m ? `${m[1]}_${cc}_${asn.replace(/^AS/, '')}_${m[2]}` : reportId;
}

const RESETISH = new Set<string>(['connection_reset', 'generic_timeout_error', 'eof_error']);

interface EndpointOutcome {
  tcp: TcpConnectEntry;
  tls: (TlsHandshakeEntry & { x_reset_latency_ms?: number }) | null;
  variants: SniVariant[];
  stream: Duplex | null;
  address: string;
}

/** A handshake on a fresh connection, for attribution only (no verification). */
async function variantHandshake(
  tag: SniVariant['tag'],
  ip: string,
  port: number,
  serverName: string | null,
  policy: NetPolicy,
  trace: Trace,
  b: ReturnType<typeof budgets>,
  ca?: string[],
): Promise<SniVariant> {
  const address = joinHostPort(ip, port);
  const t0 = trace.now();
  const tags = [`x_sni_variant=${tag}`];
  const c = await tcpConnect(ip, port, policy, { trace, timeoutMs: b.connect, tags });
  if (!c.socket) return { tag, address, server_name: serverName, failure: c.entry.status.failure, t0, t: trace.now() };
  const h = await tlsHandshake(c.socket, {
    trace,
    timeoutMs: b.tls,
    serverName,
    verify: false,
    recordChain: false,
    address,
    tags,
    ...(ca ? { ca } : {}),
  });
  h.socket?.destroy();
  return {
    tag,
    address,
    server_name: serverName,
    failure: h.entry.failure,
    t0,
    t: h.entry.t,
    ...(h.entry.x_reset_latency_ms !== undefined ? { x_reset_latency_ms: h.entry.x_reset_latency_ms } : {}),
  };
}

async function measureEndpoint(
  u: URL,
  host: string,
  ip: string,
  port: number,
  opts: ProbeOptions,
  policy: NetPolicy,
  trace: Trace,
  b: ReturnType<typeof budgets>,
): Promise<EndpointOutcome> {
  const address = joinHostPort(ip, port);
  const https = u.protocol === 'https:';
  const sni = net.isIP(host) ? null : host;
  const attribution = opts.attribution !== false && https && sni !== null;
  const decoy = decoyOf(opts);
  const txid = trace.nextTransaction();
  // The real TCP connect carries no name, so it runs alongside the follow-ups that must precede the
  // real SNI (a censor with residual blocking has not been triggered yet); a null-routed address
  // then costs one connect timeout, not two.
  const [c, before] = await Promise.all([
    tcpConnect(ip, port, policy, { trace, timeoutMs: b.connect, transactionId: txid }),
    attribution
      ? Promise.all([
          variantHandshake('decoy-before', ip, port, decoy, policy, trace, b, opts.ca),
          variantHandshake('no-sni', ip, port, null, policy, trace, b, opts.ca),
        ])
      : Promise.resolve([]),
  ]);
  const variants: SniVariant[] = [...before];
  if (!c.socket || !https) return { tcp: c.entry, tls: null, variants, stream: c.socket, address };
  const h = await tlsHandshake(c.socket, {
    trace,
    timeoutMs: b.tls,
    serverName: sni,
    verifyName: host,
    verify: true,
    address,
    transactionId: txid,
    ...(opts.ca ? { ca: opts.ca } : {}),
  });
  if (attribution && h.entry.failure && RESETISH.has(h.entry.failure)) {
    // Right after the trigger: does a benign handshake to the same ip:port still fail? (residual)
    variants.push(await variantHandshake('decoy-after', ip, port, decoy, policy, trace, b, opts.ca));
  }
  return { tcp: c.entry, tls: h.entry, variants, stream: h.socket, address };
}

async function residualCheck(
  u: URL,
  address: string,
  ip: string,
  port: number,
  opts: ProbeOptions,
  policy: NetPolicy,
  trace: Trace,
  b: ReturnType<typeof budgets>,
): Promise<ResidualCheck> {
  const host = decoyOf(opts);
  const t0 = trace.now();
  const tags = ['x_residual=decoy-after'];
  const c = await tcpConnect(ip, port, policy, { trace, timeoutMs: b.connect, tags });
  if (!c.socket) return { tag: 'decoy-after', address, host, failure: c.entry.status.failure, status_code: null, t0, t: trace.now() };
  const rt = await httpRoundTrip(c.socket, {
    trace,
    url: `${u.protocol}//${host}/`,
    host,
    timeoutMs: b.http,
    maxBodyBytes: 4096,
    address,
    tags,
  });
  return { tag: 'decoy-after', address, host, failure: rt.failure, status_code: rt.failure ? null : rt.status, t0, t: trace.now() };
}

// The control request's headers are the probe's own (the same for every URL): built once.
const CONTROL_HEADERS = Object.fromEntries(Object.entries(DEFAULT_HEADERS).map(([k, v]) => [k, [v]]));

async function fetchControl(
  url: string,
  addrs: string[],
  port: number,
  opts: ProbeOptions,
  policy: NetPolicy,
  b: ReturnType<typeof budgets>,
  resolveHost: (h: string) => Promise<string[]>,
): Promise<{ control: ControlResponse | null; failure: string | null; request: unknown }> {
  if (!opts.helper) return { control: null, failure: unknownFailure('no test helper configured'), request: null };
  const request = {
    http_request: url,
    http_request_headers: CONTROL_HEADERS,
    tcp_connect: addrs.map((a) => joinHostPort(a, port)),
  };
  // The control's own traffic is not part of the probe's evidence (no trace); its connections are kept alive.
  const res = await postControl(opts.helper, JSON.stringify(request), {
    policy,
    timeoutMs: b.control,
    maxBodyBytes: 4 << 20,
    resolveHost,
    ...(opts.ca ? { ca: opts.ca } : {}),
  });
  if (res.failure) return { control: null, failure: res.failure, request };
  if (res.status !== 200) return { control: null, failure: unknownFailure(`test helper answered HTTP ${res.status}`), request };
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body.toString('utf8'));
  } catch {
    return { control: null, failure: 'json_parse_error', request };
  }
  const problem = controlShapeProblem(parsed);
  if (problem) return { control: null, failure: unknownFailure(`bad control response: ${problem}`), request };
  return { control: parsed as ControlResponse, failure: null, request };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isFailure = (v: unknown): boolean => v === null || typeof v === 'string';

/**
 * Robustness: the control comes from another machine; everything downstream (comparisons, the
 * verdict) reads it, so its shape is checked here once. Returns what is wrong, or null.
 */
export function controlShapeProblem(c: unknown): string | null {
  if (!isObj(c)) return 'not an object';
  const dns = c.dns;
  if (!isObj(dns) || !isFailure(dns.failure) || !Array.isArray(dns.addrs) || !dns.addrs.every((a) => typeof a === 'string')) return 'dns';
  const h = c.http_request;
  if (
    !isObj(h) ||
    !isFailure(h.failure) ||
    typeof h.body_length !== 'number' ||
    typeof h.status_code !== 'number' ||
    typeof h.title !== 'string' ||
    !isObj(h.headers)
  )
    return 'http_request';
  if (
    !isObj(c.tcp_connect) ||
    !Object.values(c.tcp_connect).every((e) => isObj(e) && typeof e.status === 'boolean' && isFailure(e.failure))
  )
    return 'tcp_connect';
  if (c.tls_handshake !== undefined && c.tls_handshake !== null && !isObj(c.tls_handshake)) return 'tls_handshake';
  if (
    c.ip_info !== undefined &&
    c.ip_info !== null &&
    !(isObj(c.ip_info) && Object.values(c.ip_info).every((e) => isObj(e) && typeof e.asn === 'number'))
  )
    return 'ip_info';
  return null;
}

export interface MeasureHooks {
  /**
   * Called once the measurement's own network work (connects, handshakes, HTTP, the control) is
   * done and only the DNS duplicate window is still open (measureMany gives the URL's slot to the
   * next one then). The measurement itself resolves when the window closes, with every reply.
   */
  activeDone?: () => void;
}

/** What the steps of one measurement share. */
interface MeasureRun {
  u: URL;
  url: string;
  host: string;
  port: number;
  opts: ProbeOptions;
  b: ReturnType<typeof budgets>;
  policy: NetPolicy;
  trace: Trace;
  rcfg: ResolveConfig;
}

/** Redirect hops are evidence too (OONI tags them depth=N): their DNS queries, connects and handshakes. */
interface HopEvidence {
  queries: DnsQuery[];
  late: Array<Promise<DnsQuery[]>>;
  compare: Array<Promise<DnsQuery[]>>;
  dials: DialRecord;
  variants: SniVariant[];
}

interface HttpOutcome {
  requests: HttpRequestEntry[];
  failure: Failure | null;
  final: Awaited<ReturnType<typeof fetchUrl>>['final'];
  residual: ResidualCheck[];
}

/**
 * Measure one URL: DNS, the control in parallel, every endpoint, HTTP over the first live one,
 * then the evidence keys, the envelope, the verdict and the privacy scrub (the steps below).
 * Never throws for a network outcome; throws TypeError for a URL it cannot parse.
 */
export async function measureWebConnectivity(
  url: string,
  opts: ProbeOptions = {},
  hooks: MeasureHooks = {},
): Promise<Measurement<WebConnectivityTestKeys>> {
  const run = measureRun(url, opts);
  const startWall = Date.now();
  const { u, host, port, policy, trace, b, rcfg } = run;
  const resolveHost = async (h: string): Promise<string[]> => (await resolveName(h, { ...rcfg, tcp: false }, trace, ['x_redirect'])).addrs;

  const recorder = opts.capture ? new PacketRecorder(trace, opts.captureHub) : null;
  if (recorder && opts.resolver && !net.isIP(host)) {
    const r = splitHostPort(opts.resolver, 53);
    await recorder.watchResolver(r.host, r.port);
  }

  // 1. DNS
  const dns: Resolution = net.isIP(host)
    ? { queries: [] as DnsQuery[], addrs: [host], failure: null as Failure | null, late: Promise.resolve([] as DnsQuery[]) }
    : await resolveName(host, rcfg, trace);
  const addrs = dns.addrs.slice(0, 8);

  // 2. Control, in parallel with our own endpoints.
  const controlP = fetchControl(u.href, addrs, port, opts, policy, b, resolveHost);

  // 3. Every endpoint: TCP (and TLS, with the attribution follow-ups), all at once.
  await recorder?.watchEndpoints(addrs, port);
  const pending = addrs.map((ip) => measureEndpoint(u, host, ip, port, opts, policy, trace, b));

  // 4. HTTP, over the first endpoint (in answer order) that worked; follow redirects. It starts as soon
  // as that endpoint and the ones before it are done, not after the slowest: a later null-routed
  // address (a connect timeout, then its follow-ups) would otherwise leave the live connection idle
  // long enough for the server to close it, and the request would fail for no censor's reason.
  let live: EndpointOutcome | undefined;
  for (const p of pending) {
    const e = await p;
    if (e.stream) {
      live = e;
      break;
    }
  }
  const hops: HopEvidence = { queries: [], late: [], compare: [], dials: { tcp: [], tls: [] }, variants: [] };
  const http: HttpOutcome = live ? await httpOverLive(run, addrs, live, hops) : { requests: [], failure: null, final: null, residual: [] };
  const endpoints = await Promise.all(pending);
  for (const e of endpoints) if (e !== live) e.stream?.destroy();
  if (!live) Object.assign(http, failedRequest(run, dns, endpoints));

  const [ctl, compare, compareHops] = await Promise.all([controlP, dns.compare ?? [], Promise.all(hops.compare)]);
  // The final response against the control now, and its body let go: a measurement waiting out its
  // DNS window keeps only its evidence (the body is recorded in its request entry already), not a
  // second copy of up to maxBodyBytes.
  const httpVsControl = compareWithControl(http, ctl.control);
  http.final = null;
  // The duplicate window overlaps all of the above; what is left of it is only listening.
  hooks.activeDone?.();
  const [late, lateHops] = await Promise.all([dns.late, Promise.all(hops.late)]);

  // 5. Evidence keys.
  await recorder?.stop();
  const testKeys = evidenceKeys(
    run,
    { dns, addrs, endpoints, hops, http, ctl, httpVsControl, compare, compareHops: compareHops.flat() },
    [...late, ...lateHops.flat()],
    recorder,
  );
  return finish(run, testKeys, startWall);
}

/** What a measurement gathered, for its evidence keys. */
interface Gathered {
  dns: Resolution;
  addrs: string[];
  endpoints: EndpointOutcome[];
  hops: HopEvidence;
  http: HttpOutcome;
  ctl: Awaited<ReturnType<typeof fetchControl>>;
  httpVsControl: ReturnType<typeof compareHttp>;
  compare: DnsQuery[];
  compareHops: DnsQuery[];
}

/** Step 5: ts-017's test keys (and wallscope's x_ ones) from what the steps gathered; every late DNS reply included. */
function evidenceKeys(run: MeasureRun, g: Gathered, lateAll: DnsQuery[], recorder: PacketRecorder | null): WebConnectivityTestKeys {
  const { u, host, opts, policy, trace } = run;
  const { dns, addrs, endpoints, hops, http, ctl } = g;
  const tcpConnect = [...endpoints.map((e) => e.tcp), ...hops.dials.tcp];
  const tlsHandshakes = [...endpoints.flatMap((e) => (e.tls ? [e.tls] : [])), ...hops.dials.tls];
  const captured = recorder?.evidence({
    tcp_connect: tcpConnect,
    tls_handshakes: tlsHandshakes,
    requests: http.requests,
    duplicates: lateAll,
  });
  const queries = [...dns.queries, ...g.compare, ...hops.queries, ...g.compareHops].map((q) => withAsn(q));
  const testKeys: WebConnectivityTestKeys = {
    agent: 'redirect',
    client_resolver: opts.resolver ? opts.resolver.replace(/:\d+$/, '') : null,
    retries: null,
    socksproxy: null,
    network_events: trace.events,
    queries,
    tcp_connect: tcpConnect,
    tls_handshakes: u.protocol === 'https:' || hops.dials.tls.length > 0 ? tlsHandshakes : null,
    requests: http.requests,
    x_control_request: ctl.request,
    control: ctl.control ?? {},
    control_failure: ctl.failure,
    x_dns_duplicate_responses: lateAll.map((q) => withAsn(q)),
    dns_experiment_failure: dns.failure,
    dns_consistency: dnsConsistency(host, addrs, dns.failure, ctl.control, policy),
    http_experiment_failure: http.failure,
    ...g.httpVsControl,
    blocking: null,
    accessible: null,
    x_tls_sni_variants: [...endpoints.flatMap((e) => e.variants), ...hops.variants],
    x_residual_checks: http.residual,
    x_lab_mode: policy.restricted || undefined,
    ...(captured ? { x_captured: captured } : {}),
    ...(recorder?.problems.length ? { x_capture_failure: recorder.problems.join('; ') } : {}),
    ...(recorder?.dropped ? { x_capture_frames_dropped: recorder.dropped } : {}),
    ...(trace.eventsDropped ? { x_network_events_dropped: trace.eventsDropped } : {}),
  };
  if (testKeys.x_lab_mode === undefined) delete testKeys.x_lab_mode;
  return testKeys;
}

/** The URL parsed and the per-measurement state: budgets, policy, trace, resolver configuration. */
function measureRun(url: string, opts: ProbeOptions): MeasureRun {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`not an http(s) URL: ${JSON.stringify(url)}`);
  if (opts.decoySni !== undefined) checkDecoyName(opts.decoySni);
  if (opts.decoy !== undefined) checkDecoyName(opts.decoy);
  const b = budgets(opts);
  const policy = policyFor(opts);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port) || (u.protocol === 'https:' ? 443 : 80);
  const rcfg: ResolveConfig = {
    policy,
    timeoutMs: b.dns,
    windowMs: b.window,
    ...(opts.resolver ? { resolver: opts.resolver } : {}),
    ...(opts.doh ? { doh: opts.doh } : {}),
    ...(opts.ca ? { ca: opts.ca } : {}),
    ...(opts.dnsTcp ? { tcp: true } : {}),
  };
  return { u, url, host, port, opts, b, policy, trace: new Trace(), rcfg };
}

/** Step 4: HTTP over the live endpoint with redirects, and the attribution follow-ups of resets on the way. */
async function httpOverLive(run: MeasureRun, addrs: string[], live: EndpointOutcome, hops: HopEvidence): Promise<HttpOutcome> {
  const { u, host, port, opts, policy, trace, b, rcfg } = run;
  // The first hop's endpoints (still measuring, maybe) all get their decoy-before when attribution applies.
  const covered = new Set(
    opts.attribution !== false && u.protocol === 'https:' && !net.isIP(host) ? addrs.map((ip) => joinHostPort(ip, port)) : [],
  );
  const f = await fetchUrl(u.href, {
    trace,
    policy,
    resolve: async (h, depth) => {
      const r = await resolveName(h, rcfg, trace, [`depth=${depth}`]);
      hops.queries.push(...r.queries);
      hops.late.push(r.late);
      if (r.compare) hops.compare.push(r.compare);
      return { addrs: r.addrs, failure: r.failure };
    },
    record: hops.dials,
    connectTimeoutMs: b.connect,
    tlsTimeoutMs: b.tls,
    timeoutMs: b.http,
    maxBodyBytes: b.body,
    first: { stream: live.stream!, address: live.address },
    ...(opts.ca ? { ca: opts.ca } : {}),
    // A redirect target's https endpoint gets the same decoy-before / no-sni pair as the first
    // hop's, alongside its TCP connect (so it costs no connect time), unless that ip:port already
    // has them (the first hop's endpoints, or an earlier hop).
    ...(opts.attribution !== false
      ? {
          alongsideConnect: async (ip: string, p: number) => {
            const address = joinHostPort(ip, p);
            if (covered.has(address)) return;
            covered.add(address);
            const pair = await Promise.all([
              variantHandshake('decoy-before', ip, p, decoyOf(opts), policy, trace, b, opts.ca),
              variantHandshake('no-sni', ip, p, null, policy, trace, b, opts.ca),
            ]);
            hops.variants.push(...pair);
          },
        }
      : {}),
  });
  const out: HttpOutcome = { requests: f.requests, failure: f.failure, final: f.final, residual: [] };
  if (opts.attribution !== false) await resetFollowUps(run, live, hops, out);
  return out;
}

/** Attribution after resets met on the way: a decoy handshake right after a reset hop, a residual check after a reset request. */
async function resetFollowUps(run: MeasureRun, live: EndpointOutcome, hops: HopEvidence, out: HttpOutcome): Promise<void> {
  const { opts, policy, trace, b } = run;
  // A redirect target's handshake that was reset: does a benign one right after fail too? (residual)
  for (const hs of hops.dials.tls) {
    if (!hs.failure || !RESETISH.has(hs.failure) || !hs.server_name) continue;
    const { host: ip, port: p } = splitHostPort(hs.address);
    hops.variants.push(await variantHandshake('decoy-after', ip, p, decoyOf(opts), policy, trace, b, opts.ca));
  }
  // A plain-HTTP request that was reset after its connection was up (first hop or a redirect).
  const connected = new Set([live.address, ...hops.dials.tcp.filter((e) => e.status.success).map((e) => joinHostPort(e.ip, e.port))]);
  for (const r of out.requests) {
    if (!r.failure || !RESETISH.has(r.failure) || !r.address || !connected.has(r.address) || !r.request.url.startsWith('http:')) continue;
    const { host: ip, port: p } = splitHostPort(r.address);
    out.residual.push(await residualCheck(new URL(r.request.url), r.address, ip, p, opts, policy, trace, b));
  }
}

/** No endpoint worked: the request fails as its dial did (as OONI's does), without dialing again. */
function failedRequest(run: MeasureRun, dns: Resolution, endpoints: EndpointOutcome[]): Pick<HttpOutcome, 'requests' | 'failure'> {
  const { u, trace } = run;
  const e = endpoints[0];
  const failure = dns.failure ?? (e ? (e.tls?.failure ?? e.tcp.status.failure) : 'dns_no_answer') ?? 'generic_timeout_error';
  const requests = [failedRequestEntry(u.href, e?.address ?? '', failure, trace, { host: u.host, ...DEFAULT_HEADERS })];
  return { requests, failure };
}

/** ts-017's HTTP keys: the final response against the control's (compare.ts). */
function compareWithControl(http: HttpOutcome, control: ControlResponse | null): ReturnType<typeof compareHttp> {
  const final = http.final;
  return compareHttp(
    final && !http.failure && final.entry.response
      ? {
          status: final.status,
          headers: Object.keys(final.entry.response.headers),
          bodyLength: final.body.length,
          truncated: final.truncated,
          title: final.title,
        }
      : null,
    control,
  );
}

/** Steps 5-6: the OONI envelope, then the verdict (src/analysis) and the privacy scrub of the probe's own addresses. */
function finish(run: MeasureRun, testKeys: WebConnectivityTestKeys, startWall: number): Measurement<WebConnectivityTestKeys> {
  const { url, opts, policy, trace } = run;
  // Privacy: the given addresses, plus any public source address our own sockets had (a probe with
  // a public address on its interface would otherwise leak it in socket-level evidence).
  const ownIps = [...(opts.probeIps ?? []), ...[...trace.localAddresses].filter((ip) => !isBogonAddress(ip) && !policy.inAllowed(ip))];
  const loc = probeLocation(ownIps.find((ip) => !isBogonAddress(ip)) ?? null);
  const start = new Date(startWall);
  const m = ooniEnvelope({
    testName: 'web_connectivity',
    testVersion: TEST_VERSION,
    input: url,
    start,
    runtime: trace.now(),
    location: loc,
    reportId: opts.reportId ?? newReportId(loc.probe_cc, loc.probe_asn, start),
    resolverIp: opts.resolver ? opts.resolver.replace(/^\[|\](:\d+)?$|:\d+$/g, '') : '127.0.0.2',
    testHelpers: opts.helper ? { backend: { address: opts.helper, type: opts.helper.startsWith('https:') ? 'https' : 'http' } } : {},
    annotations: {
      ...(policy.restricted ? { x_lab_mode: 'true' } : {}),
      ...(opts.annotations ?? {}),
      ...regionAnnotation(opts.region),
    },
    testKeys,
  });
  const scrubbed = scrubValue(m, scrubberFor(ownIps));
  scrubbed.probe_ip = '127.0.0.1';
  return applyVerdict(scrubbed, {
    allowNets: opts.allowNet ?? [],
    ...(opts.fingerprints ? { fingerprints: opts.fingerprints } : {}),
    ...(opts.injectors ? { injectors: opts.injectors } : {}),
  });
}

// A NetPolicy holds no per-URL state: one per (allowNet, localAddress) serves a whole list (its
// CIDRs parsed once, its address answers memoised).
const policies = new Map<string, NetPolicy>();
function policyFor(opts: ProbeOptions): NetPolicy {
  const key = `${(opts.allowNet ?? []).join(',')}|${opts.localAddress ?? ''}`;
  let p = policies.get(key);
  if (!p) {
    p = new NetPolicy(opts.allowNet, opts.localAddress);
    if (policies.size >= 256) policies.clear();
    policies.set(key, p);
  }
  return p;
}

function withAsn(q: DnsQuery): DnsQuery {
  if (!q.answers) return q;
  return {
    ...q,
    answers: q.answers.map((a) => {
      const ip = a.ipv4 ?? a.ipv6;
      if (!ip) return a;
      const info = lookupAsn(ip);
      return { ...a, asn: info?.asn ?? 0, as_org_name: info?.org ?? '' };
    }),
  };
}

/** annotations.region from ProbeOptions.region: whitespace collapsed, trimmed, at most 64 characters; none when empty. */
export function regionAnnotation(region: string | undefined): { region?: string } {
  const r = [
    ...(region ?? '')
      // eslint-disable-next-line no-control-regex -- control characters are what is removed
      .replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
      .replace(/\s+/g, ' ')
      .trim(),
  ]
    .slice(0, 64)
    .join('')
    .trim();
  return r ? { region: r } : {};
}
