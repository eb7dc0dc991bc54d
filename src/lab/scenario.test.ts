import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sharedDir } from '../probe/index.js';
import { parseScenario, ScenarioError } from './scenario.js';

function designExample(): string {
  const md = readFileSync(join(sharedDir, 'DESIGN.md'), 'utf8');
  const m = /### Scenario format[\s\S]*?```yaml\n([\s\S]*?)```/.exec(md);
  assert.ok(m, '../shared/DESIGN.md has a scenario example');
  return m[1]!;
}

function problems(text: string): ScenarioError['problems'] {
  try {
    parseScenario(text, 'x.yaml');
  } catch (e) {
    assert.ok(e instanceof ScenarioError, String(e));
    return e.problems;
  }
  assert.fail('expected a ScenarioError');
}

describe('parseScenario(text, file)', () => {
  it('reads the ../shared/DESIGN.md example exactly as written', () => {
    const s = parseScenario(designExample(), '/tmp/design.yaml');
    assert.equal(s.name, 'national-and-provincial');
    assert.equal(s.seed, 1);
    assert.deepEqual(
      s.world.sites.map((x) => x.domain),
      ['www.example.org', 'youtube.com', '011.com'],
    );
    assert.equal(s.world.sites[2]!.https, false);
    assert.deepEqual(s.world.sites[0]!.page, { title: 'Example Domain', bytes: 4000 });
    assert.equal(s.world.helper, true);
    assert.deepEqual(
      s.censors.map((c) => [c.name, c.layer]),
      [
        ['henan', 'regional'],
        ['gfw', 'national'],
      ],
    );
    const gfw = s.censors[1]!;
    assert.deepEqual(gfw.dns_injection, {
      rules: ['(^|\\.)youtube\\.com$'],
      injectors: 2,
      pool: ['31.13.94.37', '157.240.17.35', '199.59.148.96'],
      lead_ms: 20,
    });
    assert.deepEqual(gfw.sni_reset, { rules: ['(^|\\.)youtube\\.com$'], fingerprint: 'gfw-type-2', residual_s: 180 });
    assert.deepEqual(gfw.http_reset, { host_rules: ['(^|\\.)youtube\\.com$'], keywords: ['falun'], residual_s: 90 });
    assert.deepEqual(gfw.null_route, ['blocked.example']);
    assert.deepEqual(gfw.throttle, { sni_rules: ['^video\\.example$'], kbps: 8 });
    assert.deepEqual(s.targets, [
      { url: 'https://youtube.com/' },
      { url: 'http://011.com/', expect: { blocking: 'http-failure', mechanism: 'http.reset', layer: 'regional' } },
    ]);
    assert.equal(s.source, '/tmp/design.yaml');
  });

  it('rejects an unknown key with its file, line and column', () => {
    const p = problems('name: a\nworld:\n  sites:\n    - domain: a.example\n      titel: x\n');
    assert.equal(p.length, 1);
    assert.deepEqual([p[0]!.file, p[0]!.line, p[0]!.col, p[0]!.path], ['x.yaml', 5, 7, 'world.sites[0].titel']);
    assert.match(p[0]!.message, /unknown key 'titel'/);
  });

  it('reports every problem at once, each located', () => {
    const p = problems(
      [
        'name: a',
        'world:',
        '  sites: [{ domain: a.example }, { domain: a.example }]',
        'censors:',
        '  - name: gfw',
        '    layer: continental',
        '  - name: h',
        '    layer: regional',
        "    sni_reset: { rules: ['(unclosed'] }",
        '    sampling: 2',
      ].join('\n'),
    );
    const byPath = new Map(p.map((x) => [x.path, x]));
    assert.match(byPath.get('censors[0].layer')!.message, /one of national, regional, isp/);
    assert.equal(byPath.get('censors[0].layer')!.line, 6);
    assert.match(byPath.get('censors[1].sni_reset.rules[0]')!.message, /regular expression/);
    assert.equal(byPath.get('censors[1].sampling')!.line, 10);
    assert.ok(p.some((x) => /declared twice/.test(x.message)));
    const shared = problems(
      'name: a\nworld: { sites: [{ domain: a.example, addresses: [127.9.1.1] }, { domain: b.example, addresses: [127.9.1.1] }] }\n',
    );
    assert.match(shared[0]!.message, /address 127\.9\.1\.1 is already used by site 'a\.example'/);
  });

  it('locates YAML syntax errors', () => {
    const p = problems('name: a\nworld:\n  sites: [\n');
    assert.ok(p[0]!.line >= 3, JSON.stringify(p));
    assert.match(p[0]!.message, /^YAML:/);
  });

  it('requires name and world, and targets of the world unless they carry an expect', () => {
    assert.ok(problems('seed: 1\n').some((x) => /missing required key 'name'/.test(x.message)));
    const p = problems('name: a\nworld: { sites: [{ domain: a.example }] }\ntargets: [https://b.example/]\n');
    assert.match(p[0]!.message, /not a site of this world/);
    const s = parseScenario(
      'name: a\nworld: { sites: [{ domain: a.example }] }\ntargets: [{ url: "https://b.example/", expect: { blocking: false } }]\n',
      'x.yaml',
    );
    assert.equal(s.targets![0]!.expect!.blocking, false);
  });

  it('follows YAML anchors and aliases, as for a list shared by SNI and HTTP rules', () => {
    const s = parseScenario(
      "name: a\nworld: { sites: [{ domain: a.example }] }\ncensors:\n  - name: henan\n    layer: regional\n    sni_reset: { rules: &list ['011\\.com$', 'x$'] }\n    http_reset: { host_rules: *list }\n",
      'x.yaml',
    );
    assert.deepEqual(s.censors[0]!.http_reset!.host_rules, ['011\\.com$', 'x$']);
  });

  it('validates the extension keys (site behaviours, ISP resolver)', () => {
    const s = parseScenario(
      "name: a\nworld:\n  sites: [{ domain: a.example, cert: expired, down: refused, redirect: 'http://b.example/' }]\n  resolvers: { isp: { nxdomain: ['^a\\.'], proxy: [x] }, public: {} }\ncensors: [{ name: i, layer: isp, reject: [a.example] }]\n",
      'x.yaml',
    );
    assert.deepEqual(s.world.sites[0], { domain: 'a.example', cert: 'expired', down: 'refused', redirect: 'http://b.example/' });
    assert.deepEqual(s.world.resolvers.isp, { nxdomain: ['^a\\.'], proxy: ['x'] });
    assert.deepEqual(s.censors[0]!.reject, ['a.example']);
    const p = problems('name: a\nworld:\n  sites: [{ domain: a.example, cert: selfsigned }]\n  resolvers: { isp: { hijack: [] } }\n');
    assert.equal(p.length, 2);
  });

  it('validates the netns hop extension: whole numbers growing along the path', () => {
    const s = parseScenario(
      'name: a\nworld:\n  sites: [{ domain: a.example }]\ncensors:\n  - { name: h, layer: regional, hop: 5 }\n  - { name: g, layer: national, hop: 7 }\n',
      'x.yaml',
    );
    assert.deepEqual(
      s.censors.map((c) => c.hop),
      [5, 7],
    );
    const p = problems(
      'name: a\nworld:\n  sites: [{ domain: a.example }]\ncensors:\n  - { name: h, layer: regional, hop: 5 }\n  - { name: g, layer: national, hop: 4 }\n  - { name: i, layer: isp, hop: 2.5 }\n',
    );
    assert.equal(p.length, 2, JSON.stringify(p));
    assert.ok(
      p.some((x) => x.path === 'censors[1].hop' && /not beyond the previous censor's hop 5/.test(x.message)),
      JSON.stringify(p),
    );
    assert.ok(
      p.some((x) => x.path === 'censors[2].hop'),
      JSON.stringify(p),
    );
  });

  it('validates the QA extension keys (captcha, down: localhost, ghost, close), each problem located', () => {
    const s = parseScenario(
      "name: a\nworld:\n  sites: [{ domain: a.example, captcha: true }, { domain: b.example, down: localhost }]\n  resolvers: { isp: { ghost: ['^c\\.example$'] }, public: {} }\ncensors: [{ name: g, layer: national, sni_reset: { rules: [a], close: eof }, http_reset: { host_rules: [a], close: reset } }]\n",
      'x.yaml',
    );
    assert.deepEqual(s.world.sites, [
      { domain: 'a.example', captcha: true },
      { domain: 'b.example', down: 'localhost' },
    ]);
    assert.deepEqual(s.world.resolvers.isp, { ghost: ['^c\\.example$'] });
    assert.equal(s.censors[0]!.sni_reset!.close, 'eof');
    assert.equal(s.censors[0]!.http_reset!.close, 'reset');
    const p = problems(
      "name: a\nworld:\n  sites: [{ domain: a.example, captcha: yes please }]\n  resolvers: { isp: { ghost: ['('] } }\ncensors: [{ name: g, layer: national, sni_reset: { rules: [a], close: fin } }]\n",
    );
    assert.equal(p.length, 3, JSON.stringify(p));
    assert.deepEqual(p.map((x) => [x.path, x.line]).sort(), [
      ['censors[0].sni_reset.close', 5],
      ['world.resolvers.isp.ghost[0]', 4],
      ['world.sites[0].captcha', 3],
    ]);
  });
});

describe('pool paths (scenarios/README.md "Paths")', () => {
  it('a library scenario copied out of scenarios/ still finds its shared pool; a pool beside the file wins; a missing one names the file', async () => {
    const { mkdtempSync, copyFileSync, writeFileSync, rmSync, readFileSync: read } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { loadScenario } = await import('./scenario.js');
    const { loadPool } = await import('./policy.js');
    const { repoRoot, fixturesDir } = await import('../probe/index.js');
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-scenario-copy-'));
    try {
      const copy = join(dir, 'copied.yaml');
      copyFileSync(join(repoRoot, 'scenarios', 'henan-and-gfw-2024.yaml'), copy);
      const s = loadScenario(copy);
      const gfw = s.censors.find((c) => c.name === 'gfw')!;
      const shared = read(join(fixturesDir, 'gfw-forged-ips', 'chinadns_iplist.txt'), 'utf8')
        .split(/\r?\n/)
        .filter((l) => /^\d{1,3}(\.\d{1,3}){3}$/.test(l.trim()));
      assert.deepEqual(
        loadPool(s, gfw.dns_injection!.pool as string),
        shared.map((l) => l.trim()),
      );
      // Beside the scenario file first (the contract of ../shared/DESIGN.md).
      const { mkdirSync } = await import('node:fs');
      mkdirSync(join(dir, 'fixtures', 'gfw-forged-ips'), { recursive: true });
      writeFileSync(join(dir, 'fixtures', 'gfw-forged-ips', 'chinadns_iplist.txt'), '1.2.3.4\n5.6.7.8\n');
      assert.deepEqual(loadPool(s, gfw.dns_injection!.pool as string), ['1.2.3.4', '5.6.7.8']);
      assert.throws(
        () => loadPool(s, 'pools/none.txt'),
        (e: Error) => e.message.includes(copy) && e.message.includes(join(dir, 'pools', 'none.txt')),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
