// buildApp(opts) over a real SQLite store, through app.inject() (no sockets) except where a
// socket is the point.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { ANALYSIS_VERSION } from '../analysis/index.js';
import { type Measurement, type Verdict } from '../model/index.js';
import { repoRoot } from '../probe/index.js';
import { SqliteStore } from '../store/index.js';
import { sampleMeasurement, sampleVerdict, syntheticMeasurements } from '../testing/seed.js';
import { appHarness, openReport } from '../testing/app-harness.js';
import { buildApp, toCsv } from './app.js';
import { ERRORS } from './errors.js';
import { startServer } from './listen.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'wallscope-server-'));
}

const harness = appHarness;

const submit = (app: FastifyInstance, content: unknown, extra: Record<string, unknown> = {}) =>
  app.inject({ method: 'POST', url: '/api/v1/submit_measurement', payload: { format: 'json', content }, ...extra });

describe('buildApp(opts): collector', () => {
  it("speaks OONI's report protocol: open, submit, close", async (t) => {
    const { app, store } = await harness(t);
    const open = await openReport(app, { test_start_time: '2026-11-22 05:00:00' });
    assert.equal(open.statusCode, 200, open.body);
    const { report_id, supported_formats } = open.json() as { report_id: string; supported_formats: string[] };
    assert.match(report_id, /^\d{8}T\d{6}Z_webconnectivity_CN_4134_n1_/);
    assert.deepEqual(supported_formats, ['json']);
    const m = sampleMeasurement();
    const sub = await app.inject({ method: 'POST', url: `/report/${report_id}`, payload: { format: 'json', content: m } });
    assert.equal(sub.statusCode, 200, sub.body);
    const { measurement_uid } = sub.json() as { measurement_uid: string };
    const close = await app.inject({ method: 'POST', url: `/report/${report_id}/close` });
    assert.equal(close.statusCode, 200);
    assert.deepEqual(close.json(), {});
    const got = await app.inject({ url: `/api/v1/measurement/${measurement_uid}` });
    assert.equal(got.statusCode, 200);
    const body = got.json() as { measurement: Measurement; verdict: Verdict; analysis_version: string };
    assert.equal(body.measurement.report_id, report_id);
    assert.equal(body.measurement.measurement_uid, measurement_uid);
    assert.deepEqual(body.measurement.test_keys, m.test_keys);
    assert.equal(body.analysis_version, ANALYSIS_VERSION);
    assert.equal(body.verdict.analysis_version, ANALYSIS_VERSION);
    assert.equal(await store.count(), 1);
  });

  it('rejects a measurement that disagrees with its report, and a report id it never issued; stores nothing', async (t) => {
    const { app, store } = await harness(t);
    const open = await openReport(app);
    const { report_id } = open.json() as { report_id: string };
    for (const [over, field] of [
      [{ probe_cc: 'IR' }, 'probe_cc'],
      [{ probe_asn: 'AS1' }, 'probe_asn'],
      [{ test_name: 'dns_check' }, 'test_name'],
    ] as const) {
      const r = await app.inject({
        method: 'POST',
        url: `/report/${report_id}`,
        payload: { format: 'json', content: { ...sampleMeasurement(), ...over } },
      });
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().code, 'WS_REPORT_MISMATCH');
      assert.match(r.json().error, new RegExp(field));
    }
    const forged = report_id.slice(0, -1) + (report_id.endsWith('0') ? '1' : '0');
    const r = await app.inject({ method: 'POST', url: `/report/${forged}`, payload: { format: 'json', content: sampleMeasurement() } });
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().code, 'WS_UNKNOWN_REPORT');
    const other = await buildApp({ store, webRoot: false, rateLimit: false, reportSecret: 'another collector' });
    t.after(() => other.close());
    const r2 = await other.inject({
      method: 'POST',
      url: `/report/${report_id}`,
      payload: { format: 'json', content: sampleMeasurement() },
    });
    assert.equal(r2.statusCode, 404, 'a report id signed with another secret is unknown');
    const mism = await submit(app, { ...sampleMeasurement(), report_id: '20261122T000000Z_webconnectivity_IR_1_n1_abcdefgh' });
    assert.equal(mism.statusCode, 400);
    assert.equal(mism.json().code, 'WS_REPORT_MISMATCH');
    assert.equal(await store.count(), 0);
  });

  it('submit_measurement is idempotent on the measurement uid', async (t) => {
    const { app, store } = await harness(t);
    const m = sampleMeasurement();
    const a = await submit(app, m);
    const b = await submit(app, m);
    const c = await submit(app, { ...m, report_id: (a.json() as { report_id: string }).report_id });
    assert.equal(a.statusCode, 200);
    assert.equal(b.json().measurement_uid, a.json().measurement_uid);
    assert.equal(c.json().measurement_uid, a.json().measurement_uid);
    assert.equal(await store.count(), 1);
    const forcedUid = await submit(app, {
      ...sampleMeasurement({ input: 'https://other.example/' }),
      measurement_uid: a.json().measurement_uid,
    });
    assert.notEqual(forcedUid.json().measurement_uid, a.json().measurement_uid, 'a submitter cannot pick a uid');
    assert.equal(await store.count(), 2);
  });

  it('answers bad input with a 4xx, a stable code and a clear message, and stores nothing', async (t) => {
    const { app, store } = await harness(t, { bodyLimit: 64 * 1024 });
    const cases: Array<{ name: string; req: InjectOptions; status: number; code: string; msg: RegExp }> = [
      {
        name: 'invalid JSON',
        req: {
          method: 'POST',
          url: '/api/v1/submit_measurement',
          headers: { 'content-type': 'application/json' },
          payload: '{"format":"json","content":{',
        },
        status: 400,
        code: 'WS_INVALID_JSON',
        msg: /JSON/,
      },
      {
        name: 'empty body',
        req: { method: 'POST', url: '/api/v1/submit_measurement', headers: { 'content-type': 'application/json' }, payload: '' },
        status: 400,
        code: 'WS_INVALID_JSON',
        msg: /JSON/,
      },
      {
        name: 'not JSON at all',
        req: { method: 'POST', url: '/api/v1/submit_measurement', headers: { 'content-type': 'text/plain' }, payload: 'hello' },
        status: 415,
        code: 'WS_UNSUPPORTED_MEDIA_TYPE',
        msg: /application\/json/,
      },
      {
        name: 'no content',
        req: { method: 'POST', url: '/api/v1/submit_measurement', payload: { format: 'json' } },
        status: 400,
        code: 'WS_BAD_MEASUREMENT',
        msg: /content/,
      },
      {
        name: 'bad probe_cc',
        req: {
          method: 'POST',
          url: '/api/v1/submit_measurement',
          payload: { format: 'json', content: { ...sampleMeasurement(), probe_cc: 'china' } },
        },
        status: 400,
        code: 'WS_BAD_MEASUREMENT',
        msg: /probe_cc/,
      },
      {
        name: 'test_keys not an object',
        req: {
          method: 'POST',
          url: '/api/v1/submit_measurement',
          payload: { format: 'json', content: { ...sampleMeasurement(), test_keys: 'x' } },
        },
        status: 400,
        code: 'WS_BAD_MEASUREMENT',
        msg: /test_keys/,
      },
      {
        name: 'input a number (never coerced)',
        req: {
          method: 'POST',
          url: '/api/v1/submit_measurement',
          payload: { format: 'json', content: { ...sampleMeasurement(), input: 5 } },
        },
        status: 400,
        code: 'WS_BAD_MEASUREMENT',
        msg: /input/,
      },
      {
        name: 'bad time',
        req: {
          method: 'POST',
          url: '/api/v1/submit_measurement',
          payload: { format: 'json', content: { ...sampleMeasurement(), measurement_start_time: 'yesterday' } },
        },
        status: 400,
        code: 'WS_BAD_MEASUREMENT',
        msg: /measurement_start_time/,
      },
      {
        name: 'format yaml',
        req: { method: 'POST', url: '/api/v1/submit_measurement', payload: { format: 'yaml', content: sampleMeasurement() } },
        status: 400,
        code: 'WS_BAD_FORMAT',
        msg: /json/,
      },
      {
        name: 'oversize',
        req: {
          method: 'POST',
          url: '/api/v1/submit_measurement',
          payload: { format: 'json', content: sampleMeasurement({ extra: { x_pad: 'x'.repeat(70 * 1024) } }) },
        },
        status: 413,
        code: 'WS_BODY_TOO_LARGE',
        msg: /65536/,
      },
      {
        name: 'nested 10000 deep',
        req: {
          method: 'POST',
          url: '/api/v1/submit_measurement',
          headers: { 'content-type': 'application/json' },
          payload: `{"format":"json","content":${JSON.stringify({ ...sampleMeasurement(), test_keys: { x: 'HOLE' } }).replace('"HOLE"', '['.repeat(10000) + ']'.repeat(10000))}}`,
        },
        status: 400,
        code: 'WS_BAD_MEASUREMENT',
        msg: /nested deeper/,
      },
      {
        name: 'prototype pollution',
        req: {
          method: 'POST',
          url: '/api/v1/submit_measurement',
          headers: { 'content-type': 'application/json' },
          payload: '{"format":"json","__proto__":{"x":1},"content":{}}',
        },
        status: 400,
        code: 'WS_INVALID_JSON',
        msg: /./,
      },
    ];
    for (const c of cases) {
      const r = await app.inject(c.req);
      assert.equal(r.statusCode, c.status, `${c.name}: ${r.body}`);
      const body = r.json() as { code: string; error: string; statusCode: number };
      assert.equal(body.code, c.code, c.name);
      assert.equal(body.statusCode, c.status, c.name);
      assert.match(body.error, c.msg, c.name);
    }
    assert.equal(await store.count(), 0);
    const ok = await submit(app, sampleMeasurement());
    assert.equal(ok.statusCode, 200, 'the limit is a limit, not a ban');
  });

  it("scrubs the submitter's address from every string and key, and never stores it", async (t) => {
    const { app, store, dir } = await harness(t);
    const ip = '203.0.113.7';
    const m = sampleMeasurement({
      extra: {
        requests: [
          {
            request: { url: `http://${ip}/`, headers: { 'X-Forwarded-For': `${ip}, 10.0.0.1` } },
            response: { body: `your ip is ${ip}. not 203.0.113.70` },
          },
        ],
        control: { tcp_connect: { [`${ip}:443`]: { status: true, failure: null } } },
      },
    });
    const r = await submit(app, { ...m, probe_ip: ip }, { remoteAddress: ip });
    assert.equal(r.statusCode, 200, r.body);
    const got = await store.get(r.json().measurement_uid);
    const text = JSON.stringify(got);
    assert.ok(
      !text.includes(ip + '"') &&
        !text.includes(ip + ',') &&
        !text.includes(ip + '/') &&
        !text.includes(ip + ':') &&
        !text.includes(ip + '.'),
      text,
    );
    assert.equal(got!.measurement.probe_ip, '[scrubbed]');
    assert.match(text, /your ip is \[scrubbed\]\. not 203\.0\.113\.70/);
    assert.ok('[scrubbed]:443' in (got!.measurement.test_keys as { control: { tcp_connect: object } }).control.tcp_connect);
    await store.close();
    // Nothing in the database files either (raw bodies are compressed: look at the decompressed rows).
    const again = new SqliteStore(join(dir, 'db.sqlite'));
    const all = await again.scan(null, 100);
    assert.ok(!JSON.stringify(all).match(/203\.0\.113\.7(?![0-9])/));
    await again.close();
    const v6 = await harness(t);
    const r6 = await submit(
      v6.app,
      { ...sampleMeasurement(), probe_ip: '2001:DB8::5', x_note: 'seen 2001:db8:0:0:0:0:0:5 too' },
      { remoteAddress: '2001:db8::5' },
    );
    const g6 = JSON.stringify(await v6.store.get(r6.json().measurement_uid));
    assert.ok(!/2001:db8::5|2001:db8:0:0:0:0:0:5/i.test(g6), g6);
    // A body that is not UTF-8 travels as base64: the address inside it goes too.
    const b64 = await harness(t);
    const bin = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`client ${ip} seen`, 'latin1')]);
    const rb = await submit(
      b64.app,
      sampleMeasurement({
        extra: {
          requests: [{ request: { url: 'http://x.example/' }, response: { body: { format: 'base64', data: bin.toString('base64') } } }],
        },
      }),
      { remoteAddress: ip },
    );
    assert.equal(rb.statusCode, 200, rb.body);
    const gb = (await b64.store.get(rb.json().measurement_uid))!.measurement.test_keys as {
      requests: Array<{ response: { body: { data: string } } }>;
    };
    const decoded = Buffer.from(gb.requests[0]!.response.body.data, 'base64').toString('latin1');
    assert.ok(!decoded.includes(ip), decoded);
    assert.match(decoded, /client \[scrubbed\] seen/);
  });

  it("writes structured JSON logs without the submitter's address", async (t) => {
    const lines: string[] = [];
    const stream = { write: (s: string) => void lines.push(s) };
    const { app } = await harness(t, { logger: { level: 'info', stream } });
    const r = await submit(app, sampleMeasurement(), { remoteAddress: '203.0.113.9' });
    assert.equal(r.statusCode, 200);
    const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const got = logs.find((l) => l.msg === 'measurement received');
    assert.ok(got, lines.join(''));
    assert.equal(got.measurement_uid, r.json().measurement_uid);
    assert.ok(logs.some((l) => l.msg === 'request completed'));
    assert.ok(!lines.join('').includes('203.0.113.9'), lines.join(''));
  });

  it('keeps loopback addresses: a withheld probe_ip and lab addresses are evidence, not the submitter', async (t) => {
    const { app, store } = await harness(t);
    const r = await submit(app, sampleMeasurement({ extra: { queries: [{ answers: [{ ipv4: '127.0.0.1' }] }] } }), {
      remoteAddress: '127.0.0.1',
    });
    const got = await store.get(r.json().measurement_uid);
    assert.equal(got!.measurement.probe_ip, '127.0.0.1');
  });

  it('runs the analysis on ingest and records its version; a crashing analysis still stores the measurement', async (t) => {
    let calls = 0;
    const analyze = (m: Measurement): Verdict => {
      calls++;
      if (m.input?.includes('crash')) throw new Error('rule bug');
      return sampleVerdict('blocked', { explanation: 'x', analysis_version: 'test-analysis/3' });
    };
    const { app, store } = await harness(t, { analyze, analysisVersion: 'test-analysis/3' });
    const a = await submit(app, sampleMeasurement());
    const b = await submit(app, sampleMeasurement({ input: 'https://crash.example/' }));
    assert.equal(b.statusCode, 200);
    assert.equal(calls, 2);
    assert.equal((await store.get(a.json().measurement_uid))!.analysis_version, 'test-analysis/3');
    const vb = (await store.get(b.json().measurement_uid))!.verdict;
    assert.equal(vb.status, 'unknown');
    assert.match(vb.explanation, /rule bug/);
  });
});

