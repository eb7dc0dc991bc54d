// The chart builder over the aggregation API: axes, time grain and filters in the hash (so the URL
// is the permalink), a stacked chart, the table, and CSV / JSON exports of exactly what is shown.
import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { apiUrl, AXES, getJSON, sumCounts, type Aggregation, type AggregationRow, type Axis, type Filters } from '../api.js';
import { StackedBars, type Bar } from '../components/StackedBars.js';
import { bucketEnd, COUNT_COLOR, dayOf, fmtInt, grainSeconds, LAYERS, MECHANISMS, timeOf } from '../format.js';
import { href, navigate } from '../router.js';
import { buildSplit } from '../split.js';
import { useFetch } from '../useFetch.js';

const FILTERS = ['probe_cc', 'probe_asn', 'region', 'domain', 'test_name', 'mechanism', 'layer', 'since', 'until'] as const;

function isAxis(s: string | null): s is Axis {
  return s !== null && (AXES as readonly string[]).includes(s);
}

/** The chart's axes, grain and filters from the hash, and the aggregation query they make. */
function chartSettings(params: URLSearchParams) {
  const axisX: Axis = isAxis(params.get('axis_x')) ? (params.get('axis_x') as Axis) : 'measurement_start_day';
  const axisYRaw = params.get('axis_y');
  const axisY: Axis | null = isAxis(axisYRaw) && axisYRaw !== axisX ? axisYRaw : null;
  const grain = ['hour', 'day', 'week', 'month'].includes(params.get('time_grain') ?? '') ? params.get('time_grain')! : 'day';
  const filters: Filters = {};
  for (const k of FILTERS) {
    const v = params.get(k);
    if (v) filters[k] = v;
  }
  const query: Record<string, string | undefined> = {
    ...filters,
    axis_x: axisX,
    axis_y: axisY ?? undefined,
    time_grain: axisX === 'measurement_start_day' || axisY === 'measurement_start_day' ? grain : undefined,
  };
  return { axisX, axisY, grain, filters, query };
}

export function ChartPage({ params }: { params: URLSearchParams }) {
  const { axisX, axisY, grain, filters, query } = chartSettings(params);
  const key = JSON.stringify(query);
  const res = useFetch<Aggregation>(key, (s) => getJSON<Aggregation>('aggregation', query, s));
  return (
    <>
      <h1 tabIndex={-1}>Chart builder</h1>
      <ChartForm values={{ axis_x: axisX, axis_y: axisY ?? '', time_grain: grain, ...filters }} valuesKey={key} />
      <Exports query={query} />
      {res.state === 'loading' && <p aria-busy="true">Loading…</p>}
      {res.state === 'error' && (
        <p role="alert" class="error">
          The aggregation failed: {res.error}
        </p>
      )}
      {res.state === 'ok' && <ChartResult agg={res.data} axisX={axisX} axisY={axisY} grain={grain} filters={filters} />}
    </>
  );
}

/** The settings form: edits stay local until Show navigates to them. */
function ChartForm({ values, valuesKey }: { values: Record<string, string>; valuesKey: string }) {
  const [form, setForm] = useState<Record<string, string>>(() => values);
  const [formKey, setFormKey] = useState(valuesKey);
  if (formKey !== valuesKey) {
    // The hash changed under us (back button, a permalink): show its values in the form.
    setFormKey(valuesKey);
    setForm(values);
  }
  const set = (k: string) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });
  const submit = (e: Event) => {
    e.preventDefault();
    navigate(href(['chart'], form));
  };

  const field = (k: string, label: string, control: JSX.Element) => (
    <div class="field" key={k}>
      <label for={`c-${k}`}>{label}</label>
      {control}
    </div>
  );
  const sel = (k: string, opts: readonly string[], blank?: string) => (
    <select id={`c-${k}`} name={k} value={form[k] ?? ''} onChange={set(k)}>
      {blank !== undefined && <option value="">{blank}</option>}
      {opts.map((o) => (
        <option key={o} value={o}>
          {o}
        </option>
      ))}
    </select>
  );
  const text = (k: string, ph: string) => (
    <input
      id={`c-${k}`}
      name={k}
      type="text"
      value={form[k] ?? ''}
      placeholder={ph}
      onInput={set(k)}
      autocomplete="off"
      spellcheck={false}
    />
  );
  const date = (k: string) => <input id={`c-${k}`} name={k} type="date" value={form[k] ?? ''} onInput={set(k)} />;

  return (
    <form class="filters" onSubmit={submit} aria-label="Chart settings">
      {field('axis_x', 'X axis', sel('axis_x', AXES))}
      {field('axis_y', 'Split by (Y axis)', sel('axis_y', AXES, 'none'))}
      {field('time_grain', 'Time grain', sel('time_grain', ['hour', 'day', 'week', 'month']))}
      {field('probe_cc', 'Country (CC)', text('probe_cc', 'CN'))}
      {field('probe_asn', 'Network (ASN)', text('probe_asn', 'AS4134'))}
      {field('region', 'Region (self-declared)', text('region', 'Henan'))}
      {field('domain', 'Domain', text('domain', 'youtube.com'))}
      {field('test_name', 'Test', text('test_name', 'web_connectivity'))}
      {field('mechanism', 'Mechanism', sel('mechanism', MECHANISMS, 'any'))}
      {field('layer', 'Layer', sel('layer', LAYERS, 'any'))}
      {field('since', 'Since', date('since'))}
      {field('until', 'Until', date('until'))}
      <div class="field field-actions">
        <button type="submit">Show</button>
      </div>
    </form>
  );
}

