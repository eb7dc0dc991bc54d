// chString(s), the ONE literal-quoting function of the ClickHouse store, against the real server:
// thousands of random and hostile strings each come back unchanged from SELECT, and the same
// strings as filter values match exactly the rows that hold them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CLICKHOUSE_MIGRATIONS, ClickHouseStore, chInt, chString } from './clickhouse.js';
import { prng } from '../model/index.js';
import { sampleMeasurement, sampleVerdict } from '../testing/seed.js';
import { StoreInputError } from './types.js';

const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;

const HOSTILE = [
  '',
  "'",
  "''",
  '\\',
  '\\\\',
  "\\'",
  "'\\",
  "' OR '1'='1",
  "'; DROP DATABASE default; --",
  "x' UNION ALL SELECT name FROM system.tables --",
  '\u0000',
  '\u0000\u0001\u001f',
  '\x7f',
  '\b\f\n\r\t\v',
  '\r\n',
  '\\0',
  '\\x41',
  '\\N',
  '\\u0041',
  '$$',
  '{p:String}',
  '?',
  '%s',
  '`',
  '"',
  '"; --',
  '/* comment */',
  '-- comment',
  '#',
  '\u2028\u2029',
  '\uFEFF',
  'é',
  '中文',
  '😀',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  'a'.repeat(100_000),
  "'".repeat(1000),
  '\\'.repeat(1001),
  '<script>alert(1)</script>',
  '${jndi:ldap://x}',
  'FORMAT JSON',
  'SETTINGS readonly=0',
  ';',
  "\\'",
  "\\\\'",
];

/** Random valid Unicode strings, biased toward the characters that matter to a quoting function. */
function randomStrings(n: number, seed: number): string[] {
  const rnd = prng(seed);
  const special = ["'", '\\', '"', '\n', '\r', '\t', '\0', '`', ';', '-', '/', '*', '?', '{', '}', '$', '%', 'x', '0', '\x7f', '\x1b'];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = Math.floor(rnd() * 40);
    let s = '';
    for (let k = 0; k < len; k++) {
      const r = rnd();
      if (r < 0.4) s += special[Math.floor(rnd() * special.length)];
      else if (r < 0.6) s += String.fromCharCode(Math.floor(rnd() * 0x80));
      else if (r < 0.8) {
        let c = Math.floor(rnd() * 0xffff);
        if (c >= 0xd800 && c <= 0xdfff) c = 0x41; // lone surrogates are not text
        s += String.fromCharCode(c);
      } else s += String.fromCodePoint(0x10000 + Math.floor(rnd() * 0xfffff));
    }
    out.push(s);
  }
  return out;
}

describe('chString(s)', () => {
  it('quotes backslash, quote and control characters; chInt() refuses non-integers', () => {
    assert.equal(chString("a'b\\c"), "'a\\'b\\\\c'");
    assert.equal(chString('\n\0\x7f'), "'\\x0a\\x00\\x7f'");
    assert.equal(chString('😀'), "'😀'");
    assert.equal(chInt(42), '42');
    assert.throws(() => chInt(1.5), StoreInputError);
    assert.throws(() => chInt(Number.NaN), StoreInputError);
    assert.throws(() => chInt('1 OR 1=1' as unknown as number), StoreInputError);
  });

  if (!CH_URL) {
    it('SKIPPED against the real server: WALLSCOPE_CLICKHOUSE_URL is unset', { skip: 'WALLSCOPE_CLICKHOUSE_URL is unset' }, () => {});
    return;
  }

  it('round-trips thousands of random and hostile strings through the real server unchanged', async (t) => {
    const store = await ClickHouseStore.open({ url: CH_URL, database: `wallscope_quote_${process.pid}` });
    t.after(async () => {
      await store.dropDatabase();
      await store.close();
    });
    const all = [...HOSTILE, ...randomStrings(3000, 42)];
    const PER = 100;
    for (let i = 0; i < all.length; i += PER) {
      const chunk = all.slice(i, i + PER);
      const cols = chunk.map((s, k) => `${chString(s)} AS c${k}`).join(', ');
      const [row] = await store.rows<Record<string, string>>(`SELECT ${cols}`);
      chunk.forEach((s, k) => assert.equal(row[`c${k}`], s, `string #${i + k} ${JSON.stringify(s.slice(0, 60))}`));
    }
    // And as filters: each hostile input stored in a row is found by exactly that row.
    const some = [...HOSTILE.filter((s) => s.length < 5000), ...randomStrings(150, 7)];
    await store.putMany(some.map((s, i) => ({ m: sampleMeasurement({ input: s, extra: { x_i: i } }), verdict: sampleVerdict('ok') })));
    for (const [i, s] of some.entries()) {
      const got = await store.list({ input: s }, { limit: 10 });
      const wantCount = some.filter((x) => x === s).length;
      assert.equal(got.results.length, wantCount, `filter #${i} ${JSON.stringify(s.slice(0, 60))}`);
      assert.ok(got.results.every((r) => r.input === s));
      // The raw body (written into the JSONEachRow text by insertRows) comes back unchanged too.
      if (i % 3 === 0) assert.equal((await store.get(got.results[0].measurement_uid))?.measurement.input, s, `body #${i}`);
    }
    assert.equal(await store.count(), some.length, 'nothing dropped, nothing injected');
  });
});

