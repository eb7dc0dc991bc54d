// The list store's history, counted by SQLite, against model/lists.ts ruleHistory() over the same
// snapshots read back whole: the same rules, dates, durations, presence and order, at every cut-off.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ruleHistory, type ListSnapshot, type SnapshotRule } from '../model/index.js';
import { ListStore } from './lists.js';

/** A deterministic pseudo-random series: rules come and go per layer, some layers are empty on a date. */
function series(seed: number, dates: number, rules: number): ListSnapshot[] {
  let x = seed;
  const rnd = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const out: ListSnapshot[] = [];
  for (let d = 0; d < dates; d++) {
    const date = new Date(Date.UTC(2024, 0, 1 + d * 3 + Math.floor(rnd() * 3))).toISOString().slice(0, 10);
    const layers: Record<string, SnapshotRule[]> = {};
    for (const layer of ['national', 'regional', 'isp'])
      layers[layer] = Array.from({ length: rules }, (_, i) => i)
        .filter(() => rnd() < (layer === 'isp' && d % 4 === 2 ? 0 : 0.6))
        .map((i) => ({ rule: `(^|\\.)n${i}\\.com$`, protocol: i % 3 ? 'sni' : 'dns', names: [`n${i}.com`], overblocks: i % 5 }));
    out.push({ date, layers });
  }
  return out;
}

describe('list store history', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-list-store-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('equals ruleHistory over the stored series, whole and cut at each date', () => {
    const snaps = series(7, 12, 40);
    const lists = new ListStore(join(dir, 'w.db'));
    try {
      lists.put(snaps);
      const stored = lists.dates().map((d) => lists.snapshot(d)!);
      assert.equal(stored.length, 12);
      const whole = lists.history();
      assert.ok(whole.length > 50 && whole.some((h) => !h.present) && whole.some((h) => h.days > 0), 'a varied history');
      assert.deepEqual(whole, ruleHistory(stored));
      for (const cut of lists.dates()) assert.deepEqual(lists.history(cut), ruleHistory(stored.filter((s) => s.date <= cut)), cut);
      assert.deepEqual(lists.history('2023-01-01'), []);
    } finally {
      lists.close();
    }
  });
});
