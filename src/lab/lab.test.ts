import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { HttpRequestScanner, type FrontEvent } from './front.js';
import { startLab, LabError, type Lab } from './lab.js';
import { nftAvailable, sweepStaleTables } from './nft.js';
import { parseScenario } from './scenario.js';

const YAML = String.raw`
name: lab-test
seed: 3
world:
  sites:
    - domain: ok.example
    - domain: 011.com
    - domain: notexample.com
    - domain: youtube.com
    - domain: news.example
    - domain: video.example
      page: { bytes: 3000 }
    - domain: dropped.example
  helper: true
censors:
  - name: henan
    layer: regional
    sni_reset:  { rules: ['011\.com$'] }
    http_reset: { host_rules: ['011\.com$'] }
  - name: gfw
    layer: national
    dns_injection: { rules: ['(^|\.)youtube\.com$'], injectors: 3, pool: [31.13.94.37, 157.240.17.35], lead_ms: 30 }
    sni_reset:  { rules: ['example\.com$', '(^|\.)youtube\.com$'], residual_s: 180 }
    http_reset: { keywords: [falun] }
    blockpage:  { host_rules: ['^news\.example$'], page: { title: Blocked here } }
    throttle:   { host_rules: ['^video\.example$'], kbps: 160 }
    null_route: [dropped.example]
`;

type Outcome = { ok: true; data: string } | { ok: false; code: string };

function tlsTry(lab: Lab, domain: string, sni: string | null, localAddress?: string): Promise<Outcome> {
  const site = lab.sites.find((s) => s.domain === domain)!;
  return new Promise((resolve) => {
    const opts: tls.ConnectionOptions = {
      host: site.address,
      port: site.httpsPort!,
      ca: [lab.ca.certPem],
      checkServerIdentity: () => undefined,
    };
    if (sni) opts.servername = sni;
    if (localAddress) (opts as net.TcpNetConnectOpts).localAddress = localAddress;
    const s = tls.connect(opts);
    s.setTimeout(5000, () => {
      s.destroy();
      resolve({ ok: false, code: 'timeout' });
    });
    s.on('secureConnect', () => {
      s.destroy();
      resolve({ ok: true, data: '' });
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? e.message }));
  });
}

function httpTry(lab: Lab, domain: string, path = '/', host = domain, localAddress?: string): Promise<Outcome> {
  const site = lab.sites.find((s) => s.domain === domain)!;
  return new Promise((resolve) => {
    const s = net.connect({ host: site.address, port: site.httpPort!, localAddress }, () =>
      s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    let data = '';
    s.setTimeout(3000, () => {
      s.destroy();
      resolve({ ok: false, code: 'timeout' });
    });
    s.on('data', (d: Buffer) => (data += d.toString('latin1')));
    s.on('end', () => resolve({ ok: true, data }));
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? e.message }));
  });
}

function dnsAsk(lab: Lab, name: string, resolver = lab.resolver): Promise<string[]> {
  const [host, port] = resolver.split(':');
  const sock = dgram.createSocket('udp4');
  const out: string[] = [];
  sock.on('message', (m) => {
    for (const a of dnsPacket.decode(m).answers ?? []) out.push(String((a as { data?: unknown }).data));
  });
  sock.send(
    dnsPacket.encode({ id: 9, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] }),
    Number(port),
    host,
  );
  return new Promise((r) => setTimeout(() => sock.close(() => r(out)), 400));
}

const helperSource = (lab: Lab) => lab.range.replace(/0\.0\/16$/, '0.4');

