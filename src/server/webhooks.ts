// Signed webhooks for changes (issue 14 "Alerts"): every change detected on ingest is POSTed to
// each configured URL, once, in detection order per URL, from a persistent outbox
// (src/store/outbox.ts): retried with exponential backoff while the receiver is down, moved to the
// dead-letter list after `maxAttempts`, and never enqueued twice across restarts.
//
// A delivery: POST, content-type application/json, body {"type":"change","change":{...}} (the
// change as GET /api/v1/changes spells it), headers
//   x-wallscope-delivery:  a stable id per (URL, change): the same on every retry (receivers dedupe on it)
//   x-wallscope-timestamp: unix seconds of this attempt
//   x-wallscope-signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
// The receiver recomputes the HMAC with the shared secret and compares in constant time; the
// timestamp inside the signed text lets it refuse replays. Delivery is at-least-once: a receiver
// that answers 2xx and whose answer is lost sees the same delivery id again.
import { createHmac } from 'node:crypto';
import type { ChangeStore, Outbox } from '../store/index.js';
import { publicChange } from './changes-routes.js';

export interface WebhookOptions {
  changes: ChangeStore;
  outbox: Outbox;
  hooks: string[];
  secret: string;
  /** Attempts before an item goes to the dead-letter list (default 12). */
  maxAttempts?: number;
  /** First retry delay (default 2 s), doubled per attempt up to maxDelayMs (default 10 min), with jitter. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  /** How often due retries are looked for (default 1 s); a new change triggers a delivery at once. */
  intervalMs?: number;
  log?: (line: string) => void;
}

export interface Webhooks {
  /** Enqueue new changes and deliver what is due (tests call it; the timer does otherwise). */
  tick(): Promise<void>;
  close(): Promise<void>;
}

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export function startWebhooks(o: WebhookOptions): Webhooks {
  // A hook configured for the first time starts after the changes that exist already.
  const startAfter = o.changes.maxId();
  let running: Promise<void> | null = null;
  let again = false;
  const state = { closed: false };
  const tick = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await deliverDue(o, startAfter, state);
        } while (again && !state.closed);
      } catch (e) {
        o.log?.(`webhooks: ${(e as Error).message}`);
      } finally {
        running = null;
      }
    })();
    return running;
  };
  const timer = setInterval(() => void tick(), o.intervalMs ?? 1000);
  timer.unref();
  o.changes.onChange(() => {
    if (!state.closed) setImmediate(() => void tick());
  });
  void tick();
  return {
    tick,
    async close() {
      state.closed = true;
      clearInterval(timer);
      if (running) await running;
    },
  };
}

type OutboxDue = ReturnType<Outbox['due']>[number];

/** Enqueues the changes detected since the last call, then delivers what is due, in order per URL. */
async function deliverDue(o: WebhookOptions, startAfter: number, state: { closed: boolean }): Promise<void> {
  o.outbox.enqueue(
    o.hooks,
    startAfter,
    (after) =>
      o.changes.listAfter(after, 500).map((c) => ({ id: c.id, body: JSON.stringify({ type: 'change', change: publicChange(c) }) })),
    Date.now(),
  );
  const failedHooks = new Set<string>();
  for (const item of o.outbox.due(Date.now(), 200)) {
    if (state.closed) return;
    // In order per URL: after a failure, the rest of that URL's items wait for the retry.
    if (failedHooks.has(item.hook)) continue;
    const error = await post(o, item);
    if (error === null) {
      o.outbox.delivered(item.id, Date.now());
      continue;
    }
    failedHooks.add(item.hook);
    retryLater(o, item, error);
  }
}

/** One signed POST; null when the receiver answered 2xx, else why not. */
async function post(o: WebhookOptions, item: OutboxDue): Promise<string | null> {
  const ts = Math.floor(Date.now() / 1000);
  try {
    const res = await fetch(item.hook, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-wallscope-delivery': `change-${item.item_id}`,
        'x-wallscope-timestamp': String(ts),
        'x-wallscope-signature': signWebhook(o.secret, ts, item.body),
        'user-agent': 'wallscope-webhooks/1',
      },
      body: item.body,
      signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
      redirect: 'manual',
    });
    await res.arrayBuffer().catch(() => undefined);
    return res.status < 200 || res.status >= 300 ? `HTTP ${res.status}` : null;
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    return `network: ${err.cause?.code ?? err.name}`;
  }
}

/** A failed delivery: retried later with exponential backoff and jitter, or dead-lettered. */
function retryLater(o: WebhookOptions, item: OutboxDue, error: string): void {
  const maxAttempts = o.maxAttempts ?? 12;
  const base = o.baseDelayMs ?? 2000;
  const max = o.maxDelayMs ?? 600_000;
  const dead = item.attempts + 1 >= maxAttempts;
  const delay = Math.round(Math.min(max, base * 2 ** item.attempts) * (0.75 + Math.random() / 4));
  o.outbox.failed(item.id, error, Date.now() + delay, dead);
  o.log?.(
    dead
      ? `webhook ${item.hook}: change ${item.item_id} moved to the dead-letter list after ${item.attempts + 1} attempts (${error})`
      : `webhook ${item.hook}: change ${item.item_id} failed (${error}); retry ${item.attempts + 1} in ${Math.ceil(delay / 1000)} s`,
  );
}
