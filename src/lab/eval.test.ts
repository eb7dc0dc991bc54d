import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scoreRows } from './eval.js';
import type { Truth } from './truth.js';

const T = (blocking: Truth['blocking'], mechanism: Truth['mechanism'], layer: Truth['layer']): Truth => ({ blocking, accessible: !blocking, mechanism, layer });

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
    assert.deepEqual(r.mismatches.map((m) => m.target), ['b', 'c']);
    assert.equal(scoreRows('s', [{ target: 'x', expected: T('dns', 'dns.nxdomain', 'isp'), got: T(false, 'none', null) }]).blocking_agreement, 0);
  });
});
