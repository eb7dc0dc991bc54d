import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { describe, it } from 'node:test';
import { peekClientHello } from './clienthello.js';

/** The first bytes node's real TLS client sends, captured by a raw server that never answers. */
async function captureHello(servername: string | undefined): Promise<Buffer> {
  const server = net.createServer();
  const got = new Promise<Buffer>((resolve) => {
    server.on('connection', (s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          resolve(buf);
          s.destroy();
        }
      });
      s.on('error', () => undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const c = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  c.on('error', () => undefined);
  const buf = await got;
  c.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return buf;
}

describe('peekClientHello(buf)', () => {
  it('reads the SNI of a real ClientHello, and null when none is sent', async () => {
    const hello = await captureHello('YouTube.com');
    assert.deepEqual(
      { ...peekClientHello(hello), extensions: undefined },
      { kind: 'hello', sni: 'youtube.com', fragmented: false, extensions: undefined },
    );
    // node sends no SNI for an IP address
    const none = await captureHello(undefined);
    const p = peekClientHello(none);
    assert.deepEqual({ ...p, extensions: undefined }, { kind: 'hello', sni: null, fragmented: false, extensions: undefined });
    assert.ok(p.kind === 'hello' && p.extensions.length > 3 && !p.extensions.includes(0), 'extensions listed, no server_name');
  });

  it('asks for more bytes on a partial record', async () => {
    const hello = await captureHello('a.example');
    for (const n of [0, 1, 4, 5, 40, hello.length - 1]) assert.equal(peekClientHello(hello.subarray(0, n)).kind, 'incomplete', `at ${n}`);
  });

  it('does not reassemble a handshake split across TLS records', async () => {
    const hello = await captureHello('a.example');
    const hs = hello.subarray(5);
    const half = Math.floor(hs.length / 2);
    const rec = (b: Buffer) => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, b.length >> 8, b.length & 255]), b]);
    const split = Buffer.concat([rec(hs.subarray(0, half)), rec(hs.subarray(half))]);
    assert.deepEqual(peekClientHello(split), { kind: 'hello', sni: null, fragmented: true, extensions: [] });
  });

  it('says not-tls for HTTP and never throws on hostile bytes', () => {
    assert.equal(peekClientHello(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'not-tls');
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255;
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(5 + (i % 300));
      for (let j = 0; j < b.length; j++) b[j] = rnd();
      b[0] = 0x16;
      b[1] = 0x03;
      b.writeUInt16BE(b.length - 5, 3);
      b[5] = 0x01;
      const r = peekClientHello(b);
      assert.ok(['hello', 'not-tls'].includes(r.kind));
    }
  });
});
