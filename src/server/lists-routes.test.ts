// GET /api/v1/lists/...: snapshots stored in a real SQLite file (the store's list tables), served by
// the real app through inject(); the figures are checked against hand-computed values.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { snapshotFromInfer, type InferLike } from '../model/index.js';
import { ListStore, SqliteStore } from '../store/index.js';
import { buildApp } from './app.js';

const line = (name: string, layer: string, rule: string, overblocks: string[] = [], protocol = 'sni'): InferLike => ({
  name,
  protocol,
  layer,
  rule,
  overblocks,
});

// Three dates: 011.com's rule holds from 04-01 to 04-22 then goes; new.net arrives on 04-22;
// youtube.com is in both layers on 04-01 (Jaccard 1/3 that day).
const SNAPS = [
  snapshotFromInfer(
    [
      line('011.com', 'regional', '011\\.com$', ['a011.com', 'shop011.com']),
      line('youtube.com', 'national', '(^|\\.)youtube\\.com$'),
      line('youtube.com', 'regional', '^youtube\\.com$'),
      line('google.com', 'national', '(^|\\.)google\\.com$', ['xgoogle.com']),
    ],
    '2024-04-01',
  ),
  snapshotFromInfer(
    [
      line('011.com', 'regional', '011\\.com$', ['a011.com', 'shop011.com']),
      line('youtube.com', 'national', '(^|\\.)youtube\\.com$'),
      line('new.net', 'regional', '(^|\\.)new\\.net$'),
    ],
    '2024-04-22',
  ),
  snapshotFromInfer(
    [line('youtube.com', 'national', '(^|\\.)youtube\\.com$'), line('new.net', 'regional', '(^|\\.)new\\.net$')],
    '2024-05-01',
  ),
];

