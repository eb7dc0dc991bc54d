import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildDemoScenario, csvFields, readTestList } from './demo.js';
import { Policy } from './policy.js';
import { computedTruths } from './truth.js';

describe('readTestList(text)', () => {
  it('reads the Citizen Lab format, quotes included, and skips what is not http(s) on a domain', () => {
    assert.deepEqual(csvFields('a,"b, c",,"f ""g"""'), ['a', 'b, c', '', 'f "g"']);
    const text =
      'url,category_code,category_description,date_added,source,notes\n' +
      'https://www.Example.org/x,NEWS,News,2020-01-01,citizenlab,"a, b"\n' +
      'ftp://files.example/,FILE,File,2020-01-01,citizenlab,\n' +
      'http://1.2.3.4/,HOST,Host,2020-01-01,citizenlab,\n' +
      'not a url,NEWS,,,,\n';
    const { entries, skipped } = readTestList(text);
    assert.deepEqual(entries, [{ url: 'https://www.example.org/x', host: 'www.example.org', category: 'NEWS' }]);
    assert.equal(skipped, 3);
  });
});

describe('buildDemoScenario(listPath, limit)', () => {
  it('builds a world from cn.csv with all three layers acting, read at run time', () => {
    const { scenario } = buildDemoScenario();
    assert.ok(scenario.world.sites.length > 400);
    assert.ok(scenario.targets!.length >= scenario.world.sites.length);
    const truths = computedTruths(scenario, new Policy(scenario));
    const layers = new Set(truths.map((t) => t.truth.layer));
    for (const l of ['national', 'regional', 'isp', null]) assert.ok(layers.has(l as never), `layer ${l} present`);
    const mechs = new Set(truths.map((t) => t.truth.mechanism));
    for (const m of ['dns.injection', 'tls.reset', 'http.reset', 'tcp.timeout', 'http.blockpage', 'throttle', 'none'])
      assert.ok(mechs.has(m as never), `mechanism ${m} present`);
    assert.equal(buildDemoScenario(undefined, 20).scenario.targets!.length, 20);
  });
});
