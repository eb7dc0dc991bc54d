import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startRawServer, startSite, afterRequestHead, type Site } from '../testing/probe-servers.js';
import { fetchUrl, httpRoundTrip, extractTitle } from './http.js';
import { NetPolicy } from './policy.js';
import { Trace } from './trace.js';

const policy = new NetPolicy(['127.0.0.0/8']);

function fetchOpts(trace = new Trace(), over: Partial<Parameters<typeof fetchUrl>[1]> = {}): Parameters<typeof fetchUrl>[1] {
  return {
    trace,
    policy,
    resolve: async (h) =>
      h === 'loop.test' || h === 'site.test' ? { addrs: ['127.0.0.1'], failure: null } : { addrs: [], failure: 'dns_nxdomain_error' },
    connectTimeoutMs: 1000,
    tlsTimeoutMs: 1000,
    timeoutMs: 1500,
    maxBodyBytes: 64 * 1024,
    ...over,
  };
}

async function dial(site: Site): Promise<net.Socket> {
  const s = net.connect(site.port, site.host);
  await new Promise((r) => s.once('connect', r));
  return s;
}

describe('httpRoundTrip(stream, opts)', () => {
  const servers: Site[] = [];
  after(() => Promise.all(servers.map((s) => s.close())));

  it('sends the chosen Host header and records the response', async () => {
    let seenHost = '';
    const site = await startSite({
      handler: (req, res) => {
        seenHost = req.headers.host ?? '';
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<title>Hello there</title>');
      },
    });
    servers.push(site);
    const r = await httpRoundTrip(await dial(site), {
      trace: new Trace(),
      url: `http://${site.address}/p?q=1`,
      host: 'chosen.test',
      timeoutMs: 1000,
      maxBodyBytes: 1000,
      address: site.address,
    });
    assert.equal(seenHost, 'chosen.test');
    assert.equal(r.failure, null);
    assert.equal(r.status, 200);
    assert.equal(r.title, 'Hello there');
    assert.equal(r.entry.response!.body, '<title>Hello there</title>');
    assert.equal(r.entry.request.headers.host, 'chosen.test');
  });

  it('times out within its budget when the server never answers', async () => {
    const site = await startRawServer(() => {});
    servers.push(site);
    const t0 = Date.now();
    const r = await httpRoundTrip(await dial(site), {
      trace: new Trace(),
      url: `http://${site.address}/`,
      timeoutMs: 300,
      maxBodyBytes: 1000,
      address: site.address,
    });
    assert.equal(r.failure, 'generic_timeout_error');
    assert.equal(r.entry.response, null);
    assert.ok(Date.now() - t0 < 2000);
  });

  it('keeps an endless body only up to the cap, with body_is_truncated', async () => {
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const site = await startRawServer((s) =>
      afterRequestHead(s, () => {
        s.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n');
        const pump = (): void => {
          while (!s.destroyed && s.write(chunk));
          if (!s.destroyed) s.once('drain', pump);
        };
        pump();
      }),
    );
    servers.push(site);
    const rss0 = process.memoryUsage().rss;
    const r = await httpRoundTrip(await dial(site), {
      trace: new Trace(),
      url: `http://${site.address}/`,
      timeoutMs: 3000,
      maxBodyBytes: 100_000,
      address: site.address,
    });
    assert.equal(r.failure, null);
    assert.equal(r.body.length, 100_000);
    assert.equal(r.truncated, true);
    assert.equal(r.entry.response!.body_is_truncated, true);
    assert.ok(process.memoryUsage().rss - rss0 < 64 * 1024 * 1024);
  });

  it('shows a throttled body as many small reads, and stops a drip at the time budget', async () => {
    const site = await startRawServer((s) =>
      afterRequestHead(s, () => {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n');
        const timer = setInterval(() => (s.destroyed ? clearInterval(timer) : s.write('x'.repeat(100))), 40);
        s.on('close', () => clearInterval(timer));
      }),
    );
    servers.push(site);
    const trace = new Trace();
    const t0 = Date.now();
    const r = await httpRoundTrip(await dial(site), {
      trace,
      url: `http://${site.address}/`,
      timeoutMs: 800,
      maxBodyBytes: 1 << 20,
      address: site.address,
    });
    assert.equal(r.failure, 'generic_timeout_error');
    assert.ok(Date.now() - t0 < 3000);
    const reads = trace.events.filter((e) => e.operation === 'read');
    assert.ok(reads.length >= 3, `${reads.length} reads`);
    assert.ok(
      reads.every((e) => (e.num_bytes ?? 0) <= 1000),
      'small reads (a loaded machine may merge a few writes)',
    );
    assert.equal(r.entry.response!.code, 200);
    assert.ok(r.body.length > 0 && r.body.length < 100_000);
  });

  it('reports a reset in the middle of the body as connection_reset, keeping what came', async () => {
    const site = await startRawServer((s) =>
      afterRequestHead(s, () => {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\npartial body');
        setTimeout(() => s.resetAndDestroy(), 20);
      }),
    );
    servers.push(site);
    const r = await httpRoundTrip(await dial(site), {
      trace: new Trace(),
      url: `http://${site.address}/`,
      timeoutMs: 2000,
      maxBodyBytes: 1 << 20,
      address: site.address,
    });
    assert.equal(r.failure, 'connection_reset');
    assert.equal(r.entry.response!.code, 200);
    assert.equal(r.entry.response!.body, 'partial body');
  });

  it('reports a close in the middle of the body as eof_error', async () => {
    const site = await startRawServer((s) =>
      afterRequestHead(s, () => {
        s.end('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\npartial');
      }),
    );
    servers.push(site);
    const r = await httpRoundTrip(await dial(site), {
      trace: new Trace(),
      url: `http://${site.address}/`,
      timeoutMs: 2000,
      maxBodyBytes: 1 << 20,
      address: site.address,
    });
    assert.equal(r.failure, 'eof_error');
  });

  it('reports a reset before any response with its latency', async () => {
    const site = await startRawServer((s) => afterRequestHead(s, () => s.resetAndDestroy()));
    servers.push(site);
    const r = await httpRoundTrip(await dial(site), {
      trace: new Trace(),
      url: `http://${site.address}/`,
      timeoutMs: 2000,
      maxBodyBytes: 1000,
      address: site.address,
    });
    assert.equal(r.failure, 'connection_reset');
    assert.equal(typeof r.entry.x_reset_latency_ms, 'number');
  });

  it('turns a garbled response into an http_parse_error failure', async () => {
    const site = await startRawServer((s) => afterRequestHead(s, () => s.end('SSH-2.0-OpenSSH_9.0\r\n\r\n')));
    servers.push(site);
    const r = await httpRoundTrip(await dial(site), {
      trace: new Trace(),
      url: `http://${site.address}/`,
      timeoutMs: 2000,
      maxBodyBytes: 1000,
      address: site.address,
    });
    assert.match(String(r.failure), /^unknown_failure: http_parse_error HPE_/);
  });

  it('keeps a non-UTF-8 body as base64', async () => {
    const site = await startSite({ handler: (_q, res) => res.end(Buffer.from([0xff, 0xfe, 0x00, 0x81])) });
    servers.push(site);
    const r = await httpRoundTrip(await dial(site), {
      trace: new Trace(),
      url: `http://${site.address}/`,
      timeoutMs: 2000,
      maxBodyBytes: 1000,
      address: site.address,
    });
    assert.deepEqual(r.entry.response!.body, { format: 'base64', data: '//4AgQ==' });
  });
});

