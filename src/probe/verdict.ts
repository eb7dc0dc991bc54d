// The one place the probe asks for a verdict: src/analysis decides (one source of truth); the
// probe only copies it into OONI's blocking/accessible and x_verdict.
import type { Measurement, WebConnectivityTestKeys } from '../model/index.js';

export interface VerdictContext {
  allowNets: string[];
}

export function applyVerdict(m: Measurement<WebConnectivityTestKeys>, _ctx: VerdictContext): Measurement<WebConnectivityTestKeys> {
  // Until src/analysis exports analyzeWebConnectivity, blocking/accessible stay null (unknown).
  return m;
}
