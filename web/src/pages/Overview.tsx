// The front page: totals, latest anomalies and confirmed blocks, counts by mechanism and layer.
import { getJSON, sumCounts, type Aggregation, type MeasurementList } from '../api.js';
import { Breakdown } from '../components/Breakdown.js';
import { MeasurementTable } from '../components/MeasurementTable.js';
import { TimeSeries } from '../components/TimeSeries.js';
import { COUNT_COLOR, fmtInt } from '../format.js';
import { useFetch } from '../useFetch.js';

function Totals() {
  // The same request as the "By mechanism" panel (shared by getJSON): one scan, not two.
  const res = useFetch<Aggregation>('totals', (s) => getJSON<Aggregation>('aggregation', { axis_x: 'mechanism' }, s));
  if (res.state !== 'ok') return res.state === 'error' ? <p role="alert" class="error">{res.error}</p> : <p aria-busy="true">Loading…</p>;
  const c = sumCounts(res.data.result);
  const cells: Array<[string, number, string | undefined]> = [
    ['Measurements', c.measurement_count, undefined],
    ['OK', c.ok_count, COUNT_COLOR.ok],
    ['Anomalies', c.anomaly_count, COUNT_COLOR.anomaly],
    ['Confirmed blocks', c.confirmed_count, COUNT_COLOR.confirmed],
    ['Failures', c.failure_count, COUNT_COLOR.failure],
  ];
  return (
    <dl class="totals">
      {cells.map(([k, v, color]) => (
        <div key={k} class="total">
          <dt>{k}</dt>
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
  if (res.state === 'loading') return <p aria-busy="true">Loading…</p>;
  if (res.state === 'error') return <p role="alert" class="error">{res.error}</p>;
  return <MeasurementTable rows={res.data.results} caption="Latest anomalies and confirmed blocks" hideCaption />;
}

export function Overview({ path, params }: { path: string[]; params: URLSearchParams }) {
  return (
    <>
      <h1 tabIndex={-1}>Censorship observatory</h1>
      <p class="lede">
        What is blocked, where, since when, how (mechanism) and by whom (national, regional or ISP layer). Every view is a
        permalink; every chart exports as CSV and JSON from the chart builder.
      </p>
      <Totals />
      <h2>Latest anomalies and confirmed blocks</h2>
      <LatestBlocked />
      <div class="breakdowns">
        <Breakdown axis="mechanism" filters={{}} />
        <Breakdown axis="layer" filters={{}} />
        <Breakdown axis="probe_cc" filters={{}} />
        <Breakdown axis="domain" filters={{}} />
      </div>
      <h2>All measurements over time</h2>
      <TimeSeries path={path} params={params} filters={{}} title="All measurements" />
    </>
  );
}
