// netns mode with third-party witnesses: Debian's curl, dig and tcpdump run in the client namespace
// and are censored on path like the probe; `lab up --netns` prints commands that work as printed;
// a lab killed with SIGKILL leaves nothing that `lab clean` does not remove; bad input is refused.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../../probe/index.js';
import { parseScenario } from '../scenario.js';
import { startWitnessLab, runCommand, type WitnessLab } from '../../testing/netns-witness.js';
import { startNetnsLab, type NetnsLab } from './netns-lab.js';
import { netnsMissing, NETNS_PREFIX } from './topology.js';

const missing = netnsMissing();
const skip = missing.length ? `netns mode needs ${missing.join(', ')}` : false;
const BIN = join(repoRoot, 'bin', 'wallscope.js');

const SCENARIO = `
name: witnesses
seed: 3
world:
  sites:
    - domain: open.example
    - domain: youtube.com
    - domain: 011.com
  resolvers: { isp: {}, public: {} }
censors:
  - name: henan
    layer: regional
    sni_reset: { rules: ['011\\.com$'], fingerprint: henan }
    http_reset: { host_rules: ['011\\.com$'] }
  - name: gfw
    layer: national
    dns_injection: { rules: ['(^|\\.)youtube\\.com$'], injectors: 2 }
    sni_reset: { rules: ['(^|\\.)youtube\\.com$'], fingerprint: gfw-type-2 }
`;

const LOCATE_SCENARIO = `
name: locate
world:
  sites:
    - domain: both.example
  resolvers: { isp: {}, public: {} }
censors:
  - name: henan
    layer: regional
    hop: 3
    sni_reset: { rules: ['(^|\\.)both\\.example$'], fingerprint: henan }
    http_reset: { host_rules: ['(^|\\.)both\\.example$'] }
  - name: gfw
    layer: national
    hop: 5
    dns_injection: { rules: ['(^|\\.)both\\.example$'], injectors: 2 }
    sni_reset: { rules: ['(^|\\.)both\\.example$'], fingerprint: gfw-type-2 }
    http_reset: { host_rules: ['(^|\\.)both\\.example$'] }
`;

/** tcpdump in the client namespace as an independent witness: what it printed once stopped (or done). */
function tcpdump(ns: string, args: string[]): { ready: Promise<void>; stop(): Promise<string> } {
  const p = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-l', '-i', 'right', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  // tcpdump says "listening on ..." on stderr once its capture is open.
  const ready = new Promise<void>((r) => {
    p.stderr.on('data', (d: Buffer) => d.toString().includes('listening') && r());
    void exited.then(r);
  });
  return {
    ready,
    async stop() {
      await new Promise((r) => setTimeout(r, 300)); // late packets
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGINT');
      await exited;
      return out;
    },
  };
}

const ourNamespaces = (pid: number) =>
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((l) => l.startsWith(`${NETNS_PREFIX}${pid}-`));

