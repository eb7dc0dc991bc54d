import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scoreRows, timeoutSeconds, timeoutWaitMs } from './eval.js';
import type { Truth } from './truth.js';

const T = (blocking: Truth['blocking'], mechanism: Truth['mechanism'], layer: Truth['layer']): Truth => ({
  blocking,
  accessible: !blocking,
  mechanism,
  layer,
});

describe('scoreRows(scenario, rows)', () => {
  it('gives per-mechanism and per-layer tp/fp/fn, precision and recall, and lists mismatches', () => {
    const rows = [
      { target: 'a', expected: T('dns', 'dns.injection', 'national'), got: T('dns', 'dns.injection', 'national') },
      { target: 'b', expected: T('http-failure', 'tls.reset', 'regional'), got: T('http-failure', 'tls.reset', 'national') },
      { target: 'c', expected: T('http-failure', 'throttle', 'national'), got: T('http-failure', 'http.timeout', 'unknown') },
      { target: 'd', expected: T(false, 'none', null), got: T(false, 'none', null) },
    ];
    const r = scoreRows('s', rows);
    assert.equal(r.scenario, 's');
    assert.equal(r.targets, 4);
    assert.equal(r.blocking_agreement, 1);
    assert.deepEqual(Object.keys(r), ['scenario', 'targets', 'blocking_agreement', 'per_mechanism', 'per_layer', 'mismatches']);
    assert.deepEqual(r.per_mechanism['tls.reset'], { tp: 1, fp: 0, fn: 0, precision: 1, recall: 1 });
    assert.deepEqual(r.per_mechanism['throttle'], { tp: 0, fp: 0, fn: 1, precision: null, recall: 0 });
    assert.deepEqual(r.per_mechanism['http.timeout'], { tp: 0, fp: 1, fn: 0, precision: 0, recall: null });
    assert.deepEqual(r.per_layer['national'], { tp: 1, fp: 1, fn: 1, precision: 0.5, recall: 0.5 });
    assert.deepEqual(r.per_layer['regional'], { tp: 0, fp: 0, fn: 1, precision: null, recall: 0 });
    assert.equal(r.per_layer['null'], undefined);
    assert.deepEqual(
      r.mismatches.map((m) => m.target),
      ['b', 'c'],
    );
    assert.equal(
      scoreRows('s', [{ target: 'x', expected: T('dns', 'dns.nxdomain', 'isp'), got: T(false, 'none', null) }]).blocking_agreement,
      0,
    );
  });
});

describe('timeoutSeconds(m) and timeoutWaitMs(rows, windowMs)', () => {
  it('sums the timed-out steps once, merging overlaps, and adds the DNS window', () => {
    const tk = {
      tcp_connect: [
        { ip: '127.1.1.1', port: 443, status: { success: false, failure: 'generic_timeout_error' }, t0: 0.1, t: 1.6 },
        { ip: '127.1.1.2', port: 443, status: { success: false, failure: 'connection_refused' }, t0: 0.1, t: 0.2 },
      ],
      tls_handshakes: [],
      requests: [{ failure: 'generic_timeout_error', t0: 1.0, t: 2.0 }],
      x_tls_sni_variants: [{ failure: 'generic_timeout_error', t0: 3.0, t: 3.5 }],
    };
    const m = { test_keys: tk } as never;
    assert.equal(Math.round(timeoutSeconds(m) * 1000), 2400); // [0.1,2.0] + [3.0,3.5]
    const row = { target: 'x', expected: T(false, 'none', null), got: T(false, 'none', null), measurement: m, ms: 4000 };
    assert.deepEqual(timeoutWaitMs([row], 100), { busyMs: 4000, waitMs: 2500 });
  });
});
