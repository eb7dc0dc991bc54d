// V8 flags that keep a long run's heap from growing with its length (`measure` over a list,
// `scan dns` over millions of names). V8 reads them each time it sizes its heap (unlike
// --max-semi-space-size / --max-old-space-size, fixed at start), so setting them at run time works.
import { setFlagsFromString } from 'node:v8';

let youngBounded = false;

/**
 * Keeps V8's young generations at the size they have, for the rest of the process. Why: V8 doubles
 * a young generation (semi-spaces up to 16 MB each in node 20) whenever the bytes surviving its
 * scavenges since the last doubling exceed its size, a total that grows with the run's length, as
 * in-flight measurements and open scan windows do; a growth factor of 1 stops that. Starting a
 * Worker puts V8's flags back to the process's (measured: a flag set before `new Worker` no longer
 * holds once the worker is online; set after, it holds), so a caller that starts one sets it again.
 */
export function boundYoungGenerations(): void {
  youngBounded = true;
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** Whether boundYoungGenerations() was called in this thread (the scan sets it again after its Workers start). */
export function youngGenerationsBounded(): boolean {
  return youngBounded;
}