describe('startLab(scenario, opts)', () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab(parseScenario(YAML, '/tmp/lab-test.yaml'), { standardPorts: false });
  });
  after(() => lab.close());

  it('resolves sites through the ISP resolver, with forged replies racing ahead for injected names', async () => {
    const ok = lab.sites.find((s) => s.domain === 'ok.example')!;
    assert.deepEqual(await dnsAsk(lab, 'ok.example'), [ok.address]);
    const yt = await dnsAsk(lab, 'youtube.com');
    assert.equal(yt.length, 4); // 3 injectors + the genuine answer, last
    assert.equal(yt[3], lab.sites.find((s) => s.domain === 'youtube.com')!.address);
    for (const a of yt.slice(0, 3)) assert.match(a, new RegExp(`^${lab.range.split('.').slice(0, 2).join('\\.')}\\.10\\d\\.`)); // remapped pool
    assert.deepEqual(await dnsAsk(lab, 'youtube.com', lab.publicResolver), [lab.sites.find((s) => s.domain === 'youtube.com')!.address]);
    // where no resolver runs, only the injectors answer, and only for names on their list
    assert.equal((await dnsAsk(lab, 'youtube.com', lab.silentDns)).length, 3);
    assert.deepEqual(await dnsAsk(lab, 'ok.example', lab.silentDns), []);
  });

  it('resets a ClientHello whose SNI a censor lists, overblocking kw$ rules included, and passes others', async () => {
    assert.deepEqual(await tlsTry(lab, 'ok.example', 'ok.example'), { ok: true, data: '' });
    assert.equal((await tlsTry(lab, '011.com', '011.com')).ok, false);
    const over = await tlsTry(lab, 'notexample.com', 'notexample.com');
    assert.deepEqual(over, { ok: false, code: 'ECONNRESET' });
  });

  it('keeps residual blocking on (client, server, port) after a national reset, none after a regional one', async () => {
    // national: SNI reset then a benign SNI to the same ip:port is reset too
    assert.equal((await tlsTry(lab, 'youtube.com', 'youtube.com')).ok, false);
    assert.deepEqual(await tlsTry(lab, 'youtube.com', 'www.benign.org'), { ok: false, code: 'ECONNRESET' });
    assert.ok(lab.residual.size >= 1);
    // regional (Henan): no residual
    assert.equal((await tlsTry(lab, '011.com', '011.com')).ok, false);
    assert.deepEqual(await tlsTry(lab, '011.com', 'www.benign.org'), { ok: true, data: '' });
  });

  it('lets the test helper through: it stands outside the censors', async () => {
    assert.deepEqual(await tlsTry(lab, '011.com', '011.com', helperSource(lab)), { ok: true, data: '' });
    const r = await httpTry(lab, 'news.example', '/', 'news.example', helperSource(lab));
    assert.ok(r.ok && r.data.includes('<title>news.example</title>'));
  });

  it('resets on Host rules and URL keywords (%-decoded), injects block pages, throttles', async () => {
    assert.deepEqual(await httpTry(lab, '011.com'), { ok: false, code: 'ECONNRESET' });
    const ok = await httpTry(lab, 'ok.example', '/fine');
    assert.ok(ok.ok && ok.data.startsWith('HTTP/1.1 200'));
    assert.deepEqual(await httpTry(lab, 'ok.example', '/search?q=%46alun'), { ok: false, code: 'ECONNRESET' });
    const bp = await httpTry(lab, 'news.example');
    assert.ok(bp.ok && bp.data.includes('<title>Blocked here</title>'));
    const slow = await httpTry(lab, 'video.example');
    assert.ok(slow.ok && slow.data.endsWith('</body></html>'), 'a throttled page still arrives whole');
  });

  it('null-routes with nftables so that connects time out (or says why it cannot)', async (t) => {
    if (!nftAvailable().ok) {
      assert.ok(lab.warnings.some((w) => /null_route/.test(w)));
      return t.skip('no nftables here: the lab warned instead');
    }
    assert.deepEqual(await httpTry(lab, 'dropped.example'), { ok: false, code: 'timeout' });
    const r = await httpTry(lab, 'dropped.example', '/', 'dropped.example', helperSource(lab));
    assert.ok(r.ok, 'the helper is not null-routed');
  });
});

describe('startLab(scenario, { log })', () => {
  it('tells of every DNS injection (lab up --log), with the censor, the name and the forged answers', async () => {
    const events: FrontEvent[] = [];
    const lab = await startLab(parseScenario(YAML, '/tmp/lab-test.yaml'), { standardPorts: false, log: (e) => events.push(e) });
    try {
      const yt = await dnsAsk(lab, 'youtube.com');
      await dnsAsk(lab, 'ok.example');
      const inj = events.filter((e) => e.action === 'dns-injection');
      assert.equal(inj.length, 1, JSON.stringify(events));
      assert.equal(inj[0]!.censor, 'gfw');
      assert.equal(inj[0]!.name, 'youtube.com');
      assert.equal(inj[0]!.server, lab.resolver);
      assert.deepEqual(inj[0]!.detail!.split(', '), yt.slice(0, 3));
    } finally {
      await lab.close();
    }
  });
});

