// Residual blocking that drops whole flows on (client ip, server ip, server port) for a while after
// a block, with no clock of its own: the FET and ESNI censors both keep one (censors.md sections 3
// and 7). The reset censors' residual (front.ts ResidualTable) also carries a latency and a close kind.

export interface Triple {
  client: string;
  server: string;
  port: number;
}

export class TripleResidual {
  private readonly until = new Map<string, { until: number; censor: string }>();

  private key(t: Triple): string {
    return `${t.client}|${t.server}|${t.port}`;
  }

  /** Blocks `t` for `ms` from `nowMs` on behalf of `censor`. */
  set(t: Triple, nowMs: number, ms: number, censor: string): void {
    this.until.set(this.key(t), { until: nowMs + ms, censor });
  }

  /** The censor under whose residual block `t` is at `nowMs`, or null (an expired entry is dropped). */
  get(t: Triple, nowMs: number): string | null {
    const k = this.key(t);
    const e = this.until.get(k);
    if (!e) return null;
    if (nowMs >= e.until) {
      this.until.delete(k);
      return null;
    }
    return e.censor;
  }
}
