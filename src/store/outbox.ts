// A persistent outbox for alert deliveries (webhooks): what must be sent, to whom, how often it was
// tried, when next, and what was given up on (the dead-letter list). In the SQLite store's file,
// on its own connection. Enqueueing follows a per-hook cursor over the source's ids inside one
// transaction, so a restart neither loses an item (the cursor moves only with the rows) nor
// enqueues one twice (UNIQUE (hook, item_id)); an item is marked delivered in the same process
// right after the receiver's 2xx.
import Database from 'better-sqlite3';
import { configureConnection } from './sqlite-writer.js';

export interface OutboxItem {
  id: number;
  hook: string;
  item_id: number;
  body: string;
  attempts: number;
  next_at: number;
  state: 'pending' | 'delivered' | 'dead';
  last_error: string | null;
  delivered_at: number | null;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS outbox_cursors (hook TEXT PRIMARY KEY, after_id INTEGER NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hook TEXT NOT NULL,
    item_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT,
    delivered_at INTEGER,
    UNIQUE (hook, item_id)
  );
  CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
`;

export class Outbox {
  private readonly db: Database.Database;
  constructor(file: string) {
    this.db = new Database(file);
    configureConnection(this.db, 'NORMAL');
    this.db.exec(SCHEMA);
  }

  /**
   * For each hook, the items after its cursor (from `source`, ascending ids) join the outbox and
   * the cursor moves past them, atomically. A new hook starts at `startAfter` (the items that
   * exist when it is first configured are not sent to it).
   */
  enqueue(hooks: string[], startAfter: number, source: (afterId: number) => Array<{ id: number; body: string }>, nowMs: number): number {
    let added = 0;
    this.db
      .transaction(() => {
        for (const hook of hooks) {
          const cur = this.db.prepare('SELECT after_id FROM outbox_cursors WHERE hook = ?').get(hook) as { after_id: number } | undefined;
          let after = cur ? cur.after_id : startAfter;
          for (;;) {
            const items = source(after);
            if (!items.length) break;
            for (const it of items)
              added += this.db
                .prepare('INSERT OR IGNORE INTO outbox (hook, item_id, body, next_at) VALUES (?, ?, ?, ?)')
                .run(hook, it.id, it.body, nowMs).changes;
            after = items[items.length - 1]!.id;
          }
          this.db.prepare('INSERT OR REPLACE INTO outbox_cursors (hook, after_id) VALUES (?, ?)').run(hook, after);
        }
      })
      .immediate();
    return added;
  }

  /**
   * Pending items due at `nowMs`, per hook in item order, stopping at a hook's first item that is
   * not due yet (a hook's items are delivered in order: a later one never overtakes a retry).
   */
  due(nowMs: number, limit = 100): OutboxItem[] {
    const rows = this.db
      .prepare("SELECT * FROM outbox WHERE state = 'pending' ORDER BY hook, item_id LIMIT ?")
      .all(limit * 4) as OutboxItem[];
    const waiting = new Set<string>();
    const out: OutboxItem[] = [];
    for (const r of rows) {
      if (waiting.has(r.hook)) continue;
      if (r.next_at > nowMs) {
        waiting.add(r.hook);
        continue;
      }
      out.push(r);
      if (out.length >= limit) break;
    }
    return out;
  }

  delivered(id: number, nowMs: number): void {
    this.db
      .prepare("UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?, last_error = NULL WHERE id = ?")
      .run(nowMs, id);
  }

  /** A failed attempt: retried at `nextAt`, or dead (the dead-letter list) when `dead`. */
  failed(id: number, error: string, nextAt: number, dead: boolean): void {
    this.db
      .prepare('UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ?, state = ? WHERE id = ?')
      .run(error.slice(0, 500), nextAt, dead ? 'dead' : 'pending', id);
  }

  list(state?: OutboxItem['state']): OutboxItem[] {
    return (
      state
        ? this.db.prepare('SELECT * FROM outbox WHERE state = ? ORDER BY id').all(state)
        : this.db.prepare('SELECT * FROM outbox ORDER BY id').all()
    ) as OutboxItem[];
  }

  /** Dead letters go back to pending (after the receiver is fixed). */
  retryDead(nowMs: number): number {
    return this.db.prepare("UPDATE outbox SET state = 'pending', attempts = 0, next_at = ? WHERE state = 'dead'").run(nowMs).changes;
  }

  close(): void {
    this.db.close();
  }
}
