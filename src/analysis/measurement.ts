// Any measurement -> verdict: web_connectivity is understood; other tests get an honest "unknown".
import type { Measurement, Verdict, WebConnectivityTestKeys } from '../model/index.js';
import { analyzeWebConnectivity, ANALYSIS_VERSION, type AnalysisContext } from './webconnectivity.js';

export function analyzeMeasurement(m: Measurement, ctx?: AnalysisContext): Verdict {
  if (m.test_name === 'web_connectivity') return analyzeWebConnectivity(m as unknown as Measurement<WebConnectivityTestKeys>, ctx);
  return {
    status: 'unknown', blocking: null, accessible: null, mechanism: null, layer: null, confidence: 0, evidence: [],
    explanation: `wallscope does not analyse ${String(m.test_name).slice(0, 60)} measurements yet: no verdict.`,
    confirmed: false, fingerprints: [], analysis_version: ANALYSIS_VERSION,
  };
}
