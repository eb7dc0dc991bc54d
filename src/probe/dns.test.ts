import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { startDnsServer, type DnsServer } from '../testing/probe-servers.js';
import { resolveUdp, resolveTcp, resolveDoh, parseReply, encodeQuery } from './dns.js';
import { resolveName } from './resolve.js';
import { NetPolicy } from './policy.js';
import { Trace } from './trace.js';
import { startSite } from '../testing/probe-servers.js';

const open = new NetPolicy(undefined);
const lab = new NetPolicy(['127.0.0.0/8']);

describe('resolveUdp(name, type, resolver, policy, opts)', () => {
  let dns: DnsServer;
  before(async () => {
    dns = await startDnsServer({
      'ok.test': { kind: 'answer', addrs: ['127.0.0.2', '::1'] },
      'inject.test': { kind: 'inject', forged: ['127.0.0.66'], addrs: ['127.0.0.2'], delayMs: 20 },
      'silent.test': { kind: 'silent' },
      'malformed.test': { kind: 'malformed' },
      'truncated.test': { kind: 'truncated', addrs: ['127.0.0.2'] },
      'wrongid.test': { kind: 'wrong-id', addrs: ['127.0.0.2'] },
      'servfail.test': { kind: 'servfail' },
    });
  });
  after(() => dns.close());

  it('returns the answers of the first reply', async () => {
    const r = await resolveUdp('ok.test', 'A', dns.address, lab, { trace: new Trace(), timeoutMs: 1000, windowMs: 50 });
    assert.deepEqual(r.addrs, ['127.0.0.2']);
    assert.equal(r.query.failure, null);
    assert.equal(r.query.rcode, 0);
    assert.equal(r.query.engine, 'udp');
    assert.ok(r.query.raw_response);
    assert.deepEqual(await r.late, []);
    const v6 = await resolveUdp('ok.test', 'AAAA', dns.address, lab, { trace: new Trace(), timeoutMs: 1000, windowMs: 10 });
    assert.deepEqual(v6.addrs, ['::1']);
  });

  it('keeps every reply within the window: two replies to one query', async () => {
    // A wide window: the second reply comes 20 ms after the first, even on a loaded machine.
    const r = await resolveUdp('inject.test', 'A', dns.address, lab, { trace: new Trace(), timeoutMs: 1000, windowMs: 1500 });
    assert.deepEqual(r.addrs, ['127.0.0.66']);
    const late = await r.late;
    assert.equal(late.length, 1);
    assert.equal(late[0]!.answers![0]!.ipv4, '127.0.0.2');
    assert.ok(late[0]!.t >= r.query.t);
  });

  it('keeps a forged A answer to a AAAA query as evidence, but never dials it', async () => {
    const r = await resolveUdp('inject.test', 'AAAA', dns.address, lab, { trace: new Trace(), timeoutMs: 1000, windowMs: 100 });
    assert.equal(r.query.answers![0]!.answer_type, 'A');
    assert.equal(r.query.answers![0]!.ipv4, '127.0.0.66');
    assert.equal(r.query.failure, 'dns_no_answer');
    assert.deepEqual(r.addrs, []);
    await r.late;
  });

  it('misses a reply that comes after the window closes', async () => {
    const r = await resolveUdp('inject.test', 'A', dns.address, lab, { trace: new Trace(), timeoutMs: 1000, windowMs: 0 });
    assert.deepEqual(await r.late, []);
  });

  it('times out within its budget when nobody answers', async () => {
    const t0 = Date.now();
    const r = await resolveUdp('silent.test', 'A', dns.address, lab, { trace: new Trace(), timeoutMs: 300 });
    assert.equal(r.query.failure, 'generic_timeout_error');
    assert.ok(Date.now() - t0 < 2000);
  });

  it('turns malformed and truncated replies into failures', async () => {
    const m = await resolveUdp('malformed.test', 'A', dns.address, lab, { trace: new Trace(), timeoutMs: 300 });
    assert.match(String(m.query.failure), /^unknown_failure: dns_malformed_reply/);
    const t = await resolveUdp('truncated.test', 'A', dns.address, lab, { trace: new Trace(), timeoutMs: 300 });
    assert.match(String(t.query.failure), /^unknown_failure: dns_malformed_reply/);
  });

  it('ignores replies with the wrong id, and says so when nothing else came', async () => {
    const r = await resolveUdp('wrongid.test', 'A', dns.address, lab, { trace: new Trace(), timeoutMs: 300 });
    assert.equal(r.query.failure, 'dns_reply_with_wrong_query_id');
  });

  it('maps rcodes to OONI failures', async () => {
    const nx = await resolveUdp('nothere.test', 'A', dns.address, lab, { trace: new Trace(), timeoutMs: 500, windowMs: 0 });
    assert.equal(nx.query.failure, 'dns_nxdomain_error');
    assert.equal(nx.query.rcode, 3);
    const sf = await resolveUdp('servfail.test', 'A', dns.address, lab, { trace: new Trace(), timeoutMs: 500, windowMs: 0 });
    assert.equal(sf.query.failure, 'dns_servfail_error');
  });

  it('refuses a resolver outside --allow-net without sending anything', async () => {
    const before = dns.queries;
    const r = await resolveUdp('ok.test', 'A', dns.address, new NetPolicy(['10.0.0.0/8']), { trace: new Trace(), timeoutMs: 300 });
    assert.match(String(r.query.failure), /outside --allow-net/);
    assert.equal(dns.queries, before);
  });

  it('bounds how many replies it keeps from a flooding server', async () => {
    const flood = dgram.createSocket('udp4');
    flood.on('message', (msg, rinfo) => {
      const reply = encodeQuery('flood.test', 'A', msg.readUInt16BE(0));
      reply[2] = 0x81; // QR=1: a response (no answers -> dns_no_answer)
      for (let i = 0; i < 100; i++) flood.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => flood.bind(0, '127.0.0.1', r));
    const r = await resolveUdp('flood.test', 'A', `127.0.0.1:${(flood.address() as AddressInfo).port}`, lab, {
      trace: new Trace(),
      timeoutMs: 500,
      windowMs: 300,
      maxReplies: 8,
    });
    const late = await r.late;
    flood.close();
    assert.equal(r.query.failure, 'dns_no_answer');
    assert.ok(late.length <= 7, `kept ${late.length}`);
  });
});

describe('resolveTcp(name, type, resolver, policy, opts)', () => {
  let dns: DnsServer;
  before(async () => {
    dns = await startDnsServer({ 'ok.test': { kind: 'answer', addrs: ['127.0.0.2'] }, 'silent.test': { kind: 'silent' } });
  });
  after(() => dns.close());
  it('resolves over a length-prefixed TCP stream', async () => {
    const r = await resolveTcp('ok.test', 'A', dns.address, open, { trace: new Trace(), timeoutMs: 1000 });
    assert.equal(r.query.engine, 'tcp');
    assert.deepEqual(r.addrs, ['127.0.0.2']);
  });
  it('times out when the server never answers', async () => {
    const r = await resolveTcp('silent.test', 'A', dns.address, open, { trace: new Trace(), timeoutMs: 300 });
    assert.equal(r.query.failure, 'generic_timeout_error');
  });
  it('reports a refused connection', async () => {
    const r = await resolveTcp('ok.test', 'A', '127.0.0.1:1', open, { trace: new Trace(), timeoutMs: 1000 });
    assert.equal(r.query.failure, 'connection_refused');
  });
});

describe('resolveDoh(name, type, url, policy, opts)', () => {
  it('posts application/dns-message and decodes the reply', async () => {
    const site = await startSite({
      handler: (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const q = Buffer.concat(chunks);
          const reply = Buffer.from(q);
          reply[2] = 0x81;
          reply[3] = 0x83; // NXDOMAIN
          res.writeHead(req.headers['content-type'] === 'application/dns-message' ? 200 : 415, {
            'content-type': 'application/dns-message',
          });
          res.end(reply);
        });
      },
    });
    try {
      const r = await resolveDoh('gone.test', 'A', `http://${site.address}/dns-query`, lab, { trace: new Trace(), timeoutMs: 1000 });
      assert.equal(r.query.engine, 'doh');
      assert.equal(r.query.failure, 'dns_nxdomain_error');
    } finally {
      await site.close();
    }
  });
});

