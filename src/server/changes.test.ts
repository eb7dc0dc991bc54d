// Change detection: the hysteresis state machine (model/changes.ts) and its SQLite storage
// (store/changes.ts) on a real SQLite file, incremental on ingest, rebuilt in full and per key
// when a measurement arrives late, and the HTTP routes that serve it (/api/v1/changes, .atom, /states).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { emptyKeyState, seriesAnomalies, stepChange, type ChangeObservation, type KeyState } from '../analysis/index.js';
import type { Verdict } from '../model/index.js';
import { buildApp } from './app.js';
import { ChangeStore, Outbox, SqliteStore, trackChanges } from '../store/index.js';
import { sampleMeasurement, sampleVerdict } from '../testing/seed.js';
import { signWebhook, startWebhooks } from './webhooks.js';
import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';

const obs = (uid: string, ts: number, kind: 'ok' | 'dns' | 'sni' | 'unknown'): ChangeObservation =>
  kind === 'ok'
    ? { uid, ts, status: 'ok', blocking: 'false', mechanism: 'none', layer: null }
    : kind === 'unknown'
      ? { uid, ts, status: 'unknown', blocking: null, mechanism: null, layer: null }
      : kind === 'dns'
        ? { uid, ts, status: 'blocked', blocking: 'dns', mechanism: 'dns.injection', layer: 'national' }
        : { uid, ts, status: 'blocked', blocking: 'http-failure', mechanism: 'tls.reset', layer: 'regional' };

function run(seq: Array<'ok' | 'dns' | 'sni' | 'unknown'>, confirmations = 2) {
  let s: KeyState = emptyKeyState();
  const changes = [];
  for (const [i, k] of seq.entries()) {
    const r = stepChange(s, obs(`u${i}`, 100 + i, k), confirmations);
    s = r.next;
    if (r.change) changes.push(r.change);
  }
  return { s, changes };
}

describe('stepChange(state, measurement, confirmations)', () => {
  it('confirms a new state after two agreeing measurements, dated by the first, with the proof', () => {
    const { changes, s } = run(['ok', 'ok', 'dns', 'dns', 'dns']);
    assert.equal(changes.length, 1);
    assert.deepEqual(changes[0], {
      at: 102,
      from: { blocking: 'false', mechanism: 'none', layer: null },
      to: { blocking: 'dns', mechanism: 'dns.injection', layer: 'national' },
      layer: 'national',
      evidence: ['u1', 'u2', 'u3'],
    });
    assert.equal(s.since, 102);
  });
  it('does not call one flaky measurement a change, nor undecided ones', () => {
    assert.deepEqual(run(['ok', 'ok', 'sni', 'ok', 'dns', 'ok', 'unknown', 'sni', 'ok', 'ok']).changes, []);
    // an undecided measurement between two blocked ones neither confirms nor cancels
    assert.equal(run(['ok', 'ok', 'dns', 'unknown', 'dns']).changes.length, 1);
  });
  it('sees a mechanism switch (DNS -> SNI) and a lift, and the first state is not a change', () => {
    const { changes } = run(['dns', 'dns', 'sni', 'sni', 'ok', 'ok']);
    assert.deepEqual(
      changes.map((c) => [c.from.mechanism, c.to.mechanism, c.layer, c.at]),
      [
        ['dns.injection', 'tls.reset', 'regional', 102],
        ['tls.reset', 'none', 'regional', 104],
      ],
    );
  });
  it('with confirmations 1, every differing measurement is a change', () => {
    assert.equal(run(['ok', 'sni', 'ok'], 1).changes.length, 2);
  });
});

const T0 = Date.UTC(2026, 11, 1, 0, 0, 0);
const blockedSni: Partial<Verdict> = { blocking: 'http-failure', mechanism: 'tls.reset', layer: 'regional' };

