// Two layers, one name, one protocol (DESIGN.md: one `infer` line per (name, protocol, layer)): on a
// real loopback lab, the regional firewall (first on the path, fast reset, no residual) and the
// national one (residual blocking) both block names over SNI with different rules. Each line must
// carry its own layer's rule, never the union of both (before, both.com got the GFW's unanchored
// `both\.com` under the regional layer). In the loopback lab the first censor's reset ends the
// flow, so the national rule is masked on names the regional one blocks; the netns lab, where both
// inject while the packet passes on, shows both lines (src/lab/netns/infer.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evalScenario } from './eval.js';
import { parseScenario } from './scenario.js';

const SCENARIO = `
name: two-layers-one-name
seed: 9
world:
  sites: [{ domain: both.com }, { domain: tube.org }, { domain: 011.com }]
censors:
  - name: henan
    layer: regional
    sni_reset: { rules: ['(^|\\.)both\\.com$', '011\\.com$'], fingerprint: henan }
  - name: gfw
    layer: national
    sni_reset: { rules: ['both\\.com', '(^|\\.)tube\\.org$', '^011\\.com'], fingerprint: gfw-type-2, residual_s: 180 }
targets:
  - https://both.com/
  - https://tube.org/
  - https://011.com/
`;

const blocks = (rule: string, names: string[]) => names.map((n) => new RegExp(rule).test(n));

describe('infer with two layers blocking one name over SNI (loopback lab)', () => {
  it("gives each layer its own rule, told apart by residual blocking and the reset's delay", async () => {
    const run = await evalScenario(parseScenario(SCENARIO, 'two-layers.yaml'), {
      infer: true,
      concurrency: 2,
      lab: { standardPorts: false },
    });
    const lines = run.infer!.filter((l) => l.protocol === 'sni');
    const of = (name: string) => lines.filter((l) => l.name === name).map((l) => [l.layer, l.rule]);
    // both.com: Henan's suffix rule at the regional layer, not the GFW's unanchored one it masks.
    const both = lines.filter((l) => l.name === 'both.com');
    assert.deepEqual(
      both.map((l) => l.layer),
      ['regional'],
      JSON.stringify(of('both.com')),
    );
    assert.deepEqual(blocks(both[0]!.rule, ['both.com', 'x.both.com', 'xboth.com', 'both.com.cn', 'both.company']), [
      true,
      true,
      false,
      false,
      false,
    ]);
    // tube.org: the GFW alone, at the national layer.
    const tube = lines.filter((l) => l.name === 'tube.org');
    assert.deepEqual(
      tube.map((l) => l.layer),
      ['national'],
    );
    assert.deepEqual(blocks(tube[0]!.rule, ['tube.org', 'a.tube.org', 'atube.org']), [true, true, false]);
    // 011.com: Henan's `011\.com$` (overblocking shop011.com) and, on variants Henan lets through
    // (011.com.cn), the GFW's start-anchored rule shows; neither takes the other's variants.
    const henan = lines.find((l) => l.name === '011.com' && l.layer === 'regional');
    assert.ok(henan, JSON.stringify(of('011.com')));
    assert.deepEqual(blocks(henan.rule, ['011.com', 'shop011.com', '011.com.cn']), [true, true, false]);
  });
});