describe('startLab(scenario, opts) with bad input', () => {
  it('removes its nftables table and listeners on close', async (t) => {
    if (!nftAvailable().ok) return t.skip('no nftables');
    const lab = await startLab(parseScenario(YAML, '/tmp/lab-test.yaml'), { standardPorts: false });
    const site = lab.sites[0]!;
    const table = () => spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout;
    assert.match(table(), new RegExp(`wallscope_${process.pid}_`));
    await lab.close();
    assert.doesNotMatch(table(), new RegExp(`wallscope_${process.pid}_`));
    const refused = await new Promise<string>((r) =>
      net
        .connect(site.httpPort!, site.address)
        .on('error', (e: NodeJS.ErrnoException) => r(e.code!))
        .on('connect', () => r('connected')),
    );
    assert.equal(refused, 'ECONNREFUSED');
  });

  it('sweeps tables left by a dead lab', (t) => {
    if (!nftAvailable().ok) return t.skip('no nftables');
    // pid 2^22+1 is above pid_max on default kernels: certainly dead
    spawnSync('nft', ['-f', '-'], { input: 'table ip wallscope_4194305_1 { }\n' });
    assert.ok(sweepStaleTables().includes('wallscope_4194305_1'));
    assert.doesNotMatch(spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout, /wallscope_4194305_1/);
  });

  it('says clearly when a port is taken, and leaves nothing behind', async () => {
    const s = parseScenario('name: x\nworld: { sites: [{ domain: a.example }], helper: false }\n', '/tmp/x.yaml');
    const squatter = dgram.createSocket('udp4');
    await new Promise<void>((r) => squatter.bind(53530, '127.77.0.2', () => r()));
    try {
      // base 77 with the ISP resolver's port taken
      await assert.rejects(
        startLab(s, { base: 77, standardPorts: false, dnsPort: 53530 }),
        (e: unknown) => e instanceof LabError && /already taken/.test(e.message),
      );
    } finally {
      await new Promise<void>((r) => squatter.close(() => r()));
    }
  });

  it('refuses a forged pool file that does not exist, naming it', async () => {
    const s = parseScenario(
      'name: x\nworld: { sites: [{ domain: a.example }] }\ncensors: [{ name: g, layer: national, dns_injection: { rules: [a], pool: missing-pool.txt } }]\n',
      '/tmp/x.yaml',
    );
    await assert.rejects(startLab(s, { standardPorts: false }), /cannot read the forged pool \/tmp\/missing-pool\.txt/);
  });
});

describe('censor fronts with hostile peers', () => {
  it('survive garbage, oversized heads and half-open peers, and keep serving', async () => {
    const lab = await startLab(
      parseScenario(
        'name: h\nworld: { sites: [{ domain: ok.example }], helper: false }\ncensors: [{ name: g, layer: national, sni_reset: { rules: [blocked] } }]\n',
        '/tmp/h.yaml',
      ),
      { standardPorts: false },
    );
    try {
      const site = lab.sites[0]!;
      const blast = (port: number, payload: Buffer) =>
        new Promise<void>((resolve) => {
          const s = net.connect(port, site.address, () => s.end(payload));
          s.on('error', () => resolve());
          s.on('close', () => resolve());
          s.resume();
        });
      let seed = 7;
      const junk = Buffer.alloc(40_000);
      for (let i = 0; i < junk.length; i++) junk[i] = ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255;
      junk[0] = 0x16; // looks like a TLS record, then is not
      await blast(site.httpsPort!, junk);
      await blast(site.httpPort!, Buffer.from('GET /' + 'a'.repeat(20_000))); // no end of head
      await blast(site.httpPort!, Buffer.from('\r\n\r\nHELO\r\n\r\n'));
      const half = net.connect(site.httpsPort!, site.address); // connects, never speaks
      half.on('error', () => undefined);
      assert.deepEqual(await tlsTry(lab, 'ok.example', 'ok.example'), { ok: true, data: '' });
      const ok = await httpTry(lab, 'ok.example');
      assert.ok(ok.ok && ok.data.startsWith('HTTP/1.1 200'));
      half.destroy();
    } finally {
      await lab.close();
    }
  });
});

