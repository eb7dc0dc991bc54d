// The exemption rules of the GFW's fully-encrypted-traffic detector, as published: Wu et al.,
// USENIX Security 2023, Algorithm 1 and section 4 (summary in censors.md section 7). Pure: one
// function of the first data packet, used by `wallscope fet classify`, the lab's `fet` censor (both
// modes) and `fet test`'s choice of payloads, so that all three agree by construction.
import type { FetClassification, FetExemption } from '../model/index.js';

/** Ex1 bounds: the GFW lets through a packet whose average set bits per byte is at most 3.4 or at least 4.6. */
export const FET_POPCOUNT_LOW = 3.4;
export const FET_POPCOUNT_HIGH = 4.6;
// The same bounds in tenths of a bit, for exact integer comparisons.
const LOW_TENTHS = 34;
const HIGH_TENTHS = 46;
/** Ex2: the first this-many bytes all printable. */
export const FET_PREFIX_LEN = 6;
/** Ex4: a printable run strictly longer than this. */
export const FET_RUN_LEN = 20;

/** Ex5's protocol starts: the GFW exempts what looks like TLS or HTTP from its first bytes. */
const HTTP_METHODS = ['GET ', 'PUT ', 'POST ', 'HEAD '].map((m) => Buffer.from(m, 'latin1'));

function isPrintable(b: number): boolean {
  return b >= 0x20 && b <= 0x7e;
}

function popcount8(b: number): number {
  let n = 0;
  for (let v = b; v !== 0; v &= v - 1) n++;
  return n;
}

/** Ex5: `[16-17] 03 [00-09]` (a TLS handshake or application-data record header) or an HTTP method and a space. */
export function fetProtocolPrefix(p: Uint8Array): 'tls' | 'http' | null {
  if (p.length >= 3 && (p[0] === 0x16 || p[0] === 0x17) && p[1] === 0x03 && p[2]! <= 0x09) return 'tls';
  for (const m of HTTP_METHODS) {
    if (p.length >= m.length && m.every((b, i) => p[i] === b)) return 'http';
  }
  return null;
}

/**
 * Classifies a client's first data packet. The exemptions are tested in the paper's order and the
 * first that holds is the reason. Robustness: the thresholds are compared on exact integer sums
 * (popcount*10 against 34*len), so a packet at exactly 3.4 or 4.6 per byte is exempt without
 * depending on floating-point rounding.
 */
export function classifyFirstPacket(p: Uint8Array): FetClassification {
  const len = p.length;
  let bits = 0;
  let printable = 0;
  let run = 0;
  let longest = 0;
  for (let i = 0; i < len; i++) {
    const b = p[i]!;
    bits += popcount8(b);
    if (isPrintable(b)) {
      printable++;
      run++;
      if (run > longest) longest = run;
    } else {
      run = 0;
    }
  }
  const proto = fetProtocolPrefix(p);
  const figures = {
    popcount_per_byte: len === 0 ? 0 : bits / len,
    printable_share: len === 0 ? 0 : printable / len,
    longest_printable_run: longest,
    length: len,
    prefix: proto,
  };
  let reason: FetExemption | null = null;
  if (len === 0) reason = 'empty';
  else if (bits * 10 <= LOW_TENTHS * len) reason = 'popcount_low';
  else if (bits * 10 >= HIGH_TENTHS * len) reason = 'popcount_high';
  else if (len >= FET_PREFIX_LEN && p.subarray(0, FET_PREFIX_LEN).every(isPrintable)) reason = 'printable_prefix';
  else if (printable * 2 > len) reason = 'printable_share';
  else if (longest > FET_RUN_LEN) reason = 'printable_run';
  else if (proto !== null) reason = proto === 'tls' ? 'tls_prefix' : 'http_prefix';
  return { exempt: reason !== null, reason, ...figures };
}
