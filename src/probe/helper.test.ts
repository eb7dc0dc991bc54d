import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { createCA, issueCert } from './ca.js';
import { startDnsServer, startSite, type DnsServer, type Site } from '../testing/probe-servers.js';
import { startTestHelper, parseControlRequest, type TestHelper } from './helper.js';
import type { ControlResponse } from '../model/index.js';

function post(url: string, body: string | Buffer, method = 'POST'): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('startTestHelper(opts)', () => {
  let dns: DnsServer;
  let site: Site;
  let tlsSite: Site;
  let helper: TestHelper;
  let leaf: Awaited<ReturnType<typeof issueCert>>;
  before(async () => {
    const ca = await createCA();
    leaf = await issueCert(ca, ['site.test', 'two.test']);
    site = await startSite({ host: '127.0.0.2', title: 'Control page title' });
    tlsSite = await startSite({ host: '127.0.0.2', tls: { cert: leaf.chainPem, key: leaf.keyPem } });
    dns = await startDnsServer({
      'site.test': { kind: 'answer', addrs: ['127.0.0.2'] },
      'two.test': { kind: 'answer', addrs: ['127.0.0.3', '127.0.0.2'] },
    });
    helper = await startTestHelper({
      host: '127.0.0.1',
      port: 0,
      resolver: dns.address,
      ca: [ca.certPem],
      allowNet: ['127.0.0.0/8'],
      timeoutMs: 1000,
    });
  });
  after(async () => {
    await helper.close();
    await Promise.all([dns.close(), site.close(), tlsSite.close()]);
  });

  it("fetches over its connection to the probe's endpoint when that is its own first answer: one connection (and handshake), not two", async () => {
    for (const tls of [false, true]) {
      let conns = 0;
      const handler: http.RequestListener = (_q, res) => res.end('<html><head><title>Reused</title></head></html>');
      const srv = tls ? https.createServer({ cert: leaf.chainPem, key: leaf.keyPem }, handler) : http.createServer(handler);
      srv.on(tls ? 'secureConnection' : 'connection', () => conns++);
      await new Promise<void>((resolve) => srv.listen(0, '127.0.0.2', resolve));
      const port = (srv.address() as import('node:net').AddressInfo).port;
      try {
        const ask = async (tcp: string[]) =>
          (
            await post(
              helper.url,
              JSON.stringify({
                http_request: `${tls ? 'https' : 'http'}://site.test:${port}/`,
                http_request_headers: {},
                tcp_connect: tcp,
              }),
            )
          ).json as ControlResponse;
        const c = await ask([`127.0.0.2:${port}`]);
        assert.deepEqual(c.tcp_connect[`127.0.0.2:${port}`], { status: true, failure: null });
        if (tls) assert.deepEqual(c.tls_handshake?.[`127.0.0.2:${port}`], { server_name: 'site.test', status: true, failure: null });
        assert.equal(c.http_request.status_code, 200);
        assert.equal(c.http_request.title, 'Reused');
        assert.equal(conns, 1, `${tls ? 'https' : 'http'}: the fetch reused the endpoint's connection`);
        // The probe's endpoint is not the helper's answer: the fetch dials its own, as before.
        conns = 0;
        const d = await ask(['127.0.0.2:1']);
        assert.equal(d.http_request.status_code, 200);
        assert.equal(conns, 1);
      } finally {
        srv.closeAllConnections();
        await new Promise<void>((resolve) => srv.close(() => resolve()));
      }
    }
  });

  it("does not dial the probe's endpoint again for the fetch when the helper's own dial to it failed: it goes on to the next answer", async () => {
    const handler: http.RequestListener = (_q, res) => res.end('<html><head><title>Second</title></head></html>');
    const good = https.createServer({ cert: leaf.chainPem, key: leaf.keyPem }, handler);
    await new Promise<void>((resolve) => good.listen(0, '127.0.0.2', resolve));
    const port = (good.address() as import('node:net').AddressInfo).port;
    // The first answer accepts TCP and closes at once: the helper's handshake to it fails.
    let dials = 0;
    const bad = (await import('node:net')).createServer((s) => {
      dials++;
      s.destroy();
    });
    await new Promise<void>((resolve) => bad.listen(port, '127.0.0.3', resolve));
    try {
      const c = (
        await post(
          helper.url,
          JSON.stringify({ http_request: `https://two.test:${port}/`, http_request_headers: {}, tcp_connect: [`127.0.0.3:${port}`] }),
        )
      ).json as ControlResponse;
      assert.deepEqual(c.tcp_connect[`127.0.0.3:${port}`], { status: true, failure: null });
      assert.equal(c.tls_handshake?.[`127.0.0.3:${port}`]?.status, false);
      assert.equal(c.http_request.status_code, 200, JSON.stringify(c.http_request));
      assert.equal(c.http_request.title, 'Second');
      assert.equal(dials, 1, 'one dial to the failed endpoint: the handshake step, not the fetch again');
    } finally {
      good.closeAllConnections();
      await Promise.all([new Promise((r) => good.close(r)), new Promise((r) => bad.close(r))]);
    }
  });

  it("answers a control request in OONI's shape", async () => {
    const r = await post(
      helper.url,
      JSON.stringify({
        http_request: `http://site.test:${site.port}/`,
        http_request_headers: {},
        tcp_connect: [`127.0.0.2:${site.port}`, '127.0.0.2:1'],
      }),
    );
    assert.equal(r.status, 200);
    const c = r.json as ControlResponse;
    assert.deepEqual(c.dns, { failure: null, addrs: ['127.0.0.2'] });
    assert.deepEqual(c.tcp_connect[`127.0.0.2:${site.port}`], { status: true, failure: null });
    assert.deepEqual(c.tcp_connect['127.0.0.2:1'], { status: false, failure: 'connection_refused' });
    assert.equal(c.http_request.status_code, 200);
    assert.equal(c.http_request.title, 'Control page title');
    assert.ok(c.http_request.body_length > 0);
    assert.equal(c.http_request.failure, null);
    assert.equal(c.ip_info!['127.0.0.2']!.flags, 3);
  });

  it("fetches with the probe's User-Agent, as oohelperd does", async () => {
    let ua = '';
    const echo = await startSite({
      host: '127.0.0.2',
      handler: (req, res) => {
        ua = req.headers['user-agent'] ?? '';
        res.end('ok');
      },
    });
    try {
      await post(
        helper.url,
        JSON.stringify({
          http_request: `http://127.0.0.2:${echo.port}/`,
          http_request_headers: { 'User-Agent': ['wallscope-test/1'], Cookie: ['secret=1'] },
          tcp_connect: [],
        }),
      );
      assert.equal(ua, 'wallscope-test/1');
    } finally {
      await echo.close();
    }
  });

  it('handshakes with the target name for https endpoints', async () => {
    const r = await post(
      helper.url,
      JSON.stringify({ http_request: `https://site.test:${tlsSite.port}/`, tcp_connect: [`127.0.0.2:${tlsSite.port}`] }),
    );
    const c = r.json as ControlResponse;
    assert.deepEqual(c.tls_handshake![`127.0.0.2:${tlsSite.port}`], { server_name: 'site.test', status: true, failure: null });
    assert.equal(c.http_request.status_code, 200);
  });

  it("uses oohelperd's failure strings for a name that does not exist", async () => {
    const r = await post(helper.url, JSON.stringify({ http_request: 'http://gone.test/', tcp_connect: [] }));
    const c = r.json as ControlResponse;
    assert.deepEqual(c.dns, { failure: 'dns_name_error', addrs: [] });
    assert.equal(c.http_request.failure, 'dns_lookup_error');
    assert.equal(c.http_request.status_code, -1);
    assert.equal(c.http_request.body_length, -1);
  });

  it('rejects bad requests with a clear 4xx', async () => {
    assert.equal((await post(helper.url, '{not json')).status, 400);
    assert.match(
      String(
        (await post(helper.url, '{"http_request": 5}')).json &&
          ((await post(helper.url, '{"http_request": 5}')).json as { error: string }).error,
      ),
      /http_request/,
    );
    assert.equal((await post(helper.url, JSON.stringify({ http_request: 'ftp://x/' }))).status, 400);
    assert.equal((await post(helper.url, JSON.stringify({ http_request: 'http://x/', tcp_connect: ['nope'] }))).status, 400);
    assert.equal((await post(helper.url, Buffer.alloc(100_000, 0x20))).status, 413);
    assert.equal((await post(helper.url, '', 'GET')).status, 405);
  });

  it('never dials outside --allow-net', async () => {
    const r = await post(helper.url, JSON.stringify({ http_request: 'http://192.0.2.1/', tcp_connect: ['192.0.2.1:80'] }));
    const c = r.json as ControlResponse;
    assert.match(String(c.tcp_connect['192.0.2.1:80']!.failure), /outside --allow-net/);
    assert.equal(c.http_request.failure, 'unknown_error');
  });
});