describe('netns lab: third-party clients in the client namespace', { skip }, () => {
  let lab: NetnsLab;
  let ca: string;
  let witness: WitnessLab | undefined;
  before(async () => {
    witness = await startWitnessLab(SCENARIO, 'witnesses');
    ({ lab, ca } = witness);
  });
  after(async () => {
    await witness?.close();
  });
  const addr = (d: string) => lab.sites.find((s) => s.domain === d)!.address;

  it('curl loads an unblocked site over https (getaddrinfo asks the lab through resolv.conf)', async () => {
    const r = await runCommand(
      lab.inClient(['curl', '-sS', '-m', '8', '--cacert', ca, '-o', '/dev/null', '-w', '%{http_code}', 'https://open.example/']),
    );
    assert.equal(r.stdout, '200', r.stderr);
  });

  it("curl gets Henan's reset for a blocked HTTP Host, and tcpdump sees its fingerprint (one RST+ACK, TTL 58, IP ID 1, DF=0, 10-byte payload)", async () => {
    const dump = tcpdump(lab.topology.client, ['-nv', '-c', '4', 'tcp[tcpflags] & tcp-rst != 0 and src port 80']);
    await dump.ready;
    const r = await runCommand(lab.inClient(['curl', '-sS', '-m', '8', '-o', '/dev/null', 'http://011.com/']));
    assert.equal(r.code, 56, `curl: ${r.stderr}`); // CURLE_RECV_ERROR: connection reset by peer
    const seen = await dump.stop();
    const rsts = seen.split('\n').filter((l) => /\bttl \d+, id \d+/.test(l));
    assert.equal(rsts.length, 1, seen);
    assert.match(rsts[0]!, /ttl 58, id 1, offset 0, flags \[none\]/);
    assert.match(seen, /Flags \[R\.\].*length 10/);
  });

  it('curl gets the GFW type II resets for a blocked SNI (three RST+ACKs, DF set)', async () => {
    const dump = tcpdump(lab.topology.client, ['-nv', '-c', '6', 'tcp[tcpflags] & tcp-rst != 0 and src port 443']);
    await dump.ready;
    const r = await runCommand(
      lab.inClient([
        'curl',
        '-sS',
        '-m',
        '8',
        '--cacert',
        ca,
        '--resolve',
        `youtube.com:443:${addr('youtube.com')}`,
        'https://youtube.com/',
      ]),
    );
    assert.equal(r.code, 35, `curl: ${r.stderr}`); // CURLE_SSL_CONNECT_ERROR: reset during the handshake
    const seen = await dump.stop();
    const rsts = seen.split('\n').filter((l) => /\bttl \d+, id \d+/.test(l));
    // The genuine server never resets: every RST the client saw is the injector's.
    assert.equal(rsts.length, 3, seen);
    for (const l of rsts) assert.match(l, /flags \[DF\]/);
  });

  it('dig is answered by the two injectors ahead of the genuine resolver (three replies to one query)', async () => {
    const dump = tcpdump(lab.topology.client, ['-n', '-c', '3', 'udp and src port 53']);
    await dump.ready;
    const r = await runCommand(lab.inClient(['dig', '+tries=1', '+time=3', 'youtube.com']));
    assert.equal(r.code, 0, r.stderr);
    const seen = await dump.stop();
    const replies = seen.split('\n').filter((l) => / A \d+\.\d+\.\d+\.\d+/.test(l));
    assert.equal(replies.length, 3, seen);
    // dig takes the first: a forged address (the remapped pool), not the site's.
    assert.match(r.stdout, /youtube\.com\.\s+\d+\s+IN\s+A\s+198\.19\.10\d\.\d+/);
    assert.ok(replies.filter((l) => new RegExp(`A ${addr('youtube.com').replace(/\./g, '\\.')}\\b`).test(l)).length === 1, seen);
  });
});

describe('wallscope locate in the netns lab', { skip }, () => {
  it("finds each injector's hop exactly: Henan at hop 3 (SNI and HTTP), the GFW's resets and both DNS injectors at hop 5, the TTL copier included", async () => {
    const lab = await startNetnsLab(parseScenario(LOCATE_SCENARIO, join(tmpdir(), 'locate.yaml')));
    try {
      const site = lab.sites.find((x) => x.domain === 'both.example')!.address;
      const r = await runCommand(
        lab.inClient([
          process.execPath,
          BIN,
          'locate',
          'https://both.example/',
          '--mechanism',
          'all',
          '--resolver',
          lab.silentDns,
          '--address',
          site,
          '--allow-net',
          '198.18.0.0/15',
          '--max-ttl',
          '12',
          '--json',
        ]),
        120_000,
      );
      assert.equal(r.code, 0, r.stderr);
      const byMech = Object.fromEntries(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l))
          .map((x) => [x.mechanism, x]),
      );
      const hops = (m: string) =>
        byMech[m].injectors.map(
          (i: { hop: number; signature: string; ttl_behaviour: string }) => `${i.hop} ${i.signature} ${i.ttl_behaviour}`,
        );
      assert.deepEqual(hops('sni'), ['3 RST+ACK payload 01020304050607080900 fixed', '5 RST+ACK DF fixed']);
      assert.deepEqual(hops('http'), ['3 RST+ACK payload 01020304050607080900 fixed', '5 RST+ACK DF fixed']);
      // The copier answers only from TTL 9 (2h-1) and is still placed at hop 5.
      assert.deepEqual(hops('dns'), ['5 dns reply fixed', '5 dns reply copies-trigger']);
      assert.equal(byMech.dns.injectors[1].first_trigger_ttl, 9);
      assert.equal(byMech.sni.destination_hop, 6);
      assert.deepEqual(byMech.sni.routers, { 1: '198.18.0.2', 2: '198.18.1.2', 3: '198.18.2.2', 4: '198.18.3.2', 5: '198.18.4.2' });
    } finally {
      await lab.close();
    }
  });
});

