// Rollups of the SQLite store: per-day (and all-time) counts of measurements along the axes the
// explorer filters and groups by, kept inside the same transaction as the measurement they count.
// An aggregation whose filters and axes a rollup covers reads the rollup (a few thousand rows)
// instead of the measurements (millions); the answer is the same, row for row (src/store/rollup.test.ts
// compares both on a seeded store, also after late and duplicate ingest, re-analysis and deletes).
//
// Why several tables: one rollup with every axis is nearly as big as the measurements themselves
// (a day x network x domain x verdict has one or two measurements), so each table drops the axes a
// page does not combine: a country's or network's pages over time (no domain), a domain's page and
// a country's domains over all time (no day), and the full set per day for everything else.
// Whatever no rollup covers (the input axis or filter, the hour grain, time bounds that are not
// whole days) reads the measurements, as before.
//
// NULL in a rollup: the key columns of a WITHOUT ROWID table are NOT NULL, so a missing region,
// domain, category, blocking class, mechanism or layer is kept as NONE and turned back into NULL on
// the way out.
import type Database from 'better-sqlite3';
import type { Axis, MeasurementFilter, TimeGrain } from './types.js';

/** Stands for NULL in a rollup's key (no real region, domain or mechanism is this character). */
export const NONE = '\u0001';

/** The measurement columns a rollup may keep (besides day). */
export const ROLLUP_DIMS = [
  'probe_cc',
  'probe_asn',
  'region',
  'domain',
  'category_code',
  'test_name',
  'blocking',
  'mechanism',
  'layer',
  'status',
  'confirmed',
] as const;
type Dim = (typeof ROLLUP_DIMS)[number];
const NULLABLE = new Set<Dim>(['region', 'domain', 'category_code', 'blocking', 'mechanism', 'layer']);
/** What every rollup keeps: the verdict's columns, so every MAT count and blocking filter is exact. */
const VERDICT: Dim[] = ['test_name', 'blocking', 'mechanism', 'layer', 'status', 'confirmed'];

export interface Rollup {
  name: string;
  /** Whether the rollup is per day (else all-time). */
  day: boolean;
  /** The key, in order (day, when kept, is placed where `key` says). */
  key: Array<Dim | 'day'>;
  /** Covering indexes: the filter columns a page narrows by, then day. */
  indexes: Array<Array<Dim | 'day'>>;
}

/** In the order the planner tries them: the first that covers a query answers it (all-time ones first for a question without days, pickRollup). */
export const ROLLUPS: Rollup[] = [
  {
    // All-time counts by network and verdict: the overview's and a country's, network's or
    // region's breakdowns by mechanism, layer, network or region (a few thousand rows).
    name: 'rollup_net_all',
    day: false,
    key: ['probe_cc', 'probe_asn', 'region', ...VERDICT],
    indexes: [['probe_asn'], ['region']],
  },
  {
    // Per day and country, counts only: the overview's and a country's series, anomalies by country.
    name: 'rollup_cc_status_day',
    day: true,
    key: ['day', 'probe_cc', 'status', 'confirmed'],
    indexes: [['probe_cc', 'day']],
  },
  {
    // The smallest: what the overview, a country's, network's or region's series and the
    // anomalies ask (counts only, no verdict detail).
    name: 'rollup_net_status_day',
    day: true,
    key: ['day', 'probe_cc', 'probe_asn', 'region', 'status', 'confirmed'],
    indexes: [
      ['probe_cc', 'day'],
      ['probe_asn', 'day'],
      ['region', 'day'],
    ],
  },
  {
    // Per day, country and domain, counts only: anomalies by domain or category in a country.
    name: 'rollup_domain_status_day',
    day: true,
    key: ['probe_cc', 'day', 'domain', 'category_code', 'status', 'confirmed'],
    indexes: [
      ['domain', 'day'],
      ['category_code', 'day'],
    ],
  },
  {
    name: 'rollup_net_day',
    day: true,
    key: ['probe_cc', 'day', 'probe_asn', 'region', ...VERDICT],
    indexes: [['day'], ['probe_asn', 'day'], ['region', 'day']],
  },
  {
    name: 'rollup_domain_all',
    day: false,
    key: ['probe_cc', 'domain', 'category_code', ...VERDICT],
    indexes: [['domain'], ['category_code']],
  },
  {
    name: 'rollup_all',
    day: false,
    key: ['domain', 'probe_cc', 'probe_asn', 'region', 'category_code', ...VERDICT],
    indexes: [['probe_cc'], ['probe_asn'], ['region'], ['category_code']],
  },
  {
    name: 'rollup_full_day',
    day: true,
    key: ['domain', 'day', 'probe_cc', 'probe_asn', 'region', 'category_code', ...VERDICT],
    indexes: [['day'], ['probe_cc', 'day'], ['probe_asn', 'day'], ['region', 'day'], ['category_code', 'day']],
  },
];

