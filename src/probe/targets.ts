// Reading targets: Citizen Lab test-list CSVs as they are (header
// url,category_code,category_description,date_added,source,notes; RFC 4180 quoting).
export interface Target {
  url: string;
  category_code?: string;
}

export interface TargetListResult {
  targets: Target[];
  /** Rows that could not be used, with their 1-based line numbers. */
  errors: Array<{ line: number; error: string }>;
}

/** Split one CSV text into rows of fields (RFC 4180: quotes, doubled quotes, CRLF). */
export function parseCsv(text: string): Array<{ line: number; fields: string[] }> {
  const rows: Array<{ line: number; fields: string[] }> = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        field += c;
      }
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      if (fields.length > 1 || fields[0] !== '') rows.push({ line: rowLine, fields });
      fields = [];
      field = '';
      line++;
      rowLine = line;
    } else field += c;
  }
  if (field !== '' || fields.length > 0) {
    fields.push(field);
    rows.push({ line: rowLine, fields });
  }
  return rows;
}

/** Targets from a test-list CSV; a file without the `url` header is read as one URL per line. */
export function readTargetList(text: string): TargetListResult {
  const rows = parseCsv(text.replace(/^\uFEFF/, ''));
  const out: TargetListResult = { targets: [], errors: [] };
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
