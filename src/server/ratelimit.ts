// Per-client rate limiting: a fixed window counter per address. Memory is bounded: the table is
// swept every window, and capped (when full, new clients share one overflow slot).
export interface RateLimitOptions {
  /** Requests per window and client. */
  max: number;
  windowMs: number;
  /** Most distinct clients tracked at once. */
  maxClients?: number;
}

export class RateLimiter {
  private windowStart = 0;
  private counts = new Map<string, number>();
  constructor(private readonly o: RateLimitOptions) {}

  /** Counts one request (or `weight` units of work); returns 0 when allowed, else the seconds until the window resets. */
  hit(client: string, now = Date.now(), weight = 1): number {
    if (now - this.windowStart >= this.o.windowMs) {
      this.windowStart = now;
      this.counts = new Map();
    }
    const key = this.counts.has(client) || this.counts.size < (this.o.maxClients ?? 100_000) ? client : '\u0000overflow';
    const n = (this.counts.get(key) ?? 0) + weight;
    this.counts.set(key, n);
    return n > this.o.max ? Math.max(1, Math.ceil((this.windowStart + this.o.windowMs - now) / 1000)) : 0;
  }
}
