// The realistic seed's fast rows (rendered from a template, for bulk loads of millions) are exactly
// the rows put() would store for the same measurements: same uid, flat row and body.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flatten, hostOfInput, serializeMeasurement } from '../store/row.js';
import { compressBody } from '../store/sqlite.js';
import { realisticBatches, realisticRows } from './realistic-seed.js';

describe('realistic seed', () => {
  it('realisticRows renders what serializeMeasurement and flatten make of realisticBatches, row for row', () => {
    const slow = [...realisticBatches(20_000, { seed: 3 })].flat();
    const fast = [...realisticRows(20_000, { seed: 3 })].flat();
    assert.equal(fast.length, slow.length);
    let regions = 0;
    let blocked = 0;
    for (let i = 0; i < slow.length; i++) {
      const { m, verdict } = slow[i]!;
      const { uid, json } = serializeMeasurement(m);
      assert.deepEqual(fast[i]!.row, flatten(m, verdict, uid, hostOfInput), `row ${i}`);
      assert.deepEqual(fast[i]!.body, compressBody(json), `body ${i}`);
      if (fast[i]!.row.region) regions++;
      if (fast[i]!.row.status === 'blocked') blocked++;
    }
    // The comparison covered both templates (with and without a region) and blocked verdicts.
    assert.ok(regions > 1000 && regions < slow.length - 1000, String(regions));
    assert.ok(blocked > 500, String(blocked));
  });
});
