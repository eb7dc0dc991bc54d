import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp, inCidrs, isBogon, isIp, parseCidrs } from './ip.js';

describe('isBogon(ip, allow)', () => {
  const cases: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['10.10.34.35', true],
    ['192.168.1.1', true],
    ['172.16.0.1', true],
    ['0.0.0.0', true],
    ['169.254.1.1', true],
    ['100.64.0.1', true],
    ['198.18.0.1', true],
    ['224.0.0.1', true],
    ['::1', true],
    ['fd00::1', true],
    ['fe80::1', true],
    ['::ffff:127.0.0.1', true],
    ['8.8.8.8', false],
    ['93.184.216.34', false],
    ['2a03:2880:f130:83:face:b00c:0:25de', false],
    ['not-an-ip', false],
  ];
  for (const [ip, want] of cases) test(`${ip} -> ${want}`, () => assert.equal(isBogon(ip), want));

  test("OONI's list (probe-cli netxlite/bogon.go): test nets, 6to4 and Teredo wrappers, IPv4-mapped text", () => {
    const ooni: Array<[string, boolean]> = [
      ['192.0.2.7', true],
      ['198.51.100.1', true],
      ['203.0.113.9', true],
      ['240.1.2.3', true],
      ['255.255.255.255', true],
      ['2001:db8::1', true],
      ['2002:a00::1', true],
      ['2002:c612::1', true],
      ['2001:0:a00::1', true],
      ['100::1', true],
      ['fec0::1', true],
      ['::ffff:8.8.8.8', true],
      ['::ffff:0:0', true],
      // Not in OONI's list (ipaddr.js calls them special, OONI does not): public for both probe and analysis.
      ['64:ff9b::808:808', false],
      ['2002:808:808::1', false],
      ['192.88.99.1', false],
      ['2001:4860:4860::8888', false],
    ];
    for (const [ip, want] of ooni) assert.equal(isBogon(ip), want, ip);
  });

  test('addresses inside allow-nets count as public (lab mode)', () => {
    const allow = parseCidrs(['127.0.0.0/8', '198.18.0.0/15', 'garbage/99']);
    assert.equal(allow.length, 2);
    assert.equal(isBogon('127.3.0.1', allow), false);
    assert.equal(isBogon('198.19.255.1', allow), false);
    assert.equal(isBogon('10.0.0.1', allow), true);
    assert.equal(isBogon('127.0.0.1', allow), true, 'the localhost answer stays a bogon');
    assert.equal(isBogon('0.0.0.0', parseCidrs(['0.0.0.0/0'])), true);
    assert.equal(inCidrs('::ffff:127.0.0.9', allow), true);
  });

  test('canonicalIp(ip) unifies spellings', () => {
    assert.equal(canonicalIp('::FFFF:1.2.3.4'), '1.2.3.4');
    assert.equal(canonicalIp('2001:DB8:0:0::1'), '2001:db8::1');
  });
});

describe('isIp(s)', () => {
  test('every text form getaddrinfo takes is an address; host names are not', () => {
    for (const s of ['1.2.3.4', '127.1', '0x7f.1', '2130706433', '::1', 'fe80::1%eth0', '::ffff:1.2.3.4', 'CAFE::1'])
      assert.equal(isIp(s), true, s);
    for (const s of ['example.com', 'cafe.de', 'face.b00c', '1.2.3.4.example', '', 'abc', '1.2.3.4 ', 'youtube.com'])
      assert.equal(isIp(s), false, s);
  });
});