describe('buildApp(opts): query API', () => {
  let app: FastifyInstance;
  let store: SqliteStore;
  let dir: string;
  const data = [...syntheticMeasurements(200, { seed: 3, days: 20 })];
  before(async () => {
    dir = tmp();
    store = new SqliteStore(join(dir, 'q.sqlite'));
    for (const d of data) await store.put(d.m, d.verdict);
    app = await buildApp({ store, webRoot: false, rateLimit: false });
  });
  after(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /api/v1/measurements filters and pages with a cursor', async () => {
    const seen = new Set<string>();
    let url = '/api/v1/measurements?probe_cc=IR&limit=9';
    for (let i = 0; i < 50 && url; i++) {
      const r = await app.inject({ url });
      assert.equal(r.statusCode, 200, r.body);
      const body = r.json() as {
        results: Array<{ measurement_uid: string; probe_cc: string; blocking: unknown }>;
        next_cursor: string | null;
      };
      for (const row of body.results) {
        assert.equal(row.probe_cc, 'IR');
        seen.add(row.measurement_uid);
      }
      url = body.next_cursor ? `/api/v1/measurements?probe_cc=IR&limit=9&cursor=${body.next_cursor}` : '';
    }
    assert.equal(seen.size, data.filter((d) => d.m.probe_cc === 'IR').length);
    const blocked = (
      await app.inject({ url: '/api/v1/measurements?blocking=dns&mechanism=dns.injection&layer=national&limit=1000' })
    ).json() as { results: Array<{ blocking: string; anomaly: boolean }> };
    assert.equal(blocked.results.length, data.filter((d) => d.verdict.mechanism === 'dns.injection').length);
    assert.ok(blocked.results.every((r) => r.blocking === 'dns' && r.anomaly));
    const confirmed = (await app.inject({ url: '/api/v1/measurements?confirmed=true&limit=1000' })).json() as {
      results: Array<{ confirmed: boolean }>;
    };
    assert.equal(confirmed.results.length, data.filter((d) => d.verdict.status === 'blocked' && d.verdict.confirmed).length);
    assert.ok(confirmed.results.length > 0 && confirmed.results.every((r) => r.confirmed));
    const asn = (
      await app.inject({ url: '/api/v1/measurements?probe_asn=AS4134&since=2026-11-10&until=2026-11-20T00:00:00Z&limit=1000' })
    ).json() as { results: Array<{ probe_asn: string; measurement_start_time: string }> };
    assert.ok(asn.results.length > 0);
    assert.ok(
      asn.results.every(
        (r) => r.probe_asn === 'AS4134' && r.measurement_start_time >= '2026-11-10' && r.measurement_start_time < '2026-11-20',
      ),
    );
  });

  it('GET /api/v1/measurements rejects bad filters with 400 and a named field', async () => {
    for (const [q, re] of [
      ['probe_cc=china', /probe_cc/],
      ['blocking=yes', /blocking/],
      ['mechanism=dns.evil', /mechanism/],
      ['limit=0', /limit/],
      ['limit=100000', /limit/],
      ['limit=1001', /limit/],
      ['confirmed=yes', /confirmed/],
      ['since=yesterday', /since/],
      ['cursor=abc', /cursor/],
      ['nope=1', /additional|nope/],
      ['probe_asn=ASX', /probe_asn/],
    ] as const) {
      const r = await app.inject({ url: `/api/v1/measurements?${q}` });
      assert.equal(r.statusCode, 400, q);
      assert.equal(r.json().code, 'WS_BAD_REQUEST', q);
      assert.match(r.json().error, re, q);
    }
  });

  it('GET /api/v1/measurement/:uid returns raw, verdict and evidence; 404 otherwise', async () => {
    const uid = (await app.inject({ url: '/api/v1/measurements?limit=1' })).json().results[0].measurement_uid as string;
    const r = await app.inject({ url: `/api/v1/measurement/${uid}` });
    assert.equal(r.statusCode, 200);
    const b = r.json() as { measurement: Measurement; verdict: Verdict };
    assert.equal(b.measurement.measurement_uid, uid);
    assert.ok(Array.isArray(b.verdict.evidence));
    assert.equal((await app.inject({ url: '/api/v1/measurement/nope' })).statusCode, 404);
    assert.equal((await app.inject({ url: "/api/v1/measurement/x'%20OR%201=1" })).statusCode, 400);
  });

  it('GET /api/v1/aggregation counts by axes and grains, in JSON and CSV', async () => {
    const r = await app.inject({
      url: '/api/v1/aggregation?axis_x=measurement_start_day&axis_y=probe_cc&since=2026-11-01&until=2026-11-23',
    });
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json() as { result: Array<Record<string, number | string>>; dimension_count: number };
    assert.equal(body.dimension_count, 2);
    assert.equal(
      body.result.reduce((s, x) => s + Number(x.measurement_count), 0),
      data.length,
    );
    for (const x of body.result)
      assert.equal(
        Number(x.measurement_count),
        Number(x.ok_count) + Number(x.anomaly_count) + Number(x.confirmed_count) + Number(x.failure_count),
      );
    const csv = await app.inject({ url: '/api/v1/aggregation?axis_x=probe_cc&format=csv' });
    assert.equal(csv.statusCode, 200);
    assert.match(String(csv.headers['content-type']), /text\/csv/);
    const lines = csv.body.trim().split('\r\n');
    assert.equal(lines[0], 'probe_cc,measurement_count,ok_count,anomaly_count,confirmed_count,failure_count');
    assert.equal(lines.length, 1 + new Set(data.map((d) => d.m.probe_cc)).size);
    const month = (await app.inject({ url: '/api/v1/aggregation?axis_x=measurement_start_day&time_grain=month&probe_cc=CN' })).json() as {
      result: Array<{ measurement_start_day: string }>;
    };
    assert.ok(month.result.every((x) => x.measurement_start_day.endsWith('-01')));
    const bad = await app.inject({ url: '/api/v1/aggregation?axis_x=probe_cc&axis_y=probe_cc' });
    assert.equal(bad.statusCode, 400);
    assert.equal((await app.inject({ url: '/api/v1/aggregation?axis_x=evil' })).statusCode, 400);
  });

  it('region (annotations.region): filter on /measurements and /aggregation, axis, normalised like the stored value', async () => {
    const henan = data.filter((d) => d.m.annotations.region === 'Henan');
    assert.ok(henan.length > 0);
    const list = (await app.inject({ url: '/api/v1/measurements?region=Henan&limit=1000' })).json() as {
      results: Array<{ region: string | null; probe_cc: string }>;
    };
    assert.equal(list.results.length, henan.length);
    assert.ok(list.results.every((r) => r.region === 'Henan' && r.probe_cc === 'CN'));
    // Normalised like put(): surrounding and repeated whitespace do not matter, case does.
    assert.equal(
      ((await app.inject({ url: '/api/v1/measurements?region=%20Henan%20%20&limit=1000' })).json() as { results: unknown[] }).results
        .length,
      henan.length,
    );
    assert.equal(
      ((await app.inject({ url: '/api/v1/measurements?region=henan&limit=1000' })).json() as { results: unknown[] }).results.length,
      0,
    );
    const agg = (await app.inject({ url: '/api/v1/aggregation?axis_x=measurement_start_day&region=Henan' })).json() as {
      result: Array<Record<string, number | string>>;
    };
    assert.equal(
      agg.result.reduce((s, x) => s + Number(x.measurement_count), 0),
      henan.length,
    );
    const byRegion = await app.inject({ url: '/api/v1/aggregation?axis_x=region&probe_cc=CN&format=csv' });
    assert.equal(byRegion.statusCode, 200, byRegion.body);
    const lines = byRegion.body.trim().split('\r\n');
    assert.equal(lines[0], 'region,measurement_count,ok_count,anomaly_count,confirmed_count,failure_count');
    assert.deepEqual(
      lines
        .slice(1)
        .map((l) => l.split(',')[0])
        .sort(),
      ['', 'Beijing', 'Henan'],
    );
    for (const q of ['region=%20%20', `region=${'x'.repeat(257)}`]) {
      const r = await app.inject({ url: `/api/v1/measurements?${q}` });
      assert.equal(r.statusCode, 400, q);
      assert.match(r.json().error, /region/, q);
    }
  });

  it('toCsv(columns, rows) quotes per RFC 4180 and defuses spreadsheet formulas', () => {
    assert.equal(
      toCsv(
        ['a', 'b'],
        [
          { a: 'x,y', b: '=1+1' },
          { a: 'say "hi"', b: null },
        ],
      ),
      'a,b\r\n"x,y",\'=1+1\r\n"say ""hi""",\r\n',
    );
  });

  it('GET /metrics exposes request and ingest counters in Prometheus text format', async () => {
    await app.inject({ url: '/api/v1/measurements?limit=1' });
    const r = await app.inject({ url: '/metrics' });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /text\/plain/);
    assert.match(r.body, /# TYPE wallscope_http_requests_total counter/);
    assert.match(r.body, /wallscope_http_requests_total\{route="\/api\/v1\/measurements",method="GET",status="200"\} \d+/);
    assert.match(r.body, /wallscope_http_request_duration_seconds_bucket\{le="\+Inf",route="\/api\/v1\/measurements"\} \d+/);
  });
});