describe('ChangeStore on the SQLite store (incremental, late arrivals, rebuild) and its routes', () => {
  it('detects on ingest, answers the contract, and rebuilds to the same result', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-changes-'));
    const file = join(dir, 'w.sqlite');
    const inner = new SqliteStore(file);
    const changes = new ChangeStore(file);
    const alerted: string[] = [];
    changes.onChange((c) => alerted.push(`${c.from.mechanism}>${c.to.mechanism}@${c.at.slice(14, 16)}`));
    t.after(async () => {
      changes.close();
      await inner.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const store = trackChanges(inner, changes);
    // Two keys: youtube from AS4134/Henan (blocked at minute 2, switches to SNI at 4, lifted at 6),
    // and a flaky site (one failure at minute 3) that must not change.
    const plan: Array<[string, number, Verdict]> = [];
    const yt = 'https://youtube.com/';
    const flaky = 'https://flaky.example/';
    const kinds: Array<Verdict> = [
      sampleVerdict('ok'),
      sampleVerdict('ok'),
      sampleVerdict('blocked'),
      sampleVerdict('blocked'),
      sampleVerdict('blocked', blockedSni),
      sampleVerdict('blocked', blockedSni),
      sampleVerdict('ok'),
      sampleVerdict('ok'),
    ];
    kinds.forEach((v, i) => plan.push([yt, i, v]));
    [0, 1, 2, 3, 4, 5, 6, 7].forEach((i) =>
      plan.push([
        flaky,
        i,
        i === 3 ? sampleVerdict('blocked', { blocking: 'tcp_ip', mechanism: 'tcp.timeout', layer: 'unknown' }) : sampleVerdict('ok'),
      ]),
    );
    const put = (url: string, i: number, v: Verdict) =>
      store.put(sampleMeasurement({ input: url, region: 'Henan', start: new Date(T0 + i * 60_000) }), v);
    // The youtube measurement of minute 3 arrives last (a spool uploaded late): the key is rebuilt.
    const late = plan.find(([u, i]) => u === yt && i === 3)!;
    for (const p of plan) if (p !== late) await put(...p);
    await put(...late);
    await put(...late); // a duplicate is not a step

    const list = changes.list();
    assert.deepEqual(
      list.map((c) => [c.target, c.at, c.from.mechanism, c.to.mechanism, c.layer, c.evidence.length]),
      [
        [yt, '2026-12-01T00:02:00Z', 'none', 'dns.injection', 'national', 3],
        [yt, '2026-12-01T00:04:00Z', 'dns.injection', 'tls.reset', 'regional', 3],
        [yt, '2026-12-01T00:06:00Z', 'tls.reset', 'none', 'regional', 3],
      ],
    );
    // Alerts as detection went: before the late measurement, none -> tls.reset at minute 4 (the
    // one DNS measurement of minute 2 was a lone one); the late one corrects the history (that
    // change is replaced in the store) and the two corrected changes are alerted; the lift is not
    // alerted twice.
    assert.deepEqual(alerted, ['none>tls.reset@04', 'tls.reset>none@06', 'none>dns.injection@02', 'dns.injection>tls.reset@04']);
    // Every evidence uid is a stored measurement, in the states it claims.
    for (const c of list) {
      const got = await Promise.all(c.evidence.map((u) => inner.get(u)));
      assert.ok(got.every((g) => g !== null));
      assert.equal(got[got.length - 1]!.verdict.mechanism, c.to.mechanism);
      assert.equal(got[0]!.verdict.mechanism, c.from.mechanism);
    }
    const incremental = JSON.stringify(list.map(({ id: _i, detected_at: _d, ...c }) => c));
    const stats = changes.rebuild();
    assert.deepEqual(stats, { measurements: 16, keys: 2, changes: 3 });
    assert.equal(JSON.stringify(changes.list().map(({ id: _i, detected_at: _d, ...c }) => c)), incremental);

    // The routes.
    const app = await buildApp({ store: inner, changes, rateLimit: false, webRoot: false });
    t.after(() => app.close());
    assert.deepEqual((await app.inject({ url: '/api/v1/changes/status' })).json(), { enabled: true, confirmations: 2 });
    const off = await buildApp({ store: inner, rateLimit: false, webRoot: false });
    assert.deepEqual((await off.inject({ url: '/api/v1/changes/status' })).json(), { enabled: false });
    assert.equal((await off.inject({ url: '/api/v1/changes' })).statusCode, 404);
    await off.close();
    const r = await app.inject({ url: '/api/v1/changes?since=2026-12-01T00:03:00Z' });
    assert.equal(r.statusCode, 200);
    const body = r.json() as { changes: Array<Record<string, unknown>> };
    assert.equal(body.changes.length, 2);
    const c = body.changes[0]!;
    for (const k of ['target', 'probe_cc', 'probe_asn', 'region', 'layer', 'at', 'from', 'to', 'evidence']) assert.ok(k in c, k);
    assert.deepEqual(
      [c.target, c.probe_cc, c.probe_asn, c.region, c.layer, c.at, c.from, c.to],
      [
        yt,
        'CN',
        'AS4134',
        'Henan',
        'regional',
        '2026-12-01T00:04:00Z',
        { blocking: 'dns', mechanism: 'dns.injection' },
        { blocking: 'http-failure', mechanism: 'tls.reset' },
      ],
    );
    const ev = await app.inject({ url: `/api/v1/measurement/${(c.evidence as string[])[1]}` });
    assert.equal(ev.statusCode, 200);
    const bad = await app.inject({ url: '/api/v1/changes?since=yesterday' });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().error, /since: expected a date/);
    assert.equal((await app.inject({ url: '/api/v1/changes?layer=galactic' })).statusCode, 400);
    // The feed and the states take the same filters, checked by the same schema.
    for (const url of ['/api/v1/changes.atom?layer=galactic', '/api/v1/states?since=yesterday', '/api/v1/states?colour=red'])
      assert.equal((await app.inject({ url })).statusCode, 400, url);
    assert.equal((await app.inject({ url: '/api/v1/changes?region=Hubei' })).json().changes.length, 0);
    assert.equal((await app.inject({ url: '/api/v1/changes?domain=youtube.com&probe_asn=AS4134' })).json().changes.length, 3);

    const feed = await app.inject({ url: '/api/v1/changes.atom?probe_cc=CN&layer=regional' });
    assert.equal(feed.statusCode, 200);
    assert.match(feed.headers['content-type'] as string, /^application\/atom\+xml/);
    assert.equal((feed.body.match(/<entry>/g) ?? []).length, 2);
    assert.match(
      feed.body,
      /<title>https:\/\/youtube\.com\/ dns\.injection -&gt; tls\.reset in CN AS4134 Henan \(regional layer\)<\/title>/,
    );
    assert.match(
      feed.body,
      /<link rel="related" type="text\/html" title="evidence [^"]+" href="http:\/\/localhost(:\d+)?\/#\/measurement\/[^"]+"\/>/,
    );

    const states = (await app.inject({ url: '/api/v1/states?domain=youtube.com' })).json().states as Array<Record<string, unknown>>;
    assert.deepEqual(
      states.map((s) => [s.blocking, s.mechanism, s.since]),
      [[false, 'none', '2026-12-01T00:06:00Z']],
    );
    assert.deepEqual((await app.inject({ url: '/api/v1/states?blocked=true' })).json().states, []);
  });
});

