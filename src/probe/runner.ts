// Measuring many targets with bounded concurrency. Results are handed out as they complete (in
// completion order, with their index) so that nothing accumulates in memory; the targets are read
// as they are needed (an iterable or async iterable), so a long list is never held whole.
//
// Why two bounds: a measurement's network work (connects, handshakes, HTTP, the control) takes a
// slot of `concurrency`; once that work is done it only waits for its DNS duplicate window to close
// (a UDP socket listening, no traffic of ours), and that wait gives the slot back to the next URL
// instead of idling it. Measurements waiting so are bounded too (`concurrency * WINDOW_FACTOR`), so
// memory stays flat however long the list.
import { setFlagsFromString } from 'node:v8';
import type { Measurement, WebConnectivityTestKeys } from '../model/index.js';
import { measureWebConnectivity, type ProbeOptions } from './webconnectivity.js';
import { CaptureHub } from './packet-evidence.js';
import { boundYoungGenerations } from './heap.js';
import { splitHostPort } from './policy.js';
import type { Target } from './targets.js';

export type MeasureOutcome =
  | { index: number; target: Target; ok: true; measurement: Measurement<WebConnectivityTestKeys> }
  | { index: number; target: Target; ok: false; error: string };

export interface MeasureManyOptions {
  /** Stop taking new targets when aborted; measurements already started still complete. */
  signal?: AbortSignal;
}

// 4: up to 3 x concurrency measurements waiting out their window, room for a rate of
// 3 x 64 / 0.5 s = 384 URLs/s at the default window, above what one process measures (~125/s on
// bench/probe-web.ts), while a process starved of CPU (its window timers late) no longer piles up
// 8 x concurrency measurements' evidence: the peak-RSS swings of a long run (bench BENCH_MEM=1).
const WINDOW_FACTOR = 4;

// A list run's peak RSS was V8's heap swinging (bench/probe-web.ts BENCH_MEM=1: heap total
// 60-100 MB for 25-65 MB used), on two counts, both bounded here with V8 flags read each time V8
// sizes its heap:
// - the young generation grows when much of what is allocated survives a scavenge, as in-flight
//   measurements do: boundYoungGenerations (heap.ts) keeps it at its initial size;
// - the old generation may grow to several times what is live before a full GC (V8's dynamic
//   factor, up to 4x): 50% more than live is enough for a list run's steady state.
// Measured on bench/probe-web.ts, 20,000 URLs: peak RSS 124 MB (flat, 117-124 MB every tenth of
// the list) against 183+ MB with the young-generation bound alone and 206-211 MB with neither.
let heapBounded = false;
function boundHeap(): void {
  if (heapBounded) return;
  heapBounded = true;
  boundYoungGenerations();
  setFlagsFromString('--heap-growing-percent=50');
}

export async function measureMany(
  targets: Iterable<Target> | AsyncIterable<Target>,
  opts: ProbeOptions,
  concurrency: number,
  onResult: (r: MeasureOutcome) => void | Promise<void>,
  many: MeasureManyOptions = {},
): Promise<void> {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  boundHeap();
  const it =
    Symbol.asyncIterator in targets
      ? (targets as AsyncIterable<Target>)[Symbol.asyncIterator]()
      : (targets as Iterable<Target>)[Symbol.iterator]();
  // --capture: one capture per device for the whole run, shared by every URL (packet-evidence.ts).
  const hub = opts.capture && !opts.captureHub ? new CaptureHub(opts.resolver ? splitHostPort(opts.resolver, 53) : undefined) : null;
  let index = 0;
  let active = 0;
  let inFlight = 0;
  let exhausted = false;
  let pulling = false;
  let failed: unknown = null;
  // Results are delivered one at a time, in completion order (onResult may write to a stream).
  let delivery: Promise<void> = Promise.resolve();
  let wake: (() => void) | null = null;
  const kick = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const start = (target: Target, i: number): void => {
    active++;
    inFlight++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      active--;
      kick();
    };
    measureOne(target, i, hub ? { ...opts, captureHub: hub } : opts, release)
      .then((outcome) => {
        release();
        delivery = delivery
          .then(() => onResult(outcome))
          .catch((err: unknown) => {
            failed ??= err;
          });
        return delivery;
      })
      .finally(() => {
        inFlight--;
        kick();
      });
  };
  many.signal?.addEventListener('abort', kick, { once: true });
  try {
    for (;;) {
      if (failed) break;
      const stopped = many.signal?.aborted === true;
      if (!exhausted && !stopped && !pulling && active < concurrency && inFlight < concurrency * WINDOW_FACTOR) {
        pulling = true;
        const r = await it.next();
        pulling = false;
        if (r.done) exhausted = true;
        else start(r.value, index++);
        continue;
      }
      if ((exhausted || stopped) && inFlight === 0) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    await hub?.close();
  }
  await delivery;
  if (failed) throw failed;
}

/** One target measured; `release` is called when only its DNS duplicate window is left. */
function measureOne(target: Target, index: number, opts: ProbeOptions, release: () => void): Promise<MeasureOutcome> {
  const annotations = { ...(opts.annotations ?? {}), ...(target.category_code ? { category_code: target.category_code } : {}) };
  return measureWebConnectivity(target.url, { ...opts, annotations }, { activeDone: release }).then(
    (measurement): MeasureOutcome => ({ index, target, ok: true, measurement }),
    // Only a bad input (an unparseable URL) lands here: network outcomes are data.
    (err: unknown): MeasureOutcome => ({ index, target, ok: false, error: (err as Error).message }),
  );
}
