// The platform routes and the explorer's Platforms page end to end: a lab platform with hidden
// rules, watched and keyword-tested by the real probe code, the results stored in a real SQLite
// store, the summary served by buildApp and shown in Debian's chromium. Hostile post texts must
// never execute; the IP territory self-check must give whereami's label without the address ever
// leaving the page.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { analyzeMeasurement } from '../analysis/index.js';
import { parseScenario, startLab } from '../lab/index.js';
import { repoRoot, territoryTablesV4 } from '../probe/index.js';
import {
  keywordMeasurement,
  platformMeasurement,
  territoryOf,
  testKeywords,
  trackedPosts,
  watchMeasurement,
  watchPlatform,
} from '../probe/index.js';
import { SqliteStore } from '../store/index.js';
import { buildApp } from '../server/index.js';
import { launchLocalBrowser } from '../testing/browser.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the functions passed to page.evaluate run in the browser, whose DOM types this Node build does not have */
declare const window: any;
declare const document: any;

const WEB_DIST = join(repoRoot, 'web', 'dist');
const HOSTILE = '<img src=x onerror="window.__pwned=1"> falun';

const SCENARIO = `
name: explorer-platform
seed: 5
world: { sites: [] }
platform:
  name: lab-weibo
  accounts:
    - name: gd
      address: 202.96.128.86
      posts: [ 'hello from guangzhou', 'falun in the park', 'more falun news', 'weather' ]
    - name: us
      address: 8.8.8.8
      posts: [ 'hello from abroad', { text: 'bye', delete_at: 1 } ]
    - { name: tester, address: 223.5.5.5 }
  moderation:
    delay_s: { min: 0.8, max: 1.5 }
    keywords: [falun]
`;

