// Which reports are closed, as the collector's hot path asks it. The STORE remembers closed reports
// (closeReport/isReportClosed), so a close holds across a restart and between collectors sharing
// one store; this process keeps a bounded cache in front of it:
// - a report known closed stays closed (closing is final): answered from memory;
// - a report found open is trusted open for `openTtlMs`, so a probe's run of submissions to one
//   report asks the store about it once per `openTtlMs`, not once per measurement. A close through
//   THIS process updates the cache at once; a close through ANOTHER collector on the same store is
//   seen here within `openTtlMs` (until then this collector may still accept submissions to it);
// - concurrent lookups of one report share one store call.
// Both caches are bounded (oldest entry evicted first); an evicted report is asked again.
import type { MeasurementStore } from '../store/index.js';

export interface ClosedReportsOptions {
  /** Most report ids remembered, closed and open each (default 50,000; ~10 MB at most). */
  maxEntries?: number;
  /** How long a report found open is trusted open without asking the store again (default 30 s). */
  openTtlMs?: number;
  /** The clock (ms); tests pass their own. */
  now?: () => number;
}

export class ClosedReports {
  private readonly closed = new Set<string>();
  /** report id -> when the store said it was open (ms). */
  private readonly open = new Map<string, number>();
  private readonly lookups = new Map<string, Promise<boolean>>();
  private readonly maxEntries: number;
  private readonly openTtlMs: number;
  private readonly now: () => number;
  /** Store calls made by isClosed() (for tests and metrics). */
  storeLookups = 0;

  constructor(
    private readonly store: Pick<MeasurementStore, 'closeReport' | 'isReportClosed'>,
    opts: ClosedReportsOptions = {},
  ) {
    this.maxEntries = Math.max(1, opts.maxEntries ?? 50_000);
    this.openTtlMs = Math.max(0, opts.openTtlMs ?? 30_000);
    this.now = opts.now ?? Date.now;
  }

  /** Whether this process knows the report is closed (memory only, no store call; false may mean "not known"). */
  knownClosed(reportId: string): boolean {
    return this.closed.has(reportId);
  }

  /** Whether the report is closed: from memory when known, else from the store (a store failure rejects). */
  isClosed(reportId: string): Promise<boolean> {
    if (this.closed.has(reportId)) return Promise.resolve(true);
    const seen = this.open.get(reportId);
    if (seen !== undefined && this.now() - seen < this.openTtlMs) return Promise.resolve(false);
    const pending = this.lookups.get(reportId);
    if (pending) return pending;
    this.storeLookups++;
    const lookup = this.store.isReportClosed(reportId).then(
      (closed) => {
        this.lookups.delete(reportId);
        // A close through this process while the lookup was under way wins over its answer.
        if (closed || this.closed.has(reportId)) {
          this.rememberClosed(reportId);
          return true;
        }
        this.open.delete(reportId); // re-inserted: newest last
        this.open.set(reportId, this.now());
        if (this.open.size > this.maxEntries) this.open.delete(this.open.keys().next().value!);
        return false;
      },
      (e: unknown) => {
        this.lookups.delete(reportId);
        throw e;
      },
    );
    this.lookups.set(reportId, lookup);
    return lookup;
  }

  /** Closes the report in the store (idempotent), then here; resolves once the store has it. */
  async close(reportId: string): Promise<void> {
    await this.store.closeReport(reportId);
    this.rememberClosed(reportId);
  }

  private rememberClosed(reportId: string): void {
    this.open.delete(reportId);
    if (this.closed.has(reportId)) return;
    this.closed.add(reportId);
    if (this.closed.size > this.maxEntries) this.closed.delete(this.closed.values().next().value!);
  }
}
