// A defensive, read-only view of web_connectivity test keys as published (v0.4 and v0.5, old
// probes, our own). Real data has nulls, missing keys, base64 bodies and headers, odd types:
// everything is checked here once, so the rules in webconnectivity.ts can trust their input.
import { hostOf, parseUrl } from '../model/index.js';
import { canonicalIp, isIp } from './ip.js';
import { extractTitle, MAX_SCANNED_BODY } from './http-compare.js';
import type { CapturedView, PacketView } from './injectors.js';

/** At most this many entries of any list are looked at (hostile input claims huge arrays). */
export const MAX_ENTRIES = 4096;

export interface QueryView {
  ref: string;
  hostname: string;
  engine: string;
  resolver: string;
  queryType: string;
  failure: string | null;
  addrs: string[];
  /** An A record answering a non-A query (a forged reply's tell-tale, censors.md). */
  aToNonA: boolean;
  asns: Map<string, { asn: number; org: string }> | null;
  t: number | null;
}
export interface TcpView {
  ref: string;
  ip: string;
  port: number;
  failure: string | null;
}
export interface TlsView {
  ref: string;
  ip: string;
  port: number;
  sni: string | null;
  failure: string | null;
  noVerify: boolean;
  resetLatencyMs: number | null;
}
export interface RequestView {
  ref: string;
  url: string;
  failure: string | null;
  code: number;
  hasResponse: boolean;
  /** Body size in bytes (base64 decoded), computed on first use. */
  readonly bodyLength: number;
  truncated: boolean;
  /** Response headers, lowercase names, decoded on first use. */
  readonly headers: Map<string, string>;
  /** The body as text (base64 decoded, first MAX_SCANNED_BODY bytes), decoded on first use. */
  readonly bodyText: string | null;
  /** The raw body bytes (first MAX_SCANNED_BODY), decoded on first use: what fingerprints scan. */
  readonly bodyBytes: Buffer | null;
  /** The page title, extracted on first use. */
  readonly title: string | null;
  resetLatencyMs: number | null;
  t0: number | null;
  t: number | null;
}
export interface FollowUpView {
  ref: string;
  tag: string;
  ip: string | null;
  port: number | null;
  name: string | null;
  failure: string | null;
}
export interface ControlView {
  dnsFailure: string | null;
  addrs: string[];
  tcp: Map<string, string | null>;
  tls: Map<string, string | null>;
  http: { failure: string | null; statusCode: number; bodyLength: number; title: string | null; headerNames: string[] } | null;
  ipInfo: Map<string, number>;
}
export interface WebView {
  input: string | null;
  domain: string | null;
  scheme: string | null;
  port: number | null;
  domainIsIp: boolean;
  probeCc: string | null;
  queries: QueryView[];
  duplicates: QueryView[];
  tcp: TcpView[];
  tls: TlsView[];
  /** requests[0] only (the chain's last request: the outcome); empty when there is none. */
  requests: RequestView[];
  control: ControlView | null;
  controlFailure: string | null;
  httpExperimentFailure: string | null;
  followUps: FollowUpView[];
  /** test_version as recorded ("0.4.3", "0.5.28"; null when absent): which reference rule produced the recorded pair. */
  testVersion: string | null;
  /** software_name as recorded: tells the reference's probes from ours. */
  softwareName: string | null;
  /** The HTTP comparison the probe recorded itself; trusted only where the stored body cannot be (truncated, trimmed, undecodable). */
  recorded: { bodyLengthMatch: boolean | null; bodyProportion: number | null; titleMatch: boolean | null; dnsConsistency: string | null };
  /** Bytes read per "ip:port" (network_events), computed on first use. */
  readonly readBytesByAddress: Map<string, number>;
  /** network_events with an address (connect, tls_handshake_start/done, read, write, ...), in order; on first use. */
  readonly events: EventView[];
  /** test_keys.x_captured (`measure --capture`), checked; on first use. */
  readonly captured: CapturedView[];
  /** test_keys.x_locate (`locate`): the hop of the injector per operation and endpoint; on first use. */
  readonly hops: HopView[];
}
export interface HopView {
  ref: string;
  operation: string;
  ip: string | null;
  port: number | null;
  hop: number;
}
export interface EventView {
  ref: string;
  op: string;
  ip: string;
  port: number;
  failure: string | null;
  t: number | null;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? (v.length > MAX_ENTRIES ? v.slice(0, MAX_ENTRIES) : v) : []);
