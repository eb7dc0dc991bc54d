// Per-bucket stacked counts over time for a filter, and the measurements behind a clicked bar.
// The selected bucket lives in the hash (`bucket=2026-11-20`), so the drill-down is a permalink.
import { getJSON, sumCounts, type Aggregation, type Filters } from '../api.js';
import { bucketEnd, dayOf, dayToUnix, fmtInt, grainSeconds, pct } from '../format.js';
import { href, navigate, paramsObject } from '../router.js';
import { buildSplit, type Split } from '../split.js';
import { useFetch } from '../useFetch.js';
import { MeasurementList } from './MeasurementList.js';
import { StackedBars, type Bar } from './StackedBars.js';
import { Pending } from './Pending.js';

interface Series {
  grain: string;
  bars: Bar[];
  split?: Split;
}

export const STACKS = ['status', 'mechanism', 'layer'] as const;

/** Day grain unless told; a span over ~13 months switches to weeks, over ~4 years to months. */
async function loadSeries(filters: Filters, grain: string | null, stack: string, signal: AbortSignal): Promise<Series> {
  const get = (g: string) => getJSON<Aggregation>('aggregation', { ...filters, axis_x: 'measurement_start_day', time_grain: g }, signal);
  let g = grain || 'day';
  let agg = await get(g);
  const toBars = (a: Aggregation): Bar[] =>
    a.result
      .map((r) => ({ day: dayOf(r.measurement_start_day), r }))
      .filter((x): x is { day: string; r: (typeof a.result)[number] } => x.day !== null)
      .sort((x, y) => (x.day < y.day ? -1 : x.day > y.day ? 1 : 0))
      .map(({ day, r }) => ({ x: dayToUnix(day), label: day, counts: r }));
  let bars = toBars(agg);
  if (!grain && bars.length > 1) {
    const span = (bars[bars.length - 1]!.x - bars[0]!.x) / 86400;
    const auto = span > 1500 ? 'month' : span > 400 ? 'week' : 'day';
    if (auto !== 'day') {
      g = auto;
      agg = await get(g);
      bars = toBars(agg);
    }
  }
  if (stack === 'mechanism' || stack === 'layer') {
    const two = await getJSON<Aggregation>(
      'aggregation',
      { ...filters, axis_x: 'measurement_start_day', axis_y: stack, time_grain: g },
      signal,
    );
    return {
      grain: g,
      bars,
      split: buildSplit(
        two.result,
        stack,
        (r) => dayOf(r.measurement_start_day),
        bars.map((b) => b.label),
      ),
    };
  }
  return { grain: g, bars };
}

export function TimeSeries({ path, params, filters, title }: { path: string[]; params: URLSearchParams; filters: Filters; title: string }) {
  const grainParam = params.get('time_grain');
  const stack = (STACKS as readonly string[]).includes(params.get('stack') ?? '') ? params.get('stack')! : 'status';
  const key = JSON.stringify(filters) + '|' + (grainParam ?? '') + '|' + stack;
  const res = useFetch<Series>(key, (signal) => loadSeries(filters, grainParam, stack, signal));
  const bucket = params.get('bucket');
  if (res.state !== 'ok') return <Pending res={res} loading="Loading time series…" failed="Could not load the time series: " />;
  const { bars, grain, split } = res.data;
  const selected = bucket ? bars.findIndex((b) => b.label === bucket) : -1;
  const select = (i: number) => {
    const b = bars[i];
    if (b) navigate(href(path, { ...paramsObject(params), bucket: b.label, bucket_grain: grain }));
  };
  return (
    <>
      <BlockedSince bars={bars} />
      <StackSelect path={path} params={params} stack={stack} />
      <StackedBars
        title={`${title} per ${grain}${split ? `, by ${stack}` : ''}`}
        bars={bars}
        time
        step={grainSeconds(grain)}
        selected={selected >= 0 ? selected : null}
        onSelect={select}
        split={split}
      />
      <p class="chart-help">Select a bar (click, or Tab to it and press Enter) to list the measurements behind it.</p>
      <BucketMeasurements path={path} params={params} filters={filters} bucket={bucket} grain={grain} />
    </>
  );
}

/** "Since when": the first and last buckets with blocked measurements, and the blocked share. */
function BlockedSince({ bars }: { bars: Bar[] }) {
  const blockedBars = bars.filter((b) => b.counts.anomaly_count + b.counts.confirmed_count > 0);
  const all = sumCounts(bars.map((b) => b.counts));
  const blocked = all.anomaly_count + all.confirmed_count;
  return (
    <p class="since" data-testid="since">
      {blockedBars.length === 0 ? (
        <>No blocked measurements in this view ({fmtInt(all.measurement_count)} measurements).</>
      ) : (
        <>
          Blocked measurements from <strong>{blockedBars[0]!.label}</strong> to{' '}
          <strong>{blockedBars[blockedBars.length - 1]!.label}</strong>: {fmtInt(blocked)} of {fmtInt(all.measurement_count)} (
          {pct(blocked, all.measurement_count)}), {fmtInt(all.confirmed_count)} confirmed by a fingerprint.
        </>
      )}
    </p>
  );
}

/** The second axis of the bars: status, mechanism or layer, kept in the hash. */
function StackSelect({ path, params, stack }: { path: string[]; params: URLSearchParams; stack: string }) {
  return (
    <div class="field stack-by">
      <label for="stack-by">Stack bars by</label>
      <select
        id="stack-by"
        value={stack}
        onChange={(e) =>
          navigate(
            href(path, {
              ...paramsObject(params),
              stack: (e.currentTarget as HTMLSelectElement).value === 'status' ? undefined : (e.currentTarget as HTMLSelectElement).value,
            }),
          )
        }
      >
        <option value="status">status (ok, anomaly, confirmed, failure)</option>
        <option value="mechanism">mechanism</option>
        <option value="layer">layer</option>
      </select>
    </div>
  );
}

/** The measurements of the selected bucket, else the latest ones. */
function BucketMeasurements({
  path,
  params,
  filters,
  bucket,
  grain,
}: {
  path: string[];
  params: URLSearchParams;
  filters: Filters;
  bucket: string | null;
  grain: string;
}) {
  const bucketGrain = params.get('bucket_grain') || grain;
  return bucket && dayOf(bucket) ? (
    <>
      <h2 id="bucket-heading">
        Measurements of the {bucketGrain} starting {bucket}{' '}
        <a class="small" href={href(path, { ...paramsObject(params), bucket: undefined, bucket_grain: undefined })}>
          (clear)
        </a>
      </h2>
      <MeasurementList
        filters={{ ...filters, since: bucket, until: bucketEnd(bucket, bucketGrain) }}
        caption={`Measurements of the ${bucketGrain} starting ${bucket}`}
        hideCaption
      />
    </>
  ) : (
    <>
      <h2>Latest measurements</h2>
      <MeasurementList filters={filters} caption="Latest measurements" limit={25} hideCaption />
    </>
  );
}