describe('ClickHouseStore.put(m, verdict): group inserts, one uid SELECT per batch', () => {
  if (!CH_URL) {
    it('SKIPPED: WALLSCOPE_CLICKHOUSE_URL is unset', { skip: 'WALLSCOPE_CLICKHOUSE_URL is unset' }, () => {});
    return;
  }

  it('stores hundreds of concurrent puts across several batches in flight, each once; duplicates in flight wait and report inserted: false', async (t) => {
    const database = `wallscope_group_${process.pid}`;
    // Small batches so that many are cut and several are in flight at once.
    const store = await ClickHouseStore.open({ url: CH_URL, database, batchMax: 25, maxInFlight: 3 });
    t.after(async () => {
      await store.dropDatabase();
      await store.close();
    });
    const ms = Array.from({ length: 300 }, (_, i) => sampleMeasurement({ input: `https://group-${i}.example/` }));
    // Every measurement twice at once, plus every tenth a third time under another report id.
    const jobs = [...ms.map((m) => store.put(m, sampleVerdict('ok'))), ...ms.map((m) => store.put(m, sampleVerdict('ok')))];
    ms.forEach(
      (m, i) =>
        i % 10 === 0 && jobs.push(store.put({ ...m, report_id: '20261122T000000Z_webconnectivity_CN_4134_n1_other' }, sampleVerdict('ok'))),
    );
    const results = await Promise.all(jobs);
    const inserted = results.filter((r) => r.inserted).map((r) => r.measurement_uid);
    assert.equal(inserted.length, ms.length, 'one inserted: true per distinct uid');
    assert.equal(new Set(inserted).size, ms.length);
    assert.equal(await store.count(), ms.length);
    const uidTable = await store.rows<{ n: string }>('SELECT count() AS n FROM measurement_uids');
    assert.equal(Number(uidTable[0].n), ms.length, 'no uid was inserted twice');
    const first = await store.get(results[0].measurement_uid);
    assert.equal(first?.measurement.report_id, ms[0].report_id, 'the first submission is kept, not the resubmission');
    // Known to this process: answered without a write.
    assert.equal((await store.put(ms[5], sampleVerdict('ok'))).inserted, false);
    // After a delete, a resubmission stores it again.
    assert.equal(await store.delete(results[5].measurement_uid), true);
    assert.equal(await store.get(results[5].measurement_uid), null);
    assert.equal((await store.put(ms[5], sampleVerdict('ok'))).inserted, true);
    assert.ok(await store.get(results[5].measurement_uid));
    assert.equal(await store.count(), ms.length);
  });

  it('checkStoredUids: false skips the SELECT: a duplicate from before a restart is inserted again, answered inserted: true, and still read once', async (t) => {
    const database = `wallscope_nocheck_${process.pid}`;
    const first = await ClickHouseStore.open({ url: CH_URL, database });
    t.after(async () => {
      await first.dropDatabase();
      await first.close();
    });
    const m = sampleMeasurement({ input: 'https://nocheck.example/' });
    const a = await first.put(m, sampleVerdict('ok'));
    const fast = await ClickHouseStore.open({ url: CH_URL, database, checkStoredUids: false });
    t.after(() => fast.close());
    assert.deepEqual(await fast.put(m, sampleVerdict('ok')), { measurement_uid: a.measurement_uid, inserted: true });
    const uidRows = await fast.rows<{ n: string }>('SELECT count() AS n FROM measurement_uids');
    assert.equal(Number(uidRows[0].n), 2, 'inserted twice');
    assert.equal(await fast.count(), 1, 'FINAL reads it once');
    // The checking store (the default) answers it as a duplicate and writes nothing more.
    const checking = await ClickHouseStore.open({ url: CH_URL, database });
    t.after(() => checking.close());
    assert.equal((await checking.put(m, sampleVerdict('ok'))).inserted, false);
    assert.equal(Number((await checking.rows<{ n: string }>('SELECT count() AS n FROM measurement_uids'))[0].n), 2);
  });

  it('a failed insert rejects every put waiting on it, and a retry is not mistaken for a duplicate', async (t) => {
    const database = `wallscope_fail_${process.pid}`;
    const store = await ClickHouseStore.open({ url: CH_URL, database });
    t.after(async () => {
      await store.dropDatabase();
      await store.close();
    });
    const m = sampleMeasurement({ input: 'https://fails.example/' });
    await store.client.command({ query: 'DROP TABLE measurements' });
    const [a, b] = await Promise.allSettled([store.put(m, sampleVerdict('ok')), store.put(m, sampleVerdict('ok'))]);
    assert.equal(a.status, 'rejected');
    assert.equal(b.status, 'rejected', 'the duplicate waiting on the failed insert fails too');
    // Recreate the table (the migration statement is idempotent) and retry: it is stored.
    await store.client.command({ query: CLICKHOUSE_MIGRATIONS[0].statements[0] as string });
    await store.client.command({ query: 'ALTER TABLE measurements ADD COLUMN region Nullable(String) AFTER probe_asn' }); // migration 3
    const r = await store.put(m, sampleVerdict('ok'));
    assert.equal(r.inserted, true);
    assert.ok(await store.get(r.measurement_uid));
  });
});

