// The lab's ESNI censor: a decision with no socket and no clock in it, and the kernel program that
// enforces it in path. ../shared/reference/censors.md section 3: since 2020-07-29 the GFW blocks
// TLS ClientHellos carrying the encrypted_server_name extension (0xffce) by DROPPING the client's
// packets to the server (no RST), then keeps dropping every client-to-server packet on
// (client ip, server ip, server port) for 120 or 180 s (gfw.report, "Exposing and Circumventing
// China's Censorship of ESNI", 2020: on every port, both residual durations observed).
//
// The loopback front asks `decide()` about each ClientHello it reads and holds the flow. The netns
// router must drop the triggering segment itself, which an on-path sniffer cannot (it reads a packet
// the kernel already forwarded): its kernel diverts ClientHello segments (`helloDivertBpf()`), the
// censor asks `decide()`, re-sends what passes and puts a blocked flow and its residual into timed
// nftables sets.
import { createHash } from 'node:crypto';
import type { Scenario } from '../model/index.js';
import { prng } from '../model/index.js';
import { TripleResidual } from './triple-residual.js';

/** encrypted_server_name, draft-ietf-tls-esni-00..06: the extension the GFW blocks. */
export const ESNI_EXTENSION = 0xffce;
/** Residual durations observed for ESNI blocks, seconds; one is drawn per block unless fixed. */
export const ESNI_RESIDUAL_CHOICES_S = [120, 180] as const;

export interface EsniFlow {
  client: string;
  server: string;
  port: number;
}

export type EsniDecision =
  { kind: 'pass' } | { kind: 'drop'; why: 'blocked' | 'residual'; censor: string; extension?: number; residualS?: number };

interface Compiled {
  name: string;
  extensions: Set<number>;
  residualS: number | null;
  draw: () => number;
}

/** One lab's ESNI censors (in path order) and their residual table. */
export class EsniCensor {
  private readonly censors: Compiled[];
  private readonly residual = new TripleResidual();
  readonly counts = { blocked: 0, residual: 0 };

  constructor(scenario: Scenario) {
    this.censors = scenario.censors
      .filter((c) => c.esni_drop)
      .map((c) => {
        const e = c.esni_drop!;
        const h = createHash('sha256').update(`${scenario.seed}\0esni\0${c.name}`).digest().readUInt32BE(0);
        return {
          name: c.name,
          extensions: new Set(e.extensions ?? [ESNI_EXTENSION]),
          residualS: e.residual_s ?? null,
          draw: prng(h),
        };
      });
  }

  get active(): boolean {
    return this.censors.length > 0;
  }

  /** The censor under whose residual block (client, server, port) is at `nowMs`, or null. */
  inResidual(flow: EsniFlow, nowMs: number): string | null {
    return this.residual.get(flow, nowMs);
  }

  /** The decision on a ClientHello (its extension types, as sent) of `flow` at `nowMs`. */
  decide(flow: EsniFlow, extensions: readonly number[], nowMs: number): EsniDecision {
    const res = this.inResidual(flow, nowMs);
    if (res) {
      this.counts.residual++;
      return { kind: 'drop', why: 'residual', censor: res };
    }
    for (const c of this.censors) {
      const hit = extensions.find((t) => c.extensions.has(t));
      if (hit === undefined) continue;
      const residualS = c.residualS ?? ESNI_RESIDUAL_CHOICES_S[c.draw() < 0.5 ? 0 : 1];
      this.counts.blocked++;
      if (residualS > 0) this.residual.set(flow, nowMs, residualS * 1000, c.name);
      return { kind: 'drop', why: 'blocked', censor: c.name, extension: hit, residualS };
    }
    return { kind: 'pass' };
  }
}

// Classic BPF (the `bpf` match of xtables, run on the packet from its IP header). The kernel caps
// such a program at 64 instructions, too few to walk a ClientHello's extensions, so the kernel
// only DIVERTS: it drops every forwarded segment that starts a ClientHello, and the router's censor,
// which reads the same segment from its capture, decides and re-sends the ones that pass
// (`divertedHello` below is the same test, for the censor). A load past the packet's end ends the
// program with 0 (no match): a short or hostile segment is never diverted by accident.
const LD_B_ABS = 0x30;
const LD_B_IND = 0x50;
const LDX_MSH = 0xb1;
const ALU_AND_K = 0x54;
const ALU_RSH_K = 0x74;
const ALU_ADD_X = 0x0c;
const TAX = 0x07;
const JEQ_K = 0x15;
const JGT_K = 0x25;
const RET_K = 0x06;

/**
 * The cBPF program, in the syntax of `iptables -m bpf --bytecode` ("n,code jt jf k,..."), that
 * matches an IPv4 TCP segment with IP TTL above 1 (a TTL-expiring one is left to the kernel, which
 * answers it with time-exceeded, as locate expects) whose payload starts a TLS handshake record
 * holding a ClientHello.
 */
export function helloDivertBpf(): string {
  const insns: Array<[number, number, number, number]> = [
    [LD_B_ABS, 0, 0, 9],
    [JEQ_K, 0, 13, 6], // TCP, else ret 0
    [LD_B_ABS, 0, 0, 8],
    [JGT_K, 0, 11, 1], // IP TTL > 1, else ret 0
    [LDX_MSH, 0, 0, 0], // X = IP header length
    [LD_B_IND, 0, 0, 12],
    [ALU_AND_K, 0, 0, 0xf0],
    [ALU_RSH_K, 0, 0, 2], // A = TCP header length
    [ALU_ADD_X, 0, 0, 0],
    [TAX, 0, 0, 0], // X = payload offset
    [LD_B_IND, 0, 0, 0],
    [JEQ_K, 0, 3, 0x16], // handshake record, else ret 0
    [LD_B_IND, 0, 0, 5],
    [JEQ_K, 0, 1, 0x01], // client_hello, else ret 0
    [RET_K, 0, 0, 1],
    [RET_K, 0, 0, 0],
  ];
  return `${insns.length},${insns.map((x) => x.join(' ')).join(',')}`;
}

/** The same test as helloDivertBpf() on a decoded packet: whether the kernel diverted it. */
export function divertedHello(ipTtl: number, tcpPayload: Uint8Array): boolean {
  return ipTtl > 1 && tcpPayload.length > 5 && tcpPayload[0] === 0x16 && tcpPayload[5] === 0x01;
}
