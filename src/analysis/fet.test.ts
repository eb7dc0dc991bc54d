import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { prng } from '../model/index.js';
import { classifyFirstPacket, fetProtocolPrefix } from './fet.js';

const bytes = (...parts: Array<number[] | string>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const rep = (b: number, n: number): number[] => Array<number>(n).fill(b);
// Fillers: 0x0f (4 bits) and 0x1f (5 bits) and 0x07 (3 bits) are not printable; '5' (0x35) is printable with 4 bits.

describe("classifyFirstPacket(p): the paper's rules (Wu et al. 2023, Algorithm 1)", () => {
  it('popcount per byte exactly 3.4 is exempt, 3.5 is not', () => {
    const at = classifyFirstPacket(bytes(rep(0x07, 6), rep(0x0f, 4)));
    assert.equal(at.popcount_per_byte, 3.4);
    assert.deepEqual([at.exempt, at.reason], [true, 'popcount_low']);
    const above = classifyFirstPacket(bytes(rep(0x07, 5), rep(0x0f, 5)));
    assert.equal(above.popcount_per_byte, 3.5);
    assert.deepEqual([above.exempt, above.reason], [false, null]);
  });

  it('popcount per byte exactly 4.6 is exempt, 4.5 is not', () => {
    const at = classifyFirstPacket(bytes(rep(0x1f, 6), rep(0x0f, 4)));
    assert.equal(at.popcount_per_byte, 4.6);
    assert.deepEqual([at.exempt, at.reason], [true, 'popcount_high']);
    const below = classifyFirstPacket(bytes(rep(0x1f, 5), rep(0x0f, 5)));
    assert.equal(below.popcount_per_byte, 4.5);
    assert.deepEqual([below.exempt, below.reason], [false, null]);
  });

  it('the first 6 bytes printable exempt; 5 do not', () => {
    const six = classifyFirstPacket(bytes('abcdef', rep(0x0f, 14)));
    assert.deepEqual([six.exempt, six.reason], [true, 'printable_prefix']);
    assert.equal(six.printable_share, 0.3);
    const five = classifyFirstPacket(bytes('abcde', rep(0x0f, 15)));
    assert.deepEqual([five.exempt, five.reason], [false, null]);
    // A printable 7th byte after a non-printable 6th does not help.
    assert.equal(classifyFirstPacket(bytes('abcde', [0x0f], 'g', rep(0x0f, 13))).exempt, false);
  });

  it('more than 50% printable exempt; exactly 50% not', () => {
    const alt = (n: number): number[] => Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 0x0f : 0x35));
    const half = classifyFirstPacket(bytes(alt(20)));
    assert.equal(half.printable_share, 0.5);
    assert.equal(half.popcount_per_byte, 4);
    assert.deepEqual([half.exempt, half.reason], [false, null]);
    const more = classifyFirstPacket(bytes(alt(20), [0x35]));
    assert.ok(more.printable_share > 0.5);
    assert.deepEqual([more.exempt, more.reason], [true, 'printable_share']);
  });

  it('a printable run of 21 bytes exempts, of 20 does not', () => {
    const r20 = classifyFirstPacket(bytes([0x0f], rep(0x35, 20), rep(0x0f, 21)));
    assert.equal(r20.longest_printable_run, 20);
    assert.ok(r20.printable_share <= 0.5);
    assert.deepEqual([r20.exempt, r20.reason], [false, null]);
    const r21 = classifyFirstPacket(bytes([0x0f], rep(0x35, 21), rep(0x0f, 22)));
    assert.equal(r21.longest_printable_run, 21);
    assert.deepEqual([r21.exempt, r21.reason], [true, 'printable_run']);
  });

  it('each TLS start [16-17] 03 [00-09] exempts; neighbours do not', () => {
    for (const first of [0x16, 0x17]) {
      for (let third = 0; third <= 9; third++) {
        const c = classifyFirstPacket(bytes([first, 0x03, third], rep(0x1f, 20), rep(0x0f, 17)));
        assert.deepEqual([c.exempt, c.reason, c.prefix], [true, 'tls_prefix', 'tls'], `${first.toString(16)} 03 0${third}`);
      }
    }
    for (const start of [
      [0x15, 0x03, 0x01],
      [0x18, 0x03, 0x01],
      [0x16, 0x02, 0x01],
      [0x16, 0x03, 0x0a],
      [0x17, 0x04, 0x03],
    ]) {
      const c = classifyFirstPacket(bytes(start, rep(0x1f, 20), rep(0x0f, 17)));
      assert.deepEqual([c.exempt, c.prefix], [false, null], Buffer.from(start).toString('hex'));
    }
  });

  it('each HTTP start (GET, PUT, POST, HEAD and a space) exempts; lower case, other methods and no space do not', () => {
    for (const m of ['GET ', 'PUT ', 'POST ', 'HEAD ']) {
      const c = classifyFirstPacket(bytes(m, rep(0x1f, 20), rep(0x0f, 20)));
      assert.deepEqual([c.exempt, c.reason, c.prefix], [true, 'http_prefix', 'http'], m);
    }
    for (const m of ['get ', 'GET', 'PUTX', 'HEA ', 'OPTI']) {
      const c = classifyFirstPacket(bytes(m, rep(0x1f, 20), rep(0x0f, 20)));
      assert.deepEqual([c.exempt, c.prefix], [false, null], m);
    }
  });

  it("the paper's probes: random bytes are blockable, zero bytes and real protocol starts are not", () => {
    // The experiments sent random payloads (blocked), zeros (never blocked) and real TLS/HTTP (never blocked).
    const rand = prng(2023);
    const random = Buffer.from(Array.from({ length: 1000 }, () => Math.floor(rand() * 256)));
    const r = classifyFirstPacket(random);
    assert.ok(Math.abs(r.popcount_per_byte - 4) < 0.2);
    assert.equal(r.exempt, false);
    assert.deepEqual(classifyFirstPacket(Buffer.alloc(50)).reason, 'popcount_low');
    assert.deepEqual(classifyFirstPacket(Buffer.alloc(50, 0xff)).reason, 'popcount_high');
    assert.equal(classifyFirstPacket(Buffer.from('GET / HTTP/1.1\r\nHost: example.org\r\n\r\n')).exempt, true);
    // A ClientHello record header; its body is random-looking, but the start exempts it.
    assert.equal(fetProtocolPrefix(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), random.subarray(0, 512)])), 'tls');
    assert.equal(classifyFirstPacket(Buffer.alloc(0)).reason, 'empty');
  });
});

