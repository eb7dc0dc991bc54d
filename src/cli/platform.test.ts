// `wallscope platform watch|keywords` and `wallscope whereami` as a user runs them (child
// processes), against a lab platform started from a scenario: the contract's JSON lines, the
// store's x_platform_watch measurements, located errors for bad input.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseScenario, startLab } from '../lab/index.js';
import { repoRoot } from '../probe/index.js';
import { SqliteStore } from '../store/index.js';

const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

function run(args: string[], timeout = 60_000): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { timeout }, (e, out, err) =>
      resolve({ out, err, code: e ? ((e as { code?: number }).code ?? null) : 0 }),
    );
  });
}

const SCENARIO = `
name: cli-platform
seed: 11
world: { sites: [] }
platform:
  accounts:
    - name: ann
      address: 61.135.169.121
      posts:
        - { text: a quiet day }
    - name: ben
      address: 1.1.1.1
    - { name: tester, address: 202.96.128.86 }
  moderation:
    delay_s: { min: 1, max: 2.5 }
    rules:
      - words: [xinjiang, camps]
      - { words: pooh, action: shadow }
`;

describe('wallscope platform watch|keywords, whereami', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-platform-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('watch --json prints the contract line per vanished post and stores x_platform_watch measurements', async () => {
    const lab = await startLab(parseScenario(SCENARIO, 's.yaml'), { standardPorts: false });
    try {
      const url = lab.platform!.url;
      const db = join(dir, 'w.db');
      const running = run([
        'platform',
        'watch',
        url,
        'ann',
        'ben',
        '--interval',
        '0.5',
        '--duration',
        '6',
        '--rate',
        '100',
        '--state',
        join(dir, 'w.state'),
        '--db',
        db,
        '--json',
      ]);
      // The posts appear once the watcher (a child process, slow to start on a loaded machine) polls.
      for (let i = 0; i < 300 && lab.platform!.stats().requests < 2; i++) await new Promise((res) => setTimeout(res, 50));
      const post = async (who: string, text: string) =>
        (
          (await fetch(`${url}/api/v1/posts`, {
            method: 'POST',
            headers: { authorization: `Bearer token-${who}`, 'content-type': 'application/json' },
            body: JSON.stringify({ text }),
          }).then((x) => x.json())) as { id: string }
        ).id;
      await post('ann', 'the forbidden word xinjiang camps');
      const mine = await post('ann', 'deleting this soon');
      await post('ben', 'honey for pooh');
      await new Promise((res) => setTimeout(res, 1500));
      assert.equal(
        (await fetch(`${url}/api/v1/posts/${mine}`, { method: 'DELETE', headers: { authorization: 'Bearer token-ann' } })).status,
        200,
      );
      const r = await running;
      assert.equal(r.code, 0, r.err);
      const lines = r.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const truth = lab.platform!.truth().posts.filter((p) => p.status !== 'visible');
      assert.equal(lines.length, truth.length, r.out);
      for (const l of lines) {
        assert.deepEqual(Object.keys(l).slice(0, 5), ['account', 'post', 'status', 'seen_at', 'gone_at']);
        assert.equal(l.status, truth.find((t) => t.id === l.post)!.status);
      }
      assert.deepEqual(new Set(lines.map((l) => l.status)), new Set(['removed', 'author_deleted', 'shadow_hidden']));
      const store = new SqliteStore(db, { writerThread: false });
      try {
        const { results } = await store.list({ test_name: 'x_platform_watch' }, { limit: 100 });
        // One record per vanished post, and one for the post still visible at the end (the denominator of rates).
        const keys = await Promise.all(
          results.map(async (row) => (await store.get(row.measurement_uid))!.measurement.test_keys as Record<string, unknown>),
        );
        assert.deepEqual(keys.map((k) => k.x_platform_status).sort(), ['author_deleted', 'removed', 'shadow_hidden', 'visible']);
        for (const tk of keys) {
          assert.equal(tk.x_platform, url);
          assert.equal(typeof tk.x_platform_time_to_removal_s, tk.x_platform_status === 'visible' ? 'object' : 'number');
        }
      } finally {
        await store.close();
      }
      // Resumed with the same state: nothing is reported twice.
      const again = await run([
        'platform',
        'watch',
        url,
        'ann',
        'ben',
        '--interval',
        '0.5',
        '--rounds',
        '2',
        '--state',
        join(dir, 'w.state'),
        '--json',
      ]);
      assert.equal(again.code, 0, again.err);
      assert.equal(again.out, '');
    } finally {
      await lab.close();
    }
  });

  it('watch --state survives a kill -9: the resumed watch reports every vanished post once', async () => {
    const names = Array.from({ length: 8 }, (_, i) => `k${i}`);
    const yaml = `name: kill\nseed: 2\nworld: { sites: [] }\nplatform:\n  accounts: [${names.map((n) => `{ name: ${n}, address: 8.8.8.8 }`).join(', ')}]\n  moderation:\n    delay_s: { min: 1, max: 7 }\n    keywords: [zap]\n`;
    const lab = await startLab(parseScenario(yaml, 'k.yaml'), { standardPorts: false });
    const state = join(dir, 'kill.state');
    try {
      const url = lab.platform!.url;
      const args = [
        main,
        'platform',
        'watch',
        url,
        ...names,
        '--interval',
        '0.3',
        '--duration',
        '30',
        '--rate',
        '200',
        '--state',
        state,
        '--json',
      ];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let first = '';
      child.stdout.on('data', (b: Buffer) => (first += b.toString()));
      for (let i = 0; i < 300 && lab.platform!.stats().requests < names.length; i++) await new Promise((res) => setTimeout(res, 50));
      for (const n of names)
        for (const text of ['zap one', 'zap two', 'calm'])
          await fetch(`${url}/api/v1/posts`, {
            method: 'POST',
            headers: { authorization: `Bearer token-${n}`, 'content-type': 'application/json' },
            body: JSON.stringify({ text }),
          });
      // Killed hard once a few posts were reported, mid-run.
      for (let i = 0; i < 400 && first.split('\n').filter(Boolean).length < 3; i++) await new Promise((res) => setTimeout(res, 25));
      child.kill('SIGKILL');
      await new Promise((res) => child.once('exit', res));
      const second = await run(
        ['platform', 'watch', url, ...names, '--interval', '0.3', '--duration', '9', '--rate', '200', '--state', state, '--json'],
        60_000,
      );
      const gone = lab.platform!.truth().posts.filter((p) => p.status === 'removed');
      assert.equal(gone.length, names.length * 2);
      assert.equal(second.code, 0, second.err);
      const ids = [...first.split('\n'), ...second.out.split('\n')]
        .filter((l) => l.trim().startsWith('{'))
        .map((l) => (JSON.parse(l) as { post: string }).post);
      assert.ok(first.split('\n').filter(Boolean).length >= 3);
      assert.equal(new Set(ids).size, ids.length, `a post was reported twice: ${ids.join(' ')}`);
      assert.deepEqual(new Set(ids), new Set(gone.map((p) => p.id)));
    } finally {
      await lab.close();
    }
  });

  it('keywords --json finds the combination and leaves no test post', async () => {
    const lab = await startLab(parseScenario(SCENARIO.replace('{ min: 1, max: 2.5 }', '0.3'), 's.yaml'), { standardPorts: false });
    try {
      const url = lab.platform!.url;
      const accounts = join(dir, 'acc.txt');
      writeFileSync(accounts, '# test accounts\ntester token-tester\n');
      const r = await run([
        'platform',
        'keywords',
        url,
        'news about xinjiang and the camps today',
        'nothing to see',
        '--account-file',
        accounts,
        '--wait',
        '0.8',
        '--poll',
        '0.1',
        '--rate',
        '200',
        '--json',
      ]);
      assert.equal(r.code, 0, r.err);
      const lines = r.out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { text: string; removed: boolean; trigger: string[] });
      assert.deepEqual(
        lines.map((l) => [l.text, l.removed, l.trigger.sort()]),
        [
          ['news about xinjiang and the camps today', true, ['camps', 'xinjiang']],
          ['nothing to see', false, []],
        ],
      );
      assert.ok(
        lab
          .platform!.truth()
          .posts.filter((p) => p.account === 'tester')
          .every((p) => p.status !== 'visible'),
      );
    } finally {
      await lab.close();
    }
  });

  it('whereami gives the label the lab platform shows for the same address', async () => {
    const lab = await startLab(parseScenario(SCENARIO, 's.yaml'), { standardPorts: false });
    try {
      for (const ip of ['61.135.169.121', '202.96.128.86', '203.198.7.66', '8.8.8.8']) {
        const r = await run(['whereami', '--json', ip]);
        assert.equal(r.code, 0, r.err);
        assert.ok(!r.out.includes(ip), 'the address is not echoed');
        const mine = JSON.parse(r.out) as { territory: unknown };
        const post = await fetch(`${lab.platform!.url}/api/v1/posts`, {
          method: 'POST',
          headers: { authorization: 'Bearer token-tester', 'content-type': 'application/json', 'x-wallscope-lab-source': ip },
          body: '{"text":"hi"}',
        }).then((x) => x.json() as Promise<{ territory: unknown }>);
        assert.deepEqual(post.territory, mine.territory, ip);
      }
    } finally {
      await lab.close();
    }
  });

  it('bad input: one clear line, non-zero exit', async () => {
    const bad = join(dir, 'bad-accounts.txt');
    writeFileSync(bad, 'ann\nbad name here\n');
    const cases: Array<[string[], RegExp]> = [
      [['platform', 'watch', 'not a url', 'ann'], /is not a URL/],
      [['platform', 'watch', 'http://127.0.0.1:9', '--accounts', bad], /bad-accounts\.txt:2: expected one account name per line/],
      [['platform', 'watch', 'http://127.0.0.1:9', 'ann', '--interval', 'soon'], /--interval: expected seconds/],
      [['platform', 'keywords', 'http://127.0.0.1:9', 'text'], /no test account/],
      [['whereami', '999.1.1.1'], /is not an IP address/],
    ];
    for (const [args, re] of cases) {
      const r = await run(args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.err, re);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
    const state = join(dir, 'corrupt.state');
    writeFileSync(state, '{not json');
    const r = await run(['platform', 'watch', 'http://127.0.0.1:9', 'ann', '--rounds', '1', '--state', state]);
    assert.equal(r.code, 1);
    assert.match(r.err, /corrupt\.state: not a watch state file/);
  });
});
