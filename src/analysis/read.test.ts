import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readMeasurements, readMeasurementStream, stripJsonComments, MAX_RECORD_CHARS } from './read.js';
import { analyzeMeasurement } from './measurement.js';
import { domainOf } from '../model/index.js';

const M = (input: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  test_name: 'web_connectivity',
  input,
  test_keys: { ...extra },
  probe_cc: 'ZZ',
});

describe('readMeasurements(text, name)', () => {
  test('.json: one document', () => {
    const out = [...readMeasurements(JSON.stringify(M('https://a.example/')), 'x.json')];
    assert.equal(out.length, 1);
    assert.ok(out[0].ok);
  });

  test('.json: an array of documents', () => {
    const out = [...readMeasurements(JSON.stringify([M('https://a.example/'), 7]), 'x.json')];
    assert.deepEqual(
      out.map((r) => r.ok),
      [true, false],
    );
    assert.match((out[1] as { error: string }).error, /element 1: not a measurement/);
  });

  test('.jsonl: one per line, bad lines reported with their line number, the rest read', () => {
    const text = [
      JSON.stringify(M('https://a.example/')),
      '{"test_name": "web_conn',
      '',
      JSON.stringify(M('https://b.example/')),
      '[1,2]',
      '{"test_name": 5, "test_keys": {}}',
      '{"test_name": "x", "test_keys": []}',
    ].join('\n');
    const out = [...readMeasurements(text, 'x.jsonl')];
    assert.deepEqual(
      out.map((r) => [r.line, r.ok]),
      [
        [1, true],
        [2, false],
        [4, true],
        [5, false],
        [6, false],
        [7, false],
      ],
    );
    assert.match((out[1] as { error: string }).error, /^invalid JSON/);
    assert.match((out[3] as { error: string }).error, /a JSON array instead of an object/);
    assert.match((out[4] as { error: string }).error, /test_name is missing or not a string/);
    assert.match((out[5] as { error: string }).error, /test_keys is missing or not an object/);
  });

  test('.jsonc: // and /* */ comments outside strings are ignored, // inside strings kept', () => {
    const text =
      '// a comment\n{\n  "test_name": "web_connectivity", // trailing\n  /* block */ "input": "https://a.example/path//x",\n  "test_keys": {}\n}\n';
    const out = [...readMeasurements(text, 'x.jsonc')];
    assert.equal(out.length, 1);
    assert.ok(out[0].ok && out[0].measurement.input === 'https://a.example/path//x');
    assert.equal(stripJsonComments('"a\\"//b" // c').trim(), '"a\\"//b"');
  });

  test('a .json file holding several lines of documents falls back to one per line', () => {
    const text = JSON.stringify(M('https://a.example/')) + '\n' + JSON.stringify(M('https://b.example/'));
    assert.equal([...readMeasurements(text, 'x.json')].filter((r) => r.ok).length, 2);
  });

  test('truncated JSON is a clear per-record error', () => {
    const full = JSON.stringify(M('https://a.example/', { queries: [] }));
    const out = [...readMeasurements(full.slice(0, full.length - 5), 'x.json')];
    assert.equal(out.length, 1);
    assert.ok(!out[0].ok);
    assert.match((out[0] as { error: string }).error, /invalid JSON/);
  });

  test('a 50 MB body string is refused unparsed, and the next record is still read', () => {
    const huge = JSON.stringify(
      M('https://a.example/', {
        requests: [{ failure: null, request: { url: 'https://a.example/' }, response: { code: 200, body: 'x'.repeat(50 * 1024 * 1024) } }],
      }),
    );
    const text = huge + '\n' + JSON.stringify(M('https://b.example/'));
    text.indexOf('\n'); // flatten the concatenation now, so that only the reader's own allocations are measured
    const before = process.memoryUsage().heapUsed;
    const out = [...readMeasurements(text, 'x.jsonl')];
    assert.deepEqual(
      out.map((r) => r.ok),
      [false, true],
    );
    assert.match((out[0] as { error: string }).error, new RegExp(`record too large: \\d+ characters \\(limit ${MAX_RECORD_CHARS}\\)`));
    // Robustness: the record was not parsed, so no second 50 MB copy was made.
    assert.ok(process.memoryUsage().heapUsed - before < 40 * 1024 * 1024);
  });
});

