// Change detection's storage (src/model/changes.ts decides): the per-key state and the changes,
// in tables of the SQLite store's own file (its own connection; WAL lets it share the file with
// the store's writer thread). Incremental: observe() is one step per stored measurement. A
// measurement older than the key's last one (a spool uploaded late) rebuilds that key from the
// measurements table, so arrival order never changes the result; rebuild() recomputes everything.
import Database from 'better-sqlite3';
import {
  DEFAULT_CONFIRMATIONS,
  emptyKeyState,
  ooniBlocking,
  stepChange,
  type ChangeObservation,
  type DetectedChange,
  type KeyState,
  type TrackedState,
  type ChangeRecord,
  type StateRecord,
} from '../model/changes.js';
import type { Measurement, Verdict } from '../model/index.js';

export type { ChangeRecord, StateRecord };
import { flatten, parseAsn, parseTimeBound } from './row.js';
import { configureConnection } from './sqlite-writer.js';
import { StoreInputError, type MeasurementStore, type PutResult } from './types.js';

/** A key of change detection: the target from one network (and the volunteer's declared region). */
export interface ChangeKey {
  target: string;
  probe_cc: string;
  probe_asn: number;
  /** '' when the measurement declares none. */
  region: string;
}

export interface ChangeFilter {
  /** Unix seconds: changes with at >= since. */
  since?: number;
  /** Unix seconds: changes detected at or after this (feeds and webhooks poll by it). */
  detectedSince?: number;
  afterId?: number;
  probe_cc?: string;
  probe_asn?: number;
  region?: string;
  domain?: string;
  target?: string;
  layer?: string;
  limit?: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS change_states (
    target TEXT NOT NULL,
    probe_cc TEXT NOT NULL,
    probe_asn INTEGER NOT NULL,
    region TEXT NOT NULL,
    domain TEXT,
    state TEXT NOT NULL,
    PRIMARY KEY (target, probe_cc, probe_asn, region)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    domain TEXT,
    probe_cc TEXT NOT NULL,
    probe_asn INTEGER NOT NULL,
    region TEXT NOT NULL,
    layer TEXT,
    at INTEGER NOT NULL,
    from_blocking TEXT NOT NULL,
    from_mechanism TEXT NOT NULL,
    to_blocking TEXT NOT NULL,
    to_mechanism TEXT NOT NULL,
    evidence TEXT NOT NULL,
    detected_at INTEGER NOT NULL,
    -- 'ingest' (detected as measurements arrived: alerted) or 'rebuild' (recomputed: never alerted)
    origin TEXT NOT NULL DEFAULT 'ingest'
  );
  CREATE INDEX IF NOT EXISTS changes_at ON changes (at);
  -- A key's measurements in time order, for recomputing it when a late measurement arrives (the
  -- store's own indexes lead with the domain or the network: a key's rows would be a wide scan).
  CREATE INDEX IF NOT EXISTS measurements_change_key ON measurements (input, probe_cc, probe_asn, ts);
  CREATE INDEX IF NOT EXISTS changes_key ON changes (target, probe_cc, probe_asn, region, at);
