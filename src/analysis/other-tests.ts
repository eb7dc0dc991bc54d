// The anomaly rules of the reference's pipeline for the OONI tests other than web_connectivity:
// ooni/backend fastpath/fastpath/core.py score_measurement_* (read, not copied). The pipeline
// scores a measurement with `blocking_general` and calls it an anomaly above 0.5; a score it
// marks with accuracy 0 is a failed measurement (no verdict). We follow each rule, and say which.
// Pure: the measurement is only read.
import type { BlockingClass, Mechanism, Measurement, Verdict } from '../model/index.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v.slice(0, 4096) : []);

/** A reference score: null is the pipeline's "failure" (accuracy 0). */
interface Score {
  general: number | null;
  why: string;
  blocking: BlockingClass;
  mechanism: Mechanism;
}

const failed = (why: string): Score => ({ general: null, why, blocking: 'http-failure', mechanism: 'none' });

/** Endpoints reached and not reached (tcp_connect[].status.success). */
function tcpCounts(tk: Obj): { ok: number; bad: number } {
  let ok = 0;
  let bad = 0;
  for (const e of list(tk.tcp_connect)) {
    const s = isObj(e) && isObj(e.status) ? e.status.success : undefined;
    if (s === true) ok++;
    else if (s === false) bad++;
  }
  return { ok, bad };
}

function telegram(tk: Obj): Score {
  const { ok, bad } = tcpCounts(tk);
  let webFailure: string | null = null;
  let httpOk = 0;
  let httpBad = 0;
  for (const r of list(tk.requests)) {
    const url = isObj(r) && isObj(r.request) ? r.request.url : undefined;
    if (typeof url !== 'string') return failed('a request without a URL');
    const f = (r as Obj).failure;
    if (url === 'https://web.telegram.org/' || url === 'http://web.telegram.org/') {
      if (f !== null && f !== undefined) webFailure = String(f);
      continue;
    }
    if (f === null || f === undefined) httpOk++;
    else httpBad++;
  }
  let s = ok + bad > 0 ? bad / (ok + bad) : 0.5;
  s += httpOk + httpBad > 0 ? httpBad / (httpOk + httpBad) : 0.5;
  if (tk.telegram_web_status === 'blocked') s += 1;
  return {
    general: s,
    blocking: bad > 0 && httpBad === 0 ? 'tcp_ip' : 'http-failure',
    mechanism: 'none',
    why: `${bad} of ${ok + bad} Telegram endpoints unreachable, ${httpBad} of ${httpOk + httpBad} HTTP requests failed, Telegram Web ${String(tk.telegram_web_status ?? 'not tested')}${webFailure ? ` (${webFailure.slice(0, 60)})` : ''}`,
  };
}

const FB_CONSISTENCY = [
  'b_api_dns_consistent',
  'b_api_reachable',
  'b_graph_dns_consistent',
  'b_graph_reachable',
  'edge_dns_consistent',
  'edge_reachable',
  'external_cdn_dns_consistent',
  'external_cdn_reachable',
  'scontent_cdn_dns_consistent',
  'scontent_cdn_reachable',
  'star_dns_consistent',
  'star_reachable',
  'stun_dns_consistent',
].map((k) => `facebook_${k}`);
const FB_TRUES = [
  'b_api_dns_consistent',
  'b_api_reachable',
  'b_graph_dns_consistent',
  'b_graph_reachable',
  'dns_blocking',
  'edge_dns_consistent',
  'edge_reachable',
  'star_dns_consistent',
  'star_reachable',
  'stun_dns_consistent',
].map((k) => `facebook_${k}`);

function facebookMessenger(tk: Obj): Score {
  // The reference's "all fine" shortcut (its list includes facebook_dns_blocking among the trues; kept as it is).
  if (FB_TRUES.every((k) => tk[k] === true) && tk.facebook_tcp_blocking === false)
    return { general: 0, why: 'every Facebook endpoint consistent and reachable', blocking: 'tcp_ip', mechanism: 'none' };
  const bad = FB_CONSISTENCY.filter((k) => tk[k] === false);
  const flags = ['facebook_tcp_blocking', 'facebook_dns_blocking'].filter((k) => tk[k] === true);
  return {
    general: 0.5 * (bad.length + flags.length),
    blocking: tk.facebook_dns_blocking === true ? 'dns' : 'tcp_ip',
    mechanism: 'none',
    why:
      bad.length + flags.length
        ? `${[...flags, ...bad.map((k) => `${k} false`)].slice(0, 4).join(', ')}`
        : 'no inconsistent or unreachable endpoint',
  };
}

