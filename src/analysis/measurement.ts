// Any measurement -> verdict: web_connectivity is re-derived from its observations; the other OONI
// tests the field publishes get the reference pipeline's own anomaly rule (other-tests.ts); the
// rest, and a measurement whose test_keys is null, an honest "unknown" that says why.
import type { Measurement, Verdict, WebConnectivityTestKeys } from '../model/index.js';
import { analyzeWebConnectivity, ANALYSIS_VERSION, type AnalysisContext } from './webconnectivity.js';
import { analyzeOtherTest, hasReferenceRule } from './other-tests.js';

/** The verdict of a measurement nothing can be said about, with the reason in plain words. */
export const noVerdict = (explanation: string): Verdict => ({
  status: 'unknown',
  blocking: null,
  accessible: null,
  mechanism: null,
  layer: null,
  confidence: 0,
  evidence: [],
  explanation,
  confirmed: false,
  fingerprints: [],
  analysis_version: ANALYSIS_VERSION,
});

export function analyzeMeasurement(m: Measurement, ctx?: AnalysisContext): Verdict {
  const name = String(m.test_name).slice(0, 60);
  if (m.test_keys === null || typeof m.test_keys !== 'object')
    return noVerdict(`The ${name} measurement has no test keys (test_keys is null): the probe recorded nothing to analyse.`);
  if (m.test_name === 'web_connectivity') return analyzeWebConnectivity(m as unknown as Measurement<WebConnectivityTestKeys>, ctx);
  if (hasReferenceRule(m.test_name)) return analyzeOtherTest(m, ANALYSIS_VERSION);
  return noVerdict(`wallscope does not analyse ${name} measurements yet: no verdict.`);
}
