// The lab platform against wallscope's platform watcher and keyword tester (DESIGN.md "Platforms";
// issue 15's proof): moderation rules the watcher does not know, every removal detected and
// classified as the ground truth says, removal times within one polling period, trigger words
// found exactly, a rate-limiting and failing platform survived, and a killed watch resumed.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { testKeywords, territoryOf, watchPlatform, type VanishedPost } from '../probe/index.js';
import { parseScenario, ScenarioError } from './scenario.js';
import { startLab, type Lab } from './lab.js';

const PROOF = `
name: platform-proof
seed: 7
world: { sites: [] }
platform:
  name: lab-weibo
  accounts:
    - name: alice
      address: 1.0.1.1
      posts:
        - good morning everyone
        - { text: remember tiananmen square 1989 }
        - { text: just tiananmen photos }
        - { text: my lunch today, delete_at: 2.5 }
        - { text: falun practice, at: 1 }
    - name: bob
      address: 8.8.8.8
      posts:
        - winnie the pooh bear
        - hello world
    - name: carol
      address: 114.114.114.114
      posts:
        - { text: zhao one }
        - { text: unrelated cat }
        - { text: zhao two, at: 0.5 }
        - { text: zhao three, at: 1 }
    - name: tester
      address: 223.5.5.5
  moderation:
    # At least 2 s: a post removed sooner can vanish before the watcher's first poll on a busy machine
    # (seen once in CI: a post removed 1 s after the lab started was never seen, so never reported).
    delay_s: { min: 2, max: 3 }
    ban_after: 3
    rules:
      - words: [tiananmen, 1989]
      - { words: falun }
      - { words: [pooh], action: shadow }
      - { words: zhao, delay_s: 2 }
`;

async function withLab<T>(yaml: string, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await startLab(parseScenario(yaml, 'platform.yaml'), { standardPorts: false });
  try {
    return await fn(lab);
  } finally {
    await lab.close();
  }
}

describe('lab platform scenario', () => {
  it('rejects bad platform sections with file:line and the key path', () => {
    const bad = `name: x\nworld: { sites: [] }\nplatform:\n  accounts:\n    - name: a\n      address: not-an-ip\n    - name: a\n  moderation:\n    rules:\n      - { words: [], action: hide }\n    delay_s: { min: 5, max: 1 }\n`;
    assert.throws(
      () => parseScenario(bad, 'bad.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof ScenarioError);
        const msg = e.message;
        assert.match(msg, /bad\.yaml:6:\d+: platform\.accounts\[0\]\.address: 'not-an-ip' is not an IP address/);
        assert.match(msg, /bad\.yaml:7:\d+: platform\.accounts\[1\]\.name: account 'a' is declared twice/);
        assert.match(msg, /bad\.yaml:10:\d+: platform\.moderation\.rules\[0\]\.words/);
        assert.match(msg, /platform\.moderation\.rules\[0\]\.action: expected one of remove, shadow/);
        assert.match(msg, /bad\.yaml:11:\d+: platform\.moderation\.delay_s\.max: max 1 is below min 5/);
        return true;
      },
    );
  });
});

