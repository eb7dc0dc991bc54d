// The udp-batch addon (native/udp-batch) on loopback, and the scan's batched socket over it: real
// sockets against a dgram echo server. The addon must be built (scripts/setup.sh builds it).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import dnsPacket from 'dns-packet';
import { BatchScanSocket, loadUdpBatch, UDP_BATCH_PATH, type UdpBatchClass } from './scan-dns-io.js';

let UdpBatch: UdpBatchClass;
let echo: dgram.Socket;
let echoPort: number;
let echoed = 0;

const until = async (what: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

before(async () => {
  const l = loadUdpBatch();
  assert.ok(l.UdpBatch, `${l.reason} (bash scripts/setup.sh builds it)`);
  UdpBatch = l.UdpBatch;
  echo = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
  echo.on('message', (msg, r) => {
    echoed++;
    echo.send(msg, r.port, r.address);
  });
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
  echoPort = echo.address().port;
});
after(() => echo.close());

describe('udp-batch addon', () => {
  it('sends many datagrams per call and hands back every reply with its length, IP TTL and source', async () => {
    const got: Array<{ data: Buffer; ttl: number; addr: number; port: number }> = [];
    const s = new UdpBatch(
      '127.0.0.1',
      echoPort,
      (data, meta, n) => {
        assert.equal(meta.length, n * 4);
        let off = 0;
        for (let i = 0; i < n; i++) {
          got.push({
            data: Buffer.from(data.subarray(off, off + meta[4 * i]!)),
            ttl: meta[4 * i + 1]!,
            addr: meta[4 * i + 2]! >>> 0,
            port: meta[4 * i + 3]!,
          });
          off += meta[4 * i]!;
        }
        assert.equal(off, data.length); // back to back, nothing else
      },
      1 << 20,
      1 << 20,
      true,
    );
    try {
      // 300 datagrams of different lengths (one empty, one of the largest UDP payload) in one call.
      const lens = new Uint32Array(300).map((_, i) => (i === 0 ? 0 : i === 1 ? 65507 : 1 + ((i * 37) % 500)));
      const buf = Buffer.alloc(lens.reduce((a, b) => a + b, 0));
      for (let i = 0; i < buf.length; i++) buf[i] = (i * 13) & 0xff;
      let sent = 0;
      for (let from = 0; from < 300; from += 100) {
        // From the middle of the buffer: the lengths say where each datagram starts.
        const start = lens.subarray(0, from).reduce((a, b) => a + b, 0);
        sent += s.send(buf.subarray(start), lens.slice(from, from + 100), 100);
        await until(() => got.length >= sent);
      }
      assert.equal(sent, 300);
      let off = 0;
      const want = [...lens].map((len) => buf.subarray(off, (off += len)));
      assert.deepEqual(got.map((g) => g.data.toString('hex')).sort(), want.map((w) => w.toString('hex')).sort());
      for (const g of got) assert.deepEqual([g.ttl, g.addr, g.port], [64, 0x7f000001, echoPort]); // loopback sends TTL 64
      assert.deepEqual(s.address().address, '127.0.0.1');
      assert.ok(s.address().port > 0);
    } finally {
      s.close();
    }
  });

  it('gives TTL -1 when not asked to read it, and keeps sending after an ICMP port unreachable', async () => {
    // A port nothing listens on: each datagram draws an ICMP error, which a connected socket
    // reports on its next call; sends go on and no exception escapes.
    const dead = dgram.createSocket('udp4');
    await new Promise<void>((r) => dead.bind(0, '127.0.0.1', r));
    const deadPort = dead.address().port;
    dead.close();
    const s = new UdpBatch('127.0.0.1', deadPort, () => assert.fail('nothing answers there'), 0, 0, false);
    try {
      for (let k = 0; k < 5; k++) {
        assert.equal(s.send(Buffer.alloc(30), new Uint32Array([10, 10, 10]), 3), 3);
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      s.close();
    }
    let ttl = 0;
    const t = new UdpBatch('127.0.0.1', echoPort, (_d, meta) => (ttl = meta[1]!), 0, 0, false);
    try {
      assert.equal(t.send(Buffer.from('hi'), new Uint32Array([2]), 1), 1);
      await until(() => ttl !== 0);
      assert.equal(ttl, -1);
    } finally {
      t.close();
    }
  });

  it('throws on bad arguments and once closed', () => {
    const cb = () => undefined;
    const bad: Array<[unknown[], RegExp]> = [
      [['example.com', 53, cb, 0, 0, false], /IPv4 address/],
      [['::1', 53, cb, 0, 0, false], /IPv4 address/],
      [[127, 53, cb, 0, 0, false], /IPv4 address/],
      [['127.0.0.1', 0, cb, 0, 0, false], /port/],
      [['127.0.0.1', 70000, cb, 0, 0, false], /port/],
      [['127.0.0.1', 53.5, cb, 0, 0, false], /port/],
      [['127.0.0.1', 53, 'cb', 0, 0, false], /onReplies/],
      [['127.0.0.1', 53, cb, -1, 0, false], /buffer sizes/],
      [['127.0.0.1', 53, cb, 0, 0, 1], /wantTtl/],
      [['127.0.0.1', 53], /expected/],
    ];
    const Ctor = UdpBatch as unknown as new (...a: unknown[]) => unknown;
    for (const [args, msg] of bad) assert.throws(() => new Ctor(...args), msg, JSON.stringify(args));
    const s = new UdpBatch('127.0.0.1', echoPort, cb, 0, 0, false);
    const send = s.send.bind(s) as (...a: unknown[]) => number;
    assert.throws(() => send('abc', new Uint32Array([3]), 1), /buf must be a Buffer/);
    assert.throws(() => send(Buffer.alloc(3), [3], 1), /Uint32Array/);
    assert.throws(() => send(Buffer.alloc(3), new Int32Array([3]), 1), /Uint32Array/);
    assert.throws(() => send(Buffer.alloc(3), new Uint32Array([3]), 2), /count/);
    assert.throws(() => send(Buffer.alloc(3), new Uint32Array([3]), -1), /count/);
    assert.throws(() => send(Buffer.alloc(3), new Uint32Array([4]), 1), /more than buf holds/);
    assert.throws(() => send(Buffer.alloc(70000), new Uint32Array([65508]), 1), /65507/);
    assert.throws(
      () => (UdpBatch.prototype.send as (...a: unknown[]) => number).call({}, Buffer.alloc(1), new Uint32Array([1]), 1),
      /not a UdpBatch|Illegal invocation/,
    );
    assert.equal(send(Buffer.alloc(3), new Uint32Array([3]), 0), 0);
    s.close();
    s.close(); // idempotent
    assert.throws(() => send(Buffer.alloc(3), new Uint32Array([3]), 1), /closed/);
    assert.throws(() => s.address(), /closed/);
  });

  it('closes a socket left open when its worker thread ends, and one dropped unclosed at garbage collection', async () => {
    // Workers that open a socket and end with it open: by process.exit() inside the reply callback,
    // and by terminate() from outside. The addon's cleanup hook closes it (else Node aborts the process).
    const code = (onReply: string) => `
      const { parentPort, workerData } = require('node:worker_threads');
      const m = { exports: {} };
      process.dlopen(m, workerData.path);
      const s = new m.exports.UdpBatch('127.0.0.1', workerData.port, () => { ${onReply} }, 0, 0, true);
      s.send(Buffer.from('x'), new Uint32Array([1]), 1);`;
    const workerData = { path: UDP_BATCH_PATH, port: echoPort };
    for (let k = 0; k < 3; k++) {
      const w = new Worker(code('process.exit(7)'), { eval: true, workerData });
      assert.equal(await new Promise<number>((r) => w.once('exit', r)), 7);
      const t = new Worker(code("parentPort.postMessage('reply')"), { eval: true, workerData });
      await new Promise((r) => t.once('message', r));
      assert.equal(await t.terminate(), 1);
    }
    // Dropped without close(): the finalizer closes it. Its open handle would keep this process
    // alive, so the test file ending at all (node --test waits for it) shows it was closed.
    new UdpBatch('127.0.0.1', echoPort, () => undefined, 0, 0, false).send(Buffer.from('y'), new Uint32Array([1]), 1);
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    for (let k = 0; k < 3; k++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});

describe("the scan's batched socket (BatchScanSocket)", () => {
  it('stages queries past its first size and sends them all in one flush, in order; replies come back with their TTL', async () => {
    const replies: Array<{ id: number; ttl: number | null }> = [];
    const before = echoed;
    const s = new BatchScanSocket(UdpBatch, '127.0.0.1', echoPort, true, (msg, at, ttl) => {
      assert.ok(at > 0);
      replies.push({ id: msg.readUInt16BE(0), ttl });
    });
    try {
      const seen: string[] = [];
      const order = (msg: Buffer) => seen.push((dnsPacket.decode(msg).questions ?? [])[0]!.name);
      echo.on('message', order);
      for (let i = 0; i < 3000; i++) s.query(`n${i}.example`, i % 2 ? 'MX' : 'A', i);
      assert.equal(echoed, before, 'nothing leaves before the flush');
      assert.equal(s.flush(), true);
      await until(() => replies.length === 3000);
      echo.off('message', order);
      assert.deepEqual(
        seen,
        Array.from({ length: 3000 }, (_, i) => `n${i}.example`),
      );
      assert.deepEqual(
        replies.map((r) => r.id),
        Array.from({ length: 3000 }, (_, i) => i),
      );
      assert.ok(replies.every((r) => r.ttl === 64));
      assert.equal(s.flush(), true); // nothing staged
    } finally {
      await s.close();
    }
  });
});
