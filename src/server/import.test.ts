// importMeasurementFiles() and reanalyzeStore() over the real OONI fixtures (read in place), with
// the real analysis, into both stores.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeMeasurement, ANALYSIS_VERSION } from '../analysis/index.js';
import type { Measurement, Verdict } from '../model/index.js';
import { fixturesDir } from '../probe/index.js';
import { ClickHouseStore, SqliteStore, type MeasurementStore } from '../store/index.js';
import { importMeasurementFiles } from './import.js';
import { reanalyzeStore, safeAnalyzer } from './reanalyze.js';

const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;
const dirs = ['synthetic-netem-qa', 'real-explorer', 'spec-examples'].map((d) => join(fixturesDir, 'measurements', d));
const fixtureFiles = dirs.flatMap((d) =>
  readdirSync(d)
    .filter((f) => /\.jsonc?l?$/.test(f))
    .map((f) => join(d, f)),
);

function suite(name: string, open: () => Promise<{ store: MeasurementStore; cleanup(): Promise<void> }>): void {
  describe(`importMeasurementFiles(store, files, analyze) and reanalyzeStore() (${name})`, () => {
    it('imports every readable OONI fixture once, keeps OONI uids, reports what it cannot store', async (t) => {
      const { store, cleanup } = await open();
      t.after(cleanup);
      const tmp = mkdtempSync(join(tmpdir(), 'wallscope-import-'));
      t.after(() => rmSync(tmp, { recursive: true, force: true }));
      const broken = join(tmp, 'broken.jsonl');
      const deep = `{"test_name":"web_connectivity","measurement_start_time":"2026-11-22 05:00:00","input":"https://deep.example/","test_keys":{"x":${'['.repeat(200000)}${']'.repeat(200000)}}}`;
      writeFileSync(
        broken,
        `{"test_name":"web_connectivity","test_keys":{},"measurement_start_time":"2026-11-22 05:00:00","input":"https://a.example/"}\n{not json\n[1,2]\n{"test_name":"x","test_keys":{}}\n${deep}\n{"test_name":"web_connectivity","test_keys":{},"measurement_start_time":"2026-11-22 05:00:01","input":"https://after.example/"}\n`,
      );
      const a = await importMeasurementFiles(store, [...fixtureFiles, broken, join(tmp, 'missing.json')], (m) => analyzeMeasurement(m));
      assert.equal(a.files, fixtureFiles.length + 1);
      assert.equal(
        (await store.list({ domain: 'after.example' }, { limit: 5 })).results.length,
        1,
        'the record after a hostile one is stored',
      );
      assert.ok(a.stored >= 90, `stored ${a.stored}`);
      const where = a.errors.map((e) => e.where);
      assert.ok(where.includes(`${broken}:2`) && where.includes(`${broken}:3`) && where.includes(`${broken}:4`), JSON.stringify(a.errors));
      assert.ok(a.errors.some((e) => e.where.endsWith('missing.json') && /cannot read/.test(e.error)));
      assert.equal(await store.count(), a.stored);
      const ooni = await store.get('01201503307dd8855f39f3d8f78be05f0c67770d');
      assert.equal(ooni?.measurement.probe_cc, 'CA');
      assert.equal(ooni?.analysis_version, ANALYSIS_VERSION);
      const again = await importMeasurementFiles(store, fixtureFiles, (m) => analyzeMeasurement(m));
      assert.equal(again.stored, 0);
      assert.equal(again.duplicates, a.stored - 2);
      const wc = await store.list({ test_name: 'web_connectivity', blocking: 'dns' }, { limit: 100 });
      assert.ok(wc.results.length > 0, 'the analysis found DNS blocking among the QA cases');
    });

    it('reanalyzeStore() rewrites every verdict with the new analysis, or only the outdated ones', async (t) => {
      const { store, cleanup } = await open();
      t.after(cleanup);
      const old = (m: Measurement): Verdict => ({ ...analyzeMeasurement(m), analysis_version: 'old/0' });
      await importMeasurementFiles(store, fixtureFiles.slice(0, 20), old);
      const n = await store.count();
      const first = await reanalyzeStore(store, (m) => analyzeMeasurement(m), { onlyOutdatedFor: ANALYSIS_VERSION, batch: 7 });
      assert.deepEqual(first, { scanned: n, updated: n, failed: 0 });
      const second = await reanalyzeStore(store, (m) => analyzeMeasurement(m), { onlyOutdatedFor: ANALYSIS_VERSION });
      assert.deepEqual(second, { scanned: n, updated: 0, failed: 0 });
      const agg = await store.aggregate({ axis_x: 'test_name', filter: {} });
      assert.equal(
        agg.reduce((s, r) => s + r.measurement_count, 0),
        n,
      );
      const crash = safeAnalyzer(() => {
        throw new Error('boom');
      }, 'crash/1');
      const third = await reanalyzeStore(store, crash, { limit: 3 });
      assert.equal(third.scanned, 3);
      const one = (await store.scan(null, 1))[0];
      assert.equal((await store.get(one.measurement_uid))!.verdict.status, 'unknown');
    });
  });
}

suite('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-import-db-'));
  const store = new SqliteStore(join(dir, 'i.sqlite'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
if (CH_URL)
  suite('clickhouse', async () => {
    const store = await ClickHouseStore.open({
      url: CH_URL,
      database: `wallscope_import_${process.pid}_${Math.floor(Math.random() * 1e9)}`,
    });
    return {
      store,
      cleanup: async () => {
        await store.dropDatabase();
        await store.close();
      },
    };
  });
else
  describe('importMeasurementFiles (clickhouse)', () =>
    it('SKIPPED: WALLSCOPE_CLICKHOUSE_URL is unset', { skip: 'WALLSCOPE_CLICKHOUSE_URL is unset' }, () => {}));

describe('analyzerWith(ctx)', () => {
  it("counts a lab's annotated ranges (annotations.x_lab_allow_net) as public for that measurement only", async () => {
    const { analyzerWith } = await import('./reanalyze.js');
    const { readFileSync } = await import('node:fs');
    const m = JSON.parse(
      readFileSync(join(fixturesDir, 'measurements', 'synthetic-netem-qa', 'dnsBlockingBOGON.json'), 'utf8'),
    ) as Measurement;
    const analyze = analyzerWith({});
    assert.equal(analyze(m).mechanism, 'dns.bogon');
    const lab = { ...m, annotations: { ...m.annotations, x_lab_allow_net: '10.0.0.0/8, not-a-cidr' } };
    assert.deepEqual(analyze(lab), analyzeMeasurement(lab, { allowNets: ['10.0.0.0/8'] }));
    assert.notEqual(analyze(lab).mechanism, 'dns.bogon');
    assert.equal(analyze(m).mechanism, 'dns.bogon', 'no leak into the next measurement');
  });
});
