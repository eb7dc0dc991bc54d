// `lab eval`: runs a scenario's lab, measures every target through it with the probe in lab mode
// (the lab's ISP resolver, CA and allowed range, the lab's test helper as control), and scores
// the verdicts against the ground truth, per mechanism and per layer (../shared/DESIGN.md JSON shape).
import type { Layer, Measurement, Scenario, WebConnectivityTestKeys } from '../model/index.js';
import { inferLab, type InferLine, type InferTarget } from './infer.js';
import { CaptureHub, measureWebConnectivity, splitHostPort, type ProbeOptions } from '../probe/index.js';
import { startLab, type Lab, type LabOptions } from './lab.js';
import type { Truth } from './truth.js';

export interface Score {
  tp: number;
  fp: number;
  fn: number;
  precision: number | null;
  recall: number | null;
}

export interface Got {
  blocking: Truth['blocking'];
  accessible: boolean | null;
  mechanism: string | null;
  layer: string | null;
}

export interface EvalReport {
  scenario: string;
  targets: number;
  blocking_agreement: number;
  per_mechanism: Record<string, Score>;
  per_layer: Record<string, Score>;
  mismatches: Array<{ target: string; expected: Truth; got: Got }>;
}

export interface EvalRow {
  target: string;
  expected: Truth;
  got: Got;
  measurement: Measurement<WebConnectivityTestKeys> | null;
  error?: string;
  ms: number;
}

export interface EvalOptions {
  /** Targets measured at once (default 8). */
  concurrency?: number;
  /** Overrides of the probe options (timeouts ...). */
  probe?: Partial<ProbeOptions>;
  lab?: LabOptions;
  /** Only the targets whose URL (as written in the scenario) passes this test. */
  only?: (url: string) => boolean;
  /** Also infer the rule behind every blocked target (`lab eval --infer`), before the lab stops. */
  infer?: boolean;
  /** Called after each target (`index`: the target's position among those measured). */
  onRow?: (row: EvalRow, done: number, total: number, index: number) => void;
}

export interface EvalRun {
  report: EvalReport;
  rows: EvalRow[];
  warnings: string[];
  /** Wall time of the measurements (ms), excluding lab start and stop. */
  measureMs: number;
  startMs: number;
  probeOptions: ProbeOptions;
  /** With `infer`: one line per (name, protocol, layer) that blocks it (src/lab/infer.ts). */
  infer?: InferLine[];
}

/** Short budgets for the lab (docs/INTERNAL-API.md "Timeouts"): connect 1.5 s, TLS/HTTP 3 s. */
export function labProbeDefaults(s: Scenario): Partial<ProbeOptions> {
  const lead = Math.max(0, ...s.censors.map((c) => (c.dns_injection ? (c.dns_injection.lead_ms ?? 20) : 0)));
  return {
    dnsTimeoutMs: 2000,
    dnsWindowMs: Math.max(100, 2 * lead + 50),
    connectTimeoutMs: 1500,
    tlsTimeoutMs: 3000,
    httpTimeoutMs: 3000,
    controlTimeoutMs: 8000,
  };
}

function gotOf(m: Measurement<WebConnectivityTestKeys>): Got {
  const tk = m.test_keys as WebConnectivityTestKeys & { x_verdict?: { mechanism?: string | null; layer?: string | null } };
  return {
    blocking: (tk.blocking ?? null) as Truth['blocking'],
    accessible: tk.accessible ?? null,
    mechanism: tk.x_verdict?.mechanism ?? null,
    layer: tk.x_verdict?.layer ?? null,
  };
}

export function sameVerdict(e: Truth, g: Got): boolean {
  return e.blocking === g.blocking && e.mechanism === g.mechanism && (e.layer ?? null) === (g.layer ?? null);
}

function ratio(n: number, d: number): number | null {
  return d === 0 ? null : Math.round((n / d) * 10000) / 10000;
}

