// The collector's own privacy pass (the probe scrubs too, but the server never trusts that):
// every string of a measurement, keys included, loses the submitter's address.
import ipaddr from 'ipaddr.js';
import { parseIp, scrubberFor, scrubValue } from '../analysis/index.js';

export { SCRUBBED } from '../analysis/index.js';

/**
 * The textual forms of the submitter's address worth looking for, or [] when there is nothing to
 * scrub. Loopback and unspecified addresses are exempt: a probe that withholds its address writes
 * 127.0.0.1 (OONI's convention) and lab measurements are full of 127.0.0.0/8 addresses, so a
 * submitter on loopback would otherwise erase the evidence.
 */
export function addressForms(ip: string): string[] {
  const addr = parseIp(ip);
  if (!addr) return [];
  const range = addr.range();
  if (range === 'loopback' || range === 'unspecified') return [];
  if (addr.kind() === 'ipv4') return [addr.toString()];
  const v6 = addr as ipaddr.IPv6;
  return [...new Set([v6.toString(), v6.toNormalizedString()])];
}

const cache = new Map<string, ((s: string) => string) | null>();

/** The probe's whole-occurrence scrubber (1.2.3.4 does not hit 11.2.3.45) over these forms, cached per address. */
function scrubberForClient(ip: string): ((s: string) => string) | null {
  const hit = cache.get(ip);
  if (hit !== undefined) return hit;
  const made = scrubberFor(addressForms(ip));
  if (cache.size >= 1024) cache.clear(); // bounded: a busy collector sees many clients
  cache.set(ip, made);
  return made;
}

const textChecks = new Map<string, ((text: string) => boolean) | null>();

/**
 * For a measurement still in its JSON text (the batch route has each line's text): false when the
 * text cannot hold the submitter's address, so the walk can be skipped. Every occurrence in a parsed
 * string appears literally in the text unless written with \u escapes (the other escapes make
 * characters an address does not contain) or inside a base64 body; either of those makes it true.
 */
export function mayHoldAddress(text: string, ip: string): boolean {
  let check = textChecks.get(ip);
  if (check === undefined) {
    const forms = addressForms(ip);
    const re = forms.length ? new RegExp(forms.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'i') : null;
    check = re ? (t: string) => t.includes('\\u') || t.includes('base64') || re.test(t) : null;
    if (textChecks.size >= 1024) textChecks.clear();
    textChecks.set(ip, check);
  }
  return check !== null && check(text);
}

/**
 * A deep copy with every string and key scrubbed, base64 bodies and headers included (the probe's
 * own scrubValue, so both sides scrub the same places), and how many strings changed.
 */
export function scrubMeasurement<T>(value: T, ip: string): { value: T; replaced: number } {
  const scrub = scrubberForClient(ip);
  if (!scrub) return { value, replaced: 0 };
  let replaced = 0;
  const counted = (x: string) => {
    const y = scrub(x);
    if (y !== x) replaced++;
    return y;
  };
  return { value: scrubValue(value, counted), replaced };
}

/** Nesting depth of a JSON value, measured without recursion (hostile input may be deep). */
export function jsonDepth(value: unknown, limit = 1000): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (x !== null && typeof x === 'object') stack.push([x, d + 1]);
  }
  return max;
}
