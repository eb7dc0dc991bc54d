// Bulk load of a SQLite store: millions of measurements in minutes (an archive import, a benchmark's
// seed). The rows are the store's own (flatten, serializeMeasurement, compressBody: the same uid and
// body as put()), written through the same insert statement, but:
//   - the secondary indexes are dropped first and built once at the end (a sort, not millions of
//     random B-tree inserts), the rollups counted once at the end by their rebuild;
//   - rows already flattened (WriterRow, e.g. src/testing/realistic-seed.ts's realisticRows) go in
//     as they are;
//   - one transaction per batch with no journal and synchronous=OFF during the load (a crash
//     mid-load leaves a file to delete, not a half-trusted store: the load is for a fresh file);
//   - callers hand over batches in (day, uid) order, so the clustered key and raw_measurements
//     grow at their ends.
import Database from 'better-sqlite3';
import type { Measurement, Verdict } from '../model/index.js';
import { flatten, hostOfInput, serializeMeasurement } from './row.js';
import { COLS, compressBody, migrateSqlite } from './sqlite.js';
import { rebuildRollups, ROLLUP_TRIGGERS, rollupTriggersDdl } from './sqlite-rollup.js';
import { configureConnection, insertFunction, type WriterRow } from './sqlite-writer.js';

export interface BulkLoadReport {
  inserted: number;
  duplicates: number;
  /** Seconds spent inserting rows, building the indexes and counting the rollups. */
  insertS: number;
  indexS: number;
  rollupS: number;
}

/** Loads batches of measurements into the store file `file` (created and migrated when missing). */
export function bulkLoadSqlite(
  file: string,
  batches: Iterable<Array<{ m: Measurement; verdict: Verdict } | WriterRow>>,
  onProgress?: (inserted: number) => void,
): BulkLoadReport {
  const db = new Database(file);
  try {
    configureConnection(db, 'NORMAL');
    migrateSqlite(db);
    // No journal while loading: every page is written once (WAL would write it twice, to the log
    // and at the checkpoint). WAL again once loaded. better-sqlite3's connections are in SQLite's
    // defensive mode, which refuses journal_mode=OFF (silently: the mode stays WAL).
    db.unsafeMode(true);
    db.pragma('journal_mode = OFF');
    db.unsafeMode(false);
    if (db.pragma('journal_mode', { simple: true }) !== 'off') throw new Error('bulk load: journal_mode=OFF was refused');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -1048576'); // 1 GiB while loading
    const indexes = db
      .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'measurements' AND sql IS NOT NULL")
      .all() as Array<{ name: string; sql: string }>;
    for (const i of indexes) db.exec(`DROP INDEX ${i.name}`);
    for (const t of ROLLUP_TRIGGERS) db.exec(`DROP TRIGGER IF EXISTS ${t}`);
    const insert = insertFunction(db, COLS);
    const many = db.transaction((rows: Array<{ m: Measurement; verdict: Verdict } | WriterRow>) => {
      let n = 0;
      for (const item of rows) {
        if ('row' in item) {
          if (insert(item)) n++;
          continue;
        }
        const { uid, json } = serializeMeasurement(item.m);
        if (insert({ row: flatten(item.m, item.verdict, uid, hostOfInput), body: compressBody(json) })) n++;
      }
      return n;
    });
    let inserted = 0;
    let seen = 0;
    const t0 = performance.now();
    for (const batch of batches) {
      inserted += many(batch);
      seen += batch.length;
      onProgress?.(inserted);
    }
    const t1 = performance.now();
    // A duplicate uid has the same content, so the same (probe_cc, day, uid) key: OR IGNORE kept it
    // out without the uid index, which is UNIQUE again once rebuilt.
    for (const i of indexes) db.exec(i.sql);
    const t2 = performance.now();
    db.transaction(() => {
      rebuildRollups(db);
      db.exec(rollupTriggersDdl());
    })();
    db.pragma('analysis_limit = 1000'); // statistics from a sample: a full ANALYZE reads every index
    db.exec('ANALYZE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    const t3 = performance.now();
    return {
      inserted,
      duplicates: seen - inserted,
      insertS: (t1 - t0) / 1000,
      indexS: (t2 - t1) / 1000,
      rollupS: (t3 - t2) / 1000,
    };
  } finally {
    db.close();
  }
}
