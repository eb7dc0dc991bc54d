import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Verdict } from '../model/index.js';
import { createCA, issueCert, type CA } from './ca.js';
import dnsPacket from 'dns-packet';
import {
  startDnsServer,
  startSite,
  startRawServer,
  startBlackhole,
  page,
  type Site,
  type DnsServer,
  type DnsBehaviour,
} from '../testing/probe-servers.js';
import { startTestHelper, type TestHelper } from './helper.js';
import { measureMany } from './runner.js';
import { measureWebConnectivity, DEFAULT_DECOY, type ProbeOptions, type SniVariant, type ResidualCheck } from './webconnectivity.js';

/** The helper's source address: the censor fronts exempt it (it stands outside the censors). */
const HELPER_SOURCE = '127.0.0.9';

/** A front that resets flows whose first bytes contain `trigger`, else relays to `upstream`; optional residual blocking. */
async function startCensorFront(upstream: Site, trigger: string, residualMs: number, host: string): Promise<Site & { resets: number }> {
  let blockedUntil = 0;
  const state = { resets: 0 };
  const site = await startRawServer((s) => {
    s.once('data', (first: Buffer) => {
      const now = Date.now();
      const exempt = s.remoteAddress === HELPER_SOURCE || s.remoteAddress === `::ffff:${HELPER_SOURCE}`;
      if (!exempt && (first.includes(Buffer.from(trigger)) || now < blockedUntil)) {
        if (first.includes(Buffer.from(trigger)) && residualMs > 0) blockedUntil = now + residualMs;
        state.resets++;
        s.resetAndDestroy();
        return;
      }
      const up = net.connect(upstream.port, upstream.host);
      up.on('error', () => s.destroy());
      s.on('close', () => up.destroy());
      up.write(first);
      s.pipe(up).pipe(s);
    });
  }, host);
  return Object.assign(site, {
    get resets() {
      return state.resets;
    },
  });
}

