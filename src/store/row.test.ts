import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Measurement } from '../model/index.js';
import { measurementUid, serializeMeasurement } from './row.js';
import { sampleMeasurement } from '../testing/seed.js';

/** A small seeded generator, so a failure names a case that can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('serializeMeasurement(m)', () => {
  it('gives exactly measurementUid(m) and JSON.stringify(m), whatever the key order, report_id and measurement_uid', () => {
    const rand = rng(20261122);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
    let fastCandidates = 0;
    for (let n = 0; n < 3000; n++) {
      const base = sampleMeasurement({ input: `https://k${n}.example/${pick(['', 'ü', '"q"', '\\', '\u2028'])}` }) as unknown as Record<
        string,
        unknown
      >;
      const entries = Object.entries(base).filter(([k]) => k !== 'report_id' && k !== 'measurement_uid');
      for (let i = entries.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [entries[i], entries[j]] = [entries[j], entries[i]];
      }
      if (rand() < 0.2) entries.splice(0, entries.length - Math.floor(rand() * 3)); // tiny objects too
      const rid = pick<unknown>(['20261122T000000Z_webconnectivity_CN_4134_n1_abcdefgh', '', 'a"b', undefined, 7]);
      const at = pick(['first', 'middle', 'last', 'absent']);
      if (at !== 'absent')
        entries.splice(at === 'first' ? 0 : at === 'last' ? entries.length : Math.floor(entries.length / 2), 0, ['report_id', rid]);
      const uid = pick<unknown>([undefined, undefined, 'OONI-given_uid.123', 'bad uid!']);
      if (uid !== undefined) entries.splice(Math.floor(rand() * (entries.length + 1)), 0, ['measurement_uid', uid]);
      if (rand() < 0.1) entries.push(['nested', { report_id: rid, x: [1, { report_id: 'inner' }] }]);
      const m = Object.fromEntries(entries) as unknown as Measurement;
      if (at === 'last' && uid === undefined && typeof rid === 'string') fastCandidates++;
      assert.deepEqual(
        serializeMeasurement(m),
        { uid: measurementUid(m), json: JSON.stringify(m) },
        `case ${n}: ${JSON.stringify(m).slice(0, 300)}`,
      );
    }
    assert.ok(fastCandidates > 200, `the shared path was exercised (${fastCandidates} cases)`);
  });

  it('keeps the uid of a measurement whatever the position of its report_id', () => {
    const m = sampleMeasurement() as unknown as Record<string, unknown>;
    const { report_id: _r, ...rest } = m;
    const last = { ...rest, report_id: 'r1' } as unknown as Measurement;
    const first = { report_id: 'r2', ...rest } as unknown as Measurement;
    assert.equal(serializeMeasurement(last).uid, serializeMeasurement(first).uid);
    assert.equal(serializeMeasurement(last).uid, measurementUid(first));
  });
});