describe('buildApp(opts): admin, rate limits, static explorer', () => {
  it('admin routes need the bearer token; reanalyze rewrites verdicts with the new version; delete removes', async (t) => {
    let version = 'a/1';
    const analyze = (_m: Measurement): Verdict => ({
      status: 'ok',
      blocking: null,
      accessible: true,
      mechanism: 'none',
      layer: null,
      confidence: 1,
      evidence: [],
      explanation: version,
      confirmed: false,
      fingerprints: [],
      analysis_version: version,
    });
    const { app, store } = await harness(t, { analyze: (m) => analyze(m), adminToken: 's3cret' });
    const uids: string[] = [];
    for (let i = 0; i < 5; i++)
      uids.push((await submit(app, sampleMeasurement({ input: `https://s${i}.example/` }))).json().measurement_uid);
    const none = await harness(t);
    assert.equal((await none.app.inject({ method: 'POST', url: '/api/v1/admin/reanalyze', payload: {} })).json().code, 'WS_ADMIN_DISABLED');
    for (const auth of [undefined, 'Bearer wrong', 's3cret', 'Bearer s3cret2']) {
      const r = await app.inject({
        method: 'POST',
        url: '/api/v1/admin/reanalyze',
        payload: {},
        headers: auth ? { authorization: auth } : {},
      });
      assert.equal(r.statusCode, 401, String(auth));
      assert.equal(
        (await app.inject({ method: 'DELETE', url: `/api/v1/measurement/${uids[0]}`, headers: auth ? { authorization: auth } : {} }))
          .statusCode,
        401,
      );
    }
    const badBody = await app.inject({
      method: 'POST',
      url: '/api/v1/admin/reanalyze',
      payload: { only_outdated: 'yes' },
      headers: { authorization: 'Bearer s3cret' },
    });
    assert.equal(badBody.statusCode, 400);
    assert.equal(badBody.json().code, 'WS_BAD_REQUEST');
    version = 'a/2';
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/admin/reanalyze',
      payload: {},
      headers: { authorization: 'Bearer s3cret' },
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(r.json(), { scanned: 5, updated: 5, failed: 0, analysis_version: ANALYSIS_VERSION });
    assert.equal((await store.get(uids[3]))!.analysis_version, 'a/2');
    const d = await app.inject({ method: 'DELETE', url: `/api/v1/measurement/${uids[0]}`, headers: { authorization: 'Bearer s3cret' } });
    assert.equal(d.statusCode, 200);
    assert.equal(await store.get(uids[0]), null);
    assert.equal(
      (await app.inject({ method: 'DELETE', url: `/api/v1/measurement/${uids[0]}`, headers: { authorization: 'Bearer s3cret' } }))
        .statusCode,
      404,
    );
  });

  it('limits each client to its share and says when to retry', async (t) => {
    const { app } = await harness(t, { rateLimit: { max: 5, windowMs: 60_000 } });
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) codes.push((await app.inject({ url: '/api/v1/health', remoteAddress: '198.51.100.1' })).statusCode);
    assert.deepEqual(codes, [200, 200, 200, 200, 200, 429, 429]);
    const r = await app.inject({ url: '/api/v1/health', remoteAddress: '198.51.100.1' });
    assert.equal(r.json().code, 'WS_RATE_LIMITED');
    assert.ok(Number(r.headers['retry-after']) >= 1);
    assert.equal(
      (await app.inject({ url: '/api/v1/health', remoteAddress: '198.51.100.2' })).statusCode,
      200,
      'another client is not limited',
    );
  });

  it('serves web/dist at / with a CSP, and nothing outside it', async (t) => {
    const dir = tmp();
    const web = join(dir, 'dist');
    mkdirSync(join(web, 'assets'), { recursive: true });
    writeFileSync(join(web, 'index.html'), '<!doctype html><title>wallscope</title><script type="module" src="/assets/app.js"></script>');
    writeFileSync(join(web, 'assets', 'app.js'), 'console.log(1)');
    writeFileSync(join(dir, 'secret.txt'), 'TOPSECRET-CONTENT');
    writeFileSync(join(web, '.env'), 'TOKEN=x');
    const { app } = await harness(t, { webRoot: web });
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const index = await app.inject({ url: '/' });
    assert.equal(index.statusCode, 200);
    assert.match(String(index.headers['content-type']), /text\/html/);
    assert.match(index.body, /<title>wallscope/);
    assert.match(String(index.headers['content-security-policy']), /default-src 'self'/);
    assert.doesNotMatch(String(index.headers['content-security-policy']), /unsafe-inline/);
    assert.equal(index.headers['x-content-type-options'], 'nosniff');
    const js = await app.inject({ url: '/assets/app.js' });
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    for (const bad of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/.env', '/assets/%00x', '/nope.js']) {
      const r = await app.inject({ url: bad });
      // Refused either way: 404, or 400 where @fastify/static rejects an encoded traversal outright.
      assert.ok(r.statusCode === 404 || r.statusCode === 400, `${bad}: ${r.statusCode}`);
      assert.doesNotMatch(r.body, /TOPSECRET|TOKEN=x/);
    }
    assert.equal((await app.inject({ url: '/api/v1/health' })).statusCode, 200, 'the API still wins over the static files');
  });

  it('startServer(opts) listens on loopback and answers over a real socket', async (t) => {
    const dir = tmp();
    const store = new SqliteStore(join(dir, 's.sqlite'));
    const srv = await startServer({ store, webRoot: false, host: '127.0.0.1', port: 0 });
    t.after(async () => {
      await srv.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const r = await fetch(`${srv.url}/api/v1/submit_measurement`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ format: 'json', content: sampleMeasurement() }),
    });
    assert.equal(r.status, 200);
    assert.equal(await store.count(), 1);
  });
});

describe('ERRORS', () => {
  it('every error code is documented in docs/INTERNAL-API.md', () => {
    const doc = readFileSync(join(repoRoot, 'docs', 'INTERNAL-API.md'), 'utf8');
    for (const code of Object.keys(ERRORS)) assert.ok(doc.includes(code), `${code} is not documented`);
  });
});
