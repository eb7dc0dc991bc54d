import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { evalScenario } from './eval.js';
import { generateRules, type GeneratedRule } from './lists.js';
import { parseScenario } from './scenario.js';

const dir = mkdtempSync(join(tmpdir(), 'wallscope-infer-lab-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The name measured for a generated rule: its literal, a subdomain, a wildcard's sibling, or a host holding the word. */
function nameOf(g: GeneratedRule, i: number): string {
  if (g.kw.startsWith('.')) return `shop${i}${g.kw}`;
  if (g.shape === 'unanchored') return `${g.kw}.org`;
  return g.shape === 'suffix' && i % 3 === 0 ? `www.${g.kw}` : g.kw;
}

/** `count` rules of a list, with every rare shape kept and the rest sampled, as name -> rule. */
function pick(gen: GeneratedRule[], count: number): Map<string, GeneratedRule> {
  const rare = gen.filter((g) => g.shape !== 'suffix');
  const common = gen.filter((g) => g.shape === 'suffix');
  const chosen = [...rare.slice(0, Math.ceil(count / 2)), ...common.slice(0, count - Math.min(rare.length, Math.ceil(count / 2)))];
  return new Map(chosen.map((g, i) => [nameOf(g, i), g]));
}

describe('lab eval --infer on a lab with generated lists', () => {
  it('infers the rule shape of >= 98% of blocked names per layer, finds every overblocked sample and the exact keyword', async () => {
    const gfwDns = [...generateRules(101, 4000, 'gfw')];
    const gfwSni = [...generateRules(202, 4000, 'gfw')];
    const henan = [...generateRules(303, 4000, 'henan'), { rule: '\\.com\\.au$', shape: 'end' as const, kw: '.com.au' }];
    writeFileSync(join(dir, 'gfw-dns.txt'), `# GFW DNS list\n${gfwDns.map((g) => g.rule).join('\n')}\n`);
    writeFileSync(join(dir, 'gfw-sni.txt'), gfwSni.map((g) => g.rule).join('\n'));
    writeFileSync(join(dir, 'henan.txt'), henan.map((g) => g.rule).join('\n'));
    writeFileSync(join(dir, 'keywords.txt'), 'tiananmen\n');
    const truth = { national: new Map([...pick(gfwDns, 24), ...pick(gfwSni, 24)]), regional: pick(henan, 30) };
    // Overblocking samples: a name padded on the left of each `kw$` rule's literal.
    const overblocked = [...truth.national.values(), ...truth.regional.values()]
      .filter((g) => g.shape === 'end' && !g.kw.startsWith('.'))
      .map((g) => `not${g.kw}`);
    const sites = [...truth.national.keys(), ...truth.regional.keys(), ...overblocked, 'free.example', 'news.example'];
    const yaml = `name: infer-proof
seed: 4
world:
  sites:
${sites.map((d) => `    - domain: ${d}`).join('\n')}
censors:
  - name: henan
    layer: regional
    sni_reset: { rules_file: henan.txt }
    http_reset: { host_rules_file: henan.txt }
  - name: gfw
    layer: national
    dns_injection: { rules_file: gfw-dns.txt, injectors: 2 }
    sni_reset: { rules_file: gfw-sni.txt, residual_s: 180 }
    http_reset: { host_rules_file: gfw-sni.txt, keywords_file: keywords.txt, residual_s: 90 }
targets:
${[...truth.national.keys(), ...truth.regional.keys(), ...overblocked].flatMap((d) => [`  - https://${d}/`, `  - http://${d}/`]).join('\n')}
  - https://free.example/
  - http://news.example/2024/06/tiananmen-square/photos?id=7
`;
    writeFileSync(join(dir, 'infer.yaml'), yaml);
    const s = parseScenario(yaml, join(dir, 'infer.yaml'));
    const run = await evalScenario(s, { infer: true, concurrency: 8, lab: { standardPorts: false } });
    const lines = run.infer!;
    // Per layer: every blocked name of the list has a line whose shape and literal are the truth's.
    for (const layer of ['national', 'regional'] as const) {
      const ls = lines.filter((l) => l.layer === layer && l.keyword === undefined && truth[layer].has(l.name));
      let right = 0;
      const wrong: string[] = [];
      for (const l of ls) {
        const g = truth[layer].get(l.name)!;
        if (l.x_shape === g.shape && l.x_kw === g.kw) right++;
        else wrong.push(`${l.name} ${l.protocol}: ${g.rule} -> ${l.rule}`);
        assert.ok(new RegExp(l.rule).test(l.name));
        assert.ok(l.queries > 0 && l.queries < 40);
      }
      const names = new Set(ls.map((l) => l.name));
      assert.ok(names.size >= truth[layer].size * 0.95, `${layer}: lines for ${names.size} of ${truth[layer].size} names`);
      assert.ok(right / ls.length >= 0.98, `${layer}: ${right}/${ls.length} right; ${wrong.slice(0, 5).join('; ')}`);
    }
    // Protocols: DNS for the GFW's DNS list, SNI and Host for the others.
    assert.ok(lines.some((l) => l.protocol === 'dns' && l.layer === 'national'));
    assert.ok(lines.some((l) => l.protocol === 'sni' && l.layer === 'regional'));
    assert.ok(lines.some((l) => l.protocol === 'http' && l.layer === 'national' && l.keyword === undefined));
    // Every overblocked sample is named by the line of the rule that overblocks it.
    for (const o of overblocked) {
      const kw = o.slice(3);
      assert.ok(
        lines.some((l) => l.name === kw && l.overblocks.includes(o)),
        `${o} not among the overblocks of ${kw}`,
      );
    }
    const kw = lines.find((l) => l.keyword !== undefined);
    assert.ok(kw, 'a keyword line');
    assert.equal(kw.keyword, 'tiananmen');
    assert.equal(kw.url, 'http://news.example/2024/06/tiananmen-square/photos?id=7');
    assert.equal(kw.layer, 'national');
  });

  it('infers every protocol that blocks a blocked name, not only the one the probe saw first', async () => {
    // both.com: poisoned by the GFW (the probe sees DNS injection first) and also on its SNI list
    // under another rule; 011.com: Henan resets its SNI and its Host (one list for both).
    const yaml = `name: infer-protocols
seed: 6
world:
  sites: [{ domain: both.com }, { domain: 011.com }, { domain: free.example }]
censors:
  - name: henan
    layer: regional
    sni_reset: { rules: ['011\\.com$'] }
    http_reset: { host_rules: ['011\\.com$'] }
  - name: gfw
    layer: national
    dns_injection: { rules: ['(^|\\.)both\\.com$'] }
    sni_reset: { rules: ['both\\.com$'], residual_s: 180 }
targets: [https://both.com/, https://011.com/, https://free.example/]
`;
    const run = await evalScenario(parseScenario(yaml, 'infer-protocols.yaml'), { infer: true, lab: { standardPorts: false } });
    const got = run.infer!.map((l) => `${l.name} ${l.protocol} ${l.layer} ${l.rule}`).sort();
    assert.deepEqual(got, [
      '011.com http regional 011\\.com$',
      '011.com sni regional 011\\.com$',
      'both.com dns national (^|\\.)both\\.com$',
      'both.com sni national both\\.com$',
    ]);
  });
});
