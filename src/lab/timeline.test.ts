// Timelines (DESIGN.md "Timelines"): the scenario's `timeline:` is validated with located errors,
// scenarioAt() applies it, `lab truth --at` prints it, and a running lab follows it on real sockets.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { scenarioAt } from '../model/index.js';
import { repoRoot } from '../probe/index.js';
import { startLab, type Lab } from './lab.js';
import { nftAvailable } from './nft.js';
import { parseScenario, ScenarioError } from './scenario.js';

const YAML = String.raw`
name: timeline-test
world:
  sites:
    - domain: a.example
    - domain: b.example
    - domain: c.example
censors:
  - name: prov
    layer: regional
    sni_reset: { rules: ['^b\.example$'], residual_s: 0 }
  - name: gfw
    layer: national
    dns_injection: { rules: [], pool: [31.13.94.37] }
timeline:
  - at: 2
    censor: prov
    add: { sni_reset: { rules: ['^a\.example$'] }, http_reset: { host_rules: ['^a\.example$'] } }
    remove: { sni_reset: { rules: ['^b\.example$'] } }
  - at: 2
    censor: gfw
    add: { dns_injection: { rules: ['^c\.example$'] } }
`;

function problems(yaml: string): string {
  try {
    parseScenario(yaml, 'tl.yaml');
  } catch (e) {
    assert.ok(e instanceof ScenarioError);
    return e.message;
  }
  assert.fail('expected a ScenarioError');
}

