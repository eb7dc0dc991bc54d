// The wallscope explorer: a single page over the server's API, hash-routed so every view is a
// permalink. Pages: overview, country / network / region / domain, measurement, chart builder, search.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ChangesPage } from './pages/Changes.js';
import { ListsPage } from './pages/Lists.js';
import { ChartPage } from './pages/Chart.js';
import { EntityPage, normaliseEntity, type EntityKind } from './pages/Entity.js';
import { MeasurementPage } from './pages/Measurement.js';
import { Overview } from './pages/Overview.js';
import { SearchPage } from './pages/Search.js';
import { PlatformPage } from './pages/Platform.js';
import { href, navigate, useRoute, type Route } from './router.js';
import './style.css';

/** "CN", "AS4134", "4134", "youtube.com", a measurement uid: where it should go. */
function jumpTarget(q: string): string | null {
  const v = q.trim();
  if (!v) return null;
  if (/^[A-Za-z]{2}$/.test(v)) return href(['country', normaliseEntity('country', v)]);
  if (/^(AS)?\d+$/i.test(v)) return href(['asn', normaliseEntity('asn', v)]);
  if (/^[0-9]{8}[0-9a-f]{24,}$/i.test(v) || /^\d{14}\.\d+_/.test(v)) return href(['measurement', v]);
  try {
    if (/^https?:\/\//i.test(v)) return href(['domain', new URL(v).hostname]);
  } catch {
    /* not a URL: fall through */
  }
  if (/^[a-z0-9.-]+\.[a-z0-9-]+$/i.test(v)) return href(['domain', v.toLowerCase()]);
  return href(['search'], { domain: v });
}

function Jump() {
  const [q, setQ] = useState('');
  return (
    <form
      class="jump"
      role="search"
      aria-label="Go to"
      onSubmit={(e) => {
        e.preventDefault();
        const t = jumpTarget(q);
        if (t) navigate(t);
      }}
    >
      <label for="jump">Go to</label>
      <input
        id="jump"
        type="search"
        value={q}
        placeholder="CN, AS4134, youtube.com, measurement id"
        onInput={(e) => setQ((e.currentTarget as HTMLInputElement).value)}
      />
      <button type="submit">Go</button>
    </form>
  );
}

function Page({ route }: { route: Route }) {
  const [head, id] = route.path;
  switch (head) {
    case undefined:
      return <Overview path={[]} params={route.params} />;
    case 'country':
    case 'asn':
    case 'domain':
    case 'region':
      if (id) return <EntityPage key={`${head}/${id}`} kind={head as EntityKind} id={id} path={route.path} params={route.params} />;
      break;
    case 'measurement':
      if (id) return <MeasurementPage key={id} uid={id} />;
      break;
    case 'chart':
      return <ChartPage params={route.params} />;
    case 'search':
      return <SearchPage params={route.params} />;
    case 'platform':
      return <PlatformPage />;
    case 'changes':
      return <ChangesPage params={route.params} />;
    case 'lists':
      return <ListsPage params={route.params} />;
  }
  return (
    <>
      <h1 tabIndex={-1}>Not found</h1>
      <p>
        There is no page at this address. <a href="#/">Back to the overview</a>.
      </p>
    </>
  );
}

function App() {
  const route = useRoute();
  const pathKey = route.path.join('/');
  // Keyboard and screen-reader users land on the new page's heading after a navigation.
  const first = useRef(true);
  useEffect(() => {
    const h = document.querySelector<HTMLElement>('main h1');
    if (first.current) first.current = false;
    else if (h && !h.contains(document.activeElement)) h.focus();
    document.title = `${h?.textContent ?? 'wallscope'} · wallscope explorer`;
  }, [pathKey]);
  const nav: Array<[string, string, boolean]> = [
    ['#/', 'Overview', route.path.length === 0],
    ['#/search', 'Search', route.path[0] === 'search'],
    ['#/changes', 'Changes', route.path[0] === 'changes'],
    ['#/lists', 'Lists', route.path[0] === 'lists'],
    ['#/chart', 'Chart builder', route.path[0] === 'chart'],
    ['#/platform', 'Platforms', route.path[0] === 'platform'],
  ];
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/">
          wallscope
        </a>
        <nav aria-label="Main">
          <ul>
            {nav.map(([to, label, current]) => (
              <li key={to}>
                <a href={to} aria-current={current ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <Jump />
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} />
      </main>
      <footer>
        wallscope explorer · data: this observatory's store (OONI data format) ·{' '}
        <a href="api/v1/aggregation?format=csv">all counts as CSV</a>
      </footer>
    </>
  );
}

render(<App />, document.getElementById('app')!);
