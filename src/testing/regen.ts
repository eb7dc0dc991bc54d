// `node dist/src/testing/regen.js`: rewrite the stored expected verdicts of every fixture.
// Review the diff (git diff src/analysis/testdata) before committing: it is the behaviour change.
// Deliberate differences from OONI are NOT regenerated: they are written by hand, with a reason.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { computeGolden, expectedPath, fixtureFiles } from './golden.js';

let n = 0;
for (const f of fixtureFiles()) {
  const { golden } = computeGolden(f);
  const p = expectedPath(f);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, JSON.stringify(golden, null, 2) + '\n');
  n++;
}
process.stdout.write(`regen: wrote ${n} expected files\n`);