describe('startTestHelper(opts) under load', () => {
  it('answers 503 with Retry-After beyond maxConcurrent control requests, and serves again after', async () => {
    // A resolver that never answers keeps the first control request busy for its whole budget.
    const silent = await startDnsServer({ 'slow.test': { kind: 'silent' } });
    const helper = await startTestHelper({
      host: '127.0.0.1',
      port: 0,
      resolver: silent.address,
      allowNet: ['127.0.0.0/8'],
      timeoutMs: 400,
      maxConcurrent: 1,
    });
    try {
      const body = JSON.stringify({ http_request: 'http://slow.test/', tcp_connect: [] });
      const first = post(helper.url, body);
      await new Promise((r) => setTimeout(r, 100));
      const second = await postRaw(helper.url, body);
      assert.equal(second.status, 503);
      assert.equal(second.headers['retry-after'], '1');
      assert.equal((await first).status, 200);
      assert.equal((await post(helper.url, body)).status, 200, 'the slot is free again');
    } finally {
      await helper.close();
      await silent.close();
    }
  });
});

function postRaw(url: string, body: string): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('startTestHelper(opts) without --allow-net', () => {
  it('never connects to loopback, private or link-local addresses (no fetching its own network for others)', async () => {
    let hits = 0;
    const site = await startSite({
      host: '127.0.0.2',
      handler: (_q, res) => {
        hits++;
        res.end('<title>internal admin page</title>');
      },
    });
    const helper = await startTestHelper({ host: '127.0.0.1', port: 0, timeoutMs: 500 });
    try {
      const r = await post(
        helper.url,
        JSON.stringify({
          http_request: `http://127.0.0.2:${site.port}/`,
          tcp_connect: [`127.0.0.2:${site.port}`, '10.0.0.1:80', '169.254.169.254:80', '[::1]:80'],
        }),
      );
      assert.equal(r.status, 200);
      const c = r.json as ControlResponse;
      for (const ep of [`127.0.0.2:${site.port}`, '10.0.0.1:80', '169.254.169.254:80', '[::1]:80']) {
        assert.equal(c.tcp_connect[ep]!.status, false, ep);
        assert.match(String(c.tcp_connect[ep]!.failure), /not a public address/, ep);
      }
      assert.equal(c.http_request.status_code, -1);
      assert.equal(c.http_request.title, '');
      assert.equal(hits, 0, 'nothing reached the internal site');
    } finally {
      await helper.close();
      await site.close();
    }
  });
});

describe('parseControlRequest(body)', () => {
  it('bounds the number of endpoints', () => {
    assert.throws(
      () => parseControlRequest({ http_request: 'http://a/', tcp_connect: Array.from({ length: 17 }, (_, i) => `127.0.0.1:${i + 1}`) }),
      /more than 16/,
    );
  });
});
