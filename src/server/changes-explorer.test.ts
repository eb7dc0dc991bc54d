// The explorer's change views in a real browser (Debian's chromium via playwright-core) over the
// real server and a real SQLite store with change detection: the "Changes" page (blocked now with
// "Blocked since", the changes with their evidence links), a domain page's state timeline, and an
// evidence link that opens the proving measurement. No request may leave the local server.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { repoRoot } from '../probe/index.js';
import { ChangeStore, SqliteStore, trackChanges } from '../store/index.js';
import { launchLocalBrowser, type LocalBrowser } from '../testing/browser.js';
import { sampleMeasurement, sampleVerdict } from '../testing/seed.js';
import { buildApp } from './index.js';

const WEB_DIST = join(repoRoot, 'web', 'dist');
const T0 = Date.UTC(2026, 11, 1, 8, 0, 0);

describe('explorer: changes page, blocked since, domain timeline (chromium)', () => {
  let dir: string;
  let browser: LocalBrowser;
  let store: SqliteStore;
  let changes: ChangeStore;
  let app: Awaited<ReturnType<typeof buildApp>>;
  let ctx: BrowserContext;
  let base: string;
  const pageErrors: string[] = [];

  before(async () => {
    assert.ok(existsSync(join(WEB_DIST, 'index.html')), 'web/dist is missing: run `npx vite build web`');
    dir = mkdtempSync(join(tmpdir(), 'ws-changes-explorer-'));
    store = new SqliteStore(join(dir, 's.sqlite'));
    changes = new ChangeStore(join(dir, 's.sqlite'));
    const tracked = trackChanges(store, changes);
    // youtube.com from AS4134 in Henan: reachable, then DNS-injected from minute 2 (still blocked);
    // news.example: blocked (SNI) then lifted at minute 3; a flaky site: one odd measurement.
    const put = (input: string, i: number, v: ReturnType<typeof sampleVerdict>) =>
      tracked.put(sampleMeasurement({ input, region: 'Henan', start: new Date(T0 + i * 60_000) }), v);
    const sni = { blocking: 'http-failure' as const, mechanism: 'tls.reset' as const, layer: 'regional' as const };
    for (const [i, k] of ['ok', 'ok', 'blocked', 'blocked', 'blocked'].entries())
      await put('https://youtube.com/', i, sampleVerdict(k as 'ok' | 'blocked'));
    for (const [i, k] of ['blocked', 'blocked', 'blocked', 'ok', 'ok'].entries())
      await put('https://news.example/', i, sampleVerdict(k as 'ok' | 'blocked', k === 'blocked' ? sni : {}));
    for (const [i, k] of ['ok', 'ok', 'blocked', 'ok', 'ok'].entries())
      await put('https://flaky.example/', i, sampleVerdict(k as 'ok' | 'blocked', k === 'blocked' ? sni : {}));
    app = await buildApp({ store, changes, webRoot: WEB_DIST, logger: false, rateLimit: false });
    base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '');
    browser = await launchLocalBrowser(base, { viewport: { width: 1280, height: 900 } });
    ctx = browser.ctx;
    ctx.on('page', (p) => p.on('pageerror', (e) => pageErrors.push(e.message)));
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    changes?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists what is blocked now with "Blocked since", the changes with evidence links, and the view\'s feed', async () => {
    const page = await ctx.newPage();
    await page.goto(`${base}/#/changes?probe_cc=CN`);
    await page.locator('main h1', { hasText: 'Changes' }).waitFor();
    const states = page.locator('table.states');
    await states.waitFor();
    assert.deepEqual(await states.locator('thead th').allTextContents(), ['Target', 'Network', 'State', 'Layer', 'Blocked since']);
    const blockedRows = await states.locator('tbody tr').allTextContents();
    assert.equal(blockedRows.length, 1);
    assert.match(blockedRows[0]!, /https:\/\/youtube\.com\/.*CN AS4134 Henan.*blocked: dns\.injection.*national.*2026-12-01 08:02:00 UTC/);
    const rows = page.locator('table.changes tbody tr');
    await rows.first().waitFor();
    const texts = await rows.allTextContents();
    // Newest first: news lifted at 08:03, youtube blocked at 08:02; the flaky site is absent.
    assert.equal(texts.length, 2);
    assert.match(texts[0]!, /2026-12-01 08:03:00 UTC.*https:\/\/news\.example\/.*regional.*blocked: tls\.reset.*reachable/);
    assert.match(texts[1]!, /2026-12-01 08:02:00 UTC.*https:\/\/youtube\.com\/.*national.*reachable.*blocked: dns\.injection/);
    assert.ok(!texts.join(' ').includes('flaky'));
    assert.equal(await page.locator('a[href^="api/v1/changes.atom"]').getAttribute('href'), 'api/v1/changes.atom?probe_cc=CN');
    // An evidence link opens the measurement that proves the change.
    await rows.nth(1).locator('a.evidence', { hasText: 'after 1' }).click();
    await page.waitForURL(/#\/measurement\//);
    // The page's heading comes before its data ("Loading…"): wait for the measurement itself.
    await page
      .locator('main', { hasText: 'youtube.com' })
      .waitFor({ timeout: 10_000 })
      .catch(() => undefined);
    assert.match((await page.locator('main').textContent()) ?? '', /youtube\.com/);
    await page.close();
  });

  it("shows a domain's state over time on its page", async () => {
    const page = await ctx.newPage();
    await page.goto(`${base}/#/domain/news.example`);
    const section = page.locator('section.timeline-of-states');
    await section.locator('table.states tbody tr').first().waitFor();
    assert.match(
      (await section.locator('table.states tbody tr').allTextContents()).join('\n'),
      /https:\/\/news\.example\/.*reachable.*2026-12-01 08:03:00 UTC/,
    );
    assert.match(
      (await section.locator('table.changes tbody tr').allTextContents()).join('\n'),
      /08:03:00 UTC.*blocked: tls\.reset.*reachable/,
    );
    const feed = await page.locator('section.timeline-of-states a[href^="api/v1/changes.atom"]').getAttribute('href');
    const atom = await (await fetch(`${base}/${feed}`)).text();
    assert.equal((atom.match(/<entry>/g) ?? []).length, 1);
    await page.close();
    assert.deepEqual(browser.offsite, []);
    assert.deepEqual(pageErrors, []);
  });
});
