import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodePath, KeywordSet, RuleSet, sampled } from './rules.js';

describe('RuleSet(sources).matches(name)', () => {
  it('behaves like the censors rule shapes, overblocking included', () => {
    const suffix = new RuleSet(['(^|\\.)example\\.com$']);
    assert.equal(suffix.matches('example.com'), true);
    assert.equal(suffix.matches('www.Example.com.'), true);
    assert.equal(suffix.matches('notexample.com'), false);
    const kwEnd = new RuleSet(['example\\.com$']);
    assert.equal(kwEnd.matches('notexample.com'), true); // the kw$ overblocking of censors.md
    const noEnd = new RuleSet(['^(.*\\.)?example\\.com']);
    assert.equal(noEnd.matches('example.com.evil.org'), true);
    assert.equal(new RuleSet([]).matches('example.com'), false);
    assert.equal(suffix.matches(null), false);
  });
});

describe('KeywordSet(keywords).matches(...texts) and decodePath(path)', () => {
  it('matches keywords after %-decoding, case-insensitively', () => {
    assert.equal(decodePath('/search?q=%66alun'), '/search?q=falun');
    assert.equal(decodePath('/%zz%41'), '/%zzA');
    assert.equal(new KeywordSet(['falun']).matches(decodePath('/x/%46ALUN')), true);
    assert.equal(new KeywordSet(['falun']).matches('/news'), false);
    assert.equal(new KeywordSet(undefined).matches('falun'), false);
    assert.equal(new KeywordSet(['Tiananmen', 'x']).matches('/a', 'HOST.tiananmen.example'), true);
  });
});

describe('sampled(seed, censor, name, sampling)', () => {
  it('is deterministic and close to the configured share', () => {
    assert.equal(sampled(1, 'gfw', 'a.com', 0.5), sampled(1, 'gfw', 'a.com', 0.5));
    let n = 0;
    for (let i = 0; i < 2000; i++) if (sampled(7, 'gfw', `s${i}.com`, 0.75)) n++;
    assert.ok(n > 1400 && n < 1600, String(n));
    assert.equal(sampled(1, 'gfw', 'a.com', undefined), true);
    assert.equal(sampled(1, 'gfw', 'a.com', 0), false);
  });
});
