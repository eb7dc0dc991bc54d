// The front page: totals, latest anomalies and confirmed blocks, counts by mechanism and layer.
import { getJSON, sumCounts, type Aggregation, type Filters, type MeasurementList } from '../api.js';
import { Breakdown } from '../components/Breakdown.js';
import { MeasurementTable } from '../components/MeasurementTable.js';
import { TimeSeries } from '../components/TimeSeries.js';
import { addDays, COUNT_COLOR, dayOf, fmtInt } from '../format.js';
import { href, navigate, paramsObject } from '../router.js';
import { useFetch } from '../useFetch.js';
import { Pending } from '../components/Pending.js';

function Totals({ filters }: { filters: Filters }) {
  // The same request as the "By mechanism" panel (shared by getJSON): one scan, not two.
  const res = useFetch<Aggregation>('totals' + JSON.stringify(filters), (s) =>
    getJSON<Aggregation>('aggregation', { ...filters, axis_x: 'mechanism' }, s),
  );
  if (res.state !== 'ok') return <Pending res={res} />;
  const c = sumCounts(res.data.result);
  // "Confirmed" keeps OONI's meaning: the page or answer matched a known block-page fingerprint.
  // Block pages our own analysis recognised (a replaced page, a national filter's title) are
  // counted beside it, labelled, so a demo full of block pages does not read "0 confirmed".
  const pages = sumCounts(res.data.result.filter((r) => r.mechanism === 'http.blockpage'));
  const cells: Array<[string, number, string | undefined, string | undefined]> = [
    ['Measurements', c.measurement_count, undefined, undefined],
    ['OK', c.ok_count, COUNT_COLOR.ok, undefined],
    ['Anomalies', c.anomaly_count, COUNT_COLOR.anomaly, 'blocked, without a known fingerprint'],
    ['Confirmed blocks', c.confirmed_count, COUNT_COLOR.confirmed, "OONI's meaning: a known block-page fingerprint matched"],
    [
      'Block pages detected',
      pages.anomaly_count + pages.confirmed_count,
      COUNT_COLOR.anomaly,
      "by wallscope's analysis, fingerprinted or not",
    ],
    ['Failures', c.failure_count, COUNT_COLOR.failure, undefined],
  ];
  return (
    <dl class="totals">
      {cells.map(([k, v, color, note]) => (
        <div key={k} class="total" title={note}>
          <dt>
            {k}
            {note ? <small class="total-note">{note}</small> : null}
          </dt>
          <dd style={{ color }}>{fmtInt(v)}</dd>
        </div>
      ))}
    </dl>
  );
}

/** Latest blocked measurements: anomalies and confirmed blocks, newest first. */
function LatestBlocked() {
  const res = useFetch<MeasurementList>('latest-blocked', async (s) => {
    // blocking=true: every blocked verdict, i.e. the anomalies and the confirmed blocks.
    const r = await getJSON<MeasurementList>('measurements', { blocking: 'true', limit: '15' }, s);
    return { ...r, results: r.results.filter((m) => m.anomaly || m.confirmed) };
  });
  if (res.state !== 'ok') return <Pending res={res} />;
  return <MeasurementTable rows={res.data.results} caption="Latest anomalies and confirmed blocks" hideCaption />;
}

/** The overview's time window, in days back from the newest measurement (0: all time). */
const WINDOWS: Record<string, { days: number; label: string }> = {
  '7d': { days: 7, label: 'last 7 days' },
  '30d': { days: 30, label: 'last 30 days' },
  '365d': { days: 365, label: 'last 365 days' },
  all: { days: 0, label: 'all time' },
};

export function Overview({ path, params }: { path: string[]; params: URLSearchParams }) {
  const win = params.get('window') ?? '30d';
  const w = WINDOWS[win] ?? WINDOWS['30d']!;
  // Anchored on the newest measurement, not the clock: an imported archive still shows its last month.
  const newest = useFetch<MeasurementList>('newest', (s) => getJSON<MeasurementList>('measurements', { limit: '1' }, s));
  if (newest.state === 'loading')
    return (
      <>
        <h1 tabIndex={-1}>Censorship observatory</h1>
        <p aria-busy="true">Loading…</p>
      </>
    );
  const newestDay = newest.state === 'ok' ? dayOf(newest.data.results[0]?.measurement_start_time) : null;
  const since = w.days > 0 && newestDay ? addDays(newestDay, -(w.days - 1)) : undefined;
  const filters: Filters = since ? { since } : {};
  const span = since ? `${w.label} of data: ${since} to ${newestDay}` : 'all time';
  return (
    <>
      <h1 tabIndex={-1}>Censorship observatory</h1>
      <p class="lede">
        What is blocked, where, since when, how (mechanism) and by whom (national, regional or ISP layer). Every view is a permalink; every
        chart exports as CSV and JSON from the chart builder.
      </p>
      {newest.state === 'error' && (
        <p role="alert" class="error">
          {newest.error}
        </p>
      )}
      <div class="field stack-by">
        <label for="window">Period</label>
        <select
          id="window"
          value={win in WINDOWS ? win : '30d'}
          onChange={(e) =>
            navigate(href(path, { ...paramsObject(params), window: (e.currentTarget as HTMLSelectElement).value, bucket: undefined }))
          }
        >
          {Object.entries(WINDOWS).map(([k, v]) => (
            <option key={k} value={k}>
              {v.label}
            </option>
          ))}
        </select>
        <span class="note" data-testid="window">
          {span}
        </span>
      </div>
      <Totals filters={filters} />
      <h2>Latest anomalies and confirmed blocks</h2>
      <LatestBlocked />
      <div class="breakdowns">
        <Breakdown axis="mechanism" filters={filters} />
        <Breakdown axis="layer" filters={filters} />
        <Breakdown axis="probe_cc" filters={filters} />
        {/* No by-domain panel here: on a 1M store it was the slowest query of the page (7.7 s in
            bench/explorer-aggregation.ts); domains are one click away in the chart builder. */}
      </div>
      <h2>Measurements over time ({w.label})</h2>
      <TimeSeries path={path} params={params} filters={filters} title="All measurements" />
    </>
  );
}
