// Reads a scenario file (../shared/DESIGN.md "Scenario format") into the typed Scenario of src/model, with
// located errors: every problem names the file, the line and column, the key path and what is
// wrong. Unknown keys are rejected, so a typo never silently turns a censor off.
import { readFileSync } from 'node:fs';
import { checkKeywordFile, checkRuleFile, ListError } from './rules.js';
import { dirname, isAbsolute, resolve } from 'node:path';
import { domainToASCII } from 'node:url';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair } from 'yaml';
import {
  isLayer,
  isMechanism,
  LAYERS,
  MECHANISMS,
  RESET_FINGERPRINTS,
  type BlockpageSpec,
  type EsniDropSpec,
  type FetSpec,
  type ServiceSpec,
  type CensorSpec,
  type DnsInjectionSpec,
  type HttpResetSpec,
  type IspResolverSpec,
  type PageSpec,
  type ResetFingerprint,
  type Scenario,
  type SiteSpec,
  type SniResetSpec,
  type TargetExpectation,
  type TargetSpec,
  type ThrottleSpec,
  type TimelineDelta,
  type TimelineEntry,
  TIMELINE_ACTIONS,
  TIMELINE_ACTION_NAMES,
  scenarioAt,
} from '../model/index.js';
import { readPlatform } from './platform-scenario.js';

export interface ScenarioProblem {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
}

