// A local journal in front of ClickHouse (`wallscope serve --clickhouse URL --journal FILE`).
//
// Without it, a submission is acknowledged once ClickHouse answered its batch insert, and ClickHouse
// wants few large inserts: an acknowledgement waits 100-300 ms, so a probe connection submits a
// few measurements per second. With it, a submission is acknowledged once it is committed to a
// local SQLite file (WAL, one transaction per turn of the event loop: as durable as the SQLite
// store, i.e. it survives a kill -9 of the collector), and a shipper moves journaled measurements
// into ClickHouse in large batches, deleting them from the journal only after ClickHouse took them.
// After a crash, the next start ships what is left. Shipping goes through the store's putMany(),
// which looks the uids up first, so a measurement shipped twice (a crash between ClickHouse's
// answer and the journal's delete) is stored once.
//
// What changes for readers: list/aggregate see a measurement once it is shipped (normally within
// one batch insert, ~0.1-0.5 s); get(uid) answers from the journal before that. `inserted` is
// exact for uids this collector saw (journal or recently shipped); a duplicate of a measurement
// stored long ago or by another collector is acknowledged as new and, at shipping, not stored again.
// A batch ClickHouse keeps refusing while others succeed is a poison batch: its rows are shipped
// one by one and the ones refused move to the journal's `refused` table with the error, so they
// never block the rest; when everything fails, ClickHouse is down and the shipper backs off.
import Database from 'better-sqlite3';
import type { Measurement, Verdict } from '../model/index.js';
import { serializeMeasurement } from './row.js';
import type {
  AggregationQuery,
  AggregationRow,
  MeasurementFilter,
  MeasurementRow,
  MeasurementStore,
  PutResult,
  StoredMeasurement,
} from './types.js';

export interface JournalOptions {
  /** The journal's SQLite file (created when missing). */
  file: string;
  /** Most measurements per shipment (default 5000). */
  batchMax?: number;
  /** Shipments in flight at once (default 3; ClickHouse takes parallel inserts well). */
  shippers?: number;
  /** Backoff after a failed shipment: first and longest wait in ms (default 200 and 10,000). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How many acknowledged uids the journal remembers after shipping them (default 200,000). */
  recentMax?: number;
  synchronous?: 'NORMAL' | 'FULL';
  /** Called with each failed shipment's error (the server logs it). */
  onShipError?: (e: unknown) => void;
}

export interface JournalStats {
  /** Measurements acknowledged and not yet in the store. */
  backlog: number;
  shipped: number;
  /** Rows the store refused alone (kept in the journal's `refused` table). */
  refused: number;
  failedShipments: number;
  lastError: string | null;
}

