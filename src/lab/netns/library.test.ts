// netns mode runs the SAME scenario library as loopback mode (src/lab/scenarios.test.ts): every
// scenarios/**/*.yaml in network namespaces, censors on path, the probe in the client namespace.
// Each target's verdict must equal its stored expectation, except the netns differences listed with
// a reason in scenarios/known-differences.json; a listed one that no longer happens fails too.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../probe/index.js';
import { scoreRows, type EvalRow } from '../eval.js';
import { loadScenario } from '../scenario.js';
import { evalNetnsScenario, netnsProblems } from './netns-lab.js';
import { netnsMissing } from './topology.js';

const dir = join(repoRoot, 'scenarios');
const files = (function walk(d: string): string[] {
  return readdirSync(d, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.yaml') ? [join(d, e.name)] : []))
    .sort();
})(dir);
interface Known {
  scenario: string;
  target: string;
  got: { blocking: unknown; mechanism: unknown; layer: unknown };
  reason: string;
}
const known: Known[] = JSON.parse(readFileSync(join(dir, 'known-differences.json'), 'utf8')).netns_differences;
const missing = netnsMissing();

describe('the scenario library in netns mode', { skip: missing.length ? `netns mode needs ${missing.join(', ')}` : false }, () => {
  it('gives every target the stored verdict (blocking, mechanism, layer)', async (t) => {
    const allRows: EvalRow[] = [];
    const unexpected: string[] = [];
    const seen = new Set<Known>();
    const queue = [...files];
    const worker = async () => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        const s = loadScenario(f);
        const name = relative(dir, f);
        assert.deepEqual(netnsProblems(s), [], `${name}: the library must run in netns mode`);
        const run = await evalNetnsScenario(s, { concurrency: 6, probe: { tlsTimeoutMs: 5000, httpTimeoutMs: 5000 } });
        for (const r of run.rows) {
          if (r.error) unexpected.push(`${name} ${r.target}: probe threw: ${r.error}`);
          allRows.push(r);
        }
        for (const m of run.report.mismatches) {
          const k = known.find((x) => x.scenario === name && x.target === m.target);
          if (k && k.got.blocking === m.got.blocking && k.got.mechanism === m.got.mechanism && k.got.layer === m.got.layer) seen.add(k);
          else unexpected.push(`${name} ${m.target}: expected ${JSON.stringify(m.expected)}, got ${JSON.stringify(m.got)}`);
        }
      }
    };
    await Promise.all([worker(), worker()]);
    const score = scoreRows('library (netns)', allRows);
    t.diagnostic(`targets ${score.targets}, blocking agreement ${score.blocking_agreement}`);
    for (const [l, s] of Object.entries(score.per_layer)) t.diagnostic(`layer ${l}: precision ${s.precision} recall ${s.recall}`);
    assert.deepEqual(unexpected, []);
    assert.deepEqual(
      known.filter((k) => !seen.has(k)).map((k) => `${k.scenario} ${k.target}`),
      [],
      'netns differences that no longer happen: remove them from scenarios/known-differences.json',
    );
  });
});
