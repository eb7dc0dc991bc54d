// Counts by one axis (mechanism, layer, country, network, domain) as a small table of links.
import { getJSON, type Aggregation, type Axis, type Filters } from '../api.js';
import { COUNT_COLOR, fmtInt, LAYER_TEXT, MECHANISM_TEXT } from '../format.js';
import { href } from '../router.js';
import { useFetch } from '../useFetch.js';
import { Pending } from './Pending.js';

const AXIS_TITLE: Partial<Record<Axis, string>> = {
  mechanism: 'By mechanism',
  layer: 'By layer',
  probe_cc: 'By country',
  probe_asn: 'By network',
  region: 'By region',
  domain: 'By domain',
  test_name: 'By test',
};

/** Where a click on a value goes: the entity page, or the current view narrowed to it. */
function linkFor(axis: Axis, value: string, filters: Filters): string | null {
  if (axis === 'probe_cc') return href(['country', value]);
  if (axis === 'probe_asn') return href(['asn', value]);
  if (axis === 'domain') return href(['domain', value]);
  if (axis === 'region') return href(['region', value]);
  if (axis === 'mechanism' || axis === 'layer' || axis === 'test_name') return href(['search'], { ...filters, [axis]: value });
  return null;
}

export function Breakdown({ axis, filters, limit = 15 }: { axis: Axis; filters: Filters; limit?: number }) {
  const key = axis + JSON.stringify(filters);
  const res = useFetch<Aggregation>(key, (signal) => getJSON<Aggregation>('aggregation', { ...filters, axis_x: axis }, signal));
  const title = AXIS_TITLE[axis] ?? `By ${axis}`;
  if (res.state !== 'ok')
    return (
      <section class="breakdown">
        <h3>{title}</h3>
        <Pending res={res} />
      </section>
    );
  const rows = [...res.data.result].sort(
    (a, b) => b.confirmed_count + b.anomaly_count - (a.confirmed_count + a.anomaly_count) || b.measurement_count - a.measurement_count,
  );
  return (
    <section class="breakdown">
      <h3>{title}</h3>
      {rows.length === 0 ? (
        <p class="empty">Nothing.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">{axis}</th>
              <th scope="col">Measurements</th>
              <th scope="col">Anomalies</th>
              <th scope="col">Confirmed</th>
            </tr>
          </thead>
          <tbody>
            {rows.slice(0, limit).map((r, i) => {
              const raw = r[axis];
              const value = raw === null || raw === undefined || raw === '' ? null : String(raw);
              const link = value ? linkFor(axis, value, filters) : null;
              const hint = value
                ? axis === 'mechanism'
                  ? MECHANISM_TEXT[value]
                  : axis === 'layer'
                    ? LAYER_TEXT[value]
                    : undefined
                : undefined;
              return (
                <tr key={i}>
                  <th scope="row">
                    {link && value ? <a href={link}>{value}</a> : (value ?? <em>{axis === 'mechanism' ? 'undecided' : 'none'}</em>)}
                    {hint && <span class="hint">{hint}</span>}
                  </th>
                  <td>{fmtInt(r.measurement_count)}</td>
                  <td style={{ color: r.anomaly_count ? COUNT_COLOR.anomaly : undefined }}>{fmtInt(r.anomaly_count)}</td>
                  <td style={{ color: r.confirmed_count ? COUNT_COLOR.confirmed : undefined }}>{fmtInt(r.confirmed_count)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {rows.length > limit && <p class="more">{rows.length - limit} more not shown; see the chart builder.</p>}
    </section>
  );
}
