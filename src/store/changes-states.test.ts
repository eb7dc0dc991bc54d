// "Blocked since" lists (ChangeStore.states) read the since/blocked columns from an index; a change
// store written before those columns existed gets them filled from the states' JSON, with the same
// answer as a rebuild.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { realisticBatches } from '../testing/realistic-seed.js';
import { ChangeStore } from './changes.js';
import { bulkLoadSqlite } from './sqlite-bulk.js';

describe('ChangeStore.states', () => {
  it('answers from the since/blocked columns, also on a store written before them', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-states-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'store.sqlite');
    bulkLoadSqlite(file, realisticBatches(20_000));
    const changes = new ChangeStore(file);
    const r = changes.rebuild();
    assert.ok(r.changes > 0, 'the realistic seed has blocks that start and end during the year');
    const all = changes.states({ limit: 10_000 });
    const blocked = changes.states({ blockedOnly: true, limit: 10_000 });
    const ir = changes.states({ probe_cc: 'IR', blockedOnly: true, limit: 10_000 });
    assert.ok(blocked.length > 0 && blocked.length < all.length);
    assert.ok(blocked.every((s) => s.blocking !== false));
    assert.ok(ir.length > 0 && ir.every((s) => s.probe_cc === 'IR' && s.blocking !== false));
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.since >= all[i]!.since, 'newest first');
    assert.deepEqual(changes.states({ blockedOnly: true, limit: 5 }), blocked.slice(0, 5));
    // A store from before the columns: drop them, reopen, same answers.
    changes.close();
    const old = new ChangeStore(file);
    const db = (old as unknown as { db: import('better-sqlite3').Database }).db;
    db.exec(`DROP INDEX change_states_since; DROP INDEX change_states_blocked_since;
      ALTER TABLE change_states DROP COLUMN since; ALTER TABLE change_states DROP COLUMN blocked;`);
    old.close();
    const again = new ChangeStore(file);
    t.after(() => again.close());
    assert.deepEqual(again.states({ limit: 10_000 }), all);
    assert.deepEqual(again.states({ blockedOnly: true, limit: 10_000 }), blocked);
  });
});
