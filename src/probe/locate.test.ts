import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assignHops, clientHelloFor, type LocatedPacket } from './locate.js';

const pkt = (n: number, ttl: number, extra: Partial<LocatedPacket> = {}): LocatedPacket => ({
  trigger_ttl: n,
  ms: 1,
  ip_ttl: ttl,
  ip_id: 1,
  df: false,
  payload_len: 0,
  ...extra,
});

describe('assignHops(mechanism, byTtl, destination)', () => {
  it('tells a fixed-TTL injector from one that copies the trigger TTL at the same hop (h = (n - arrival)/2 + 1)', () => {
    // Injectors at hop 3 of a 5-hop path: the fixed one answers from n = 3 with TTL 62; the copier
    // only from n = 5 (2h-1), arriving with TTL n - 2(h-1) = 1, then 2, 3; the genuine answer from n = 5.
    const byTtl = new Map<number, LocatedPacket[]>();
    for (let n = 3; n <= 7; n++) byTtl.set(n, [pkt(n, 62)]);
    for (let n = 5; n <= 7; n++) byTtl.get(n)!.push(pkt(n, n - 4), pkt(n, 60));
    const hops = assignHops('dns', byTtl, 5).map((h) => [h.hop, h.ttl_behaviour, h.first_trigger_ttl]);
    assert.deepEqual(hops, [
      [3, 'fixed', 3],
      [3, 'copies-trigger', 5],
    ]);
  });
  it('keeps a burst of resets with a TTL that varies per injection (GFW type II) as one injector', () => {
    const byTtl = new Map<number, LocatedPacket[]>();
    const rst = (n: number, ttl: number) => pkt(n, ttl, { flags: 'RST+ACK', df: true });
    byTtl.set(1, [pkt(1, 58, { flags: 'RST+ACK', payload_len: 10, payload_hex: '01020304050607080900' })]);
    byTtl.set(2, [...byTtl.get(1)!.map((p) => ({ ...p, trigger_ttl: 2 })), rst(2, 87), rst(2, 87), rst(2, 87)]);
    byTtl.set(3, [{ ...byTtl.get(1)![0]!, trigger_ttl: 3 }, rst(3, 179), rst(3, 179), rst(3, 179)]);
    const hops = assignHops('sni', byTtl, 3);
    assert.deepEqual(
      hops.map((h) => [h.hop, h.signature, h.packets.length]),
      [
        [1, 'RST+ACK payload 01020304050607080900', 3],
        [2, 'RST+ACK DF', 6],
      ],
    );
  });
  it('gives no injector when nothing answered', () => {
    assert.deepEqual(assignHops('sni', new Map(), null), []);
  });
});

describe('clientHelloFor(sni)', () => {
  it('is a TLS handshake record carrying the name', async () => {
    const b = await clientHelloFor('blocked.example');
    assert.equal(b[0], 0x16);
    assert.equal(b[5], 0x01);
    assert.ok(b.includes(Buffer.from('blocked.example')));
  });
});
