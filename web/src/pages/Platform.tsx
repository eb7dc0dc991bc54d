// Platforms (issue 15): per platform, how many watched posts were taken down and how fast, by day
// and by the posters' IP territory; the keyword table with its evidence; and an IP territory
// self-check that runs in this browser: the tables are downloaded whole and searched here, so the
// address typed in never leaves the page. Every string from the store (post texts, notices,
// platform names) is hostile and rendered as text, never as markup.
import { useState } from 'preact/hooks';
import { getJSON } from '../api.js';
import { useFetch } from '../useFetch.js';
import { href } from '../router.js';
import type { KeywordRecord, PlatformSummary, PlatformSummaryResponse } from '../../../src/model/platform.js';
import { Pending } from '../components/Pending.js';

const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);
function dur(s: number | null): string {
  if (s === null) return '–';
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function PlatformBlock({ p }: { p: PlatformSummary }) {
  const t = p.totals;
  const ttr = p.time_to_removal;
  return (
    <section class="platform" aria-label={`Platform ${p.platform}`}>
      <h2>{p.platform}</h2>
      <p>
        {t.posts} posts watched: <strong>{pct(t.removal_rate)}</strong> taken down by the platform ({t.removed} removed, {t.shadow_hidden}{' '}
        shadow-hidden, {t.account_banned} with their account banned); {t.author_deleted} deleted by their authors; {t.visible} still visible
        at the last poll.
      </p>
      <p>
        Time to removal (posting to the first poll that missed the post; {ttr.n} removed or hidden posts): median {dur(ttr.median_s)}, 90th
        percentile {dur(ttr.p90_s)}; {pct(ttr.within_30_min)} within 30 minutes, {pct(ttr.within_24_h)} within 24 hours.
      </p>
      <table>
        <caption>Vanished posts by day</caption>
        <thead>
          <tr>
            <th scope="col">Day (UTC)</th>
            <th scope="col">Removed</th>
            <th scope="col">Shadow-hidden</th>
            <th scope="col">Account banned</th>
            <th scope="col">Deleted by author</th>
            <th scope="col">Median time to removal</th>
          </tr>
        </thead>
        <tbody>
          {p.per_day.map((d) => (
            <tr key={d.day}>
              <td>{d.day}</td>
              <td>{d.removed}</td>
              <td>{d.shadow_hidden}</td>
              <td>{d.account_banned}</td>
              <td>{d.author_deleted}</td>
              <td>{dur(d.median_time_to_removal_s)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <table>
        <caption>By the IP territory the platform showed on the posts</caption>
        <thead>
          <tr>
            <th scope="col">IP territory</th>
            <th scope="col">Posts</th>
            <th scope="col">Taken down</th>
            <th scope="col">Removed</th>
            <th scope="col">Shadow-hidden</th>
            <th scope="col">Account banned</th>
            <th scope="col">Deleted by author</th>
          </tr>
        </thead>
        <tbody>
          {p.per_territory.map((r) => (
            <tr key={`${r.code}/${r.label}`}>
              <td>
                {r.label}
                {r.code ? ` (${r.code})` : ''}
              </td>
              <td>{r.posts}</td>
              <td>{pct(r.removal_rate)}</td>
              <td>{r.removed}</td>
              <td>{r.shadow_hidden}</td>
              <td>{r.account_banned}</td>
              <td>{r.author_deleted}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function KeywordTable({ rows }: { rows: KeywordRecord[] }) {
  if (!rows.length)
    return (
      <p>
        No keyword tests stored (run <code>wallscope platform keywords ... --db</code>).
      </p>
    );
  return (
    <table class="keywords">
      <caption>Keyword tests: the minimal words that got a test post removed</caption>
      <thead>
        <tr>
          <th scope="col">Platform</th>
          <th scope="col">Test text</th>
          <th scope="col">Removed</th>
          <th scope="col">Triggering words</th>
          <th scope="col">Evidence</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.measurement_uid}>
            <td>{r.platform}</td>
            <td class="text">{r.text}</td>
            <td>{r.removed ? (r.status === 'shadow_hidden' ? 'hidden (shadow)' : 'removed') : 'kept'}</td>
            <td>{r.trigger.length ? r.trigger.join(' + ') : '–'}</td>
            <td>
              {r.posts ?? '?'} test posts, {r.measured_at} · <a href={href(['measurement', r.measurement_uid])}>measurement</a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface Tables {
  countries: Array<[number, number, string]>;
  provinces: Array<[number, number, string]>;
  labels: Record<string, string>;
  unknown: string;
}

function v4(ip: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip.trim());
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((x) => x > 255)) return null;
  return parts.reduce((a, b) => a * 256 + b, 0);
}

function find(rows: Array<[number, number, string]>, n: number): string | null {
  let lo = 0;
  let hi = rows.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = rows[mid]!;
    if (r[0] > n) hi = mid - 1;
    else if (r[1] < n) lo = mid + 1;
    else return r[2];
  }
  return null;
}

/** The same rule as src/probe/territory.ts territoryOf, over the same tables. */
export function territoryIn(t: Tables, n: number): { code: string | null; label: string } {
  const cc = find(t.countries, n);
  if (!cc) return { code: null, label: t.unknown };
  if (cc === 'CN') {
    const p = find(t.provinces, n);
    return p && t.labels[p] ? { code: p, label: t.labels[p]! } : { code: 'CN', label: t.labels.CN ?? '中国' };
  }
  return { code: cc, label: t.labels[cc] ?? cc };
}

function WhereAmI() {
  const [ip, setIp] = useState('');
  const [out, setOut] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <section aria-labelledby="whereami-h">
      <h2 id="whereami-h">Your IP territory label</h2>
      <p>
        Chinese platforms print an "IP属地" label on every post: the province for a mainland address, the country otherwise. Type your
        public address to see the label they would show. The lookup runs in this page: it downloads the whole table and searches it here, so
        your address is not sent to this server or anywhere else (IPv4 only; for IPv6 use <code>wallscope whereami</code>).
      </p>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          const n = v4(ip);
          if (n === null) return setOut('Not an IPv4 address.');
          setBusy(true);
          try {
            const t = await getJSON<Tables>('platform/territory-tables');
            const r = territoryIn(t, n);
            setOut(`IP属地：${r.label}${r.code ? ` (${r.code})` : ''}`);
          } catch (err) {
            setOut(`Could not load the tables: ${(err as Error).message}`);
          } finally {
            setBusy(false);
          }
        }}
      >
        <label for="whereami-ip">Your public IPv4 address</label>{' '}
        <input id="whereami-ip" value={ip} autocomplete="off" onInput={(e) => setIp((e.currentTarget as HTMLInputElement).value)} />{' '}
        <button type="submit" disabled={busy}>
          Look up here
        </button>
      </form>
      {out !== null && (
        <p role="status" class="whereami-result">
          {out}
        </p>
      )}
    </section>
  );
}

export function PlatformPage() {
  const s = useFetch<PlatformSummaryResponse>('platform', (sig) => getJSON<PlatformSummaryResponse>('platform/summary', {}, sig));
  return (
    <>
      <h1 tabIndex={-1}>Platforms</h1>
      {s.state !== 'ok' && <Pending res={s} failed="Could not load the platform summary: " />}
      {s.state === 'ok' && (
        <>
          {s.data.truncated && <p role="note">Only the first measurements were read: the figures cover part of the store.</p>}
          {s.data.platforms.length === 0 && (
            <p>
              No platform watch stored yet (run <code>wallscope platform watch ... --db</code>).
            </p>
          )}
          {s.data.platforms.map((p) => (
            <PlatformBlock key={p.platform} p={p} />
          ))}
          <h2>Keywords</h2>
          <KeywordTable rows={s.data.keywords} />
        </>
      )}
      <WhereAmI />
    </>
  );
}
