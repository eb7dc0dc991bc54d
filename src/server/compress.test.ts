// Response compression (@fastify/compress in buildApp): the explorer's files and the API answers
// are sent br / gzip / deflate per Accept-Encoding, plain without it, over a real socket and
// decoded here byte for byte.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { SqliteStore } from '../store/index.js';
import { syntheticMeasurements } from '../testing/seed.js';
import { startServer } from './listen.js';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(url: string, path: string, acceptEncoding?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(url + path, { headers: acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function decode(r: Raw): string {
  const enc = r.headers['content-encoding'];
  if (enc === 'br') return brotliDecompressSync(r.body).toString('utf8');
  if (enc === 'gzip') return gunzipSync(r.body).toString('utf8');
  if (enc === 'deflate') return inflateSync(r.body).toString('utf8');
  assert.equal(enc, undefined, `unexpected content-encoding ${String(enc)}`);
  return r.body.toString('utf8');
}

async function harness(t: { after: (fn: () => unknown) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-compress-'));
  const web = join(dir, 'web');
  mkdirSync(join(web, 'assets'), { recursive: true });
  const script = `// explorer bundle\n${'export const rows = [' + Array.from({ length: 400 }, (_, i) => `{ i: ${i}, label: "row ${i}" }`).join(', ') + '];\n'}`;
  writeFileSync(
    join(web, 'index.html'),
    `<!doctype html><title>wallscope</title>${'<p>explorer</p>'.repeat(200)}<script type="module" src="/assets/app-1.js"></script>`,
  );
  writeFileSync(join(web, 'assets', 'app-1.js'), script);
  const store = new SqliteStore(join(dir, 'db.sqlite'));
  for (const { m, verdict } of syntheticMeasurements(60, { seed: 5 })) store.putSync(m, verdict);
  const srv = await startServer({ store, webRoot: web, rateLimit: false });
  t.after(async () => {
    await srv.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { url: srv.url, script };
}

describe('buildApp(opts): compressed responses', () => {
  it('sends the explorer files br, gzip or deflate per Accept-Encoding, and plain without it', async (t) => {
    const { url, script } = await harness(t);
    for (const [accept, want] of [
      ['br', 'br'],
      ['gzip', 'gzip'],
      ['deflate', 'deflate'],
      ['gzip, deflate, br', 'br'],
      ['gzip;q=1, br;q=0', 'gzip'],
    ] as const) {
      const r = await get(url, '/assets/app-1.js', accept);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], want, `Accept-Encoding: ${accept}`);
      assert.match(String(r.headers.vary), /accept-encoding/i);
      assert.ok(r.body.length < script.length / 2, `${want}: ${r.body.length} bytes for ${script.length}`);
      assert.equal(decode(r), script);
      assert.match(String(r.headers['content-type']), /^text\/javascript/);
      assert.match(String(r.headers['cache-control']), /immutable/);
    }
    const plain = await get(url, '/assets/app-1.js');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body.toString('utf8'), script);
    const identity = await get(url, '/', 'identity');
    assert.equal(identity.headers['content-encoding'], undefined);
    const page = await get(url, '/', 'gzip');
    assert.equal(page.headers['content-encoding'], 'gzip');
    assert.match(decode(page), /^<!doctype html>/);
  });

  it('compresses API answers above 1 KiB (lists, aggregations, CSV) and leaves small ones plain', async (t) => {
    const { url } = await harness(t);
    const plain = await get(url, '/api/v1/measurements?limit=50');
    assert.equal(plain.status, 200);
    const expected = JSON.parse(plain.body.toString('utf8')) as { results: unknown[] };
    assert.equal(expected.results.length, 50);
    for (const enc of ['br', 'gzip']) {
      const r = await get(url, '/api/v1/measurements?limit=50', enc);
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], enc);
      assert.ok(r.body.length < plain.body.length, `${enc} ${r.body.length} >= plain ${plain.body.length}`);
      assert.deepEqual(JSON.parse(decode(r)), expected);
    }
    const csv = await get(url, '/api/v1/aggregation?axis_x=measurement_start_day&axis_y=probe_cc&format=csv', 'gzip');
    assert.equal(csv.status, 200);
    assert.match(String(csv.headers['content-type']), /^text\/csv/);
    assert.match(decode(csv), /^measurement_start_day,probe_cc,measurement_count,/);
    const health = await get(url, '/api/v1/health', 'gzip, br');
    assert.equal(health.headers['content-encoding'], undefined, 'a small answer is not worth compressing');
    assert.equal((JSON.parse(decode(health)) as { ok: boolean }).ok, true);
    const missing = await get(url, '/api/v1/measurement/nope', 'br');
    assert.equal(missing.status, 404);
    assert.equal((JSON.parse(decode(missing)) as { code: string }).code, 'WS_NOT_FOUND');
  });
});