describe('timeline: parsing and scenarioAt(s, t)', () => {
  it('applies every entry up to t, in time order', () => {
    const s = parseScenario(YAML, '/tmp/tl.yaml');
    assert.equal(s.timeline?.length, 2);
    const t0 = scenarioAt(s, 1.99);
    assert.deepEqual(t0.censors[0]!.sni_reset!.rules, ['^b\\.example$']);
    assert.equal(t0.censors[0]!.http_reset, undefined);
    assert.deepEqual(t0.censors[1]!.dns_injection!.rules, []);
    const t2 = scenarioAt(s, 2);
    assert.deepEqual(t2.censors[0]!.sni_reset!.rules, ['^a\\.example$']);
    assert.deepEqual(t2.censors[0]!.http_reset!.host_rules, ['^a\\.example$']);
    assert.deepEqual(t2.censors[1]!.dns_injection!.rules, ['^c\\.example$']);
    // a snapshot carries no timeline; an entry at 0 undone later stays undone
    assert.equal(t2.timeline, undefined);
    const undo = parseScenario(
      YAML.split('timeline:')[0] +
        'timeline:\n  - { at: 0, censor: prov, add: { null_route: [a.example] } }\n  - { at: 5, censor: prov, remove: { null_route: [a.example] } }\n',
      'tl.yaml',
    );
    assert.deepEqual(scenarioAt(undo, 5).censors[0]!.null_route, []);
    assert.deepEqual(scenarioAt(undo, 0).censors[0]!.null_route, ['a.example']);
    // the scenario itself is left as written
    assert.deepEqual(s.censors[0]!.sni_reset!.rules, ['^b\\.example$']);
  });

  it('reports bad entries with file:line:col and the key path', () => {
    const base = YAML.split('timeline:')[0] + 'timeline:\n';
    assert.match(
      problems(base + '  - { at: 1, censor: nobody, add: { null_route: [a.example] } }\n'),
      /^tl\.yaml:\d+:\d+: timeline\[0\]\.censor: no censor named 'nobody'/,
    );
    assert.match(
      problems(base + '  - { at: 1, censor: prov, remove: { sni_reset: { rules: [x] } } }\n'),
      /timeline\[0\]: 'x' is not in prov\.sni_reset\.rules at 1 s/,
    );
    assert.match(
      problems(base + '  - { at: 1, censor: prov, add: { throttle: { sni_rules: [x] } } }\n'),
      /timeline\[0\]: censor 'prov' declares no throttle/,
    );
    assert.match(
      problems(base + '  - { at: -1, censor: prov, add: { null_route: [a.example] } }\n'),
      /timeline\[0\]\.at: expected a number from 0/,
    );
    assert.match(
      problems(base + '  - { at: 1, censor: prov, add: { sni_reset: { rule: [x] } } }\n'),
      /timeline\[0\]\.add\.sni_reset\.rule: unknown key 'rule'/,
    );
    assert.match(
      problems(base + "  - { at: 1, censor: prov, add: { sni_reset: { rules: ['(('] } } }\n"),
      /timeline\[0\]\.add\.sni_reset\.rules\[0\]: not a valid regular expression/,
    );
    assert.match(problems(base + '  - { at: 1, censor: prov }\n'), /timeline\[0\]: an entry needs add or remove/);
    // null_route in the contract's {<key>: [...]} shape, and `at` as a duration
    const nr = parseScenario(base + "  - { at: '1.5m', censor: prov, add: { null_route: { domains: [a.example] } } }\n", 'tl.yaml');
    assert.deepEqual([nr.timeline![0]!.at, scenarioAt(nr, 90).censors[0]!.null_route], [90, ['a.example']]);
    // a removal before the addition it undoes is out of order
    assert.match(
      problems(
        base +
          '  - { at: 5, censor: prov, add: { null_route: [a.example] } }\n  - { at: 4, censor: prov, remove: { null_route: [a.example] } }\n',
      ),
      /:(\d+):\d+: timeline\[1\]: 'a\.example' is not in prov\.null_route at 4 s/,
    );
  });

  it('`wallscope lab truth FILE --at SECONDS` prints the truth at that lab time', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-tl-'));
    try {
      const file = join(dir, 'tl.yaml');
      writeFileSync(file, YAML);
      const run = (...args: string[]) =>
        spawnSync(process.execPath, [join(repoRoot, 'bin', 'wallscope.js'), 'lab', 'truth', file, ...args], { encoding: 'utf8' });
      const byUrl = (out: string) =>
        new Map(
          (JSON.parse(out) as { targets: Array<{ url: string; expect: { mechanism: string } }> }).targets.map((t) => [
            t.url,
            t.expect.mechanism,
          ]),
        );
      const before = run('--at', '1');
      assert.equal(before.status, 0, before.stderr);
      assert.equal(JSON.parse(before.stdout).at, 1);
      assert.deepEqual(
        [...byUrl(before.stdout)],
        [
          ['https://a.example/', 'none'],
          ['http://a.example/', 'none'],
          ['https://b.example/', 'tls.reset'],
          ['http://b.example/', 'none'],
          ['https://c.example/', 'none'],
          ['http://c.example/', 'none'],
        ],
      );
      const later = run('--at', '2');
      assert.deepEqual(
        [...byUrl(later.stdout)],
        [
          ['https://a.example/', 'tls.reset'],
          ['http://a.example/', 'http.reset'],
          ['https://b.example/', 'none'],
          ['http://b.example/', 'none'],
          ['https://c.example/', 'dns.injection'],
          ['http://c.example/', 'dns.injection'],
        ],
      );
      const bad = run('--at', 'soon');
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /--at: expected seconds of lab time/);
      assert.equal(bad.stdout, '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

type Outcome = 'ok' | string;

function tlsTry(lab: Lab, domain: string, localAddress: string): Promise<Outcome> {
  const site = lab.sites.find((s) => s.domain === domain)!;
  return new Promise((resolve) => {
    const s = tls.connect({
      host: site.address,
      port: site.httpsPort!,
      servername: domain,
      ca: [lab.ca.certPem],
      localAddress,
    } as tls.ConnectionOptions);
    s.setTimeout(3000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('secureConnect', () => {
      s.destroy();
      resolve('ok');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

function httpTry(lab: Lab, domain: string, localAddress: string): Promise<Outcome> {
  const site = lab.sites.find((s) => s.domain === domain)!;
  return new Promise((resolve) => {
    const s = net.connect({ host: site.address, port: site.httpPort!, localAddress }, () =>
      s.write(`GET / HTTP/1.1\r\nHost: ${domain}\r\nConnection: close\r\n\r\n`),
    );
    let data = '';
    s.setTimeout(3000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('data', (d: Buffer) => (data += d.toString('latin1')));
    s.on('end', () => resolve(data.startsWith('HTTP/1.1 200') ? 'ok' : data.slice(0, 40)));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** How many answers the ISP resolver's address gets for `name` (injected ones race ahead of the genuine one). */
function dnsAnswers(lab: Lab, name: string): Promise<number> {
  const [host, port] = lab.resolver.split(':');
  const sock = dgram.createSocket('udp4');
  let n = 0;
  sock.on('message', (m) => (n += (dnsPacket.decode(m).answers ?? []).length));
  sock.send(
    dnsPacket.encode({ id: 7, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] }),
    Number(port),
    host,
  );
  return new Promise((r) => setTimeout(() => sock.close(() => r(n)), 300));
}

describe('startLab() follows the timeline on real sockets', () => {
  let lab: Lab;
  const changes: number[] = [];
  before(async () => {
    lab = await startLab(parseScenario(YAML, '/tmp/tl.yaml'), { standardPorts: false, onTimeline: (at) => changes.push(at) });
  });
  after(() => lab.close());

  it('a rule added at t=2 s blocks after it, a rule removed at t=2 s unblocks', async () => {
    assert.ok(Date.now() - lab.startedAt < 1500, 'the lab came up too slowly for this test');
    let client = 0;
    assert.equal(await tlsTry(lab, 'a.example', lab.clientAddress(client++)), 'ok');
    assert.equal(await httpTry(lab, 'a.example', lab.clientAddress(client++)), 'ok');
    assert.equal(await tlsTry(lab, 'b.example', lab.clientAddress(client++)), 'ECONNRESET');
    assert.equal(await dnsAnswers(lab, 'c.example'), 1);
    assert.deepEqual(lab.truthAt(1).find((t) => t.url === 'https://b.example/')!.truth.mechanism, 'tls.reset');
    assert.deepEqual(changes, []);
    await new Promise((r) => setTimeout(r, Math.max(0, lab.startedAt + 2100 - Date.now())));
    assert.deepEqual(changes, [2]);
    assert.equal(await tlsTry(lab, 'a.example', lab.clientAddress(client++)), 'ECONNRESET');
    assert.equal(await httpTry(lab, 'a.example', lab.clientAddress(client++)), 'ECONNRESET');
    assert.equal(await tlsTry(lab, 'b.example', lab.clientAddress(client++)), 'ok');
    assert.equal(await dnsAnswers(lab, 'c.example'), 3); // the default two injectors + the genuine answer
    assert.deepEqual(lab.truthAt(2).find((t) => t.url === 'https://b.example/')!.truth.mechanism, 'none');
    assert.deepEqual(lab.truthAt(2).find((t) => t.url === 'https://a.example/')!.truth.mechanism, 'tls.reset');
  });
});

describe('startLab() follows a timeline of null routes (nftables, root)', () => {
  const nft = nftAvailable();
  it('installs the null route added at t=1.5 s and removes the one lifted then', { skip: nft.ok ? false : nft.reason }, async (t) => {
    const lab = await startLab(
      parseScenario(
        `name: nr\nworld:\n  sites:\n    - domain: a.example\n    - domain: b.example\ncensors:\n  - name: isp\n    layer: isp\n    null_route: [b.example]\ntimeline:\n  - { at: 1.5, censor: isp, add: { null_route: [a.example] }, remove: { null_route: [b.example] } }\n`,
        '/tmp/nr.yaml',
      ),
      { standardPorts: false },
    );
    t.after(() => lab.close());
    const connect = (domain: string) => {
      const site = lab.sites.find((s) => s.domain === domain)!;
      return new Promise<string>((resolve) => {
        const s = net.connect({ host: site.address, port: site.httpPort!, localAddress: lab.clientAddress(1) });
        s.setTimeout(800, () => (s.destroy(), resolve('timeout')));
        s.on('connect', () => (s.destroy(), resolve('ok')));
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
    };
    assert.equal(await connect('a.example'), 'ok');
    assert.equal(await connect('b.example'), 'timeout');
    await new Promise((r) => setTimeout(r, Math.max(0, lab.startedAt + 1600 - Date.now())));
    assert.equal(await connect('a.example'), 'timeout');
    assert.equal(await connect('b.example'), 'ok');
  });
});

describe('`wallscope lab up FILE` with a timeline', () => {
  it('prints each change as it applies it, and stops cleanly', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-tl-up-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'tl.yaml');
    writeFileSync(file, YAML.replace(/at: 2/g, 'at: 1'));
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'bin', 'wallscope.js'), 'lab', 'up', file, '--ephemeral-ports', '--ca-out', join(dir, 'ca.pem')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    const deadline = Date.now() + 30_000;
    while (!/timeline at 1 s: censor gfw add/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /lab "timeline-test" is up on 127\.\d+\.0\.0\/16/);
    assert.match(
      out,
      /timeline at 1 s: censor prov add \{"sni_reset":\{"rules":\["\^a\\\\\.example\$"\]\},"http_reset":\{"host_rules":\["\^a\\\\\.example\$"\]\}\} remove \{"sni_reset":\{"rules":\["\^b\\\\\.example\$"\]\}\}/,
    );
    assert.match(out, /timeline at 1 s: censor gfw add \{"dns_injection":\{"rules":\["\^c\\\\\.example\$"\]\}\}/);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 0, out);
    assert.match(out, /lab stopped; nothing left behind\./);
  });
});
