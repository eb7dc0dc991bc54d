// Measurements matching filters, one page at a time (the API's cursor), newest first.
import { useState } from 'preact/hooks';
import { apiUrl, getJSON, type Filters, type MeasurementList as List } from '../api.js';
import { useFetch } from '../useFetch.js';
import { MeasurementTable } from './MeasurementTable.js';
import { Pending } from './Pending.js';

export function MeasurementList({
  filters,
  caption,
  limit = 50,
  hideCaption,
}: {
  filters: Filters;
  caption: string;
  limit?: number;
  hideCaption?: boolean;
}) {
  const key = JSON.stringify(filters);
  const [cursors, setCursors] = useState<{ key: string; stack: Array<string | undefined> }>({ key, stack: [undefined] });
  const stack = cursors.key === key ? cursors.stack : [undefined];
  const cursor = stack[stack.length - 1];
  const res = useFetch<List>(`${key}|${cursor ?? ''}`, (signal) =>
    getJSON<List>('measurements', { ...filters, limit: String(limit), cursor }, signal),
  );
  if (res.state !== 'ok') return <Pending res={res} loading="Loading measurements…" failed="Could not load measurements: " />;
  const page = stack.length;
  return (
    <section class="mlist" aria-label={caption}>
      <MeasurementTable rows={res.data.results} hideCaption={hideCaption} caption={`${caption}${page > 1 ? ` (page ${page})` : ''}`} />
      <div class="pager">
        <a
          class="button"
          href={apiUrl('measurements', { ...filters, limit: String(limit), cursor })}
          download="wallscope-measurements.json"
        >
          Export this page (JSON)
        </a>
        {page > 1 && (
          <button type="button" onClick={() => setCursors({ key, stack: stack.slice(0, -1) })}>
            Previous page
          </button>
        )}
        {res.data.next_cursor && (
          <button type="button" onClick={() => setCursors({ key, stack: [...stack, res.data.next_cursor ?? undefined] })}>
            Next page
          </button>
        )}
      </div>
    </section>
  );
}