const dimsOf = (r: Rollup): Dim[] => r.key.filter((k): k is Dim => k !== 'day');

/** The table of a rollup (its key is its primary key). */
const tableDdl = (r: Rollup): string =>
  `CREATE TABLE IF NOT EXISTS ${r.name} (${r.key.map((k) => `${k} ${k === 'probe_asn' || k === 'confirmed' ? 'INTEGER' : 'TEXT'} NOT NULL`).join(', ')}, n INTEGER NOT NULL, PRIMARY KEY (${r.key.join(', ')})) WITHOUT ROWID;`;
/**
 * Its covering indexes (the key rides in every index of a WITHOUT ROWID table; n is added): a scan
 * in an index's order reads no table row. Without n, ad hoc at 1M measurements, the count of each
 * group cost a table seek and some axes took 10-50x longer; with it, an ingest updates n in every
 * index too (about 1.3x the rollups' ingest cost).
 */
const indexDdl = (r: Rollup): string[] =>
  r.indexes.map((cols) => `CREATE INDEX IF NOT EXISTS ${r.name}_${cols.join('_')} ON ${r.name} (${[...cols, 'n'].join(', ')});`);

/** The DDL of every rollup (table and indexes), of the pending deltas, and of the triggers that append them. */
export function rollupDdl(): string {
  return ROLLUPS.map((r) => [tableDdl(r), ...indexDdl(r)].join('\n')).join('\n') + pendingDdl() + rollupTriggersDdl();
}

/** A measurement column as the rollup keeps it (NULL -> NONE), of the row `row` (a trigger's NEW or OLD). */
const keyExpr = (k: Dim | 'day', row?: 'NEW' | 'OLD'): string => {
  const col = row ? `${row}.${k}` : k;
  return NULLABLE.has(k as Dim) ? `coalesce(${col}, char(1))` : col;
};

/**
 * Empties the rollups and counts every stored measurement again (a migration, or after a bulk
 * load): the finest rollup from the measurements, every other one from it (fewer rows to sort).
 */
export function rebuildRollups(db: Database.Database): void {
  // Filled without their indexes, which are built once at the end (a sort, not random inserts).
  for (const r of ROLLUPS) {
    db.exec(`DROP TABLE IF EXISTS ${r.name}`);
    db.exec(tableDdl(r));
  }
  // What is pending is in the measurements already: the recount below includes it.
  db.exec(pendingDdl());
  db.exec('DELETE FROM rollup_pending');
  const finest = ROLLUPS.find((r) => r.day && dimsOf(r).length === ROLLUP_DIMS.length)!;
  for (const r of [finest, ...ROLLUPS.filter((x) => x !== finest)]) {
    const from = r === finest ? 'measurements' : finest.name;
    const cols = r === finest ? r.key.map((k) => keyExpr(k)) : r.key;
    db.exec(
      `INSERT INTO ${r.name} (${r.key.join(', ')}, n) SELECT ${cols.join(', ')}, ${r === finest ? 'COUNT(*)' : 'SUM(n)'} FROM ${from} GROUP BY ${r.key.map((_, i) => i + 1).join(', ')}`,
    );
  }
  for (const r of ROLLUPS) for (const sql of indexDdl(r)) db.exec(sql);
}

