// The censors of a scenario, compiled: what each layer does to a name, a ClientHello or a request.
// The censor fronts (front.ts), the DNS injectors and the ground truth (truth.ts) all ask these
// same functions, so the lab and its truth cannot disagree. Defaults follow censors.md and are
// listed in scenarios/README.md.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CensorSpec, CloseKind, Layer, ResetFingerprint, Scenario } from '../model/index.js';
import { fixturesDir } from '../probe/index.js';
import { decodePath, KeywordSet, RuleSet, sampled } from './rules.js';
import { scenarioPath } from './scenario.js';

/** First RST after the trigger, in ms (SP25: Henan mean 2.82 ms, GFW mean 17.98 ms). */
export const RESET_LATENCY_MS: Record<ResetFingerprint, number> = {
  henan: 2.8,
  'gfw-type-1': 18,
  'gfw-type-2': 18,
  'gfw-type-3': 18,
};
/** Residual blocking of (client, server, port): SNI 180 s for GFW types, none for Henan (SP25). */
export const DEFAULT_SNI_RESIDUAL_S: Record<ResetFingerprint, number> = {
  henan: 0,
  'gfw-type-1': 180,
  'gfw-type-2': 180,
  'gfw-type-3': 180,
};
/** HTTP residual: 90 s national (Clayton06), none elsewhere. */
export const DEFAULT_HTTP_RESIDUAL_S: Record<Layer, number> = { national: 90, regional: 0, isp: 0, unknown: 0 };
export const DEFAULT_FINGERPRINT: Record<Layer, ResetFingerprint> = {
  national: 'gfw-type-2',
  regional: 'henan',
  isp: 'henan',
  unknown: 'gfw-type-2',
};
export const DEFAULT_INJECTORS = 2; // N4P#466: two replies per query in 2025
export const DEFAULT_LEAD_MS = 20;
export const DEFAULT_TTLS = [234, 185, 92]; // TRIPLET sample
export const DEFAULT_POOL_FILE = 'gfw-forged-ips/wallbleed_ordered-ip-pool-injector-3-a.txt';

export type Action =
  | { kind: 'pass' }
  | { kind: 'reset'; censor: CompiledCensor; latencyMs: number; residualS: number; mechanism: 'tls.reset' | 'http.reset'; close: CloseKind }
  | { kind: 'blockpage'; censor: CompiledCensor; title: string; bytes: number }
  | { kind: 'throttle'; censor: CompiledCensor; kbps: number };

export interface CompiledCensor {
  spec: CensorSpec;
  name: string;
  layer: Layer;
  dns?: { rules: RuleSet; injectors: number; pool: string[]; leadMs: number; ttls: number[] };
  sni?: { rules: RuleSet; fingerprint: ResetFingerprint; residualS: number; close: CloseKind };
  http?: { hostRules: RuleSet; keywords: KeywordSet; residualS: number; latencyMs: number; close: CloseKind };
  /** Reassembles TCP segments (GFW) or looks at the first segment only (Henan, SP25). */
  tcpReassembly: boolean;
  nullRoute: Set<string>; // domains and addresses
  reject: Set<string>; // domains and addresses
  blockpage?: { hostRules: RuleSet; title: string; bytes: number };
  throttle?: { sniRules: RuleSet; hostRules: RuleSet; kbps: number };
}

/**
 * Where a pool file is: relative to the scenario file (../shared/DESIGN.md), or, for a path
 * `fixtures/...` that is not there, in the shared fixtures (../shared/fixtures, WALLSCOPE_SHARED):
 * so a scenario that names a shared pool keeps working when copied out of scenarios/.
 */
export function poolPath(s: Scenario, pool: string): string {
  const own = scenarioPath(s, pool);
  if (!pool.startsWith('fixtures/') || existsSync(own)) return own;
  return join(fixturesDir, pool.slice('fixtures/'.length));
}

