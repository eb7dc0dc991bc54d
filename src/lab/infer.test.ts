import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inferRule, isolateKeyword } from '../analysis/index.js';
import { generateRules, type GeneratedRule } from './lists.js';
import { KeywordSet, RuleSet } from './rules.js';

/** The name a test measures for a generated rule: the literal itself, a subdomain, or a sample. */
export function blockedNameOf(g: GeneratedRule, i: number): string {
  if (g.kw.startsWith('.')) return `site${i}${g.kw}`; // a second-level wildcard's sibling
  if (g.shape === 'unanchored') return `${g.kw}.org`;
  return g.shape === 'suffix' && i % 3 === 0 ? `www.${g.kw}` : g.kw;
}

describe('inferRule(name, blocked, pad) over a censor that matches like the lab', () => {
  it('finds the shape and literal of >= 98% of the blocked names of generated GFW and Henan lists', async () => {
    for (const profile of ['gfw', 'henan'] as const) {
      const gen = [...generateRules(21, 20_000, profile)];
      const rules = new RuleSet(gen.map((g) => g.rule));
      // Every unanchored rule, every wildcard, and a sample of the rest.
      const picked = gen.filter((g, i) => g.shape === 'unanchored' || g.kw.startsWith('.') || i % 20 === 0);
      let right = 0;
      let queries = 0;
      const wrong: string[] = [];
      for (const [i, g] of picked.entries()) {
        const name = blockedNameOf(g, i);
        const got = await inferRule(name, async (c) => rules.matches(c), 'qzx');
        assert.ok(got, name);
        queries += got.queries;
        const want = g.shape === 'suffix' ? 'suffix' : g.shape;
        if (got.shape === want && got.kw === g.kw) right++;
        else wrong.push(`${name}: ${g.rule} -> ${got.rule}`);
        // The inferred regex blocks the name, and each variant as the censor did.
        assert.ok(new RegExp(got.rule).test(name));
      }
      assert.ok(right / picked.length >= 0.98, `${profile}: ${right}/${picked.length}; ${wrong.slice(0, 5).join('; ')}`);
      assert.ok(queries / picked.length < 25, String(queries / picked.length));
    }
  });

  it('names the overblocking of kw$ and of rules without an end anchor', async () => {
    const rules = new RuleSet(['example\\.com$', '^(.*\\.)?google\\.com', '^exact\\.org$', '\\.com\\.au$', 'falun', '\\.gov$']);
    const end = (await inferRule('notexample.com', async (c) => rules.matches(c), 'qzx'))!;
    assert.equal(end.rule, 'example\\.com$');
    assert.ok(end.overblocks.includes('example.com') && end.overblocks.includes('qzxnotexample.com'));
    const noend = (await inferRule('www.google.com', async (c) => rules.matches(c), 'qzx'))!;
    assert.equal(noend.rule, '(^|\\.)google\\.com');
    assert.equal(noend.variants.right_label, true);
    assert.ok(noend.overblocks.includes('www.google.com.qzx'));
    assert.equal((await inferRule('exact.org', async (c) => rules.matches(c), 'qzx'))!.rule, '^exact\\.org$');
    const wild = (await inferRule('shop.com.au', async (c) => rules.matches(c), 'qzx'))!;
    assert.equal(wild.rule, '\\.com\\.au$');
    assert.equal((await inferRule('usa.gov', async (c) => rules.matches(c), 'qzx'))!.rule, '\\.gov$');
    assert.equal((await inferRule('falungong.net', async (c) => rules.matches(c), 'qzx'))!.rule, 'falun');
    assert.equal(await inferRule('free.example', async (c) => rules.matches(c), 'qzx'), null);
    assert.equal(Object.keys(end.variants).length, 9);
  });
});

describe('isolateKeyword(text, blocked)', () => {
  it('finds the exact keyword in a long path', async () => {
    const kws = new KeywordSet(['tiananmen', '法轮']);
    const a = (await isolateKeyword('/news/2024/tiananmen-square/photos?id=7', async (s) => kws.matches(s)))!;
    assert.equal(a.keyword, 'tiananmen');
    assert.ok(a.queries < 20, String(a.queries));
    assert.equal((await isolateKeyword('/a/法轮功/b', async (s) => kws.matches(s)))!.keyword, '法轮');
    assert.equal(await isolateKeyword('/harmless', async (s) => kws.matches(s)), null);
  });
});
