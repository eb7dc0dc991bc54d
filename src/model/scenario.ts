// The lab's scenario format (../shared/DESIGN.md "Scenario format"): a contract users and outside
// evaluators write files against. Parsing and located validation live in src/lab/scenario.ts;
// these are the validated, typed shapes. Keys beyond ../shared/DESIGN.md (site behaviours, ISP resolver
// behaviours) are wallscope extensions documented in scenarios/README.md.
import type { Layer, Mechanism } from './verdict.js';
import type { PlatformSpec } from './platform.js';
import type { TimelineEntry } from './timeline.js';

export interface PageSpec {
  title?: string;
  bytes?: number;
}

/** How a site's certificate is made (extension, for the QA cases). */
export type CertKind = 'valid' | 'expired' | 'wrong-name' | 'untrusted';
/** A site that fails for everyone (extension): what a client sees when it connects. */
export type SiteDown = 'refused' | 'timeout' | 'reset' | 'eof' | 'nxdomain' | 'noaddrs' | 'localhost';
/** How a censor closes a connection it acts on (extension): a RST, or a FIN (the client reads EOF). */
export type CloseKind = 'reset' | 'eof';

export interface SiteSpec {
  domain: string;
  page?: PageSpec;
  http?: boolean; // default true
  https?: boolean; // default true
  /** Lab addresses (127.0.0.0/8 in loopback mode); assigned by the lab when absent. */
  addresses?: string[];
  /** Extension: certificate served over https (default valid, issued by the lab CA). */
  cert?: CertKind;
  /** Extension: the site is down for everyone (the helper sees it too). */
  down?: SiteDown;
  /** Extension: every request is answered by a 302 to this URL. */
  redirect?: string;
  /**
   * Extension: a CDN-style challenge (Cloudflare CAPTCHA): every client but the test helper gets a
   * 503 "Just a moment..." page instead of the site; the helper gets the genuine page.
   */
  captcha?: boolean;
}

/** Extension: the ISP resolver's own behaviour for names matching the rules (layer isp). */
export interface IspResolverSpec {
  nxdomain?: string[];
  servfail?: string[];
  /** Answer with a bogon (127.0.0.2: outside the lab range, yet on loopback; see lab BOGON_ANSWER). */
  bogon?: string[];
  /** Answer with 127.0.0.1 (localhost hijack). */
  localhost?: string[];
  /** Answer NOERROR with no address (NODATA). */
  nodata?: string[];
  /** Answer with the address of a transparent proxy of the ISP, which serves the genuine site. */
  proxy?: string[];
  /** Answer with the address of the ISP's TLS-intercepting box (certificates from an untrusted CA). */
  mitm?: string[];
  /** Answer with a lab address where nothing listens (ghost DNS blocking: names that do not exist resolve). */
  ghost?: string[];
}

export interface DnsInjectionSpec {
  rules: string[];
  /** Extension of "Lists as files": list files (absolute paths once read) adding to `rules`. */
  rules_file?: string[];
  injectors?: number;
  /** Addresses, or a file path relative to the scenario file; remapped into the lab range. */
  pool?: string[] | string;
  lead_ms?: number;
  ttl?: number[] | number;
}

export type ResetFingerprint = 'gfw-type-1' | 'gfw-type-2' | 'gfw-type-3' | 'henan';
export const RESET_FINGERPRINTS: readonly ResetFingerprint[] = ['gfw-type-1', 'gfw-type-2', 'gfw-type-3', 'henan'];

export interface SniResetSpec {
  rules: string[];
  rules_file?: string[];
  fingerprint?: ResetFingerprint;
  residual_s?: number;
  /** Extension: how the connection is closed (default reset). */
  close?: CloseKind;
}

export interface HttpResetSpec {
  host_rules?: string[];
  host_rules_file?: string[];
  keywords?: string[];
  keywords_file?: string[];
  residual_s?: number;
  /** Extension: how the connection is closed (default reset). */
  close?: CloseKind;
}