describe('parseReply(buf, name, type)', () => {
  it('never throws on garbage', () => {
    for (const junk of [Buffer.alloc(0), Buffer.from([1]), Buffer.alloc(12, 0xff), Buffer.from('not dns at all, really')]) {
      const p = parseReply(junk, 'x.test', 'A');
      assert.match(String(p.failure), /^unknown_failure: dns_malformed_reply/);
    }
  });
  it('rejects a reply to another question', () => {
    const q = encodeQuery('other.test', 'A', 1);
    q[2] = 0x81;
    assert.match(String(parseReply(q, 'x.test', 'A').failure), /question mismatch/);
  });
});

describe('resolveName(host, cfg, trace)', () => {
  it('asks again over TCP when the UDP reply has the TC bit', async () => {
    const dns = await startDnsServer({ 'big.test': { kind: 'tc', addrs: ['127.0.0.2'] } });
    try {
      const r = await resolveName('big.test', { policy: lab, resolver: dns.address, timeoutMs: 1000, windowMs: 0 }, new Trace());
      assert.deepEqual(r.addrs, ['127.0.0.2']);
      assert.equal(r.failure, null);
      assert.deepEqual(
        r.queries.map((q) => [q.engine, q.query_type]),
        [
          ['udp', 'A'],
          ['udp', 'AAAA'],
          ['tcp', 'A'],
          ['tcp', 'AAAA'],
        ],
      );
      await r.late;
    } finally {
      await dns.close();
    }
  });

  it('never uses the system resolver in lab mode without a resolver', async () => {
    const r = await resolveName('localhost', { policy: lab, timeoutMs: 500, windowMs: 0 }, new Trace());
    assert.deepEqual(r.addrs, []);
    assert.match(String(r.failure), /lab mode/);
  });
});