// An independent restatement of the rule, written from censors.md section 7 with other means
// (strings and regular expressions, rational comparison by cross-multiplying with 5).
function restated(p: Buffer): string | null {
  if (p.length === 0) return 'empty';
  const ones = [...p].map((b) => b.toString(2).replace(/0/g, '').length).reduce((a, b) => a + b, 0);
  if (ones * 5 <= 17 * p.length) return 'popcount_low';
  if (ones * 5 >= 23 * p.length) return 'popcount_high';
  const text = p.toString('latin1');
  if (/^[\x20-\x7e]{6}/.test(text)) return 'printable_prefix';
  if ((text.match(/[\x20-\x7e]/g) ?? []).length / p.length > 0.5) return 'printable_share';
  if (/[\x20-\x7e]{21}/.test(text)) return 'printable_run';
  // eslint-disable-next-line no-control-regex -- the TLS record header's bytes, as the paper states the rule
  if (/^[\x16\x17]\x03[\x00-\x09]/.test(text)) return 'tls_prefix';
  if (/^(GET|PUT|POST|HEAD) /.test(text)) return 'http_prefix';
  return null;
}

describe('classifyFirstPacket(p) against a restatement of the rule', () => {
  it('agrees on 20,000 random buffers drawn to reach every branch', () => {
    const rand = prng(19);
    const pools = [
      (): number => Math.floor(rand() * 256),
      (): number => 0x20 + Math.floor(rand() * 95),
      (): number => [0x00, 0x01, 0x07, 0x0f, 0x1f, 0x80, 0xff, 0xfe, 0x9f][Math.floor(rand() * 9)]!,
    ];
    const seen = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      // Stretches from one pool, so that long printable runs inside non-printable bytes occur too.
      const arr: number[] = [];
      const len = Math.floor(rand() * 100);
      while (arr.length < len) {
        const pool = pools[Math.floor(rand() * 3)]!;
        const stretch = 1 + Math.floor(rand() * 30);
        for (let k = 0; k < stretch && arr.length < len; k++) arr.push(pool());
      }
      const head = rand();
      const pre =
        head < 0.05
          ? [0x16 + Math.floor(rand() * 2), 0x03, Math.floor(rand() * 12)]
          : head < 0.1
            ? [...Buffer.from(['GET ', 'PUT ', 'POST ', 'HEAD ', 'GET'][Math.floor(rand() * 5)]!)]
            : [];
      const p = Buffer.from([...pre, ...arr]);
      const got = classifyFirstPacket(p);
      const want = restated(p);
      assert.equal(got.reason, want, p.toString('hex'));
      assert.equal(got.exempt, want !== null);
      seen.set(String(want), (seen.get(String(want)) ?? 0) + 1);
    }
    // Every branch was exercised, so the agreement means something.
    for (const r of [
      'empty',
      'popcount_low',
      'popcount_high',
      'printable_prefix',
      'printable_share',
      'printable_run',
      'tls_prefix',
      'http_prefix',
      'null',
    ]) {
      assert.ok((seen.get(r) ?? 0) > 5, `branch ${r} reached ${seen.get(r) ?? 0} times`);
    }
  });
});
