import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturesDir } from './paths.js';
import { parseCsv, readTargetList } from './targets.js';

describe('parseCsv(text)', () => {
  it('handles quotes, doubled quotes, commas and newlines inside fields, and CRLF', () => {
    const rows = parseCsv('a,b,c\r\n"x, y","he said ""hi""","two\nlines"\nlast,,\n');
    assert.deepEqual(
      rows.map((r) => r.fields),
      [
        ['a', 'b', 'c'],
        ['x, y', 'he said "hi"', 'two\nlines'],
        ['last', '', ''],
      ],
    );
    assert.deepEqual(
      rows.map((r) => r.line),
      [1, 2, 4],
    );
  });
});

describe('readTargetList(text)', () => {
  it('reads the Citizen Lab test lists as they are', () => {
    const text = readFileSync(join(fixturesDir, 'test-lists', 'cn.csv'), 'utf8');
    const r = readTargetList(text);
    const lines = text.trim().split('\n').length - 1;
    assert.ok(r.targets.length > 100);
    assert.ok(r.targets.length + r.errors.length <= lines);
    assert.ok(r.targets.every((t) => /^https?:\/\//.test(t.url) && typeof t.category_code === 'string'));
  });
  it('reports unusable rows by line and keeps the rest', () => {
    const r = readTargetList('url,category_code\nhttp://a.test/,NEWS\nftp://b.test/,NEWS\nnot a url,X\n\nhttps://c.test/,\n');
    assert.deepEqual(r.targets, [{ url: 'http://a.test/', category_code: 'NEWS' }, { url: 'https://c.test/' }]);
    assert.deepEqual(
      r.errors.map((e) => e.line),
      [3, 4],
    );
  });
  it('reads a plain list of URLs without a header', () => {
    assert.deepEqual(
      readTargetList('http://a.test/\n# comment\nhttps://b.test/x\n').targets.map((t) => t.url),
      ['http://a.test/', 'https://b.test/x'],
    );
  });
});
