// One measurement: the verdict and why, the evidence timeline, the control, the HTTP exchanges and
// the raw JSON. Everything from the measurement is hostile data and is rendered as text nodes only
// (no innerHTML, no links built from it): a body with <script> shows as the characters "<script>".
import { useState } from 'preact/hooks';
import { apiUrl, getJSON, type StoredMeasurementResponse } from '../api.js';
import { StatusBadge } from '../components/MeasurementTable.js';
import { CapturedPackets } from '../components/Packets.js';
import { capturedSteps, hopRows } from '../packets.js';
import { LAYER_TEXT, MECHANISM_TEXT } from '../format.js';
import { href } from '../router.js';
import { buildTimeline, networkEvents, textOf, type TimelineEvent } from '../timeline.js';
import { useFetch } from '../useFetch.js';
import { Pending } from '../components/Pending.js';

const BODY_SHOWN = 64 * 1024;

function ms(s: number | null): string {
  return s === null ? '' : `${(s * 1000).toFixed(1)} ms`;
}

function Timeline({ events, label }: { events: TimelineEvent[]; label: string }) {
  if (events.length === 0) return <p class="empty">No observations of a kind the explorer knows; see the raw JSON below.</p>;
  return (
    <ol class="timeline" aria-label={label}>
      {events.map((e) => (
        <li
          key={e.ref}
          class={`tl tl-${e.kind}${e.failure ? ' tl-failed' : ''}${e.injected ? ' tl-injected' : ''}${e.evidence ? ' tl-evidence' : ''}`}
          data-ref={e.ref}
        >
          <span class="tl-time">
            {e.t0 !== null ? `+${ms(e.t0)}` : ''}
            {e.t0 !== null ? ` → ${ms(e.t)}` : `@ ${ms(e.t)}`}
          </span>
          <span class="tl-kind">{e.kind}</span>
          <span class="tl-title">{e.title}</span>
          {e.injected && <strong class="tag tag-injected">injected</strong>}
          {e.evidence && <strong class="tag tag-evidence">evidence</strong>}
          {e.failure && <span class="tl-failure">{e.failure}</span>}
          {e.details.length > 0 && <span class="tl-details">{e.details.join(' · ')}</span>}
          <code class="tl-ref">{e.ref}</code>
        </li>
      ))}
    </ol>
  );
}

