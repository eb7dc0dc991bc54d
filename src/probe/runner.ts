// Measuring many targets with bounded concurrency. Results are handed out as they complete (in
// completion order, with their index) so that nothing accumulates in memory.
import type { Measurement, WebConnectivityTestKeys } from '../model/index.js';
import { measureWebConnectivity, type ProbeOptions } from './webconnectivity.js';
import type { Target } from './targets.js';

export type MeasureOutcome =
  | { index: number; target: Target; ok: true; measurement: Measurement<WebConnectivityTestKeys> }
  | { index: number; target: Target; ok: false; error: string };

export async function measureMany(targets: Target[], opts: ProbeOptions, concurrency: number, onResult: (r: MeasureOutcome) => void | Promise<void>): Promise<void> {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < targets.length) {
      const index = next++;
      const target = targets[index]!;
      let outcome: MeasureOutcome;
      try {
        const annotations = { ...(opts.annotations ?? {}), ...(target.category_code ? { category_code: target.category_code } : {}) };
        outcome = { index, target, ok: true, measurement: await measureWebConnectivity(target.url, { ...opts, annotations }) };
      } catch (err) {
        // Only a bad input (an unparseable URL) lands here: network outcomes are data.
        outcome = { index, target, ok: false, error: (err as Error).message };
      }
      await onResult(outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker));
}
