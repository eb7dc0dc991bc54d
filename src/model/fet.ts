// The fully-encrypted-traffic (FET) censor's view of a first packet: which exemption applies, with
// the figures it was decided on (../shared/DESIGN.md "Contracts of the next capabilities": `wallscope fet
// classify`). Wu et al., "How the Great Firewall of China Detects and Blocks Fully Encrypted
// Traffic", USENIX Security 2023, Algorithm 1; censors.md section 7.

/**
 * The exemption that let a first packet through, in the order the GFW tests them (Ex1..Ex5):
 * Ex1 popcount per byte <= 3.4 or >= 4.6; Ex2 the first 6 bytes printable; Ex3 more than half the
 * bytes printable; Ex4 a run of more than 20 printable bytes; Ex5 a TLS or HTTP start.
 * `empty`: a packet without payload is nothing the censor inspects.
 */
export type FetExemption =
  'popcount_low' | 'popcount_high' | 'printable_prefix' | 'printable_share' | 'printable_run' | 'tls_prefix' | 'http_prefix' | 'empty';

export const FET_EXEMPTIONS: readonly FetExemption[] = [
  'popcount_low',
  'popcount_high',
  'printable_prefix',
  'printable_share',
  'printable_run',
  'tls_prefix',
  'http_prefix',
  'empty',
];

/** One `wallscope fet classify --json` line. */
export interface FetClassification {
  exempt: boolean;
  /** The first exemption that holds, or null (the packet is one the censor may block). */
  reason: FetExemption | null;
  popcount_per_byte: number;
  /** Printable bytes (0x20..0x7e) / length. */
  printable_share: number;
  longest_printable_run: number;
  /** Extension: the payload length, and which protocol prefix it starts with (null when none). */
  length: number;
  prefix: string | null;
}
