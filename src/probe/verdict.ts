// The one place the probe asks for a verdict: src/analysis decides (one source of truth); the
// probe only copies it into OONI's blocking/accessible and into x_verdict.
import { toOoniBlocking, type Measurement, type WebConnectivityTestKeys } from '../model/index.js';
import { analyzeWebConnectivity, type AnalysisContext, type FingerprintSet, type InjectorFingerprint } from '../analysis/index.js';
import { lookupAsn } from './geo.js';
import { isBogonAddress } from './policy.js';

export interface VerdictContext {
  allowNets: string[];
  fingerprints?: FingerprintSet;
  injectors?: readonly InjectorFingerprint[];
}

// Only public addresses are looked up: the offline database is loaded lazily, never for a lab.
const asnOf = (ip: string): ReturnType<typeof lookupAsn> => (isBogonAddress(ip) ? null : lookupAsn(ip));

// The analysis prepares a context once (its CIDRs parsed) and keys that on the object: the same
// object for the same (allowNets, fingerprints) lets a whole list share it.
const contexts = new Map<string, WeakMap<object, AnalysisContext>>();
const NO_FINGERPRINTS = {};
function analysisContext(ctx: VerdictContext): AnalysisContext {
  const key = ctx.allowNets.join(',');
  let byFps = contexts.get(key);
  if (!byFps) {
    if (contexts.size >= 64) contexts.clear();
    contexts.set(key, (byFps = new WeakMap()));
  }
  const fpsKey = ctx.fingerprints ?? NO_FINGERPRINTS;
  let a = byFps.get(fpsKey);
  if (!a)
    byFps.set(fpsKey, (a = { allowNets: [...ctx.allowNets], asnOf, ...(ctx.fingerprints ? { fingerprints: ctx.fingerprints } : {}) }));
  return a;
}

export function applyVerdict(m: Measurement<WebConnectivityTestKeys>, ctx: VerdictContext): Measurement<WebConnectivityTestKeys> {
  const shared = analysisContext(ctx);
  const verdict = analyzeWebConnectivity(m, ctx.injectors ? { ...shared, injectors: ctx.injectors } : shared);
  m.test_keys.blocking = toOoniBlocking(verdict);
  m.test_keys.accessible = verdict.accessible;
  m.test_keys.x_verdict = verdict;
  return m;
}