type Pending = { uid: string; body: string; verdict: string; resolve: (r: PutResult) => void; reject: (e: unknown) => void };
type JournalRow = { seq: number; uid: string; body: string; verdict: string };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class JournaledStore implements MeasurementStore {
  readonly kind: MeasurementStore['kind'];
  readonly db: Database.Database;
  private readonly batchMax: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly recentMax: number;
  private readonly recent = new Set<string>();
  private pending: Pending[] = [];
  private flushScheduled = false;
  private readonly shippers: number;
  /** Shipper loops running; each takes the next rows after `cursor` (a failed batch moves it back). */
  private readonly running = new Set<Promise<void>>();
  private cursor = 0;
  private closing = false;
  private closed = false;
  private readonly wakes = new Set<() => void>();
  private readonly st = { shipped: 0, refused: 0, failedShipments: 0, lastError: null as string | null };
  private readonly insert: Database.Statement;
  private readonly insertMany: (rows: Array<{ uid: string; body: string; verdict: string }>) => boolean[];
  private readonly oldest: Database.Statement;
  private readonly byUid: Database.Statement;
  private readonly countRows: Database.Statement;
  private readonly remove: (seqs: number[]) => void;
  private readonly refuse: (row: JournalRow, error: string) => void;

  constructor(
    readonly inner: MeasurementStore,
    private readonly opts: JournalOptions,
  ) {
    this.kind = inner.kind;
    this.batchMax = Math.max(1, opts.batchMax ?? 5000);
    this.shippers = Math.max(1, opts.shippers ?? 3);
    this.retryBaseMs = opts.retryBaseMs ?? 200;
    this.retryMaxMs = opts.retryMaxMs ?? 10_000;
    this.recentMax = Math.max(0, opts.recentMax ?? 200_000);
    this.db = new Database(opts.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL UNIQUE, body TEXT NOT NULL, verdict TEXT NOT NULL, received_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS refused (uid TEXT PRIMARY KEY, body TEXT NOT NULL, verdict TEXT NOT NULL, error TEXT NOT NULL, refused_at INTEGER NOT NULL);
    `);
    this.insert = this.db.prepare('INSERT OR IGNORE INTO journal (uid, body, verdict, received_at) VALUES (?, ?, ?, ?)');
    const insertAll = this.db.transaction((rows: Array<{ uid: string; body: string; verdict: string }>) => {
      const now = Math.floor(Date.now() / 1000);
      return rows.map((r) => this.insert.run(r.uid, r.body, r.verdict, now).changes > 0);
    });
    this.insertMany = (rows) => insertAll(rows);
    this.oldest = this.db.prepare('SELECT seq, uid, body, verdict FROM journal WHERE seq > ? ORDER BY seq LIMIT ?');
    this.byUid = this.db.prepare('SELECT body, verdict FROM journal WHERE uid = ?');
    this.countRows = this.db.prepare('SELECT COUNT(*) AS n FROM journal');
    const del = this.db.prepare('DELETE FROM journal WHERE seq = ?');
    this.remove = this.db.transaction((seqs: number[]) => {
      for (const s of seqs) del.run(s);
    });
    const ref = this.db.prepare('INSERT OR REPLACE INTO refused (uid, body, verdict, error, refused_at) VALUES (?, ?, ?, ?, ?)');
    this.refuse = this.db.transaction((row: JournalRow, error: string) => {
      ref.run(row.uid, row.body, row.verdict, error.slice(0, 2000), Math.floor(Date.now() / 1000));
      del.run(row.seq);
    });
    this.kick(); // ship what a previous run left behind
  }

  /** Rows in the journal (acknowledged, not yet shipped). */
  private backlog(): number {
    return (this.countRows.get() as { n: number }).n;
  }

  stats(): JournalStats {
    const backlog = this.backlog();
    return { backlog, ...this.st };
  }

  private remember(uid: string): void {
    if (this.recentMax === 0) return;
    this.recent.add(uid);
    if (this.recent.size > this.recentMax) this.recent.delete(this.recent.values().next().value!);
  }

  /** Resolves once the measurement is committed to the journal (durable against a crash of the process). */
  put(m: Measurement, verdict: Verdict): Promise<PutResult> {
    if (this.closing) return Promise.reject(new Error('the journaled store is closed'));
    let uid: string;
    let body: string;
    let v: string;
    try {
      ({ uid, json: body } = serializeMeasurement(m));
      v = JSON.stringify(verdict);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.recent.has(uid)) return Promise.resolve({ measurement_uid: uid, inserted: false });
    return new Promise((resolve, reject) => {
      this.pending.push({ uid, body, verdict: v, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushPending());
      }
    });
  }

  private flushPending(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    let results: boolean[];
    try {
      results = this.insertMany(batch);
    } catch (e) {
      for (const b of batch) b.reject(e);
      return;
    }
    batch.forEach((b, i) => {
      // A uid already in the journal (INSERT OR IGNORE) or acknowledged just before in this batch: a duplicate.
      const inserted = results[i] && !this.recent.has(b.uid);
      this.remember(b.uid);
      b.resolve({ measurement_uid: b.uid, inserted });
    });
    this.kick();
  }

  /** All in one journal transaction, or a rejection and none of them. */
  async putMany(items: Array<{ m: Measurement; verdict: Verdict }>): Promise<PutResult[]> {
    if (this.closing) throw new Error('the journaled store is closed');
    const rows = items.map(({ m, verdict }) => {
      const { uid, json } = serializeMeasurement(m);
      return { uid, body: json, verdict: JSON.stringify(verdict) };
    });
    const fresh = rows.map((r) => !this.recent.has(r.uid));
    const results = this.insertMany(rows);
    const out = rows.map((r, i) => {
      const inserted = results[i] && fresh[i];
      this.remember(r.uid);
      return { measurement_uid: r.uid, inserted };
    });
    this.kick();
    return out;
  }

  /** Starts shippers up to `shippers` (one waiting out a backoff is not hurried: ClickHouse may be down). */
  private kick(): void {
    while (!this.closed && this.running.size < this.shippers) {
      const run: Promise<void> = this.shipLoop().finally(() => this.running.delete(run));
      this.running.add(run);
    }
  }

  private async shipLoop(): Promise<void> {
    let failures = 0;
    for (;;) {
      if (this.closed) return;
      const rows = this.oldest.all(this.cursor, this.batchMax) as JournalRow[];
      if (!rows.length) return;
      this.cursor = Math.max(this.cursor, rows[rows.length - 1].seq);
      try {
        await this.ship(rows);
        failures = 0;
      } catch (e) {
        failures++;
        this.st.failedShipments++;
        this.st.lastError = (e as Error).message ?? String(e);
        this.opts.onShipError?.(e);
        if (failures >= 3 && rows.length > 1 && (await this.shipOneByOne(rows))) {
          failures = 0;
          continue;
        }
        // These rows are taken again (by this loop or another) after the backoff.
        this.cursor = Math.min(this.cursor, rows[0].seq - 1);
        if (this.closing) return; // close() gives up waiting; the rest ships at the next start
        const wait = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(failures - 1, 16));
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            this.wakes.delete(done);
            resolve();
          };
          const timer = setTimeout(done, wait);
          this.wakes.add(done);
        });
      }
    }
  }

  private async ship(rows: JournalRow[]): Promise<void> {
    const items = rows.map((r) => ({ m: JSON.parse(r.body) as Measurement, verdict: JSON.parse(r.verdict) as Verdict }));
    await this.inner.putMany(items);
    this.remove(rows.map((r) => r.seq));
    this.st.shipped += rows.length;
  }

  /** After repeated failures: each row alone. True when some went through (so the refused ones are poison, not an outage). */
  private async shipOneByOne(rows: JournalRow[]): Promise<boolean> {
    const failed: Array<{ row: JournalRow; error: string }> = [];
    let ok = 0;
    for (const row of rows) {
      try {
        await this.ship([row]);
        ok++;
      } catch (e) {
        failed.push({ row, error: (e as Error).message ?? String(e) });
        if (!ok && failed.length >= 3) return false; // nothing goes through: an outage, not a poison row
      }
    }
    if (!ok) return false;
    for (const f of failed) {
      this.refuse(f.row, f.error);
      this.st.refused++;
    }
    return true;
  }

  /**
   * Waits until everything acknowledged so far is in the store, or `timeoutMs` passed.
   * True when the journal is empty.
   */
  async flush(timeoutMs = 30_000): Promise<boolean> {
    if (this.pending.length) this.flushPending();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = this.backlog();
      if (n === 0) return true;
      if (Date.now() >= deadline || this.closed) return false;
      this.kick();
      await sleep(Math.max(1, Math.min(20, deadline - Date.now())));
    }
  }

  async get(uid: string): Promise<StoredMeasurement | null> {
    const j = this.byUid.get(uid) as { body: string; verdict: string } | undefined;
    if (j) {
      const measurement = JSON.parse(j.body) as Measurement;
      measurement.measurement_uid = uid;
      const verdict = JSON.parse(j.verdict) as Verdict;
      return { measurement_uid: uid, measurement, verdict, analysis_version: verdict.analysis_version };
    }
    return this.inner.get(uid);
  }

  list(
    filter: MeasurementFilter,
    page: { limit: number; cursor?: string },
  ): Promise<{ results: MeasurementRow[]; next_cursor: string | null }> {
    return this.inner.list(filter, page);
  }

  aggregate(q: AggregationQuery): Promise<AggregationRow[]> {
    return this.inner.aggregate(q);
  }

  /** Re-analysis reads the store: the journal is shipped first. */
  async scan(
    afterUid: string | null,
    limit: number,
  ): Promise<Array<{ measurement_uid: string; measurement: Measurement; analysis_version: string }>> {
    await this.flush();
    return this.inner.scan(afterUid, limit);
  }

  async setVerdict(uid: string, verdict: Verdict): Promise<boolean> {
    const j = this.db.prepare('UPDATE journal SET verdict = ? WHERE uid = ?').run(JSON.stringify(verdict), uid).changes > 0;
    return (await this.inner.setVerdict(uid, verdict)) || j;
  }

  async delete(uid: string): Promise<boolean> {
    const j = this.db.prepare('DELETE FROM journal WHERE uid = ?').run(uid).changes > 0;
    this.recent.delete(uid);
    return (await this.inner.delete(uid)) || j;
  }

  /** The store's count after shipping (bounded wait), plus what could not be shipped yet. */
  async count(): Promise<number> {
    await this.flush();
    const left = this.backlog();
    return (await this.inner.count()) + left;
  }

  closeReport(reportId: string): Promise<void> {
    return this.inner.closeReport(reportId);
  }

  isReportClosed(reportId: string): Promise<boolean> {
    return this.inner.isReportClosed(reportId);
  }

  schemaVersion(): Promise<number> {
    return this.inner.schemaVersion();
  }

  /** Ships what it can within `drainMs` (default 10 s), then closes; anything left ships at the next start. */
  async close(drainMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    await this.flush(drainMs);
    this.closed = true;
    for (const w of [...this.wakes]) w();
    await Promise.all(this.running);
    this.db.close();
    await this.inner.close();
  }
}
