// The scenario library's runner: every scenarios/**/*.yaml is run through `lab eval` (the real
// probe, the real analysis, the lab's real sockets) and each target's verdict is checked against
// its stored expectation. Known differences (what the probe/analysis does not get right yet) are
// listed with a reason in scenarios/known-differences.json; the test fails on any other mismatch
// AND on a listed difference that no longer happens, so the list stays true.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fixturesDir, repoRoot } from '../probe/index.js';
import { evalScenario, scoreRows, type EvalRow } from './eval.js';
import { Policy } from './policy.js';
import { nftAvailable } from './nft.js';
import { loadScenario } from './scenario.js';
import { computedTruths } from './truth.js';
import { expectedPath, readExpected, scenarioTruth } from './expected.js';

const dir = join(repoRoot, 'scenarios');

function scenarioFiles(d: string): string[] {
  return readdirSync(d, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? scenarioFiles(join(d, e.name)) : e.name.endsWith('.yaml') ? [join(d, e.name)] : []))
    .sort();
}

interface Known {
  scenario: string;
  target: string;
  got: { blocking: unknown; mechanism: unknown; layer: unknown };
  reason: string;
  /** Timing-dependent: may or may not happen, never reported as stale. */
  flaky?: boolean;
}
const known: Known[] = JSON.parse(readFileSync(join(dir, 'known-differences.json'), 'utf8')).differences;

/** Reference verdicts of the webconnectivityqa cases, from the fixtures' MANIFEST. */
function qaReference(): Map<string, { blocking: unknown; accessible: unknown }> {
  const out = new Map<string, { blocking: unknown; accessible: unknown }>();
  const lines = readFileSync(join(fixturesDir, 'MANIFEST.tsv'), 'utf8').split('\n');
  const head = lines[0]!.split('\t');
  const at = (row: string[], k: string) => row[head.indexOf(k)];
  const val = (s: string | undefined) => (s === 'false' ? false : s === 'true' ? true : s === 'null' ? null : s);
  for (const l of lines.slice(1)) {
    const row = l.split('\t');
    const m = /synthetic-netem-qa\/(.+)\.json$/.exec(at(row, 'local_name') ?? '');
    if (m) out.set(m[1]!, { blocking: val(at(row, 'blocking')), accessible: val(at(row, 'accessible')) });
  }
  return out;
}

describe('the scenario library (scenarios/**/*.yaml)', () => {
  const files = scenarioFiles(dir);

  it('holds all the QA cases with the reference verdicts, and the lab computes the same truth', () => {
    const ref = qaReference();
    const qa = files.filter((f) => f.includes(`${join('scenarios', 'qa')}`));
    // Every webconnectivityqa case of the fixtures is emulated, under its own name.
    assert.deepEqual(qa.map((f) => loadScenario(f).name).sort(), [...ref.keys()].sort());
    for (const f of qa) {
      const s = loadScenario(f);
      const r = ref.get(s.name);
      assert.ok(r, `${s.name}: not a webconnectivityqa case name`);
      const t = s.targets![0]!;
      assert.deepEqual(
        [t.expect?.blocking, t.expect?.accessible],
        [r.blocking, r.accessible],
        `${s.name}: stored expectation differs from the reference`,
      );
      const computed = computedTruths(s, new Policy(s))[0]!.truth;
      assert.deepEqual(
        computed,
        { blocking: t.expect!.blocking, accessible: t.expect!.accessible, mechanism: t.expect!.mechanism, layer: t.expect!.layer ?? null },
        `${s.name}: the lab's own truth`,
      );
    }
  });

  it('has a stored expectation for every scenario, equal to the truth the lab computes', () => {
    const missing: string[] = [];
    for (const f of files) {
      const s = loadScenario(f);
      const stored = readExpected(expectedPath(dir, f));
      if (!stored) {
        missing.push(relative(dir, f));
        continue;
      }
      assert.deepEqual(
        scenarioTruth(s),
        stored,
        `${relative(dir, f)}: the lab's truth changed; if on purpose, run: wallscope lab truth ${relative(repoRoot, f)} --write`,
      );
    }
    assert.deepEqual(missing, [], 'scenarios without expectation: run wallscope lab truth FILE --write');
  });

  it('measures every target through the lab and gets the stored verdict', async (t) => {
    const allRows: EvalRow[] = [];
    const unexpected: string[] = [];
    const seenKnown = new Set<Known>();
    const nftOk = nftAvailable().ok;
    const skipped: string[] = [];
    const queue = [...files];
    const worker = async () => {
      for (let f = queue.shift(); f; f = queue.shift()) {
        const s = loadScenario(f);
        const name = relative(dir, f);
        const needsNft = s.censors.some((c) => c.null_route?.length || c.reject?.length) || s.world.sites.some((x) => x.down === 'timeout');
        if (needsNft && !nftOk) {
          skipped.push(name);
          continue;
        }
        // Robustness: TLS/HTTP budgets above the lab default (3 s) so that a loaded machine does not turn
        // a slow handshake into a false timeout; throttled pages still need far longer than 5 s.
        const run = await evalScenario(s, { concurrency: 6, probe: { tlsTimeoutMs: 5000, httpTimeoutMs: 5000 } });
        for (const r of run.rows) {
          if (r.error) unexpected.push(`${name} ${r.target}: probe threw: ${r.error}`);
          allRows.push(r);
        }
        for (const m of run.report.mismatches) {
          const k = known.find((x) => x.scenario === name && x.target === m.target);
          if (k && k.got.blocking === m.got.blocking && k.got.mechanism === m.got.mechanism && k.got.layer === m.got.layer)
            seenKnown.add(k);
          else unexpected.push(`${name} ${m.target}: expected ${JSON.stringify(m.expected)}, got ${JSON.stringify(m.got)}`);
        }
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    if (skipped.length) t.diagnostic(`skipped (no nftables: null_route/reject cannot be emulated): ${skipped.join(', ')}`);
    const score = scoreRows('library', allRows);
    t.diagnostic(`targets ${score.targets}, blocking agreement ${score.blocking_agreement}`);
    for (const [m, s] of Object.entries(score.per_mechanism))
      t.diagnostic(`${m}: precision ${s.precision} recall ${s.recall} (tp ${s.tp} fp ${s.fp} fn ${s.fn})`);
    for (const [l, s] of Object.entries(score.per_layer)) t.diagnostic(`layer ${l}: precision ${s.precision} recall ${s.recall}`);
    assert.deepEqual(unexpected, []);
    const stale = known
      .filter((k) => !seenKnown.has(k) && !k.flaky && !skipped.includes(k.scenario))
      .map((k) => `${k.scenario} ${k.target}`);
    assert.deepEqual(stale, [], 'known differences that no longer happen: remove them from scenarios/known-differences.json');
  });
});