describe('startWebhooks(): signed deliveries from a persistent outbox', () => {
  it('a receiver down for a while gets every change once when it is back, across a restart; a broken one ends in the dead-letter list', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-hooks-'));
    const file = join(dir, 'w.sqlite');
    const inner = new SqliteStore(file);
    const changes = new ChangeStore(file);
    const secret = 'test-secret';
    const got: Array<{ id: string; change: { target: string; to: { mechanism: string } } }> = [];
    let badSignatures = 0;
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d));
      req.on('end', () => {
        const want = Buffer.from(signWebhook(secret, Number(req.headers['x-wallscope-timestamp']), body));
        const sig = Buffer.from(String(req.headers['x-wallscope-signature']));
        if (sig.length !== want.length || !timingSafeEqual(sig, want)) badSignatures++;
        got.push({
          id: String(req.headers['x-wallscope-delivery']),
          change: (JSON.parse(body) as { change: { target: string; to: { mechanism: string } } }).change,
        });
        res.end('ok');
      });
    });
    const broken = http.createServer((_req, res) => res.writeHead(500).end('no'));
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as { port: number }).port;
    const hook = `http://127.0.0.1:${port}/hook`;
    const brokenHook = `http://127.0.0.1:${(broken.address() as { port: number }).port}/hook`;
    // The receiver goes down before anything happens.
    await new Promise<void>((r) => receiver.close(() => r()));
    let outbox = new Outbox(file);
    // Short, bounded retries so the test sees several attempts; each restart gets the same options.
    const dispatcher = () =>
      startWebhooks({
        changes,
        outbox,
        hooks: [hook, brokenHook],
        secret,
        baseDelayMs: 30,
        maxDelayMs: 100,
        maxAttempts: 20,
        intervalMs: 20,
      });
    let hooks = dispatcher();
    t.after(async () => {
      await hooks.close();
      outbox.close();
      changes.close();
      await inner.close();
      broken.close();
      receiver.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const store = trackChanges(inner, changes);
    const seq = [
      sampleVerdict('ok'),
      sampleVerdict('ok'),
      sampleVerdict('blocked'),
      sampleVerdict('blocked'),
      sampleVerdict('ok'),
      sampleVerdict('ok'),
    ];
    for (const [i, v] of seq.entries())
      await store.put(sampleMeasurement({ input: 'https://a.example/', start: new Date(T0 + i * 60_000) }), v);
    assert.equal(changes.list().length, 2);
    // Down: attempts fail and are retried; then the collector restarts (a new outbox and dispatcher on the same file).
    await new Promise((r) => setTimeout(r, 200));
    await hooks.close();
    outbox.close();
    assert.equal(got.length, 0);
    outbox = new Outbox(file);
    hooks = dispatcher();
    for (const [i, v] of [sampleVerdict('blocked'), sampleVerdict('blocked')].entries())
      await store.put(sampleMeasurement({ input: 'https://a.example/', start: new Date(T0 + (10 + i) * 60_000) }), v);
    assert.equal(changes.list().length, 3);
    // The receiver comes back on its port.
    await new Promise<void>((r) => receiver.listen(port, '127.0.0.1', r));
    const deadline = Date.now() + 10_000;
    while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300)); // anything more would be a duplicate
    assert.deepEqual(
      got.map((g) => g.change.to.mechanism),
      ['dns.injection', 'none', 'dns.injection'],
    );
    assert.equal(new Set(got.map((g) => g.id)).size, 3);
    assert.equal(badSignatures, 0);
    const delivered = outbox.list('delivered');
    assert.deepEqual(
      delivered.map((d) => d.hook),
      [hook, hook, hook],
    );
    assert.ok(delivered[0]!.attempts > 1, 'the first change was retried while the receiver was down');
    // The broken receiver: every change in the dead-letter list after 20 attempts, in order.
    while (outbox.list('dead').length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const dead = outbox.list('dead');
    assert.deepEqual(
      dead.map((d) => [d.hook, d.attempts, d.last_error]),
      [
        [brokenHook, 20, 'HTTP 500'],
        [brokenHook, 20, 'HTTP 500'],
        [brokenHook, 20, 'HTTP 500'],
      ],
    );
  });
});