export interface BlockpageSpec {
  host_rules: string[];
  host_rules_file?: string[];
  page?: PageSpec;
}

export interface ThrottleSpec {
  sni_rules?: string[];
  sni_rules_file?: string[];
  host_rules?: string[];
  host_rules_file?: string[];
  kbps: number;
}

/**
 * Extension: the fully-encrypted-traffic censor (censors.md section 7; Wu et al. 2023). It inspects
 * only the client's first data packet of each TCP flow to the servers it covers; a packet no
 * exemption covers is blocked with probability `rate` (drawn per flow from the scenario seed), and
 * then every flow on (client ip, server ip, server port) is dropped for `residual_s`.
 */
export interface FetSpec {
  /** Blocking probability for a non-exempt first packet, 0..1 (default 0.263, the measured share). */
  rate?: number;
  /** Lab addresses, site domains or service names it applies to (default: every server of the lab). */
  servers?: string[];
  /** Residual blocking in seconds on (client, server, port) after a block (default 180). */
  residual_s?: number;
}

/**
 * Extension: the ESNI drop (censors.md section 3): a TLS ClientHello carrying one of `extensions`
 * (default [0xffce], encrypted_server_name) is dropped in path, no RST, and then every
 * client-to-server packet on (client ip, server ip, server port) for `residual_s` (default: 120 or
 * 180, drawn per block from the seed, as observed). On every port.
 */
export interface EsniDropSpec {
  /** TLS extension types that trigger the drop (1 to 8 of them; 0xfe0d would emulate an ECH block). */
  extensions?: number[];
  /** Residual seconds (default: 120 or 180 per block). */
  residual_s?: number;
}

/**
 * Extension: a plain TCP service in the world (beyond the sites' 80/443), behind the censors' fronts
 * like a site: `sink` reads and answers only byte-count receipts (`wallscope fet sink`'s behaviour), `echo` answers
 * what it reads, `forward` relays to a program the user runs on loopback (an ss-server).
 */
export interface ServiceSpec {
  name: string;
  kind: 'sink' | 'echo' | 'forward';
  /** The port the front listens on (0 or absent: ephemeral). */
  port?: number;
  /** Lab address (assigned from 127.R.0.16 when absent). */
  address?: string;
  /** kind forward: the loopback `host:port` to relay to. */
  forward?: string;
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
  /** Extension: site domains or lab addresses whose SYNs are answered with a RST (connection refused). */
  reject?: string[];
  blockpage?: BlockpageSpec;
  throttle?: ThrottleSpec;
  /**
   * Extension, netns mode: the hop of this censor's router (1 = nearest the client; SP25 found
   * Henan at hop 5 and the GFW at hop 7). Routers in between forward without censoring. Default:
   * the previous censor's hop + 1. Loopback mode has no hops and ignores it.
   */
  hop?: number;
  /** Extension: the fully-encrypted-traffic censor. */
  fet?: FetSpec;
  /** Extension: the ESNI drop. */
  esni_drop?: EsniDropSpec;
}

export interface TargetExpectation {
  blocking?: 'dns' | 'tcp_ip' | 'http-failure' | 'http-diff' | false | null;
  accessible?: boolean | null;
  mechanism?: Mechanism | null; // null: no verdict (e.g. the control failed)
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
    resolvers: { isp: IspResolverSpec; public: Record<string, never> };
    helper: boolean;
    /** Extension: plain TCP services (none when absent). */
    services?: ServiceSpec[];
  };
  censors: CensorSpec[];
  targets?: TargetSpec[];
  /** Extension: the emulated social platform (scenarios/README.md "Platform"). */
  platform?: PlatformSpec;
  /** Rules added and removed at lab times (DESIGN.md "Timelines"; see src/model/timeline.ts). */
  timeline?: TimelineEntry[];
  /** Absolute path of the file it was read from, for resolving relative paths. */
  source?: string;
}
