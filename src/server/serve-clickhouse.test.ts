// `serve --clickhouse URL --changes-db SIDE.db`, the real CLI in child processes against the real
// server: list snapshots imported into the side file are served (the measurements in ClickHouse,
// the collector's own small tables beside it); change detection follows what another collector
// writes to the same ClickHouse database (--changes-follow).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ClickHouseStore } from '../store/index.js';
import { sampleMeasurement, sampleVerdict } from '../testing/seed.js';
import { runWallscope } from '../testing/cli.js';
import { serveChild } from '../testing/serve-child.js';

const CH_URL = process.env.WALLSCOPE_CLICKHOUSE_URL;

describe('serve --clickhouse with its side file (--changes-db)', () => {
  if (!CH_URL) {
    it('SKIPPED: WALLSCOPE_CLICKHOUSE_URL is unset', { skip: 'WALLSCOPE_CLICKHOUSE_URL is unset' }, () => {});
    return;
  }
  it('serves the snapshots imported into the side file: status, sizes, overlap and diff', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-lists-ch-'));
    const database = `wallscope_lists_${process.pid}`;
    const side = join(dir, 'side.db');
    const rule = (r: string, names: string[], overblocks = 0) => ({ rule: r, protocol: 'sni', names, overblocks });
    writeFileSync(
      join(dir, 'a.json'),
      JSON.stringify({
        date: '2024-04-01',
        layers: {
          national: [rule('(^|\\.)youtube\\.com$', ['youtube.com']), rule('^both\\.com$', ['both.com'])],
          regional: [rule('011\\.com$', ['011.com', 'a011.com'], 1), rule('^both\\.com$', ['both.com'])],
        },
      }),
    );
    writeFileSync(
      join(dir, 'b.json'),
      JSON.stringify({ date: '2024-04-22', layers: { national: [rule('(^|\\.)youtube\\.com$', ['youtube.com'])], regional: [] } }),
    );
    const imp = await runWallscope(['lists', 'import', join(dir, 'a.json'), join(dir, 'b.json'), '--store', side]);
    assert.equal(imp.code, 0, imp.stderr);
    const srv = await serveChild(['--clickhouse', `${CH_URL}/${database}`, '--changes-db', side]);
    t.after(async () => {
      await srv.stop('SIGTERM');
      const s = await ClickHouseStore.open({ url: CH_URL, database });
      await s.dropDatabase();
      await s.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const get = async (path: string) => {
      const r = await fetch(`${srv.url}${path}`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(r.status, 200, `${path}: ${r.status}`);
      return r.json() as Promise<Record<string, unknown>>;
    };
    assert.deepEqual(await get('/api/v1/lists/status'), { enabled: true, dates: ['2024-04-01', '2024-04-22'] });
    const sizes = (await get('/api/v1/lists/sizes')).sizes as Array<{ date: string; layer: string; rules: number; names: number }>;
    assert.deepEqual(
      sizes.find((s) => s.date === '2024-04-01' && s.layer === 'regional'),
      { date: '2024-04-01', layer: 'regional', rules: 2, names: 3 },
    );
    // Blocked names: national {youtube.com, both.com}, regional {011.com, a011.com, both.com}: 1 of 4.
    assert.deepEqual((await get('/api/v1/lists/overlap?date=2024-04-01')).pairs, [
      { a: 'national', b: 'regional', jaccard: 0.25, both: 1 },
    ]);
    const diff = (await get('/api/v1/lists/diff?from=2024-04-01&to=2024-04-22')) as {
      layers: Record<string, { added: unknown[]; removed: Array<{ rule: string }>; kept: number }>;
    };
    assert.deepEqual(
      diff.layers.regional!.removed.map((r) => r.rule),
      ['011\\.com$', '^both\\.com$'],
    );
    assert.equal(diff.layers.national!.kept, 1);
  });

  it('detects a change in what another collector wrote to ClickHouse, within --changes-follow', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-follow-serve-'));
    const database = `wallscope_follow_serve_${process.pid}`;
    const srv = await serveChild(
      ['--clickhouse', `${CH_URL}/${database}`, '--changes-db', join(dir, 'side.db')],
      ['--changes-follow', '1', '--change-confirmations', '1'],
    );
    const other = await ClickHouseStore.open({ url: CH_URL, database });
    t.after(async () => {
      await srv.stop('SIGTERM');
      await other.dropDatabase();
      await other.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const input = 'https://followed.example/';
    const at = (h: number) => new Date(Date.UTC(2026, 10, 22, h));
    await other.putMany([
      { m: sampleMeasurement({ input, start: at(1) }), verdict: sampleVerdict('ok') },
      { m: sampleMeasurement({ input, start: at(2) }), verdict: sampleVerdict('blocked') },
    ]);
    let changes: Array<{ target: string; to: { blocking: string } }> = [];
    // Bounded: 40 polls of 250 ms, four times the follow period and its first sync.
    for (let i = 0; i < 40 && !changes.length; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const r = await fetch(`${srv.url}/api/v1/changes?target=${encodeURIComponent(input)}`, { signal: AbortSignal.timeout(5000) });
      changes = ((await r.json()) as { changes: typeof changes }).changes;
    }
    assert.equal(changes.length, 1, "the block is detected from the other collector's measurements");
    assert.equal(changes[0]!.target, input);
    assert.equal(changes[0]!.to.blocking, 'dns');
    const bad = await runWallscope(['serve', '--clickhouse', `${CH_URL}/${database}`, '--changes-follow', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--changes-follow: expected a positive integer/);
  });
});
