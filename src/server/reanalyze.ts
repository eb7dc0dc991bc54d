// Re-running the analysis over stored measurements after the rules or fingerprints change. The
// raw measurements are the source of truth; only the verdict columns are rewritten.
import { analyzeMeasurement, noVerdict, type AnalysisContext } from '../analysis/index.js';
import type { Measurement, Verdict } from '../model/index.js';
import type { MeasurementStore } from '../store/index.js';

export type Analyzer = (m: Measurement) => Verdict;

export interface ReanalyzeOptions {
  /** Only measurements whose verdict came from another analysis version than this one. */
  onlyOutdatedFor?: string;
  batch?: number;
  /** Stop after this many measurements (bounded admin calls). */
  limit?: number;
  onProgress?: (done: { scanned: number; updated: number; failed: number }) => void;
}

const CIDR = /^[0-9a-fA-F:.]{2,45}\/\d{1,3}$/;

/**
 * The analysis with `ctx`, plus, per measurement, the lab's own address ranges when the lab
 * annotated them (annotations.x_lab_allow_net, docs/INTERNAL-API.md): without them a lab
 * measurement's 127.x addresses would read as bogons on re-analysis.
 */
export function analyzerWith(ctx: AnalysisContext = {}): Analyzer {
  return (m) => {
    const nets = m.annotations?.x_lab_allow_net;
    if (typeof nets !== 'string' || !nets) return analyzeMeasurement(m, ctx);
    const extra = nets
      .split(',')
      .map((s) => s.trim())
      .filter((s) => CIDR.test(s))
      .slice(0, 32);
    return analyzeMeasurement(m, extra.length ? { ...ctx, allowNets: [...(ctx.allowNets ?? []), ...extra] } : ctx);
  };
}

/** An analyzer that never throws: a crash of the rules becomes an 'unknown' verdict that says so. */
export function safeAnalyzer(analyze: Analyzer, version: string): Analyzer {
  return (m) => {
    try {
      return analyze(m);
    } catch (e) {
      return {
        ...noVerdict(
          `The analysis failed on this measurement (${String((e as Error)?.message ?? e).slice(0, 160)}); it is stored and will be re-analysed.`,
        ),
        analysis_version: version,
      };
    }
  };
}

export async function reanalyzeStore(
  store: MeasurementStore,
  analyze: Analyzer,
  opts: ReanalyzeOptions = {},
): Promise<{ scanned: number; updated: number; failed: number }> {
  const batch = opts.batch ?? 500;
  let after: string | null = null;
  const done = { scanned: 0, updated: 0, failed: 0 };
  for (;;) {
    const want = opts.limit !== undefined ? Math.min(batch, opts.limit - done.scanned) : batch;
    if (want <= 0) break;
    const rows = await store.scan(after, want);
    if (!rows.length) break;
    for (const r of rows) {
      done.scanned++;
      if (opts.onlyOutdatedFor !== undefined && r.analysis_version === opts.onlyOutdatedFor) continue;
      try {
        if (await store.setVerdict(r.measurement_uid, analyze(r.measurement))) done.updated++;
      } catch {
        done.failed++;
      }
    }
    after = rows[rows.length - 1].measurement_uid;
    opts.onProgress?.(done);
  }
  return done;
}
