import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { createInterface } from 'node:readline';
import type { CapturedOperation, Measurement, WebConnectivityTestKeys } from '../model/index.js';
import net from 'node:net';
import { captureAvailable } from './capture.js';
import { measureMany } from './runner.js';

const execFileP = promisify(execFile);
const root = fileURLToPath(new URL('../../..', import.meta.url));
const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const fixture = fileURLToPath(new URL('../testing/capture-fixture.js', import.meta.url));

const tag = `wsc${process.pid % 100000}`;
const NS_C = `${tag}-c`;
const NS_S = `${tag}-s`;
const VETH_C = `${tag}c`;
const VETH_S = `${tag}s`;
const CLIENT = '198.18.0.1';
const SERVER = '198.18.0.2';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

function removeNamespaces(): void {
  // Deleting a namespace deletes the veth end inside it, and with it the peer.
  for (const ns of [NS_C, NS_S]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

interface Injected {
  clientPort: number;
  serverPort: number;
  ttl: number;
  ip_id: number;
  df: boolean;
  seq_offset: number;
  window: number;
  payload_hex: string;
}

const can = captureAvailable();
const skip = !can.ok ? can.reason : spawnSync('ip', ['-V']).status !== 0 ? 'iproute2 is missing' : false;

describe('measure --capture (two network namespaces, an on-path injector)', { skip }, () => {
  it('records exactly the injected resets and DNS replies, field by field', async () => {
    let injector: ChildProcess | null = null;
    const onExit = (): void => removeNamespaces();
    process.once('exit', onExit);
    removeNamespaces();
    try {
      ip('netns', 'add', NS_C);
      ip('netns', 'add', NS_S);
      ip('link', 'add', VETH_C, 'type', 'veth', 'peer', 'name', VETH_S);
      ip('link', 'set', VETH_C, 'netns', NS_C);
      ip('link', 'set', VETH_S, 'netns', NS_S);
      ip('-n', NS_C, 'addr', 'add', `${CLIENT}/30`, 'dev', VETH_C);
      ip('-n', NS_S, 'addr', 'add', `${SERVER}/30`, 'dev', VETH_S);
      for (const [ns, dev] of [
        [NS_C, VETH_C],
        [NS_S, VETH_S],
      ] as const) {
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        ip('-n', ns, 'link', 'set', dev, 'up');
      }
      const inj = spawn('ip', ['netns', 'exec', NS_S, process.execPath, fixture, VETH_S, SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
      injector = inj;
      const injected: Injected[] = [];
      const ready = new Promise<void>((resolve, reject) => {
        const lines = createInterface({ input: inj.stdout! });
        lines.on('line', (l) => (l === 'ready' ? resolve() : injected.push(JSON.parse(l) as Injected)));
        inj.once('exit', (code) => reject(new Error(`injector exited early (${code})`)));
      });
      await ready;

      const urls = ['https://henan.test/', 'https://gfw.test:8443/', `http://${SERVER}:9/`];
      // Asynchronously, so that the injector's report lines are read while the probe runs.
      const run = await execFileP(
        'ip',
        [
          'netns',
          'exec',
          NS_C,
          process.execPath,
          cli,
          'measure',
          '--capture',
          '--json',
          '--no-attribution',
          '--no-fingerprints',
          '--concurrency',
          '1',
          '--resolver',
          `${SERVER}:53`,
          '--allow-net',
          '198.18.0.0/15',
          '--timeout',
          '3000',
          ...urls,
        ],
        { cwd: root, encoding: 'utf8', timeout: 60_000 },
      );
      const ms = run.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Measurement<WebConnectivityTestKeys>);
      const byUrl = new Map(ms.map((m) => [m.input, m.test_keys]));

      // Henan: one RST+ACK, TTL 58, IP ID 1, DF=0, the 10-byte payload, at the flow's expected seq.
      const henan = byUrl.get('https://henan.test/')!;
      assert.equal(henan.tls_handshakes?.[0]?.failure, 'connection_reset');
      const hs = henan.x_captured!.filter((c) => c.operation === 'tls_handshake');
      assert.equal(hs.length, 1, JSON.stringify(henan.x_captured));
      checkAgainst(hs[0]!, injected, 443, 1);
      assert.equal(hs[0]!.packets[0]!.payload_hex, '01020304050607080900');
      assert.equal(hs[0]!.packets[0]!.ttl, 58);
      assert.equal(hs[0]!.packets[0]!.ip_id, 1);
      assert.equal(hs[0]!.packets[0]!.df, false);
      assert.equal(hs[0]!.packets[0]!.tcp_header_length, 20);
      assert.equal(hs[0]!.transaction_id, henan.tls_handshakes![0]!.transaction_id);

      // GFW type II: three RST+ACKs, DF=1, seq base, base+1460, base+4380.
      const gfw = byUrl.get('https://gfw.test:8443/')!;
      const gs = gfw.x_captured!.filter((c) => c.operation === 'tls_handshake');
      assert.equal(gs.length, 1);
      checkAgainst(gs[0]!, injected, 8443, 3);
      assert.deepEqual(
        gs[0]!.packets.map((p) => p.seq_rel),
        [0, 1460, 4380],
      );

      // DNS: both replies to the A query (the second sent with TTL 58), and only those.
      for (const [name, tk] of [
        ['henan.test', henan],
        ['gfw.test', gfw],
      ] as const) {
        const d = tk.x_captured!.filter((c) => c.operation === 'dns');
        assert.equal(d.length, 1, JSON.stringify(tk.x_captured));
        assert.deepEqual(d[0]!.query, { hostname: name, query_type: 'A' });
        assert.equal(d[0]!.address, `${SERVER}:53`);
        assert.deepEqual(
          d[0]!.packets.map((p) => [p.dir, p.proto, p.ttl, p.src]),
          [
            ['in', 'udp', 64, `${SERVER}:53`],
            ['in', 'udp', 58, `${SERVER}:53`],
          ],
        );
        // t_ms is when the probe read each frame from its capture (the capture library gives no kernel
        // timestamp): a busy event loop may read the query and both replies in one go, so only the
        // order and the bound hold, not the fixture's 5 ms gap (0.26-0.33 ms seen under load).
        const [r1, r2] = [d[0]!.packets[0]!.t_ms, d[0]!.packets[1]!.t_ms];
        assert.ok(r1 >= 0 && r2 >= r1 && r2 < 500, `replies ${r1} and ${r2} ms after the query`);
      }

      // A refused connect: the SYN and the kernel's RST+ACK (TTL 64, DF, no payload).
      const refused = byUrl.get(`http://${SERVER}:9/`)!;
      const rc = refused.x_captured!.filter((c) => c.operation === 'tcp_connect');
      assert.equal(rc.length, 1);
      assert.deepEqual(
        rc[0]!.packets.map((p) => [p.dir, p.flags]),
        [
          ['out', 'SYN'],
          ['in', 'RST+ACK'],
        ],
      );
      assert.equal(rc[0]!.packets[1]!.ttl, 64);
      assert.equal(rc[0]!.packets[1]!.ack_rel, 0);
      // OONI keys unchanged: the same failures as without capture.
      assert.equal(refused.tcp_connect?.[0]?.status.failure, 'connection_refused');
      // Nothing unrelated: every packet belongs to the URL's endpoints or the resolver.
      for (const m of ms)
        for (const c of m.test_keys.x_captured ?? [])
          for (const p of c.packets) assert.ok(p.src.startsWith('198.18.0.') && p.dst.startsWith('198.18.0.'));
    } finally {
      if (injector?.pid && injector.exitCode === null) {
        injector.kill('SIGTERM');
        await new Promise((r) => injector!.once('exit', r));
      }
      removeNamespaces();
      process.removeListener('exit', onExit);
    }
    const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    assert.ok(!left.includes(tag), `namespaces left behind: ${left}`);
  });
});

/** The captured packets of one operation are exactly what the injector sent on that flow. */
function checkAgainst(c: CapturedOperation, injected: Injected[], serverPort: number, count: number): void {
  const clientPort = Number(c.packets[0]!.dst.split(':')[1]);
  const sent = injected.filter((i) => i.clientPort === clientPort && i.serverPort === serverPort);
  assert.equal(sent.length, count);
  assert.equal(c.count, count);
  assert.deepEqual(
    c.packets.map((p) => ({
      dir: p.dir,
      flags: p.flags,
      ttl: p.ttl,
      ip_id: p.ip_id,
      df: p.df,
      seq_rel: p.seq_rel,
      ack_rel: p.ack_rel,
      window: p.window,
      payload_hex: p.payload_hex,
    })),
    sent.map((i) => ({
      dir: 'in',
      flags: 'RST+ACK',
      ttl: i.ttl,
      ip_id: i.ip_id,
      df: i.df,
      seq_rel: i.seq_offset,
      ack_rel: 0,
      window: i.window,
      payload_hex: i.payload_hex,
    })),
  );
  assert.ok(c.trigger_t !== null && c.trigger_t > 0);
  for (const p of c.packets) assert.ok(p.t_ms >= 0 && p.t_ms < 1000, `arrival ${p.t_ms} ms after the ClientHello`);
}

const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

describe('measure --capture without root', { skip: asRoot ? false : 'needs root to start a process as another user' }, () => {
  it('says so in one line and measures as without it (same exit code, OONI keys)', async () => {
    const args = [
      'measure',
      '--json',
      '--no-attribution',
      '--no-fingerprints',
      '--allow-net',
      '127.0.0.0/8',
      '--timeout',
      '1000',
      'http://127.0.0.1:1/',
    ];
    const run = (extra: string[]) =>
      spawnSync(process.execPath, [cli, ...args.slice(0, 1), ...extra, ...args.slice(1)], {
        cwd: root,
        encoding: 'utf8',
        uid: 65534,
        gid: 65534,
        timeout: 30_000,
        env: { ...process.env, HOME: '/tmp' },
      });
    const plain = run([]);
    const withCapture = run(['--capture']);
    assert.equal(withCapture.status, plain.status, withCapture.stderr);
    assert.equal(
      withCapture.stderr,
      `measure: --capture ignored: packet capture needs root (raw sockets): run as root, or without --capture\n${plain.stderr}`,
    );
    const tk = (JSON.parse(withCapture.stdout) as Measurement<WebConnectivityTestKeys>).test_keys;
    assert.equal(tk.x_captured, undefined);
    assert.equal(tk.tcp_connect?.[0]?.status.failure, 'connection_refused');
  });
});

describe('measure --capture over a whole run: one shared capture per device', { skip: can.ok ? false : can.reason }, () => {
  it('gives each of 12 concurrent URLs to ONE address the reset of its own flow only', async () => {
    // A server that resets every connection once the client's first bytes arrive (a ClientHello).
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', () => s.resetAndDestroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.7', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const urls = Array.from({ length: 12 }, (_, i) => `https://127.0.0.7:${port}/${i}`);
      const out: Measurement<WebConnectivityTestKeys>[] = [];
      await measureMany(
        urls.map((url) => ({ url })),
        { capture: true, attribution: false, allowNet: ['127.0.0.0/8'], timeoutMs: 3000 },
        12,
        (r) => void (r.ok && out.push(r.measurement)),
      );
      assert.equal(out.length, 12);
      const clientPorts = new Set<string>();
      for (const m of out) {
        assert.equal(m.test_keys.tls_handshakes?.[0]?.failure, 'connection_reset', String(m.input));
        const hs = (m.test_keys.x_captured ?? []).filter((c) => c.operation === 'tls_handshake');
        assert.equal(hs.length, 1, `${m.input}: ${JSON.stringify(m.test_keys.x_captured)}`);
        const rst = hs[0]!.packets;
        assert.equal(rst.length, 1, JSON.stringify(rst));
        assert.equal(String(rst[0]!.flags).includes('RST'), true);
        clientPorts.add(rst[0]!.dst);
        assert.equal(m.test_keys.x_capture_failure, undefined);
      }
      assert.equal(clientPorts.size, 12, 'every measurement holds a different flow');
    } finally {
      server.close();
    }
  });
});
