// Lists as data (GET /api/v1/lists/..., src/server/lists-routes.ts): per layer, the size of the list
// of what is known to be blocked over time, the overlap (Jaccard of blocked names) between layers
// at a date, the rules that overblock the most, the diff from the previous snapshot, and exports.
// Rules and names come from measurements of hostile networks: rendered as text, never as markup.
import { apiUrl, getJSON } from '../api.js';
import { LAYER_TEXT } from '../format.js';
import { href, navigate } from '../router.js';
import { useFetch } from '../useFetch.js';
import type { ListSize, OverblockingRule, TimedDiff } from '../../../src/model/lists.js';
import { Pending } from '../components/Pending.js';

interface Status {
  enabled: boolean;
  dates: string[];
}
interface Overlap {
  date: string;
  layers: string[];
  pairs: Array<{ a: string; b: string; jaccard: number; both: number }>;
}

const COLORS = ['#1f5fbf', '#c2410c', '#15803d', '#7e22ce', '#a16207'];

/** One line per layer: rules per snapshot date (dates evenly spaced, in order). */
function SizeChart({ sizes }: { sizes: ListSize[] }) {
  const dates = [...new Set(sizes.map((s) => s.date))];
  const layers = [...new Set(sizes.map((s) => s.layer))].sort();
  const max = Math.max(1, ...sizes.map((s) => s.rules));
  const W = 640;
  const H = 200;
  const x = (i: number) => 40 + (dates.length > 1 ? (i * (W - 60)) / (dates.length - 1) : (W - 60) / 2);
  const y = (v: number) => H - 20 - (v * (H - 40)) / max;
  return (
    <figure class="chart lists-size">
      <figcaption>Rules per layer at each snapshot (up to {max})</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label="List size over time per layer">
        <line x1={40} y1={H - 20} x2={W - 20} y2={H - 20} stroke="#888" />
        {layers.map((l, li) => {
          const pts = dates
            .map((d, i) => [i, sizes.find((s) => s.date === d && s.layer === l)] as const)
            .filter(([, s]) => s !== undefined)
            .map(([i, s]) => `${x(i)},${y(s!.rules)}`);
          return (
            <g key={l} class="series" data-layer={l}>
              <polyline points={pts.join(' ')} fill="none" stroke={COLORS[li % COLORS.length]} stroke-width={2} />
              <text x={W - 18} y={14 + li * 14} font-size={11} fill={COLORS[li % COLORS.length]} text-anchor="end">
                {l}
              </text>
            </g>
          );
        })}
        {dates.map((d, i) => (
          <text key={d} x={x(i)} y={H - 4} font-size={10} text-anchor="middle">
            {d}
          </text>
        ))}
      </svg>
    </figure>
  );
}