/**
 * The rollups' pending deltas: one signed row per change of the measurements, with the row's rollup
 * columns and d, the count it adds (+n for rows inserted, -1 for a row deleted, both for a row
 * updated by re-analysis); foldRollups() adds them into every rollup in one pass and empties the
 * table. Always inside the transaction of the change itself, so every read sees both or neither.
 *   - Inserts are counted by the code that inserts (insertDeltas below: the writer thread, putSync):
 *     per transaction, one row per distinct rollup key with its count, in a few multi-row INSERTs.
 *   - Deletes and updates (delete, setVerdict, a manual fix in the sqlite3 shell) by triggers.
 *
 * Why not update the rollups in triggers: that was eight upserts and about twenty index updates
 * per measurement, 3-4x the CPU of an ingest without rollups (ad hoc, 20,000 measurements in
 * batches of 500: 14.2 s against 3.7-4.7 s). Why not a trigger for inserts too (as before
 * migration 8): one trigger program and one appended row per measurement cost 60-80 µs of CPU per
 * row (ad hoc, 40,000 realistic rows in batches of 500, about 230 against 170 µs without); counted in
 * JavaScript and grouped, a batch costs a few statements.
 * Reads stay exact in between: rollupSource() reads a rollup together with the pending deltas.
 */
const PENDING_COLS: Array<Dim | 'day'> = ['day', ...ROLLUP_DIMS];
const pendingDdl = (): string =>
  `CREATE TABLE IF NOT EXISTS rollup_pending (${PENDING_COLS.map((k) => `${k} ${k === 'probe_asn' || k === 'confirmed' ? 'INTEGER' : 'TEXT'} NOT NULL`).join(', ')}, d INTEGER NOT NULL);`;

/** Fold once this many deltas are pending (the writer checks after each transaction). */
export const ROLLUP_FOLD_ROWS = 5000;

export function rollupTriggersDdl(): string {
  const append = (row: 'NEW' | 'OLD', d: 1 | -1) =>
    `INSERT INTO rollup_pending (${PENDING_COLS.join(', ')}, d) VALUES (${PENDING_COLS.map((k) => keyExpr(k, row)).join(', ')}, ${d});`;
  return `
  CREATE TRIGGER IF NOT EXISTS measurements_rollup_delete AFTER DELETE ON measurements BEGIN
    ${append('OLD', -1)}
  END;
  CREATE TRIGGER IF NOT EXISTS measurements_rollup_update AFTER UPDATE ON measurements BEGIN
    ${append('OLD', -1)}
    ${append('NEW', 1)}
  END;`;
}

/** The triggers' names (a bulk load drops them while it loads, then recounts and recreates them). */
export const ROLLUP_TRIGGERS = ['measurements_rollup_delete', 'measurements_rollup_update'];

/** The rollup columns of a stored row, as the pending table keeps them (NULL -> NONE). */
type PendingKeyRow = Record<(typeof PENDING_COLS)[number], string | number | null>;

/** Rows per multi-row INSERT into rollup_pending (13 parameters each, well under SQLite's limit). */
const DELTA_CHUNK = 100;

/**
 * The counting of inserted measurements into rollup_pending, for one connection: add() each row
 * the transaction inserted, flush() before it commits (one pending row per distinct key, with its
 * count), clear() when a transaction starts (what a rolled-back one added is dropped).
 */
export function insertDeltas(db: Database.Database): { add: (row: PendingKeyRow) => void; flush: () => void; clear: () => void } {
  const groups = new Map<string, Array<string | number>>();
  const statements = new Map<number, Database.Statement>();
  const statement = (rows: number): Database.Statement => {
    let st = statements.get(rows);
    if (!st) {
      const tuple = `(${PENDING_COLS.map(() => '?').join(', ')}, ?)`;
      st = db.prepare(`INSERT INTO rollup_pending (${PENDING_COLS.join(', ')}, d) VALUES ${Array(rows).fill(tuple).join(', ')}`);
      statements.set(rows, st);
    }
    return st;
  };
  return {
    add(row) {
      const key = PENDING_COLS.map((k) => row[k] ?? NONE);
      const id = key.join('\u0000');
      const g = groups.get(id);
      if (g) (g[g.length - 1] as number)++;
      else groups.set(id, [...key, 1]);
    },
    flush() {
      const all = [...groups.values()];
      groups.clear();
      for (let i = 0; i < all.length; i += DELTA_CHUNK) {
        const part = all.slice(i, i + DELTA_CHUNK);
        statement(part.length).run(part.flat());
      }
    },
    clear: () => groups.clear(),
  };
}

