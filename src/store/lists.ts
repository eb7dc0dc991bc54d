// Lists as data in the SQLite store's file (docs/LISTS.md "Lists as data"): per date and layer,
// the rules known to be blocked (tables of migration 6 in sqlite.ts). Its own connection, like the
// change store: WAL lets it share the file with the measurement store's writer. The comparisons
// (diff, durations, Jaccard, overblocking) are src/model/lists.ts over the snapshots read here; a
// rule's history over many dates is counted here, in SQL, with the model's semantics.
import Database from 'better-sqlite3';
import { daysBetween, sortHistory, type ListSize, type ListSnapshot, type RuleHistory, type SnapshotRule } from '../model/index.js';
import { migrateSqlite } from './sqlite.js';
import { configureConnection } from './sqlite-writer.js';

export class ListStore {
  private readonly db: Database.Database;

  /** `file`: the SQLite store's file (created and migrated if needed). */
  constructor(readonly file: string) {
    this.db = new Database(file);
    configureConnection(this.db, 'NORMAL');
    migrateSqlite(this.db);
  }

  /**
   * Stores snapshots (one transaction for all: a failure stores none). A (date, layer) already
   * stored is replaced whole by the new one; other layers of that date are kept.
   */
  put(snaps: ListSnapshot[], now = Math.floor(Date.now() / 1000)): void {
    const clear = this.db.prepare('DELETE FROM list_rules WHERE date = ? AND layer = ?');
    const mark = this.db.prepare('INSERT OR REPLACE INTO list_snapshots (date, layer, stored_at) VALUES (?, ?, ?)');
    const insert = this.db.prepare(
      'INSERT OR REPLACE INTO list_rules (date, layer, protocol, rule, names, overblocks) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.db
      .transaction(() => {
        for (const s of snaps)
          for (const [layer, rules] of Object.entries(s.layers)) {
            clear.run(s.date, layer);
            mark.run(s.date, layer, now);
            for (const r of rules) insert.run(s.date, layer, r.protocol, r.rule, JSON.stringify(r.names), r.overblocks);
          }
      })
      .immediate();
  }

  /** Stored dates, oldest first. */
  dates(): string[] {
    return (this.db.prepare('SELECT DISTINCT date FROM list_snapshots ORDER BY date').all() as Array<{ date: string }>).map((r) => r.date);
  }

  /** The snapshot of one date, or null when none is stored. */
  snapshot(date: string): ListSnapshot | null {
    const layers = this.db.prepare('SELECT layer FROM list_snapshots WHERE date = ? ORDER BY layer').all(date) as Array<{ layer: string }>;
    if (!layers.length) return null;
    const out: ListSnapshot = { date, layers: Object.fromEntries(layers.map((l) => [l.layer, [] as SnapshotRule[]])) };
    const rows = this.db
      .prepare('SELECT layer, protocol, rule, names, overblocks FROM list_rules WHERE date = ? ORDER BY layer, protocol, rule')
      .all(date) as Array<{ layer: string; protocol: string; rule: string; names: string; overblocks: number }>;
    for (const r of rows)
      out.layers[r.layer]!.push({ rule: r.rule, protocol: r.protocol, names: JSON.parse(r.names) as string[], overblocks: r.overblocks });
    return out;
  }

  /**
   * Each rule's history over the snapshots up to `until` (inclusive; all by default): what
   * model/lists.ts ruleHistory() computes from the series, counted by SQLite without loading the
   * snapshots (a year of daily snapshots of a large list does not fit in memory as objects).
   */
  history(until?: string): RuleHistory[] {
    const rows = this.db
      .prepare(
        `SELECT layer, protocol, rule, min(date) AS first_seen, max(date) AS last_seen, count(*) AS seen,
           max(date) = (SELECT max(date) FROM list_snapshots WHERE @until IS NULL OR date <= @until) AS present
         FROM list_rules WHERE @until IS NULL OR date <= @until
         GROUP BY layer, protocol, rule`,
      )
      .all({ until: until ?? null }) as Array<Omit<RuleHistory, 'days' | 'present'> & { present: number }>;
    return sortHistory(
      rows.map((r) => ({
        layer: r.layer,
        protocol: r.protocol,
        rule: r.rule,
        first_seen: r.first_seen,
        last_seen: r.last_seen,
        days: daysBetween(r.first_seen, r.last_seen),
        present: r.present === 1,
        seen: r.seen,
      })),
    );
  }

  /**
   * List size per date and layer, counted by SQLite (rules, and distinct names over the rules'
   * name arrays), without loading the rules.
   */
  sizes(): ListSize[] {
    return this.db
      .prepare(
        `SELECT s.date AS date, s.layer AS layer,
           (SELECT count(*) FROM list_rules r WHERE r.date = s.date AND r.layer = s.layer) AS rules,
           (SELECT count(DISTINCT j.value) FROM list_rules r, json_each(r.names) j WHERE r.date = s.date AND r.layer = s.layer) AS names
         FROM list_snapshots s ORDER BY s.date, s.layer`,
      )
      .all() as ListSize[];
  }

  close(): void {
    this.db.close();
  }
}