describe('platform summary API and the Platforms page', () => {
  let dir: string;
  let store: SqliteStore;
  let app: Awaited<ReturnType<typeof buildApp>>;
  let base: string;
  let platformUrl: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wallscope-platform-ui-'));
    store = new SqliteStore(join(dir, 'store.sqlite'), { writerThread: false });
    const lab = await startLab(parseScenario(SCENARIO, 'p.yaml'), { standardPorts: false });
    try {
      platformUrl = lab.platform!.url;
      const res = await watchPlatform({ base: platformUrl, accounts: ['gd', 'us'], intervalMs: 400, durationMs: 6000, rate: 200 });
      const ms = [...res.vanished, ...trackedPosts(res.state)].map((v) => watchMeasurement(v, { platform: platformUrl, intervalS: 0.4 }));
      const kw = await testKeywords([HOSTILE, 'a calm sentence'], {
        base: platformUrl,
        accounts: [{ name: 'tester', token: 'token-tester' }],
        waitMs: 2000,
        pollMs: 100,
        rate: 500,
      });
      ms.push(...kw.results.map((r) => keywordMeasurement(r, { platform: platformUrl, at: new Date(), waitS: 2 })));
      // A hostile record as a malicious submitter could store it.
      ms.push(
        platformMeasurement('x_platform_watch', 'x', new Date(), 'hostile', {
          x_platform: '<script>window.__pwned=2</script>',
          x_platform_account: '<b>a</b>',
          x_platform_post: '1',
          x_platform_status: 'removed',
          x_platform_gone_at: new Date().toISOString(),
          x_platform_time_to_removal_s: 3,
          x_platform_territory: { code: '<i>', label: '<img src=y onerror="window.__pwned=3">' },
        }),
      );
      await store.putMany(ms.map((m) => ({ m, verdict: analyzeMeasurement(m) })));
    } finally {
      await lab.close();
    }
    app = await buildApp({ store, webRoot: WEB_DIST, logger: false, territoryTables: territoryTablesV4 });
    base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '');
  });
  after(async () => {
    await app?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /api/v1/platform/summary: rates, times and territories of what the watch stored', async () => {
    const r = await app.inject({ url: '/api/v1/platform/summary' });
    assert.equal(r.statusCode, 200);
    const s = r.json() as {
      platforms: Array<{
        platform: string;
        totals: Record<string, number>;
        time_to_removal: { n: number; median_s: number };
        per_territory: Array<{ label: string; posts: number; removed: number }>;
      }>;
      keywords: Array<{ text: string; removed: boolean; trigger: string[] }>;
    };
    const p = s.platforms.find((x) => x.platform === platformUrl)!;
    assert.deepEqual(
      { posts: p.totals.posts, removed: p.totals.removed, author_deleted: p.totals.author_deleted, visible: p.totals.visible },
      { posts: 6, removed: 2, author_deleted: 1, visible: 3 },
    );
    assert.equal(p.totals.removal_rate, 2 / 6);
    assert.equal(p.time_to_removal.n, 2);
    assert.ok(p.time_to_removal.median_s >= 0.8 && p.time_to_removal.median_s <= 1.5 + 0.4 + 0.5, String(p.time_to_removal.median_s));
    const gd = p.per_territory.find((t) => t.label === territoryOf('202.96.128.86').label)!;
    assert.deepEqual([gd.posts, gd.removed], [4, 2]);
    assert.equal(p.per_territory.find((t) => t.label === '美国')!.posts, 2);
    assert.deepEqual(s.keywords.find((k) => k.text === HOSTILE)!.trigger, ['falun']);
    assert.equal(s.keywords.find((k) => k.text === 'a calm sentence')!.removed, false);
    assert.equal((await app.inject({ url: '/api/v1/platform/summary?since=yesterday-ish' })).statusCode, 400);
    assert.equal((await app.inject({ url: '/api/v1/platform/summary?colour=red' })).statusCode, 400);
  });

  it('the Platforms page shows them, runs no hostile text, and looks up the IP territory in the browser', async () => {
    assert.ok(existsSync(join(WEB_DIST, 'index.html')), 'web/dist is missing: run `npx vite build web`');
    const requests: string[] = [];
    const browser = await launchLocalBrowser(base, {
      onRequest: (req) => requests.push(`${req.method()} ${req.url()} ${req.postData() ?? ''}`),
    });
    const { ctx, offsite } = browser;
    try {
      const dialogs: string[] = [];
      const page = await ctx.newPage();
      page.on('dialog', (d) => (dialogs.push(d.message()), void d.dismiss()));
      await page.goto(`${base}/#/platform`);
      await page.getByRole('heading', { name: platformUrl }).waitFor();
      const text = (await page.locator('main').textContent()) ?? '';
      assert.match(text, /6 posts watched: 33\.3% taken down by the platform \(2 removed/);
      assert.ok(text.includes(HOSTILE), 'the hostile text is shown as text');
      assert.ok(text.includes('<script>window.__pwned=2</script>'));
      assert.ok(text.includes(`${territoryOf('202.96.128.86').label} (CN-GD)`));
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
      assert.equal(await page.evaluate(() => document.querySelectorAll('main img, main script').length), 0);
      // The self-check: the label equals whereami's, and the address is in no request.
      for (const ip of ['202.96.128.86', '61.135.169.121', '203.198.7.66', '8.8.8.8']) {
        await page.locator('#whereami-ip').fill(ip);
        await page.getByRole('button', { name: 'Look up here' }).click();
        const t = territoryOf(ip);
        await page.locator('.whereami-result', { hasText: `IP属地：${t.label}` }).waitFor();
        assert.equal(await page.locator('.whereami-result').textContent(), `IP属地：${t.label} (${t.code})`);
      }
      assert.ok(requests.some((r) => r.includes('/api/v1/platform/territory-tables')));
      for (const ip of ['202.96.128.86', '61.135.169.121', '203.198.7.66', '8.8.8.8'])
        assert.ok(!requests.some((r) => r.includes(ip)), `a request carried ${ip}`);
      assert.deepEqual(offsite, []);
      assert.deepEqual(dialogs, []);
      mkdirSync(join(repoRoot, 'test-artifacts'), { recursive: true });
      await page.screenshot({ path: join(repoRoot, 'test-artifacts', 'explorer-platform.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