describe('ClickHouseStore.open(): migration 3 (region) on a version-2 database', () => {
  if (!CH_URL) {
    it('SKIPPED: WALLSCOPE_CLICKHOUSE_URL is unset', { skip: 'WALLSCOPE_CLICKHOUSE_URL is unset' }, () => {});
    return;
  }

  it('adds the region column once; old rows read region null until re-analysis writes them again', async (t) => {
    const database = `wallscope_mig3_${process.pid}`;
    const { createClient } = await import('@clickhouse/client');
    const admin = createClient({ url: CH_URL });
    await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
    const db = createClient({ url: CH_URL, database });
    t.after(async () => {
      await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await db.close();
      await admin.close();
    });
    // A database written by the version-2 code: tables of migrations 1 and 2, rows without region.
    await db.command({
      query: 'CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime) ENGINE = TinyLog',
    });
    for (const mig of CLICKHOUSE_MIGRATIONS.slice(0, 2)) {
      for (const s of mig.statements) await db.command({ query: s as string });
      await db.insert({
        table: 'schema_migrations',
        values: [{ version: mig.version, name: mig.name, applied_at: 0 }],
        format: 'JSONEachRow',
      });
    }
    const { flatten, measurementUid } = await import('./row.js');
    const m = sampleMeasurement({ input: 'https://old.example/', region: 'Henan' });
    const { region: _r, ...v2row } = flatten(m, sampleVerdict('ok'), measurementUid(m));
    await db.insert({
      table: 'measurements',
      values: [{ ...v2row, body: JSON.stringify(m), deleted: 0, version: 1 }],
      format: 'JSONEachRow',
    });

    const store = await ClickHouseStore.open({ url: CH_URL, database });
    t.after(() => store.close());
    assert.equal(await store.schemaVersion(), CLICKHOUSE_MIGRATIONS.at(-1)!.version);
    const again = await ClickHouseStore.open({ url: CH_URL, database }); // the check-then-ALTER runs once
    await again.close();
    const old = (await store.list({}, { limit: 5 })).results;
    assert.equal(old.length, 1);
    assert.equal(old[0].region, null);
    assert.equal(await store.setVerdict(old[0].measurement_uid, sampleVerdict('blocked')), true);
    const now = (await store.list({ region: 'Henan' }, { limit: 5 })).results;
    assert.deepEqual(
      now.map((r) => [r.input, r.region, r.status]),
      [['https://old.example/', 'Henan', 'blocked']],
    );
  });
});
