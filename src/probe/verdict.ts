// The one place the probe asks for a verdict: src/analysis decides (one source of truth); the
// probe only copies it into OONI's blocking/accessible and into x_verdict.
import { toOoniBlocking, type Measurement, type WebConnectivityTestKeys } from '../model/index.js';
import { analyzeWebConnectivity, type FingerprintSet, type InjectorFingerprint } from '../analysis/index.js';
import { lookupAsn } from './geo.js';
import { isBogonAddress } from './policy.js';

export interface VerdictContext {
  allowNets: string[];
  fingerprints?: FingerprintSet;
  injectors?: readonly InjectorFingerprint[];
}

export function applyVerdict(m: Measurement<WebConnectivityTestKeys>, ctx: VerdictContext): Measurement<WebConnectivityTestKeys> {
  const verdict = analyzeWebConnectivity(m, {
    allowNets: ctx.allowNets,
    // Only public addresses are looked up: the offline database is loaded lazily, never for a lab.
    asnOf: (ip) => (isBogonAddress(ip) ? null : lookupAsn(ip)),
    ...(ctx.fingerprints ? { fingerprints: ctx.fingerprints } : {}),
    ...(ctx.injectors ? { injectors: ctx.injectors } : {}),
  });
  m.test_keys.blocking = toOoniBlocking(verdict);
  m.test_keys.accessible = verdict.accessible;
  m.test_keys.x_verdict = verdict;
  return m;
}