export class ScenarioError extends Error {
  readonly code = 'WALLSCOPE_SCENARIO_INVALID';
  constructor(readonly problems: ScenarioProblem[]) {
    super(problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.path ? p.path + ': ' : ''}${p.message}`).join('\n'));
    this.name = 'ScenarioError';
  }
}

const BLOCKINGS = ['dns', 'tcp_ip', 'http-failure', 'http-diff'] as const;

/** Walks the YAML tree, turning nodes into typed values and collecting located problems. */
export class Reader {
  readonly problems: ScenarioProblem[] = [];
  constructor(
    readonly file: string,
    private readonly lines: LineCounter,
    private readonly doc: Document,
  ) {}

  /** Follows YAML aliases (`*name`), so an anchored list can serve several censors. */
  deref(node: Node | null | undefined): Node | null | undefined {
    for (let i = 0; i < 8 && isAlias(node); i++) node = node.resolve(this.doc) as Node | undefined;
    return node;
  }

  fail(node: Node | null | undefined, path: string, message: string, offset = 0): void {
    const at = node?.range?.[0] ?? offset;
    const pos = this.lines.linePos(at);
    this.problems.push({ file: this.file, line: pos.line, col: pos.col, path, message });
  }

  /** A mapping with only the given keys; returns key -> node. */
  map(node: Node | null | undefined, path: string, allowed: readonly string[], required: readonly string[] = []): Map<string, Node> | null {
    node = this.deref(node);
    const out = new Map<string, Node>();
    if (!isMap(node)) {
      this.fail(node, path, `expected a mapping with keys ${allowed.join(', ')}`);
      return null;
    }
    for (const pair of node.items as Pair<Node, Node>[]) {
      const key = isScalar(pair.key) ? String(pair.key.value) : null;
      const kpath = path ? `${path}.${key}` : String(key);
      if (key === null) {
        this.fail(pair.key, path, 'keys must be plain strings');
        continue;
      }
      if (!allowed.includes(key)) {
        this.fail(pair.key, kpath, `unknown key '${key}' (allowed: ${allowed.join(', ')})`);
        continue;
      }
      if (out.has(key)) {
        this.fail(pair.key, kpath, `duplicate key '${key}'`);
        continue;
      }
      out.set(key, this.deref(pair.value as Node) as Node);
    }
    for (const r of required) if (!out.has(r)) this.fail(node, path, `missing required key '${r}'`);
    return out;
  }

  str(node: Node | null | undefined, path: string): string | undefined {
    if (isScalar(node) && typeof node.value === 'string' && node.value.length > 0) return node.value;
    this.fail(node, path, 'expected a non-empty string');
    return undefined;
  }

  num(node: Node | null | undefined, path: string, min: number, max: number, integer = false): number | undefined {
    if (isScalar(node) && typeof node.value === 'number' && Number.isFinite(node.value)) {
      const v = node.value;
      if (v < min || v > max) this.fail(node, path, `expected a number from ${min} to ${max}, got ${v}`);
      else if (integer && !Number.isInteger(v)) this.fail(node, path, `expected a whole number, got ${v}`);
      else return v;
      return undefined;
    }
    this.fail(node, path, `expected a number from ${min} to ${max}`);
    return undefined;
  }

  bool(node: Node | null | undefined, path: string): boolean | undefined {
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    this.fail(node, path, 'expected true or false');
    return undefined;
  }

  oneOf<T extends string>(node: Node | null | undefined, path: string, values: readonly T[]): T | undefined {
    if (isScalar(node) && typeof node.value === 'string' && (values as readonly string[]).includes(node.value)) return node.value as T;
    this.fail(node, path, `expected one of ${values.join(', ')}`);
    return undefined;
  }

  seq(node: Node | null | undefined, path: string): Node[] {
    node = this.deref(node);
    if (isSeq(node)) return (node.items as Node[]).map((n) => this.deref(n) as Node);
    this.fail(node, path, 'expected a list');
    return [];
  }

  strings(node: Node | null | undefined, path: string): string[] {
    return this.seq(node, path)
      .map((n, i) => this.str(n, `${path}[${i}]`))
      .filter((s): s is string => s !== undefined);
  }

  /**
   * `<key>_file` ("Lists as files", DESIGN.md): one path or a list of paths, relative to the
   * scenario file; each list is read and checked now (a bad line is reported as list-file:line)
   * and the absolute paths are kept. The compiled list is cached, so the lab does not read it twice.
   */
  listFiles(node: Node | null | undefined, path: string, kind: 'rules' | 'keywords'): string[] {
    node = this.deref(node);
    const items = isSeq(node) ? this.strings(node, path) : [this.str(node, path)].filter((x): x is string => x !== undefined);
    const out: string[] = [];
    for (const f of items) {
      const abs = isAbsolute(f) ? f : resolve(dirname(resolve(this.file)), f);
      try {
        if (kind === 'rules') checkRuleFile(abs);
        else checkKeywordFile(abs);
        out.push(abs);
      } catch (e) {
        if (!(e instanceof ListError)) throw e;
        if (e.line === 0) this.fail(node, path, e.reason);
        else this.problems.push({ file: e.file, line: e.line, col: 1, path, message: e.reason });
      }
    }
    return out;
  }

  /** Regexes over names, checked to compile (matched case-insensitively, as the censors do). */
  rules(node: Node | null | undefined, path: string): string[] {
    const items = this.seq(node, path);
    const out: string[] = [];
    items.forEach((n, i) => {
      const s = this.str(n, `${path}[${i}]`);
      if (s === undefined) return;
      try {
        new RegExp(s, 'i');
        out.push(s);
      } catch (e) {
        this.fail(n, `${path}[${i}]`, `not a valid regular expression: ${(e as Error).message}`);
      }
    });
    return out;
  }
}

const DOMAIN_RE = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i;

function readPage(r: Reader, node: Node, path: string): PageSpec | undefined {
  const m = r.map(node, path, ['title', 'bytes']);
  if (!m) return undefined;
  const page: PageSpec = {};
  if (m.has('title')) page.title = r.str(m.get('title'), `${path}.title`);
  if (m.has('bytes')) page.bytes = r.num(m.get('bytes'), `${path}.bytes`, 0, 64 * 1024 * 1024, true);
  return page;
}

function readSite(r: Reader, node: Node, path: string): SiteSpec | undefined {
  const m = r.map(node, path, ['domain', 'page', 'http', 'https', 'addresses', 'cert', 'down', 'redirect', 'captcha'], ['domain']);
  if (!m) return undefined;
  const written = r.str(m.get('domain'), `${path}.domain`);
  if (written === undefined) return undefined;
  // Internationalized names are kept in their ASCII (punycode) form, the one on the wire (RFC 5891).
  // eslint-disable-next-line no-control-regex -- "all ASCII", control characters included (DOMAIN_RE refuses them next)
  const domain = /^[\x00-\x7f]*$/.test(written) ? written.toLowerCase() : domainToASCII(written);
  if (!DOMAIN_RE.test(domain)) r.fail(m.get('domain'), `${path}.domain`, `'${written}' is not a domain name`);
  const site: SiteSpec = { domain };
  if (m.has('page')) site.page = readPage(r, m.get('page')!, `${path}.page`);
  if (m.has('http')) site.http = r.bool(m.get('http'), `${path}.http`);
  if (m.has('https')) site.https = r.bool(m.get('https'), `${path}.https`);
  if (m.has('addresses')) {
    const addrs = r.strings(m.get('addresses'), `${path}.addresses`);
    r.seq(m.get('addresses'), `${path}.addresses`).forEach((n, i) => {
      const a = isScalar(n) ? String(n.value) : '';
      if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || a.split('.').some((x) => Number(x) > 255))
        r.fail(n, `${path}.addresses[${i}]`, `'${a}' is not a lab address (loopback mode uses 127.0.0.0/8)`);
    });
    site.addresses = addrs;
  }
  if (m.has('cert')) site.cert = r.oneOf(m.get('cert'), `${path}.cert`, ['valid', 'expired', 'wrong-name', 'untrusted'] as const);
  if (m.has('down'))
    site.down = r.oneOf(m.get('down'), `${path}.down`, ['refused', 'timeout', 'reset', 'eof', 'nxdomain', 'noaddrs', 'localhost'] as const);
  if (m.has('captcha')) site.captcha = r.bool(m.get('captcha'), `${path}.captcha`);
  if (m.has('redirect')) {
    const u = r.str(m.get('redirect'), `${path}.redirect`);
    if (u !== undefined) {
      site.redirect = u;
      try {
        new URL(u);
      } catch {
        // A broken Location is a legitimate QA case; only an empty one is an error.
      }
    }
  }
  if (site.http === false && site.https === false) r.fail(node, path, 'a site must be served over http or https (both are false)');
  return site;
}

const LAB_ADDRESS_RE = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

function readService(r: Reader, node: Node, path: string): ServiceSpec | undefined {
  const m = r.map(node, path, ['name', 'kind', 'port', 'address', 'forward'], ['name', 'kind']);
  if (!m) return undefined;
  const name = r.str(m.get('name'), `${path}.name`);
  const kind = r.oneOf(m.get('kind'), `${path}.kind`, ['sink', 'echo', 'forward'] as const);
  if (name === undefined || kind === undefined) return undefined;
  const svc: ServiceSpec = { name, kind };
  if (m.has('port')) svc.port = r.num(m.get('port'), `${path}.port`, 0, 65535, true);
  if (m.has('address')) {
    const a = r.str(m.get('address'), `${path}.address`);
    if (a !== undefined && (!LAB_ADDRESS_RE.test(a) || a.split('.').some((x) => Number(x) > 255)))
      r.fail(m.get('address'), `${path}.address`, `'${a}' is not a lab address (loopback mode uses 127.0.0.0/8)`);
    else svc.address = a;
  }
  if (m.has('forward')) {
    const f = r.str(m.get('forward'), `${path}.forward`);
    // Safety: the lab relays only to loopback, never off the machine.
    const fm = f === undefined ? null : /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]):(\d{1,5})$/.exec(f);
    if (!fm || Number(fm[2]) < 1 || Number(fm[2]) > 65535)
      r.fail(m.get('forward'), `${path}.forward`, `expected a loopback host:port (127.x.y.z:PORT or [::1]:PORT), got '${f}'`);
    else svc.forward = f;
  }
  if (kind === 'forward' && !m.has('forward')) r.fail(node, path, "kind 'forward' needs forward: HOST:PORT");
  if (kind !== 'forward' && m.has('forward')) r.fail(m.get('forward'), `${path}.forward`, `only kind 'forward' relays`);
  return svc;
}

function readIsp(r: Reader, node: Node, path: string): IspResolverSpec {
  const keys = ['nxdomain', 'servfail', 'bogon', 'localhost', 'nodata', 'proxy', 'mitm', 'ghost'] as const;
  const m = r.map(node, path, keys);
  const out: IspResolverSpec = {};
  if (!m) return out;
  for (const k of keys) if (m.has(k)) out[k] = r.rules(m.get(k), `${path}.${k}`);
  return out;
}

function readDnsInjection(r: Reader, node: Node, path: string): DnsInjectionSpec | undefined {
  const m = r.map(node, path, ['rules', 'rules_file', 'injectors', 'pool', 'lead_ms', 'ttl']);
  if (!m) return undefined;
  const spec: DnsInjectionSpec = { rules: m.has('rules') ? r.rules(m.get('rules'), `${path}.rules`) : [] };
  if (m.has('rules_file')) spec.rules_file = r.listFiles(m.get('rules_file'), `${path}.rules_file`, 'rules');
  if (!m.has('rules') && !m.has('rules_file')) r.fail(node, path, "missing required key 'rules' (or 'rules_file')");
  if (m.has('injectors')) spec.injectors = r.num(m.get('injectors'), `${path}.injectors`, 1, 16, true);
  if (m.has('pool')) {
    const p = m.get('pool')!;
    if (isSeq(p)) {
      spec.pool = r.strings(p, `${path}.pool`);
      (p.items as Node[]).forEach((n, i) => {
        const a = isScalar(n) ? String(n.value) : '';
        if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(a) && !a.includes(':')) r.fail(n, `${path}.pool[${i}]`, `'${a}' is not an IP address`);
      });
      if (spec.pool.length === 0) r.fail(p, `${path}.pool`, 'the forged pool is empty');
    } else spec.pool = r.str(p, `${path}.pool`);
  }
  if (m.has('lead_ms')) spec.lead_ms = r.num(m.get('lead_ms'), `${path}.lead_ms`, 0, 5000);
  if (m.has('ttl')) {
    const t = m.get('ttl')!;
    spec.ttl = isSeq(t)
      ? (t.items as Node[]).map((n, i) => r.num(n, `${path}.ttl[${i}]`, 0, 2 ** 31 - 1, true)).filter((x): x is number => x !== undefined)
      : r.num(t, `${path}.ttl`, 0, 2 ** 31 - 1, true);
  }
  return spec;
}

/** `sni_reset:` (rules or rules_file). */
function readSniReset(r: Reader, node: Node | null | undefined, p: string): SniResetSpec | undefined {
  const s = r.map(node, p, ['rules', 'rules_file', 'fingerprint', 'residual_s', 'close']);
  if (s) {
    const spec: SniResetSpec = { rules: s.has('rules') ? r.rules(s.get('rules'), `${p}.rules`) : [] };
    if (s.has('rules_file')) spec.rules_file = r.listFiles(s.get('rules_file'), `${p}.rules_file`, 'rules');
    if (!s.has('rules') && !s.has('rules_file')) r.fail(node, p, "missing required key 'rules' (or 'rules_file')");
    if (s.has('fingerprint')) spec.fingerprint = r.oneOf<ResetFingerprint>(s.get('fingerprint'), `${p}.fingerprint`, RESET_FINGERPRINTS);
    if (s.has('residual_s')) spec.residual_s = r.num(s.get('residual_s'), `${p}.residual_s`, 0, 86400);
    if (s.has('close')) spec.close = r.oneOf(s.get('close'), `${p}.close`, ['reset', 'eof'] as const);
    return spec;
  }
  return undefined;
}

/** `http_reset:` (host rules or keywords, or their files). */
function readHttpReset(r: Reader, node: Node | null | undefined, p: string): HttpResetSpec | undefined {
  const s = r.map(node, p, ['host_rules', 'host_rules_file', 'keywords', 'keywords_file', 'residual_s', 'close']);
  if (s) {
    const spec: HttpResetSpec = {};
    if (s.has('host_rules')) spec.host_rules = r.rules(s.get('host_rules'), `${p}.host_rules`);
    if (s.has('host_rules_file')) spec.host_rules_file = r.listFiles(s.get('host_rules_file'), `${p}.host_rules_file`, 'rules');
    if (s.has('keywords')) spec.keywords = r.strings(s.get('keywords'), `${p}.keywords`);
    if (s.has('keywords_file')) spec.keywords_file = r.listFiles(s.get('keywords_file'), `${p}.keywords_file`, 'keywords');
    if (s.has('residual_s')) spec.residual_s = r.num(s.get('residual_s'), `${p}.residual_s`, 0, 86400);
    if (s.has('close')) spec.close = r.oneOf(s.get('close'), `${p}.close`, ['reset', 'eof'] as const);
    if (!spec.host_rules && !spec.keywords && !spec.host_rules_file && !spec.keywords_file)
      r.fail(node, p, 'needs host_rules or keywords (or their _file)');
    return spec;
  }
  return undefined;
}

/** `fet:`; `fet: {}` and a bare `fet:` both mean the published defaults. */
function readFet(r: Reader, node: Node | null | undefined, p: string): FetSpec | undefined {
  // `fet: {}` and a bare `fet:` both mean the published defaults.
  const s = isScalar(node) && node.value === null ? new Map<string, Node | null>() : r.map(node, p, ['rate', 'servers', 'residual_s']);
  if (s) {
    const spec: FetSpec = {};
    if (s.has('rate')) spec.rate = r.num(s.get('rate'), `${p}.rate`, 0, 1);
    if (s.has('servers')) spec.servers = r.strings(s.get('servers'), `${p}.servers`);
    if (s.has('residual_s')) spec.residual_s = r.num(s.get('residual_s'), `${p}.residual_s`, 0, 86400);
    return spec;
  }
  return undefined;
}

/** `esni_drop:`; empty means the defaults. */
function readEsniDrop(r: Reader, node: Node | null | undefined, p: string): EsniDropSpec | undefined {
  const s = isScalar(node) && node.value === null ? new Map<string, Node | null>() : r.map(node, p, ['extensions', 'residual_s']);
  if (s) {
    const spec: EsniDropSpec = {};
    if (s.has('extensions')) {
      const list = s.get('extensions');
      const items = isSeq(list) ? list.items : [];
      if (!isSeq(list) || items.length < 1 || items.length > 8)
        r.fail(list ?? node, `${p}.extensions`, 'must be a list of 1 to 8 TLS extension types (e.g. 0xffce)');
      else spec.extensions = items.map((it, k) => r.num(it as Node, `${p}.extensions[${k}]`, 0, 65535, true) ?? 0);
    }
    if (s.has('residual_s')) spec.residual_s = r.num(s.get('residual_s'), `${p}.residual_s`, 0, 86400);
    return spec;
  }
  return undefined;
}

/** `blockpage:` (host rules or host_rules_file, and the page). */
function readBlockpage(r: Reader, node: Node | null | undefined, p: string): BlockpageSpec | undefined {
  const s = r.map(node, p, ['host_rules', 'host_rules_file', 'page']);
  if (s) {
    const spec: BlockpageSpec = { host_rules: s.has('host_rules') ? r.rules(s.get('host_rules'), `${p}.host_rules`) : [] };
    if (s.has('host_rules_file')) spec.host_rules_file = r.listFiles(s.get('host_rules_file'), `${p}.host_rules_file`, 'rules');
    if (!s.has('host_rules') && !s.has('host_rules_file')) r.fail(node, p, "missing required key 'host_rules' (or 'host_rules_file')");
    if (s.has('page')) spec.page = readPage(r, s.get('page')!, `${p}.page`);
    return spec;
  }
  return undefined;
}

/** `throttle:` (SNI or host rules, or their files, and the rate). */
function readThrottle(r: Reader, node: Node | null | undefined, p: string): ThrottleSpec | undefined {
  const s = r.map(node, p, ['sni_rules', 'sni_rules_file', 'host_rules', 'host_rules_file', 'kbps'], ['kbps']);
  if (s) {
    const spec: ThrottleSpec = { kbps: r.num(s.get('kbps'), `${p}.kbps`, 0.1, 1e7) ?? 1 };
    if (s.has('sni_rules')) spec.sni_rules = r.rules(s.get('sni_rules'), `${p}.sni_rules`);
    if (s.has('sni_rules_file')) spec.sni_rules_file = r.listFiles(s.get('sni_rules_file'), `${p}.sni_rules_file`, 'rules');
    if (s.has('host_rules')) spec.host_rules = r.rules(s.get('host_rules'), `${p}.host_rules`);
    if (s.has('host_rules_file')) spec.host_rules_file = r.listFiles(s.get('host_rules_file'), `${p}.host_rules_file`, 'rules');
    if (!spec.sni_rules && !spec.host_rules && !spec.sni_rules_file && !spec.host_rules_file)
      r.fail(node, p, 'needs sni_rules or host_rules (or their _file)');
    return spec;
  }
  return undefined;
}

function readCensor(r: Reader, node: Node, path: string): CensorSpec | undefined {
  const m = r.map(
    node,
    path,
    [
      'name',
      'layer',
      'sampling',
      'dns_injection',
      'sni_reset',
      'http_reset',
      'null_route',
      'reject',
      'blockpage',
      'throttle',
      'fet',
      'esni_drop',
      'hop',
    ],
    ['name', 'layer'],
  );
  if (!m) return undefined;
  const name = r.str(m.get('name'), `${path}.name`);
  const layer = r.oneOf(m.get('layer'), `${path}.layer`, ['national', 'regional', 'isp'] as const);
  if (name === undefined || layer === undefined) return undefined;
  const c: CensorSpec = { name, layer };
  if (m.has('sampling')) c.sampling = r.num(m.get('sampling'), `${path}.sampling`, 0, 1);
  if (m.has('hop')) c.hop = r.num(m.get('hop'), `${path}.hop`, 1, 60, true);
  if (m.has('dns_injection')) c.dns_injection = readDnsInjection(r, m.get('dns_injection')!, `${path}.dns_injection`);
  if (m.has('sni_reset')) {
    const spec = readSniReset(r, m.get('sni_reset'), `${path}.sni_reset`);
    if (spec) c.sni_reset = spec;
  }
  if (m.has('http_reset')) {
    const spec = readHttpReset(r, m.get('http_reset'), `${path}.http_reset`);
    if (spec) c.http_reset = spec;
  }
  if (m.has('fet')) {
    const spec = readFet(r, m.get('fet'), `${path}.fet`);
    if (spec) c.fet = spec;
  }
  if (m.has('esni_drop')) {
    const spec = readEsniDrop(r, m.get('esni_drop'), `${path}.esni_drop`);
    if (spec) c.esni_drop = spec;
  }
  if (m.has('null_route')) c.null_route = r.strings(m.get('null_route'), `${path}.null_route`);
  if (m.has('reject')) c.reject = r.strings(m.get('reject'), `${path}.reject`);
  if (m.has('blockpage')) {
    const spec = readBlockpage(r, m.get('blockpage'), `${path}.blockpage`);
    if (spec) c.blockpage = spec;
  }
  if (m.has('throttle')) {
    const spec = readThrottle(r, m.get('throttle'), `${path}.throttle`);
    if (spec) c.throttle = spec;
  }
  return c;
}

function readExpect(r: Reader, node: Node, path: string): TargetExpectation | undefined {
  const m = r.map(node, path, ['blocking', 'accessible', 'mechanism', 'layer']);
  if (!m) return undefined;
  const e: TargetExpectation = {};
  if (m.has('blocking')) {
    const n = m.get('blocking');
    if (isScalar(n) && (n.value === false || n.value === null)) e.blocking = n.value as false | null;
    else e.blocking = r.oneOf(n, `${path}.blocking`, BLOCKINGS);
  }
  if (m.has('accessible')) {
    const n = m.get('accessible');
    if (isScalar(n) && n.value === null) e.accessible = null;
    else e.accessible = r.bool(n, `${path}.accessible`);
  }
  if (m.has('mechanism')) {
    const n = m.get('mechanism');
    if (isScalar(n) && n.value === null) e.mechanism = null;
    else if (isScalar(n) && isMechanism(n.value)) e.mechanism = n.value;
    else r.fail(n, `${path}.mechanism`, `expected one of ${MECHANISMS.join(', ')} or null`);
  }
  if (m.has('layer')) {
    const n = m.get('layer');
    if (isScalar(n) && n.value === null) e.layer = null;
    else if (isScalar(n) && isLayer(n.value)) e.layer = n.value;
    else r.fail(n, `${path}.layer`, `expected one of ${LAYERS.join(', ')} or null`);
  }
  return e;
}

function readTarget(r: Reader, node: Node, path: string): TargetSpec | undefined {
  let url: string | undefined;
  let expect: TargetExpectation | undefined;
  let urlNode: Node | null | undefined = node;
  if (isScalar(node)) url = r.str(node, path);
  else {
    const m = r.map(node, path, ['url', 'expect'], ['url']);
    if (!m) return undefined;
    urlNode = m.get('url');
    url = r.str(urlNode, `${path}.url`);
    if (m.has('expect')) expect = readExpect(r, m.get('expect')!, `${path}.expect`);
  }
  if (url === undefined) return undefined;
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') r.fail(urlNode, path, `'${url}' is not an http or https URL`);
  } catch {
    r.fail(urlNode, path, `'${url}' is not a URL`);
  }
  return expect ? { url, expect } : { url };
}

/** One `timeline:` entry (DESIGN.md "Timelines"): `{at, censor, add: {<action>: {<key>: [...]}}, remove: {...}}`. */
function readTimelineEntry(r: Reader, node: Node, path: string, censors: ReadonlySet<string>): TimelineEntry | undefined {
  const m = r.map(node, path, ['at', 'censor', 'add', 'remove'], ['at', 'censor']);
  if (!m) return undefined;
  // Seconds; a duration string ('90s', '5m', '1h') is read as seconds too.
  const atNode = m.get('at');
  const dur = isScalar(atNode) && typeof atNode.value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(s|m|h)\s*$/.exec(atNode.value) : null;
  const at = dur ? Number(dur[1]) * { s: 1, m: 60, h: 3600 }[dur[2] as 's' | 'm' | 'h'] : r.num(atNode, `${path}.at`, 0, 10 * 365 * 86400);
  const censor = r.str(m.get('censor'), `${path}.censor`);
  if (censor !== undefined && !censors.has(censor))
    r.fail(m.get('censor'), `${path}.censor`, `no censor named '${censor}' (censors: ${[...censors].join(', ') || 'none'})`);
  if (!m.has('add') && !m.has('remove')) r.fail(node, path, 'an entry needs add or remove');
  const delta = (key: 'add' | 'remove'): TimelineDelta | undefined => {
    if (!m.has(key)) return undefined;
    const p = `${path}.${key}`;
    const d = r.map(m.get(key), p, TIMELINE_ACTION_NAMES);
    if (!d) return undefined;
    const out: TimelineDelta = {};
    for (const action of TIMELINE_ACTION_NAMES) {
      if (!d.has(action)) continue;
      const keys: readonly string[] = TIMELINE_ACTIONS[action];
      const ap = `${p}.${action}`;
      if (keys.length === 0) {
        // A list (`null_route: [a.example]`), or the contract's `{<key>: [...]}` shape with one key.
        const v = d.get(action);
        if (isMap(v)) {
          const lm = r.map(v, ap, ['rules', 'entries', 'domains', 'addresses']);
          out[action] = lm ? [...lm].flatMap(([k, n]) => r.strings(n, `${ap}.${k}`)) : [];
        } else out[action] = r.strings(v, ap);
        continue;
      }
      const km = r.map(d.get(action), ap, keys);
      if (!km) continue;
      const lists: Record<string, string[]> = {};
      for (const k of keys)
        if (km.has(k)) lists[k] = k === 'keywords' ? r.strings(km.get(k), `${ap}.${k}`) : r.rules(km.get(k), `${ap}.${k}`);
      out[action] = lists;
    }
    return out;
  };
  const add = delta('add');
  const remove = delta('remove');
  if (at === undefined || censor === undefined) return undefined;
  return { at, censor, ...(add ? { add } : {}), ...(remove ? { remove } : {}) };
}

type Entries = Map<string, Node | null>;

/** `world:`: its sites (with their nodes, for later errors), the ISP resolver, the helper switch, the services. */
function readWorld(r: Reader, m: Entries) {
  const sites: SiteSpec[] = [];
  const siteNodes: Node[] = [];
  let isp: IspResolverSpec = {};
  let helper = true;
  const services: ServiceSpec[] = [];
  const w = m.has('world') ? r.map(m.get('world'), 'world', ['sites', 'resolvers', 'helper', 'services'], ['sites']) : null;
  if (w) {
    r.seq(w.get('sites'), 'world.sites').forEach((n, i) => {
      const s = readSite(r, n, `world.sites[${i}]`);
      if (s) {
        sites.push(s);
        siteNodes.push(n);
      }
    });
    if (w.has('resolvers')) {
      const rs = r.map(w.get('resolvers'), 'world.resolvers', ['isp', 'public']);
      if (rs?.has('isp')) {
        const n = rs.get('isp');
        if (!(isScalar(n) && n.value === null)) isp = readIsp(r, n!, 'world.resolvers.isp');
      }
      if (rs?.has('public')) {
        const n = rs.get('public');
        if (!(isScalar(n) && n.value === null)) r.map(n, 'world.resolvers.public', []);
      }
    }
    if (w.has('helper')) helper = r.bool(w.get('helper'), 'world.helper') ?? true;
    if (w.has('services')) {
      const names = new Set<string>();
      r.seq(w.get('services'), 'world.services').forEach((n, i) => {
        const svc = readService(r, n, `world.services[${i}]`);
        if (!svc) return;
        if (names.has(svc.name)) r.fail(n, `world.services[${i}].name`, `service '${svc.name}' is declared twice`);
        names.add(svc.name);
        services.push(svc);
      });
    }
  }
  return { sites, siteNodes, isp, helper, services };
}

/** A domain declared once, an address owned by one site; the set of domains. */
function checkSitesUnique(r: Reader, sites: SiteSpec[], siteNodes: Node[]): Set<string> {
  const seen = new Set<string>();
  const owner = new Map<string, string>();
  sites.forEach((s, i) => {
    if (seen.has(s.domain)) r.fail(siteNodes[i], `world.sites[${i}].domain`, `site '${s.domain}' is declared twice`);
    seen.add(s.domain);
    for (const a of s.addresses ?? []) {
      const other = owner.get(a);
      if (other && other !== s.domain)
        r.fail(siteNodes[i], `world.sites[${i}].addresses`, `address ${a} is already used by site '${other}'`);
      owner.set(a, s.domain);
    }
  });
  return seen;
}

/** `censors:`, nearest the client first: hops grow along the path, names are unique. */
function readCensors(r: Reader, m: Entries): CensorSpec[] {
  const censors: CensorSpec[] = [];
  if (m.has('censors')) {
    r.seq(m.get('censors'), 'censors').forEach((n, i) => {
      const c = readCensor(r, n, `censors[${i}]`);
      if (c) censors.push(c);
    });
  }
  // Hops grow along the path: the first listed censor is nearest the client.
  let lastHop = 0;
  censors.forEach((c, i) => {
    const hop = c.hop ?? lastHop + 1;
    if (hop <= lastHop)
      r.fail(
        r.seq(m.get('censors'), 'censors')[i],
        `censors[${i}].hop`,
        `hop ${hop} is not beyond the previous censor's hop ${lastHop} (censors are listed nearest the client first)`,
      );
    lastHop = Math.max(lastHop, hop);
  });
  const cnames = new Set<string>();
  for (const c of censors) {
    if (cnames.has(c.name)) r.fail(m.get('censors'), 'censors', `censor name '${c.name}' is used twice`);
    cnames.add(c.name);
  }
  return censors;
}