describe('lists routes over the SQLite store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-lists-routes-'));
  const file = join(dir, 'w.db');
  let store: SqliteStore;
  let lists: ListStore;
  let app: FastifyInstance;
  before(async () => {
    store = new SqliteStore(file);
    lists = new ListStore(file);
    lists.put(SNAPS);
    app = await buildApp({ store, lists, webRoot: false, rateLimit: false });
  });
  after(async () => {
    await app.close();
    lists.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const get = async (url: string) => {
    const r = await app.inject({ method: 'GET', url });
    return { status: r.statusCode, body: r.body, json: () => r.json() as Record<string, unknown>, type: String(r.headers['content-type']) };
  };

  it('list size per date and layer (distinct names), as JSON and CSV', async () => {
    const r = await get('/api/v1/lists/sizes');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json().sizes, [
      { date: '2024-04-01', layer: 'national', rules: 2, names: 2 },
      { date: '2024-04-01', layer: 'regional', rules: 2, names: 2 },
      { date: '2024-04-22', layer: 'national', rules: 1, names: 1 },
      { date: '2024-04-22', layer: 'regional', rules: 2, names: 2 },
      { date: '2024-05-01', layer: 'national', rules: 1, names: 1 },
      { date: '2024-05-01', layer: 'regional', rules: 1, names: 1 },
    ]);
    const c = await get('/api/v1/lists/sizes?format=csv');
    assert.match(c.type, /^text\/csv/);
    assert.equal(c.body.split('\n')[1], '2024-04-01,national,2,2');
    assert.deepEqual((await get('/api/v1/lists/status')).json(), { enabled: true, dates: ['2024-04-01', '2024-04-22', '2024-05-01'] });
  });

  it('overlap of layers (Jaccard of blocked names), newest date by default', async () => {
    const a = (await get('/api/v1/lists/overlap?date=2024-04-01')).json();
    assert.deepEqual(a, {
      date: '2024-04-01',
      layers: ['national', 'regional'],
      pairs: [{ a: 'national', b: 'regional', jaccard: 1 / 3, both: 1 }],
    });
    const latest = (await get('/api/v1/lists/overlap')).json();
    assert.equal(latest.date, '2024-05-01');
    assert.deepEqual(latest.pairs, [{ a: 'national', b: 'regional', jaccard: 0, both: 0 }]);
  });

  it('diff between two dates with the block duration of each rule, JSON and CSV', async () => {
    const d = (await get('/api/v1/lists/diff?from=2024-04-22&to=2024-05-01')).json() as {
      layers: Record<
        string,
        { added: unknown[]; removed: Array<{ rule: string; first_seen: string; last_seen: string; days: number }>; kept: number }
      >;
    };
    assert.deepEqual(d.layers.regional!.added, []);
    assert.deepEqual(
      d.layers.regional!.removed.map((r) => [r.rule, r.first_seen, r.last_seen, r.days]),
      [['011\\.com$', '2024-04-01', '2024-04-22', 21]],
    );
    assert.equal(d.layers.national!.kept, 1);
    const c = await get('/api/v1/lists/diff?from=2024-04-01&to=2024-04-22&format=csv');
    assert.equal(c.status, 200);
    assert.deepEqual(c.body.trim().split('\n'), [
      'layer,change,protocol,rule,names,first_seen,last_seen,days',
      'national,removed,sni,(^|\\.)google\\.com$,google.com,2024-04-01,2024-04-01,0',
      'regional,added,sni,(^|\\.)new\\.net$,new.net,2024-04-22,2024-04-22,0',
      'regional,removed,sni,^youtube\\.com$,youtube.com,2024-04-01,2024-04-01,0',
    ]);
  });

  it('the rules that overblock the most, export of a snapshot, history', async () => {
    const o = (await get('/api/v1/lists/overblocking?date=2024-04-01&limit=5')).json() as {
      rules: Array<{ layer: string; rule: string; overblocks: number }>;
    };
    assert.deepEqual(
      o.rules.map((r) => [r.layer, r.rule, r.overblocks]),
      [
        ['regional', '011\\.com$', 2],
        ['national', '(^|\\.)google\\.com$', 1],
      ],
    );
    const s = (await get('/api/v1/lists/snapshot?date=2024-04-22')).json();
    assert.deepEqual(s, SNAPS[1]);
    const csv = await get('/api/v1/lists/snapshot?date=2024-04-22&format=csv');
    assert.match(csv.body, /^date,layer,protocol,rule,names,overblocks\n2024-04-22,national,sni,/);
    const h = (await get('/api/v1/lists/history')).json() as { rules: Array<{ rule: string; days: number; present: boolean }> };
    assert.deepEqual(
      h.rules.filter((r) => r.rule.includes('youtube')).map((r) => [r.rule, r.days, r.present]),
      [
        ['(^|\\.)youtube\\.com$', 30, true],
        ['^youtube\\.com$', 0, false],
      ],
    );
  });

  it('bad query strings are 400 with the field named; a missing date is 404', async () => {
    for (const url of [
      '/api/v1/lists/overlap?date=yesterday',
      '/api/v1/lists/overlap?date=2024-02-30',
      '/api/v1/lists/diff?from=2024-04-01',
      '/api/v1/lists/diff?from=2024-05-01&to=2024-04-01',
      '/api/v1/lists/sizes?format=xml',
      '/api/v1/lists/overblocking?limit=-1',
      '/api/v1/lists/snapshot?nope=1',
    ]) {
      const r = await get(url);
      assert.equal(r.status, 400, url);
      assert.equal(r.json().code, 'WS_BAD_REQUEST', url);
    }
    assert.match(String((await get('/api/v1/lists/overlap?date=2024-02-30')).json().error), /date: not a calendar date/);
    const missing = await get('/api/v1/lists/snapshot?date=2023-01-01');
    assert.equal(missing.status, 404);
    assert.match(String(missing.json().error), /no list snapshot at 2023-01-01/);
  });

  it('without a list store only the status answers', async () => {
    const bare = await buildApp({ store, webRoot: false, rateLimit: false });
    try {
      assert.deepEqual((await bare.inject({ method: 'GET', url: '/api/v1/lists/status' })).json(), { enabled: false, dates: [] });
      assert.equal((await bare.inject({ method: 'GET', url: '/api/v1/lists/sizes' })).statusCode, 404);
    } finally {
      await bare.close();
    }
  });

  it('storing a date again replaces its layers whole (a layer emptied is size 0)', async () => {
    const other = new ListStore(file);
    try {
      other.put([{ date: '2024-05-01', layers: { regional: [] } }]);
      const sizes = (await get('/api/v1/lists/sizes')).json().sizes as Array<{ date: string; layer: string; rules: number }>;
      assert.deepEqual(
        sizes.filter((s) => s.date === '2024-05-01').map((s) => [s.layer, s.rules]),
        [
          ['national', 1],
          ['regional', 0],
        ],
      );
    } finally {
      other.put([SNAPS[2]!]);
      other.close();
    }
  });
});