function SizeTable({ sizes }: { sizes: ListSize[] }) {
  return (
    <table class="list-sizes">
      <caption>List size per layer and date (rules; distinct blocked names)</caption>
      <thead>
        <tr>
          <th scope="col">Date</th>
          <th scope="col">Layer</th>
          <th scope="col">Rules</th>
          <th scope="col">Names</th>
        </tr>
      </thead>
      <tbody>
        {sizes.map((s) => (
          <tr key={`${s.date}/${s.layer}`}>
            <td>{s.date}</td>
            <td title={LAYER_TEXT[s.layer]}>{s.layer}</td>
            <td>{s.rules}</td>
            <td>{s.names}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The layers × layers matrix of Jaccard indexes (1 on the diagonal). */
function OverlapMatrix({ o }: { o: Overlap }) {
  const j = (a: string, b: string) =>
    a === b ? 1 : (o.pairs.find((p) => (p.a === a && p.b === b) || (p.a === b && p.b === a))?.jaccard ?? 0);
  return (
    <table class="overlap">
      <caption>Overlap of the layers' blocked names at {o.date} (Jaccard index)</caption>
      <thead>
        <tr>
          <td />
          {o.layers.map((l) => (
            <th scope="col" key={l}>
              {l}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {o.layers.map((a) => (
          <tr key={a}>
            <th scope="row">{a}</th>
            {o.layers.map((b) => (
              <td key={b}>{j(a, b).toFixed(3)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Overblocking({ date }: { date: string }) {
  const res = useFetch<{ rules: OverblockingRule[] }>(`ob/${date}`, (s) => getJSON('lists/overblocking', { date, limit: '20' }, s));
  if (res.state !== 'ok') return <Pending res={res} />;
  if (!res.data.rules.length) return <p class="empty">No rule overblocks at {date}.</p>;
  return (
    <table class="overblocking">
      <caption>Rules with the most overblocking at {date}</caption>
      <thead>
        <tr>
          <th scope="col">Layer</th>
          <th scope="col">Protocol</th>
          <th scope="col">Rule</th>
          <th scope="col">Overblocked names</th>
          <th scope="col">Measured names</th>
        </tr>
      </thead>
      <tbody>
        {res.data.rules.map((r) => (
          <tr key={`${r.layer}/${r.protocol}/${r.rule}`}>
            <td>{r.layer}</td>
            <td>{r.protocol}</td>
            <td>
              <code>{r.rule}</code>
            </td>
            <td>{r.overblocks}</td>
            <td>{r.names.join(' ')}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function DiffSummary({ from, to }: { from: string; to: string }) {
  const res = useFetch<TimedDiff>(`diff/${from}/${to}`, (s) => getJSON('lists/diff', { from, to }, s));
  if (res.state !== 'ok') return <Pending res={res} />;
  return (
    <table class="list-diff">
      <caption>
        Changes from {from} to {to} (<a href={apiUrl('lists/diff', { from, to, format: 'csv' })}>CSV</a>,{' '}
        <a href={apiUrl('lists/diff', { from, to })}>JSON</a>)
      </caption>
      <thead>
        <tr>
          <th scope="col">Layer</th>
          <th scope="col">Added</th>
          <th scope="col">Removed</th>
          <th scope="col">Kept</th>
          <th scope="col">Longest-blocked removed rule</th>
        </tr>
      </thead>
      <tbody>
        {Object.entries(res.data.layers).map(([layer, d]) => {
          const longest = [...d.removed].sort((a, b) => b.days - a.days)[0];
          return (
            <tr key={layer}>
              <td>{layer}</td>
              <td>{d.added.length}</td>
              <td>{d.removed.length}</td>
              <td>{d.kept}</td>
              <td>{longest ? `${longest.rule} (${longest.days} days)` : '–'}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function AtDate({ dates, date }: { dates: string[]; date: string }) {
  const res = useFetch<Overlap>(`ov/${date}`, (s) => getJSON('lists/overlap', { date }, s));
  const prev = dates[dates.indexOf(date) - 1];
  return (
    <section class="lists-at-date">
      <h2>
        At{' '}
        <select
          aria-label="Snapshot date"
          value={date}
          onChange={(e) => navigate(href(['lists'], { date: (e.target as HTMLSelectElement).value }))}
        >
          {dates.map((d) => (
            <option key={d} value={d}>
              {d}
            </option>
          ))}
        </select>
      </h2>
      <p>
        Export this snapshot: <a href={apiUrl('lists/snapshot', { date, format: 'csv' })}>CSV</a>,{' '}
        <a href={apiUrl('lists/snapshot', { date })}>JSON</a>; every rule's block duration:{' '}
        <a href={apiUrl('lists/history', { format: 'csv' })}>CSV</a>.
      </p>
      {res.state === 'ok' ? <OverlapMatrix o={res.data} /> : <Pending res={res} />}
      <Overblocking date={date} />
      {prev && <DiffSummary from={prev} to={date} />}
    </section>
  );
}

export function ListsPage({ params }: { params: URLSearchParams }) {
  const status = useFetch<Status>('lists/status', (s) => getJSON('lists/status', {}, s));
  const sizes = useFetch<{ sizes: ListSize[] }>('lists/sizes', (s) => getJSON('lists/sizes', {}, s));
  let body;
  if (status.state !== 'ok') body = <Pending res={status} />;
  else if (sizes.state === 'loading') body = <Pending res={sizes} />;
  else if (!status.data.enabled) body = <p class="empty">This server keeps no lists (see docs/LISTS.md).</p>;
  else if (!status.data.dates.length)
    body = <p class="empty">No list snapshot is stored yet: `wallscope lists snapshot INFER.jsonl --date D --store FILE`.</p>;
  else if (sizes.state === 'error') body = <Pending res={sizes} />;
  else {
    const dates = status.data.dates;
    const date = dates.includes(params.get('date') ?? '') ? params.get('date')! : dates[dates.length - 1]!;
    body = (
      <>
        <section>
          <h2>List size over time</h2>
          <SizeChart sizes={sizes.data.sizes} />
          <SizeTable sizes={sizes.data.sizes} />
          <p>
            <a href={apiUrl('lists/sizes', { format: 'csv' })}>Sizes as CSV</a>
          </p>
        </section>
        <AtDate key={date} dates={dates} date={date} />
      </>
    );
  }
  return (
    <>
      <h1 tabIndex={-1}>Lists</h1>
      <p>What each layer is known to block: the rules `wallscope infer` found, per snapshot date.</p>
      {body}
    </>
  );
}
