// summarizeWatch / keywordTable / watchRecord over stored platform measurements (hostile input
// included), and the pure moderation helpers of src/model/platform.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { firstMatchingRule, prng, ruleMatches, sampleDelay, textWords } from '../model/index.js';
import { keywordRecord, keywordTable, summarizeWatch, watchRecord } from './platform.js';

const tk = (post: string, status: string, ttr: number | null, label = '广东', gone = '2026-12-01T10:00:00Z') => ({
  x_platform: 'http://p',
  x_platform_account: 'a',
  x_platform_post: post,
  x_platform_status: status,
  x_platform_gone_at: status === 'visible' ? null : gone,
  x_platform_time_to_removal_s: ttr,
  x_platform_territory: { code: label === '广东' ? 'CN-GD' : 'US', label },
});

describe('watchRecord(uid, test_keys) and summarizeWatch(records)', () => {
  it('counts each post once (a vanished record beats an earlier visible snapshot), rates, quantiles, days, territories', () => {
    const rs = [
      watchRecord('u1', tk('1', 'visible', null)),
      watchRecord('u2', tk('1', 'removed', 600)),
      watchRecord('u3', tk('2', 'removed', 3000)),
      watchRecord('u4', tk('3', 'shadow_hidden', 60, '美国', '2026-12-02T01:00:00Z')),
      watchRecord('u5', tk('4', 'author_deleted', 10)),
      watchRecord('u6', tk('5', 'visible', null, '美国')),
    ].filter((r) => r !== null);
    const [s] = summarizeWatch(rs);
    assert.deepEqual(
      { ...s!.totals },
      { posts: 5, visible: 1, removed: 2, author_deleted: 1, account_banned: 0, shadow_hidden: 1, removal_rate: 3 / 5 },
    );
    assert.deepEqual(s!.time_to_removal, { n: 3, median_s: 600, p90_s: 3000, within_30_min: 2 / 3, within_24_h: 1 });
    assert.deepEqual(
      s!.per_day.map((d) => [d.day, d.removed, d.shadow_hidden, d.author_deleted]),
      [
        ['2026-12-01', 2, 0, 1],
        ['2026-12-02', 0, 1, 0],
      ],
    );
    assert.deepEqual(
      s!.per_territory.map((t) => [t.label, t.posts, t.removal_rate]),
      [
        ['广东', 3, 2 / 3],
        ['美国', 2, 1 / 2],
      ],
    );
  });

  it('refuses records that are not ours, without throwing', () => {
    for (const bad of [
      null,
      'x',
      [],
      { x_platform_status: 'removed' },
      { ...tk('1', 'vanished', 1) },
      { ...tk('1', 'removed', 1), x_platform_post: 7 },
    ])
      assert.equal(watchRecord('u', bad), null);
    const odd = watchRecord('u', { ...tk('1', 'removed', -5), x_platform_territory: { label: 5 } })!;
    assert.equal(odd.time_to_removal_s, null);
    assert.equal(odd.territory, null);
  });
});

describe('keywordRecord and keywordTable', () => {
  it('keeps the latest result per text, removed first', () => {
    const k = (uid: string, at: string, text: string, removed: boolean) =>
      keywordRecord(uid, at, {
        x_platform: 'http://p',
        x_platform_text: text,
        x_platform_removed: removed,
        x_platform_trigger: removed ? ['w'] : [],
        x_platform_test_posts: 3,
      })!;
    const t = keywordTable([
      k('1', '2026-01-01 00:00:00', 'b', false),
      k('2', '2026-01-02 00:00:00', 'b', true),
      k('3', '2026-01-01 00:00:00', 'a', false),
    ]);
    assert.deepEqual(
      t.map((r) => [r.text, r.removed, r.measurement_uid]),
      [
        ['b', true, '2'],
        ['a', false, '3'],
      ],
    );
    assert.equal(keywordRecord('u', 'x', { x_platform: 'p', x_platform_text: 't' }), null);
  });
});

describe('moderation helpers (src/model/platform.ts)', () => {
  it('ruleMatches: every word as a case-insensitive substring', () => {
    assert.ok(ruleMatches({ words: ['Falun'] }, 'FALUNGONG practice'));
    assert.ok(ruleMatches({ words: ['六四', '天安门'] }, '纪念六四天安门'));
    assert.ok(!ruleMatches({ words: ['tank', 'man'] }, 'tank only'));
    assert.ok(!ruleMatches({ words: [] }, 'anything'));
    assert.equal(
      firstMatchingRule(
        [
          { words: ['a'], action: 'shadow' },
          { words: ['b'], action: 'remove' },
        ],
        'b a',
      )!.action,
      'shadow',
    );
  });
  it('sampleDelay stays in its bounds; textWords keeps order and drops repeats', () => {
    const r = prng(1);
    for (let i = 0; i < 2000; i++) {
      const u = sampleDelay({ kind: 'uniform', min: 2, max: 5 }, r);
      assert.ok(u >= 2 && u <= 5);
      const e = sampleDelay({ kind: 'exponential', mean: 1, max: 3 }, r);
      assert.ok(e >= 0 && e <= 3);
    }
    assert.equal(sampleDelay({ kind: 'fixed', s: 7 }, r), 7);
    assert.deepEqual(textWords('  a b  a c '), ['a', 'b', 'c']);
  });
});