/** A failure string; anything else that is not null becomes a generic unknown failure. */
const failureOf = (v: unknown): string | null =>
  v === null || v === undefined ? null : typeof v === 'string' ? v : 'unknown_failure: malformed failure value';

/** Own enumerable entries of a JSON object, at most `max`, without building arrays. */
function* entriesOf(o: Obj, max: number): Generator<[string, unknown]> {
  let n = 0;
  for (const k in o) {
    if (!Object.prototype.hasOwnProperty.call(o, k)) continue;
    if (n++ >= max) return;
    yield [k, o[k]];
  }
}

/** Split "ip:port", "[v6]:port", or a bare ip. */
export function splitHostPort(addr: string): { host: string; port: number | null } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr);
  if (m) return { host: m[1], port: Number(m[2]) };
  const i = addr.lastIndexOf(':');
  if (i > 0 && addr.indexOf(':') === i) return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
  return { host: addr, port: null };
}

export function endpointKey(ip: string, port: number): string {
  const c = canonicalIp(ip);
  return c.includes(':') ? `[${c}]:${port}` : `${c}:${port}`;
}

function decodeMaybeBinary(v: unknown, limit: number): { text: string | null; length: number } {
  if (typeof v === 'string') return { text: v.length > limit ? v.slice(0, limit) : v, length: Buffer.byteLength(v) };
  if (isObj(v) && v.format === 'base64' && typeof v.data === 'string') {
    const data = v.data;
    const pad = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
    const length = Math.max(0, Math.floor((data.length * 3) / 4) - pad);
    // Only the first `limit` bytes are decoded for titles and fingerprints (bounded memory).
    const head = data.length > (limit / 3) * 4 ? data.slice(0, Math.floor(limit / 3) * 4) : data;
    return { text: Buffer.from(head, 'base64').toString('latin1'), length };
  }
  return { text: null, length: 0 };
}

/** The first `limit` bytes of a body: UTF-8 of a string, or the decoded base64. */
function bytesOf(v: unknown, limit: number): Buffer | null {
  if (typeof v === 'string') return Buffer.from(v.length > limit ? v.slice(0, limit) : v, 'utf8');
  if (isObj(v) && v.format === 'base64' && typeof v.data === 'string') {
    const data = v.data.length > Math.ceil(limit / 3) * 4 ? v.data.slice(0, Math.ceil(limit / 3) * 4) : v.data;
    return Buffer.from(data, 'base64');
  }
  return null;
}

/** A request entry read on demand: decoding, headers and the title cost nothing until asked for. */
class LazyRequest implements RequestView {
  readonly url: string;
  readonly failure: string | null;
  readonly code: number;
  readonly hasResponse: boolean;
  readonly truncated: boolean;
  readonly resetLatencyMs: number | null;
  readonly t0: number | null;
  readonly t: number | null;
  #resp: Obj | null;
  #len: number | undefined;
  #headers: Map<string, string> | undefined;
  #bytes: Buffer | null | undefined;
  #text: string | null | undefined;
  #title: string | null | undefined;