/** `targets:`; a target outside the world needs an expectation. */
function readTargets(r: Reader, m: Entries, domains: Set<string>): TargetSpec[] {
  const targets: TargetSpec[] = [];
  r.seq(m.get('targets'), 'targets').forEach((n, i) => {
    const t = readTarget(r, n, `targets[${i}]`);
    if (t) targets.push(t);
  });
  targets.forEach((t, i) => {
    let host = '';
    try {
      host = new URL(t.url).hostname.toLowerCase();
    } catch {
      return;
    }
    if (!domains.has(host) && !(t.expect && Object.keys(t.expect).length)) {
      const n = (m.get('targets') as { items?: Node[] }).items?.[i];
      r.fail(n, `targets[${i}]`, `'${host}' is not a site of this world; declare it under world.sites or give an expect`);
    }
  });
  return targets;
}

/** `timeline:` entries, replayed once to find removals of rules that are not there. */
function readTimeline(r: Reader, m: Entries, cnames: ReadonlySet<string>, base: Omit<Scenario, 'timeline'>): TimelineEntry[] {
  const timeline: TimelineEntry[] = [];
  const nodes = new Map<TimelineEntry, Node>();
  r.seq(m.get('timeline'), 'timeline').forEach((n, i) => {
    const e = readTimelineEntry(r, n, `timeline[${i}]`, cnames);
    if (e) {
      timeline.push(e);
      nodes.set(e, n);
    }
  });
  // Replays the whole timeline once, so that a removal of a rule that is not there (a typo, or an
  // entry out of order) is an error here, not a silent no-op at lab time.
  if (!r.problems.length) {
    const issues: Parameters<typeof scenarioAt>[2] = [];
    scenarioAt({ ...base, timeline }, Infinity, issues);
    for (const is of issues) r.fail(nodes.get(is.entry), `timeline[${timeline.indexOf(is.entry)}]`, is.message);
  }
  return timeline;
}

