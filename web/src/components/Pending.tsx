// What a fetched panel shows until its data is there: a busy note while it loads (the browser tests
// and assistive technology wait on aria-busy), an alert with the reason when it failed.
import type { Loaded } from '../useFetch.js';

type NotYet = Exclude<Loaded<unknown>, { state: 'ok' }>;

export function Pending({ res, loading = 'Loading…', failed = '' }: { res: NotYet; loading?: string; failed?: string }) {
  if (res.state === 'loading') return <p aria-busy="true">{loading}</p>;
  return (
    <p role="alert" class="error">
      {failed}
      {res.error}
    </p>
  );
}