function hhfm(tk: Obj): Score {
  const r0 = list(tk.requests)[0];
  if (!isObj(r0) || !isObj(r0.response)) return failed('no response recorded');
  const body = r0.response.body;
  if (body === null || body === undefined)
    return { general: 1, why: 'the response had no body (total tampering)', blocking: 'http-diff', mechanism: 'http.diff' };
  let echoed: Obj | null = null;
  try {
    const parsed: unknown = typeof body === 'string' ? JSON.parse(body) : null;
    echoed = isObj(parsed) && isObj(parsed.headers_dict) ? parsed.headers_dict : null;
  } catch {
    echoed = null;
  }
  if (!echoed) return { general: 1, why: "the helper's echo of the headers was malformed", blocking: 'http-diff', mechanism: 'http.diff' };
  const pairs = (o: Obj, first: boolean): Set<string> =>
    new Set(
      Object.entries(o)
        .map(([k, v]) => `${k}\u0000${String(first && Array.isArray(v) ? v[0] : v)}`)
        .filter((x) => x !== 'Connection\u0000close'),
    );
  const got = pairs(echoed, true);
  const sent = pairs(isObj(r0.request) && isObj(r0.request.headers) ? r0.request.headers : {}, false);
  const diff = [...got].filter((x) => !sent.has(x)).length + [...sent].filter((x) => !got.has(x)).length;
  return diff === 0
    ? { general: 0, why: 'the headers arrived unchanged', blocking: 'http-diff', mechanism: 'none' }
    : {
        general: 1.1,
        why: `${diff} header(s) changed on the way: a middlebox rewrites HTTP`,
        blocking: 'http-diff',
        mechanism: 'http.diff',
      };
}

function hirl(tk: Obj): Score {
  const sent = list(tk.sent);
  const received = list(tk.received);
  if (sent.length === 0 && received.length === 0) return failed('nothing was sent or received');
  const n = Math.min(sent.length, received.length);
  let changed = 0;
  for (let i = 0; i < n; i++) if (JSON.stringify(sent[i]) !== JSON.stringify(received[i])) changed++;
  return changed
    ? {
        general: 1,
        why: `${changed} invalid request line(s) came back altered: a middlebox on the path parses HTTP`,
        blocking: 'http-diff',
        mechanism: 'http.diff',
      }
    : { general: 0, why: 'the invalid request lines came back as sent', blocking: 'http-diff', mechanism: 'none' };
}

function whatsapp(tk: Obj): Score {
  const wf = tk.whatsapp_web_failure;
  if (typeof wf === 'string' && wf.includes("unknown_failure 'ascii' co"))
    return failed("a known probe bug (unknown_failure 'ascii' codec)");
  const reqs = list(tk.requests);
  if (reqs.length === 0) return failed('no requests recorded');
  let web: boolean | null = null;
  let reg: boolean | null = null;
  for (const b of reqs) {
    const url = isObj(b) && isObj(b.request) ? b.request.url : '';
    const f = isObj(b) ? b.failure : true;
    if (url === 'https://web.whatsapp.com/') web = f === null || f === '' || f === false;
    else if (url === 'https://v.whatsapp.net/v2/register') reg = f === null;
  }
  if (web === null || reg === null) return failed('the web app or the registration server was not tested');
  if (!web || !reg)
    return {
      general: 1,
      why: `${!web ? 'WhatsApp Web' : 'the registration server'} could not be reached`,
      blocking: 'http-failure',
      mechanism: 'none',
    };
  const { ok, bad } = tcpCounts(tk);
  if (ok + bad === 0) return failed('no endpoint was tested');
  return ok > 0
    ? { general: 0, why: `WhatsApp Web, registration and ${ok} endpoint(s) reachable`, blocking: 'tcp_ip', mechanism: 'none' }
    : { general: 1, why: `none of ${bad} WhatsApp endpoints could be reached`, blocking: 'tcp_ip', mechanism: 'none' };
}

function tor(tk: Obj): Score {
  const targets = tk.targets;
  if (!isObj(targets) || Object.keys(targets).length === 0) return failed('no Tor targets recorded');
  let blocked = 0;
  let ok = 0;
  for (const d of Object.values(targets).slice(0, 4096)) {
    if (!isObj(d) || !('failure' in d) || !('network_events' in d)) return failed('a target without failure or network_events');
    if (d.failure === false) continue;
    if (d.failure === null) ok++;
    else blocked++;
  }
  if (blocked + ok === 0) return failed('no target was run');
  return {
    general: blocked / (blocked + ok),
    why: `${blocked} of ${blocked + ok} Tor targets failed`,
    blocking: 'tcp_ip',
    mechanism: 'none',
  };
}