/** How many deltas wait to be folded (cheap: the table only grows at its end between folds). */
export function pendingRollupRows(db: Database.Database): number {
  const r = db.prepare('SELECT max(rowid) - min(rowid) + 1 AS n FROM rollup_pending').get() as { n: number | null };
  return r.n ?? 0;
}

/**
 * Adds the pending deltas into every rollup (a group whose count reaches 0 goes) and empties the
 * pending table. Call inside a transaction: the rollups and the deltas move together.
 */
export function foldRollups(db: Database.Database): void {
  const negative = db.prepare('SELECT 1 FROM rollup_pending WHERE d < 0 LIMIT 1').get() !== undefined;
  for (const r of ROLLUPS) {
    const key = r.key.join(', ');
    // WHERE true: SQLite's rule for an upsert fed by a SELECT (it keeps ON CONFLICT from reading as a join's ON).
    db.exec(
      `INSERT INTO ${r.name} (${key}, n) SELECT ${key}, SUM(d) FROM rollup_pending WHERE true GROUP BY ${key} HAVING SUM(d) <> 0 ON CONFLICT (${key}) DO UPDATE SET n = n + excluded.n`,
    );
    if (negative) db.exec(`DELETE FROM ${r.name} WHERE n <= 0 AND (${key}) IN (SELECT ${key} FROM rollup_pending WHERE d < 0)`);
  }
  db.exec('DELETE FROM rollup_pending');
}

/** What an aggregation reads for rollup `r`: its counts together with the deltas not folded yet. */
export function rollupSource(r: Rollup): string {
  const key = r.key.join(', ');
  return `(SELECT ${key}, n FROM ${r.name} UNION ALL SELECT ${key}, d AS n FROM rollup_pending)`;
}

/** What a query needs from a rollup: its columns and whether it needs the day. */
function needs(filter: MeasurementFilter, axes: Axis[], grain: TimeGrain): { cols: Set<Dim>; day: boolean } | null {
  const cols = new Set<Dim>();
  let day = false;
  const DAY = 86400;
  if (filter.since !== undefined) {
    if (filter.since % DAY !== 0) return null;
    day = true;
  }
  if (filter.until !== undefined) {
    if (filter.until % DAY !== 0) return null;
    day = true;
  }
  if (filter.input !== undefined) return null;
  const FILTER_COL: Partial<Record<keyof MeasurementFilter, Dim>> = {
    probe_cc: 'probe_cc',
    probe_asn: 'probe_asn',
    domain: 'domain',
    region: 'region',
    test_name: 'test_name',
    mechanism: 'mechanism',
    layer: 'layer',
    category_code: 'category_code',
  };
  for (const [k, col] of Object.entries(FILTER_COL) as Array<[keyof MeasurementFilter, Dim]>) {
    const v = filter[k];
    if (v === undefined) continue;
    if (v === NONE) return null; // would match the rollup's stand-in for NULL
    cols.add(col);
  }
  // blocking=true is status = 'blocked'; the other blocking filters read the blocking column.
  if (filter.blocking !== undefined && filter.blocking !== 'true') cols.add('blocking');
  for (const a of axes) {
    if (a === 'input') return null;
    if (a === 'measurement_start_day') {
      if (grain === 'hour') return null;
      day = true;
    } else cols.add(a === 'blocking_type' ? 'blocking' : a);
  }
  return { cols, day };
}

/** The first rollup that answers this aggregation exactly, or null (then the measurements do). */
export function pickRollup(filter: MeasurementFilter, axes: Axis[], grain: TimeGrain): Rollup | null {
  const n = needs(filter, axes, grain);
  if (!n) return null;
  // A question without days reads the all-time rollups first: the day summed out, they are the
  // smaller (at 10M measurements, countries x categories of the blocked read the per-day domain
  // rollup in 620-900 ms, bench/explorer-p95.ts).
  const order = n.day ? ROLLUPS : [...ROLLUPS.filter((r) => !r.day), ...ROLLUPS.filter((r) => r.day)];
  return order.find((r) => (!n.day || r.day) && [...n.cols].every((c) => dimsOf(r).includes(c))) ?? null;
}

/** A nullable rollup column as the measurements' column reads (NONE -> NULL), for axes. */
export function rollupColumn(col: string): string {
  return NULLABLE.has(col as Dim) ? `nullif(${col}, char(1))` : col;
}
