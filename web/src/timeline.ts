// The evidence timeline of one measurement: every observation the probe recorded (DNS replies,
// connects, handshakes, requests, wallscope's follow-up checks), in time order, with the ones the
// verdict rests on and the DNS replies judged injected marked. Pure: measurement in, events out.
import type { DnsQuery, Measurement } from '../../src/model/measurement.js';
import type { Verdict } from '../../src/model/verdict.js';

export type EventKind = 'dns' | 'connect' | 'tls' | 'http' | 'sni-variant' | 'residual' | 'netevent';

export interface TimelineEvent {
  /** The verdict's evidence reference for this observation, e.g. "queries[0]". */
  ref: string;
  kind: EventKind;
  t0: number | null;
  t: number;
  title: string;
  details: string[];
  failure: string | null;
  /** DNS only: this reply is judged forged (injected). */
  injected: boolean;
  /** Listed in verdict.evidence. */
  evidence: boolean;
  /** For HTTP entries: index into test_keys.requests, to show the response. */
  request?: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function addrsOf(q: Partial<DnsQuery>): string[] {
  return arr(q.answers)
    .filter(isObj)
    .map((a) => str(a.ipv4) ?? str(a.ipv6) ?? str(a.hostname))
    .filter((s): s is string => s !== null);
}

type Draft = Omit<TimelineEvent, 'evidence' | 'injected'> & { injected?: boolean };

export function buildTimeline(m: Measurement, verdict: Verdict | null): TimelineEvent[] {
  const tk: Obj = isObj(m.test_keys) ? m.test_keys : {};
  const ev = new Set(verdict?.evidence ?? []);
  const drafts = [
    ...dnsEvents(tk, verdict),
    ...connectEvents(tk),
    ...tlsEvents(tk),
    ...httpEvents(tk),
    ...sniVariantEvents(tk),
    ...residualEvents(tk),
  ];
  const out: TimelineEvent[] = drafts.map((e) => ({ injected: false, ...e, evidence: ev.has(e.ref) }));
  out.sort((a, b) => (a.t0 ?? a.t) - (b.t0 ?? b.t) || a.t - b.t);
  return out;
}

/** DNS: the first replies plus the late duplicates (x_dns_duplicate_responses), the injected ones marked. */
function dnsEvents(tk: Obj, verdict: Verdict | null): Draft[] {
  const dns: Array<{ ref: string; q: Obj }> = [
    ...arr(tk.queries)
      .filter(isObj)
      .map((q, i) => ({ ref: `queries[${i}]`, q })),
    ...arr(tk.x_dns_duplicate_responses)
      .filter(isObj)
      .map((q, i) => ({ ref: `x_dns_duplicate_responses[${i}]`, q })),
  ];
  const control = isObj(tk.control) && isObj(tk.control.dns) ? arr(tk.control.dns.addrs).map(String) : [];
  const injected = injectedReplies(dns, control, verdict);
  return dns.map(({ ref, q }) => {
    const a = addrsOf(q);
    const rcode = num(q.rcode);
    return {
      ref,
      kind: 'dns',
      t0: num(q.t0),
      t: num(q.t) ?? 0,
      title:
        `DNS ${str(q.query_type) ?? '?'} ${str(q.hostname) ?? '?'} via ${str(q.engine) ?? '?'} ${str(q.resolver_address) ?? ''}`.trim(),
      details: [
        a.length ? `answers: ${a.join(', ')}` : 'no answers',
        ...(rcode !== null ? [`rcode ${rcode}`] : []),
        ...(ref.startsWith('x_dns_duplicate') ? ['a further reply to the same query (arrived after the first)'] : []),
      ],
      failure: str(q.failure),
      injected: injected.has(ref),
    };
  });
}

/**
 * The DNS replies judged forged: several replies to one query (or one, when the analysis says DNS
 * injection), told apart by the control's addresses, else by order of arrival.
 */
function injectedReplies(dns: Array<{ ref: string; q: Obj }>, control: string[], verdict: Verdict | null): Set<string> {
  const groups = new Map<string, Array<{ ref: string; q: Obj }>>();
  for (const d of dns) {
    const k = `${str(d.q.hostname)}|${str(d.q.query_type)}|${str(d.q.resolver_address)}|${str(d.q.engine)}`;
    groups.set(k, [...(groups.get(k) ?? []), d]);
  }
  const injected = new Set<string>();
  for (const g of groups.values()) {
    const replies = g.filter((d) => addrsOf(d.q).length > 0);
    const several = replies.length > 1 || (replies.length === 1 && g.some((d) => d.ref.startsWith('x_dns_duplicate_responses')));
    if (!several && verdict?.mechanism !== 'dns.injection') continue;
    const disagree = replies.filter((d) => control.length > 0 && !addrsOf(d.q).some((x) => control.includes(x)));
    if (control.length > 0 && disagree.length < replies.length) {
      // The control names the genuine addresses: replies with none of them are forged.
      for (const d of disagree) injected.add(d.ref);
    } else if (several) {
      // No control, or it agrees with no reply (a CDN answering differently per place): the
      // genuine reply is the one that arrives last; the earlier ones raced it (injectors are on-path).
      // (The last may carry no answer at all: a genuine "no AAAA record" behind forged A replies.)
      const last = g.reduce((p, c) => ((num(c.q.t) ?? 0) > (num(p.q.t) ?? 0) ? c : p));
      for (const d of replies) if (d !== last) injected.add(d.ref);
    } else if (control.length > 0) {
      for (const d of disagree) injected.add(d.ref); // one reply, judged injection by the analysis
    }
  }
  return injected;
}

/** tcp_connect. */
function connectEvents(tk: Obj): Draft[] {
  return arr(tk.tcp_connect)
    .filter(isObj)
    .map((c, i) => {
      const st = isObj(c.status) ? c.status : {};
      return {
        ref: `tcp_connect[${i}]`,
        kind: 'connect',
        t0: num(c.t0),
        t: num(c.t) ?? 0,
        title: `TCP connect ${str(c.ip) ?? '?'}:${num(c.port) ?? '?'}`,
        details: [st.success ? 'connected' : 'not connected'],
        failure: str(st.failure),
      };
    });
}

/** tls_handshakes. */
function tlsEvents(tk: Obj): Draft[] {
  return arr(tk.tls_handshakes)
    .filter(isObj)
    .map((h, i) => {
      const lat = num(h.x_reset_latency_ms);
      const tags = arr(h.tags).map(String);
      return {
        ref: `tls_handshakes[${i}]`,
        kind: 'tls',
        t0: num(h.t0),
        t: num(h.t) ?? 0,
        title: `TLS handshake ${str(h.address) ?? '?'} SNI ${str(h.server_name) || '(none)'}`,
        details: [
          ...(str(h.tls_version) ? [`${str(h.tls_version)} ${str(h.cipher_suite) ?? ''}`.trim()] : []),
          ...(lat !== null ? [`reset ${lat.toFixed(1)} ms after the ClientHello`] : []),
          ...(tags.length ? [`tags: ${tags.join(', ')}`] : []),
        ],
        failure: str(h.failure),
      };
    });
}

/** requests (the redirect chain). */
function httpEvents(tk: Obj): Draft[] {
  return arr(tk.requests)
    .filter(isObj)
    .map((r, i) => {
      const req = isObj(r.request) ? r.request : {};
      const res = isObj(r.response) ? r.response : null;
      const lat = num(r.x_reset_latency_ms);
      return {
        ref: `requests[${i}]`,
        kind: 'http',
        t0: num(r.t0),
        t: num(r.t) ?? 0,
        title: `HTTP ${str(req.method) ?? 'GET'} ${str(req.url) ?? '?'}`,
        details: [
          ...(res && num(res.code) ? [`status ${num(res.code)}`] : []),
          ...(lat !== null ? [`reset ${lat.toFixed(1)} ms after the request`] : []),
        ],
        failure: str(r.failure),
        request: i,
      };
    });
}

/** wallscope's SNI variants (x_tls_sni_variants). */
function sniVariantEvents(tk: Obj): Draft[] {
  return arr(tk.x_tls_sni_variants)
    .filter(isObj)
    .map((v, i) => {
      const tag = str(v.tag);
      return {
        ref: `x_tls_sni_variants[${i}]`,
        kind: 'sni-variant',
        t0: num(v.t0),
        t: num(v.t) ?? 0,
        title: `TLS check${tag ? ` (${tag})` : ''} ${str(v.address) ?? '?'} SNI ${str(v.server_name) || '(none)'}`,
        details: [
          v.failure ? 'failed' : 'succeeded',
          ...(num(v.x_reset_latency_ms) !== null ? [`reset ${num(v.x_reset_latency_ms)!.toFixed(1)} ms after the ClientHello`] : []),
        ],
        failure: str(v.failure),
      };
    });
}

/** wallscope's residual checks (x_residual_checks). */
function residualEvents(tk: Obj): Draft[] {
  return arr(tk.x_residual_checks)
    .filter(isObj)
    .map((v, i) => {
      const tag = str(v.tag);
      return {
        ref: `x_residual_checks[${i}]`,
        kind: 'residual',
        t0: num(v.t0),
        t: num(v.t) ?? 0,
        title: `Residual check${tag ? ` (${tag})` : ''} ${str(v.address) ?? '?'} ${str(v.host) ?? str(v.server_name) ?? ''}`.trim(),
        details: [
          v.failure ? 'blocked: residual blocking in force' : 'passed: no residual blocking',
          ...(num(v.status_code) !== null ? [`status ${num(v.status_code)}`] : []),
        ],
        failure: str(v.failure),
      };
    });
}

export function networkEvents(m: Measurement): TimelineEvent[] {
  const tk: Obj = isObj(m.test_keys) ? m.test_keys : {};
  return arr(tk.network_events)
    .filter(isObj)
    .map((e, i) => ({
      ref: `network_events[${i}]`,
      kind: 'netevent' as const,
      t0: num(e.t0),
      t: num(e.t) ?? 0,
      title: `${str(e.operation) ?? '?'} ${str(e.address) ?? ''}`.trim(),
      details: num(e.num_bytes) !== null ? [`${num(e.num_bytes)} bytes`] : [],
      failure: str(e.failure),
      injected: false,
      evidence: false,
    }));
}

/** A header or body value as text; binary values are shown as their base64 text. */
export function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (isObj(v) && v.format === 'base64' && typeof v.data === 'string') return `[binary, base64] ${v.data}`;
  if (v === null || v === undefined) return '';
  return JSON.stringify(v);
}
