// Hash routing: every view is a permalink (`#/country/CN?since=2026-01-01`, `#/measurement/<uid>`).
// The hash holds a path and a query string; the query carries the view's filters.
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  /** Decoded path segments: `#/asn/AS4134` -> ['asn', 'AS4134']. */
  path: string[];
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const h = hash.replace(/^#/, '');
  const q = h.indexOf('?');
  const pathPart = q < 0 ? h : h.slice(0, q);
  const query = q < 0 ? '' : h.slice(q + 1);
  const path = pathPart
    .split('/')
    .filter((s) => s !== '')
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s; // Robustness: a hand-edited, malformed escape stays as typed.
      }
    });
  return { path, params: new URLSearchParams(query) };
}

/** Builds a hash link; empty and undefined params are dropped so permalinks stay short. */
export function href(path: string[], params?: Record<string, string | undefined | null> | URLSearchParams): string {
  const p = new URLSearchParams();
  if (params instanceof URLSearchParams) params.forEach((v, k) => v !== '' && p.set(k, v));
  else if (params) for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const qs = p.toString();
  return '#/' + path.map(encodeURIComponent).join('/') + (qs ? '?' + qs : '');
}

export function navigate(to: string): void {
  if (location.hash !== to) location.hash = to;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** Params of a route as a plain object, to merge into a new link. */
export function paramsObject(p: URLSearchParams): Record<string, string> {
  const o: Record<string, string> = {};
  p.forEach((v, k) => (o[k] = v));
  return o;
}
