// The lab's fully-encrypted-traffic censor as one decision with no socket and no clock in it: the
// loopback front (front.ts) asks it about the first data segment it reads, and the packet-level
// netns router can ask it about the first data packet it forwards. censors.md section 7; Wu et al.,
// "How the Great Firewall of China Detects and Blocks Fully Encrypted Traffic", USENIX Security 2023:
// only the client's first data packet is inspected; a non-exempt one is blocked with ~26.3%
// probability; after a block, (client ip, server ip, server port) is blocked for 180 s, whatever
// the flows carry; the blocked flow's later packets are dropped (no RST).
import { createHash } from 'node:crypto';
import { classifyFirstPacket } from '../analysis/index.js';
import type { FetClassification, Scenario } from '../model/index.js';
import { prng } from '../model/index.js';
import { TripleResidual } from './triple-residual.js';

export const DEFAULT_FET_RATE = 0.263;
export const DEFAULT_FET_RESIDUAL_S = 180;

export interface FetFlow {
  client: string;
  server: string;
  port: number;
  /** The names the server is known by in the lab (site domain, service name), to match `servers:`. */
  serverNames?: readonly string[];
}

export type FetDecision =
  | { kind: 'pass'; why: 'not-covered' | 'exempt' | 'not-sampled'; classification?: FetClassification }
  | { kind: 'drop'; why: 'blocked' | 'residual'; censor: string; classification?: FetClassification };

interface Compiled {
  name: string;
  rate: number;
  residualMs: number;
  servers: Set<string> | null;
  draw: () => number;
}

/** One lab's FET censors (in path order) and their residual table. */
export class FetCensor {
  private readonly censors: Compiled[];
  private readonly residual = new TripleResidual();
  /** Flows inspected, and flows blocked (not counting residual drops), for benchmarks and tests. */
  readonly counts = { inspected: 0, blocked: 0, residual: 0 };

  constructor(scenario: Scenario) {
    this.censors = scenario.censors
      .filter((c) => c.fet)
      .map((c) => {
        const f = c.fet!;
        // One stream per censor: a draw per non-exempt flow, reproducible from the seed for the
        // same order of flows (per flow, not per name: the GFW's choice is not sticky to a server).
        const h = createHash('sha256').update(`${scenario.seed}\0fet\0${c.name}`).digest().readUInt32BE(0);
        return {
          name: c.name,
          rate: f.rate ?? DEFAULT_FET_RATE,
          residualMs: (f.residual_s ?? DEFAULT_FET_RESIDUAL_S) * 1000,
          servers: f.servers ? new Set(f.servers.map((s) => s.toLowerCase())) : null,
          draw: prng(h),
        };
      });
  }

  get active(): boolean {
    return this.censors.length > 0;
  }

  private covers(c: Compiled, flow: FetFlow): boolean {
    if (!c.servers) return true;
    return c.servers.has(flow.server) || (flow.serverNames ?? []).some((n) => c.servers!.has(n.toLowerCase()));
  }

  /** Whether (client, server, port) is under residual blocking at `nowMs`: the router drops even its SYNs. */
  inResidual(flow: FetFlow, nowMs: number): string | null {
    return this.residual.get(flow, nowMs);
  }

  /** The decision on a flow's first data packet at `nowMs`. Call once per flow. */
  decide(flow: FetFlow, firstPacket: Uint8Array, nowMs: number): FetDecision {
    const res = this.inResidual(flow, nowMs);
    if (res) {
      this.counts.residual++;
      return { kind: 'drop', why: 'residual', censor: res };
    }
    const covering = this.censors.filter((c) => this.covers(c, flow));
    if (covering.length === 0) return { kind: 'pass', why: 'not-covered' };
    this.counts.inspected++;
    const classification = classifyFirstPacket(firstPacket);
    if (classification.exempt) return { kind: 'pass', why: 'exempt', classification };
    for (const c of covering) {
      if (c.draw() < c.rate) {
        this.counts.blocked++;
        if (c.residualMs > 0) this.residual.set(flow, nowMs, c.residualMs, c.name);
        return { kind: 'drop', why: 'blocked', censor: c.name, classification };
      }
    }
    return { kind: 'pass', why: 'not-sampled', classification };
  }
}
