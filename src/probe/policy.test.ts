import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { NetPolicy, splitHostPort, parseCidr } from './policy.js';
import { scrubberFor, scrubValue } from '../analysis/index.js';
import { lookupAsn, lookupCountry, probeLocation } from './geo.js';

describe('NetPolicy(allowNet)', () => {
  it('counts lab ranges as public and refuses to dial outside them', () => {
    const p = new NetPolicy(['127.0.0.0/8', '198.18.0.0/15']);
    assert.equal(p.isBogon('127.1.2.3'), false);
    assert.equal(p.isBogon('10.0.0.1'), true);
    assert.equal(p.checkDial('198.19.0.1'), null);
    assert.match(String(p.checkDial('8.8.8.8')), /outside --allow-net/);
    assert.equal(new NetPolicy(undefined).isBogon('127.0.0.1'), true);
    assert.equal(new NetPolicy(undefined).checkDial('8.8.8.8'), null);
  });
  it("uses the analysis' bogon rule (OONI's list), and judges its own mapped socket addresses by their IPv4", async () => {
    const { isBogon } = await import('../analysis/index.js');
    const { isBogonAddress } = await import('./policy.js');
    const p = new NetPolicy(['127.0.0.0/8']);
    for (const ip of ['10.1.1.1', '192.0.2.1', '2002:a00::1', '64:ff9b::808:808', '::ffff:8.8.8.8', '127.0.0.1', '127.9.0.1', '8.8.8.8']) {
      assert.equal(new NetPolicy(undefined).isBogon(ip), isBogon(ip), ip);
    }
    assert.equal(p.isBogon('127.9.0.1'), false);
    assert.equal(p.isBogon('127.0.0.1'), true, 'the localhost answer stays a bogon, as in the analysis');
    assert.equal(isBogonAddress('::ffff:8.8.8.8'), false);
    assert.equal(isBogonAddress('::ffff:10.0.0.2'), true);
  });
  it('rejects malformed CIDRs clearly', () => {
    assert.throws(() => parseCidr('300.1.1.1/8'), /not a CIDR/);
  });
});

describe('splitHostPort(s, defaultPort)', () => {
  it('parses v4, v6 and default ports', () => {
    assert.deepEqual(splitHostPort('127.0.0.1:53'), { host: '127.0.0.1', port: 53 });
    assert.deepEqual(splitHostPort('[::1]:5353'), { host: '::1', port: 5353 });
    assert.deepEqual(splitHostPort('127.0.0.1', 53), { host: '127.0.0.1', port: 53 });
    assert.throws(() => splitHostPort('127.0.0.1:99999'), /port/);
  });
});

describe('scrubberFor(ips) / scrubValue(value, scrub)', () => {
  it('replaces whole addresses in every string, keys included, and nothing else', () => {
    const s = scrubberFor(['1.2.3.4', '2001:db8::1']);
    const out = scrubValue({ a: 'from 1.2.3.4:80 and 11.2.3.45 and 1.2.3.40', b: ['2001:db8::1'], '1.2.3.4': 1 }, s);
    assert.deepEqual(out, { a: 'from [scrubbed]:80 and 11.2.3.45 and 1.2.3.40', b: ['[scrubbed]'], '[scrubbed]': 1 });
    assert.equal(scrubberFor([]), null);
  });
  it('scrubs inside base64 bodies (non-UTF-8) and leaves certificates whole', () => {
    const s = scrubberFor(['1.2.3.4']);
    const raw = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('you are 1.2.3.4, not 11.2.3.45'), Buffer.from([0x80])]);
    const cert = Buffer.concat([Buffer.from([0x30, 0x82]), Buffer.from('1.2.3.4')]).toString('base64');
    const out = scrubValue(
      {
        response: {
          body: { format: 'base64', data: raw.toString('base64') },
          headers_list: [['X-Ip', { format: 'base64', data: Buffer.from('\xff1.2.3.4', 'latin1').toString('base64') }]],
        },
        peer_certificates: [{ format: 'base64', data: cert }],
      },
      s,
    );
    const body = Buffer.from(out.response.body.data, 'base64');
    assert.deepEqual(
      body,
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('you are [scrubbed], not 11.2.3.45'), Buffer.from([0x80])]),
    );
    assert.equal(out.response.body.format, 'base64');
    assert.equal(Buffer.from((out.response.headers_list[0]![1] as { data: string }).data, 'base64').toString('latin1'), '\xff[scrubbed]');
    assert.equal(out.peer_certificates[0]!.data, cert);
  });
});

describe('lookupAsn(ip) / lookupCountry(ip) / probeLocation(ip)', () => {
  it('finds public addresses in the offline database', () => {
    assert.equal(lookupAsn('1.1.1.1')?.asn, 13335);
    assert.equal(lookupCountry('1.0.1.1'), 'CN');
    assert.equal(lookupAsn('2001:4860:4860::8888')?.asn, 15169);
  });
  it('says ZZ/AS0 for unknown or private addresses', () => {
    assert.equal(lookupAsn('127.0.0.1'), null);
    assert.deepEqual(probeLocation(null), { probe_cc: 'ZZ', probe_asn: 'AS0', probe_network_name: '' });
    assert.equal(probeLocation('10.1.2.3').probe_cc, 'ZZ');
    assert.equal(probeLocation('1.1.1.1').probe_asn, 'AS13335');
  });
});
