import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { ooniEnvelope, SOFTWARE_NAME, SOFTWARE_VERSION } from './envelope.js';
import { platformMeasurement } from './platform-watch.js';
import { measureWebConnectivity, TEST_VERSION } from './webconnectivity.js';
import { runFetTest } from './fet.js';
import { startSite, page, type Site } from '../testing/probe-servers.js';

/** OONI's envelope keys (data format 0.2.0), in the order every wallscope test writes them. */
const ORDER = [
  'annotations',
  'data_format_version',
  'input',
  'measurement_start_time',
  'probe_asn',
  'probe_cc',
  'probe_ip',
  'probe_network_name',
  'report_id',
  'resolver_asn',
  'resolver_ip',
  'resolver_network_name',
  'software_name',
  'software_version',
  'test_helpers',
  'test_keys',
  'test_name',
  'test_runtime',
  'test_start_time',
  'test_version',
];
const ENGINE = { engine_name: SOFTWARE_NAME, engine_version: SOFTWARE_VERSION, platform: process.platform };
const TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

describe('ooniEnvelope: the one envelope of web_connectivity, x_fet and the platform tests', () => {
  const sites: Site[] = [];
  after(async () => {
    for (const s of sites) await s.close();
  });

  it('writes the keys in OONI order with the withheld defaults', () => {
    const at = new Date('2026-03-01T10:20:30.456Z');
    const m = ooniEnvelope({ testName: 't', testVersion: '9', input: 'x', start: at, runtime: 1.5, reportId: 'r', testKeys: { a: 1 } });
    assert.deepEqual(Object.keys(m), ORDER);
    assert.deepEqual(m, {
      annotations: ENGINE,
      data_format_version: '0.2.0',
      input: 'x',
      measurement_start_time: '2026-03-01 10:20:30',
      probe_asn: 'AS0',
      probe_cc: 'ZZ',
      probe_ip: '127.0.0.1',
      probe_network_name: '',
      report_id: 'r',
      resolver_asn: 'AS0',
      resolver_ip: '127.0.0.2',
      resolver_network_name: '',
      software_name: 'wallscope',
      software_version: SOFTWARE_VERSION,
      test_helpers: {},
      test_keys: { a: 1 },
      test_name: 't',
      test_runtime: 1.5,
      test_start_time: '2026-03-01 10:20:30',
      test_version: '9',
    });
  });

  it('platform tests: the same record as before the builder (uid after the start time, start and test start apart)', () => {
    const at = new Date('2026-03-01T10:20:30Z');
    const started = new Date('2026-03-01T09:00:00Z');
    const m = platformMeasurement('x_platform_watch', 'https://p.test/post/1', at, 'seed', { status: 'deleted' }, started);
    assert.deepEqual(Object.keys(m), [...ORDER.slice(0, 4), 'measurement_uid', ...ORDER.slice(4)]);
    const hash = m.measurement_uid!.slice(-16);
    assert.match(hash, /^[0-9a-f]{16}$/);
    assert.deepEqual(m, {
      annotations: ENGINE,
      data_format_version: '0.2.0',
      input: 'https://p.test/post/1',
      measurement_start_time: '2026-03-01 10:20:30',
      measurement_uid: `20260301102030.000000_ZZ_xplatformwatch_${hash}`,
      probe_asn: 'AS0',
      probe_cc: 'ZZ',
      probe_ip: '127.0.0.1',
      probe_network_name: '',
      report_id: `20260301102030_ZZ_xplatformwatch_${hash}`,
      resolver_asn: 'AS0',
      resolver_ip: '127.0.0.2',
      resolver_network_name: '',
      software_name: 'wallscope',
      software_version: SOFTWARE_VERSION,
      test_helpers: {},
      test_keys: { status: 'deleted' },
      test_name: 'x_platform_watch',
      test_runtime: 0,
      test_start_time: '2026-03-01 09:00:00',
      test_version: '0.1.0',
    });
  });

  it('web_connectivity: lab annotations after the engine, the resolver, the helper and the test version', async () => {
    const site = await startSite({ host: '127.0.0.1', handler: (_q, res) => res.end(page('Hello')) });
    sites.push(site);
    const m = await measureWebConnectivity(`http://127.0.0.1:${site.port}/`, {
      resolver: '127.0.0.1:5353',
      helper: 'http://127.0.0.1:1/',
      allowNet: ['127.0.0.0/8'],
      annotations: { category_code: 'NEWS' },
      region: ' Henan ',
      dnsWindowMs: 0,
      controlTimeoutMs: 1000,
    });
    assert.deepEqual(
      Object.keys(m).filter((k) => k !== 'x_verdict'),
      ORDER,
    );
    assert.deepEqual(m.annotations, { ...ENGINE, x_lab_mode: 'true', category_code: 'NEWS', region: 'Henan' });
    assert.equal(m.input, `http://127.0.0.1:${site.port}/`);
    assert.equal(m.resolver_ip, '127.0.0.1');
    assert.deepEqual(m.test_helpers, { backend: { address: 'http://127.0.0.1:1/', type: 'http' } });
    assert.equal(m.test_name, 'web_connectivity');
    assert.equal(m.test_version, TEST_VERSION);
    assert.equal(m.probe_ip, '127.0.0.1');
    assert.match(m.measurement_start_time, TIME);
    assert.equal(m.test_start_time, m.measurement_start_time);
    assert.match(m.report_id, /^\d{8}T\d{6}Z_webconnectivity_ZZ_0_n1_[0-9a-f]{16}$/);
    assert.ok(m.test_runtime > 0);
  });

  it('x_fet: the target as input, the default resolver and no helper', async () => {
    const site = await startSite({ host: '127.0.0.1', handler: (_q, res) => res.end('ok') });
    sites.push(site);
    const m = await runFetTest('127.0.0.1', site.port, { maxTrials: 2, timeoutMs: 300 });
    assert.deepEqual(Object.keys(m), ORDER);
    assert.deepEqual(m.annotations, ENGINE);
    assert.equal(m.input, `127.0.0.1:${site.port}`);
    assert.equal(m.resolver_ip, '127.0.0.2');
    assert.deepEqual(m.test_helpers, {});
    assert.equal(m.test_name, 'x_fet');
    assert.equal(m.test_version, '0.1.0');
    assert.match(m.report_id, /^\d{8}T\d{6}Z_webconnectivity_ZZ_0_n1_[0-9a-f]{16}$/);
  });
});
