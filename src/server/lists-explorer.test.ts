// The explorer's Lists page in a real browser (Debian's chromium via playwright-core) over the real
// `wallscope serve` on a real SQLite file, seeded by the real `wallscope lists snapshot --store`
// from `infer --json` lines of three dates: list size over time per layer, the layers' overlap
// matrix, the rules that overblock the most, the diff from the previous date, and an export link.
// No request may leave the local server.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../probe/index.js';
import { launchLocalBrowser, type LocalBrowser } from '../testing/browser.js';
import { serveChild, type ServeChild } from '../testing/serve-child.js';

const WEB_DIST = join(repoRoot, 'web', 'dist');

const infer = (name: string, layer: string, rule: string, overblocks: string[] = [], protocol = 'sni') =>
  JSON.stringify({ name, protocol, layer, rule, variants: {}, overblocks, queries: 12 });

// national: youtube (all dates), google (first two); regional: 011.com (overblocking 3 names,
// removed on the last date), youtube.com too on the first date (Jaccard 1/3), new.net from 04-22.
const DAYS: Array<[string, string[]]> = [
  [
    '2024-04-01',
    [
      infer('youtube.com', 'national', '(^|\\.)youtube\\.com$'),
      infer('google.com', 'national', '(^|\\.)google\\.com$', ['xgoogle.com']),
      infer('011.com', 'regional', '011\\.com$', ['a011.com', 'shop011.com', 'x011.com']),
      infer('youtube.com', 'regional', '^youtube\\.com$'),
    ],
  ],
  [
    '2024-04-22',
    [
      infer('youtube.com', 'national', '(^|\\.)youtube\\.com$'),
      infer('google.com', 'national', '(^|\\.)google\\.com$', ['xgoogle.com']),
      infer('011.com', 'regional', '011\\.com$', ['a011.com', 'shop011.com', 'x011.com']),
      infer('new.net', 'regional', '(^|\\.)new\\.net$'),
    ],
  ],
  ['2024-05-01', [infer('youtube.com', 'national', '(^|\\.)youtube\\.com$'), infer('new.net', 'regional', '(^|\\.)new\\.net$')]],
];

describe('explorer: Lists page (chromium)', () => {
  let dir: string;
  let server: ServeChild;
  let browser: LocalBrowser;
  const pageErrors: string[] = [];

  before(async () => {
    assert.ok(existsSync(join(WEB_DIST, 'index.html')), 'web/dist is missing: run `npx vite build web`');
    dir = mkdtempSync(join(tmpdir(), 'ws-lists-explorer-'));
    const db = join(dir, 'w.db');
    for (const [date, lines] of DAYS) {
      writeFileSync(join(dir, `${date}.jsonl`), `${lines.join('\n')}\n`);
      execFileSync(
        process.execPath,
        [join(repoRoot, 'bin', 'wallscope.js'), 'lists', 'snapshot', join(dir, `${date}.jsonl`), '--date', date, '--store', db],
        {
          stdio: 'pipe',
        },
      );
    }
    server = await serveChild(['--db', db], ['--web', WEB_DIST], { web: true });
    browser = await launchLocalBrowser(server.url, { viewport: { width: 1280, height: 900 } });
    browser.ctx.on('page', (p) => p.on('pageerror', (e) => pageErrors.push(e.message)));
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows list size over time per layer, the overlap matrix, the top overblocking rules and the diff', async () => {
    const page = await browser.ctx.newPage();
    await page.goto(`${server.url}/`);
    await page.locator('nav a', { hasText: 'Lists' }).click();
    await page.locator('main h1', { hasText: 'Lists' }).waitFor();
    const sizes = page.locator('table.list-sizes tbody tr');
    await sizes.first().waitFor();
    assert.deepEqual(
      (await sizes.allTextContents()).map((t) => t.trim()),
      [
        '2024-04-01national22',
        '2024-04-01regional22',
        '2024-04-22national22',
        '2024-04-22regional22',
        '2024-05-01national11',
        '2024-05-01regional11',
      ],
    );
    // The chart: one line per layer, one point per date.
    const lines = page.locator('figure.lists-size g.series polyline');
    assert.equal(await lines.count(), 2);
    assert.equal(((await lines.first().getAttribute('points')) ?? '').trim().split(' ').length, 3);
    // Newest date by default: no overlap left between the layers, nothing overblocks.
    await page.locator('table.overlap').waitFor();
    assert.match((await page.locator('table.overlap caption').textContent()) ?? '', /2024-05-01/);
    assert.deepEqual(await page.locator('table.overlap tbody tr').allTextContents(), ['national1.0000.000', 'regional0.0001.000']);
    await page.locator('p.empty', { hasText: 'No rule overblocks at 2024-05-01' }).waitFor();
    const diff = page.locator('table.list-diff tbody tr');
    await diff.first().waitFor();
    assert.deepEqual(await diff.allTextContents(), ['national011(^|\\.)google\\.com$ (21 days)', 'regional011011\\.com$ (21 days)']);

    // The first date: the layers share youtube.com; 011.com's rule overblocks the most.
    await page.locator('select[aria-label="Snapshot date"]').selectOption('2024-04-01');
    await page.waitForURL(/#\/lists\?date=2024-04-01/);
    await page.locator('table.overlap caption', { hasText: '2024-04-01' }).waitFor();
    assert.deepEqual(await page.locator('table.overlap tbody tr').allTextContents(), ['national1.0000.333', 'regional0.3331.000']);
    const ob = page.locator('table.overblocking tbody tr');
    await ob.first().waitFor();
    const obRows = await ob.allTextContents();
    assert.equal(obRows.length, 2);
    assert.match(obRows[0]!, /^regionalsni011\\\.com\$3011\.com$/);
    assert.match(obRows[1]!, /^nationalsni\(\^\|\\\.\)google\\\.com\$1google\.com$/);
    // The export link answers the snapshot as CSV.
    const csvHref = await page.locator('section.lists-at-date p a', { hasText: 'CSV' }).first().getAttribute('href');
    const csv = await (await fetch(`${server.url}/${csvHref}`)).text();
    assert.match(csv, /^date,layer,protocol,rule,names,overblocks\n2024-04-01,national,sni,/);
    await page.close();
    assert.deepEqual(browser.offsite, []);
    assert.deepEqual(pageErrors, []);
  });
});
