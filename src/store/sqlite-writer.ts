// The SQLite store's writer thread: inserts of measurements run on their own connection in a
// worker thread, so the collector's event loop (HTTP, parsing, analysis) and SQLite's B-tree work
// use two cores instead of taking turns on one. Reads stay on the main connection (WAL lets them
// run beside the writer and see every commit that was acknowledged).
//
// Protocol (structured clone): the main thread sends { id, op: 'group' | 'many', rows }, the thread
// answers { id, results } once the transaction is committed, or { id, error }.
//   group  a group commit of independent puts: one transaction; if it fails, each row is retried
//          in its own transaction so one bad row does not fail its neighbours (per-row results).
//   many   putMany(): one transaction, all or nothing.
// This file is both the worker's entry (when loaded as a worker) and the main side (SqliteWriter).
import Database from 'better-sqlite3';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { FlatRow } from './row.js';
import { foldRollups, insertDeltas, pendingRollupRows, ROLLUP_FOLD_ROWS } from './sqlite-rollup.js';

export type WriterRow = { row: FlatRow; body: Buffer | string };
type Result = { inserted: boolean } | { error: string };
type Request = { id: number; op: 'group' | 'many'; rows: WriterRow[] } | { id: number; op: 'close' };
type Reply = { id: number; results?: Result[]; error?: string };

export interface WriterInit {
  file: string;
  synchronous: 'NORMAL' | 'FULL';
  cols: string[];
}

/** Page cache per connection, KiB (SQLite's default is 2,000): the indexes' hot pages stay in memory. */
export const SQLITE_CACHE_KIB = 65_536;

/** The pragmas of every store connection (and of the benchmark's raw side, so both run alike). */
export function configureConnection(db: Database.Database, synchronous: 'NORMAL' | 'FULL'): void {
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('busy_timeout = 5000');
  db.pragma(`cache_size = -${SQLITE_CACHE_KIB}`);
}

/**
 * The insert statements both sides use: the row (OR IGNORE: idempotent on uid) and its raw body.
 * `inserted` hears of each row actually inserted (a duplicate is not): the rollups' counting.
 */
export function insertFunction(db: Database.Database, cols: string[], inserted?: (row: FlatRow) => void): (r: WriterRow) => boolean {
  const insertRow = db.prepare(`INSERT OR IGNORE INTO measurements (${cols.join(', ')}) VALUES (${cols.map((c) => '@' + c).join(', ')})`);
  const insertRaw = db.prepare('INSERT INTO raw_measurements (uid, body) VALUES (?, ?)');
  return ({ row, body }) => {
    if (insertRow.run(row).changes === 0) return false;
    insertRaw.run(row.uid, body);
    inserted?.(row);
    return true;
  };
}

/**
 * The writes of a connection, the same on the writer thread and inline: `one` and `many` are one
 * transaction each (true = inserted, false = the uid was there); `group` is a group commit, one
 * transaction, and if that fails each row alone, so one bad row does not fail its neighbours.
 */
export function sqliteWrites(db: Database.Database, cols: string[], opts: { deferFold?: boolean } = {}) {
  // The inserted rows' counts go to the rollups' pending deltas (sqlite-rollup.ts) in the same
  // transaction, grouped by rollup key, just before it commits.
  const deltas = insertDeltas(db);
  const insert = insertFunction(db, cols, deltas.add);
  const counting =
    <A, R>(fn: (a: A) => R) =>
    (a: A): R => {
      deltas.clear();
      const r = fn(a);
      deltas.flush();
      return r;
    };
  const one = db.transaction(counting(insert));
  const many = db.transaction(counting((rows: WriterRow[]) => rows.map(insert)));
  const fold = db.transaction(() => foldRollups(db));
  // The rollups' deltas (sqlite-rollup.ts) are folded once ROLLUP_FOLD_ROWS are pending, after a
  // commit; with deferFold the caller folds (foldIfDue) once it has acknowledged the writes, so
  // no acknowledgement waits for a fold.
  let sinceCheck = 0;
  const foldIfDue = (): void => {
    if (sinceCheck < ROLLUP_FOLD_ROWS / 10) return;
    sinceCheck = 0;
    try {
      if (pendingRollupRows(db) >= ROLLUP_FOLD_ROWS) fold.immediate();
    } catch {
      // The writes are committed: a fold that fails (a busy database) leaves the deltas pending,
      // still counted by every read, for the next check to fold.
    }
  };
  const counted = <T>(written: T[]): T[] => {
    sinceCheck += written.length;
    if (!opts.deferFold) foldIfDue();
    return written;
  };
  const group = (rows: WriterRow[]): Array<{ inserted: boolean } | { error: unknown }> => {
    try {
      return many(rows).map((inserted) => ({ inserted }));
    } catch {
      return rows.map((r) => {
        try {
          return { inserted: one(r) };
        } catch (e) {
          return { error: e };
        }
      });
    }
  };
  return {
    one: (r: WriterRow) => counted([one(r)])[0]!,
    many: (rows: WriterRow[]) => counted(many(rows)),
    group: (rows: WriterRow[]) => counted(group(rows)),
    foldIfDue,
  };
}