function Headers({ headers, label }: { headers: unknown; label: string }) {
  const list: Array<[string, unknown]> = Array.isArray(headers)
    ? (headers as unknown[]).filter(Array.isArray).map((h) => [String((h as unknown[])[0]), (h as unknown[])[1]])
    : headers && typeof headers === 'object'
      ? Object.entries(headers as Record<string, unknown>)
      : [];
  if (list.length === 0) return null;
  return (
    <table class="headers">
      <caption>{label}</caption>
      <tbody>
        {list.map(([k, v], i) => (
          <tr key={i}>
            <th scope="row">{k}</th>
            <td>{textOf(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Body({ body, truncated }: { body: unknown; truncated: boolean }) {
  const text = textOf(body);
  if (!text) return <p class="empty">Empty body.</p>;
  const shown = text.length > BODY_SHOWN ? text.slice(0, BODY_SHOWN) : text;
  return (
    <>
      <p class="note">
        Body shown as text ({text.length.toLocaleString('en-US')} characters{truncated ? ', truncated by the probe' : ''}
        {text.length > BODY_SHOWN ? `, first ${BODY_SHOWN / 1024} KiB here` : ''}). It is never rendered as a page.
      </p>
      <pre class="body">{shown}</pre>
    </>
  );
}

function Requests({ requests }: { requests: unknown }) {
  const list = Array.isArray(requests) ? (requests as Array<Record<string, unknown>>) : [];
  if (list.length === 0) return null;
  return (
    <section>
      <h2>HTTP exchanges</h2>
      {list.map((r, i) => {
        const req = (r && typeof r.request === 'object' ? r.request : {}) as Record<string, unknown>;
        const res = (r && typeof r.response === 'object' ? r.response : null) as Record<string, unknown> | null;
        return (
          <details key={i} class="exchange" open={i === 0}>
            <summary>
              <code>requests[{i}]</code> {textOf(req.method) || 'GET'} {textOf(req.url)}
              {res && typeof res.code === 'number' ? ` → ${res.code}` : ''}
              {typeof r.failure === 'string' ? ` → ${r.failure}` : ''}
            </summary>
            <Headers headers={req.headers_list ?? req.headers} label="Request headers" />
            {res ? (
              <>
                <Headers headers={res.headers_list ?? res.headers} label="Response headers" />
                <Body body={res.body} truncated={res.body_is_truncated === true} />
              </>
            ) : (
              <p class="empty">No response.</p>
            )}
          </details>
        );
      })}
    </section>
  );
}

function Control({ control }: { control: unknown }) {
  if (!control || typeof control !== 'object' || Object.keys(control).length === 0) return null;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the control is a helper's JSON of any shape; every read below is checked
  const c = control as Record<string, any>;
  const rows: Array<[string, string]> = [];
  if (c.dns)
    rows.push(['DNS', c.dns.failure ? String(c.dns.failure) : `addresses: ${(Array.isArray(c.dns.addrs) ? c.dns.addrs : []).join(', ')}`]);
  if (c.tcp_connect && typeof c.tcp_connect === 'object')
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
    for (const [addr, v] of Object.entries(c.tcp_connect as Record<string, any>))
      rows.push([`TCP ${addr}`, v?.status ? 'connected' : String(v?.failure ?? 'failed')]);
  if (c.tls_handshake && typeof c.tls_handshake === 'object')
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
    for (const [addr, v] of Object.entries(c.tls_handshake as Record<string, any>))
      rows.push([`TLS ${addr}`, v?.status ? `ok (SNI ${String(v?.server_name ?? '')})` : String(v?.failure ?? 'failed')]);
  if (c.http_request)
    rows.push([
      'HTTP',
      c.http_request.failure
        ? String(c.http_request.failure)
        : `status ${String(c.http_request.status_code)}, ${String(c.http_request.body_length)} bytes, title “${String(c.http_request.title ?? '')}”`,
    ]);
  return (
    <section>
      <h2>Control (what the test helper saw from outside)</h2>
      <table class="control">
        <tbody>
          {rows.map(([k, v], i) => (
            <tr key={i}>
              <th scope="row">{k}</th>
              <td>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function MeasurementPage({ uid }: { uid: string }) {
  const res = useFetch<StoredMeasurementResponse>(uid, (s) =>
    getJSON<StoredMeasurementResponse>(`measurement/${encodeURIComponent(uid)}`, {}, s),
  );
  if (res.state !== 'ok')
    return (
      <>
        <h1 tabIndex={-1}>Measurement</h1>
        <Pending res={res} failed={`Could not load measurement ${uid}: `} />
      </>
    );
  const { measurement: m, verdict: v } = res.data;
  const tk = (m.test_keys ?? {}) as Record<string, unknown>;
  const domain = domainOf(m.input);
  return (
    <>
      <h1 tabIndex={-1}>
        Measurement <span class="entity">{m.input ?? m.test_name}</span>
      </h1>
      <Facts data={res.data} domain={domain} />
      <RelatedLinks m={m} domain={domain} />
      <VerdictSection data={res.data} ooniBlocking={tk.blocking} />
      <EvidenceTimeline m={m} v={v} />
      <CapturedPackets steps={capturedSteps(m)} hops={hopRows(m)} evidence={v?.evidence ?? []} />
      <Control control={tk.control} />
      <Requests requests={tk.requests} />
      <RawMeasurement data={res.data} />
    </>
  );
}

/** The measured URL's host name, or null for an input that is not a URL. */
function domainOf(input: string | null | undefined): string | null {
  try {
    return input ? new URL(input).hostname : null;
  } catch {
    return null;
  }
}

type Stored = StoredMeasurementResponse;

/** Test, time, country, network, domain, region, id. */
function Facts({ data, domain }: { data: Stored; domain: string | null }) {
  const m = data.measurement;
  return (
    <dl class="facts">
      <div>
        <dt>Test</dt>
        <dd>{m.test_name}</dd>
      </div>
      <div>
        <dt>Time (UTC)</dt>
        <dd>{m.measurement_start_time}</dd>
      </div>
      <div>
        <dt>Country</dt>
        <dd>
          <a href={href(['country', m.probe_cc])}>{m.probe_cc}</a>
        </dd>
      </div>
      <div>
        <dt>Network</dt>
        <dd>
          <a href={href(['asn', m.probe_asn])}>{m.probe_asn}</a> {m.probe_network_name}
        </dd>
      </div>
      {domain && (
        <div>
          <dt>Domain</dt>
          <dd>
            <a href={href(['domain', domain])}>{domain}</a>
          </dd>
        </div>
      )}
      {m.annotations?.region && (
        <div>
          <dt>Region (self-declared)</dt>
          <dd>
            <a href={href(['region', m.annotations.region])}>{m.annotations.region}</a>
          </dd>
        </div>
      )}
      <div>
        <dt>Measurement id</dt>
        <dd>
          <code>{data.measurement_uid}</code>
        </dd>
      </div>
    </dl>
  );
}

/** Links to the measurements around this one. */
function RelatedLinks({ m, domain }: { m: Stored['measurement']; domain: string | null }) {
  return (
    <p class="links">
      {domain && (
        <>
          <a href={href(['search'], { domain, probe_asn: m.probe_asn })}>
            Other measurements of {domain} in {m.probe_asn}
          </a>
          {' · '}
          <a href={href(['domain', domain])}>{domain} everywhere</a>
          {' · '}
        </>
      )}
      <a href={href(['country', m.probe_cc])}>everything in {m.probe_cc}</a>
    </p>
  );
}

/** The verdict, its explanation and the observations it rests on. */
function VerdictSection({ data, ooniBlocking }: { data: Stored; ooniBlocking: unknown }) {
  const v = data.verdict;
  const row = {
    status: v?.status,
    anomaly: v?.status === 'blocked' && !v.confirmed,
    confirmed: v?.confirmed,
    failure: v?.status === 'unknown',
  };
  return (
    <section class="verdict" aria-labelledby="verdict-h">
      <h2 id="verdict-h">
        Verdict <StatusBadge row={row} />
      </h2>
      {v ? (
        <>
          <p class="explanation">{v.explanation}</p>
          <dl class="facts">
            <div>
              <dt>Status</dt>
              <dd>{v.status}</dd>
            </div>
            <div>
              <dt>Mechanism</dt>
              <dd>
                {v.mechanism ?? '–'}
                {v.mechanism && MECHANISM_TEXT[v.mechanism] && <span class="hint"> — {MECHANISM_TEXT[v.mechanism]}</span>}
              </dd>
            </div>
            <div>
              <dt>Layer</dt>
              <dd>
                {v.layer ?? '–'}
                {v.layer && LAYER_TEXT[v.layer] && <span class="hint"> — {LAYER_TEXT[v.layer]}</span>}
              </dd>
            </div>
            <div>
              <dt>Confidence</dt>
              <dd>{Math.round((v.confidence ?? 0) * 100)}%</dd>
            </div>
            <div>
              <dt>OONI blocking</dt>
              <dd>{String(ooniBlocking ?? v.blocking ?? 'null')}</dd>
            </div>
            <div>
              <dt>Confirmed</dt>
              <dd>{v.confirmed ? `yes (${(v.fingerprints ?? []).join(', ') || 'fingerprint'})` : 'no'}</dd>
            </div>
            <div>
              <dt>Analysis</dt>
              <dd>{data.analysis_version ?? v.analysis_version}</dd>
            </div>
          </dl>
          {v.evidence?.length > 0 && (
            <p>
              Decided by:{' '}
              {v.evidence.map((e, i) => (
                <code key={i} class="ref">
                  {e}
                </code>
              ))}
            </p>
          )}
        </>
      ) : (
        <p>No verdict stored.</p>
      )}
    </section>
  );
}

/** The evidence timeline, with the low-level network events on demand. */
function EvidenceTimeline({ m, v }: { m: Stored['measurement']; v: Stored['verdict'] }) {
  const [showNet, setShowNet] = useState(false);
  const events = buildTimeline(m, v);
  const net = networkEvents(m);
  return (
    <section>
      <h2>Evidence timeline</h2>
      <p class="note">
        Times are from the start of the measurement. Marked: the observations the verdict rests on, and DNS replies judged injected.
      </p>
      <Timeline events={events} label="Evidence timeline" />
      {net.length > 0 && (
        <p>
          <label>
            <input type="checkbox" checked={showNet} onChange={(e) => setShowNet((e.currentTarget as HTMLInputElement).checked)} /> Show the{' '}
            {net.length} low-level network events
          </label>
        </p>
      )}
      {showNet && <Timeline events={net} label="Network events" />}
    </section>
  );
}

/** A download link and the raw JSON, folded. */
function RawMeasurement({ data }: { data: Stored }) {
  return (
    <section>
      <h2>Raw measurement</h2>
      <p>
        <a href={apiUrl(`measurement/${encodeURIComponent(data.measurement_uid)}`)} download={`${data.measurement_uid}.json`}>
          Download the JSON (measurement, verdict and analysis version)
        </a>
      </p>
      <details>
        <summary>Show the raw JSON</summary>
        <pre class="raw">{JSON.stringify(data.measurement, null, 2)}</pre>
      </details>
    </section>
  );
}
