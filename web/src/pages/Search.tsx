// Search: measurements by domain, country, network, region, mechanism, layer, test and date.
import type { Filters } from '../api.js';
import { FilterForm } from '../components/FilterForm.js';
import { MeasurementList } from '../components/MeasurementList.js';
import { href } from '../router.js';

const KEYS = ['domain', 'probe_cc', 'probe_asn', 'region', 'test_name', 'mechanism', 'layer', 'since', 'until'] as const;

export function SearchPage({ params }: { params: URLSearchParams }) {
  const filters: Filters = {};
  for (const k of KEYS) {
    const v = params.get(k)?.trim();
    if (v) filters[k] = k === 'probe_cc' ? v.toUpperCase() : k === 'probe_asn' && /^\d+$/.test(v) ? `AS${v}` : v;
  }
  const described = Object.entries(filters)
    .map(([k, v]) => `${k} = ${v}`)
    .join(', ');
  return (
    <>
      <h1 tabIndex={-1}>Search measurements</h1>
      <FilterForm key={JSON.stringify(filters)} path={['search']} params={params} fields={[...KEYS]} idPrefix="s" />
      <p class="links">
        <a href={href(['chart'], { axis_x: 'measurement_start_day', time_grain: 'day', ...filters })}>Chart these</a>
      </p>
      <MeasurementList filters={filters} caption={described ? `Measurements where ${described}` : 'All measurements, newest first'} />
    </>
  );
}
