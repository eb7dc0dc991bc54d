import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { encodeQuery } from './dns.js';
import { decodeScanReply, encodeScanQuery, encodeScanQueryInto, MAX_SCAN_QUERY, scanReplyJson } from './scan-dns-wire.js';
import { SCAN_QTYPES } from './scan-dns.js';

const NAMES = [
  'a.example',
  'youtube.com',
  'x-y_z.0.example',
  `${'a'.repeat(63)}.${'b'.repeat(63)}.example`,
  'com',
  'Mixed.Case.example',
  'bücher.example',
  'a..b',
];

/** A reply packet as dns-packet encodes it (the injectors of the lab encode theirs with it too). */
function reply(question: string, extra: Partial<dnsPacket.Packet> = {}): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id: 7,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [{ type: 'A', name: question, class: 'IN' }],
    answers: [
      { type: 'A', name: question, ttl: 173, data: '1.2.3.4' },
      { type: 'A', name: question, ttl: 0, data: '255.0.10.99' },
    ],
    ...extra,
  } as dnsPacket.Packet);
}

/** An injected reply as blackbox.c (and the lab's injectors) build it: each A answer's name a pointer to the question. */
function injected(question: string, answers: Array<[string, number]>): Buffer {
  const head = reply(question, { answers: [] });
  head.writeUInt16BE(answers.length, 6);
  const recs = answers.map(([ip, ttl]) => {
    const r = Buffer.alloc(16);
    r.writeUInt16BE(0xc00c, 0);
    r.writeUInt16BE(1, 2);
    r.writeUInt16BE(1, 4);
    r.writeUInt32BE(ttl, 6);
    r.writeUInt16BE(4, 10);
    ip.split('.').forEach((b, i) => (r[12 + i] = Number(b)));
    return r;
  });
  return Buffer.concat([head, ...recs]);
}

describe('encodeScanQuery(name, qtype, id)', () => {
  it("gives dns-packet's bytes for every query type, plain and odd names", () => {
    for (const name of NAMES)
      for (const qtype of SCAN_QTYPES)
        for (const id of [0, 1, 0xbeef, 0xffff])
          assert.deepEqual(encodeScanQuery(name, qtype, id), encodeQuery(name, qtype, id), `${name} ${qtype}`);
  });

  it('writes the same bytes back to back into a staging buffer (the batched sends), and refuses what does not fit', () => {
    const buf = Buffer.alloc(64 << 10, 0xee);
    const want: Buffer[] = [];
    let at = 3; // not at 0: each query is written at its offset
    for (const name of NAMES)
      for (const qtype of SCAN_QTYPES) {
        const len = encodeScanQueryInto(buf, at, name, qtype, 0x1234);
        want.push(encodeQuery(name, qtype, 0x1234));
        assert.equal(len, want.at(-1)!.length, `${name} ${qtype}`);
        at += len;
      }
    assert.deepEqual(buf.subarray(3, at), Buffer.concat(want));
    assert.equal(buf[at], 0xee); // nothing written past the last query
    const q = encodeQuery('a.example', 'A', 1);
    const tight = Buffer.alloc(q.length + 5, 0xee);
    assert.equal(encodeScanQueryInto(tight, 6, 'a.example', 'A', 1), -1);
    assert.equal(encodeScanQueryInto(tight, 6, 'bücher.example', 'A', 1), -1);
    assert.ok(tight.every((b) => b === 0xee));
    assert.equal(encodeScanQueryInto(tight, 5, 'a.example', 'A', 1), q.length);
    assert.ok(encodeQuery(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`, 'CAA', 9).length <= MAX_SCAN_QUERY);
  });
});

describe('scanReplyJson(msg, name, ms, ipTtl)', () => {
  const same = (msg: Buffer, name: string) => {
    const slow = decodeScanReply(msg, name, 1.25, 64);
    assert.equal(scanReplyJson(msg, name, 1.25, 64), slow ? JSON.stringify(slow) : undefined, msg.toString('hex'));
  };
  it('reads injected A answers straight from the bytes, as dns-packet decodes them', () => {
    const msg = injected('youtube.com', [
      ['1.2.3.4', 173],
      ['255.0.10.99', 0],
    ]);
    assert.equal(
      scanReplyJson(msg, 'youtube.com', 1.25, null),
      '{"ms":1.25,"ip_ttl":null,"rcode":"NOERROR","flags":33152,"answers":[{"type":"A","data":"1.2.3.4","ttl":173},{"type":"A","data":"255.0.10.99","ttl":0}]}',
    );
    same(msg, 'youtube.com');
    same(injected('YouTube.COM', [['9.9.9.9', 1]]), 'youtube.com'); // a question echoed in another case is still this name's
    same(injected('youtube.com', []), 'youtube.com');
    same(reply('youtube.com'), 'youtube.com'); // uncompressed answer names: through dns-packet
    assert.equal(JSON.parse(scanReplyJson(reply('youtube.com'), 'youtube.com', 1, null)!).answers.length, 2);
  });
  it('leaves a reply for another name out (a stray reusing the id)', () => {
    assert.equal(scanReplyJson(injected('other.com', [['1.1.1.1', 1]]), 'youtube.com', 1, null), undefined);
    assert.equal(scanReplyJson(reply('other.com'), 'youtube.com', 1, null), undefined);
    assert.equal(scanReplyJson(reply('youtube.co'), 'youtube.com', 1, null), undefined);
    assert.equal(scanReplyJson(reply('youtube.com.cn'), 'youtube.com', 1, null), undefined);
    same(reply('youtube.co'), 'youtube.com');
  });
  it('agrees with dns-packet on every other shape (other types, sections, rcodes, malformed bytes)', () => {
    const name = 'youtube.com';
    const shapes = [
      reply(name, { answers: [{ type: 'AAAA', name, ttl: 5, data: '2001::1' }] }),
      reply(name, { answers: [{ type: 'CNAME', name, ttl: 5, data: 'x.example' }] }),
      reply(name, { answers: [{ type: 'TXT', name, ttl: 5, data: 'hi' }] }),
      reply(name, { authorities: [{ type: 'NS', name, ttl: 5, data: 'ns.example' }] }),
      reply(name, { flags: 0x8183 } as Partial<dnsPacket.Packet>),
      reply(name, { questions: [] }),
      reply('bücher.example'),
      reply('.'),
    ];
    const msg = injected(name, [
      ['1.2.3.4', 1],
      ['5.6.7.8', 2],
    ]);
    for (const cut of [2, 11, 12, 20, 28, 30, msg.length - 5, msg.length - 1]) shapes.push(msg.subarray(0, cut));
    const bad = Buffer.from(msg);
    bad[12] = 70; // a label running past the end
    shapes.push(bad);
    const badPointer = Buffer.from(msg);
    badPointer.writeUInt16BE(0xc0ff, 29); // an answer name pointing past the end
    shapes.push(badPointer);
    for (const s of shapes) if (s.length >= 12) same(s, name);
  });
});
