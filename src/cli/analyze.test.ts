import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturesDir } from '../probe/index.js';
import { runWallscope } from '../testing/cli.js';

const run = (args: string[]) => runWallscope(['analyze', ...args]);

describe('wallscope analyze FILE...', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-analyze-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const qa = join(fixturesDir, 'measurements', 'synthetic-netem-qa');

  test('a file that is not JSON at all gets one line, not one per line, and exit 1; the other files are analysed', async () => {
    const csv = join(dir, 'list.csv');
    writeFileSync(csv, 'url,category_code\n' + 'https://a.example/,NEWS\n'.repeat(50));
    const alone = await run([csv]);
    assert.equal(alone.code, 1);
    assert.equal(alone.stdout, '');
    assert.equal(alone.stderr, `${csv}: not a JSON measurement file (.json, .jsonl, .jsonc): it starts with "url,category_code\\nht"\n`);
    const mixed = await run([csv, join(qa, 'successWithHTTPS.json')]);
    assert.equal(mixed.code, 1);
    assert.equal(mixed.stdout.trim().split('\n').length, 1);
    assert.equal(mixed.stderr.split('\n').filter((l) => l.startsWith(csv)).length, 1);
  });

  test('one JSON line per measurement with the contract keys, and an agreement summary', async () => {
    const r = await run([join(qa, 'dnsBlockingNXDOMAIN.json'), join(qa, 'successWithHTTPS.json')]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(rows.length, 2);
    assert.deepEqual(
      Object.keys(rows[0]).sort(),
      [
        'accessible',
        'agrees',
        'blocking',
        'confidence',
        'explanation',
        'input',
        'layer',
        'measurement_uid',
        'mechanism',
        'ooni_accessible',
        'ooni_blocking',
        'probe_cc',
        'report_id',
        'test_name',
      ].sort(),
    );
    assert.equal(rows[0].blocking, 'dns');
    assert.equal(rows[0].mechanism, 'dns.nxdomain');
    assert.equal(rows[1].accessible, true);
    assert.match(r.stderr, /analyzed 2 measurement\(s\)/);
    assert.match(r.stderr, /agreement with OONI's recorded blocking\/accessible: 2\/2 \(100\.0%\)/);
  });

  test('unreadable records are reported with file:line, the rest analysed, exit code 1', async () => {
    const f = join(dir, 'mixed.jsonl');
    const good = JSON.stringify(JSON.parse(readFileSync(join(qa, 'httpBlockingConnectionReset.json'), 'utf8')));
    writeFileSync(f, `${good}\n{"truncated": \n${good}\n`);
    const r = await run([f, join(dir, 'missing.json')]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout.trim().split('\n').length, 2);
    assert.match(r.stderr, /mixed\.jsonl:2: unreadable: invalid JSON/);
    assert.match(r.stderr, /missing\.json: cannot read: ENOENT/);
  });

  test('a disagreement is listed with the reason', async () => {
    const f = join(dir, 'lying.json');
    const m = JSON.parse(readFileSync(join(qa, 'successWithHTTP.json'), 'utf8')) as { test_keys: Record<string, unknown> };
    m.test_keys.blocking = 'http-diff';
    m.test_keys.accessible = false;
    writeFileSync(f, JSON.stringify(m));
    const r = await run([f, '--no-fingerprints']);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /0\/1 \(0\.0%\)/);
    assert.match(
      r.stderr,
      /lying\.json:1 http:\/\/www\.example\.com\/: OONI "http-diff"\/false, wallscope false\/true\. Why: The page matches/,
    );
  });
});
