import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../probe/index.js';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(repoRoot, 'bin', 'wallscope.js'), 'fet', ...args], { maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const canCapture = process.getuid?.() === 0 && spawnSync('tcpdump', ['--version']).status === 0;

/** A real capture by Debian's tcpdump of one loopback connection whose client sends `payload` first. */
async function capture(file: string, payload: Buffer): Promise<{ clientPort: number; serverPort: number }> {
  const server = net.createServer((s) => {
    s.on('data', () => undefined);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const serverPort = (server.address() as net.AddressInfo).port;
  const dump = spawn('tcpdump', ['-i', 'lo', '-U', '-n', '-w', file, `tcp port ${serverPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('tcpdump did not start')), 10_000);
      dump.stderr.on('data', (d: Buffer) => {
        if (/listening on/.test(d.toString())) {
          clearTimeout(t);
          resolve();
        }
      });
      dump.on('exit', () => {
        clearTimeout(t);
        reject(new Error('tcpdump exited'));
      });
    });
    // tcpdump says "listening" a moment before its filter sees packets.
    await new Promise((r) => setTimeout(r, 700));
    const c = net.connect(serverPort, '127.0.0.1');
    await new Promise((r) => c.on('connect', r));
    const clientPort = c.localPort!;
    c.write(payload);
    await new Promise((r) => setTimeout(r, 100));
    c.write(Buffer.from('later segment, never inspected'));
    await new Promise((r) => setTimeout(r, 300));
    c.destroy();
    await new Promise((r) => setTimeout(r, 300));
    return { clientPort, serverPort };
  } finally {
    dump.kill('SIGTERM');
    if (dump.exitCode === null) await new Promise((r) => dump.on('exit', r));
    await new Promise<void>((r) => server.close(() => r()));
  }
}

describe('wallscope fet classify', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-fet-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('hex arguments give one JSON line each with the contract keys', async () => {
    const r = await run(['classify', '--json', '16030100ff', '0f'.repeat(10), '0x47 45 54 20 1f 1f 1f 1f 1f 1f 1f 1f']);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(rows.length, 3);
    for (const k of ['exempt', 'reason', 'popcount_per_byte', 'printable_share', 'longest_printable_run']) assert.ok(k in rows[0]!, k);
    assert.deepEqual(
      rows.map((x) => x.reason),
      ['popcount_low', null, 'http_prefix'],
    );
    assert.deepEqual(
      rows.map((x) => x.exempt),
      [true, false, true],
    );
  });

  test('a raw file; the human form names the reason and the figures', async () => {
    const f = join(dir, 'raw.bin');
    writeFileSync(f, Buffer.concat([Buffer.from('abcdef'), Buffer.alloc(14, 0x0f)]));
    const r = await run(['classify', '--file', f]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /exempt \(printable_prefix\); 20 bytes, popcount\/byte 3\.850, printable 30\.0%, longest printable run 6/);
  });

  test('non-hex, odd hex and nothing at all: one-line error, exit 2, nothing on stdout', async () => {
    const cases = [['classify', '0f0f', 'xyz'], ['classify', 'abc'], ['classify'], ['classify', '--flow', '1.2.3.4:1-5.6.7.8:2']];
    const results = await Promise.all(cases.map(run));
    for (const [i, args] of cases.entries()) {
      const r = results[i]!;
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^wallscope: /);
    }
  });

  test(
    'a pcap captured by tcpdump: the first client data segment of the first flow, or of --flow',
    { skip: canCapture ? false : 'needs root and tcpdump' },
    async () => {
      const f = join(dir, 'flow.pcap');
      const payload = Buffer.from(Array.from({ length: 40 }, (_, i) => (i % 2 ? 0x0f : 0x35)));
      const { clientPort, serverPort } = await capture(f, payload);
      const first = await run(['classify', '--json', '--pcap', f]);
      assert.equal(first.code, 0, first.stderr);
      const row = JSON.parse(first.stdout) as { reason: unknown; printable_share: number; length: number };
      assert.deepEqual([row.reason, row.printable_share, row.length], [null, 0.5, 40]);
      const named = await run(['classify', '--json', '--pcap', f, '--flow', `127.0.0.1:${clientPort}-127.0.0.1:${serverPort}`]);
      assert.equal(named.stdout, first.stdout);
      // The server never sent data: the reverse direction has none.
      const reverse = await run(['classify', '--pcap', f, '--flow', `127.0.0.1:${serverPort}-127.0.0.1:${clientPort}`]);
      assert.equal(reverse.code, 1);
      assert.match(reverse.stderr, /carries no client data/);
      // Cut short in the middle of a record: a truncation error, not a shorter packet.
      const whole = readFileSync(f);
      const cut = join(dir, 'cut.pcap');
      writeFileSync(cut, whole.subarray(0, whole.length - 7));
      const t = await run(['classify', '--json', '--pcap', cut, '--flow', `127.0.0.1:${serverPort}-127.0.0.1:${clientPort}`]);
      assert.equal(t.code, 1);
      assert.equal(t.stdout, '');
      assert.match(t.stderr, /^wallscope: --pcap .*truncated pcap: record \d+ at offset \d+ declares \d+ bytes, \d+ remain\n$/);
    },
  );

  test('a truncated header, pcapng and a file that is not a pcap are refused in one line', async () => {
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0]), /truncated pcap: 6 bytes/],
      [Buffer.concat([Buffer.from([0x0a, 0x0d, 0x0d, 0x0a]), Buffer.alloc(40)]), /pcapng is not supported/],
      [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /not a pcap file/],
    ];
    for (const [content, re] of cases) {
      const f = join(dir, 'bad.pcap');
      writeFileSync(f, content);
      const r = await run(['classify', '--pcap', f]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
  });
});

describe('wallscope fet sink / fet test', () => {
  test('an unreachable sink: one-line error, exit 1, nothing on stdout', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const r = await run(['test', `127.0.0.1:${port}`, '--timeout', '500']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^wallscope: 127\.0\.0\.1:\d+: the sink is unreachable \(connection_refused\)/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const bad = await run(['test', 'no-port-here']);
    assert.equal(bad.code, 2);
  });

  test('against our own sink on loopback (no censor): not active, an OONI measurement on stdout; the sink stops on SIGTERM', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const sink = spawn(process.execPath, [join(repoRoot, 'bin', 'wallscope.js'), 'fet', 'sink', '--listen', `127.0.0.1:${port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('sink did not start')), 20_000);
        sink.stderr.on('data', (d: Buffer) => {
          if (/listening on/.test(d.toString())) {
            clearTimeout(t);
            resolve();
          }
        });
      });
      const r = await run(['test', `127.0.0.1:${port}`, '--timeout', '1000']);
      assert.equal(r.code, 0, r.stderr);
      const m = JSON.parse(r.stdout) as { test_name: string; input: string; test_keys: Record<string, unknown> };
      assert.equal(m.test_name, 'x_fet');
      assert.equal(m.input, `127.0.0.1:${port}`);
      assert.equal(m.test_keys.x_fet_verdict, 'not_active');
      assert.equal((m.test_keys.x_fet_trials as unknown[]).length, m.test_keys.x_fet_trials_spent);
      assert.match(r.stderr, /not active \(sprt_not_active, confidence 0\.99\)/);
    } finally {
      sink.kill('SIGTERM');
      const code = await new Promise((r) => sink.on('exit', (c) => r(c)));
      assert.equal(code, 0);
    }
  });
});