describe('startLab(scenario) residual timing and forged pools', () => {
  it('ends residual blocking after the configured seconds', async () => {
    const lab = await startLab(
      parseScenario(
        "name: r\nworld: { sites: [{ domain: hot.example }], helper: false }\ncensors: [{ name: g, layer: national, sni_reset: { rules: ['^hot'], residual_s: 2 } }]\n",
        '/tmp/r.yaml',
      ),
      { standardPorts: false },
    );
    try {
      assert.equal((await tlsTry(lab, 'hot.example', 'hot.example')).ok, false);
      assert.deepEqual(await tlsTry(lab, 'hot.example', 'benign.org'), { ok: false, code: 'ECONNRESET' });
      await new Promise((r) => setTimeout(r, 2100));
      assert.deepEqual(await tlsTry(lab, 'hot.example', 'benign.org'), { ok: true, data: '' });
    } finally {
      await lab.close();
    }
  });

  it('remaps the forged pool into the lab keeping its order, each injector walking it cyclically', async () => {
    const lab = await startLab(
      parseScenario(
        "name: p\nworld: { sites: [{ domain: yt.example }], helper: false }\ncensors: [{ name: g, layer: national, dns_injection: { rules: ['^yt'], injectors: 1, pool: [1.1.1.1, 2.2.2.2, 3.3.3.3] } }]\n",
        '/tmp/p.yaml',
      ),
      { standardPorts: false },
    );
    try {
      const prefix = lab.range.replace(/0\.0\/16$/, '');
      const seen: string[] = [];
      for (let i = 0; i < 4; i++) seen.push((await dnsAsk(lab, 'yt.example'))[0]!);
      assert.deepEqual(seen, [`${prefix}100.1`, `${prefix}100.2`, `${prefix}100.3`, `${prefix}100.1`]);
    } finally {
      await lab.close();
    }
  });
});

/** A real ClientHello for `servername`, as node's TLS client sends it. */
async function helloFor(servername: string): Promise<Buffer> {
  const server = net.createServer();
  const got = new Promise<Buffer>((resolve) =>
    server.on('connection', (s) => {
      let buf = Buffer.alloc(0);
      s.on('error', () => undefined);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          s.destroy();
          resolve(buf);
        }
      });
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, servername, rejectUnauthorized: false });
  c.on('error', () => undefined);
  const b = await got;
  c.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return b;
}

/** Sends a ClientHello in two TCP segments; 'reset' or 'answered' (the server spoke back). */
function sendSplit(address: string, port: number, hello: Buffer): Promise<'reset' | 'answered' | 'silent'> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port, noDelay: true }, () => {
      s.write(hello.subarray(0, 20));
      setTimeout(() => s.write(hello.subarray(20)), 60);
    });
    s.setTimeout(2000, () => {
      s.destroy();
      resolve('silent');
    });
    s.on('data', () => {
      s.destroy();
      resolve('answered');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNRESET' ? 'reset' : 'silent'));
  });
}

describe('censor fronts and TCP segmentation', () => {
  it('a ClientHello split across TCP segments evades Henan (no reassembly) but not the GFW', async () => {
    const lab = await startLab(parseScenario(YAML, '/tmp/lab-test.yaml'), { standardPorts: false });
    try {
      const henanSite = lab.sites.find((s) => s.domain === '011.com')!;
      const gfwSite = lab.sites.find((s) => s.domain === 'youtube.com')!;
      assert.equal(await sendSplit(henanSite.address, henanSite.httpsPort!, await helloFor('011.com')), 'answered');
      assert.equal(await sendSplit(gfwSite.address, gfwSite.httpsPort!, await helloFor('youtube.com')), 'reset');
      // in one segment, Henan does act
      assert.equal((await tlsTry(lab, '011.com', '011.com')).ok, false);
    } finally {
      await lab.close();
    }
  });
});