describe('fetchUrl(url, opts)', () => {
  let loop: Site;
  let chain: Site;
  before(async () => {
    loop = await startSite({
      handler: (req, res) => {
        res.writeHead(302, { location: `/next${req.url}` });
        res.end();
      },
    });
    chain = await startSite({
      handler: (req, res) => {
        if (req.url === '/start') {
          res.writeHead(301, { location: `http://site.test:${chain.port}/end` });
          res.end();
        } else {
          res.writeHead(200);
          res.end('<title>The end</title>');
        }
      },
    });
  });
  after(() => Promise.all([loop.close(), chain.close()]));

  it('follows redirects across names, recording every hop, the last one first', async () => {
    const r = await fetchUrl(`http://127.0.0.1:${chain.port}/start`, fetchOpts());
    assert.equal(r.failure, null);
    assert.deepEqual(
      r.requests.map((q) => q.response?.code),
      [200, 301],
    );
    assert.equal(r.requests[0]!.request.url, `http://site.test:${chain.port}/end`);
    assert.equal(r.final!.title, 'The end');
  });

  it("stops a redirect loop after 10 redirects with OONI's failure", async () => {
    const r = await fetchUrl(`http://loop.test:${loop.port}/`, fetchOpts());
    assert.equal(r.failure, 'unknown_failure: stopped after too many redirects');
    assert.equal(r.requests.length, 11);
    assert.equal(r.requests[0]!.failure, r.failure);
  });

  it('records a redirect to a name that does not resolve', async () => {
    const site = await startSite({
      handler: (_q, res) => {
        res.writeHead(302, { location: 'http://gone.test/' });
        res.end();
      },
    });
    try {
      const r = await fetchUrl(`http://127.0.0.1:${site.port}/`, fetchOpts());
      assert.equal(r.failure, 'dns_nxdomain_error');
      assert.equal(r.requests[0]!.request.url, 'http://gone.test/');
    } finally {
      await site.close();
    }
  });
});

describe('extractTitle(body)', () => {
  it('finds the title, case-insensitively', () => {
    assert.equal(extractTitle(Buffer.from('<html><TITLE lang=en> Blocked page </TITLE>')), 'Blocked page');
    assert.equal(extractTitle(Buffer.from('no title here')), '');
  });
});