describe('platform watch on a lab platform with hidden rules', () => {
  it('detects and classifies every removal, within one polling period', async () => {
    await withLab(PROOF, async (lab) => {
      const p = lab.platform!;
      const intervalMs = 1000;
      const got: VanishedPost[] = [];
      const dir = mkdtempSync(join(tmpdir(), 'ws-watch-'));
      try {
        const res = await watchPlatform({
          base: p.url,
          accounts: ['alice', 'bob', 'carol', 'nobody'],
          intervalMs,
          durationMs: 6500,
          rate: 200,
          authorTokens: new Map([['bob', 'token-bob']]),
          statePath: join(dir, 'state.json'),
          onVanished: (v) => void got.push(v),
        });
        const truth = p.truth();
        const gone = truth.posts.filter((t) => t.status !== 'visible' && t.status !== 'pending');
        // The truth has every kind of fate.
        assert.deepEqual(new Set(gone.map((t) => t.status)), new Set(['removed', 'author_deleted', 'shadow_hidden', 'account_banned']));
        assert.equal(got.length, gone.length, `reported ${got.map((g) => g.post)} vs truth ${gone.map((g) => g.id)}`);
        for (const t of gone) {
          const v = got.find((g) => g.post === t.id);
          assert.ok(v, `post ${t.id} (${t.text}) vanished (${t.status}) but was not reported`);
          assert.equal(v.status, t.status, `post ${t.id} (${t.text})`);
          assert.equal(v.account, t.account);
          // The true time of removal lies between the last poll that saw the post and the first that
          // missed it, and those two polls are one polling period apart (plus the machine's jitter).
          const lag = Date.parse(v.gone_at) - Date.parse(t.gone_at!);
          assert.ok(lag >= 0, `post ${t.id}: gone_at ${v.gone_at} before the truth ${t.gone_at}`);
          assert.ok(Date.parse(v.last_seen_at) <= Date.parse(t.gone_at!), `post ${t.id}: last seen after it vanished`);
          assert.ok(
            Date.parse(v.gone_at) - Date.parse(v.last_seen_at) <= intervalMs + 500,
            `post ${t.id}: bracket ${v.last_seen_at} .. ${v.gone_at} longer than one polling period`,
          );
          assert.deepEqual(v.territory, t.territory);
        }
        assert.ok(got.find((g) => g.status === 'shadow_hidden')!.confirmed_by_author);
        // Nothing visible was reported; the unknown account is remembered.
        assert.ok(truth.posts.filter((t) => t.status === 'visible').every((t) => !got.some((g) => g.post === t.id)));
        assert.deepEqual(res.state.unknown_accounts, ['nobody']);
        assert.equal(truth.accounts.find((a) => a.name === 'carol')!.banned_at !== null, true);
        // Territories are the offline database's labels of the accounts' addresses.
        assert.equal(truth.posts.find((t) => t.account === 'alice')!.territory.label, territoryOf('1.0.1.1').label);
        assert.equal(territoryOf('1.0.1.1').label, '福建');
        const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
        assert.equal(Object.keys(state.reported).length, gone.length);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('on a platform that rate-limits and fails, slows down, keeps its state, resumes after an abort without repeating a post', async () => {
    // Later removals than the proof's: a tracker reports only posts it saw, and here its first polls are refused often.
    const flaky = PROOF.replace('  name: lab-weibo', '  name: lab-weibo\n  rate_limit: 8\n  errors: 0.25')
      .replace('{ min: 2, max: 3 }', '{ min: 4, max: 6 }')
      .replace('delay_s: 2 }', 'delay_s: 4 }')
      .replace('delete_at: 2.5', 'delete_at: 5');
    for (const edit of ['rate_limit: 8', 'min: 4, max: 6', 'delay_s: 4 }', 'delete_at: 5']) assert.ok(flaky.includes(edit), edit);
    await withLab(flaky, async (lab) => {
      const p = lab.platform!;
      const dir = mkdtempSync(join(tmpdir(), 'ws-watch-'));
      const statePath = join(dir, 'state.json');
      const got: VanishedPost[] = [];
      try {
        const ac = new AbortController();
        setTimeout(() => ac.abort(), 2500);
        const first = await watchPlatform({
          base: p.url,
          accounts: ['alice', 'bob', 'carol'],
          intervalMs: 700,
          durationMs: 60_000,
          rate: 50,
          maxBackoffMs: 1500,
          statePath,
          signal: ac.signal,
          onVanished: (v) => void got.push(v),
        });
        assert.ok(first.requests.limited + first.requests.server_errors > 0, 'the platform limited or failed some requests');
        const second = await watchPlatform({
          base: p.url,
          accounts: ['alice', 'bob', 'carol'],
          intervalMs: 700,
          durationMs: 9000,
          rate: 50,
          maxBackoffMs: 1500,
          statePath,
          onVanished: (v) => void got.push(v),
        });
        assert.ok(second.state.rounds > first.state.rounds);
        const gone = p.truth().posts.filter((t) => t.status !== 'visible' && t.status !== 'pending');
        const ids = got.map((g) => g.post);
        assert.equal(new Set(ids).size, ids.length, 'no post reported twice');
        assert.deepEqual(new Set(ids), new Set(gone.map((t) => t.id)));
        for (const t of gone) assert.equal(got.find((g) => g.post === t.id)!.status, t.status, t.text);
        assert.ok(p.stats().limited + p.stats().errors > 0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

describe('platform keywords', () => {
  it('finds the exact triggering word or combination and deletes every test post', async () => {
    const yaml = `
name: kw
seed: 3
world: { sites: [] }
platform:
  accounts:
    - { name: t1, address: 223.5.5.5 }
  moderation:
    delay_s: { min: 0.2, max: 0.6 }
    keywords: [falun, 'tank+man', 'may 35+candle+square', '六四+天安门']
    shadow_keywords: [pooh]
`;
    await withLab(yaml, async (lab) => {
      const p = lab.platform!;
      const texts = [
        'the weather is nice today in the park',
        'we remember the tank and the man on the avenue',
        'lit a candle on may 35 in the square with friends',
        'falun practice in the morning with tea',
        'a picture of pooh eating honey',
        'tank without the other word',
        '纪念六四天安门事件',
        'falungong practice',
      ];
      const run = await testKeywords(texts, {
        base: p.url,
        accounts: [{ name: 't1', token: 'token-t1' }],
        waitMs: 900,
        pollMs: 100,
        rate: 500,
      });
      const by = new Map(run.results.map((r) => [r.text, r]));
      assert.deepEqual(by.get(texts[0]!), { text: texts[0], removed: false, trigger: [], status: null, posts: 1 });
      assert.deepEqual(by.get(texts[1]!)!.trigger.sort(), ['man', 'tank']);
      // "may 35" is two words of the text: both are needed, with candle and square.
      assert.deepEqual(by.get(texts[2]!)!.trigger.sort(), ['35', 'candle', 'may', 'square']);
      assert.deepEqual(by.get(texts[3]!)!.trigger, ['falun']);
      assert.deepEqual(by.get(texts[4]!)!.trigger, ['pooh']);
      assert.equal(by.get(texts[4]!)!.status, 'shadow_hidden');
      assert.equal(by.get(texts[5]!)!.removed, false);
      // Inside words: a text without spaces, and a keyword inside a longer word.
      assert.deepEqual(by.get(texts[6]!)!.trigger, ['六四', '天安门']);
      assert.deepEqual(by.get(texts[7]!)!.trigger, ['falun']);
      // Cleanup: every test post was deleted by its author (none is visible to anyone, none left).
      assert.deepEqual(run.leftBehind, []);
      const truth = p.truth();
      assert.ok(truth.posts.length > texts.length);
      for (const t of truth.posts) assert.notEqual(t.status, 'visible', `test post ${t.id} (${t.text}) left visible`);
      const own = await fetch(`${p.url}/api/v1/accounts/t1/posts`, { headers: { authorization: 'Bearer token-t1' } }).then(
        (r) => r.json() as Promise<{ posts: unknown[] }>,
      );
      assert.deepEqual(own.posts, [], 'not even the author sees a test post');
    });
  });
});

describe('platform keywords against bans', () => {
  it('moves to the next test account when one is banned, stays exact, and lists the posts it could not delete', async () => {
    const yaml = `
name: kw-ban
seed: 4
world: { sites: [] }
platform:
  accounts: [ { name: t1 }, { name: t2 }, { name: t3 }, { name: t4 }, { name: t5 }, { name: t6 } ]
  moderation:
    delay_s: 0.2
    ban_after: 2
    keywords: [falun]
`;
    await withLab(yaml, async (lab) => {
      const p = lab.platform!;
      const accounts = ['t1', 't2', 't3', 't4', 't5', 't6'].map((name) => ({ name, token: `token-${name}` }));
      const run = await testKeywords(['some falun text here'], { base: p.url, accounts, waitMs: 700, pollMs: 100, rate: 500 });
      assert.deepEqual(
        run.results.map((r) => [r.removed, r.trigger]),
        [[true, ['falun']]],
      );
      const truth = p.truth();
      const banned = truth.accounts.filter((a) => a.banned_at !== null).map((a) => a.name);
      assert.ok(banned.length >= 1, 'the test banned an account');
      // Nothing is visible; what the tool could not delete belongs to banned accounts, and every
      // post hidden only by a ban (never removed or deleted) is among it.
      assert.ok(truth.posts.every((t) => t.status !== 'visible'));
      for (const id of run.leftBehind) assert.ok(banned.includes(truth.posts.find((t) => t.id === id)!.account), id);
      for (const t of truth.posts.filter((x) => x.status === 'account_banned'))
        assert.ok(run.leftBehind.includes(t.id), `post ${t.id} left behind unreported`);
    });
  });
});

describe('IP territory of lab posts', () => {
  it('stamps each post with the label territoryOf gives for the declared lab source address', async () => {
    const yaml = `name: t\nworld: { sites: [] }\nplatform:\n  accounts:\n    - { name: u, address: 8.8.8.8 }\n  moderation: { keywords: [banned] }\n`;
    await withLab(yaml, async (lab) => {
      const p = lab.platform!;
      for (const ip of [
        '1.0.1.1',
        '114.114.114.114',
        '61.135.169.121',
        '202.96.128.86',
        '203.198.7.66',
        '1.1.1.1',
        '2001:4860:4860::8888',
      ]) {
        const r = await fetch(`${p.url}/api/v1/posts`, {
          method: 'POST',
          headers: { authorization: 'Bearer token-u', 'content-type': 'application/json', 'x-wallscope-lab-source': ip },
          body: JSON.stringify({ text: `from ${ip}` }),
        });
        assert.equal(r.status, 201);
        const post = (await r.json()) as { territory: { code: string; label: string } };
        assert.deepEqual(post.territory, territoryOf(ip), ip);
        const w = (await fetch(`${p.url}/api/v1/whereami`, { headers: { 'x-wallscope-lab-source': ip } }).then((x) => x.json())) as {
          territory: unknown;
        };
        assert.deepEqual(w.territory, territoryOf(ip));
      }
      // Comments are stamped and moderated too.
      const yamlPost = (await fetch(`${p.url}/api/v1/accounts/u/posts`).then((x) => x.json())) as { posts: Array<{ id: string }> };
      const target = yamlPost.posts[0]!.id;
      const c = await fetch(`${p.url}/api/v1/posts/${target}/comments`, {
        method: 'POST',
        headers: { authorization: 'Bearer token-u', 'content-type': 'application/json', 'x-wallscope-lab-source': '61.135.169.121' },
        body: JSON.stringify({ text: 'a comment' }),
      });
      assert.equal(c.status, 201);
      assert.deepEqual(((await c.json()) as { territory: unknown }).territory, territoryOf('61.135.169.121'));
      await fetch(`${p.url}/api/v1/posts/${target}/comments`, {
        method: 'POST',
        headers: { authorization: 'Bearer token-u', 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'a banned word here' }),
      });
      const withComments = (await fetch(`${p.url}/api/v1/posts/${target}`).then((x) => x.json())) as {
        comments: Array<{ text: string; territory: { label: string } }>;
      };
      assert.deepEqual(
        withComments.comments.map((x) => [x.text, x.territory.label]),
        [['a comment', '北京']],
        'the moderated comment is gone at once (delay 0)',
      );
      // Without a declared source, the account's scenario address.
      const r = await fetch(`${p.url}/api/v1/posts`, {
        method: 'POST',
        headers: { authorization: 'Bearer token-u', 'content-type': 'application/json' },
        body: JSON.stringify({ text: 'plain' }),
      });
      assert.equal(((await r.json()) as { territory: { label: string } }).territory.label, '美国');
      // Hostile text is escaped on the HTML page.
      await fetch(`${p.url}/api/v1/posts`, {
        method: 'POST',
        headers: { authorization: 'Bearer token-u', 'content-type': 'application/json' },
        body: JSON.stringify({ text: '<script>alert(1)</script>' }),
      });
      const page = await fetch(`${p.url}/u/u`).then((x) => x.text());
      assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;') && !page.includes('<script>'));
      // Bad requests: a clear 4xx.
      assert.equal(
        (await fetch(`${p.url}/api/v1/posts`, { method: 'POST', headers: { authorization: 'Bearer token-u' }, body: '{' })).status,
        400,
      );
      assert.equal(
        (await fetch(`${p.url}/api/v1/posts`, { method: 'POST', headers: { authorization: 'Bearer nope' }, body: '{}' })).status,
        401,
      );
    });
  });
});
