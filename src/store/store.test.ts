// The SAME suite runs against both implementations of MeasurementStore: SQLite (a temp file)
// and ClickHouse (a fresh database on the server named by WALLSCOPE_CLICKHOUSE_URL).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Verdict } from '../model/index.js';
import { SqliteStore, SQLITE_MIGRATIONS, migrateSqlite } from './sqlite.js';
import Database from 'better-sqlite3';
import { ClickHouseStore, CLICKHOUSE_MIGRATIONS } from './clickhouse.js';
import { StoreInputError, type AggregationRow, type MeasurementStore } from './types.js';
import { sampleMeasurement, sampleVerdict, syntheticMeasurements } from '../testing/seed.js';
import { measurementUid } from './row.js';

const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;

interface Harness {
  open(): Promise<MeasurementStore>;
  cleanup(): Promise<void>;
}

function sqliteHarness(): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-store-'));
  return {
    open: async () => new SqliteStore(join(dir, 'store.db')),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function clickhouseHarness(): Harness {
  const database = `wallscope_test_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
  return {
    open: () => ClickHouseStore.open({ url: CH_URL!, database }),
    cleanup: async () => {
      const s = await ClickHouseStore.open({ url: CH_URL!, database });
      await s.dropDatabase();
      await s.close();
    },
  };
}

/** Expected MAT counts computed in JS from the verdicts, to compare with the store's GROUP BY. */
function countsOf(vs: Verdict[]): Omit<AggregationRow, string> & Record<string, number> {
  return {
    measurement_count: vs.length,
    ok_count: vs.filter((v) => v.status === 'ok' || v.status === 'down').length,
    anomaly_count: vs.filter((v) => v.status === 'blocked' && !v.confirmed).length,
    confirmed_count: vs.filter((v) => v.status === 'blocked' && v.confirmed).length,
    failure_count: vs.filter((v) => v.status === 'unknown').length,
  };
}

function storeSuite(name: string, makeHarness: () => Harness): void {
  describe(`MeasurementStore (${name})`, () => {
    let h: Harness;
    let store: MeasurementStore;
    const data = [...syntheticMeasurements(300, { seed: 7, days: 60 })];

    before(async () => {
      h = makeHarness();
      store = await h.open();
      for (const { m, verdict } of data) await store.put(m, verdict);
    });
    after(async () => {
      await store?.close();
      await h?.cleanup();
    });

    it('put(m, verdict) then get(uid) returns the raw measurement, the verdict and the analysis version', async () => {
      const m = sampleMeasurement({
        probe_cc: 'XX',
        probe_asn: 'AS64500',
        input: 'https://roundtrip.example/',
        extra: { x_note: 'é\u0000"\'\\ <script>' },
      });
      const v = sampleVerdict('blocked', { analysis_version: 'test/9' });
      const r = await store.put(m, v);
      assert.equal(r.inserted, true);
      assert.equal(r.measurement_uid, measurementUid(m));
      const got = await store.get(r.measurement_uid);
      assert.ok(got);
      assert.deepEqual(got.measurement, { ...m, measurement_uid: r.measurement_uid });
      assert.deepEqual(got.verdict, v);
      assert.equal(got.analysis_version, 'test/9');
      assert.equal(await store.get('no-such-uid'), null);
      // Large bodies are stored compressed in SQLite, small ones as text: both come back whole.
      const big = sampleMeasurement({
        probe_cc: 'XX',
        probe_asn: 'AS64500',
        input: 'https://big.example/',
        extra: { x_body: 'é<p>'.repeat(5000) },
      });
      const rb = await store.put(big, v);
      assert.deepEqual((await store.get(rb.measurement_uid))?.measurement, { ...big, measurement_uid: rb.measurement_uid });
    });

    it('put() is idempotent on the measurement uid, also when resubmitted under another report', async () => {
      const m = sampleMeasurement({ probe_cc: 'XX', probe_asn: 'AS64500', input: 'https://twice.example/' });
      const before = await store.count();
      const a = await store.put(m, sampleVerdict('ok'));
      const b = await store.put({ ...m, report_id: '20261122T000000Z_webconnectivity_CN_4134_n1_other' }, sampleVerdict('ok'));
      const [c, d] = await Promise.all([store.put(m, sampleVerdict('ok')), store.put(m, sampleVerdict('ok'))]);
      assert.equal(a.inserted, true);
      assert.equal(b.inserted, false);
      assert.equal(c.inserted, false);
      assert.equal(d.inserted, false);
      assert.equal(b.measurement_uid, a.measurement_uid);
      assert.equal(await store.count(), before + 1);
    });

    it('list(filter, page) pages through every matching row once, newest first', async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      let lastTime = '9999';
      for (let i = 0; i < 100; i++) {
        const page = await store.list({ probe_cc: 'CN' }, { limit: 7, cursor });
        for (const r of page.results) {
          assert.equal(r.probe_cc, 'CN');
          assert.ok(r.measurement_start_time <= lastTime, 'ordered newest first');
          lastTime = r.measurement_start_time;
          seen.push(r.measurement_uid);
        }
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
      const want = data.filter((d) => d.m.probe_cc === 'CN').map((d) => measurementUid(d.m));
      assert.equal(new Set(seen).size, seen.length, 'no row twice');
      assert.deepEqual([...seen].sort(), [...new Set(want)].sort());
    });

    it('list() filters by asn, domain, test name, time, blocking, mechanism and layer', async () => {
      const all = data.map((d) => ({ uid: measurementUid(d.m), m: d.m, v: d.verdict }));
      const ts = (s: string) => Date.parse(s.replace(' ', 'T') + 'Z') / 1000;
      const since = ts(all[10].m.measurement_start_time);
      const cases: Array<[Parameters<MeasurementStore['list']>[0], (x: (typeof all)[number]) => boolean]> = [
        [{ probe_asn: 4134 }, (x) => x.m.probe_asn === 'AS4134'],
        [{ domain: 'youtube.com' }, (x) => x.m.input === 'https://youtube.com/'],
        [{ since }, (x) => ts(x.m.measurement_start_time) >= since],
        [{ until: since }, (x) => ts(x.m.measurement_start_time) < since],
        [{ blocking: 'true' }, (x) => x.v.status === 'blocked'],
        [{ blocking: 'false' }, (x) => x.v.status === 'ok' || x.v.status === 'down'],
        [{ blocking: 'null' }, (x) => x.v.status === 'unknown'],
        [{ blocking: 'dns' }, (x) => x.v.blocking === 'dns'],
        [{ mechanism: 'tls.reset', layer: 'national' }, (x) => x.v.mechanism === 'tls.reset' && x.v.layer === 'national'],
        [{ test_name: 'web_connectivity', probe_cc: 'IR' }, (x) => x.m.probe_cc === 'IR'],
        [{ confirmed: true }, (x) => x.v.status === 'blocked' && x.v.confirmed],
        [{ region: 'Henan' }, (x) => x.m.annotations.region === 'Henan'],
        [{ region: 'Beijing', probe_cc: 'CN', blocking: 'true' }, (x) => x.m.annotations.region === 'Beijing' && x.v.status === 'blocked'],
      ];
      for (const [filter, pred] of cases) {
        const got = await store.list(
          { ...filter, since: filter.since ?? 0, until: filter.until ?? ts('2027-01-01 00:00:00') },
          { limit: 1000 },
        );
        const want = all.filter(pred).map((x) => x.uid);
        assert.deepEqual(
          got.results
            .filter((r) => r.probe_cc !== 'XX')
            .map((r) => r.measurement_uid)
            .sort(),
          want.sort(),
          JSON.stringify(filter),
        );
      }
      const one = (await store.list({ blocking: 'dns' }, { limit: 1 })).results[0];
      assert.equal(one.blocking, 'dns');
      assert.equal(one.anomaly || one.confirmed, true);
      assert.match(one.probe_asn, /^AS\d+$/);
    });

    it('aggregate() counts as OONI MAT by day, by two axes and by coarser grains', async () => {
      const cn = data.filter((d) => d.m.probe_cc === 'CN');
      const byDay = await store.aggregate({ axis_x: 'measurement_start_day', filter: { probe_cc: 'CN' } });
      const want = new Map<string, Verdict[]>();
      for (const d of cn) {
        const day = d.m.measurement_start_time.slice(0, 10);
        want.set(day, [...(want.get(day) ?? []), d.verdict]);
      }
      assert.deepEqual(
        byDay.map((r) => r.measurement_start_day),
        [...want.keys()].sort(),
      );
      for (const r of byDay)
        assert.deepEqual(
          { ...r, measurement_start_day: undefined },
          { ...countsOf(want.get(String(r.measurement_start_day))!), measurement_start_day: undefined },
        );

      const two = await store.aggregate({ axis_x: 'probe_cc', axis_y: 'blocking_type', filter: {} });
      const total = two.reduce((s, r) => s + r.measurement_count, 0);
      assert.equal(total, await store.count());
      assert.ok(two.some((r) => r.probe_cc === 'CN' && r.blocking_type === 'dns'));

      const months = await store.aggregate({ axis_x: 'measurement_start_day', time_grain: 'month', filter: { probe_cc: 'CN' } });
      assert.ok(months.every((r) => /^\d{4}-\d{2}-01$/.test(String(r.measurement_start_day))));
      assert.equal(
        months.reduce((s, r) => s + r.measurement_count, 0),
        cn.length,
      );
      const weeks = await store.aggregate({ axis_x: 'measurement_start_day', time_grain: 'week', filter: { probe_cc: 'CN' } });
      for (const r of weeks) assert.equal(new Date(`${r.measurement_start_day}T00:00:00Z`).getUTCDay(), 1, 'weeks start on Monday');
      const hours = await store.aggregate({ axis_x: 'measurement_start_day', time_grain: 'hour', filter: { probe_cc: 'CN' } });
      assert.ok(hours.every((r) => /^\d{4}-\d{2}-\d{2} \d{2}:00:00$/.test(String(r.measurement_start_day))));
      const none = await store.aggregate({ filter: { probe_cc: 'CN' } });
      assert.deepEqual(none, [countsOf(cn.map((d) => d.verdict))]);
      const asn = await store.aggregate({ axis_x: 'probe_asn', filter: { probe_cc: 'CN' } });
      assert.ok(asn.every((r) => /^AS\d+$/.test(String(r.probe_asn))));
    });

    it('put() stores annotations.region normalised; list() returns it, filters on it, aggregate() groups by it', async () => {
      const henan = data.filter((d) => d.m.annotations.region === 'Henan');
      assert.ok(henan.length > 10, 'the seed has Henan measurements');
      const rows = (await store.list({ region: 'Henan' }, { limit: 1000 })).results;
      assert.equal(rows.length, henan.length);
      assert.ok(rows.every((r) => r.region === 'Henan' && r.probe_cc === 'CN'));
      const ir = (await store.list({ probe_cc: 'IR' }, { limit: 3 })).results;
      assert.ok(ir.length > 0 && ir.every((r) => r.region === null), 'no annotation: region null');

      const byRegion = await store.aggregate({ axis_x: 'region', filter: { probe_cc: 'CN' } });
      const want = new Map<string | null, Verdict[]>();
      for (const d of data.filter((x) => x.m.probe_cc === 'CN')) {
        const k = d.m.annotations.region ?? null;
        want.set(k, [...(want.get(k) ?? []), d.verdict]);
      }
      assert.equal(byRegion.length, want.size);
      for (const r of byRegion)
        assert.deepEqual(
          { ...r, region: undefined },
          { ...countsOf(want.get(r.region as string | null)!), region: undefined },
          String(r.region),
        );
      const daily = await store.aggregate({ axis_x: 'measurement_start_day', axis_y: 'region', filter: { region: 'Henan' } });
      assert.equal(
        daily.reduce((n, r) => n + r.measurement_count, 0),
        henan.length,
      );
      assert.ok(daily.every((r) => r.region === 'Henan'));

      // Self-declared text: trimmed, whitespace collapsed, control characters dropped, bounded.
      const put = async (region: string, input: string) =>
        (await store.put(sampleMeasurement({ probe_cc: 'XX', probe_asn: 'AS64500', input, region }), sampleVerdict('ok'))).measurement_uid;
      const a = await put('  He\u0000nan \n  Province ', 'https://region-a.example/');
      assert.equal((await store.list({ domain: 'region-a.example' }, { limit: 5 })).results[0].region, 'He nan Province');
      await put('Z'.repeat(500), 'https://region-b.example/');
      assert.equal((await store.list({ domain: 'region-b.example' }, { limit: 5 })).results[0].region, 'Z'.repeat(64));
      await put('   ', 'https://region-c.example/');
      assert.equal((await store.list({ domain: 'region-c.example' }, { limit: 5 })).results[0].region, null);
      const hostile = "Henan' OR '1'='1";
      await put(hostile, 'https://region-d.example/');
      assert.deepEqual(
        (await store.list({ region: hostile }, { limit: 5 })).results.map((r) => r.input),
        ['https://region-d.example/'],
      );
      assert.equal((await store.list({ region: 'henan' }, { limit: 5 })).results.length, 0, 'exact match');
      assert.equal(
        (await store.get(a))?.measurement.annotations.region,
        '  He\u0000nan \n  Province ',
        'the raw body keeps what was submitted',
      );
      // Re-analysis keeps the region.
      assert.equal(await store.setVerdict(a, sampleVerdict('blocked')), true);
      assert.equal((await store.list({ region: 'He nan Province' }, { limit: 5 })).results[0]?.status, 'blocked');
    });

    it('setVerdict(uid, verdict) re-labels a measurement in lists and aggregations', async () => {
      const m = sampleMeasurement({ probe_cc: 'XX', probe_asn: 'AS64500', input: 'https://relabel.example/' });
      const { measurement_uid } = await store.put(m, sampleVerdict('ok', { analysis_version: 'v1' }));
      assert.equal(
        await store.setVerdict(
          measurement_uid,
          sampleVerdict('blocked', {
            mechanism: 'http.blockpage',
            blocking: 'http-diff',
            layer: 'isp',
            confirmed: true,
            analysis_version: 'v2',
          }),
        ),
        true,
      );
      const got = await store.get(measurement_uid);
      assert.equal(got?.analysis_version, 'v2');
      const rows = (await store.list({ domain: 'relabel.example' }, { limit: 10 })).results;
      assert.equal(rows.length, 1);
      assert.equal(rows[0].mechanism, 'http.blockpage');
      assert.equal(rows[0].confirmed, true);
      const agg = await store.aggregate({ filter: { domain: 'relabel.example' } });
      assert.equal(agg[0].confirmed_count, 1);
      assert.equal(await store.setVerdict('no-such-uid', sampleVerdict('ok')), false);
      const scanned = await store.scan(null, 10_000);
      assert.ok(scanned.some((s) => s.measurement_uid === measurement_uid && s.analysis_version === 'v2'));
      assert.deepEqual(
        scanned.map((s) => s.measurement_uid),
        [...scanned.map((s) => s.measurement_uid)].sort(),
      );
    });

    it('delete(uid) removes a measurement from get, list and counts; it can be stored again', async () => {
      const m = sampleMeasurement({ probe_cc: 'XX', probe_asn: 'AS64500', input: 'https://gone.example/' });
      const { measurement_uid } = await store.put(m, sampleVerdict('ok'));
      const n = await store.count();
      assert.equal(await store.delete(measurement_uid), true);
      assert.equal(await store.get(measurement_uid), null);
      assert.equal((await store.list({ domain: 'gone.example' }, { limit: 5 })).results.length, 0);
      assert.equal(await store.count(), n - 1);
      assert.equal(await store.delete(measurement_uid), false);
      assert.equal((await store.put(m, sampleVerdict('ok'))).inserted, true);
    });

    it('rejects a forged cursor and the same axis twice with StoreInputError', async () => {
      await assert.rejects(store.list({}, { limit: 5, cursor: 'not-a-cursor' }), StoreInputError);
      await assert.rejects(store.list({}, { limit: 5, cursor: Buffer.from('["x",1]').toString('base64url') }), StoreInputError);
      await assert.rejects(async () => store.aggregate({ axis_x: 'probe_cc', axis_y: 'probe_cc', filter: {} }), StoreInputError);
      await assert.rejects(async () => store.list({ blocking: "dns' OR 1=1" }, { limit: 5 }), StoreInputError);
    });

    it('hostile filter values match only themselves', async () => {
      const hostile = ["x' OR '1'='1", 'a\\', "'; DROP TABLE measurements; --", '\u0000', '%', '_', 'youtube.com\n', "\\'", '`', '"'];
      for (const s of hostile) {
        assert.equal((await store.list({ domain: s }, { limit: 5 })).results.length, 0, JSON.stringify(s));
        assert.deepEqual(await store.aggregate({ axis_x: 'domain', filter: { probe_cc: s } }), []);
      }
      const m = sampleMeasurement({ probe_cc: 'XX', probe_asn: 'AS64500', input: "https://x.example/?q=' OR 1=1 --\\" });
      const { measurement_uid } = await store.put(m, sampleVerdict('ok'));
      assert.equal((await store.get(measurement_uid))?.measurement.input, m.input);
      assert.ok((await store.count()) > 300, 'the table is still there');
    });

    it('put() answers a duplicate stored before a restart as a duplicate and stores it once', async () => {
      const m = sampleMeasurement({ probe_cc: 'XX', probe_asn: 'AS64500', input: 'https://restart.example/' });
      const other = sampleMeasurement({ probe_cc: 'XX', probe_asn: 'AS64500', input: 'https://restart-new.example/' });
      const first = await store.put(m, sampleVerdict('ok'));
      assert.equal(first.inserted, true);
      const n = await store.count();
      // A new store on the same file/database: nothing of the first process's memory is left.
      const reopened = await h.open();
      try {
        const again = await reopened.put(m, sampleVerdict('blocked'));
        assert.deepEqual(again, { measurement_uid: first.measurement_uid, inserted: false });
        // Twice at once in the new process, beside a new measurement in the same batch.
        const [a, b, c] = await Promise.all([
          reopened.put(m, sampleVerdict('ok')),
          reopened.put(m, sampleVerdict('ok')),
          reopened.put(other, sampleVerdict('ok')),
        ]);
        assert.equal(a.inserted, false);
        assert.equal(b.inserted, false);
        assert.equal(c.inserted, true, 'the new one in the same batch is stored');
        assert.equal((await reopened.putMany([{ m, verdict: sampleVerdict('ok') }]))[0].inserted, false);
        assert.equal(await reopened.count(), n + 1);
        assert.equal(
          (await reopened.get(first.measurement_uid))?.verdict.status,
          'ok',
          'the stored verdict is not replaced by the duplicate',
        );
      } finally {
        await reopened.close();
      }
      assert.equal(await store.count(), n + 1);
      assert.equal((await store.list({ domain: 'restart.example' }, { limit: 10 })).results.length, 1);
    });

    it('closeReport(id) is remembered by isReportClosed(id), idempotently and across a restart; ids match only themselves', async () => {
      const id = '20261122T080000Z_webconnectivity_CN_4134_n1_abcdefgh0123456789abcdef';
      const open = '20261122T080000Z_webconnectivity_CN_4134_n1_abcdefgh0123456789abcdee';
      assert.equal(await store.isReportClosed(id), false);
      await store.closeReport(id);
      await store.closeReport(id); // closing twice is fine
      assert.equal(await store.isReportClosed(id), true);
      assert.equal(await store.isReportClosed(open), false);
      assert.equal(await store.isReportClosed(id.toUpperCase()), false, 'exact match');
      const hostile = ["x' OR '1'='1", "\\'", '\u0000', '%', 'é\n', id + "' OR 1=1 --"];
      for (const s of hostile) assert.equal(await store.isReportClosed(s), false, JSON.stringify(s));
      await store.closeReport(hostile[0]);
      assert.equal(await store.isReportClosed(hostile[0]), true);
      assert.equal(await store.isReportClosed("x' OR '1'='2"), false);
      await assert.rejects(store.closeReport(''), StoreInputError);
      await assert.rejects(store.isReportClosed('r'.repeat(257)), StoreInputError);
      const reopened = await h.open();
      try {
        assert.equal(await reopened.isReportClosed(id), true, 'remembered by the store, not the process');
        assert.equal(await reopened.isReportClosed(open), false);
        await reopened.closeReport(id);
        assert.equal(await reopened.isReportClosed(id), true);
      } finally {
        await reopened.close();
      }
    });

    it('records its schema version and migrates only once', async () => {
      const latest = (store.kind === 'sqlite' ? SQLITE_MIGRATIONS : CLICKHOUSE_MIGRATIONS).at(-1)!.version;
      assert.equal(await store.schemaVersion(), latest);
      const again = await h.open();
      assert.equal(await again.schemaVersion(), latest);
      assert.ok((await again.count()) > 0);
      await again.close();
    });
  });
}