function runWorker(init: WriterInit): void {
  const db = new Database(init.file);
  configureConnection(db, init.synchronous);
  const writes = sqliteWrites(db, init.cols, { deferFold: true });
  parentPort!.on('message', (req: Request) => {
    if (req.op === 'close') {
      db.close();
      parentPort!.postMessage({ id: req.id, results: [] } satisfies Reply);
      parentPort!.close();
      return;
    }
    // A structured clone turns a Buffer into a Uint8Array: wrap it again (no copy) so it binds as a BLOB.
    const rows = req.rows.map((r) =>
      typeof r.body === 'string' ? r : { row: r.row, body: Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength) },
    );
    let reply: Reply;
    if (req.op === 'group')
      reply = {
        id: req.id,
        results: writes.group(rows).map((r) => ('error' in r ? { error: (r.error as Error)?.message ?? String(r.error) } : r)),
      };
    else {
      try {
        reply = { id: req.id, results: writes.many(rows).map((inserted) => ({ inserted })) };
      } catch (e) {
        reply = { id: req.id, error: (e as Error).message };
      }
    }
    parentPort!.postMessage(reply);
    writes.foldIfDue();
  });
}

if (!isMainThread && (workerData as { wallscopeSqliteWriter?: WriterInit } | null)?.wallscopeSqliteWriter) {
  runWorker((workerData as { wallscopeSqliteWriter: WriterInit }).wallscopeSqliteWriter);
}

/** The main thread's handle on the writer thread. */
export class SqliteWriter {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: Result[]) => void; reject: (e: Error) => void }>();
  private failed: Error | null = null;

  constructor(init: WriterInit) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { wallscopeSqliteWriter: init } });
    this.worker.unref(); // referenced only while a request is out (see send)
    this.worker.on('message', (r: Reply) => {
      const w = this.waiting.get(r.id);
      if (!w) return;
      this.waiting.delete(r.id);
      if (!this.waiting.size) this.worker.unref();
      if (r.error !== undefined) w.reject(new Error(`sqlite writer: ${r.error}`));
      else w.resolve(r.results!);
    });
    const fail = (e: Error) => {
      this.failed = e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    this.worker.on('error', (e) => fail(new Error(`sqlite writer thread failed: ${e.message}`)));
    this.worker.on('exit', (code) => fail(new Error(`sqlite writer thread exited (${code})`)));
  }

  private send(req: Omit<Extract<Request, { op: 'group' | 'many' }>, 'id'> | { op: 'close' }): Promise<Result[]> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, ...req });
    });
  }

  /** A group commit: per-row results (a row's own failure is its error). */
  group(rows: WriterRow[]): Promise<Result[]> {
    return this.send({ op: 'group', rows });
  }

  /** All rows in one transaction, or a rejection and none of them. */
  async many(rows: WriterRow[]): Promise<boolean[]> {
    return (await this.send({ op: 'many', rows })).map((r) => ('inserted' in r ? r.inserted : false));
  }

  /** Closes the writer's connection after every request sent before; resolves when the thread is gone. */
  async close(): Promise<void> {
    if (this.failed) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    await this.send({ op: 'close' }).catch(() => undefined);
    this.worker.ref(); // until it is gone: an unreferenced thread would let the process end before 'exit'
    await exited;
  }
}