/** Parses and validates a scenario. Throws ScenarioError listing every problem with its position. */
export function parseScenario(text: string, file: string): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const r = new Reader(file, lines, doc);
  for (const e of doc.errors) {
    const pos = lines.linePos(e.pos[0]);
    r.problems.push({ file, line: pos.line, col: pos.col, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
  }
  if (r.problems.length) throw new ScenarioError(r.problems);
  const root = doc.contents as Node | null;
  const m = r.map(root, '', ['name', 'seed', 'world', 'censors', 'targets', 'platform', 'timeline'], ['name', 'world']);
  if (!m) throw new ScenarioError(r.problems);
  const name = r.str(m.get('name'), 'name') ?? '';
  const seed = m.has('seed') ? (r.num(m.get('seed'), 'seed', 0, 2 ** 32 - 1, true) ?? 0) : 0;
  const { sites, siteNodes, isp, helper, services } = readWorld(r, m);
  const seen = checkSitesUnique(r, sites, siteNodes);
  const censors = readCensors(r, m);
  const cnames = new Set(censors.map((c) => c.name));
  const targets = m.has('targets') ? readTargets(r, m, seen) : undefined;
  const platform = m.has('platform') ? readPlatform(r, m.get('platform')!, 'platform') : undefined;
  const timeline = m.has('timeline')
    ? readTimeline(r, m, cnames, { name, seed, world: { sites, resolvers: { isp, public: {} }, helper }, censors })
    : undefined;
  if (r.problems.length) throw new ScenarioError(r.problems);
  const scenario: Scenario = {
    name,
    seed,
    world: { sites, resolvers: { isp, public: {} }, helper, ...(services.length ? { services } : {}) },
    censors,
  };
  if (targets) scenario.targets = targets;
  if (platform) scenario.platform = platform;
  if (timeline) scenario.timeline = timeline;
  scenario.source = isAbsolute(file) ? file : resolve(file);
  return scenario;
}

/** Reads a scenario file; a missing or unreadable file is a ScenarioError too. */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ScenarioError([{ file, line: 0, col: 0, path: '', message: `cannot read the scenario: ${(e as Error).message}` }]);
  }
  return parseScenario(text, resolve(file));
}

/** Resolves a path written in a scenario relative to the scenario file's folder. */
export function scenarioPath(s: Scenario, p: string): string {
  return isAbsolute(p) ? p : resolve(s.source ? dirname(s.source) : process.cwd(), p);
}