describe('anomalies on aggregate series: seriesAnomalies() and GET /api/v1/anomalies', () => {
  it('flags a jump of the blocked share once, where it happens; not noise, not small samples', () => {
    const pts = (shares: number[], n = 100) =>
      shares.map((p, i) => ({ bucket: `2026-12-${String(i + 1).padStart(2, '0')}`, measurements: n, blocked: Math.round(p * n) }));
    assert.deepEqual(
      seriesAnomalies(pts([0.05, 0.06, 0.04, 0.05, 0.6, 0.62, 0.58, 0.6])).map((a) => [a.bucket, a.direction]),
      [['2026-12-05', 'up']],
    );
    assert.deepEqual(
      seriesAnomalies(pts([0.6, 0.6, 0.6, 0.1, 0.1])).map((a) => [a.bucket, a.direction]),
      [['2026-12-04', 'down']],
    );
    assert.deepEqual(seriesAnomalies(pts([0.05, 0.12, 0.03, 0.1, 0.07, 0.15])), []);
    assert.deepEqual(seriesAnomalies(pts([0, 0, 0, 1, 1], 5)), []); // 5 measurements a day: too few to say
  });

  it('reads the store through its aggregation, per network', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-anomalies-'));
    const store = new SqliteStore(join(dir, 'a.sqlite'));
    t.after(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const items = [];
    for (let day = 0; day < 10; day++)
      for (let k = 0; k < 40; k++) {
        const start = new Date(Date.UTC(2026, 11, 1 + day, 1, 0, k));
        // AS4134: 5% blocked, then 60% from day 7 (2026-12-08); AS4837: 5% throughout.
        const jumped = day >= 7 ? k < 24 : k < 2;
        items.push({
          m: sampleMeasurement({ probe_asn: 'AS4134', input: `https://s${k}.example/`, start }),
          verdict: sampleVerdict(jumped ? 'blocked' : 'ok'),
        });
        items.push({
          m: sampleMeasurement({ probe_asn: 'AS4837', input: `https://s${k}.example/`, start }),
          verdict: sampleVerdict(k < 2 ? 'blocked' : 'ok'),
        });
      }
    await store.putMany(items);
    const app = await buildApp({ store, rateLimit: false, webRoot: false });
    t.after(() => app.close());
    const r = await app.inject({ url: '/api/v1/anomalies?axis=probe_asn&time_grain=day&probe_cc=CN' });
    assert.equal(r.statusCode, 200, r.body);
    const a = r.json().anomalies as Array<{ value: string; bucket: string; direction: string; share: number; baseline_share: number }>;
    assert.deepEqual(
      a.map((x) => [x.value, x.bucket.slice(0, 10), x.direction]),
      [['AS4134', '2026-12-08', 'up']],
    );
    assert.equal(a[0]!.share, 0.6);
    assert.equal(a[0]!.baseline_share, 0.05);
    assert.equal((await app.inject({ url: '/api/v1/anomalies?axis=galaxy' })).statusCode, 400);
    assert.equal((await app.inject({ url: '/api/v1/anomalies' })).statusCode, 400);
    assert.equal((await app.inject({ url: '/api/v1/anomalies?axis=probe_asn&min_delta=2' })).statusCode, 400);
  });
});
