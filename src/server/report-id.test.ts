import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesDir } from '../probe/index.js';
import { issueReportId, parseReportId, reportMismatch } from './report-id.js';

const secret = Buffer.from('test secret');

describe('parseReportId(id, secret)', () => {
  it('reads the report ids of real OONI measurements (16 random characters), unsigned', () => {
    const m = JSON.parse(
      readFileSync(
        join(fixturesDir, 'measurements', 'real-explorer', '20230307142542.625294_US_webconnectivity_9215f30cf2412f49.json'),
        'utf8',
      ),
    ) as { report_id: string; probe_cc: string; probe_asn: string; test_name: string };
    const p = parseReportId(m.report_id, secret);
    assert.ok(p, m.report_id);
    assert.equal(p.signed, false);
    assert.equal(reportMismatch(p, m), null);
  });

  it('signs what it issues, and a changed character or another secret breaks the signature', () => {
    const id = issueReportId(
      { probe_cc: 'CN', probe_asn: 'AS4134', test_name: 'web_connectivity' },
      secret,
      new Date('2026-11-22T05:28:00Z'),
    );
    assert.match(id, /^20261122T052800Z_webconnectivity_CN_4134_n1_[A-Za-z0-9]{8}[0-9a-f]{16}$/);
    assert.equal(parseReportId(id, secret)?.signed, true);
    assert.equal(parseReportId(id, Buffer.from('other'))?.signed, false);
    const flipped = id.slice(0, -1) + (id.endsWith('0') ? '1' : '0');
    assert.equal(parseReportId(flipped, secret)?.signed, false);
  });

  it('refuses what is not OONI-shaped', () => {
    for (const bad of [
      '',
      'x',
      '20261122T052800Z_webconnectivity_CN_4134_n1_short',
      '20261122T052800Z_web connectivity_CN_4134_n1_abcdefgh12345678',
      '20150330T231214Z_bLcnlMHNRrNezvvmUePFtkbJNDglhMvTNoivcUMZqpUjXhkHlR',
    ])
      assert.equal(parseReportId(bad, secret), null, bad);
  });
});