describe('measureWebConnectivity(url, opts)', () => {
  let ca: CA;
  let dns: DnsServer;
  let publicDns: DnsServer;
  let helper: TestHelper;
  const sites: Site[] = [];
  let opts: ProbeOptions;
  const port: Record<string, number> = {};

  before(async () => {
    ca = await createCA();
    const leaf = await issueCert(ca, ['ok.test', 'sni.test', 'gfw.test', 'inject.test']);
    const https = await startSite({ host: '127.0.0.2', tls: { cert: leaf.chainPem, key: leaf.keyPem }, title: 'Welcome to the test site' });
    const http = await startSite({ host: '127.0.0.2', title: 'Welcome to the test site' });
    sites.push(https, http);
    const regional = await startCensorFront(https, 'sni.test', 0, '127.0.0.3');
    const national = await startCensorFront(https, 'gfw.test', 60_000, '127.0.0.4');
    const httpFront = await startCensorFront(http, 'host: hreset.test', 0, '127.0.0.5');
    sites.push(regional, national, httpFront);
    port.https = https.port;
    port.http = http.port;
    port.regional = regional.port;
    port.national = national.port;
    port.httpFront = httpFront.port;
    const otherCa = await createCA('someone else');
    const mitmLeaf = await issueCert(otherCa, ['mitm.test']);
    const mitm = await startSite({ host: '127.0.0.7', tls: { cert: mitmLeaf.chainPem, key: mitmLeaf.keyPem } });
    const blockpage = await startSite({
      host: '127.0.0.6',
      handler: (req, res) => {
        const fromHelper = req.socket.remoteAddress === HELPER_SOURCE;
        res.writeHead(fromHelper ? 200 : 403, { 'content-type': 'text/html' });
        res.end(fromHelper ? page('Welcome to the news site', 3000) : '<html><title>Access denied</title>blocked by your ISP</html>');
      },
    });
    const doh = await startSite({
      host: '127.0.0.8',
      handler: (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const q = dnsPacket.decode(Buffer.concat(chunks));
          const question = q.questions![0]!;
          const answers =
            question.name === 'ok.test' && question.type === 'A'
              ? [{ type: 'A' as const, name: question.name, ttl: 60, data: '127.0.0.2' }]
              : [];
          res.writeHead(200, { 'content-type': 'application/dns-message' });
          res.end(dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: q.questions, answers }));
        });
      },
    });
    const redirLeaf = await issueCert(ca, ['redir.test']);
    const redir = await startSite({
      host: '127.0.0.2',
      tls: { cert: redirLeaf.chainPem, key: redirLeaf.keyPem },
      handler: (req, res) => {
        const to =
          req.url === '/to-national'
            ? `https://gfw.test:${port.national}/`
            : req.url === '/to-http-reset'
              ? `http://hreset.test:${port.httpFront}/`
              : `https://sni.test:${port.regional}/`;
        res.writeHead(302, { location: to });
        res.end();
      },
    });
    sites.push(mitm, blockpage, doh, redir);
    port.redir = redir.port;
    port.mitm = mitm.port;
    port.blockpage = blockpage.port;
    port.doh = doh.port;
    const zone = {
      'ok.test': { kind: 'answer', addrs: ['127.0.0.2'] },
      'sni.test': { kind: 'answer', addrs: ['127.0.0.3'] },
      'gfw.test': { kind: 'answer', addrs: ['127.0.0.4'] },
      'hreset.test': { kind: 'answer', addrs: ['127.0.0.5'] },
      'mitm.test': { kind: 'answer', addrs: ['127.0.0.7'] },
      'news.test': { kind: 'answer', addrs: ['127.0.0.6'] },
      'hole.test': { kind: 'answer', addrs: ['127.0.0.1'] },
      'redir.test': { kind: 'answer', addrs: ['127.0.0.2'] },
    } satisfies Record<string, DnsBehaviour>;
    dns = await startDnsServer({
      ...zone,
      'inject.test': { kind: 'inject', forged: ['127.0.0.66'], addrs: ['127.0.0.2'], delayMs: 30 },
    });
    publicDns = await startDnsServer({ ...zone, 'inject.test': { kind: 'answer', addrs: ['127.0.0.2'] } });
    helper = await startTestHelper({
      host: '127.0.0.1',
      port: 0,
      resolver: publicDns.address,
      ca: [ca.certPem],
      allowNet: ['127.0.0.0/8'],
      timeoutMs: 2000,
      localAddress: HELPER_SOURCE,
    });
    opts = { resolver: dns.address, helper: helper.url, ca: [ca.certPem], allowNet: ['127.0.0.0/8'], timeoutMs: 2000, dnsWindowMs: 200 };
  });
  after(async () => {
    await helper.close();
    await dns.close();
    await publicDns.close();
    await Promise.all(sites.map((s) => s.close()));
  });

  it('records a healthy https site with every building block and a matching control', async () => {
    const m = await measureWebConnectivity(`https://ok.test:${port.https}/`, opts);
    const tk = m.test_keys;
    assert.equal(m.data_format_version, '0.2.0');
    assert.equal(m.test_name, 'web_connectivity');
    assert.equal(m.probe_cc, 'ZZ');
    assert.equal(m.probe_asn, 'AS0');
    assert.equal(tk.dns_experiment_failure, null);
    assert.deepEqual(
      tk.queries!.map((q) => [q.engine, q.query_type, q.failure]),
      [
        ['udp', 'A', null],
        ['udp', 'AAAA', 'dns_no_answer'],
      ],
    );
    assert.equal(tk.tcp_connect![0]!.status.success, true);
    const hs = tk.tls_handshakes![0]!;
    assert.equal(hs.failure, null);
    assert.equal(hs.server_name, 'ok.test');
    assert.match(hs.tls_version, /^TLSv1\.[23]$/);
    assert.ok(hs.cipher_suite.startsWith('TLS_'));
    assert.equal(hs.peer_certificates!.length, 2, 'leaf and CA');
    assert.equal(tk.requests![0]!.response!.code, 200);
    assert.equal(tk.http_experiment_failure, null);
    assert.equal(tk.control_failure, null);
    assert.equal(tk.dns_consistency, 'consistent');
    assert.equal(tk.body_length_match, true);
    assert.equal(tk.status_code_match, true);
    assert.equal(tk.title_match, true);
    assert.equal(tk.headers_match, true);
    const variants = tk.x_tls_sni_variants as SniVariant[];
    assert.deepEqual(
      variants.map((v) => [v.tag, v.failure]),
      [
        ['decoy-before', null],
        ['no-sni', null],
      ],
    );
    assert.ok(tk.network_events!.some((e) => e.operation === 'read' && (e.num_bytes ?? 0) > 0));
    assert.deepEqual(tk.x_dns_duplicate_responses, []);
    assert.equal(tk.blocking, false);
    assert.equal(tk.accessible, true);
    assert.equal((tk.x_verdict as Verdict).status, 'ok');
  });

  it('records a healthy http site', async () => {
    const m = await measureWebConnectivity(`http://ok.test:${port.http}/`, opts);
    assert.equal(m.test_keys.tls_handshakes, null);
    assert.equal(m.test_keys.requests![0]!.response!.code, 200);
    assert.equal(m.test_keys.title_match, true);
  });

  it('keeps the second DNS reply to one query (the injection signature)', async () => {
    const m = await measureWebConnectivity(`https://inject.test:${port.https}/`, { ...opts, dnsWindowMs: 1500 });
    const tk = m.test_keys;
    assert.deepEqual(
      tk.queries![0]!.answers!.map((a) => a.ipv4),
      ['127.0.0.66'],
    );
    const dups = tk.x_dns_duplicate_responses!;
    assert.ok(
      dups.some((q) => q.query_type === 'A' && q.answers?.[0]?.ipv4 === '127.0.0.2'),
      JSON.stringify(dups),
    );
    assert.equal(tk.dns_consistency, 'inconsistent');
    assert.equal(tk.tcp_connect![0]!.status.failure, 'connection_refused');
  });

  it('a reply that arrives after the connects started is still recorded and decides the verdict (measureMany frees the slot, not the evidence)', async () => {
    // The forged reply comes first and the connects start on it; the genuine one comes 300 ms later,
    // while the resolver is still listening. Through measureMany, whose slot is given back once the
    // network work is done, before the window closes.
    const late = await startDnsServer({ 'inject.test': { kind: 'inject', forged: ['127.0.0.66'], addrs: ['127.0.0.2'], delayMs: 300 } });
    try {
      const got: Array<import('../model/index.js').Measurement<import('../model/index.js').WebConnectivityTestKeys>> = [];
      const urls = [`https://inject.test:${port.https}/`, `http://inject.test:${port.http}/`];
      await measureMany(
        urls.map((url) => ({ url })),
        { ...opts, resolver: late.address, dnsWindowMs: 1000 },
        1,
        (r) => {
          assert.ok(r.ok);
          got.push(r.measurement);
        },
      );
      assert.deepEqual(got.map((m) => m.input).sort(), [...urls].sort());
      for (const m of got) {
        const tk = m.test_keys;
        assert.deepEqual(
          tk.queries![0]!.answers!.map((a) => a.ipv4),
          ['127.0.0.66'],
          'the connects ran on the forged first answer',
        );
        const dup = tk.x_dns_duplicate_responses!.find((q) => q.query_type === 'A' && q.answers?.[0]?.ipv4 === '127.0.0.2');
        assert.ok(dup, JSON.stringify(tk.x_dns_duplicate_responses));
        assert.ok(
          dup.t > tk.tcp_connect![0]!.t0!,
          `the genuine reply (t=${dup.t}) came after the connect started (t0=${tk.tcp_connect![0]!.t0})`,
        );
        const v = tk.x_verdict as Verdict;
        assert.equal(v.mechanism, 'dns.injection');
        assert.equal(v.layer, 'national');
        assert.match(v.explanation, /two different replies/, 'decided by the late reply');
        assert.equal(tk.blocking, 'dns');
      }
    } finally {
      await late.close();
    }
  });

  it('with dnsTcp asks the resolver over TCP too: an on-path injector forges UDP only, a lying resolver both', async () => {
    const ans = (q: { answers?: Array<{ ipv4?: string }> | null }): string[] => (q.answers ?? []).flatMap((a) => (a.ipv4 ? [a.ipv4] : []));
    const m = await measureWebConnectivity(`https://inject.test:${port.https}/`, { ...opts, dnsTcp: true });
    const qs = m.test_keys.queries!;
    const udpA = qs.find((q) => q.engine === 'udp' && q.query_type === 'A')!;
    const tcpQs = qs.filter((q) => q.engine === 'tcp');
    assert.deepEqual(
      tcpQs.map((q) => [q.query_type, q.tags]),
      [
        ['A', ['x_dns_tcp=compare']],
        ['AAAA', ['x_dns_tcp=compare']],
      ],
    );
    assert.deepEqual(ans(udpA), ['127.0.0.66'], 'UDP: the forged reply came first');
    assert.deepEqual(ans(tcpQs[0]!), ['127.0.0.2'], 'TCP: the genuine answer');
    // Evidence only: the probe dials what UDP gave it, as without --dns-tcp.
    assert.deepEqual(
      m.test_keys.tcp_connect!.map((c) => c.ip),
      ['127.0.0.66'],
    );
    // The extra queries do not disturb the verdict (the analysis does not compare UDP with TCP yet).
    const v = m.test_keys.x_verdict as Verdict;
    const without = (await measureWebConnectivity(`https://inject.test:${port.https}/`, opts)).test_keys.x_verdict as Verdict;
    assert.deepEqual([v.mechanism, v.layer], ['dns.injection', 'national']);
    assert.deepEqual([without.mechanism, without.layer], [v.mechanism, v.layer]);
    // A resolver that lies (here: an address nobody else sees) lies over TCP as well.
    const lying = await startDnsServer({ 'ok.test': { kind: 'answer', addrs: ['127.0.0.77'] } });
    try {
      const l = await measureWebConnectivity(`https://ok.test:${port.https}/`, {
        ...opts,
        resolver: lying.address,
        dnsTcp: true,
        timeoutMs: 500,
      });
      const lq = l.test_keys.queries!.filter((q) => q.query_type === 'A');
      assert.deepEqual(
        lq.map((q) => [q.engine, ans(q)]),
        [
          ['udp', ['127.0.0.77']],
          ['tcp', ['127.0.0.77']],
        ],
      );
    } finally {
      await lying.close();
    }
    const plain = await measureWebConnectivity(`https://ok.test:${port.https}/`, opts);
    assert.equal(plain.test_keys.queries!.filter((q) => q.engine === 'tcp').length, 0, 'no TCP queries without dnsTcp');
  });

  it('SNI reset without residual: decoys before and after succeed', async () => {
    const m = await measureWebConnectivity(`https://sni.test:${port.regional}/`, opts);
    const tk = m.test_keys;
    assert.equal(tk.tls_handshakes![0]!.failure, 'connection_reset');
    assert.equal(typeof (tk.tls_handshakes![0] as { x_reset_latency_ms?: number }).x_reset_latency_ms, 'number');
    assert.equal(tk.http_experiment_failure, 'connection_reset');
    const v = tk.x_tls_sni_variants as SniVariant[];
    assert.deepEqual(
      v.map((x) => [x.tag, x.failure]),
      [
        ['decoy-before', null],
        ['no-sni', null],
        ['decoy-after', null],
      ],
    );
    const verdict = tk.x_verdict as Verdict;
    assert.deepEqual([tk.blocking, verdict.mechanism, verdict.layer], ['http-failure', 'tls.reset', 'regional']);
  });

  it('SNI reset with residual blocking: the decoy after the trigger fails too', async () => {
    const m = await measureWebConnectivity(`https://gfw.test:${port.national}/`, opts);
    const v = m.test_keys.x_tls_sni_variants as SniVariant[];
    assert.deepEqual(
      v.map((x) => [x.tag, x.failure]),
      [
        ['decoy-before', null],
        ['no-sni', null],
        ['decoy-after', 'connection_reset'],
      ],
    );
    assert.equal((m.test_keys.x_verdict as Verdict).layer, 'national');
  });

  it('HTTP Host reset: records the reset latency and a residual check', async () => {
    const m = await measureWebConnectivity(`http://hreset.test:${port.httpFront}/`, opts);
    const tk = m.test_keys;
    assert.equal(tk.http_experiment_failure, 'connection_reset');
    assert.equal(typeof (tk.requests![0] as { x_reset_latency_ms?: number }).x_reset_latency_ms, 'number');
    const r = tk.x_residual_checks as ResidualCheck[];
    assert.equal(r.length, 1);
    assert.equal(r[0]!.failure, null);
    assert.equal(r[0]!.status_code, 200);
  });

  it('scrubs the probe IP from every string, and never dials outside --allow-net', async () => {
    const m = await measureWebConnectivity(`http://ok.test:${port.http}/`, { ...opts, probeIps: ['127.0.0.2'] });
    const text = JSON.stringify(m);
    assert.ok(!/(?<![\d.])127\.0\.0\.2(?!\d)/.test(text));
    assert.ok(text.includes('[scrubbed]'));
    const refused = await measureWebConnectivity(`http://ok.test:${port.http}/`, { ...opts, allowNet: ['127.0.0.1/32'] });
    assert.match(String(refused.test_keys.tcp_connect![0]!.status.failure), /outside --allow-net/);
  });

  it('scrubs the probe IP inside a non-UTF-8 body (kept as base64) and in response headers', async () => {
    const me = '203.0.113.9';
    const echo = await startSite({
      host: '127.0.0.2',
      handler: (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-client-ip': me });
        res.end(Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from(`<title>t</title>client=${me};`), Buffer.from([0xc3])]));
      },
    });
    sites.push(echo);
    const m = await measureWebConnectivity(`http://ok.test:${echo.port}/`, { ...opts, probeIps: [me] });
    const r0 = m.test_keys.requests![0]!;
    const body = r0.response!.body as { format: string; data: string };
    assert.equal(body.format, 'base64');
    const bytes = Buffer.from(body.data, 'base64');
    assert.ok(!bytes.includes(me), "the address is gone from the body's bytes");
    assert.ok(bytes.includes('client=[scrubbed];'));
    assert.equal(bytes[0], 0xff, 'the rest of the bytes kept');
    assert.ok(!JSON.stringify(m).includes(me));
    assert.equal(r0.response!.headers['x-client-ip'], '[scrubbed]');
  });

  it('records a certificate from an unknown authority with its chain (a MITM)', async () => {
    const m = await measureWebConnectivity(`https://mitm.test:${port.mitm}/`, opts);
    const hs = m.test_keys.tls_handshakes![0]!;
    assert.equal(hs.failure, 'ssl_unknown_authority');
    assert.ok(hs.peer_certificates!.length >= 1);
    assert.equal(m.test_keys.http_experiment_failure, 'ssl_unknown_authority');
    assert.equal(m.test_keys.requests![0]!.response, null);
  });

  it('records a block page in full and the HTTP comparisons that expose it', async () => {
    const m = await measureWebConnectivity(`http://news.test:${port.blockpage}/`, opts);
    const tk = m.test_keys;
    assert.equal(tk.http_experiment_failure, null);
    assert.equal(tk.requests![0]!.response!.code, 403);
    assert.match(String(tk.requests![0]!.response!.body), /blocked by your ISP/);
    assert.equal(tk.status_code_match, false);
    assert.equal(tk.title_match, false);
    assert.equal(tk.body_length_match, false);
    assert.equal(tk.dns_consistency, 'consistent');
  });

  it('records NXDOMAIN as the DNS failure and does not dial', async () => {
    const m = await measureWebConnectivity(`http://nowhere.test:${port.http}/`, opts);
    const tk = m.test_keys;
    assert.equal(tk.dns_experiment_failure, 'dns_nxdomain_error');
    assert.deepEqual(tk.tcp_connect, []);
    assert.equal(tk.http_experiment_failure, 'dns_nxdomain_error');
    assert.equal((tk.control as { dns: { failure: string } }).dns.failure, 'dns_name_error');
    assert.equal(tk.dns_consistency, 'consistent');
  });

  it('resolves over DoH when given only --doh', async () => {
    const { resolver: _r, ...noUdp } = opts;
    const m = await measureWebConnectivity(`http://ok.test:${port.http}/`, { ...noUdp, doh: `http://127.0.0.8:${port.doh}/dns-query` });
    assert.deepEqual(
      m.test_keys.queries!.map((q) => [q.engine, q.query_type, q.failure]),
      [
        ['doh', 'A', null],
        ['doh', 'AAAA', 'dns_no_answer'],
      ],
    );
    assert.equal(m.test_keys.requests![0]!.response!.code, 200);
  });

  it('measures an IP-literal URL without DNS', async () => {
    const m = await measureWebConnectivity(`http://127.0.0.2:${port.http}/`, opts);
    assert.deepEqual(m.test_keys.queries, []);
    assert.equal(m.test_keys.dns_consistency, 'consistent');
    assert.equal(m.test_keys.requests![0]!.response!.code, 200);
  });

  it('in lab mode without a resolver, never falls back to the system resolver', async () => {
    const { resolver: _r, ...noResolver } = opts;
    const m = await measureWebConnectivity(`http://localhost:${port.http}/`, noResolver);
    assert.match(String(m.test_keys.dns_experiment_failure), /lab mode: no resolver/);
    assert.deepEqual(m.test_keys.tcp_connect, []);
  });

  it('starts HTTP on the first live endpoint without waiting for a null-routed one (whose server would close the idle connection)', async (t) => {
    const hole = await startBlackhole(); // 127.0.0.1:P, SYNs unanswered
    t.after(() => hole.close());
    // The live address serves on the same port, and (like many servers) closes a connection that
    // sent nothing for 300 ms.
    const conns = new Set<net.Socket>();
    const live = net.createServer((s) => {
      conns.add(s);
      s.on('error', () => {});
      const idle = setTimeout(() => s.destroy(), 300);
      s.once('data', () => {
        clearTimeout(idle);
        s.end('HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 20\r\nconnection: close\r\n\r\n<title>live</title>\n');
      });
      s.on('close', () => {
        clearTimeout(idle);
        conns.delete(s);
      });
    });
    await new Promise<void>((r) => live.listen(hole.port, '127.0.0.12', r));
    t.after(
      () =>
        new Promise<void>((r) => {
          for (const c of conns) c.destroy();
          live.close(() => r());
        }),
    );
    const two = await startDnsServer({ 'two.test': { kind: 'answer', addrs: ['127.0.0.12', '127.0.0.1'] } });
    t.after(() => two.close());
    const m = await measureWebConnectivity(`http://two.test:${hole.port}/`, { ...opts, resolver: two.address, connectTimeoutMs: 1000 });
    const tk = m.test_keys;
    assert.deepEqual(
      tk.tcp_connect!.map((c) => [c.ip, c.status.failure]),
      [
        ['127.0.0.12', null],
        ['127.0.0.1', 'generic_timeout_error'],
      ],
    );
    assert.equal(tk.requests![0]!.failure, null, `the request went out before the server gave up: ${tk.requests![0]!.failure}`);
    assert.equal(tk.requests![0]!.response!.code, 200);
    assert.ok(tk.requests![0]!.t < tk.tcp_connect![1]!.t, 'answered before the other address timed out');
  });

  it('a null-routed address costs one connect timeout: the follow-ups run alongside', async (t) => {
    const hole = await startBlackhole();
    t.after(() => hole.close());
    const m = await measureWebConnectivity(`https://hole.test:${hole.port}/`, { ...opts, connectTimeoutMs: 400 });
    const tk = m.test_keys;
    const real = tk.tcp_connect![0]!;
    assert.equal(real.status.failure, 'generic_timeout_error');
    assert.deepEqual(tk.tls_handshakes, []);
    assert.equal(tk.http_experiment_failure, 'generic_timeout_error');
    const v = tk.x_tls_sni_variants as SniVariant[];
    assert.deepEqual(
      v.map((x) => [x.tag, x.failure]),
      [
        ['decoy-before', 'generic_timeout_error'],
        ['no-sni', 'generic_timeout_error'],
      ],
    );
    // Overlap, read from the evidence: the real connect started before the follow-ups had ended.
    assert.ok(
      v.every((x) => real.t0! < x.t),
      JSON.stringify({ v, real }),
    );
  });

  it('survives a hostile test helper: garbage shapes, non-JSON, errors, silence', async () => {
    const replies: Array<(res: import('node:http').ServerResponse) => void> = [
      (res) => res.end(JSON.stringify({ dns: { failure: null, addrs: 'not-an-array' }, http_request: {}, tcp_connect: {} })),
      (res) => res.end('<html>not json</html>'),
      (res) => {
        res.writeHead(500);
        res.end('{}');
      },
      () => {}, // never answers
    ];
    let i = 0;
    const bad = await startSite({ host: '127.0.0.1', handler: (_req, res) => replies[i]!(res) });
    try {
      const failures: unknown[] = [];
      for (i = 0; i < replies.length; i++) {
        const m = await measureWebConnectivity(`http://ok.test:${port.http}/`, {
          ...opts,
          helper: `http://127.0.0.1:${bad.port}/`,
          controlTimeoutMs: 300,
        });
        assert.equal(m.test_keys.requests![0]!.response!.code, 200, "the probe's own evidence is kept");
        assert.deepEqual(m.test_keys.control, {});
        failures.push(m.test_keys.control_failure);
      }
      assert.deepEqual(failures, [
        'unknown_failure: bad control response: dns',
        'json_parse_error',
        'unknown_failure: test helper answered HTTP 500',
        'generic_timeout_error',
      ]);
    } finally {
      await bad.close();
    }
  });

  it("keeps a redirect target's DNS, connect and handshake as depth=1 evidence, with its residual follow-up", async () => {
    const m = await measureWebConnectivity(`https://redir.test:${port.redir}/to-regional`, opts);
    const tk = m.test_keys;
    assert.deepEqual(
      tk.requests!.map((r) => [r.request.url, r.failure]),
      [
        [`https://sni.test:${port.regional}/`, 'connection_reset'],
        [`https://redir.test:${port.redir}/to-regional`, null],
      ],
    );
    const hopQ = tk.queries!.filter((q) => q.tags?.includes('depth=1'));
    assert.deepEqual(
      hopQ.map((q) => [q.hostname, q.query_type]),
      [
        ['sni.test', 'A'],
        ['sni.test', 'AAAA'],
      ],
    );
    const hopTls = tk.tls_handshakes!.filter((h) => h.tags?.includes('depth=1'));
    assert.deepEqual(
      hopTls.map((h) => [h.server_name, h.failure]),
      [['sni.test', 'connection_reset']],
    );
    assert.ok(tk.tcp_connect!.some((c) => c.tags?.includes('depth=1') && c.status.success));
    const v = tk.x_tls_sni_variants as SniVariant[];
    // The hop's endpoint gets the first hop's follow-ups: decoy-before and no-sni alongside its
    // connect, decoy-after once its real handshake was reset.
    assert.deepEqual(
      v.filter((x) => x.address === hopTls[0]!.address).map((x) => [x.tag, x.server_name, x.failure]),
      [
        ['decoy-before', DEFAULT_DECOY, null],
        ['no-sni', null, null],
        ['decoy-after', DEFAULT_DECOY, null],
      ],
    );
    const before = v.find((x) => x.address === hopTls[0]!.address && x.tag === 'decoy-before')!;
    assert.ok(before.t <= (hopTls[0]!.t0 ?? -1), 'decoy-before finished before the real handshake started');
    // The analysis reads them on the hop's address: no residual -> the regional firewall.
    const verdict = tk.x_verdict as Verdict;
    assert.deepEqual([verdict.mechanism, verdict.layer], ['tls.reset', 'regional']);
    assert.ok(
      (verdict.evidence ?? []).some((r) => r.startsWith('x_tls_sni_variants[')),
      (verdict.evidence ?? []).join(' '),
    );
    const nat = await measureWebConnectivity(`https://redir.test:${port.redir}/to-national`, opts);
    const nv = (nat.test_keys.x_tls_sni_variants as SniVariant[]).filter((x) => x.tag === 'decoy-after');
    assert.deepEqual(
      nv.map((x) => x.failure),
      ['connection_reset'],
    );
    assert.equal((nat.test_keys.x_verdict as Verdict).layer, 'national');
  });

  it('makes the HTTP residual check for a plain-HTTP redirect hop that was reset, and the analysis reads it', async () => {
    const m = await measureWebConnectivity(`https://redir.test:${port.redir}/to-http-reset`, opts);
    const tk = m.test_keys;
    assert.deepEqual(
      tk.requests!.map((r) => [r.request.url, r.failure]),
      [
        [`http://hreset.test:${port.httpFront}/`, 'connection_reset'],
        [`https://redir.test:${port.redir}/to-http-reset`, null],
      ],
    );
    const rc = tk.x_residual_checks as ResidualCheck[];
    assert.deepEqual(
      rc.map((r) => [r.address, r.host, r.failure]),
      [[`127.0.0.5:${port.httpFront}`, DEFAULT_DECOY, null]],
    );
    const verdict = tk.x_verdict as Verdict;
    assert.deepEqual([verdict.mechanism, verdict.layer], ['http.reset', 'regional'], verdict.explanation);
    assert.ok((verdict.evidence ?? []).includes('x_residual_checks[0]'), (verdict.evidence ?? []).join(' '));
  });

  it('makes no follow-ups for a redirect hop without attribution', async () => {
    const m = await measureWebConnectivity(`https://redir.test:${port.redir}/to-regional`, { ...opts, attribution: false });
    assert.deepEqual(m.test_keys.x_tls_sni_variants, []);
    assert.deepEqual(m.test_keys.x_residual_checks, []);
  });

  it('uses the decoy name it is given (--decoy-sni), and the default is none of the usual test names', async () => {
    assert.ok(!/example/.test(DEFAULT_DECOY), DEFAULT_DECOY);
    // A censor that blocks the decoy name itself (www.example.com, a common test target) makes the
    // decoy-before fail: with that name the SNI filter looks like IP blocking.
    const exampleFront = await startCensorFront(sites[0]!, 'www.example.com', 0, '127.0.0.10');
    sites.push(exampleFront);
    const zoneDns = await startDnsServer({ 'sni.test': { kind: 'answer', addrs: ['127.0.0.10'] } });
    try {
      const withExample = await measureWebConnectivity(`https://sni.test:${exampleFront.port}/`, {
        ...opts,
        resolver: zoneDns.address,
        decoySni: 'www.example.com',
      });
      const ve = withExample.test_keys.x_tls_sni_variants as SniVariant[];
      assert.deepEqual(
        ve.map((x) => [x.tag, x.server_name, x.failure]),
        [
          ['decoy-before', 'www.example.com', 'connection_reset'],
          ['no-sni', null, null],
        ],
      );
      const withDefault = await measureWebConnectivity(`https://sni.test:${exampleFront.port}/`, { ...opts, resolver: zoneDns.address });
      const vd = withDefault.test_keys.x_tls_sni_variants as SniVariant[];
      assert.deepEqual(
        vd.map((x) => [x.tag, x.server_name, x.failure]),
        [
          ['decoy-before', DEFAULT_DECOY, null],
          ['no-sni', null, null],
        ],
      );
      assert.equal(withDefault.test_keys.requests![0]!.failure, null, 'the site itself is not blocked');
      const custom = await measureWebConnectivity(`http://hreset.test:${port.httpFront}/`, { ...opts, decoySni: 'my.decoy.test' });
      assert.deepEqual(
        (custom.test_keys.x_residual_checks as ResidualCheck[]).map((r) => r.host),
        ['my.decoy.test'],
      );
    } finally {
      await zoneDns.close();
    }
  });

  it('rejects what is not an http(s) URL', async () => {
    await assert.rejects(measureWebConnectivity('not a url', opts), TypeError);
    await assert.rejects(measureWebConnectivity('ftp://ok.test/', opts), /not an http\(s\) URL/);
  });
});
