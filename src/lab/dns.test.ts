import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { startResolver, type RunningResolver } from './dns.js';

type Decoded = dnsPacket.DecodedPacket & { rcode?: string };
const dataOf = (a: dnsPacket.Answer | undefined) => (a as { data?: unknown } | undefined)?.data;

const HOST = '127.31.0.2';

async function udpExchange(r: RunningResolver, packet: Buffer, windowMs: number): Promise<Array<{ at: number; p: Decoded; raw: Buffer }>> {
  const sock = dgram.createSocket('udp4');
  const out: Array<{ at: number; p: Decoded; raw: Buffer }> = [];
  const t0 = performance.now();
  sock.on('message', (m) => out.push({ at: performance.now() - t0, p: dnsPacket.decode(m) as Decoded, raw: m }));
  await new Promise<void>((res) => sock.bind(0, '127.0.0.1', () => res()));
  sock.send(packet, r.port, r.host);
  await new Promise((res) => setTimeout(res, windowMs));
  await new Promise<void>((res) => sock.close(() => res()));
  return out;
}

const query = (name: string, type: dnsPacket.RecordType, rd = true) =>
  dnsPacket.encode({ id: 4242, type: 'query', flags: rd ? dnsPacket.RECURSION_DESIRED : 0, questions: [{ name, type, class: 'IN' }] });

describe('startResolver(opts)', () => {
  let r: RunningResolver;
  before(async () => {
    r = await startResolver({
      host: HOST,
      port: 0,
      answer: (name) =>
        name === 'site.example' || name === 'blocked.example'
          ? { rcode: 'NOERROR', addresses: ['127.31.1.1'], ttl: 300 }
          : { rcode: 'NXDOMAIN', addresses: [], ttl: 0 },
      injector: {
        forge: (name) => (name === 'blocked.example' ? { addresses: ['127.31.100.1', '127.31.100.2'], ttls: [234, 92], leadMs: 40 } : null),
      },
    });
  });
  after(() => r.close());

  it('answers genuinely, NXDOMAIN for unknown names', async () => {
    const [a] = await udpExchange(r, query('site.example', 'A'), 400);
    assert.equal(a!.p.id, 4242);
    assert.deepEqual(a!.p.answers!.map(dataOf), ['127.31.1.1']);
    const [n] = await udpExchange(r, query('nope.example', 'A'), 400);
    assert.equal(n!.p.rcode, 'NXDOMAIN');
  });

  it('lets forged replies race ahead of the genuine one, built as the GFW builds them', async () => {
    const replies = await udpExchange(r, query('blocked.example', 'A'), 400);
    assert.equal(replies.length, 3);
    assert.deepEqual(
      replies.map((x) => dataOf(x.p.answers![0])),
      ['127.31.100.1', '127.31.100.2', '127.31.1.1'],
    );
    assert.deepEqual(
      replies.slice(0, 2).map((x) => (x.p.answers![0] as { ttl: number }).ttl),
      [234, 92],
    );
    assert.equal(replies[0]!.raw.readUInt16BE(2), 0x8180); // RD=1 -> QR|RD|RA
    assert.ok(replies[2]!.at - replies[1]!.at > 0, 'genuine reply comes last');
    const norecurse = await udpExchange(r, query('blocked.example', 'A', false), 400);
    assert.equal(norecurse[0]!.raw.readUInt16BE(2), 0x8400); // RD=0 -> QR|AA
  });

  it('forges an A record even to a TXT or AAAA query, and drops the EDNS OPT', async () => {
    const txt = dnsPacket.encode({
      id: 7,
      type: 'query',
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name: 'blocked.example', type: 'TXT', class: 'IN' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, options: [] } as unknown as dnsPacket.Answer],
    });
    const replies = await udpExchange(r, txt, 400);
    assert.equal(replies[0]!.p.answers![0]!.type, 'A');
    assert.equal(replies[0]!.p.additionals!.length, 0);
    assert.equal(replies[2]!.p.answers!.length, 0); // the genuine TXT answer has no A
  });

  it('ignores malformed packets and keeps serving', async () => {
    const before = r.stats.malformed;
    const garbage = await udpExchange(r, Buffer.from([1, 2, 3]), 200);
    assert.equal(garbage.length, 0);
    assert.equal(r.stats.malformed, before + 1);
    const [a] = await udpExchange(r, query('site.example', 'A'), 400);
    assert.equal(a!.p.rcode, 'NOERROR');
  });

  it('answers over TCP with length framing', async () => {
    const q = query('site.example', 'A');
    const framed = Buffer.concat([Buffer.from([q.length >> 8, q.length & 255]), q]);
    const reply = await new Promise<Buffer>((res, rej) => {
      const s = net.connect(r.port, r.host, () => s.write(framed));
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          s.destroy();
          res(buf.subarray(2));
        }
      });
      s.on('error', rej);
    });
    assert.deepEqual((dnsPacket.decode(reply).answers ?? []).map(dataOf), ['127.31.1.1']);
  });
});
