import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createCA, issueCert, type CA } from './ca.js';
import { startRawServer, startBlackhole, type Site } from '../testing/probe-servers.js';
import { tcpConnect } from './tcp.js';
import { tlsHandshake } from './tls.js';
import { NetPolicy } from './policy.js';
import { Trace } from './trace.js';

const policy = new NetPolicy(['127.0.0.0/8']);

async function tlsServer(
  cert: string,
  key: string,
): Promise<{ port: number; nextSni(): Promise<string | false | null>; close(): Promise<void> }> {
  const server = tls.createServer({ cert, key }, (s) => s.end());
  // The server's side may finish after the client's: wait for it.
  const nextSni = (): Promise<string | false | null> =>
    new Promise((r) => server.once('secureConnection', (s: tls.TLSSocket) => r(s.servername)));
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, nextSni, close: () => new Promise((r) => server.close(() => r())) };
}

async function handshake(port: number, serverName: string | null, ca: CA | null, verify = true, timeoutMs = 2000) {
  const trace = new Trace();
  const c = await tcpConnect('127.0.0.1', port, policy, { trace, timeoutMs: 1000 });
  assert.ok(c.socket, 'tcp connect');
  const r = await tlsHandshake(c.socket!, {
    trace,
    timeoutMs,
    serverName,
    verify,
    address: `127.0.0.1:${port}`,
    ...(ca ? { ca: [ca.certPem] } : {}),
  });
  // end(), not destroy(): let the client's Finished reach the server (TLS 1.3).
  r.socket?.end();
  return r;
}