describe('HttpRequestScanner and kept-alive connections', () => {
  it('finds every request head, skipping bodies, across arbitrary chunking', () => {
    const stream = Buffer.from(
      'GET /a HTTP/1.1\r\nHost: one.example\r\n\r\n' +
        'POST /b HTTP/1.1\r\nHost: two.example:8080\r\nContent-Length: 23\r\n\r\nGET /falun HTTP/1.1\r\n\r\n' +
        '\r\nGET /c%20d HTTP/1.1\r\nHost: three.example\r\n\r\n',
    );
    for (const size of [1, 7, 64, stream.length]) {
      const s = new HttpRequestScanner();
      const heads = [];
      for (let i = 0; i < stream.length; i += size) heads.push(...s.push(stream.subarray(i, i + size)));
      assert.deepEqual(
        heads,
        [
          { host: 'one.example', path: '/a' },
          { host: 'two.example', path: '/b' },
          { host: 'three.example', path: '/c%20d' },
        ],
        `chunks of ${size}`,
      );
    }
    const chunked = new HttpRequestScanner();
    assert.equal(chunked.push(Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n')).length, 0);
    assert.deepEqual(chunked.push(Buffer.from('GET / HTTP/1.1\r\nHost: b\r\n\r\n')), []); // stops inspecting
  });

  it('resets a keyword request that follows a benign one on the same connection', async () => {
    const lab = await startLab(parseScenario(YAML, '/tmp/lab-test.yaml'), { standardPorts: false });
    try {
      const site = lab.sites.find((s) => s.domain === 'ok.example')!;
      const outcome = await new Promise<string>((resolve) => {
        const s = net.connect(site.httpPort!, site.address, () => s.write('GET /fine HTTP/1.1\r\nHost: ok.example\r\n\r\n'));
        let got = '';
        s.on('data', (d: Buffer) => {
          got += d.toString('latin1');
          if (got.includes('</html>') && !got.includes('second')) {
            got += 'second';
            s.write('GET /search?q=falun HTTP/1.1\r\nHost: ok.example\r\n\r\n');
          }
        });
        s.on('error', (e: NodeJS.ErrnoException) => resolve(`${got.startsWith('HTTP/1.1 200') ? 'first ok, ' : ''}${e.code}`));
        s.on('close', () => resolve(`closed: ${got.slice(0, 40)}`));
      });
      assert.equal(outcome, 'first ok, ECONNRESET');
    } finally {
      await lab.close();
    }
  });
});

describe('reset latency', () => {
  it("delays the GFW's reset by its characteristic ~18 ms after the ClientHello (SP25)", async () => {
    const lab = await startLab(parseScenario(YAML, '/tmp/lab-test.yaml'), { standardPorts: false });
    try {
      const site = lab.sites.find((s) => s.domain === 'youtube.com')!;
      const hello = await helloFor('youtube.com');
      const ms = await new Promise<number>((resolve) => {
        const s = net.connect({ host: site.address, port: site.httpsPort!, localAddress: lab.clientAddress(77) }, () => {
          const t0 = performance.now();
          s.on('error', () => resolve(performance.now() - t0));
          s.write(hello);
        });
      });
      // A lower bound only: a loaded machine can make it later, never earlier.
      assert.ok(ms >= 17, `reset after ${ms.toFixed(1)} ms`);
    } finally {
      await lab.close();
    }
  });
});

/** Sends a whole ClientHello; how the connection ended: 'eof' (a FIN), 'reset' (a RST), 'answered', 'silent'. */
function sendHello(address: string, port: number, hello: Buffer): Promise<'eof' | 'reset' | 'answered' | 'silent'> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port, noDelay: true }, () => s.write(hello));
    s.setTimeout(3000, () => {
      s.destroy();
      resolve('silent');
    });
    s.on('data', () => {
      s.destroy();
      resolve('answered');
    });
    s.on('end', () => {
      s.destroy();
      resolve('eof');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNRESET' ? 'reset' : 'silent'));
  });
}

