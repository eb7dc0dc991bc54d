// The one-pass body scan of matchHttp (hashed 8-byte windows, a bit-set filter, then a byte
// compare) must find exactly what a naive search finds, at any offset and on the real data.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesDir } from '../probe/index.js';
import { matchHttp, parseFingerprintCsv, type Fingerprint, type FingerprintSet } from './fingerprints.js';
import { defaultFingerprintsDir, defaultForgedPoolFiles, loadFingerprints } from '../probe/index.js';
import { buildView } from './view.js';

const HEAD = 'name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\n';

/** The reference: every body "contains" pattern looked for with Buffer.indexOf, in file order. */
function naive(set: FingerprintSet, bytes: Buffer): string[] {
  return set.http
    .filter(
      (f: Fingerprint) => f.location === 'body' && f.scope !== 'fp' && f.patternType === 'contains' && Buffer.byteLength(f.pattern) >= 8,
    )
    .filter((f) => bytes.indexOf(Buffer.from(f.pattern, 'utf8')) >= 0)
    .map((f) => f.name);
}

const scanned = (set: FingerprintSet, bytes: Buffer): string[] =>
  matchHttp(set, null, new Map(), bytes)
    .filter((f) => f.patternType === 'contains')
    .map((f) => f.name);

describe('matchHttp(set, body, headers, bytes): the body scan', () => {
  const patterns = ['12345678', '123456789', 'abcdefghij', 'BLOCKED BY ORDER 16', 'запрещён доступ'];
  const set = parseFingerprintCsv(HEAD + patterns.map((p, i) => `p${i},isp,,body,contains,${p},,,,,\n`).join(''), 't.csv');

  test('a pattern is found at every offset, odd and even, up to the very last byte', () => {
    for (const [i, p] of patterns.entries()) {
      for (let at = 0; at < 20; at++) {
        for (const tail of [0, 1, 2, 3]) {
          const body = Buffer.concat([Buffer.alloc(at, 'x'), Buffer.from(p, 'utf8'), Buffer.alloc(tail, 'y')]);
          assert.ok(scanned(set, body).includes(`p${i}`), `p${i} at ${at} with ${tail} bytes after`);
          assert.deepEqual(scanned(set, body), naive(set, body), `p${i} at ${at}+${tail}`);
        }
      }
    }
  });

  test('a pattern cut short by the end of the body, or broken by one byte, is not found', () => {
    for (const [i, p] of patterns.entries()) {
      const b = Buffer.from(p, 'utf8');
      for (let at = 0; at < 6; at++) {
        const cut = Buffer.concat([Buffer.alloc(at, 'x'), b.subarray(0, b.length - 1)]);
        assert.ok(!scanned(set, cut).includes(`p${i}`), `p${i} cut at ${at}`);
        assert.deepEqual(scanned(set, cut), naive(set, cut)); // "12345678" is in a cut "123456789"
        const broken = Buffer.from(b);
        broken[broken.length >> 1] ^= 1;
        assert.deepEqual(scanned(set, Buffer.concat([Buffer.alloc(at, 'x'), broken])), []);
      }
    }
    assert.deepEqual(scanned(set, Buffer.alloc(0)), []);
    assert.deepEqual(scanned(set, Buffer.from('1234567')), []);
  });

  test("OONI's fingerprints over every fixture body (and the body shifted by one byte) find what indexOf finds", () => {
    const dir = defaultFingerprintsDir();
    assert.ok(dir, 'fixtures/fingerprints is present');
    const ooni = loadFingerprints(dir, defaultForgedPoolFiles());
    const mdir = join(fixturesDir, 'measurements');
    let bodies = 0;
    let hits = 0;
    for (const d of readdirSync(mdir))
      for (const f of readdirSync(join(mdir, d))) {
        if (!f.endsWith('.json')) continue;
        const m = JSON.parse(readFileSync(join(mdir, d, f), 'utf8')) as Record<string, unknown>;
        if (m.test_name !== 'web_connectivity') continue;
        const bytes = buildView(m).requests[0]?.bodyBytes;
        if (!bytes || bytes.length === 0) continue;
        for (const b of [bytes, Buffer.concat([Buffer.from(' '), bytes])]) {
          const want = naive(ooni, b);
          assert.deepEqual(scanned(ooni, b), want, f);
          hits += want.length;
        }
        bodies++;
      }
    assert.ok(bodies > 20, `${bodies} bodies`);
    assert.ok(hits > 0, 'some fixture body matches a fingerprint');
  });
});
