// A measurement's clock and event log. Every step stamps its observations with seconds since
// the measurement started (OONI's t0/t) and appends low-level network events (df-008) here.
// The event log is bounded: a hostile peer that dribbles a body byte by byte cannot make it grow
// without limit.
import type { NetworkEvent, Failure } from '../model/index.js';

export const MAX_NETWORK_EVENTS = 2000;

export class Trace {
  readonly startedAt: Date;
  private readonly origin: bigint;
  readonly events: NetworkEvent[] = [];
  eventsDropped = 0;
  /** Local (source) addresses of the probe's own sockets: candidates for scrubbing. */
  readonly localAddresses = new Set<string>();
  /** Every TCP connection the probe opened: its local port ties captured packets to an entry (`--capture`). */
  readonly sockets: Array<{ transaction_id: number; address: string; local_port: number; tags: string[] | null }> = [];
  private txid = 0;

  constructor(start: Date = new Date(), origin: bigint = process.hrtime.bigint()) {
    this.startedAt = start;
    this.origin = origin;
  }

  /** Seconds since the measurement started, to the microsecond. */
  now(): number {
    return Math.round(Number(process.hrtime.bigint() - this.origin) / 1e3) / 1e6;
  }

  nextTransaction(): number {
    return ++this.txid;
  }

  event(ev: {
    operation: string;
    address?: string;
    proto?: string;
    failure?: Failure | null;
    num_bytes?: number;
    t0?: number;
    t?: number;
    transaction_id?: number;
    tags?: string[];
  }): void {
    if (this.events.length >= MAX_NETWORK_EVENTS) {
      this.eventsDropped++;
      return;
    }
    const t = ev.t ?? this.now();
    // Assigned key by key in df-008's order (no object spreads: an event is written for every read
    // and write of every measurement, so this is on the probe's hot path).
    const e = { operation: ev.operation } as NetworkEvent;
    if (ev.address !== undefined) e.address = ev.address;
    if (ev.proto !== undefined) e.proto = ev.proto;
    e.failure = ev.failure ?? null;
    if (ev.num_bytes !== undefined) e.num_bytes = ev.num_bytes;
    e.t0 = ev.t0 ?? t;
    e.t = t;
    if (ev.transaction_id !== undefined) e.transaction_id = ev.transaction_id;
    e.tags = ev.tags ?? null;
    this.events.push(e);
  }
}
