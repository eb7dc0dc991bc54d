import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { startLab } from './lab.js';
import { generateRules, ruleFor, WILDCARD_SUFFIXES, type RuleShape } from './lists.js';
import { Policy } from './policy.js';
import { KeywordSet, ListError, RuleSet } from './rules.js';
import { parseScenario, ScenarioError } from './scenario.js';

const dir = mkdtempSync(join(tmpdir(), 'wallscope-lists-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The reference: every rule as its own RegExp, as RuleSet matched before lists were tables. */
const reference = (rules: string[]) => {
  const res = rules.map((r) => new RegExp(r, 'i'));
  return (name: string) => {
    const n = name.toLowerCase().replace(/\.$/, '');
    return res.some((r) => r.test(n));
  };
};

describe('RuleSet(sources, files).matches(name) against one RegExp per rule', () => {
  it('gives the RegExp answer for every published shape, hand-written edge cases included', () => {
    const rules = [
      '^(.*\\.)?example\\.com$',
      '(^|\\.)youtube\\.com$',
      '(?:^|\\.)yt\\.be$',
      '^(?:.*\\.)?t\\.co$',
      '^exact\\.org$',
      '011\\.com$',
      '^(.*\\.)?google\\.com',
      '(^|\\.)fb\\.me',
      '^prefix',
      'falun',
      '\\.com\\.au$',
      'A-B_C\\.NET$',
      '\\$',
      'a\\\\$',
      'x.y$',
      '^(www|m)\\.wiki\\.org$',
      '[0-9]+\\.cn$',
      'tail$',
      '\\-dash\\.io$',
    ];
    const names = [
      'example.com',
      'www.example.com',
      'notexample.com',
      'example.com.evil.org',
      'youtube.com',
      'm.YouTube.com.',
      'myoutube.com',
      'yt.be',
      'a.yt.be',
      't.co',
      'at.co',
      'a.t.co',
      'a\n.t.co',
      'a.\nb.t.co',
      '\n.t.co',
      'exact.org',
      'x.exact.org',
      '011.com',
      'x011.com',
      'google.com',
      'google.com.cn',
      'xgoogle.com',
      'a.google.community',
      'a\n.google.com.x',
      'fb.me',
      'a.fb.mex',
      'afb.me',
      'prefix.net',
      'aprefix',
      'xfaluny',
      'FALUN',
      'www.com.au',
      'com.au',
      'a-b_c.net',
      'xa-b_c.net',
      'a$b',
      'a\\',
      'xzy',
      'x.y',
      'www.wiki.org',
      'm.wiki.org',
      'w.wiki.org',
      '123.cn',
      'a.cn',
      'tail',
      'entail.x',
      '-dash.io',
      'a-dash.io',
      'dash.io',
      '',
      'ünïcode.com',
      'kexample.com',
      '\u212Aa.fb.me',
      'k.exact.org',
    ];
    const fast = new RuleSet(rules);
    const ref = reference(rules);
    for (const n of names) assert.equal(fast.matches(n), ref(n), JSON.stringify(n));
    assert.equal(fast.size, rules.length);
    assert.equal(fast.matches(null), false);
    assert.equal(new RuleSet([]).empty, true);
  });

  it('agrees with the RegExps on generated lists of both profiles and their variants', () => {
    for (const profile of ['gfw', 'henan'] as const) {
      const gen = [...generateRules(11, 3000, profile)];
      const rules = gen.map((g) => g.rule);
      const fast = new RuleSet(rules);
      const ref = reference(rules);
      let blocked = 0;
      for (const g of gen.slice(0, 1000)) {
        const k = g.kw.replace(/^\./, '');
        for (const n of [k, `www.${k}`, `x${k}`, `${k}.evil.org`, `${k}x`, k.slice(1), k.slice(0, -1), `a.${k.slice(3)}`]) {
          const want = ref(n);
          if (want) blocked++;
          assert.equal(fast.matches(n), want, `${profile} ${g.rule} ${n}`);
        }
      }
      assert.ok(blocked > 2000, String(blocked));
    }
  });

  it('makes the published shape proportions from a seed, the same for the same seed', () => {
    const count = (profile: 'gfw' | 'henan') => {
      const c = new Map<RuleShape, number>();
      for (const g of generateRules(5, 100_000, profile)) c.set(g.shape, (c.get(g.shape) ?? 0) + 1);
      return c;
    };
    const gfw = count('gfw');
    assert.ok(Math.abs(gfw.get('suffix')! / 1e5 - 0.853) < 0.01);
    assert.ok(Math.abs(gfw.get('exact')! / 1e5 - 0.093) < 0.005);
    assert.ok(Math.abs(gfw.get('suffix-noend')! / 1e5 - 0.038) < 0.003);
    assert.ok(Math.abs(gfw.get('end')! / 1e5 - 0.013) < 0.002);
    assert.ok(gfw.get('unanchored')! > 150 && gfw.get('unanchored')! < 450);
    const henan = count('henan');
    assert.ok(Math.abs(henan.get('end')! / 1e5 - 0.36) < 0.01);
    assert.equal(henan.get('suffix-noend'), undefined); // Henan's rules are always end-anchored
    const wild = [...generateRules(5, 100_000, 'henan')].filter((g) => g.kw.startsWith('.'));
    assert.ok(wild.length >= 3 && wild.every((g) => WILDCARD_SUFFIXES.includes(g.kw.slice(1))));
    assert.deepEqual([...generateRules(9, 50, 'gfw')], [...generateRules(9, 50, 'gfw')]);
    const names = new Set([...generateRules(9, 200_000, 'gfw')].map((g) => g.kw));
    assert.ok(names.size > 199_000, String(names.size)); // unique names (unanchored words may repeat)
    assert.equal(ruleFor('suffix', 'a-b.com'), '^(.*\\.)?a\\-b\\.com$');
  });
});

describe('lists as files (rules_file, host_rules_file, sni_rules_file, keywords_file)', () => {
  it('loads a list file with comments and blank lines, adding to the inline rules', () => {
    const f = join(dir, 'gfw.txt');
    writeFileSync(f, '# the national list\n\n(^|\\.)youtube\\.com$\r\n   ^exact\\.org$  \n# end\nlast\\.example$');
    const rs = new RuleSet(['^inline\\.net$'], [f]);
    assert.equal(rs.size, 4);
    for (const n of ['youtube.com', 'm.youtube.com', 'exact.org', 'inline.net', 'notlast.example']) assert.equal(rs.matches(n), true, n);
    for (const n of ['myoutube.com', 'x.exact.org', '#', 'end']) assert.equal(rs.matches(n), false, n);
  });

  it('names file:line of a bad line, in a RuleSet and in a scenario', () => {
    const f = join(dir, 'bad.txt');
    writeFileSync(f, '# ok\n^ok\\.com$\n\n(^|\\.)broken(\\.com$\n');
    assert.throws(
      () => new RuleSet([], [f]),
      (e: unknown) => e instanceof ListError && e.line === 4 && e.message.startsWith(`${f}:4: not a valid regular expression`),
    );
    writeFileSync(join(dir, 's.yaml'), '');
    try {
      parseScenario(
        `name: x\nworld: { sites: [{ domain: a.example }] }\ncensors:\n  - name: gfw\n    layer: national\n    sni_reset: { rules_file: bad.txt }\n`,
        join(dir, 's.yaml'),
      );
      assert.fail('expected a ScenarioError');
    } catch (e) {
      assert.ok(e instanceof ScenarioError);
      assert.equal(e.problems.length, 1);
      assert.match(
        e.message,
        new RegExp(`^${f.replace(/[.\\/]/g, '\\$&')}:4:1: censors\\[0\\]\\.sni_reset\\.rules_file: not a valid regular expression`),
      );
    }
    const kw = join(dir, 'kw.bin');
    writeFileSync(kw, Buffer.from([0x66, 0x61, 0x0a, 0xff, 0xfe, 0x0a]));
    assert.throws(() => new KeywordSet([], [kw]), /kw\.bin:2: not valid UTF-8/);
    assert.throws(() => new RuleSet([], [join(dir, 'missing.txt')]), /missing\.txt:0: cannot read the list/);
  });

  it('reads every _file key relative to the scenario file and the lab censors with them', async () => {
    writeFileSync(join(dir, 'dns.txt'), '^(.*\\.)?blocked\\.example$\n');
    writeFileSync(join(dir, 'sni.txt'), 'example\\.com$\n');
    writeFileSync(join(dir, 'host.txt'), '^news\\.example$\n');
    writeFileSync(join(dir, 'kw.txt'), '# words\nfalun\n天安门\n');
    writeFileSync(join(dir, 'page.txt'), '^page\\.example$\n');
    writeFileSync(join(dir, 'slow.txt'), '^slow\\.example$\n');
    const yaml = `name: lists
world:
  sites: [{ domain: ok.example }, { domain: blocked.example }, { domain: notexample.com }, { domain: news.example }, { domain: page.example }, { domain: slow.example }]
censors:
  - name: gfw
    layer: national
    dns_injection: { rules_file: dns.txt, injectors: 1 }
    sni_reset: { rules: ['^inline\\.example$'], rules_file: [sni.txt] }
    http_reset: { host_rules_file: host.txt, keywords_file: kw.txt }
    blockpage: { host_rules_file: page.txt }
    throttle: { sni_rules_file: slow.txt, host_rules_file: slow.txt, kbps: 8 }
`;
    const s = parseScenario(yaml, join(dir, 'lists.yaml'));
    const c = s.censors[0]!;
    assert.deepEqual(c.dns_injection!.rules_file, [join(dir, 'dns.txt')]);
    assert.deepEqual(c.sni_reset!.rules, ['^inline\\.example$']);
    const p = new Policy(s);
    assert.equal(p.dnsInjectors('www.blocked.example').length, 1);
    assert.equal(p.onClientHello('notexample.com').kind, 'reset');
    assert.equal(p.onClientHello('inline.example').kind, 'reset');
    assert.equal(p.onClientHello('slow.example').kind, 'throttle');
    assert.equal(p.onHttpRequest('news.example', '/').kind, 'reset');
    assert.equal(p.onHttpRequest('ok.example', '/%E5%A4%A9%E5%AE%89%E9%97%A8').kind, 'reset');
    assert.equal(p.onHttpRequest('ok.example', '/FaLuN').kind, 'reset');
    assert.equal(p.onHttpRequest('page.example', '/').kind, 'blockpage');
    assert.equal(p.onHttpRequest('ok.example', '/fa').kind, 'pass');
    // The running loopback lab's injectors use the same lists: a query to the silent address.
    const lab = await startLab(s);
    try {
      const [host, port] = lab.silentDns.split(':');
      const sock = dgram.createSocket('udp4');
      const got = await new Promise<dnsPacket.Packet>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no injected reply')), 3000);
        sock.on('message', (m) => {
          clearTimeout(t);
          resolve(dnsPacket.decode(m));
        });
        sock.send(
          dnsPacket.encode({
            type: 'query',
            id: 7,
            flags: dnsPacket.RECURSION_DESIRED,
            questions: [{ type: 'A', name: 'www.blocked.example' }],
          }),
          Number(port),
          host,
        );
      });
      sock.close();
      assert.equal(got.answers?.[0]?.type, 'A');
    } finally {
      await lab.close();
    }
    assert.throws(
      () => parseScenario(yaml.replace('sni.txt', 'nope.txt'), join(dir, 'lists.yaml')),
      /sni_reset\.rules_file: cannot read the list/,
    );
    assert.throws(
      () =>
        parseScenario(yaml.replace("rules: ['^inline\\.example$'], rules_file: [sni.txt]", 'fingerprint: henan'), join(dir, 'lists.yaml')),
      /missing required key 'rules' \(or 'rules_file'\)/,
    );
  });
});