/** CSV and JSON exports of exactly what is shown, and the permalink. */
function Exports({ query }: { query: Record<string, string | undefined> }) {
  const permalink = location.href;
  const [copied, setCopied] = useState(false);
  return (
    <div class="exports">
      <a class="button" href={apiUrl('aggregation', { ...query, format: 'csv' })} download="wallscope-aggregation.csv">
        Export CSV
      </a>
      <a class="button" href={apiUrl('aggregation', { ...query, format: 'json' })} download="wallscope-aggregation.json">
        Export JSON
      </a>
      <label for="permalink">Permalink</label>
      <input id="permalink" class="permalink" readOnly value={permalink} onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
      <button
        type="button"
        onClick={() => {
          void navigator.clipboard?.writeText(permalink).then(
            () => setCopied(true),
            () => setCopied(false),
          );
        }}
      >
        {copied ? 'Copied' : 'Copy'}
      </button>
    </div>
  );
}

function ChartResult({
  agg,
  axisX,
  axisY,
  grain,
  filters,
}: {
  agg: Aggregation;
  axisX: Axis;
  axisY: Axis | null;
  grain: string;
  filters: Filters;
}) {
  const time = axisX === 'measurement_start_day';
  const { keys, bars, split } = useMemo(() => chartBars(agg, axisX, axisY, time), [agg, axisX, axisY, time]);
  const open = (i: number) => {
    const k = keys[i];
    if (k !== undefined) navigate(barTarget(k, axisX, time, grain, filters));
  };
  return (
    <>
      <StackedBars
        title={`Measurements by ${axisX}${axisY ? `, split by ${axisY}` : ''}${time ? ` (per ${grain})` : ''}`}
        bars={bars}
        time={time}
        step={time ? grainSeconds(grain) : 1}
        onSelect={open}
        split={split}
      />
      <AggregationTable agg={agg} cols={[axisX, ...(axisY ? [axisY] : [])]} />
    </>
  );
}

/** The bars (summed over the Y axis; the table keeps every row) and the split by the Y axis. */
function chartBars(agg: Aggregation, axisX: Axis, axisY: Axis | null, time: boolean) {
  const groups = new Map<string, AggregationRow[]>();
  for (const r of agg.result) {
    const raw = r[axisX];
    const k = raw === null || raw === undefined ? '' : String(raw);
    if (time && timeOf(k) === null) continue;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  let keys = [...groups.keys()];
  if (time) keys.sort((a, b) => timeOf(a)! - timeOf(b)!);
  else keys.sort((a, b) => sumCounts(groups.get(b)!).measurement_count - sumCounts(groups.get(a)!).measurement_count);
  if (!time) keys = keys.slice(0, 60);
  const bars: Bar[] = keys.map((k, i) => ({ x: time ? timeOf(k)! : i, label: k || '(none)', counts: sumCounts(groups.get(k)!) }));
  // Split by the Y axis: its most frequent values each get a colour, the rest are "other".
  const split = axisY
    ? buildSplit(agg.result, axisY, (r) => (r[axisX] === null || r[axisX] === undefined ? '' : String(r[axisX])), keys)
    : undefined;
  return { keys, bars, split };
}

/** Where a click on a bar leads: the measurements of that bucket, or the entity's page. */
function barTarget(k: string, axisX: Axis, time: boolean, grain: string, filters: Filters): string {
  if (time) {
    const t = timeOf(k)!;
    const day = dayOf(k)!;
    return grain === 'hour'
      ? href(['search'], { ...filters, since: String(t), until: String(t + 3600) })
      : href(['search'], { ...filters, since: day, until: bucketEnd(day, grain) });
  }
  if (axisX === 'probe_cc') return href(['country', k]);
  if (axisX === 'probe_asn') return href(['asn', k]);
  if (axisX === 'domain') return href(['domain', k]);
  if (axisX === 'region') return href(['region', k]);
  if (['mechanism', 'layer', 'test_name'].includes(axisX)) return href(['search'], { ...filters, [axisX]: k });
  return href(['search'], filters);
}

function AggregationTable({ agg, cols }: { agg: Aggregation; cols: Axis[] }) {
  return (
    <div class="table-wrap">
      <table class="agg">
        <caption>
          {fmtInt(agg.result.length)} rows, {agg.dimension_count} dimension{agg.dimension_count === 1 ? '' : 's'}
        </caption>
        <thead>
          <tr>
            {cols.map((c) => (
              <th scope="col" key={c}>
                {c}
              </th>
            ))}
            <th scope="col">Measurements</th>
            <th scope="col">OK</th>
            <th scope="col">Anomalies</th>
            <th scope="col">Confirmed</th>
            <th scope="col">Failures</th>
          </tr>
        </thead>
        <tbody>
          {agg.result.slice(0, 1000).map((r, i) => (
            <tr key={i}>
              {cols.map((c) => (
                <td key={c}>{r[c] === null || r[c] === undefined ? '–' : String(r[c])}</td>
              ))}
              <td>{fmtInt(r.measurement_count)}</td>
              <td>{fmtInt(r.ok_count)}</td>
              <td style={{ color: r.anomaly_count ? COUNT_COLOR.anomaly : undefined }}>{fmtInt(r.anomaly_count)}</td>
              <td style={{ color: r.confirmed_count ? COUNT_COLOR.confirmed : undefined }}>{fmtInt(r.confirmed_count)}</td>
              <td>{fmtInt(r.failure_count)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
