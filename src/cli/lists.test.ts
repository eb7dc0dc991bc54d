import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { diffSnapshots, layerOverlap, ruleHistory, snapshotFromInfer } from '../model/index.js';
import { repoRoot } from '../probe/index.js';
import { ListStore } from '../store/index.js';

const dir = mkdtempSync(join(tmpdir(), 'wallscope-lists-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(repoRoot, 'bin', 'wallscope.js'), 'lists', ...args], (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}
const line = (name: string, layer: string, rule: string, protocol = 'sni', overblocks: string[] = []) => ({
  name,
  protocol,
  layer,
  rule,
  variants: {},
  overblocks,
  queries: 12,
});

describe('lists as data: snapshots, diff, history, overlap', () => {
  it('computes added, removed, durations and the Jaccard overlap of layers', () => {
    const a = snapshotFromInfer(
      [
        line('011.com', 'regional', '011\\.com$', 'sni', ['a011.com']),
        line('youtube.com', 'national', '(^|\\.)youtube\\.com$'),
        line('both.com', 'regional', '^both\\.com$'),
        line('both.com', 'national', '^both\\.com$'),
      ],
      '2024-04-01',
    );
    const b = snapshotFromInfer(
      [line('youtube.com', 'national', '(^|\\.)youtube\\.com$'), line('new.net', 'regional', '(^|\\.)new\\.net$')],
      '2024-04-22',
    );
    const d = diffSnapshots(a, b);
    assert.deepEqual(
      d.layers.regional!.added.map((r) => r.rule),
      ['(^|\\.)new\\.net$'],
    );
    assert.deepEqual(
      d.layers.regional!.removed.map((r) => r.rule),
      ['011\\.com$', '^both\\.com$'],
    ); // code-unit order
    assert.equal(d.layers.national!.kept, 1);
    const h = ruleHistory([b, a]);
    const yt = h.find((r) => r.rule.includes('youtube'))!;
    assert.deepEqual([yt.first_seen, yt.last_seen, yt.days, yt.present, yt.seen], ['2024-04-01', '2024-04-22', 21, true, 2]);
    assert.equal(h.find((r) => r.rule === '011\\.com$')!.present, false);
    const o = layerOverlap(a);
    assert.deepEqual(o, [{ a: 'national', b: 'regional', jaccard: 1 / 3, both: 1 }]);
  });

  it('snapshot, diff and history from the command line, CSV and JSON; bad input in one line', async () => {
    writeFileSync(
      join(dir, 'd1.jsonl'),
      [line('011.com', 'regional', '011\\.com$'), line('youtube.com', 'national', '(^|\\.)youtube\\.com$')]
        .map((l) => JSON.stringify(l))
        .join('\n'),
    );
    // A `lab eval --infer --json` object is read too.
    writeFileSync(
      join(dir, 'd2.json'),
      JSON.stringify({
        scenario: 'x',
        infer: [line('youtube.com', 'national', '(^|\\.)youtube\\.com$'), line('x,"y".com', 'regional', 'x,"y"\\.com$')],
      }),
    );
    assert.equal((await run(['snapshot', join(dir, 'd1.jsonl'), '--date', '2024-04-01', '--out', join(dir, 's1.json')])).code, 0);
    assert.equal((await run(['snapshot', join(dir, 'd2.json'), '--date', '2024-05-01', '--out', join(dir, 's2.json')])).code, 0);
    const diff = await run(['diff', join(dir, 's1.json'), join(dir, 's2.json'), '--csv']);
    assert.equal(diff.code, 0, diff.stderr);
    assert.deepEqual(diff.stdout.trim().split('\n'), [
      'layer,change,protocol,rule,names',
      'regional,added,sni,"x,""y""\\.com$","x,""y"".com"',
      'regional,removed,sni,011\\.com$,011.com',
    ]);
    const hist = JSON.parse((await run(['history', join(dir, 's1.json'), join(dir, 's2.json')])).stdout) as {
      rules: Array<{ rule: string; days: number }>;
      overlap: unknown[];
    };
    assert.equal(hist.rules.find((r) => r.rule.includes('youtube'))!.days, 30);
    assert.equal(hist.overlap.length, 2);
    writeFileSync(join(dir, 'bad.jsonl'), `${JSON.stringify(line('a.com', 'national', 'a'))}\n{oops\n`);
    const bad = await run(['snapshot', join(dir, 'bad.jsonl'), '--date', '2024-04-01', '--out', join(dir, 'bad.json')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /bad\.jsonl:2: not JSON/);
    assert.equal(existsSync(join(dir, 'bad.json')), false);
    assert.equal((await run(['snapshot', join(dir, 'd1.jsonl'), '--date', 'yesterday', '--out', join(dir, 'x.json')])).code, 2);
    assert.ok(readFileSync(join(dir, 's1.json'), 'utf8').includes('"date": "2024-04-01"'));
  });

  it('snapshot --store and import put snapshots in the SQLite store; a bad snapshot file stores nothing', async () => {
    const db = join(dir, 'w.db');
    writeFileSync(join(dir, 'e1.jsonl'), JSON.stringify(line('011.com', 'regional', '011\\.com$', 'sni', ['a011.com'])));
    const snap = await run(['snapshot', join(dir, 'e1.jsonl'), '--date', '2024-06-01', '--store', db]);
    assert.equal(snap.code, 0, snap.stderr);
    writeFileSync(join(dir, 'good.json'), JSON.stringify({ date: '2024-06-02', layers: { national: [] } }));
    writeFileSync(join(dir, 'badsnap.json'), JSON.stringify({ date: '2024-06-03', layers: { national: [{ rule: 'x' }] } }));
    const bad = await run(['import', join(dir, 'good.json'), join(dir, 'badsnap.json'), '--store', db]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    assert.match(bad.stderr, /badsnap\.json: not a list snapshot: layer "national" rule 1 needs/);
    const notJson = await run(['import', join(dir, 'e1.jsonl'), '--store', db]);
    assert.match(notJson.stderr, /e1\.jsonl: not a list snapshot/);
    assert.equal((await run(['snapshot', join(dir, 'e1.jsonl'), '--date', '2024-06-01'])).code, 2);
    let lists = new ListStore(db);
    assert.deepEqual(lists.dates(), ['2024-06-01']); // nothing of the refused import
    lists.close();
    const ok = await run(['import', join(dir, 'good.json'), join(dir, 's1.json'), '--store', db]);
    assert.equal(ok.code, 0, ok.stderr);
    lists = new ListStore(db);
    try {
      assert.deepEqual(lists.dates(), ['2024-04-01', '2024-06-01', '2024-06-02']);
      assert.deepEqual(lists.snapshot('2024-06-01')!.layers.regional, [
        { rule: '011\\.com$', protocol: 'sni', names: ['011.com'], overblocks: 1 },
      ]);
      assert.deepEqual(lists.snapshot('2024-04-01'), JSON.parse(readFileSync(join(dir, 's1.json'), 'utf8')));
    } finally {
      lists.close();
    }
  });
});