storeSuite('sqlite', sqliteHarness);

describe('migrateSqlite(db)', () => {
  it('brings a version-1 file to the latest version with its data intact', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-migrate-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'old.sqlite');
    const old = new Database(file);
    assert.equal(migrateSqlite(old, SQLITE_MIGRATIONS.slice(0, 1)), 1);
    old.close();
    // A v1 file written by the v1 code path: rows in the v1 table.
    const v1 = new Database(file);
    const data = [...syntheticMeasurements(50, { seed: 2 })];
    const { flatten, measurementUid: uidOf } = await import('./row.js');
    const { compressBody } = await import('./sqlite.js');
    const cols = Object.keys(flatten(data[0].m, data[0].verdict, 'x')).filter((c) => c !== 'region'); // v1 has no region
    const ins = v1.prepare(`INSERT INTO measurements (${cols.join(', ')}) VALUES (${cols.map((c) => '@' + c).join(', ')})`);
    const raw = v1.prepare('INSERT INTO raw_measurements (uid, body) VALUES (?, ?)');
    for (const d of data) {
      const uid = uidOf(d.m);
      ins.run(flatten(d.m, d.verdict, uid));
      raw.run(uid, compressBody(JSON.stringify(d.m)));
    }
    v1.close();
    const store = new SqliteStore(file);
    t.after(() => store.close());
    assert.equal(await store.schemaVersion(), SQLITE_MIGRATIONS.at(-1)!.version);
    assert.equal(await store.count(), 50);
    assert.equal((await store.get(uidOf(data[7].m)))?.measurement.input, data[7].m.input);
    assert.equal((await store.put(data[7].m, data[7].verdict)).inserted, false, 'uid still unique after the migration');
    const plan = store.db
      .prepare("EXPLAIN QUERY PLAN SELECT COUNT(*) FROM measurements WHERE probe_cc = 'CN' AND day >= '2026-01-01' AND day <= '2026-11-22'")
      .all() as Array<{ detail: string }>;
    assert.match(plan.map((p) => p.detail).join(' '), /SEARCH measurements USING PRIMARY KEY \(probe_cc=\? AND day>\? AND day<\?\)/);
    // Migration 3 filled region from the raw bodies (plain and compressed alike).
    const withRegion = data.filter((d) => d.m.annotations.region);
    assert.ok(withRegion.length > 0);
    const listed = (await store.list({ region: 'Henan' }, { limit: 1000 })).results.map((r) => r.measurement_uid).sort();
    assert.deepEqual(
      listed,
      data
        .filter((d) => d.m.annotations.region === 'Henan')
        .map((d) => uidOf(d.m))
        .sort(),
    );
  });

  it('migration 3 fills region from compressed bodies and leaves unreadable bodies NULL', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-migrate3-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'v2.sqlite');
    const db = new Database(file);
    assert.equal(migrateSqlite(db, SQLITE_MIGRATIONS.slice(0, 2)), 2);
    const { flatten, measurementUid: uidOf } = await import('./row.js');
    const { compressBody } = await import('./sqlite.js');
    const big = sampleMeasurement({ input: 'https://big.example/', region: ' Henan ', extra: { x_body: 'x'.repeat(10_000) } });
    const small = sampleMeasurement({ input: 'https://small.example/', region: 'Beijing' });
    const broken = sampleMeasurement({ input: 'https://broken.example/', region: 'Henan' });
    const cols = Object.keys(flatten(big, sampleVerdict('ok'), 'x')).filter((c) => c !== 'region');
    const ins = db.prepare(`INSERT INTO measurements (${cols.join(', ')}) VALUES (${cols.map((c) => '@' + c).join(', ')})`);
    const raw = db.prepare('INSERT INTO raw_measurements (uid, body) VALUES (?, ?)');
    for (const m of [big, small, broken]) {
      const f = flatten(m, sampleVerdict('ok'), uidOf(m)) as unknown as Record<string, unknown>;
      delete f.region;
      ins.run(f);
      raw.run(uidOf(m), m === broken ? '{not json' : compressBody(JSON.stringify(m)));
    }
    assert.ok(
      Buffer.isBuffer((db.prepare('SELECT body FROM raw_measurements WHERE uid = ?').get(uidOf(big)) as { body: unknown }).body),
      'the big body is compressed',
    );
    db.close();
    const store = new SqliteStore(file);
    t.after(() => store.close());
    assert.equal(await store.schemaVersion(), SQLITE_MIGRATIONS.at(-1)!.version);
    const rows = (await store.list({}, { limit: 10 })).results;
    const regionOfInput = Object.fromEntries(rows.map((r) => [r.input, r.region]));
    assert.deepEqual(regionOfInput, {
      'https://big.example/': 'Henan',
      'https://small.example/': 'Beijing',
      'https://broken.example/': null,
    });
    // A region's per-day counts read the covering index alone.
    const sqlite = store as SqliteStore;
    const q = sqlite.rawAggregationSql({ axis_x: 'measurement_start_day', filter: { region: 'Henan' } });
    const plan = (sqlite.db.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).all(...q.params) as Array<{ detail: string }>)
      .map((p) => p.detail)
      .join(' ');
    assert.match(plan, /USING COVERING INDEX measurements_region_ts_status \(region=\?\)/);
  });
});
if (CH_URL) storeSuite('clickhouse', clickhouseHarness);
else {
  describe('MeasurementStore (clickhouse)', () => {
    it(
      'SKIPPED: WALLSCOPE_CLICKHOUSE_URL is unset (run `eval "$(bash scripts/clickhouse.sh start)"`)',
      { skip: 'WALLSCOPE_CLICKHOUSE_URL is unset' },
      () => {},
    );
  });
}