  constructor(
    r: Obj,
    readonly ref: string,
  ) {
    const req = isObj(r.request) ? r.request : null;
    this.#resp = isObj(r.response) ? r.response : null;
    this.url = (req && str(req.url)) ?? '';
    this.failure = failureOf(r.failure);
    this.code = this.#resp ? (num(this.#resp.code) ?? 0) : 0;
    this.hasResponse = this.#resp !== null && this.code > 0;
    this.truncated = this.#resp ? this.#resp.body_is_truncated === true : false;
    this.resetLatencyMs = num(r.x_reset_latency_ms);
    this.t0 = num(r.t0);
    this.t = num(r.t);
  }
  get bodyLength(): number {
    return (this.#len ??= bodyLengthOf(this.#resp ? this.#resp.body : null));
  }
  get headers(): Map<string, string> {
    return (this.#headers ??= this.#resp ? headerMap(this.#resp) : new Map());
  }
  get bodyBytes(): Buffer | null {
    if (this.#bytes === undefined) this.#bytes = bytesOf(this.#resp ? this.#resp.body : null, MAX_SCANNED_BODY);
    return this.#bytes;
  }
  get bodyText(): string | null {
    if (this.#text === undefined) {
      const raw = this.#resp ? this.#resp.body : null;
      if (typeof raw === 'string') this.#text = raw.length > MAX_SCANNED_BODY ? raw.slice(0, MAX_SCANNED_BODY) : raw;
      else {
        const b = this.bodyBytes;
        this.#text = b === null ? null : b.toString('utf8');
      }
    }
    return this.#text;
  }
  get title(): string | null {
    if (this.#title === undefined) {
      const t = this.bodyText;
      this.#title = t !== null ? extractTitle(t) : null;
    }
    return this.#title;
  }
}

function bodyLengthOf(v: unknown): number {
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (isObj(v) && v.format === 'base64' && typeof v.data === 'string') {
    const pad = v.data.endsWith('==') ? 2 : v.data.endsWith('=') ? 1 : 0;
    return Math.max(0, Math.floor((v.data.length * 3) / 4) - pad);
  }
  return 0;
}

function headerMap(resp: Obj): Map<string, string> {
  const out = new Map<string, string>();
  const add = (k: unknown, v: unknown): void => {
    if (typeof k !== 'string' || out.size >= 256) return;
    const key = k.toLowerCase();
    if (out.has(key)) return;
    const text = typeof v === 'string' ? (v.length > 8192 ? v.slice(0, 8192) : v) : decodeMaybeBinary(v, 8192).text;
    if (text !== null) out.set(key, text);
  };
  for (const pair of arr(resp.headers_list)) if (Array.isArray(pair)) add(pair[0], pair[1]);
  if (isObj(resp.headers)) for (const [k, v] of entriesOf(resp.headers, 256)) add(k, Array.isArray(v) ? v[0] : v);
  return out;
}

function queryView(q: unknown, ref: string): QueryView | null {
  if (!isObj(q)) return null;
  const addrs: string[] = [];
  let aToNonA = false;
  const qtype = str(q.query_type) ?? '';
  let asns: Map<string, { asn: number; org: string }> | null = null;
  for (const a of arr(q.answers)) {
    if (!isObj(a)) continue;
    const t = str(a.answer_type) ?? '';
    if (t === 'A' && qtype !== 'A' && qtype !== 'ANY' && qtype !== '') aToNonA = true;
    const ip = str(a.ipv4) ?? str(a.ipv6);
    if (ip && isIp(ip)) {
      const c = canonicalIp(ip);
      addrs.push(c);
      const asn = num(a.asn);
      if (asn) (asns ??= new Map()).set(c, { asn, org: str(a.as_org_name) ?? '' });
    }
  }
  return {
    ref,
    hostname: (str(q.hostname) ?? '').toLowerCase().replace(/\.$/, ''),
    engine: str(q.engine) ?? '',
    resolver: str(q.resolver_address) ?? '',
    queryType: str(q.query_type) ?? '',
    failure: failureOf(q.failure),
    addrs,
    aToNonA,
    asns,
    t: num(q.t),
  };
}

export function buildView(m: Obj): WebView {
  const tk = isObj(m.test_keys) ? m.test_keys : {};
  const input = str(m.input);
  const u = parseUrl(input);
  const domain = hostOf(u);
  const scheme = u ? u.protocol.replace(/:$/, '') : null;
  const port = u ? (u.port ? Number(u.port) : scheme === 'https' ? 443 : scheme === 'http' ? 80 : null) : null;

  const queries = arr(tk.queries)
    .map((q, i) => queryView(q, `queries[${i}]`))
    .filter((q): q is QueryView => q !== null);
  const duplicates = arr(tk.x_dns_duplicate_responses)
    .map((q, i) => queryView(q, `x_dns_duplicate_responses[${i}]`))
    .filter((q): q is QueryView => q !== null);

  const tcp = tcpViews(tk);

  const tls = tlsViews(tk);

  // Only the first entry is the outcome (OONI writes the redirect chain last-first): only it is
  // turned into a view; the analysis never reads the earlier hops' bodies.
  const requests: RequestView[] = [];
  arr(tk.requests)
    .slice(0, 1)
    .forEach((r, i) => {
      if (isObj(r)) requests.push(new LazyRequest(r, `requests[${i}]`));
    });

  const control = isObj(tk.control) && Object.keys(tk.control).length > 0 ? controlView(tk.control) : null;

  const followUps = followUpViews(tk);

  return new LazyWebView(tk, {
    input,
    domain,
    scheme,
    port,
    domainIsIp: domain !== null && isIp(domain),
    probeCc: str(m.probe_cc),
    queries,
    duplicates,
    tcp,
    tls,
    requests,
    control,
    controlFailure: tk.control_failure === null || tk.control_failure === undefined ? null : String(tk.control_failure).slice(0, 200),
    httpExperimentFailure: failureOf(tk.http_experiment_failure),
    followUps,
    testVersion: str(m.test_version),
    softwareName: str(m.software_name),
    recorded: {
      bodyLengthMatch: typeof tk.body_length_match === 'boolean' ? tk.body_length_match : null,
      bodyProportion: num(tk.body_proportion),
      titleMatch: typeof tk.title_match === 'boolean' ? tk.title_match : null,
      dnsConsistency: str(tk.dns_consistency),
    },
  });
}

/** tcp_connect entries with an address and a port. */
function tcpViews(tk: Obj): TcpView[] {
  const tcp: TcpView[] = [];
  arr(tk.tcp_connect).forEach((c, i) => {
    if (!isObj(c)) return;
    const ip = str(c.ip);
    const p = num(c.port);
    if (!ip || p === null) return;
    const status = isObj(c.status) ? c.status : {};
    tcp.push({
      ref: `tcp_connect[${i}]`,
      ip: canonicalIp(ip),
      port: p,
      failure: failureOf(status.failure) ?? (status.success === false ? 'unknown_failure: connect failed' : null),
    });
  });
  return tcp;
}

/** tls_handshakes entries. */
function tlsViews(tk: Obj): TlsView[] {
  const tls: TlsView[] = [];
  arr(tk.tls_handshakes).forEach((h, i) => {
    if (!isObj(h)) return;
    const { host, port: p } = splitHostPort(str(h.address) ?? '');
    tls.push({
      ref: `tls_handshakes[${i}]`,
      ip: canonicalIp(host),
      port: p ?? 443,
      sni: str(h.server_name),
      failure: failureOf(h.failure),
      noVerify: h.no_tls_verify === true,
      resetLatencyMs: num(h.x_reset_latency_ms),
    });
  });
  return tls;
}

/** The test helper's control (a non-empty object). */
function controlView(c: Obj): ControlView {
  const dns = isObj(c.dns) ? c.dns : null;
  const tcpMap = new Map<string, string | null>();
  if (isObj(c.tcp_connect))
    for (const [k, v] of entriesOf(c.tcp_connect, MAX_ENTRIES)) {
      const { host, port: p } = splitHostPort(k);
      if (p !== null && isObj(v))
        tcpMap.set(endpointKey(host, p), failureOf(v.failure) ?? (v.status === false ? 'unknown_failure: connect failed' : null));
    }
  const tlsMap = new Map<string, string | null>();
  if (isObj(c.tls_handshake))
    for (const [k, v] of entriesOf(c.tls_handshake, MAX_ENTRIES)) {
      const { host, port: p } = splitHostPort(k);
      if (p !== null && isObj(v))
        tlsMap.set(endpointKey(host, p), failureOf(v.failure) ?? (v.status === false ? 'unknown_failure: handshake failed' : null));
    }
  const h = isObj(c.http_request) && Object.keys(c.http_request).length > 0 ? c.http_request : null;
  const ipInfo = new Map<string, number>();
  if (isObj(c.ip_info))
    for (const [k, v] of entriesOf(c.ip_info, MAX_ENTRIES)) if (isObj(v) && num(v.asn)) ipInfo.set(canonicalIp(k), num(v.asn)!);
  return {
    dnsFailure: dns ? failureOf(dns.failure) : 'unknown_failure: no control dns',
    addrs: dns
      ? arr(dns.addrs)
          .filter((a): a is string => typeof a === 'string' && isIp(a))
          .map(canonicalIp)
      : [],
    tcp: tcpMap,
    tls: tlsMap,
    http: h
      ? {
          failure: failureOf(h.failure),
          statusCode: num(h.status_code) ?? 0,
          bodyLength: num(h.body_length) ?? 0,
          title: typeof h.title === 'string' ? h.title.trim() : null,
          headerNames: isObj(h.headers) ? Object.keys(h.headers).slice(0, 256) : [],
        }
      : null,
    ipInfo,
  };
}

/** The follow-up handshakes (SNI variants, residual checks) this probe adds. */
function followUpViews(tk: Obj): FollowUpView[] {
  const followUps: FollowUpView[] = [];
  for (const key of ['x_tls_sni_variants', 'x_residual_checks'] as const) {
    arr(tk[key]).forEach((f, i) => {
      if (!isObj(f)) return;
      const addr = str(f.address);
      const hp = addr ? splitHostPort(addr) : null;
      followUps.push({
        ref: `${key}[${i}]`,
        tag: str(f.tag) ?? (key === 'x_tls_sni_variants' ? (f.server_name === null ? 'no-sni' : 'decoy-before') : 'decoy-after'),
        ip: hp ? canonicalIp(hp.host) : null,
        port: hp ? hp.port : null,
        name: str(f.server_name) ?? str(f.host),
        failure: failureOf(f.failure),
      });
    });
  }
  return followUps;
}

type EagerParts = Omit<WebView, 'readBytesByAddress' | 'events' | 'captured' | 'hops'>;

const MAX_PACKETS = 64;

function hostPort(v: unknown): { ip: string | null; port: number | null } {
  const a = str(v);
  if (!a) return { ip: null, port: null };
  const { host, port } = splitHostPort(a);
  return { ip: isIp(host) ? canonicalIp(host) : null, port };
}

function capturedViews(tk: Obj): CapturedView[] {
  const out: CapturedView[] = [];
  arr(tk.x_captured).forEach((c, i) => {
    if (!isObj(c) || !str(c.operation)) return;
    const packets: PacketView[] = [];
    for (const p of arr(c.packets).slice(0, MAX_PACKETS)) {
      if (!isObj(p) || (p.dir !== 'in' && p.dir !== 'out')) continue;
      const hex = str(p.payload_hex);
      packets.push({
        dir: p.dir,
        flags: str(p.flags),
        ttl: num(p.ttl),
        ipId: num(p.ip_id),
        df: typeof p.df === 'boolean' ? p.df : null,
        window: num(p.window),
        payloadHex: hex && /^[0-9a-f]*$/i.test(hex) ? hex.toLowerCase().slice(0, 512) : '',
        tMs: num(p.t_ms),
      });
    }
    out.push({ ref: `x_captured[${i}]`, operation: str(c.operation)!, ...hostPort(c.address), failure: failureOf(c.failure), packets });
  });
  return out;
}

function hopViews(tk: Obj): HopView[] {
  const out: HopView[] = [];
  arr(tk.x_locate).forEach((h, i) => {
    const hop = isObj(h) ? num(h.hop) : null;
    if (!isObj(h) || hop === null || !str(h.operation)) return;
    out.push({ ref: `x_locate[${i}]`, operation: str(h.operation)!, ...hostPort(h.address), hop });
  });
  return out;
}

/**
 * The view itself. A class, not an object literal with getters: V8 allocates literals with
 * accessors in a way that kept each measurement's young objects alive through scavenges (every
 * minor GC then copied and promoted megabytes of dead measurements: the analysis's doubled GC
 * work, bench/analyze-throughput.ts). network_events are long (dozens to hundreds of entries) and
 * only the failure path needs them: they are turned into views on first use.
 * Note: the lazy parts are prototype getters, so a spread copy ({ ...view }) does not carry them.
 */
class LazyWebView implements WebView {
  readonly input: string | null;
  readonly domain: string | null;
  readonly scheme: string | null;
  readonly port: number | null;
  readonly domainIsIp: boolean;
  readonly probeCc: string | null;
  readonly queries: QueryView[];
  readonly duplicates: QueryView[];
  readonly tcp: TcpView[];
  readonly tls: TlsView[];
  readonly requests: RequestView[];
  readonly control: ControlView | null;
  readonly controlFailure: string | null;
  readonly httpExperimentFailure: string | null;
  readonly followUps: FollowUpView[];
  readonly testVersion: string | null;
  readonly softwareName: string | null;
  readonly recorded: WebView['recorded'];
  #tk: Obj;
  #events: EventView[] | undefined;
  #readBytes: Map<string, number> | undefined;
  #captured: CapturedView[] | undefined;
  #hops: HopView[] | undefined;

  constructor(tk: Obj, p: EagerParts) {
    this.#tk = tk;
    this.input = p.input;
    this.domain = p.domain;
    this.scheme = p.scheme;
    this.port = p.port;
    this.domainIsIp = p.domainIsIp;
    this.probeCc = p.probeCc;
    this.queries = p.queries;
    this.duplicates = p.duplicates;
    this.tcp = p.tcp;
    this.tls = p.tls;
    this.requests = p.requests;
    this.control = p.control;
    this.controlFailure = p.controlFailure;
    this.httpExperimentFailure = p.httpExperimentFailure;
    this.followUps = p.followUps;
    this.testVersion = p.testVersion;
    this.softwareName = p.softwareName;
    this.recorded = p.recorded;
  }

  get events(): EventView[] {
    if (this.#events === undefined) this.#build();
    return this.#events!;
  }

  get captured(): CapturedView[] {
    return (this.#captured ??= capturedViews(this.#tk));
  }

  get hops(): HopView[] {
    return (this.#hops ??= hopViews(this.#tk));
  }

  get readBytesByAddress(): Map<string, number> {
    if (this.#readBytes === undefined) this.#build();
    return this.#readBytes!;
  }

  #build(): void {
    const readBytes = new Map<string, number>();
    const events: EventView[] = [];
    arr(this.#tk.network_events).forEach((e, i) => {
      if (!isObj(e)) return;
      const a = str(e.address);
      const op = str(e.operation);
      if (!a || !op) return;
      const { host, port: p } = splitHostPort(a);
      if (p === null || !isIp(host)) return;
      const ip = canonicalIp(host);
      events.push({ ref: `network_events[${i}]`, op, ip, port: p, failure: failureOf(e.failure), t: num(e.t) });
      const n = num(e.num_bytes);
      if (op === 'read' && e.failure === null && n) {
        const k = endpointKey(ip, p);
        readBytes.set(k, (readBytes.get(k) ?? 0) + n);
      }
    });
    this.#events = events;
    this.#readBytes = readBytes;
  }
}
