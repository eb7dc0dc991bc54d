// Changes over time (GET /api/v1/changes, /api/v1/states): what changed in a view (a country, a
// network, a region, a domain, a layer), what is blocked now and since when, and the Atom feed of
// the view. Each change links the measurements that prove it. The domain page shows the same for
// one domain as its timeline (DomainTimeline).
import { apiUrl, getJSON } from '../api.js';
import { LAYER_TEXT, MECHANISM_TEXT } from '../format.js';
import { href, navigate } from '../router.js';
import { useFetch } from '../useFetch.js';
import type { ChangeRecord, ChangeSide, StateRecord } from '../../../src/model/changes.js';
import { Pending } from '../components/Pending.js';

const VIEW_KEYS = ['probe_cc', 'probe_asn', 'region', 'domain', 'layer', 'since'] as const;
type View = Partial<Record<(typeof VIEW_KEYS)[number], string>>;

function when(iso: string): string {
  return iso.replace('T', ' ').replace(/(:\d{2})(\.\d+)?Z$/, '$1 UTC');
}

function StateText({ s }: { s: ChangeSide }) {
  if (s.blocking === false) return <span class="state ok">reachable</span>;
  return (
    <span class="state blocked" title={MECHANISM_TEXT[s.mechanism] ?? s.mechanism}>
      blocked: {s.mechanism}
    </span>
  );
}

function Network({ r }: { r: { probe_cc: string; probe_asn: string; region: string | null } }) {
  return (
    <>
      <a href={href(['country', r.probe_cc])}>{r.probe_cc}</a> <a href={href(['asn', r.probe_asn])}>{r.probe_asn}</a>
      {r.region && (
        <>
          {' '}
          <a href={href(['region', r.region])}>{r.region}</a>
        </>
      )}
    </>
  );
}

export function ChangesTable({ view, caption }: { view: View; caption: string }) {
  const key = JSON.stringify(view);
  const res = useFetch<{ changes: ChangeRecord[] }>(key, (signal) => getJSON('changes', { ...view, limit: '1000' }, signal));
  if (res.state !== 'ok') return <Pending res={res} loading="Loading changes…" />;
  const rows = [...res.data.changes].reverse();
  if (rows.length === 0) return <p class="empty">No change in this view.</p>;
  return (
    <table class="changes">
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Since</th>
          <th scope="col">Target</th>
          <th scope="col">Network</th>
          <th scope="col">Layer</th>
          <th scope="col">From</th>
          <th scope="col">To</th>
          <th scope="col">Evidence</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((c) => (
          <tr key={c.id} data-change-id={c.id}>
            <td>{when(c.at)}</td>
            <td class="target">{c.target}</td>
            <td>
              <Network r={c} />
            </td>
            <td title={c.layer ? LAYER_TEXT[c.layer] : undefined}>{c.layer ?? '-'}</td>
            <td>
              <StateText s={c.from} />
            </td>
            <td>
              <StateText s={c.to} />
            </td>
            <td>
              {c.evidence.map((uid, i) => (
                <span key={uid}>
                  {i > 0 && ' '}
                  <a class="evidence" href={href(['measurement', uid])} title={uid}>
                    {i === 0 ? 'before' : `after ${i}`}
                  </a>
                </span>
              ))}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function StatesTable({ view, blockedOnly, caption }: { view: View; blockedOnly: boolean; caption: string }) {
  const { since: _since, layer: _layer, ...filters } = view;
  const key = JSON.stringify(filters) + blockedOnly;
  const res = useFetch<{ states: StateRecord[] }>(key, (signal) =>
    getJSON('states', { ...filters, ...(blockedOnly ? { blocked: 'true' } : {}) }, signal),
  );
  if (res.state !== 'ok') return <Pending res={res} loading="Loading states…" />;
  if (res.data.states.length === 0) return <p class="empty">{blockedOnly ? 'Nothing is blocked in this view.' : 'No state yet.'}</p>;
  return (
    <table class="states">
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Target</th>
          <th scope="col">Network</th>
          <th scope="col">State</th>
          <th scope="col">Layer</th>
          <th scope="col">{blockedOnly ? 'Blocked since' : 'Since'}</th>
        </tr>
      </thead>
      <tbody>
        {res.data.states.map((s) => (
          <tr key={`${s.target} ${s.probe_cc} ${s.probe_asn} ${s.region}`}>
            <td class="target">{s.target}</td>
            <td>
              <Network r={s} />
            </td>
            <td>
              <StateText s={s} />
            </td>
            <td>{s.layer ?? '-'}</td>
            <td class="since">
              <a href={href(['measurement', s.since_uid])}>{when(s.since)}</a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Whether the server keeps changes (GET /api/v1/changes/status). */
function useChangesEnabled(): boolean | null {
  const res = useFetch<{ enabled: boolean }>('changes-status', (signal) => getJSON('changes/status', {}, signal));
  return res.state === 'ok' ? res.data.enabled : res.state === 'error' ? false : null;
}

/** A domain page's timeline: each (URL, network)'s state and since when, then its changes. */
export function DomainTimeline({ domain }: { domain: string }) {
  const enabled = useChangesEnabled();
  if (enabled !== true) return null;
  return (
    <section class="timeline-of-states">
      <h2>State over time</h2>
      <StatesTable view={{ domain }} blockedOnly={false} caption={`Current state of ${domain} per URL and network`} />
      <ChangesTable view={{ domain }} caption={`Changes of ${domain}, newest first`} />
      <p class="links">
        <a href={apiUrl('changes.atom', { domain })}>Atom feed of these changes</a>
      </p>
    </section>
  );
}

export function ChangesPage({ params }: { params: URLSearchParams }) {
  const view: View = {};
  for (const k of VIEW_KEYS) {
    const v = params.get(k)?.trim();
    if (v) view[k] = v;
  }
  const described = Object.entries(view)
    .map(([k, v]) => `${k} = ${v}`)
    .join(', ');
  const enabled = useChangesEnabled();
  if (enabled === false)
    return (
      <>
        <h1 tabIndex={-1}>Changes</h1>
        <p class="note">
          This server keeps no changes: change detection is off (it runs with a SQLite store, unless <code>--no-changes</code>).
        </p>
      </>
    );
  return (
    <>
      <h1 tabIndex={-1}>Changes</h1>
      <p class="note">
        A change is a new state (blocked, reachable, or blocked another way) seen by two measurements in a row from one network; one odd
        measurement is not a change. Each links the last measurement before it and those that show it.
      </p>
      <form
        class="filters"
        method="get"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget as HTMLFormElement);
          const next: Record<string, string> = {};
          for (const k of VIEW_KEYS) {
            const v = String(f.get(k) ?? '').trim();
            if (v) next[k] = v;
          }
          navigate(href(['changes'], next));
        }}
      >
        {VIEW_KEYS.map((k) => (
          <label key={k}>
            {k} <input name={k} defaultValue={view[k] ?? ''} size={12} />
          </label>
        ))}
        <button type="submit">Show</button>
      </form>
      <p class="links">
        <a href={apiUrl('changes.atom', view)}>Atom feed of this view</a>
      </p>
      <h2>Blocked now</h2>
      <StatesTable view={view} blockedOnly={true} caption={described ? `Blocked now where ${described}` : 'Blocked now'} />
      <h2>Changes</h2>
      <ChangesTable view={view} caption={described ? `Changes where ${described}, newest first` : 'All changes, newest first'} />
    </>
  );
}
