// One data-loading hook: refetches when the key changes, aborts the stale request, and reports
// errors as data (a page shows them; it never breaks on a bad answer).
import { useEffect, useState } from 'preact/hooks';

export type Loaded<T> = { state: 'loading' } | { state: 'error'; error: string } | { state: 'ok'; data: T };

export function useFetch<T>(key: string | null, load: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const [v, setV] = useState<Loaded<T>>({ state: 'loading' });
  useEffect(() => {
    if (key === null) return;
    const ac = new AbortController();
    setV({ state: 'loading' });
    load(ac.signal).then(
      (data) => !ac.signal.aborted && setV({ state: 'ok', data }),
      (err: unknown) => !ac.signal.aborted && setV({ state: 'error', error: err instanceof Error ? err.message : String(err) }),
    );
    return () => ac.abort();
  }, [key]);
  return v;
}