/** Reads a forged pool: a list, or a file of one address a line (poolPath). */
export function loadPool(s: Scenario, pool: string[] | string | undefined): string[] {
  if (Array.isArray(pool)) return pool;
  const file = pool === undefined ? join(fixturesDir, DEFAULT_POOL_FILE) : poolPath(s, pool);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${s.source ?? s.name}: cannot read the forged pool ${file}: ${(e as Error).message}`, { cause: e });
  }
  const addrs = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => /^\d{1,3}(\.\d{1,3}){3}$/.test(l));
  if (addrs.length === 0) throw new Error(`${file}: no IPv4 address in the forged pool`);
  return addrs;
}

export function compileCensors(s: Scenario): CompiledCensor[] {
  return s.censors.map((c) => {
    const henanLike =
      c.sni_reset?.fingerprint === 'henan' || (c.sni_reset?.fingerprint === undefined && DEFAULT_FINGERPRINT[c.layer] === 'henan');
    const out: CompiledCensor = {
      spec: c,
      name: c.name,
      layer: c.layer,
      tcpReassembly: !henanLike,
      nullRoute: new Set((c.null_route ?? []).map((x) => x.toLowerCase())),
      reject: new Set((c.reject ?? []).map((x) => x.toLowerCase())),
    };
    if (c.dns_injection) {
      const d = c.dns_injection;
      out.dns = {
        rules: new RuleSet(d.rules, d.rules_file),
        injectors: d.injectors ?? DEFAULT_INJECTORS,
        pool: loadPool(s, d.pool),
        leadMs: d.lead_ms ?? DEFAULT_LEAD_MS,
        ttls: d.ttl === undefined ? DEFAULT_TTLS : Array.isArray(d.ttl) ? (d.ttl.length ? d.ttl : DEFAULT_TTLS) : [d.ttl],
      };
    }
    if (c.sni_reset) {
      const fp = c.sni_reset.fingerprint ?? DEFAULT_FINGERPRINT[c.layer];
      out.sni = {
        rules: new RuleSet(c.sni_reset.rules, c.sni_reset.rules_file),
        fingerprint: fp,
        residualS: c.sni_reset.residual_s ?? DEFAULT_SNI_RESIDUAL_S[fp],
        close: c.sni_reset.close ?? 'reset',
      };
    }
    if (c.http_reset) {
      out.http = {
        hostRules: new RuleSet(c.http_reset.host_rules ?? [], c.http_reset.host_rules_file),
        keywords: new KeywordSet(c.http_reset.keywords, c.http_reset.keywords_file),
        residualS: c.http_reset.residual_s ?? DEFAULT_HTTP_RESIDUAL_S[c.layer],
        latencyMs: c.layer === 'national' ? RESET_LATENCY_MS['gfw-type-2'] : RESET_LATENCY_MS.henan,
        close: c.http_reset.close ?? 'reset',
      };
    }
    if (c.blockpage) {
      out.blockpage = {
        hostRules: new RuleSet(c.blockpage.host_rules, c.blockpage.host_rules_file),
        title: c.blockpage.page?.title ?? 'Access denied',
        bytes: c.blockpage.page?.bytes ?? 600,
      };
    }
    if (c.throttle) {
      out.throttle = {
        sniRules: new RuleSet(c.throttle.sni_rules ?? [], c.throttle.sni_rules_file),
        hostRules: new RuleSet(c.throttle.host_rules ?? [], c.throttle.host_rules_file),
        kbps: c.throttle.kbps,
      };
    }
    return out;
  });
}

export class Policy {
  private current: CompiledCensor[];
  private world: Scenario;
  constructor(scenario: Scenario) {
    this.world = scenario;
    this.current = compileCensors(scenario);
  }
  get censors(): CompiledCensor[] {
    return this.current;
  }
  get scenario(): Scenario {
    return this.world;
  }

  /**
   * Timelines (src/model/timeline.ts): the censors' rules as they stand now. Every decision after
   * this call (a query, a ClientHello, a request) follows the new rules; residual blocking already
   * started keeps running, as a real censor's does.
   */
  update(scenario: Scenario): void {
    this.current = compileCensors(scenario);
    this.world = scenario;
  }

  private acts(c: CompiledCensor, name: string): boolean {
    return sampled(this.scenario.seed, c.name, name, c.spec.sampling);
  }

  /** Censors (in path order) that inject forged DNS answers for this name. */
  dnsInjectors(qname: string): CompiledCensor[] {
    return this.censors.filter((c) => c.dns && c.dns.rules.matches(qname) && this.acts(c, qname));
  }

  /** The first censor on the path that null-routes this site (by domain or any of its addresses). */
  nullRouter(domain: string, addresses: readonly string[]): CompiledCensor | null {
    return (
      this.censors.find(
        (c) => (c.nullRoute.has(domain.toLowerCase()) || addresses.some((a) => c.nullRoute.has(a))) && this.acts(c, domain),
      ) ?? null
    );
  }

  /** The first censor on the path that refuses connections to this site (RST to the SYN). */
  rejecter(domain: string, addresses: readonly string[]): CompiledCensor | null {
    return (
      this.censors.find((c) => (c.reject.has(domain.toLowerCase()) || addresses.some((a) => c.reject.has(a))) && this.acts(c, domain)) ??
      null
    );
  }

  /**
   * What the censors do to a ClientHello carrying `sni` (first acting censor on the path wins).
   * `segmented`: the ClientHello did not fit in the first TCP segment, so the censors that do not
   * reassemble TCP (Henan) cannot read it.
   */
  onClientHello(sni: string | null, segmented = false): Action {
    if (!sni) return { kind: 'pass' };
    for (const c of this.censors) {
      if (!this.acts(c, sni) || (segmented && !c.tcpReassembly)) continue;
      if (c.sni?.rules.matches(sni))
        return {
          kind: 'reset',
          censor: c,
          latencyMs: RESET_LATENCY_MS[c.sni.fingerprint],
          residualS: c.sni.residualS,
          mechanism: 'tls.reset',
          close: c.sni.close,
        };
      if (c.throttle?.sniRules.matches(sni)) return { kind: 'throttle', censor: c, kbps: c.throttle.kbps };
    }
    return { kind: 'pass' };
  }

  /** What the censors do to an HTTP request (Host without port, raw path). */
  onHttpRequest(host: string, path: string, segmented = false): Action {
    const decoded = decodePath(path);
    for (const c of this.censors) {
      if (!this.acts(c, host) || (segmented && !c.tcpReassembly)) continue;
      if (c.http && (c.http.hostRules.matches(host) || c.http.keywords.matches(decoded, host)))
        return {
          kind: 'reset',
          censor: c,
          latencyMs: c.http.latencyMs,
          residualS: c.http.residualS,
          mechanism: 'http.reset',
          close: c.http.close,
        };
      if (c.blockpage?.hostRules.matches(host)) return { kind: 'blockpage', censor: c, title: c.blockpage.title, bytes: c.blockpage.bytes };
      if (c.throttle?.hostRules.matches(host)) return { kind: 'throttle', censor: c, kbps: c.throttle.kbps };
    }
    return { kind: 'pass' };
  }
}