describe('analyzeMeasurement(m) on hostile records', () => {
  test('wrong types everywhere give a verdict, not a crash', () => {
    const weird = [
      M('https://a.example/', {
        queries: 'nope',
        tcp_connect: 5,
        tls_handshakes: [null, 1, 'x'],
        requests: [{ request: 3, response: { code: '200', body: 12, headers: [1] } }],
        control: [],
      }),
      M('https://a.example/', {
        queries: [{ answers: 'x' }, { answers: [{ ipv4: 42 }, null] }],
        control: { dns: 'x', tcp_connect: [], http_request: 'y' },
      }),
      M('not a url', {}),
      { test_name: 'web_connectivity', input: null, test_keys: {} },
      M('https://a.example/', {
        requests: [{ failure: 17, response: null }],
        control: { dns: { addrs: [1, '1.2.3.4'] }, http_request: { status_code: 'ok' } },
      }),
    ];
    for (const m of weird) {
      const v = analyzeMeasurement(m as never);
      assert.ok(['ok', 'blocked', 'down', 'unknown'].includes(v.status), JSON.stringify(m).slice(0, 80));
      assert.equal(typeof v.explanation, 'string');
    }
  });

  test('a billion-element array claim costs nothing: non-arrays are ignored, long arrays are capped', () => {
    const claim = M('https://a.example/', { queries: { length: 1e9 }, tcp_connect: { length: 1e9, 0: { ip: '1.2.3.4' } } });
    const t = analyzeMeasurement(claim as never);
    assert.equal(t.status, 'unknown');
    const long = M('https://a.example/', {
      tcp_connect: Array.from({ length: 200_000 }, () => ({
        ip: '1.2.3.4',
        port: 443,
        status: { success: false, failure: 'generic_timeout_error' },
      })),
    });
    const v = analyzeMeasurement(long as never);
    assert.equal(v.status, 'unknown'); // no control: nothing to compare with
  });

  test('base64 bodies and headers are decoded for titles and fingerprints', () => {
    const body = Buffer.from('<html><title>Site Title Words</title></html>').toString('base64');
    const m = M('http://a.example/', {
      queries: [{ engine: 'udp', hostname: 'a.example', query_type: 'A', failure: null, answers: [{ answer_type: 'A', ipv4: '8.8.4.4' }] }],
      tcp_connect: [{ ip: '8.8.4.4', port: 80, status: { success: true, failure: null } }],
      requests: [
        {
          failure: null,
          request: { url: 'http://a.example/' },
          response: {
            code: 200,
            body: { format: 'base64', data: body },
            headers: { Server: { format: 'base64', data: Buffer.from('x').toString('base64') } },
          },
        },
      ],
      control: {
        dns: { failure: null, addrs: ['8.8.4.4'] },
        tcp_connect: { '8.8.4.4:80': { status: true, failure: null } },
        http_request: { status_code: 200, body_length: 5000, title: 'Site Title Words', headers: {}, failure: null },
      },
    });
    const v = analyzeMeasurement(m as never);
    assert.equal(v.status, 'ok', v.explanation);
  });
});

describe('domainOf(input)', () => {
  test('hosts, IDNA, IPv6, junk', () => {
    assert.equal(domainOf('https://WWW.Example.com:8443/x'), 'www.example.com');
    assert.equal(domainOf('http://яндекс.рф/'), 'xn--d1acpjx3f.xn--p1ai');
    assert.equal(domainOf('http://[2001:db8::1]/'), '2001:db8::1');
    assert.equal(domainOf('not a url'), null);
    assert.equal(domainOf(null), null);
  });
});

describe('readMeasurementStream(chunks, name)', () => {
  async function collect(chunks: Array<string | Buffer>, name: string): Promise<Array<[number, boolean]>> {
    async function* gen(): AsyncGenerator<string | Buffer> {
      for (const c of chunks) yield c;
    }
    const out: Array<[number, boolean]> = [];
    for await (const r of readMeasurementStream(gen(), name)) out.push([r.line, r.ok]);
    return out;
  }
  const a = JSON.stringify(M('https://a.example/é'));
  test('JSONL split across arbitrary chunk boundaries (even inside a UTF-8 character)', async () => {
    const buf = Buffer.from(`${a}\n\n${a}\n{bad\n${a}`);
    const chunks: Buffer[] = [];
    for (let i = 0; i < buf.length; i += 7) chunks.push(buf.subarray(i, i + 7));
    assert.deepEqual(await collect(chunks, 'x.jsonl'), [
      [1, true],
      [3, true],
      [4, false],
      [5, true],
    ]);
  });
  test('an over-long line is skipped and reported without being buffered', async () => {
    const big = 'x'.repeat(1024 * 1024);
    const chunks = ['{"test_name":"', ...Array.from({ length: 17 }, () => big), '"}\n', a, '\n'];
    assert.deepEqual(await collect(chunks, 'x.jsonl'), [
      [1, false],
      [2, true],
    ]);
  });
  test('a .json document from a stream', async () => {
    assert.deepEqual(await collect([a.slice(0, 10), a.slice(10)], 'x.json'), [[1, true]]);
  });
});
