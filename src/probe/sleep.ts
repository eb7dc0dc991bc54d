// The probe's waits (upload back-off, campaign rounds, polite polling): they end early, never with
// an error, when the run is stopped.

/** Resolves after `ms`, or at once when `signal` aborts or has already aborted. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
