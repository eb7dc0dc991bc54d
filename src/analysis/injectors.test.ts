import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Measurement, WebConnectivityTestKeys } from '../model/index.js';
import { analyzeWebConnectivity, type AnalysisContext } from './webconnectivity.js';
import { loadInjectorFingerprints } from '../probe/index.js';
import { parseInjectorFingerprints } from './injectors.js';

// Stored measurements with packet evidence (test_keys.x_captured), as `measure --capture` writes them.
const dir = fileURLToPath(new URL('../../../src/analysis/testdata/packets/', import.meta.url));
const stored = (name: string): Measurement<WebConnectivityTestKeys> =>
  JSON.parse(readFileSync(`${dir}${name}.json`, 'utf8')) as Measurement<WebConnectivityTestKeys>;
const ctx: AnalysisContext = { injectors: loadInjectorFingerprints(), allowNets: ['198.18.0.0/15'] };

describe('analyzeWebConnectivity(m, {injectors}) with captured packets', () => {
  const cases: Array<{
    file: string;
    mechanism: string;
    layer: string;
    fingerprint: string | null;
    confidence: [number, number];
    says: RegExp[];
  }> = [
    {
      file: 'henan',
      mechanism: 'tls.reset',
      layer: 'regional',
      fingerprint: 'henan',
      confidence: [0.95, 0.95],
      says: [
        /One RST\+ACK with TTL 58, IP ID 1, DF=0 and the 10-byte payload 01020304050607080900: the fingerprint of the Henan provincial firewall \(henan, sent to the client only\)/i,
      ],
    },
    {
      file: 'henan-hop',
      mechanism: 'tls.reset',
      layer: 'regional',
      fingerprint: 'henan',
      confidence: [0.98, 0.98],
      says: [/payload 01020304050607080900 at hop 2: the fingerprint of the Henan provincial firewall/, /no residual blocking/],
    },
    {
      file: 'henan-residual-conflict',
      mechanism: 'tls.reset',
      layer: 'regional',
      fingerprint: 'henan',
      confidence: [0.6, 0.6],
      says: [/Henan provincial firewall/, /But a harmless follow-up .* blocked too: residual blocking/],
    },
    {
      file: 'gfw-type-1',
      mechanism: 'tls.reset',
      layer: 'national',
      fingerprint: 'gfw-type-1',
      confidence: [0.95, 0.95],
      says: [
        /One RST with TTL 96, IP ID 0, DF=0, no payload: the fingerprint of the national firewall's type I injector \(gfw-type-1, sent to both ends\)\. The reset came 18\.2 ms after the request, like the national firewall\./,
      ],
    },
    {
      file: 'gfw-type-2',
      mechanism: 'tls.reset',
      layer: 'national',
      fingerprint: 'gfw-type-2',
      confidence: [0.95, 0.95],
      says: [
        /Three RST\+ACKs with TTL 101, IP ID 4660\/4933\/5206, DF=1, window 2000\/2001\/2002, no payload: the fingerprint of the national firewall's type II injector \(gfw-type-2, sent to both ends\)/,
      ],
    },
    {
      file: 'gfw-type-3',
      mechanism: 'tls.reset',
      layer: 'national',
      fingerprint: 'gfw-type-3',
      confidence: [0.95, 0.95],
      says: [/TTL 248, IP ID 39200/, /type III injector \(gfw-type-3/],
    },
    {
      file: 'gfw-2025-port443',
      mechanism: 'tcp.refused',
      layer: 'national',
      fingerprint: 'gfw-2025-port443',
      confidence: [0.95, 0.95],
      says: [/Three RST\+ACKs with TTL 47, .*window 1980\/1981\/1982/, /port-443 injector of 2025-08-20/],
    },
    // A name on both lists (netns lab, henan-and-gfw-2024 www.bbc.com): Henan's reset came first, the
    // GFW's type II triple after it; the GFW's residual block then resets the follow-up.
    {
      file: 'henan-then-gfw',
      mechanism: 'tls.reset',
      layer: 'regional',
      fingerprint: 'henan',
      confidence: [0.6, 0.6],
      says: [
        /One RST\+ACK with TTL 58, IP ID 1, DF=0 and the 10-byte payload 01020304050607080900 came first: the fingerprint of the Henan provincial firewall/,
        /3 more resets from another injector arrived after it/,
      ],
    },
    // Two resets nobody documented: the packets are named, the layer comes from the follow-ups.
    {
      file: 'unmatched',
      mechanism: 'tls.reset',
      layer: 'national',
      fingerprint: null,
      confidence: [0.5, 0.9],
      says: [
        /Two RST\+ACKs with TTL 64, IP ID 0, DF=1, no payload came back: they match no known injector fingerprint/,
        /residual blocking/,
      ],
    },
  ];
  for (const c of cases) {
    test(c.file, () => {
      const m = stored(c.file);
      const before = JSON.stringify(m);
      const v = analyzeWebConnectivity(m, ctx);
      assert.equal(JSON.stringify(m), before, 'the measurement is only read');
      assert.equal(v.status, 'blocked');
      assert.equal(v.mechanism, c.mechanism);
      assert.equal(v.layer, c.layer, v.explanation);
      assert.deepEqual(v.fingerprints, c.fingerprint ? [c.fingerprint] : []);
      assert.equal(v.confirmed, c.fingerprint !== null);
      assert.ok(v.confidence >= c.confidence[0] && v.confidence <= c.confidence[1], `confidence ${v.confidence}`);
      assert.ok(v.evidence.includes('x_captured[0]'), v.evidence.join(','));
      for (const re of c.says) assert.match(v.explanation, re);
    });
  }
  test('without injector fingerprints the socket-level rules decide (the fallback)', () => {
    const v = analyzeWebConnectivity(stored('henan'), { allowNets: ['198.18.0.0/15'] });
    assert.equal(v.mechanism, 'tls.reset');
    // 3.1 ms reset latency: regional by timing alone, at the fallback's confidence.
    assert.equal(v.layer, 'regional');
    assert.ok(v.confidence < 0.9);
    assert.deepEqual(v.fingerprints, []);
    assert.match(v.explanation, /match no known injector fingerprint/);
  });
  test('the same Henan packets without their payload are not Henan', () => {
    const m = stored('henan');
    const p = (m.test_keys.x_captured as unknown as Array<{ packets: Array<Record<string, unknown>> }>)[0]!.packets[0]!;
    p.payload_hex = '';
    p.payload_length = 0;
    const v = analyzeWebConnectivity(m, ctx);
    assert.deepEqual(v.fingerprints, []);
    assert.match(v.explanation, /match no known injector fingerprint/);
  });
  test('hostile x_captured values are ignored, never thrown on', () => {
    const m = stored('henan');
    (m.test_keys as unknown as Record<string, unknown>).x_captured = [
      null,
      7,
      { operation: 'tls_handshake', address: 5, packets: [{ dir: 'in', flags: { x: 1 }, payload_hex: '<script>' }, 'x'] },
    ];
    (m.test_keys as unknown as Record<string, unknown>).x_locate = [{ operation: 'tls_handshake', hop: 'two' }];
    const v = analyzeWebConnectivity(m, ctx);
    assert.equal(v.mechanism, 'tls.reset');
    assert.deepEqual(v.fingerprints, []);
  });
});

describe('parseInjectorFingerprints(text, source)', () => {
  test('the shipped file has the documented injectors, IP IDs in hex read as numbers', () => {
    const fps = loadInjectorFingerprints();
    assert.deepEqual(
      fps.map((f) => f.name),
      ['henan', 'gfw-type-1', 'gfw-type-2', 'gfw-type-3', 'gfw-2025-port443'],
    );
    assert.deepEqual(fps.find((f) => f.name === 'gfw-type-2')!.ipId, [0xa3, 0xfe5f]);
    assert.deepEqual(fps.find((f) => f.name === 'henan')!.ttl, [58, 58]);
  });
  const ok = { name: 'x', layer: 'isp', label: 'an ISP box', source: 'here' };
  const bad: Array<[unknown, RegExp]> = [
    ['{', /f.json: not JSON/],
    [{ fingerprints: {} }, /expected \{"fingerprints": \[\.\.\.\]\}/],
    [
      { fingerprints: [{ ...ok, layer: 'provincial' }] },
      /fingerprints\[0\]\.layer: expected one of national, regional, isp, unknown, got "provincial"/,
    ],
    [{ fingerprints: [{ ...ok, ttl: [70, 60] }] }, /fingerprints\[0\]\.ttl: low 70 is above high 60/],
    [{ fingerprints: [{ ...ok, ip_id: '0x10000' }] }, /fingerprints\[0\]\.ip_id: expected an integer 0\.\.65535/],
    [{ fingerprints: [{ ...ok, flags: 'RST+URG' }] }, /fingerprints\[0\]\.flags/],
    [{ fingerprints: [{ ...ok, payload_hex: '0g' }] }, /payload_hex: expected hex bytes/],
    [{ fingerprints: [{ ...ok, tll: 5 }] }, /unknown key "tll"/],
    [{ fingerprints: [ok, ok] }, /fingerprints\[1\]\.name: "x" appears twice/],
  ];
  for (const [doc, re] of bad) {
    test(`refuses ${re.source.slice(0, 50)}`, () => {
      assert.throws(() => parseInjectorFingerprints(typeof doc === 'string' ? doc : JSON.stringify(doc), 'f.json'), re);
    });
  }
  test('flags in any order mean the same', () => {
    assert.equal(parseInjectorFingerprints(JSON.stringify({ fingerprints: [{ ...ok, flags: 'ack+rst' }] }), 'f')[0]!.flags, 'RST+ACK');
  });
});