function signal(m: Measurement, tk: Obj): Score {
  // The pipeline discards versions it knows were wrong (a changed certificate, a retired endpoint).
  const tv = typeof m.test_version === 'string' ? m.test_version : '0.0.0';
  const t = typeof m.measurement_start_time === 'string' ? m.measurement_start_time : null;
  if (t === null) return failed('no measurement_start_time');
  const ver = (s: string): number[] => s.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const lt = (a: string, b: string): boolean => {
    const x = ver(a);
    const y = ver(b);
    for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
    return false;
  };
  const engine = isObj(m.annotations) && typeof m.annotations.engine_version === 'string' ? m.annotations.engine_version : '0.0.0';
  if (
    tv === '0.2.4' ||
    (!lt('0.2.3', tv) && t >= '2023-11-07') ||
    (lt(tv, '0.2.2') && t >= '2022-10-19') ||
    (lt(engine, '3.17.2') && t >= '2023-05-02')
  ) {
    return failed(`test version ${tv} is known to misreport at that date`);
  }
  const st = tk.signal_backend_status;
  if (st === 'ok') return { general: 0, why: 'the Signal backend was reachable', blocking: 'http-failure', mechanism: 'none' };
  if (st === 'blocked')
    return {
      general: 1,
      why: `the Signal backend was not reachable${typeof tk.signal_backend_failure === 'string' ? ` (${tk.signal_backend_failure.slice(0, 60)})` : ''}`,
      blocking: 'http-failure',
      mechanism: 'none',
    };
  return failed('no signal_backend_status');
}

function stun(tk: Obj): Score {
  return tk.failure
    ? { general: 1, why: `the STUN server did not answer (${String(tk.failure).slice(0, 60)})`, blocking: 'tcp_ip', mechanism: 'none' }
    : { general: 0, why: 'the STUN server answered', blocking: 'tcp_ip', mechanism: 'none' };
}

function vanillaTor(tk: Obj): Score {
  const logs = tk.tor_logs ?? tk.tor_log;
  if (logs === null || logs === undefined) return failed('no Tor logs recorded');
  const text = typeof logs === 'string' ? logs : JSON.stringify(logs);
  if (text.includes('Bootstrapped 100%: Done') || text.includes('Bootstrapped 100% (done): Done'))
    return { general: 0, why: 'Tor bootstrapped to 100%', blocking: 'tcp_ip', mechanism: 'none' };
  const p = Math.min(100, Math.max(0, Number(tk.tor_progress ?? 0) || 0));
  return { general: p === 100 ? 0 : 1 - p * 0.004, why: `Tor bootstrapped to ${p}%`, blocking: 'tcp_ip', mechanism: 'none' };
}

function torsf(tk: Obj): Score {
  return tk.failure
    ? { general: 1, why: `Tor over Snowflake failed (${String(tk.failure).slice(0, 60)})`, blocking: 'tcp_ip', mechanism: 'none' }
    : { general: 0, why: 'Tor over Snowflake bootstrapped', blocking: 'tcp_ip', mechanism: 'none' };
}

const RULES: Record<string, (m: Measurement, tk: Obj) => Score> = {
  telegram: (_m, tk) => telegram(tk),
  facebook_messenger: (_m, tk) => facebookMessenger(tk),
  http_header_field_manipulation: (_m, tk) => hhfm(tk),
  http_invalid_request_line: (_m, tk) => hirl(tk),
  whatsapp: (_m, tk) => whatsapp(tk),
  tor: (_m, tk) => tor(tk),
  signal,
  stunreachability: (_m, tk) => stun(tk),
  // The specification's example spells it so (ts-025); the pipeline's name is stunreachability.
  stun_reachability: (_m, tk) => stun(tk),
  vanilla_tor: (_m, tk) => vanillaTor(tk),
  torsf: (_m, tk) => torsf(tk),
  // The pipeline has no anomaly rule for dnscheck (its score is a failure): no verdict, said so.
  dnscheck: () => failed('the reference has no anomaly rule for dnscheck'),
};

/** Whether the reference's pipeline has a rule for this test (dnscheck: its rule is "no verdict"). */
export const hasReferenceRule = (testName: string): boolean => Object.prototype.hasOwnProperty.call(RULES, testName);

/** The reference's anomaly rule as a verdict: anomaly -> blocked, none -> ok, failure -> unknown. */
export function analyzeOtherTest(m: Measurement, version: string): Verdict {
  const tk = isObj(m.test_keys) ? m.test_keys : {};
  const s = RULES[m.test_name](m, tk);
  const mk = (
    status: Verdict['status'],
    blocking: BlockingClass | null,
    accessible: boolean | null,
    mechanism: Mechanism | null,
    confidence: number,
    explanation: string,
  ): Verdict => ({
    status,
    blocking,
    accessible,
    mechanism,
    layer: status === 'blocked' && mechanism !== 'none' ? 'unknown' : null,
    confidence,
    evidence: ['test_keys'],
    explanation,
    confirmed: false,
    fingerprints: [],
    analysis_version: version,
  });
  if (s.general === null)
    return mk('unknown', null, null, null, 0, `${m.test_name}: no verdict, as OONI's pipeline gives none here: ${s.why}.`);
  if (s.general > 0.5) {
    return mk(
      'blocked',
      s.blocking,
      false,
      s.mechanism,
      Math.min(0.9, Math.round(s.general * 50) / 100 + 0.3),
      `${m.test_name}: anomaly by OONI's own rule (score ${s.general.toFixed(2)} > 0.5): ${s.why}.`,
    );
  }
  return mk('ok', null, true, 'none', 0.7, `${m.test_name}: no anomaly by OONI's own rule (score ${s.general.toFixed(2)}): ${s.why}.`);
}