describe('startLab(scenario) behaviours of the webconnectivityqa cases', () => {
  const QA = String.raw`
name: qa-features
seed: 1
world:
  sites:
    - { domain: cdn.example, captcha: true }
    - { domain: home.example, down: localhost }
    - { domain: eof.example }
    - { domain: rst.example }
  resolvers: { isp: { ghost: ['^ghost\.example$'] }, public: {} }
  helper: true
censors:
  - name: gfw
    layer: national
    sni_reset: { rules: ['^eof\.example$'], close: eof, residual_s: 0 }
    http_reset: { host_rules: ['^eof\.example$'], close: eof, residual_s: 0 }
  - name: gfw2
    layer: national
    sni_reset: { rules: ['^rst\.example$'], residual_s: 0 }
`;
  let lab: Lab;
  before(async () => {
    lab = await startLab(parseScenario(QA, '/tmp/qa-features.yaml'), { standardPorts: false });
  });
  after(() => lab.close());

  it('captcha: a 503 challenge page to the probe, the genuine page to the test helper, over http and https', async () => {
    const probe = await httpTry(lab, 'cdn.example', '/', 'cdn.example', lab.clientAddress(0));
    assert.ok(
      probe.ok && /^HTTP\/1\.1 503 /.test(probe.data) && /<title>Just a moment\.\.\.<\/title>/.test(probe.data),
      probe.ok ? probe.data.slice(0, 200) : probe.code,
    );
    const helper = await httpTry(lab, 'cdn.example', '/', 'cdn.example', helperSource(lab));
    assert.ok(
      helper.ok && /^HTTP\/1\.1 200 /.test(helper.data) && /<title>cdn\.example<\/title>/.test(helper.data),
      helper.ok ? helper.data.slice(0, 200) : helper.code,
    );
    const site = lab.sites.find((s) => s.domain === 'cdn.example')!;
    const overTls = (localAddress: string) =>
      new Promise<string>((resolve) => {
        const s = tls.connect(
          {
            host: site.address,
            port: site.httpsPort!,
            servername: 'cdn.example',
            ca: [lab.ca.certPem],
            localAddress,
          } as tls.ConnectionOptions,
          () => s.write('GET / HTTP/1.1\r\nHost: cdn.example\r\nConnection: close\r\n\r\n'),
        );
        let data = '';
        s.on('data', (d: Buffer) => (data += d.toString('latin1')));
        s.on('end', () => resolve(data.split('\r\n')[0]!));
        s.on('error', (e) => resolve(`error ${e.message}`));
      });
    assert.equal(await overTls(lab.clientAddress(1)), 'HTTP/1.1 503 Service Unavailable');
    assert.equal(await overTls(helperSource(lab)), 'HTTP/1.1 200 OK');
  });

  it('ghost: the ISP resolver answers an address where nothing listens; the public resolver says the name does not exist', async () => {
    const ghost = lab.range.replace(/0\.0\/16$/, '0.9');
    assert.deepEqual(await dnsAsk(lab, 'ghost.example'), [ghost]);
    assert.deepEqual(await dnsAsk(lab, 'ghost.example', lab.publicResolver), []);
    for (const port of [80, 443]) {
      const code = await new Promise<string>((resolve) => {
        const s = net.connect({ host: ghost, port });
        s.on('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      assert.equal(code, 'ECONNREFUSED');
    }
  });

  it('down: localhost: the name resolves to 127.0.0.1 for everyone and the lab serves nothing for it', async () => {
    assert.deepEqual(await dnsAsk(lab, 'home.example'), ['127.0.0.1']);
    assert.deepEqual(await dnsAsk(lab, 'home.example', lab.publicResolver), ['127.0.0.1']);
    const site = lab.sites.find((s) => s.domain === 'home.example')!;
    assert.deepEqual([site.httpPort, site.httpsPort], [null, null]);
  });

  it('close: eof ends the connection with a FIN (the client reads EOF), the default with a RST', async () => {
    const eof = lab.sites.find((s) => s.domain === 'eof.example')!;
    const rst = lab.sites.find((s) => s.domain === 'rst.example')!;
    assert.equal(await sendHello(eof.address, eof.httpsPort!, await helloFor('eof.example')), 'eof');
    assert.equal(await sendHello(rst.address, rst.httpsPort!, await helloFor('rst.example')), 'reset');
    const http = await httpTry(lab, 'eof.example', '/', 'eof.example', lab.clientAddress(2));
    assert.deepEqual(http, { ok: true, data: '' });
    // The helper stands outside the censors.
    assert.deepEqual(await tlsTry(lab, 'eof.example', 'eof.example', helperSource(lab)), { ok: true, data: '' });
  });
});
