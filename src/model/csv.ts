// CSV (RFC 4180: quoted fields, doubled quotes, newlines inside quotes, CRLF) for the test lists
// (probe/targets.ts) and OONI's fingerprint files (analysis/fingerprints.ts): one parser, the
// csv-parse library, with each row's first line kept so a bad row is reported as file:line.
import { CsvError, parse } from 'csv-parse/sync';

export interface CsvRow {
  /** 1-based line where the row starts. */
  line: number;
  fields: string[];
}

/** A CSV text that cannot be read past `line` (an unterminated quote). */
export class CsvSyntaxError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

const BREAK = /\r\n|\r|\n/g;

/**
 * Every non-empty row with its starting line. Rows may have any number of fields (callers check).
 * A quote inside an unquoted field is kept as text; an unterminated quote throws CsvSyntaxError.
 */
export function parseCsv(text: string): CsvRow[] {
  let records: Array<{ record: string[]; raw: string; info: { lines: number } }>;
  try {
    records = parse(text, {
      bom: true,
      record_delimiter: ['\r\n', '\n', '\r'],
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: true,
      info: true,
      raw: true,
    }) as never;
  } catch (e) {
    if (e instanceof CsvError) {
      const line = typeof (e as { lines?: unknown }).lines === 'number' ? (e as unknown as { lines: number }).lines : 0;
      throw new CsvSyntaxError(
        line,
        e.message.replace(/^Invalid Record Length: |^Quote Not Closed: /, (m) => m),
      );
    }
    throw e;
  }
  return records.map(({ record, raw, info }) => {
    // info.lines is the line where the record ends; the record starts that many breaks earlier.
    const body = raw.replace(/^(?:\r\n|\r|\n)+/, '').replace(/(?:\r\n|\r|\n)$/, '');
    const inner = body.match(BREAK)?.length ?? 0;
    return { line: info.lines - inner, fields: record };
  });
}

/**
 * One CSV field (RFC 4180: quoted when it holds a quote, comma or line break); a field that a
 * spreadsheet would run as a formula (=, +, -, @, tab, CR first) gets a leading quote, since
 * exported names and rules come from measurements of hostile networks.
 */
export function csvField(v: string | number | boolean | null | undefined): string {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
