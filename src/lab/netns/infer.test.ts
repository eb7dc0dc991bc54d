// `lab eval --netns --infer`: the rule behind each blocked target, inferred with trials sent from
// the client namespace through the on-path censors (DNS to the silent address, ClientHellos and
// requests from fresh client addresses), per layer.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { parseScenario } from '../scenario.js';
import { evalNetnsScenario } from './netns-lab.js';
import { netnsMissing } from './topology.js';

const missing = netnsMissing();
const skip = missing.length ? `netns mode needs ${missing.join(', ')}` : false;

const SCENARIO = `
name: netns-infer
seed: 6
world:
  sites: [{ domain: youtube.com }, { domain: wiki.org }, { domain: 011.com }, { domain: shop011.com }, { domain: news.example }, { domain: both.com }]
  resolvers: { isp: {}, public: {} }
censors:
  - name: henan
    layer: regional
    sni_reset: { rules: ['011\\.com$', '(^|\\.)both\\.com$'], fingerprint: henan }
  - name: gfw
    layer: national
    dns_injection: { rules: ['(^|\\.)youtube\\.com$'], injectors: 2 }
    sni_reset: { rules: ['(^|\\.)wiki\\.org$', 'both\\.com'], fingerprint: gfw-type-2, residual_s: 180 }
    http_reset: { keywords: [tiananmen], residual_s: 90 }
targets:
  - https://youtube.com/
  - https://wiki.org/
  - https://011.com/
  - https://shop011.com/
  - https://both.com/
  - http://news.example/2024/tiananmen-square/
`;

describe('lab eval --netns --infer', { skip }, () => {
  let run: Awaited<ReturnType<typeof evalNetnsScenario>>;
  before(async () => {
    run = await evalNetnsScenario(parseScenario(SCENARIO, 'netns-infer.yaml'), { infer: true, concurrency: 4 });
  });
  const blocks = (rule: string, names: string[]) => names.map((n) => new RegExp(rule).test(n));

  it('infers each rule from the client namespace: what it blocks, its layer, the overblocked name and the keyword', () => {
    assert.equal(run.report.blocking_agreement, 1, JSON.stringify(run.report.mismatches));
    const lines = run.infer!;
    const line = (name: string, protocol: string) =>
      lines.find((l) => l.name === name && l.protocol === protocol && l.keyword === undefined);

    const yt = line('youtube.com', 'dns');
    assert.ok(yt, JSON.stringify(lines));
    assert.equal(yt.layer, 'national');
    assert.deepEqual(
      blocks(yt.rule, ['youtube.com', 'www.youtube.com', 'notyoutube.com', 'youtube.com.cn']),
      [true, true, false, false],
      yt.rule,
    );

    const wiki = line('wiki.org', 'sni');
    assert.ok(wiki, JSON.stringify(lines));
    assert.equal(wiki.layer, 'national');
    assert.deepEqual(blocks(wiki.rule, ['wiki.org', 'en.wiki.org', 'newwiki.org']), [true, true, false], wiki.rule);

    // Henan's end-anchored rule without a dot boundary: it overblocks shop011.com.
    const henan = line('011.com', 'sni');
    assert.ok(henan, JSON.stringify(lines));
    assert.equal(henan.layer, 'regional');
    assert.deepEqual(blocks(henan.rule, ['011.com', 'shop011.com', 'x.011.com', '011.com.cn']), [true, true, true, false], henan.rule);
    assert.ok(henan.overblocks.includes('shop011.com'), JSON.stringify(henan));
    for (const o of henan.overblocks) assert.ok(new RegExp(henan.rule).test(o) && !/(^|\.)011\.com$/.test(o), o);

    const kw = lines.find((l) => l.keyword !== undefined);
    assert.ok(kw, JSON.stringify(lines));
    assert.equal(kw.keyword, 'tiananmen');
    assert.equal(kw.url, 'http://news.example/2024/tiananmen-square/');
    assert.equal(kw.layer, 'national');
  });

  // The layers are told apart by the captured resets' fingerprints (Henan's one RST+ACK with its
  // 10-byte payload), not by how soon the first reset came: that failed now and then under load.
  it('gives each layer its own rule when both block one name over SNI', () => {
    const lines = run.infer!;
    // Both layers block both.com over SNI with different rules: one line each, each layer's own rule
    // (not their union: Henan's never blocks both.com.cn, the GFW's unanchored one does).
    const both = lines.filter((l) => l.name === 'both.com' && l.protocol === 'sni');
    assert.deepEqual(both.map((l) => l.layer).sort(), ['national', 'regional'], JSON.stringify(both));
    const probe = ['both.com', 'x.both.com', 'xboth.com', 'both.com.cn', 'both.company'];
    assert.deepEqual(blocks(both.find((l) => l.layer === 'regional')!.rule, probe), [true, true, false, false, false]);
    assert.deepEqual(blocks(both.find((l) => l.layer === 'national')!.rule, probe), [true, true, true, true, true]);
  });
});
