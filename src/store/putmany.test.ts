// putMany() and put() racing each other with overlapping measurements, on both stores (SQLite with
// and without its writer thread; ClickHouse on the real server when WALLSCOPE_CLICKHOUSE_URL is set):
// every uid is stored once and reported `inserted` exactly once; a failed store acknowledges nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouseStore } from './clickhouse.js';
import { sampleMeasurement, sampleVerdict } from '../testing/seed.js';
import { SqliteStore } from './sqlite.js';
import type { MeasurementStore, PutResult } from './types.js';

const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;

type Opened = { store: MeasurementStore; reopen: () => Promise<MeasurementStore>; cleanup: () => Promise<void> };

const kinds: Array<[string, () => Promise<Opened>]> = [
  ...(['thread', 'inline'] as const).map((mode): [string, () => Promise<Opened>] => [
    `sqlite (${mode})`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wallscope-putmany-'));
      const open = () => new SqliteStore(join(dir, 'db.sqlite'), { writerThread: mode === 'thread' });
      return { store: open(), reopen: async () => open(), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  ]),
  [
    'clickhouse',
    async () => {
      const database = `wallscope_putmany_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
      const open = () => ClickHouseStore.open({ url: CH_URL!, database });
      return {
        store: await open(),
        reopen: open,
        cleanup: async () => {
          const s = await open();
          await s.dropDatabase();
          await s.close();
        },
      };
    },
  ],
];

for (const [name, make] of kinds) {
  describe(
    `putMany() and put() concurrently (${name})`,
    { skip: name === 'clickhouse' && !CH_URL ? 'WALLSCOPE_CLICKHOUSE_URL is unset' : false },
    () => {
      it('stores each of 400 overlapping measurements once and reports each inserted exactly once', async (t) => {
        const o = await make();
        t.after(o.cleanup);
        const ms = Array.from({ length: 400 }, (_, i) =>
          sampleMeasurement({ input: `https://pm${i}.example/`, probe_cc: ['CN', 'IR'][i % 2] }),
        );
        const item = (i: number) => ({ m: ms[i], verdict: sampleVerdict() });
        const range = (a: number, b: number) => Array.from({ length: b - a }, (_, k) => item(a + k));
        // Three batches overlapping by half, one repeating a batch, and single puts over the middle, all at once.
        const calls: Array<Promise<PutResult[]>> = [
          o.store.putMany(range(0, 200)),
          o.store.putMany(range(100, 300)),
          o.store.putMany(range(200, 400)),
          o.store.putMany(range(0, 200)),
          Promise.all(range(150, 250).map((x) => o.store.put(x.m, x.verdict))),
        ];
        const results = (await Promise.all(calls)).flat();
        const inserted = new Map<string, number>();
        for (const r of results) inserted.set(r.measurement_uid, (inserted.get(r.measurement_uid) ?? 0) + (r.inserted ? 1 : 0));
        assert.equal(inserted.size, 400);
        assert.deepEqual([...new Set(inserted.values())], [1], 'every uid reported inserted exactly once');
        assert.equal(await o.store.count(), 400);
        // After a restart the same batch is all duplicates, and nothing is stored again.
        await o.store.close();
        const again = await o.reopen();
        t.after(() => again.close());
        const rerun = await again.putMany(range(50, 150));
        assert.ok(rerun.every((r) => !r.inserted));
        assert.equal(await again.count(), 400);
      });

      it('refuses a batch holding a measurement it cannot serialise, storing none of it; put() rejects, never throws', async (t) => {
        const o = await make();
        t.after(async () => {
          await o.store.close();
          await o.cleanup();
        });
        let deep: unknown = [];
        for (let i = 0; i < 200_000; i++) deep = [deep];
        const bad = sampleMeasurement({ input: 'https://deep.example/', extra: { x_deep: deep } });
        const good = [0, 1, 2].map((i) => ({ m: sampleMeasurement({ input: `https://fine${i}.example/` }), verdict: sampleVerdict() }));
        await assert.rejects(o.store.putMany([...good.slice(0, 2), { m: bad, verdict: sampleVerdict() }, good[2]]));
        let p: Promise<unknown> | undefined;
        assert.doesNotThrow(() => {
          p = o.store.put(bad, sampleVerdict());
        });
        await assert.rejects(p!);
        assert.equal(await o.store.count(), 0);
        assert.ok(
          (await o.store.putMany(good)).every((r) => r.inserted),
          'the good ones were not stored by the refused batch',
        );
      });

      it('rejects a batch on a closed store and acknowledges none of it', async (t) => {
        const o = await make();
        t.after(o.cleanup);
        await o.store.close();
        await assert.rejects(o.store.putMany([{ m: sampleMeasurement(), verdict: sampleVerdict() }]));
        const again = await o.reopen();
        t.after(() => again.close());
        assert.equal(await again.count(), 0);
      });
    },
  );
}
