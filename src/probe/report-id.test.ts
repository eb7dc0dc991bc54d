import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newReportId, placeReportId } from './webconnectivity.js';

describe('newReportId / placeReportId', () => {
  it('a re-placed measurement (the demo: CN / AS4837) gets a report id that says so, the rest kept', () => {
    const id = newReportId('ZZ', 'AS0', new Date('2026-12-06T17:00:00Z'));
    assert.match(id, /^20261206T170000Z_webconnectivity_ZZ_0_n1_[0-9a-f]{16}$/);
    const placed = placeReportId(id, 'CN', 'AS4837');
    assert.equal(placed, id.replace('_ZZ_0_', '_CN_4837_'));
    assert.equal(placeReportId('not-a-report-id', 'CN', 'AS4837'), 'not-a-report-id');
  });
});
