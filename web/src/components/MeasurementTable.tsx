// A list of measurements, each linking to its page. All values are rendered as text nodes.
import type { MeasurementRow } from '../api.js';
import { COUNT_COLOR, COUNT_LABEL, statusOf } from '../format.js';
import { href } from '../router.js';

export function StatusBadge({ row }: { row: Parameters<typeof statusOf>[0] }) {
  const k = statusOf(row);
  return (
    <span class={`badge badge-${k}`} style={{ borderColor: COUNT_COLOR[k], color: COUNT_COLOR[k] }}>
      {/* OONI counts "down for everyone" with ok (not censorship); the badge still says it. */}
      {row.status === 'down' ? 'Site down' : COUNT_LABEL[k]}
    </span>
  );
}

export function MeasurementTable({ rows, caption, hideCaption }: { rows: MeasurementRow[]; caption: string; hideCaption?: boolean }) {
  if (rows.length === 0) return <p class="empty">No measurements.</p>;
  return (
    <div class="table-wrap">
      <table class="measurements">
        <caption class={hideCaption ? 'sr-only' : undefined}>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Time (UTC)</th>
            <th scope="col">Status</th>
            <th scope="col">Input</th>
            <th scope="col">Country</th>
            <th scope="col">Network</th>
            <th scope="col">Region</th>
            <th scope="col">Mechanism</th>
            <th scope="col">Layer</th>
            <th scope="col">Test</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.measurement_uid}>
              <td>
                <a href={href(['measurement', r.measurement_uid])} class="m-link">
                  {r.measurement_start_time}
                </a>
              </td>
              <td>
                <StatusBadge row={r} />
              </td>
              <td class="input-cell">
                {r.domain ? <a href={href(['domain', r.domain])}>{r.input ?? r.domain}</a> : (r.input ?? '\u2013')}
              </td>
              <td>
                <a href={href(['country', r.probe_cc])}>{r.probe_cc}</a>
              </td>
              <td>
                <a href={href(['asn', r.probe_asn])}>{r.probe_asn}</a>
              </td>
              <td>{r.region ? <a href={href(['region', r.region])}>{r.region}</a> : '\u2013'}</td>
              <td>{r.mechanism ?? '\u2013'}</td>
              <td>{r.layer ?? '\u2013'}</td>
              <td>{r.test_name}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
