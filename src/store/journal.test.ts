// JournaledStore: acknowledged once in the local journal, shipped to the store in batches, nothing
// lost across an outage, a poison row or a restart. Over the real ClickHouse server when
// WALLSCOPE_CLICKHOUSE_URL is set; the outage and poison cases use a real SQLite store as the inner
// store with failures injected into its putMany (a ClickHouse that refuses on cue cannot be had).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Measurement, Verdict } from '../model/index.js';
import { ClickHouseStore } from './clickhouse.js';
import { JournaledStore } from './journal.js';
import { sampleMeasurement, sampleVerdict } from '../testing/seed.js';
import { SqliteStore } from './sqlite.js';
import type { PutResult } from './types.js';

const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;

function tmp(t: { after: (fn: () => unknown) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-journal-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A real SQLite store whose putMany fails on cue: the whole store (outage) or batches holding a poison input. */
class FaultySqlite extends SqliteStore {
  down = false;
  attempts = 0;
  override async putMany(items: Array<{ m: Measurement; verdict: Verdict }>): Promise<PutResult[]> {
    this.attempts++;
    if (this.down) throw new Error('connect ECONNREFUSED (injected outage)');
    if (items.some((x) => String(x.m.input).includes('poison'))) throw new Error('Cannot parse input (injected refusal)');
    return super.putMany(items);
  }
}

const ms = (n: number, tag: string) => Array.from({ length: n }, (_, i) => sampleMeasurement({ input: `https://${tag}-${i}.example/` }));

describe('JournaledStore over a real SQLite store with injected failures', () => {
  it('acknowledges during an outage, keeps everything in the journal, and ships it all once the store is back', async (t) => {
    const dir = tmp(t);
    const inner = new FaultySqlite(join(dir, 'inner.sqlite'));
    inner.down = true;
    const j = new JournaledStore(inner, { file: join(dir, 'journal.sqlite'), retryBaseMs: 5, retryMaxMs: 20 });
    t.after(() => j.close(1000));
    const acks = await Promise.all(ms(50, 'out').map((m) => j.put(m, sampleVerdict())));
    assert.ok(acks.every((a) => a.inserted));
    // Readable by uid before it reached the store.
    const got = await j.get(acks[7].measurement_uid);
    assert.equal(got?.measurement.input, 'https://out-7.example/');
    assert.equal(await j.flush(200), false, 'nothing ships while the store is down');
    assert.equal(j.stats().backlog, 50);
    assert.ok(j.stats().failedShipments >= 1);
    assert.equal(await inner.count(), 0);
    inner.down = false;
    assert.equal(await j.flush(10_000), true);
    assert.equal(j.stats().backlog, 0);
    assert.equal(await inner.count(), 50);
    assert.equal((await inner.get(acks[7].measurement_uid))?.measurement.input, 'https://out-7.example/');
    // A resubmission is a duplicate and is not stored again.
    assert.equal((await j.put(ms(50, 'out')[3], sampleVerdict())).inserted, false);
    assert.equal(await j.count(), 50);
  });

  it('moves a row the store keeps refusing aside (refused table) and ships the rest', async (t) => {
    const dir = tmp(t);
    const inner = new FaultySqlite(join(dir, 'inner.sqlite'));
    const j = new JournaledStore(inner, { file: join(dir, 'journal.sqlite'), retryBaseMs: 1, retryMaxMs: 5 });
    t.after(() => j.close(1000));
    const items = [...ms(10, 'good'), sampleMeasurement({ input: 'https://poison.example/' }), ...ms(10, 'more')].map((m) => ({
      m,
      verdict: sampleVerdict(),
    }));
    const acks = await j.putMany(items);
    assert.equal(acks.length, 21);
    assert.equal(await j.flush(10_000), true);
    assert.equal(await inner.count(), 20);
    const refused = j.db.prepare('SELECT uid, error FROM refused').all() as Array<{ uid: string; error: string }>;
    assert.deepEqual(
      refused.map((r) => r.uid),
      [acks[10].measurement_uid],
    );
    assert.match(refused[0].error, /injected refusal/);
    assert.equal(j.stats().refused, 1);
  });

  it('keeps what it could not ship across a close and a restart, and ships it at the next start', async (t) => {
    const dir = tmp(t);
    const innerFile = join(dir, 'inner.sqlite');
    const journalFile = join(dir, 'journal.sqlite');
    const inner = new FaultySqlite(innerFile);
    inner.down = true;
    const j = new JournaledStore(inner, { file: journalFile, retryBaseMs: 5, retryMaxMs: 20 });
    const acks = await Promise.all(ms(30, 'restart').map((m) => j.put(m, sampleVerdict())));
    const t0 = Date.now();
    await j.close(300); // gives up draining: the store is down
    assert.ok(Date.now() - t0 < 5000);
    const again = new JournaledStore(new SqliteStore(innerFile), { file: journalFile });
    t.after(() => again.close());
    assert.equal(await again.flush(10_000), true);
    assert.equal(await again.count(), 30);
    for (const a of acks) assert.ok(await again.inner.get(a.measurement_uid), `${a.measurement_uid} lost`);
  });

  it('refuses writes once closed', async (t) => {
    const dir = tmp(t);
    const j = new JournaledStore(new SqliteStore(join(dir, 'inner.sqlite')), { file: join(dir, 'journal.sqlite') });
    await j.close();
    await assert.rejects(j.put(sampleMeasurement(), sampleVerdict()), /closed/);
    await assert.rejects(j.putMany([{ m: sampleMeasurement(), verdict: sampleVerdict() }]), /closed/);
  });
});

describe('JournaledStore over the real ClickHouse server', { skip: CH_URL ? false : 'WALLSCOPE_CLICKHOUSE_URL is unset' }, () => {
  it('ships 2,000 acknowledged measurements in batches; lists, counts and get() agree; duplicates stay single', async (t) => {
    const dir = tmp(t);
    const database = `wallscope_journal_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
    const ch = await ClickHouseStore.open({ url: CH_URL!, database });
    const j = new JournaledStore(ch, { file: join(dir, 'journal.sqlite'), batchMax: 700 });
    t.after(async () => {
      await j.close();
      const s = await ClickHouseStore.open({ url: CH_URL!, database });
      await s.dropDatabase();
      await s.close();
    });
    const all = ms(2000, 'chj');
    const acks: PutResult[] = [];
    for (let i = 0; i < all.length; i += 100)
      acks.push(...(await Promise.all(all.slice(i, i + 100).map((m) => j.put(m, sampleVerdict())))));
    assert.equal(new Set(acks.map((a) => a.measurement_uid)).size, 2000);
    assert.equal(await j.flush(60_000), true);
    assert.equal(await ch.count(), 2000);
    assert.equal(await j.count(), 2000);
    assert.equal((await j.get(acks[1234].measurement_uid))?.measurement.input, 'https://chj-1234.example/');
    const dup = await j.putMany(all.slice(0, 10).map((m) => ({ m, verdict: sampleVerdict() })));
    assert.ok(dup.every((d) => !d.inserted));
    assert.equal(await j.count(), 2000);
    assert.ok(j.stats().shipped >= 2000);
  });
});
