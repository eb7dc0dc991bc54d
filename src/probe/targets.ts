// Reading targets: Citizen Lab test-list CSVs as they are (header
// url,category_code,category_description,date_added,source,notes; RFC 4180 quoting).
// model/csv.ts directly, not the model index: csv-parse loads only where CSV is read.
import { CsvSyntaxError, parseCsv, type CsvRow } from '../model/csv.js';

export interface Target {
  url: string;
  category_code?: string;
}

export interface TargetListResult {
  targets: Target[];
  /** Rows that could not be used, with their 1-based line numbers. */
  errors: Array<{ line: number; error: string }>;
}

// The CSV reader is model/csv.ts (csv-parse), shared with the fingerprint files.
export { parseCsv } from '../model/csv.js';

/** Targets from a test-list CSV; a file without the `url` header is read as one URL per line. */
export function readTargetList(text: string): TargetListResult {
  const out: TargetListResult = { targets: [], errors: [] };
  let rows: CsvRow[];
  try {
    rows = parseCsv(text);
  } catch (e) {
    if (!(e instanceof CsvSyntaxError)) throw e;
    out.errors.push({ line: e.line, error: `bad CSV: ${e.message}` });
    return out;
  }
  if (rows.length === 0) return out;
  const header = rows[0]!.fields.map((h) => h.trim().toLowerCase());
  const urlCol = header.indexOf('url');
  const catCol = header.indexOf('category_code');
  const body = urlCol >= 0 ? rows.slice(1) : rows;
  const col = urlCol >= 0 ? urlCol : 0;
  for (const r of body) {
    const raw = (r.fields[col] ?? '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    try {
      const u = new URL(raw);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      out.errors.push({ line: r.line, error: `not an http(s) URL: ${JSON.stringify(raw).slice(0, 200)}` });
      continue;
    }
    const cat = catCol >= 0 ? r.fields[catCol]?.trim() : undefined;
    out.targets.push({ url: raw, ...(cat ? { category_code: cat } : {}) });
  }
  return out;
}