describe('tlsHandshake(socket, opts)', () => {
  let ca: CA;
  let good: Awaited<ReturnType<typeof tlsServer>>;
  let expired: Awaited<ReturnType<typeof tlsServer>>;
  let goodLeafPem: string;
  const raws: Site[] = [];
  before(async () => {
    ca = await createCA();
    const leaf = await issueCert(ca, ['good.test']);
    goodLeafPem = leaf.certPem;
    good = await tlsServer(leaf.chainPem, leaf.keyPem);
    const old = await issueCert(ca, ['old.test'], {
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    expired = await tlsServer(old.chainPem, old.keyPem);
  });
  after(async () => {
    await good.close();
    await expired.close();
    await Promise.all(raws.map((s) => s.close()));
  });

  it('verifies against the extra CA and records version, cipher, ALPN and the chain', async () => {
    const sni = good.nextSni();
    const r = await handshake(good.port, 'good.test', ca);
    assert.equal(r.entry.failure, null);
    assert.match(r.entry.tls_version, /^TLSv1\.[23]$/);
    assert.ok(r.entry.cipher_suite.startsWith('TLS_'));
    assert.equal(r.entry.peer_certificates!.length, 2);
    assert.equal(r.entry.no_tls_verify, false);
    assert.equal(await sni, 'good.test');
  });

  it(`verifies without copying the chain when none is recorded (the helper): same outcomes, no decoding by node`, async () => {
    const run = async (port: number, name: string, withCa: boolean) => {
      const trace = new Trace();
      const c = await tcpConnect('127.0.0.1', port, policy, { trace, timeoutMs: 1000 });
      // Calls that reach node's getPeerCertificate: of the whole chain, of the leaf alone.
      const decodes = { chain: 0, leaf: 0 };
      const proto = tls.TLSSocket.prototype as unknown as { getPeerCertificate: (d?: boolean) => object };
      const real = proto.getPeerCertificate;
      proto.getPeerCertificate = function (this: tls.TLSSocket, d?: boolean) {
        if (d) decodes.chain++;
        else decodes.leaf++;
        return real.call(this, d);
      };
      try {
        const r = await tlsHandshake(c.socket!, {
          trace,
          timeoutMs: 2000,
          serverName: name,
          verify: true,
          recordChain: false,
          address: `127.0.0.1:${port}`,
          ...(withCa ? { ca: [ca.certPem] } : {}),
        });
        // After the handshake the socket's getPeerCertificate is node's again (no own override left).
        const restored = r.socket ? !Object.hasOwn(r.socket, 'getPeerCertificate') : null;
        r.socket?.end();
        return { failure: r.entry.failure, chain: r.entry.peer_certificates, decodes, restored };
      } finally {
        proto.getPeerCertificate = real;
      }
    };
    // Node's identity step did not decode the chain; the name check decoded the leaf alone, once.
    assert.deepEqual(await run(good.port, 'good.test', true), {
      failure: null,
      chain: null,
      decodes: { chain: 0, leaf: 1 },
      restored: true,
    });
    assert.equal((await run(good.port, 'other.test', true)).failure, 'ssl_invalid_hostname');
    assert.equal((await run(good.port, 'good.test', false)).failure, 'ssl_unknown_authority');
    assert.equal((await run(expired.port, 'old.test', true)).failure, 'ssl_invalid_certificate');
  });

  it('never reads the peer through getPeerX509Certificate (it leaks in node 20), and still records the chain', async () => {
    const proto = tls.TLSSocket.prototype as unknown as { getPeerX509Certificate: () => unknown };
    const real = proto.getPeerX509Certificate;
    let calls = 0;
    proto.getPeerX509Certificate = function (this: tls.TLSSocket) {
      calls++;
      return real.call(this);
    };
    try {
      const ok = await handshake(good.port, 'good.test', ca);
      const badName = await handshake(good.port, 'other.test', ca);
      const untrusted = await handshake(good.port, 'good.test', null);
      assert.deepEqual(
        [ok.entry.failure, badName.entry.failure, untrusted.entry.failure],
        [null, 'ssl_invalid_hostname', 'ssl_unknown_authority'],
      );
      const der = (pem: string): string => new X509Certificate(pem).raw.toString('base64');
      assert.deepEqual(
        ok.entry.peer_certificates!.map((c) => c.data),
        [der(goodLeafPem), der(ca.certPem)],
      );
      assert.deepEqual(untrusted.entry.peer_certificates, ok.entry.peer_certificates);
    } finally {
      proto.getPeerX509Certificate = real;
    }
    assert.equal(calls, 0);
  });

  it('fails with ssl_unknown_authority without the CA, keeping the chain as evidence', async () => {
    const r = await handshake(good.port, 'good.test', null);
    assert.equal(r.entry.failure, 'ssl_unknown_authority');
    assert.ok(r.entry.peer_certificates && r.entry.peer_certificates.length >= 1);
    assert.equal(r.socket, null);
  });

  it('fails with ssl_invalid_hostname for a certificate of another name', async () => {
    const r = await handshake(good.port, 'other.test', ca);
    assert.equal(r.entry.failure, 'ssl_invalid_hostname');
  });

  it('fails with ssl_invalid_certificate for an expired certificate', async () => {
    const r = await handshake(expired.port, 'old.test', ca);
    assert.equal(r.entry.failure, 'ssl_invalid_certificate');
  });

  it('sends no SNI at all when the server name is null', async () => {
    const sni = good.nextSni();
    const r = await handshake(good.port, null, ca, false);
    assert.equal(r.entry.failure, null);
    assert.equal(r.entry.server_name, '');
    assert.equal(await sni, false);
  });

  it('times out within its budget against a server that never speaks TLS', async () => {
    const silent = await startRawServer(() => {});
    raws.push(silent);
    const t0 = Date.now();
    const r = await handshake(silent.port, 'good.test', ca, true, 300);
    assert.equal(r.entry.failure, 'generic_timeout_error');
    assert.ok(Date.now() - t0 < 2000);
  });

  it('records a reset of the ClientHello with its latency', async () => {
    const rst = await startRawServer((s) => s.once('data', () => s.resetAndDestroy()));
    raws.push(rst);
    const r = await handshake(rst.port, 'blocked.test', ca);
    assert.equal(r.entry.failure, 'connection_reset');
    assert.equal(typeof r.entry.x_reset_latency_ms, 'number');
  });

  it("times the reset from the ClientHello's write, which has its own write event at its time", async () => {
    // The censor waits 150 ms after the ClientHello before resetting (a slow national firewall).
    const rst = await startRawServer((s) => s.once('data', () => setTimeout(() => s.resetAndDestroy(), 150)));
    raws.push(rst);
    const trace = new Trace();
    const c = await tcpConnect('127.0.0.1', rst.port, policy, { trace, timeoutMs: 1000 });
    const r = await tlsHandshake(c.socket!, {
      trace,
      timeoutMs: 3000,
      serverName: 'blocked.test',
      verify: true,
      address: `127.0.0.1:${rst.port}`,
    });
    assert.equal(r.entry.failure, 'connection_reset');
    const start = trace.events.find((e) => e.operation === 'tls_handshake_start')!;
    const writes = trace.events.filter((e) => e.operation === 'write');
    const done = trace.events.find((e) => e.operation === 'tls_handshake_done')!;
    assert.equal(writes.length, 1, 'only the ClientHello was written');
    const hello = writes[0]!;
    assert.ok((hello.num_bytes ?? 0) > 100, "the ClientHello's bytes");
    assert.ok(
      hello.t >= start.t && hello.t < done.t - 0.1,
      `the write is stamped when it happened (${hello.t}), not at the end (${done.t})`,
    );
    assert.ok(trace.events.indexOf(hello) < trace.events.indexOf(done), 'logged in order');
    assert.equal(r.entry.x_reset_latency_ms, Math.round((done.t - hello.t) * 1e6) / 1e3);
  });

  it("logs the ClientHello's write first on a completed handshake, and no reset latency", async () => {
    const trace = new Trace();
    const c = await tcpConnect('127.0.0.1', good.port, policy, { trace, timeoutMs: 1000 });
    const r = await tlsHandshake(c.socket!, {
      trace,
      timeoutMs: 2000,
      serverName: 'good.test',
      verify: true,
      ca: [ca.certPem],
      address: `127.0.0.1:${good.port}`,
    });
    r.socket?.end();
    assert.equal(r.entry.failure, null);
    const ops = trace.events.map((e) => e.operation);
    assert.deepEqual(ops.slice(ops.indexOf('tls_handshake_start'), ops.indexOf('tls_handshake_start') + 2), [
      'tls_handshake_start',
      'write',
    ]);
    const logged = trace.events.filter((e) => e.operation === 'write').reduce((n, e) => n + (e.num_bytes ?? 0), 0);
    assert.ok(logged > 100 && logged <= c.socket!.bytesWritten, `${logged} bytes logged, ${c.socket!.bytesWritten} written`);
    assert.equal(r.entry.x_reset_latency_ms, undefined);
  });

  it('records the bytes a stalled handshake received (how throttling shows)', async () => {
    const slow = await startRawServer((s) => s.once('data', () => s.write(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x40, 1, 2, 3]))));
    raws.push(slow);
    const trace = new Trace();
    const c = await tcpConnect('127.0.0.1', slow.port, policy, { trace, timeoutMs: 1000 });
    const r = await tlsHandshake(c.socket!, {
      trace,
      timeoutMs: 300,
      serverName: 'good.test',
      verify: true,
      address: `127.0.0.1:${slow.port}`,
    });
    assert.equal(r.entry.failure, 'generic_timeout_error');
    const read = trace.events.find((e) => e.operation === 'read');
    assert.equal(read?.num_bytes, 8);
    assert.ok((trace.events.find((e) => e.operation === 'write')?.num_bytes ?? 0) > 100, 'the ClientHello went out');
  });

  it('reports a server that speaks plain text as ssl_failed_handshake', async () => {
    const plain = await startRawServer((s) => s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    raws.push(plain);
    const r = await handshake(plain.port, 'good.test', ca);
    assert.equal(r.entry.failure, 'ssl_failed_handshake');
  });
});

describe('tcpConnect(ip, port, policy, opts)', () => {
  it('times out within its budget when SYNs go unanswered', async (t) => {
    const hole = await startBlackhole();
    t.after(() => hole.close());
    const t0 = Date.now();
    const r = await tcpConnect('127.0.0.1', hole.port, policy, { trace: new Trace(), timeoutMs: 400 });
    assert.equal(r.entry.status.failure, 'generic_timeout_error');
    assert.equal(r.socket, null);
    assert.ok(Date.now() - t0 < 3000);
  });

  it('reports connection_refused on a closed port, and refuses outside --allow-net', async () => {
    const trace = new Trace();
    const r = await tcpConnect('127.0.0.1', 1, policy, { trace, timeoutMs: 1000 });
    assert.equal(r.entry.status.failure, 'connection_refused');
    assert.equal(r.entry.status.success, false);
    const out = await tcpConnect('192.0.2.1', 80, policy, { trace, timeoutMs: 1000 });
    assert.match(String(out.entry.status.failure), /outside --allow-net/);
    assert.equal(trace.events.filter((e) => e.operation === 'connect').length, 2);
  });
});
