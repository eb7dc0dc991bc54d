import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isConfirmed, matchDns, matchHttp, parseAddressList, parseCsv, parseFingerprintCsv } from './fingerprints.js';
import { defaultFingerprintsDir, defaultForgedPoolFiles, loadFingerprints } from '../probe/index.js';

const HEAD = 'name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,expected_countries,source,exp_url,notes\n';

describe('parseCsv(text)', () => {
  test('quotes, doubled quotes, commas and newlines inside quotes, CRLF', () => {
    const rows = parseCsv('a,"b,c","d ""e"""\r\n"multi\nline",x,\n');
    assert.deepEqual(
      rows.map((r) => r.fields),
      [
        ['a', 'b,c', 'd "e"'],
        ['multi\nline', 'x', ''],
      ],
    );
    assert.deepEqual(
      rows.map((r) => r.line),
      [1, 2],
    );
  });
});

describe('parseFingerprintCsv(text, source)', () => {
  const set = parseFingerprintCsv(
    HEAD +
      'f.full,nat,,header.server,full,Blocker/1.0,5,IR,x,,\n' +
      'f.prefix,isp,,header.location,prefix,http://block.example/,5,RU,x,,\n' +
      'f.contains,prod,,body,contains,Access to this site is restricted,3,"TR, AZ",x,,\n' +
      'f.re,vbw,,body,regexp,blocked (by|per) order,2,,x,,\n' +
      'f.badre,nat,,body,regexp,(?P<x>bad),5,,x,,\n' +
      'f.badtype,nat,,body,glob,*,5,,x,,\n' +
      'f.fp,fp,,body,contains,Cloudflare,5,,x,,\n' +
      'd.1,nat,,dns,full,46.82.174.68,5,CN,x,,\n',
    'test.csv',
  );

  test('rows become fingerprints; unusable rows are listed with their reason', () => {
    assert.equal(set.http.length, 5);
    assert.equal(set.dns.length, 1);
    assert.deepEqual(
      set.skipped.map((s) => [s.line, s.reason.split(':')[0].split(' ')[0]]),
      [
        [6, 'regexp'],
        [7, 'unknown'],
      ],
    );
  });

  test('each pattern type matches as OONI defines it; fp-scope patterns are not evidence', () => {
    const names = (body: string | null, headers: Record<string, string>): string[] =>
      matchHttp(set, body, new Map(Object.entries(headers)))
        .map((f) => f.name)
        .sort();
    assert.deepEqual(names(null, { server: 'Blocker/1.0' }), ['f.full']);
    assert.deepEqual(names(null, { server: 'Blocker/1.0 extra' }), []);
    assert.deepEqual(names(null, { location: 'http://block.example/?u=1' }), ['f.prefix']);
    assert.deepEqual(names('<p>Access to this site is restricted</p> Cloudflare', {}), ['f.contains']);
    assert.deepEqual(names('this was blocked per order', {}), ['f.re']);
  });

  test('non-ASCII patterns match raw (base64) bodies byte for byte, across the scan', () => {
    const cn = parseFingerprintCsv(
      HEAD + 'cn.page,nat,,body,contains,禁止访问本网站,5,CN,x,,\n' + 'cn.short,isp,,body,contains,非法,5,CN,x,,\n',
      'cn.csv',
    );
    const html = Buffer.from('<html><body>' + 'x'.repeat(5000) + '<p>禁止访问本网站</p>非法</body></html>', 'utf8');
    assert.deepEqual(
      matchHttp(cn, html.toString('utf8'), new Map(), html).map((f) => f.name),
      ['cn.page', 'cn.short'],
    );
    assert.deepEqual(
      matchHttp(cn, null, new Map(), html.subarray(0, html.length - 40)).map((f) => f.name),
      [],
    );
  });

  test('confirmed: nat or isp scope, or the probe country is expected', () => {
    const byName = new Map(set.http.map((f) => [f.name, f]));
    assert.equal(isConfirmed(byName.get('f.full')!, 'US'), true);
    assert.equal(isConfirmed(byName.get('f.contains')!, 'az'), true);
    assert.equal(isConfirmed(byName.get('f.contains')!, 'US'), false);
    assert.equal(isConfirmed(byName.get('f.re')!, null), false);
  });

  test('dns fingerprints match answer addresses', () => {
    assert.deepEqual(
      matchDns(set, '46.82.174.68').map((f) => f.name),
      ['d.1'],
    );
    assert.deepEqual(matchDns(set, '46.82.174.69'), []);
  });

  test('a file that is not a fingerprint CSV is reported, not thrown', () => {
    const s = parseFingerprintCsv('a,b\n1,2\n', 'junk.csv');
    assert.equal(s.http.length + s.dns.length, 0);
    assert.match(s.skipped[0].reason, /not a fingerprint CSV/);
  });
});

describe('parseAddressList(text, source)', () => {
  test('addresses (v4, v6) one per line, comments and junk reported', () => {
    const s = parseAddressList('# pool\n31.13.94.37\n2a03:2880:f130:83:face:b00c:0:25de\nnot-an-ip\n', 'pool.txt');
    assert.equal(s.forgedAddresses.size, 2);
    assert.ok(s.forgedAddresses.has('2a03:2880:f130:83:face:b00c:0:25de'));
    assert.equal(s.skipped[0].line, 4);
  });
});

describe('loadFingerprints(dir, pools) on the shared fixtures', () => {
  test("OONI's files load: about 1.7k HTTP and 225 DNS fingerprints, and the forged pools", () => {
    const dir = defaultFingerprintsDir();
    assert.ok(dir, 'fixtures/fingerprints is present');
    const s = loadFingerprints(dir, defaultForgedPoolFiles());
    assert.ok(s.http.length > 1500 && s.http.length < 2000, `${s.http.length} http`);
    assert.ok(s.dns.length > 200 && s.dns.length < 260, `${s.dns.length} dns`);
    assert.ok(s.forgedAddresses.size > 900, `${s.forgedAddresses.size} forged addresses`);
    assert.ok(s.skipped.length < 20, JSON.stringify(s.skipped.slice(0, 5)));
  });

  test('a missing directory is a clear error', () => {
    assert.throws(() => loadFingerprints('/nonexistent/fingerprints'), /ENOENT/);
  });
});
