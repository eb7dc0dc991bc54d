// One line of `wallscope analyze` output: our verdict beside OONI's recorded one.
import { toOoniBlocking, type Measurement, type OoniBlocking, type Verdict } from '../model/index.js';

export interface AnalyzeRow {
  measurement_uid: string | null;
  report_id: string | null;
  input: string | null;
  test_name: string;
  probe_cc: string | null;
  blocking: OoniBlocking;
  accessible: boolean | null;
  mechanism: Verdict['mechanism'];
  layer: Verdict['layer'];
  confidence: number;
  explanation: string;
  ooni_blocking: OoniBlocking | undefined;
  ooni_accessible: boolean | null | undefined;
  /** null when OONI recorded no verdict to compare with. */
  agrees: boolean | null;
}

function ooniPair(m: Measurement): { b: OoniBlocking | undefined; a: boolean | null | undefined } {
  const tk = m.test_keys as Record<string, unknown>;
  const b = tk.blocking;
  const a = tk.accessible;
  const okB = b === false || b === null || b === 'dns' || b === 'tcp_ip' || b === 'http-failure' || b === 'http-diff';
  return { b: okB ? (b as OoniBlocking) : undefined, a: a === true || a === false || a === null ? a : undefined };
}

export function compareRow(m: Measurement, v: Verdict): AnalyzeRow {
  const { b, a } = ooniPair(m);
  const blocking = toOoniBlocking(v);
  const recorded = b !== undefined || a !== undefined;
  const str = (x: unknown): string | null => (typeof x === 'string' ? x : null);
  return {
    measurement_uid: str(m.measurement_uid),
    report_id: str(m.report_id),
    input: str(m.input),
    test_name: m.test_name,
    probe_cc: str(m.probe_cc),
    blocking,
    accessible: v.accessible,
    mechanism: v.mechanism,
    layer: v.layer,
    confidence: v.confidence,
    explanation: v.explanation,
    ooni_blocking: b,
    ooni_accessible: a,
    agrees: m.test_name !== 'web_connectivity' || !recorded ? null : b === blocking && (a ?? null) === v.accessible,
  };
}
