// A polite HTTP client for a platform's JSON API (platform watch and keywords): one request at a
// time per slot, a global request rate (token bucket), and on 429 or 5xx an exponential back-off
// that honours Retry-After and halves the rate (raised again slowly on success, AIMD). Network
// outcomes never throw: a request returns its status (0 for a network failure) and body.

import { sleep } from './sleep.js';

export interface ApiReply {
  status: number;
  body: Record<string, unknown> | null;
  /** Network failure text when status is 0. */
  failure?: string;
}

export interface PlatformClientOptions {
  base: string;
  /** Requests per second at most (default 5). */
  rate?: number;
  /** Per-request time budget (default 10 s). */
  timeoutMs?: number;
  /** Tries per request before giving up for now (default 5). */
  attempts?: number;
  /** Longest back-off (default 60 s). */
  maxBackoffMs?: number;
  /** Declared source address for a lab platform (X-Wallscope-Lab-Source); never sent when absent. */
  labSource?: string;
  signal?: AbortSignal;
}

export class PlatformClient {
  readonly base: string;
  private readonly maxRate: number;
  private rate: number;
  private tokens = 1;
  private last = Date.now();
  private pausedUntil = 0;
  private queue: Promise<void> = Promise.resolve();
  readonly counts = { requests: 0, limited: 0, server_errors: 0, network_errors: 0, gave_up: 0 };

  constructor(private readonly o: PlatformClientOptions) {
    this.base = o.base.replace(/\/+$/, '');
    this.maxRate = o.rate ?? 5;
    this.rate = this.maxRate;
  }

  /** Waits for a request slot under the current rate and any back-off pause. */
  private take(): Promise<void> {
    const next = this.queue.then(async () => {
      for (;;) {
        if (this.o.signal?.aborted) return;
        const now = Date.now();
        if (now < this.pausedUntil) {
          await sleep(this.pausedUntil - now, this.o.signal);
          continue;
        }
        this.tokens = Math.min(Math.max(1, this.rate), this.tokens + ((now - this.last) / 1000) * this.rate);
        this.last = now;
        if (this.tokens >= 1) {
          this.tokens -= 1;
          return;
        }
        await sleep(Math.ceil(((1 - this.tokens) / this.rate) * 1000), this.o.signal);
      }
    });
    this.queue = next;
    return next;
  }

  /**
   * A 429 says "too fast": pause (Retry-After, or exponential) and halve the rate. A 5xx or a network
   * failure says "unwell": pause exponentially, keep the rate (halving it on random errors would
   * starve the watch while the platform is merely flaky).
   */
  private backoff(attempt: number, retryAfter: string | null, limited: boolean): void {
    const ra = retryAfter !== null && /^\d+(\.\d+)?$/.test(retryAfter.trim()) ? Number(retryAfter) * 1000 : 0;
    const exp = Math.min(this.o.maxBackoffMs ?? 60_000, 250 * 2 ** attempt);
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + Math.max(ra, exp));
    if (limited) this.rate = Math.max(this.maxRate / 16, this.rate / 2);
  }

  async request(method: 'GET' | 'POST' | 'DELETE', path: string, opts: { token?: string; body?: unknown } = {}): Promise<ApiReply> {
    const attempts = this.o.attempts ?? 5;
    let last: ApiReply = { status: 0, body: null, failure: 'not sent' };
    for (let attempt = 0; attempt < attempts; attempt++) {
      await this.take();
      if (this.o.signal?.aborted) return { status: 0, body: null, failure: 'aborted' };
      this.counts.requests++;
      const headers: Record<string, string> = { accept: 'application/json' };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      if (this.o.labSource) headers['x-wallscope-lab-source'] = this.o.labSource;
      if (opts.body !== undefined) headers['content-type'] = 'application/json';
      let res: Response;
      try {
        res = await fetch(this.base + path, {
          method,
          headers,
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 10_000),
          redirect: 'manual',
        });
      } catch (e) {
        this.counts.network_errors++;
        last = { status: 0, body: null, failure: (e as Error).message };
        this.backoff(attempt, null, false);
        continue;
      }
      let body: Record<string, unknown> | null = null;
      try {
        const text = await res.text();
        const parsed: unknown = text.length <= 8 * 1024 * 1024 ? JSON.parse(text) : null;
        body = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
      } catch {
        body = null;
      }
      last = { status: res.status, body };
      if (res.status === 429 || res.status >= 500) {
        if (res.status === 429) this.counts.limited++;
        else this.counts.server_errors++;
        this.backoff(attempt, res.headers.get('retry-after'), res.status === 429);
        continue;
      }
      // Success: raise the rate again, 10% a time, up to the configured one.
      this.rate = Math.min(this.maxRate, this.rate * 1.1);
      return last;
    }
    this.counts.gave_up++;
    return last;
  }
}

/** Whether a reply is worth trying again later (rate limited, server error, network failure). */
export function transient(r: ApiReply): boolean {
  return r.status === 0 || r.status === 429 || r.status >= 500;
}