function tally(pairs: Array<[string | null, string | null]>): Record<string, Score> {
  const out: Record<string, Score> = {};
  const at = (k: string) => (out[k] ??= { tp: 0, fp: 0, fn: 0, precision: null, recall: null });
  for (const [e, g] of pairs) {
    if (e !== null && e === g) at(e).tp++;
    else {
      if (e !== null) at(e).fn++;
      if (g !== null) at(g).fp++;
    }
  }
  for (const s of Object.values(out)) {
    s.precision = ratio(s.tp, s.tp + s.fp);
    s.recall = ratio(s.tp, s.tp + s.fn);
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

type TimedKeys = WebConnectivityTestKeys & {
  x_tls_sni_variants?: Array<{ failure: string | null; t0: number; t: number }>;
  x_residual_checks?: Array<{ failure: string | null; t0: number; t: number }>;
};

/** Seconds one measurement spent in steps that ended on a configured timeout (overlaps merged). */
export function timeoutSeconds(m: Measurement<WebConnectivityTestKeys>): number {
  const tk = m.test_keys as TimedKeys;
  const spans: Array<[number, number]> = [];
  const add = (failure: string | null | undefined, t0: number | undefined, t: number) => {
    if (failure === 'generic_timeout_error' && t0 !== undefined) spans.push([t0, t]);
  };
  for (const c of tk.tcp_connect ?? []) add(c.status.failure, c.t0, c.t);
  for (const h of tk.tls_handshakes ?? []) add(h.failure, h.t0, h.t);
  for (const r of tk.requests ?? []) add(r.failure, r.t0, r.t);
  for (const v of tk.x_tls_sni_variants ?? []) add(v.failure, v.t0, v.t);
  for (const v of tk.x_residual_checks ?? []) add(v.failure, v.t0, v.t);
  spans.sort((a, b) => a[0] - b[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of spans) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

/**
 * Where the measuring time went: `busyMs` sums every target's time, `waitMs` the part spent
 * waiting on configured timeouts (timed-out steps, plus the DNS duplicates window each target
 * waits for). With C targets at once, wall time is about busyMs / C, so the ratio holds for it.
 */
export function timeoutWaitMs(rows: EvalRow[], dnsWindowMs: number): { busyMs: number; waitMs: number } {
  let busyMs = 0;
  let waitMs = 0;
  for (const r of rows) {
    busyMs += r.ms;
    if (r.measurement) waitMs += Math.min(r.ms, timeoutSeconds(r.measurement) * 1000 + dnsWindowMs);
  }
  return { busyMs, waitMs };
}

/** Scores rows into the ../shared/DESIGN.md `lab eval --json` shape. */
export function scoreRows(scenario: string, rows: Array<Pick<EvalRow, 'target' | 'expected' | 'got'>>): EvalReport {
  const agree = rows.filter((r) => r.expected.blocking === r.got.blocking).length;
  return {
    scenario,
    targets: rows.length,
    blocking_agreement: rows.length ? (ratio(agree, rows.length) ?? 0) : 1,
    per_mechanism: tally(rows.map((r) => [r.expected.mechanism, r.got.mechanism])),
    per_layer: tally(rows.map((r) => [r.expected.layer ?? null, r.got.layer ?? null])),
    mismatches: rows.filter((r) => !sameVerdict(r.expected, r.got)).map((r) => ({ target: r.target, expected: r.expected, got: r.got })),
  };
}

/** Measures every target of a running lab. */
/** What measuring needs of a lab; netns mode's client namespace builds one from the lab's description. */
export type MeasurableLab = Pick<Lab, 'scenario' | 'targets' | 'probeOptions' | 'clientAddress'>;

export async function measureLab(
  lab: MeasurableLab,
  opts: EvalOptions = {},
): Promise<{ rows: EvalRow[]; probeOptions: ProbeOptions; measureMs: number }> {
  const probeOptions = lab.probeOptions({
    ...labProbeDefaults(lab.scenario),
    // So that a later re-analysis (server, `wallscope analyze`) can count the lab range as public
    // and knows which scenario the measurement came from.
    annotations: { x_lab_scenario: lab.scenario.name, x_lab_allow_net: (lab.probeOptions().allowNet ?? []).join(',') },
    ...(opts.probe ?? {}),
  });
  const targets = opts.only ? lab.targets.filter((t) => opts.only!(t.url)) : lab.targets;
  const rows: EvalRow[] = new Array(targets.length);
  // With capture (netns mode), one capture per device for all targets, as measureMany does.
  const hub =
    probeOptions.capture && !probeOptions.captureHub
      ? new CaptureHub(probeOptions.resolver ? splitHostPort(probeOptions.resolver, 53) : undefined)
      : null;
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= targets.length) return;
      const t = targets[i]!;
      const s = performance.now();
      let row: EvalRow;
      try {
        const m = await measureWebConnectivity(t.dialUrl, {
          ...probeOptions,
          localAddress: lab.clientAddress(i),
          ...(hub ? { captureHub: hub } : {}),
        });
        row = { target: t.url, expected: t.truth, got: gotOf(m), measurement: m, ms: performance.now() - s };
      } catch (e) {
        // The probe never throws for a network outcome; this is a bug worth showing, not hiding.
        row = {
          target: t.url,
          expected: t.truth,
          got: { blocking: null, accessible: null, mechanism: null, layer: null },
          measurement: null,
          error: (e as Error).stack ?? String(e),
          ms: performance.now() - s,
        };
      }
      rows[i] = row;
      opts.onRow?.(row, ++done, targets.length, i);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 8, targets.length)) }, worker));
  } finally {
    await hub?.close();
  }
  return { rows, probeOptions, measureMs: performance.now() - t0 };
}

/** Starts the scenario's lab, measures and scores every target, and stops the lab. */
/** The targets the probe found blocked, with the layer our attribution gave (the truth's when it gave none): what `--infer` infers. */
export function inferTargetsOf(rows: readonly EvalRow[]): InferTarget[] {
  return rows
    .filter((r) => r.got.blocking)
    .map((r) => ({ url: r.target, mechanism: r.got.mechanism, layer: (r.got.layer ?? r.expected.layer ?? null) as Layer | null }));
}

export async function evalScenario(s: Scenario, opts: EvalOptions = {}): Promise<EvalRun> {
  const t0 = performance.now();
  // A snapshot: the rules of lab time 0 (a timeline is followed by `lab up` and campaigns).
  const lab = await startLab(s, { followTimeline: false, ...opts.lab });
  const startMs = performance.now() - t0;
  try {
    const { rows, probeOptions, measureMs } = await measureLab(lab, opts);
    const run: EvalRun = { report: scoreRows(s.name, rows), rows, warnings: lab.warnings, measureMs, startMs, probeOptions };
    if (opts.infer) run.infer = await inferLab(lab, inferTargetsOf(rows), { firstClient: 6000 + rows.length });
    return run;
  } finally {
    await lab.close();
  }
}