`;

/**
 * Following a store elsewhere (ClickHouse) by its insertion versions: where the last follow got to
 * (one row), and the log's rows by uid (a re-analysed or deleted measurement is found by its uid).
 */
const FOLLOW = `
  CREATE TABLE IF NOT EXISTS change_follow (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, uid TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS change_observations_uid ON change_observations (uid);
`;

/** The observation log of a change store beside a store elsewhere (ChangeStoreOptions.observationLog). */
const OBSERVATION_LOG = `
  CREATE TABLE IF NOT EXISTS change_observations (
    input TEXT NOT NULL, probe_cc TEXT NOT NULL, probe_asn INTEGER NOT NULL, region TEXT NOT NULL, ts INTEGER NOT NULL, uid TEXT NOT NULL,
    domain TEXT, status TEXT NOT NULL, blocking TEXT, mechanism TEXT, layer TEXT,
    PRIMARY KEY (input, probe_cc, probe_asn, region, ts, uid)
  ) WITHOUT ROWID;
`;

/**
 * "Blocked since" lists read two columns copied out of the state's JSON, newest first from an
 * index, instead of parsing every key's JSON (issue 14: /api/v1/states under 300 ms at 10 million
 * measurements). A store from before them gets them here, filled from the JSON.
 */
function addStateColumns(db: Database.Database): void {
  const cols = (db.prepare('PRAGMA table_info(change_states)').all() as Array<{ name: string }>).map((c) => c.name);
  if (!cols.includes('since')) {
    db.transaction(() => {
      db.exec(`ALTER TABLE change_states ADD COLUMN since INTEGER;
        ALTER TABLE change_states ADD COLUMN blocked INTEGER;
        UPDATE change_states SET since = CASE WHEN json_extract(state, '$.state') IS NULL THEN NULL ELSE json_extract(state, '$.since') END,
          blocked = CASE json_extract(state, '$.state.blocking') WHEN 'false' THEN 0 ELSE 1 END;`);
    })();
  }
  db.exec(`CREATE INDEX IF NOT EXISTS change_states_since ON change_states (since);
    CREATE INDEX IF NOT EXISTS change_states_blocked_since ON change_states (blocked, since);`);
}

const iso = (s: number) => new Date(s * 1000).toISOString().replace('.000Z', 'Z');

interface Row extends ChangeObservation {
  input: string | null;
  domain: string | null;
  probe_cc: string;
  probe_asn: number;
  region: string | null;
}

export interface ChangeStoreOptions {
  confirmations?: number;
  /**
   * Keep the observations change detection reads (key, time, verdict columns) in this file's own
   * table instead of reading the measurements table: for a store whose measurements are elsewhere
   * (ClickHouse). Late measurements then recompute their key from the log, and rebuild() reads it;
   * syncFrom(store) fills it from the store's measurements.
   */
  observationLog?: boolean;
  /** Called with every change confirmed by observe() (not by rebuilds): alerts hang here. */
  onChange?: (c: ChangeRecord) => void;
  /** The clock for detected_at (unix seconds). */
  now?: () => number;
}

export class ChangeStore {
  private readonly db: Database.Database;
  readonly confirmations: number;
  private readonly now: () => number;
  private readonly listeners: Array<(c: ChangeRecord) => void> = [];
  private readonly getState: Database.Statement;
  private readonly putState: Database.Statement;
  private readonly insertChange: Database.Statement;
  private readonly keyRows: Database.Statement;
  private readonly observationLog: boolean;
  private readonly logObservation: Database.Statement | null;

  /** `file`: the SQLite store's file (its measurements table is read for rebuilds). */
  constructor(
    private readonly file: string,
    o: ChangeStoreOptions = {},
  ) {
    this.db = new Database(file);
    configureConnection(this.db, 'NORMAL');
    this.observationLog = o.observationLog === true;
    // The measurements index exists only where the measurements are (a SQLite store's file).
    this.db.exec(
      this.observationLog
        ? SCHEMA.replace(/CREATE INDEX IF NOT EXISTS measurements_change_key[^;]*;/, '') + OBSERVATION_LOG + FOLLOW
        : SCHEMA,
    );
    addStateColumns(this.db);
    this.logObservation = this.observationLog
      ? this.db.prepare(
          `INSERT OR IGNORE INTO change_observations (input, probe_cc, probe_asn, region, ts, uid, domain, status, blocking, mechanism, layer)
           VALUES (@input, @probe_cc, @probe_asn, @region, @ts, @uid, @domain, @status, @blocking, @mechanism, @layer)`,
        )
      : null;
    this.confirmations = o.confirmations ?? DEFAULT_CONFIRMATIONS;
    this.now = o.now ?? (() => Math.floor(Date.now() / 1000));
    if (o.onChange) this.listeners.push(o.onChange);
    this.getState = this.db.prepare('SELECT state FROM change_states WHERE target = ? AND probe_cc = ? AND probe_asn = ? AND region = ?');
    this.putState = this.db.prepare(
      'INSERT OR REPLACE INTO change_states (target, probe_cc, probe_asn, region, domain, state, since, blocked) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.insertChange = this.db.prepare(
      `INSERT INTO changes (target, domain, probe_cc, probe_asn, region, layer, at, from_blocking, from_mechanism, to_blocking, to_mechanism, evidence, detected_at, origin)
       VALUES (@target, @domain, @probe_cc, @probe_asn, @region, @layer, @at, @from_blocking, @from_mechanism, @to_blocking, @to_mechanism, @evidence, @detected_at, @origin)`,
    );
    this.keyRows = this.db.prepare(
      this.observationLog
        ? `SELECT uid, ts, status, blocking, mechanism, layer FROM change_observations
           WHERE input = ? AND probe_cc = ? AND probe_asn = ? AND region = ? ORDER BY ts, uid`
        : `SELECT uid, ts, status, blocking, mechanism, layer FROM measurements
           WHERE input = ? AND probe_cc = ? AND probe_asn = ? AND coalesce(region, '') = ? ORDER BY ts, uid`,
    );
  }

  /** Alerts subscribe here: each change confirmed on ingest, once. */
  onChange(fn: (c: ChangeRecord) => void): void {
    this.listeners.push(fn);
  }

  private save(key: ChangeKey, domain: string | null, s: KeyState): void {
    this.putState.run(
      key.target,
      key.probe_cc,
      key.probe_asn,
      key.region,
      domain,
      JSON.stringify({ ...s, lastTs: Number.isFinite(s.lastTs) ? s.lastTs : null }),
      s.state ? s.since : null,
      s.state && s.state.blocking === 'false' ? 0 : 1,
    );
  }

  private load(key: ChangeKey): KeyState {
    const r = this.getState.get(key.target, key.probe_cc, key.probe_asn, key.region) as { state: string } | undefined;
    if (!r) return emptyKeyState();
    const s = JSON.parse(r.state) as KeyState & { lastTs: number | null };
    return { ...s, lastTs: s.lastTs ?? -Infinity };
  }

  private record(
    key: ChangeKey,
    domain: string | null,
    c: DetectedChange,
    detectedAt: number,
    origin: 'ingest' | 'rebuild' = 'ingest',
  ): ChangeRecord {
    const row = { ...key, domain, layer: c.layer, ...changeColumns(c), evidence: JSON.stringify(c.evidence), detected_at: detectedAt };
    const info = this.insertChange.run({ origin, ...row });
    return toRecord({ id: Number(info.lastInsertRowid), ...row });
  }

  /** Stored measurements (flat rows), in one transaction. Returns the changes they confirmed. */
  observeRows(rows: Row[]): ChangeRecord[] {
    const out: ChangeRecord[] = [];
    // IMMEDIATE: this transaction reads, then writes; begun deferred, a commit by another writer of
    // the file in between (the store's writer folding its rollups) fails it at once with "database
    // is locked" (SQLite's busy snapshot), where an immediate one waits its turn (busy_timeout).
    this.db
      .transaction(() => {
        // Keys that got a late measurement are recomputed once, after the batch (an offline spool
        // uploads many measurements of one key at once).
        const late: LateKeys = new Map();
        for (const r of rows) this.stepRow(r, late, out);
        for (const { key, domain } of late.values()) out.push(...this.rebuildKey(key, domain, true));
      })
      .immediate();
    for (const c of out) for (const l of this.listeners) l(c);
    return out;
  }

  /**
   * One measurement, one step of its key (or its key marked for a rebuild when it is older than the
   * key's last). With an observation log, a uid already logged is not stepped again: the collector's
   * own ingest and the follow of ClickHouse may both bring it.
   */
  private stepRow(r: ObservedRow, late: LateKeys, out: ChangeRecord[]): void {
    if (!r.input) return;
    const key: ChangeKey = { target: r.input, probe_cc: r.probe_cc, probe_asn: r.probe_asn, region: r.region ?? '' };
    if (this.logObservation && this.logObservation.run({ ...pickObservation(r), region: key.region }).changes === 0) return;
    const id = JSON.stringify(key);
    if (late.has(id)) return;
    const s = this.load(key);
    if (r.ts < s.lastTs) {
      late.set(id, { key, domain: r.domain });
      return;
    }
    const { next, change } = stepChange(s, r, this.confirmations);
    this.save(key, r.domain, next);
    if (change) out.push(this.record(key, r.domain, change, this.now()));
  }

  /** A measurement as stored (same flattening as the store's row). */
  observe(m: Measurement, verdict: Verdict, uid: string): ChangeRecord[] {
    return this.observeRows([flatten(m, verdict, uid)]);
  }

  /** Many measurements as stored (a batch of the collector), in one transaction. */
  observeMany(items: Array<{ m: Measurement; verdict: Verdict; uid: string }>): ChangeRecord[] {
    return this.observeRows(items.map((x) => flatten(x.m, x.verdict, x.uid)));
  }

  /**
   * Recomputes one key from its measurements (a late, older measurement arrived). Changes already
   * recorded and still true keep their id; only new ones are returned (and alerted when `announce`).
   */
  private rebuildKey(key: ChangeKey, domain: string | null, announce: boolean): ChangeRecord[] {
    let s = emptyKeyState();
    const found: DetectedChange[] = [];
    for (const row of this.keyRows.iterate(key.target, key.probe_cc, key.probe_asn, key.region) as Iterable<ChangeObservation>) {
      const step = stepChange(s, row, this.confirmations);
      s = step.next;
      if (step.change) found.push(step.change);
    }
    this.save(key, domain, s);
    const old = this.db
      .prepare('SELECT * FROM changes WHERE target = ? AND probe_cc = ? AND probe_asn = ? AND region = ?')
      .all(key.target, key.probe_cc, key.probe_asn, key.region) as DbChange[];
    const sig = (c: { at: number; from_blocking: string; from_mechanism: string; to_blocking: string; to_mechanism: string }) =>
      `${c.at} ${c.from_blocking} ${c.from_mechanism} ${c.to_blocking} ${c.to_mechanism}`;
    const sigOf = (c: DetectedChange) => sig(changeColumns(c));
    const keep = new Set(found.map(sigOf));
    const had = new Set<string>();
    for (const o of old) {
      if (keep.has(sig(o))) had.add(sig(o));
      else this.db.prepare('DELETE FROM changes WHERE id = ?').run(o.id);
    }
    const out: ChangeRecord[] = [];
    for (const c of found) {
      if (had.has(sigOf(c))) continue;
      const rec = this.record(key, domain, c, this.now());
      if (announce) out.push(rec);
    }
    return out;
  }

  /**
   * Recomputes every state and change from the measurements table (after a re-analysis, or to
   * check the incremental result). Changes keep no ids across a rebuild; none are alerted.
   */
  rebuild(): { measurements: number; keys: number; changes: number } {
    const stats = { measurements: 0, keys: 0, changes: 0 };
    const now = this.now();
    let closeReader = () => {};
    try {
      this.db
        .transaction(() => {
          this.db.exec('DELETE FROM change_states; DELETE FROM changes;');
          let cur: { key: ChangeKey; domain: string | null; s: KeyState } | null = null;
          const flush = () => {
            if (cur) this.save(cur.key, cur.domain, cur.s);
          };
          // better-sqlite3 cannot write on a connection while it iterates a query: the scan reads
          // through a second, read-only connection (WAL: it sees the measurements as committed).
          const reader = new Database(this.file, { readonly: true });
          closeReader = () => reader.close();
          const rows = reader.prepare(
            this.observationLog
              ? `SELECT uid, input, domain, probe_cc, probe_asn, region, ts, status, blocking, mechanism, layer FROM change_observations
               ORDER BY input, probe_cc, probe_asn, region, ts, uid`
              : `SELECT uid, input, domain, probe_cc, probe_asn, coalesce(region, '') AS region, ts, status, blocking, mechanism, layer FROM measurements
         WHERE input IS NOT NULL ORDER BY input, probe_cc, probe_asn, coalesce(region, ''), ts, uid`,
          );
          for (const r of rows.iterate() as Iterable<Row & { region: string }>) {
            stats.measurements++;
            if (
              !cur ||
              cur.key.target !== r.input ||
              cur.key.probe_cc !== r.probe_cc ||
              cur.key.probe_asn !== r.probe_asn ||
              cur.key.region !== r.region
            ) {
              flush();
              cur = {
                key: { target: r.input!, probe_cc: r.probe_cc, probe_asn: r.probe_asn, region: r.region },
                domain: r.domain,
                s: emptyKeyState(),
              };
              stats.keys++;
            }
            const { next, change } = stepChange(cur.s, r, this.confirmations);
            cur.s = next;
            if (change) {
              this.record(cur.key, cur.domain, change, now, 'rebuild');
              stats.changes++;
            }
          }
          flush();
        })
        .immediate();
    } finally {
      closeReader();
    }
    return stats;
  }

  /**
   * Fills the observation log from a store's measurements (every page of `pageRows`, keyset by uid)
   * and rebuilds every key from it: a change store beside ClickHouse after a first start, or after
   * measurements arrived through another collector. Only with `observationLog`.
   */
  async syncFrom(
    pageRows: (afterUid: string, limit: number) => Promise<{ rows: ObservationRow[]; last: string | null }>,
    pageSize = 50_000,
  ): Promise<{ measurements: number; keys: number; changes: number }> {
    if (!this.logObservation) throw new Error('syncFrom needs a change store with observationLog');
    const log = this.logObservation;
    const insert = this.db.transaction((rows: ObservationRow[]) => {
      for (const r of rows) log.run(pickObservation(r));
    });
    for (let after: string | null = ''; after !== null;) {
      const page: { rows: ObservationRow[]; last: string | null } = await pageRows(after, pageSize);
      insert.immediate(page.rows);
      after = page.last;
    }
    return this.rebuild();
  }

  /** Where the follow of the store elsewhere got to (null before the first follow). */
  followCursor(): FollowCursor | null {
    if (!this.observationLog) return null;
    return (this.db.prepare('SELECT version, uid FROM change_follow WHERE id = 1').get() as FollowCursor | undefined) ?? null;
  }

  /** Sets where the next follow starts (after a full sync: the store's newest version before it began). */
  setFollowCursor(c: FollowCursor): void {
    this.db.prepare('INSERT OR REPLACE INTO change_follow (id, version, uid) VALUES (1, ?, ?)').run(c.version, c.uid);
  }

  /**
   * Follows the store elsewhere: every row version written since the cursor (by this collector or
   * any other, a new measurement, a re-analysis or a delete), in version order, page by page. New
   * uids step their keys (alerted); a changed or deleted observation rebuilds its key (new changes
   * alerted). `skewUs` re-reads that much before the cursor, for the clocks of other collectors
   * (their versions are their own microseconds): rows already applied are no-ops.
   */
  async follow(pageRows: (after: FollowCursor, limit: number) => Promise<FollowedRow[]>, o: { skewUs?: number; pageSize?: number } = {}) {
    if (!this.logObservation) throw new Error('follow needs a change store with observationLog');
    const limit = o.pageSize ?? 2000;
    const start = this.followCursor() ?? { version: 0, uid: '' };
    let after: FollowCursor = { version: Math.max(0, start.version - (o.skewUs ?? 60_000_000)), uid: '' };
    const stats = { rows: 0, changes: 0 };
    for (let page = 0; page < 1_000_000; page++) {
      const rows = await pageRows(after, limit);
      stats.changes += this.applyFollowed(rows, start).length;
      stats.rows += rows.length;
      if (rows.length < limit) break;
      after = rows[rows.length - 1]!;
    }
    return stats;
  }

  /** One page of the follow, in one transaction with the cursor's advance. */
  private applyFollowed(rows: FollowedRow[], start: FollowCursor): ChangeRecord[] {
    const out: ChangeRecord[] = [];
    const byUid = this.db.prepare('SELECT * FROM change_observations WHERE uid = ?');
    const drop = this.db.prepare('DELETE FROM change_observations WHERE uid = ?');
    this.db
      .transaction(() => {
        const late: LateKeys = new Map();
        const rebuild = (o: ObservationRow) => {
          const key: ChangeKey = { target: o.input, probe_cc: o.probe_cc, probe_asn: o.probe_asn, region: o.region };
          late.set(JSON.stringify(key), { key, domain: o.domain });
        };
        let top = start;
        for (const r of rows) {
          if (r.version > top.version || (r.version === top.version && r.uid > top.uid)) top = { version: r.version, uid: r.uid };
          const old = byUid.get(r.uid) as ObservationRow | undefined;
          const now = r.input === null || r.deleted ? null : pickObservation(r);
          if (!old) {
            // New: one step of its key, as on ingest.
            if (now) this.stepRow(now, late, out);
            continue;
          }
          if (now && sameObservation(old, now)) continue; // already applied (own ingest, or re-read)
          // Re-analysed or deleted: the log is corrected and the key(s) recomputed.
          drop.run(r.uid);
          rebuild(old);
          if (now) {
            this.logObservation!.run(now);
            rebuild(now);
          }
        }
        for (const { key, domain } of late.values()) out.push(...this.rebuildKey(key, domain, true));
        this.setFollowCursor(top);
      })
      .immediate();
    for (const c of out) for (const l of this.listeners) l(c);
    return out;
  }

  /** How many observations the log holds (0 without observationLog). */
  observationCount(): number {
    if (!this.observationLog) return 0;
    return (this.db.prepare('SELECT count(*) AS n FROM change_observations').get() as { n: number }).n;
  }

  list(f: ChangeFilter = {}): ChangeRecord[] {
    const { where, args } = changeWhere(f);
    const limit = Math.min(Math.max(1, f.limit ?? 1000), 10_000);
    const rows = this.db.prepare(`SELECT * FROM changes ${where} ORDER BY at, id LIMIT ${limit}`).all(...args) as DbChange[];
    return rows.map(toRecord);
  }

  /** Changes detected on ingest (not by a rebuild), in detection order after an id (webhooks). */
  listAfter(afterId: number, limit = 1000): ChangeRecord[] {
    return (
      this.db.prepare("SELECT * FROM changes WHERE id > ? AND origin = 'ingest' ORDER BY id LIMIT ?").all(afterId, limit) as DbChange[]
    ).map(toRecord);
  }

  /** The largest change id so far (0 when none). */
  maxId(): number {
    return (this.db.prepare('SELECT coalesce(max(id), 0) AS m FROM changes').get() as { m: number }).m;
  }

  /** Current confirmed states ("blocked since"), newest first. */
  states(f: Omit<ChangeFilter, 'since' | 'detectedSince' | 'afterId' | 'layer'> & { blockedOnly?: boolean } = {}): StateRecord[] {
    const { where, args } = changeWhere(f);
    const limit = Math.min(Math.max(1, f.limit ?? 1000), 10_000);
    const cond = [where || 'WHERE 1', 'since IS NOT NULL', ...(f.blockedOnly ? ['blocked = 1'] : [])].join(' AND ');
    const rows = this.db
      .prepare(`SELECT * FROM change_states ${cond} ORDER BY since DESC, target, probe_cc, probe_asn, region LIMIT ${limit}`)
      .all(...args) as Array<ChangeKey & { domain: string | null; state: string }>;
    return rows.map((r) => {
      const s = JSON.parse(r.state) as KeyState;
      return stateRecord(r, s.state!, s.since!, s.sinceUid!, s.lastUid);
    });
  }

  close(): void {
    this.db.close();
  }
}

function stateRecord(
  k: ChangeKey & { domain: string | null },
  s: TrackedState,
  since: number,
  sinceUid: string,
  last: string | null,
): StateRecord {
  return {
    target: k.target,
    domain: k.domain,
    probe_cc: k.probe_cc,
    probe_asn: `AS${k.probe_asn}`,
    region: k.region || null,
    blocking: ooniBlocking(s.blocking),
    mechanism: s.mechanism,
    layer: s.layer,
    since: iso(since),
    since_uid: sinceUid,
    last_measurement_uid: last,
  };
}

interface DbChange {
  id: number;
  target: string;
  domain: string | null;
  probe_cc: string;
  probe_asn: number;
  region: string;
  layer: string | null;
  at: number;
  from_blocking: string;
  from_mechanism: string;
  to_blocking: string;
  to_mechanism: string;
  evidence: string;
  detected_at: number;
}

function toRecord(r: DbChange): ChangeRecord {
  return {
    id: r.id,
    target: r.target,
    probe_cc: r.probe_cc,
    probe_asn: `AS${r.probe_asn}`,
    region: r.region || null,
    layer: r.layer,
    at: iso(r.at),
    from: { blocking: ooniBlocking(r.from_blocking), mechanism: r.from_mechanism },
    to: { blocking: ooniBlocking(r.to_blocking), mechanism: r.to_mechanism },
    evidence: JSON.parse(r.evidence) as string[],
    detected_at: iso(r.detected_at),
  };
}

function changeWhere(f: ChangeFilter): { where: string; args: unknown[] } {
  const w: string[] = [];
  const args: unknown[] = [];
  const conditions: Array<[unknown, string]> = [
    [f.since, 'at >= ?'],
    [f.detectedSince, 'detected_at >= ?'],
    [f.afterId, 'id > ?'],
    [f.probe_cc, 'probe_cc = ?'],
    [f.probe_asn, 'probe_asn = ?'],
    [f.region, 'region = ?'],
    [f.domain, 'domain = ?'],
    [f.target, 'target = ?'],
    [f.layer, 'layer = ?'],
  ];
  for (const [value, sql] of conditions) {
    if (value === undefined) continue;
    w.push(sql);
    args.push(value);
  }
  return { where: w.length ? `WHERE ${w.join(' AND ')}` : '', args };
}

/** What change detection reads of a measurement (the key, its time, the verdict's columns). */
export interface ObservationRow {
  uid: string;
  input: string;
  domain: string | null;
  probe_cc: string;
  probe_asn: number;
  /** '' when the measurement declares none. */
  region: string;
  ts: number;
  status: string;
  blocking: string | null;
  mechanism: string | null;
  layer: string | null;
}

/** Where a follow got to: the store's row version (microseconds) and uid, in that order. */
export interface FollowCursor {
  version: number;
  uid: string;
}

/** A row version of the store elsewhere, as a follow reads it (input null: no target, not observed). */
export type FollowedRow = Omit<ObservationRow, 'input'> & { input: string | null; deleted: number; version: number };

/** A detected change's time and states as the changes table's columns. */
const changeColumns = (c: DetectedChange) => ({
  at: c.at,
  from_blocking: c.from.blocking,
  from_mechanism: c.from.mechanism,
  to_blocking: c.to.blocking,
  to_mechanism: c.to.mechanism,
});

type ObservedRow = Omit<ObservationRow, 'input' | 'region'> & { input: string | null; region: string | null };
type LateKeys = Map<string, { key: ChangeKey; domain: string | null }>;

const OBSERVED_FIELDS = ['input', 'domain', 'probe_cc', 'probe_asn', 'region', 'ts', 'status', 'blocking', 'mechanism', 'layer'] as const;
const sameObservation = (a: ObservationRow, b: ObservationRow) => OBSERVED_FIELDS.every((k) => a[k] === b[k]);

function pickObservation(r: ObservedRow): ObservationRow {
  return {
    uid: r.uid,
    input: r.input!,
    domain: r.domain,
    probe_cc: r.probe_cc,
    probe_asn: r.probe_asn,
    region: r.region ?? '',
    ts: r.ts,
    status: r.status,
    blocking: r.blocking,
    mechanism: r.mechanism,
    layer: r.layer,
  };
}

/** The view filters of the changes API and feeds, from query strings (user input: checked). */
export function changeFilterFrom(q: Record<string, unknown>): ChangeFilter {
  const s = (k: string) => (typeof q[k] === 'string' && (q[k] as string) !== '' ? (q[k] as string) : undefined);
  const f: ChangeFilter = {};
  if (s('since')) f.since = parseTimeBound(s('since')!, 'since');
  if (s('probe_cc')) {
    if (!/^[A-Z]{2}$/.test(s('probe_cc')!)) throw new StoreInputError('probe_cc: two capital letters (ISO 3166-1 alpha-2)');
    f.probe_cc = s('probe_cc');
  }
  if (s('probe_asn')) f.probe_asn = parseAsn(s('probe_asn')!);
  if (s('region')) f.region = s('region')!.replace(/\s+/g, ' ').trim();
  if (s('domain')) f.domain = s('domain')!.toLowerCase();
  if (s('target')) f.target = s('target');
  if (s('layer')) {
    if (!['national', 'regional', 'isp', 'unknown'].includes(s('layer')!))
      throw new StoreInputError('layer: one of national, regional, isp, unknown');
    f.layer = s('layer');
  }
  if (s('limit')) {
    const n = Number(s('limit'));
    if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new StoreInputError('limit: a whole number from 1 to 10000');
    f.limit = n;
  }
  return f;
}

/**
 * The store with change detection on ingest: every measurement it newly stores (not a duplicate)
 * is one step of its key. Everything else goes to the store unchanged.
 */
export function trackChanges(store: MeasurementStore, changes: ChangeStore): MeasurementStore {
  const observe = (items: Array<{ m: Measurement; verdict: Verdict }>, rs: PutResult[]) => {
    const fresh = rs.flatMap((r, i) => (r.inserted ? [{ ...items[i]!, uid: r.measurement_uid }] : []));
    if (!fresh.length) return;
    try {
      changes.observeMany(fresh);
    } catch (e) {
      // The measurements are stored; their keys' states are recomputed by the next rebuild.
      process.emitWarning(`change detection failed for ${fresh.length} measurement(s) from ${fresh[0]!.uid}: ${(e as Error).message}`);
    }
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'put')
        return async (m: Measurement, verdict: Verdict) => {
          const r = await target.put(m, verdict);
          observe([{ m, verdict }], [r]);
          return r;
        };
      if (prop === 'putMany')
        return async (items: Array<{ m: Measurement; verdict: Verdict }>) => {
          const rs = await target.putMany(items);
          observe(items, rs);
          return rs;
        };
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
