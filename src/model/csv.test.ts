import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CsvSyntaxError, csvField, parseCsv } from './csv.js';

describe('parseCsv(text) (csv-parse)', () => {
  test('rows keep the line they start on, across quoted newlines, blank lines, CR, LF and CRLF', () => {
    const rows = parseCsv('\uFEFFurl,notes\r\nhttps://a.example/,"one\ntwo"\n\nhttps://b.example/,"say ""hi"""\rhttps://c.example/,x"y\n');
    assert.deepEqual(rows, [
      { line: 1, fields: ['url', 'notes'] },
      { line: 2, fields: ['https://a.example/', 'one\ntwo'] },
      { line: 5, fields: ['https://b.example/', 'say "hi"'] },
      { line: 6, fields: ['https://c.example/', 'x"y'] },
    ]);
  });
  test('an unterminated quote is a CsvSyntaxError naming a line', () => {
    assert.throws(
      () => parseCsv('a,b\n"open,c\nd,e\n'),
      (e: unknown) => e instanceof CsvSyntaxError && e.line >= 2 && /quote/i.test(e.message),
    );
  });
});

describe('csvField(v)', () => {
  test('quotes what RFC 4180 needs quoted and defuses spreadsheet formulas; round-trips through parseCsv', () => {
    const fields = ['plain', 'a,b', 'say "hi"', 'two\nlines', '=HYPERLINK("x")', '-1', '@sum', '(^|\\.)a\\.com$', '', 3, true, null];
    const line = fields.map((f) => csvField(f)).join(',');
    assert.equal(line, 'plain,"a,b","say ""hi""","two\nlines","\'=HYPERLINK(""x"")",\'-1,\'@sum,(^|\\.)a\\.com$,,3,true,');
    assert.deepEqual(parseCsv(`${line}\n`)[0]!.fields, [
      'plain',
      'a,b',
      'say "hi"',
      'two\nlines',
      '\'=HYPERLINK("x")',
      "'-1",
      "'@sum",
      '(^|\\.)a\\.com$',
      '',
      '3',
      'true',
      '',
    ]);
  });
});