describe('the FET censor on path in the netns lab', { skip }, () => {
  it('drops a non-exempt flow in the router (kernel sets), then the residual; `fet test` in the client namespace says active', async () => {
    const events: string[] = [];
    const lab = await startNetnsLab(
      parseScenario(
        'name: fet\nseed: 5\nworld:\n  sites: [{ domain: plain.example }]\n  services: [{ name: sink, kind: sink, port: 9000 }]\n  resolvers: { isp: {}, public: {} }\ncensors:\n  - { name: gfw, layer: national, fet: { rate: 1, residual_s: 2 } }\n',
        join(tmpdir(), 'fet.yaml'),
      ),
      { log: (e) => events.push(`${e.action} ${e.name}`) },
    );
    try {
      const sink = lab.services.find((x) => x.name === 'sink')!;
      const r = await runCommand(
        lab.inClient([
          process.execPath,
          BIN,
          'fet',
          'test',
          `${sink.address}:${sink.port}`,
          '--residual-step',
          '500',
          '--max-residual',
          '10',
          '--timeout',
          '1000',
        ]),
        120_000,
      );
      assert.equal(r.code, 0, r.stderr);
      const k = JSON.parse(r.stdout).test_keys;
      assert.equal(k.x_fet_verdict, 'active', r.stderr);
      assert.ok(events.includes('fet blocked'), events.join(','));
      // Residual: the router dropped flows to the same (client, server, port) without a new draw.
      assert.ok(k.x_fet_residual_s >= 2 && k.x_fet_residual_s <= 5, `residual ${k.x_fet_residual_s}`);
    } finally {
      await lab.close();
    }
  });
});

describe('wallscope lab up --netns / lab clean', { skip }, () => {
  it('prints commands that work as printed, and after a kill -9 `lab clean` removes every namespace', async () => {
    const up = spawn(process.execPath, [BIN, 'lab', 'up', '--netns', join(repoRoot, 'scenarios', 'design-example.yaml')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    up.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const deadline = Date.now() + 60_000;
      while (!out.includes('Ctrl-C to stop.') && Date.now() < deadline && up.exitCode === null)
        await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /Ctrl-C to stop\./, out);
      assert.equal(ourNamespaces(up.pid!).length, 4); // client, henan, gfw, internet
      const printed = out.split('\n').filter((l) => l.trim().startsWith('ip netns exec '));
      assert.equal(printed.length, 3, out);
      for (const line of printed) {
        const r = await runCommand(['sh', ['-c', line.trim()]], 30_000);
        assert.equal(r.code, 0, `${line.trim()}: ${r.stderr}`);
      }
      assert.match((await runCommand(['sh', ['-c', printed[2]!.trim()]], 30_000)).stdout, /www\.example\.org/);
    } finally {
      up.kill('SIGKILL');
      await new Promise((r) => up.once('exit', r));
    }
    // The children notice their parent is gone (stdin closes) and exit; the namespaces stay until swept.
    assert.equal(ourNamespaces(up.pid!).length, 4);
    const clean = await runCommand([process.execPath, [BIN, 'lab', 'clean']], 30_000);
    assert.equal(clean.code, 0, clean.stderr);
    // `lab clean` removes them, unless another lab's start-up sweep (the library test runs labs
    // meanwhile) already did: both remove what a dead lab left.
    const removed = /removed (\d+) namespace\(s\)(?: \(([^)]*)\))?/.exec(clean.stdout);
    assert.ok(removed, clean.stdout);
    if (removed[1] !== '0') assert.ok((removed[2] ?? '').includes(`${NETNS_PREFIX}${up.pid}-`), clean.stdout);
    assert.deepEqual(ourNamespaces(up.pid!), []);
    // Its children (their configuration files carry the lab's pid) are gone too; other labs may run.
    assert.equal(
      spawnSync('sh', ['-c', `ps -eo args | grep -c "[n]etns/child.js .*wallscope-netns-${up.pid}-"`], { encoding: 'utf8' }).stdout.trim(),
      '0',
    );
  });

  it('refuses a scenario netns mode cannot honour, naming the key, and leaves nothing behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-netns-bad-'));
    try {
      const f = join(dir, 'fixed.yaml');
      writeFileSync(f, 'name: fixed\nworld:\n  sites:\n    - domain: a.example\n      addresses: [127.9.1.1]\n');
      const r = await runCommand([process.execPath, [BIN, 'lab', 'eval', '--netns', f]], 30_000);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /world\.sites\[0\]\.addresses/);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      // The scenario is refused before any namespace exists (other labs may be running meanwhile).
      assert.deepEqual(ourNamespaces(r.pid), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without root, --netns says what is missing and exits non-zero', async () => {
    const r = await runCommand(
      [
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          process.execPath,
          BIN,
          'lab',
          'eval',
          '--netns',
          join(repoRoot, 'scenarios', 'design-example.yaml'),
        ],
      ],
      30_000,
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /--netns needs root/);
  });
});
