// The spool against real HTTP servers on loopback that answer as a collector would (the real
// collector end to end is in src/server/upload.test.ts: the probe may not import the server).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Measurement } from '../model/index.js';
import { flushSpool, pendingFiles, spoolMeasurement, type SpoolEvent } from './spool.js';

function measurement(i: number): Measurement {
  return {
    annotations: {},
    data_format_version: '0.2.0',
    input: `https://s${i}.example/`,
    measurement_start_time: '2026-11-22 05:00:00',
    probe_asn: 'AS4134',
    probe_cc: 'CN',
    probe_ip: '127.0.0.1',
    probe_network_name: '',
    report_id: '',
    resolver_asn: 'AS0',
    resolver_ip: '127.0.0.1',
    resolver_network_name: '',
    software_name: 'wallscope',
    software_version: '0.1.0',
    test_helpers: {},
    test_keys: { i },
    test_name: 'web_connectivity',
    test_runtime: 1,
    test_start_time: '2026-11-22 05:00:00',
    test_version: '0.4.3',
  };
}

async function collector(
  t: { after: (fn: () => unknown) => void },
  handle: (body: string, n: number, res: ServerResponse) => void,
): Promise<{ url: string; bodies: string[]; batchTries: { n: number } }> {
  const bodies: string[] = [];
  const batchTries = { n: 0 };
  let n = 0;
  const srv = createServer((req: IncomingMessage, res) => {
    // As OONI's collector: no batch route (flushSpool then submits one by one).
    if (req.url === '/api/v1/submit_measurements') {
      batchTries.n++;
      req.resume();
      res.writeHead(404).end('not found');
      return;
    }
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      handle(body, ++n, res);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => srv.close(() => r())));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, bodies, batchTries };
}

const ack = (res: ServerResponse, uid: string) =>
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ measurement_uid: uid }));

function spoolDir(t: { after: (fn: () => unknown) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-spool-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('spoolMeasurement(dir, m)', () => {
  it('writes one complete file per measurement and leaves no temp file', async (t) => {
    const dir = spoolDir(t);
    const files = await Promise.all([0, 1, 2].map((i) => spoolMeasurement(join(dir, 'nested'), measurement(i))));
    assert.equal(new Set(files).size, 3);
    assert.deepEqual(readdirSync(join(dir, 'nested')).sort(), files.map((f) => f.split('/').pop()).sort());
    for (const [i, f] of files.entries()) assert.deepEqual(JSON.parse(readFileSync(f, 'utf8')), measurement(i));
    assert.deepEqual(await pendingFiles(join(dir, 'nested')), [...files].sort());
  });
});

describe('flushSpool(dir, collectorUrl, opts)', () => {
  it('uploads every file as submit_measurement and deletes each only once acknowledged', async (t) => {
    const dir = spoolDir(t);
    for (let i = 0; i < 5; i++) await spoolMeasurement(dir, measurement(i));
    const c = await collector(t, (body, n, res) => ack(res, `uid-${n}`));
    const r = await flushSpool(dir, c.url, { baseDelayMs: 1 });
    assert.deepEqual(r, { uploaded: 5, rejected: 0, remaining: 0, errors: [] });
    assert.equal(c.bodies.length, 5);
    assert.equal(c.batchTries.n, 1, 'one batch tried, then one by one');
    const sent = c.bodies.map((b) => JSON.parse(b) as { format: string; content: Measurement });
    assert.ok(sent.every((b) => b.format === 'json'));
    assert.deepEqual(
      sent.map((b) => b.content.input).sort(),
      [0, 1, 2, 3, 4].map((i) => `https://s${i}.example/`),
    );
    assert.deepEqual(readdirSync(dir), []);
  });

  it('retries 5xx, 429 and answers without a uid with backoff, then succeeds', async (t) => {
    const dir = spoolDir(t);
    await spoolMeasurement(dir, measurement(1));
    const c = await collector(t, (_b, n, res) => {
      if (n === 1) res.writeHead(503).end('busy');
      else if (n === 2) res.writeHead(429, { 'retry-after': '1' }).end('slow down');
      else if (n === 3) res.writeHead(200).end('{}');
      else ack(res, 'uid-ok');
    });
    const events: SpoolEvent[] = [];
    const r = await flushSpool(dir, c.url, { baseDelayMs: 5, onEvent: (e) => events.push(e) });
    assert.equal(r.uploaded, 1);
    assert.equal(c.bodies.length, 4);
    assert.deepEqual(
      events.map((e) => e.type),
      ['retry', 'retry', 'retry', 'uploaded'],
    );
    const delays = events.filter((e): e is Extract<SpoolEvent, { type: 'retry' }> => e.type === 'retry').map((e) => e.delayMs);
    assert.ok(delays[0] >= 2 && delays[0] <= 5 && delays[2] >= 10 && delays[2] <= 20, `exponential, jittered: ${delays}`);
  });

  it('keeps everything when the collector is offline, and never throws', async (t) => {
    const dir = spoolDir(t);
    for (let i = 0; i < 3; i++) await spoolMeasurement(dir, measurement(i));
    // A port nobody listens on: bind then close.
    const c = await collector(t, (_b, _n, res) => ack(res, 'x'));
    const dead = createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise<void>((r) => dead.close(() => r()));
    const r = await flushSpool(dir, deadUrl, { retries: 2, baseDelayMs: 1 });
    assert.equal(r.uploaded, 0);
    assert.equal(r.remaining, 3);
    assert.match(r.errors[0], /ECONNREFUSED|network/);
    const r2 = await flushSpool(dir, c.url, { baseDelayMs: 1 });
    assert.deepEqual({ uploaded: r2.uploaded, remaining: r2.remaining }, { uploaded: 3, remaining: 0 });
  });

  it('moves a measurement the collector refuses (4xx) aside with its reason, and goes on', async (t) => {
    const dir = spoolDir(t);
    const bad = await spoolMeasurement(dir, measurement(0));
    await spoolMeasurement(dir, measurement(1));
    const c = await collector(t, (body, _n, res) => {
      if (body.includes('s0.example'))
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid body: probe_cc","code":"WS_BAD_MEASUREMENT"}');
      else ack(res, 'uid-1');
    });
    const r = await flushSpool(dir, c.url, { baseDelayMs: 1 });
    assert.deepEqual({ uploaded: r.uploaded, rejected: r.rejected, remaining: r.remaining }, { uploaded: 1, rejected: 1, remaining: 0 });
    const name = bad.split('/').pop()!;
    assert.ok(existsSync(join(dir, 'rejected', name)), 'kept, not lost');
    assert.match(readFileSync(join(dir, 'rejected', name + '.reason.txt'), 'utf8'), /HTTP 400[\s\S]*WS_BAD_MEASUREMENT/);
    assert.equal(c.bodies.length, 2, 'a refused measurement is not retried');
  });

  it('ignores a write that crashed before its rename and removes it once stale', async (t) => {
    const dir = spoolDir(t);
    await spoolMeasurement(dir, measurement(0));
    const tmp = join(dir, '.tmp-00000000000001-1-abc.json');
    writeFileSync(tmp, '{"half": ');
    const old = new Date(Date.now() - 3600_000);
    utimesSync(tmp, old, old);
    const c = await collector(t, (_b, n, res) => ack(res, `u${n}`));
    const r = await flushSpool(dir, c.url, { baseDelayMs: 1 });
    assert.equal(r.uploaded, 1);
    assert.equal(c.bodies.length, 1);
    assert.ok(!existsSync(tmp));
  });
});
