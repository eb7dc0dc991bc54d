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
  /** OONI's recorded pair; null also when the measurement records none (then `agrees` is null). */
  ooni_blocking: OoniBlocking;
  ooni_accessible: boolean | null;
  /** null when OONI recorded no verdict to compare with. */
  agrees: boolean | null;
}

function ooniPair(m: Measurement): { b: OoniBlocking | undefined; a: boolean | null | undefined } {
  const tk = (m.test_keys ?? {}) as Record<string, unknown>;
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
    ooni_blocking: b ?? null,
    ooni_accessible: a ?? null,
    agrees: m.test_name !== 'web_connectivity' || !recorded ? null : b === blocking && (a ?? null) === v.accessible,
  };
}

/** Counts for the `analyze` summary: how many, how many agree with OONI, and each disagreement. */
export class AgreementTally {
  measurements = 0;
  unreadable = 0;
  compared = 0;
  agreed = 0;
  readonly byMechanism = new Map<string, number>();
  readonly disagreements: Array<{ where: string; input: string | null; ooni: string; ours: string; reason: string }> = [];
  /** Only the first this-many disagreements are kept in full (bounded memory on big runs). */
  constructor(readonly keep = 1000) {}

  addError(): void {
    this.unreadable++;
  }

  add(row: AnalyzeRow, where: string): void {
    this.measurements++;
    const k = row.mechanism ?? 'unknown';
    this.byMechanism.set(k, (this.byMechanism.get(k) ?? 0) + 1);
    if (row.agrees === null) return;
    this.compared++;
    if (row.agrees) {
      this.agreed++;
      return;
    }
    if (this.disagreements.length < this.keep) {
      this.disagreements.push({
        where,
        input: row.input,
        ooni: `${JSON.stringify(row.ooni_blocking ?? null)}/${JSON.stringify(row.ooni_accessible ?? null)}`,
        ours: `${JSON.stringify(row.blocking)}/${JSON.stringify(row.accessible)}`,
        reason: row.explanation,
      });
    }
  }

  /** The human summary printed on stderr. */
  format(): string {
    const pct = this.compared ? ((100 * this.agreed) / this.compared).toFixed(1) : 'n/a';
    const lines = [
      `analyzed ${this.measurements} measurement(s)${this.unreadable ? `, ${this.unreadable} unreadable record(s)` : ''}`,
      `agreement with OONI's recorded blocking/accessible: ${this.agreed}/${this.compared} (${pct}%)`,
      `mechanisms: ${
        [...this.byMechanism.entries()]
          .sort((a, b) => b[1] - a[1])
          .map(([m, n]) => `${m} ${n}`)
          .join(', ') || 'none'
      }`,
    ];
    const total = this.compared - this.agreed;
    if (total > 0) {
      lines.push(`disagreements (${total}${total > this.disagreements.length ? `, first ${this.disagreements.length} shown` : ''}):`);
      for (const d of this.disagreements)
        lines.push(`  ${d.where} ${d.input ?? ''}: OONI ${d.ooni}, wallscope ${d.ours}. Why: ${d.reason}`);
    }
    return lines.join('\n') + '\n';
  }
}
