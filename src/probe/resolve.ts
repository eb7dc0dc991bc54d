// Resolving a name the way the probe is configured to: UDP to a chosen resolver, DoH, or the
// system resolver. In lab mode (a restricted policy) the system resolver is never used.
import type { DnsQuery, Failure } from '../model/index.js';
import { unknownFailure } from '../model/index.js';
import { resolveDoh, resolveSystem, resolveTcp, resolveUdp, type QueryType } from './dns.js';
import type { NetPolicy } from './policy.js';
import type { Trace } from './trace.js';

export interface ResolveConfig {
  resolver?: string;
  doh?: string;
  policy: NetPolicy;
  ca?: string[];
  timeoutMs: number;
  windowMs: number;
  /**
   * With `resolver`: ask it over TCP as well (engine "tcp", tag `x_dns_tcp=compare`), in parallel with
   * UDP. Evidence only: the addresses dialed stay those of the UDP replies (as without it), so the
   * experiment measures what a user gets. An on-path injector forges UDP replies but (almost always)
   * not TCP ones; a lying resolver lies over both.
   */
  tcp?: boolean;
}

export const DNS_TCP_COMPARE_TAG = 'x_dns_tcp=compare';

export interface Resolution {
  queries: DnsQuery[];
  addrs: string[];
  failure: Failure | null;
  /** Late UDP replies (duplicates), available when the window closes. */
  late: Promise<DnsQuery[]>;
  /** --dns-tcp: the same questions asked over TCP (engine "tcp", tag x_dns_tcp=compare); evidence only. */
  compare?: Promise<DnsQuery[]>;
}

const TYPES: QueryType[] = ['A', 'AAAA'];

export async function resolveName(host: string, cfg: ResolveConfig, trace: Trace, tags?: string[]): Promise<Resolution> {
  const step = { trace, timeoutMs: cfg.timeoutMs, windowMs: cfg.windowMs, ...(tags ? { tags } : {}) };
  if (cfg.resolver) {
    // --dns-tcp: the comparison queries run alongside, and the measurement does not wait for them
    // (a censor that drops TCP/53 would otherwise cost a DNS timeout): they land in `compare`.
    const compare = cfg.tcp
      ? Promise.all(
          TYPES.map((t) => resolveTcp(host, t, cfg.resolver!, cfg.policy, { ...step, tags: [...(tags ?? []), DNS_TCP_COMPARE_TAG] })),
        ).then((rs) => rs.map((r) => r.query))
      : Promise.resolve([]);
    const [udp, doh] = await Promise.all([
      Promise.all(TYPES.map((t) => resolveUdp(host, t, cfg.resolver!, cfg.policy, step))),
      cfg.doh
        ? Promise.all(
            TYPES.map((t) =>
              resolveDoh(host, t, cfg.doh!, cfg.policy, {
                ...step,
                ...(cfg.ca ? { ca: cfg.ca } : {}),
                resolveHost: (h) => resolveAddrsVia(h, cfg, trace),
              }),
            ),
          )
        : Promise.resolve([]),
    ]);
    // RFC 1035 4.2.1 / RFC 7766: a reply with the TC bit is asked again over TCP.
    const tcp = await Promise.all(
      udp.filter((r) => r.truncated).map((r) => resolveTcp(host, r.query.query_type as QueryType, cfg.resolver!, cfg.policy, step)),
    );
    const addrs = unique([...udp.flatMap((r) => r.addrs), ...tcp.flatMap((r) => r.addrs)]);
    return {
      queries: [...udp.map((r) => r.query), ...tcp.map((r) => r.query), ...doh.map((r) => r.query)],
      addrs,
      failure: addrs.length ? null : firstFailure([...udp.map((r) => r.query), ...tcp.map((r) => r.query)]),
      late: Promise.all(udp.map((r) => r.late)).then((l) => l.flat()),
      compare,
    };
  }
  if (cfg.doh) {
    const doh = await Promise.all(
      TYPES.map((t) => resolveDoh(host, t, cfg.doh!, cfg.policy, { ...step, ...(cfg.ca ? { ca: cfg.ca } : {}) })),
    );
    const addrs = unique(doh.flatMap((r) => r.addrs));
    return {
      queries: doh.map((r) => r.query),
      addrs,
      failure: addrs.length ? null : firstFailure(doh.map((r) => r.query)),
      late: Promise.resolve([]),
    };
  }
  if (cfg.policy.restricted) {
    const t = trace.now();
    const failure = unknownFailure('lab mode: no resolver given (the system resolver is not used)');
    return {
      queries: [{ engine: 'getaddrinfo', resolver_address: '', hostname: host, query_type: 'ANY', failure, answers: null, t0: t, t }],
      addrs: [],
      failure,
      late: Promise.resolve([]),
    };
  }
  const sys = await resolveSystem(host, step);
  return { queries: [sys.query], addrs: sys.addrs, failure: sys.query.failure, late: Promise.resolve([]) };
}

async function resolveAddrsVia(host: string, cfg: ResolveConfig, trace: Trace): Promise<string[]> {
  const r = await resolveName(host, { ...cfg, doh: undefined, tcp: false }, trace);
  return r.addrs;
}

/**
 * The first failure in OONI's sense: the A query's when no address came back at all.
 * Why: a name with A records but no AAAA is not a failure of the lookup.
 */
function firstFailure(qs: DnsQuery[]): Failure {
  return qs.find((q) => q.failure && q.failure !== 'dns_no_answer')?.failure ?? qs[0]?.failure ?? 'dns_no_answer';
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
