// The lab's scenario format (DESIGN.md "Scenario format"): a contract users and outside
// evaluators write files against. Parsing and located validation live in src/lab/scenario.ts;
// these are the validated, typed shapes.
import type { Layer, Mechanism } from './verdict.js';

export interface PageSpec {
  title?: string;
  bytes?: number;
}

export interface SiteSpec {
  domain: string;
  page?: PageSpec;
  http?: boolean; // default true
  https?: boolean; // default true
  /** Lab addresses (127.0.0.0/8 in loopback mode); assigned by the lab when absent. */
  addresses?: string[];
}

export interface DnsInjectionSpec {
  rules: string[];
  injectors?: number;
  /** Addresses, or a file path relative to the scenario file; remapped into the lab range. */
  pool?: string[] | string;
  lead_ms?: number;
  ttl?: number[] | number;
}

export type ResetFingerprint = 'gfw-type-1' | 'gfw-type-2' | 'gfw-type-3' | 'henan';

export interface SniResetSpec {
  rules: string[];
  fingerprint?: ResetFingerprint;
  residual_s?: number;
}

export interface HttpResetSpec {
  host_rules?: string[];
  keywords?: string[];
  residual_s?: number;
}

export interface BlockpageSpec {
  host_rules: string[];
  page?: PageSpec;
}

export interface ThrottleSpec {
  sni_rules?: string[];
  host_rules?: string[];
  kbps: number;
}

export interface CensorSpec {
  name: string;
  layer: Layer;
  /** Share of flows the censor acts on, 0..1 (default 1). Drawn from the scenario seed. */
  sampling?: number;
  dns_injection?: DnsInjectionSpec;
  sni_reset?: SniResetSpec;
  http_reset?: HttpResetSpec;
  null_route?: string[];
  blockpage?: BlockpageSpec;
  throttle?: ThrottleSpec;
}

export interface TargetExpectation {
  blocking?: 'dns' | 'tcp_ip' | 'http-failure' | 'http-diff' | false | null;
  accessible?: boolean | null;
  mechanism?: Mechanism;
  layer?: Layer | null;
}

export interface TargetSpec {
  url: string;
  expect?: TargetExpectation;
}

export interface Scenario {
  name: string;
  seed: number;
  world: {
    sites: SiteSpec[];
    resolvers: { isp: Record<string, unknown>; public: Record<string, unknown> };
    helper: boolean;
  };
  censors: CensorSpec[];
  targets?: TargetSpec[];
  /** Absolute path of the file it was read from, for resolving relative paths. */
  source?: string;
}
