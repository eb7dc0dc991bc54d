import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { computeGolden, expectedPath, fixtureFiles, readDifferences, readExpected, realCorpusPresent } from '../testing/golden.js';

describe('stored expectations for every fixture (regenerate: node dist/src/testing/regen.js)', () => {
  const files = fixtureFiles();
  test('the fixtures are there', () => assert.ok(files.length >= 50, `only ${files.length} fixture files`));

  for (const f of files) {
    test(f.replace(/.*measurements\//, ''), () => {
      const want = readExpected(f);
      assert.ok(want, `missing expected file ${expectedPath(f)}: run node dist/src/testing/regen.js and review the diff`);
      const { golden } = computeGolden(f);
      assert.deepEqual(JSON.parse(JSON.stringify(golden)), want);
    });
  }
});

describe('agreement with OONI on every web_connectivity fixture', () => {
  test('>= 95% agree (fixtures and real corpus), and every disagreement is a listed deliberate difference', (t) => {
    if (!realCorpusPresent) t.diagnostic('../shared/real-corpus is not in this copy of shared/: the fixtures alone are checked');
    const listed = readDifferences().filter((d) => realCorpusPresent || !d.source.startsWith('real-corpus'));
    let n = 0;
    let agree = 0;
    const found: Array<{ source: string; line: number }> = [];
    for (const f of fixtureFiles()) {
      const { golden, rows } = computeGolden(f);
      let i = 0;
      for (const rec of golden.records) {
        if (!rec.verdict) continue;
        const row = rows[i++];
        if (row.test_name !== 'web_connectivity' || row.agrees === null) continue;
        n++;
        if (row.agrees) agree++;
        else found.push({ source: golden.source, line: rec.line });
      }
    }
    assert.ok(n >= (realCorpusPresent ? 70 : 50), `only ${n} web_connectivity measurements`);
    process.stdout.write(`agreement with OONI's recorded pair: ${agree}/${n} (${((100 * agree) / n).toFixed(1)}%)\n`);
    assert.ok(agree / n >= 0.95, `agreement ${agree}/${n}`);
    const key = (d: { source: string; line: number }): string => `${d.source}:${d.line}`;
    assert.deepEqual(found.map(key).sort(), listed.map(key).sort(), 'the disagreements must be exactly the listed deliberate differences');
    for (const d of listed) assert.ok(d.reason && d.reason.length > 20, `a reason for ${key(d)}`);
  });
});
