// Country, network (ASN), region and domain pages: the same view over a different filter.
import type { Axis, Filters } from '../api.js';
import { Breakdown } from '../components/Breakdown.js';
import { FilterForm } from '../components/FilterForm.js';
import { TimeSeries } from '../components/TimeSeries.js';
import { href } from '../router.js';
import { DomainTimeline } from './Changes.js';

export type EntityKind = 'country' | 'asn' | 'domain' | 'region';

const KEY: Record<EntityKind, keyof Filters> = { country: 'probe_cc', asn: 'probe_asn', domain: 'domain', region: 'region' };
const TITLE: Record<EntityKind, string> = { country: 'Country', asn: 'Network', domain: 'Domain', region: 'Region' };
const RELATED: Record<EntityKind, Axis[]> = {
  country: ['probe_asn', 'region', 'domain'],
  asn: ['domain', 'region', 'probe_cc'],
  domain: ['probe_cc', 'probe_asn', 'region'],
  region: ['domain', 'probe_asn', 'probe_cc'],
};

/**
 * Normalises what a person types: "cn" -> "CN", "4134" -> "AS4134", "YouTube.com" -> "youtube.com";
 * a region as the store keeps it (whitespace collapsed and trimmed; case kept, it matches exactly).
 */
export function normaliseEntity(kind: EntityKind, raw: string): string {
  const v = raw.trim();
  if (kind === 'country') return v.toUpperCase();
  if (kind === 'asn') return /^\d+$/.test(v) ? `AS${v}` : v.toUpperCase();
  if (kind === 'domain') return v.toLowerCase();
  if (kind === 'region') return v.replace(/\s+/g, ' ');
  return v;
}

export function EntityPage({ kind, id, path, params }: { kind: EntityKind; id: string; path: string[]; params: URLSearchParams }) {
  const value = normaliseEntity(kind, id);
  const filters: Filters = { [KEY[kind]]: value };
  for (const k of ['since', 'until', 'mechanism', 'layer', 'test_name'] as const) {
    const v = params.get(k);
    if (v) filters[k] = v;
  }
  return (
    <>
      <h1 tabIndex={-1}>
        {TITLE[kind]}: <span class="entity">{value}</span>
      </h1>
      {kind === 'region' && (
        <p class="note">
          A region is what the volunteer declared when measuring (<code>wallscope measure --region</code>, kept in{' '}
          <code>annotations.region</code>); it is never derived from the address. OONI's own measurements carry none.
        </p>
      )}
      <EntityData kind={kind} value={value} filters={filters} path={path} params={params} />
      {kind === 'domain' && <DomainTimeline domain={value} />}
    </>
  );
}

function EntityData({
  kind,
  value,
  filters,
  path,
  params,
}: {
  kind: EntityKind;
  value: string;
  filters: Filters;
  path: string[];
  params: URLSearchParams;
}) {
  return (
    <>
      <FilterForm
        key={params.toString()}
        path={path}
        params={params}
        fields={['since', 'until', 'mechanism', 'layer', 'test_name', 'time_grain']}
      />
      <p class="links">
        <a href={href(['chart'], { axis_x: 'measurement_start_day', time_grain: 'day', ...filters })}>Open in the chart builder</a>
        {' · '}
        <a href={href(['search'], filters)}>Search these measurements</a>
        {' · '}
        <a href={href(['changes'], { [KEY[kind]]: value })}>Changes here</a>
      </p>
      <TimeSeries path={path} params={params} filters={filters} title={`${TITLE[kind]} ${value}`} />
      <div class="breakdowns">
        <Breakdown axis="mechanism" filters={filters} />
        <Breakdown axis="layer" filters={filters} />
        {RELATED[kind].map((a) => (
          <Breakdown key={a} axis={a} filters={filters} />
        ))}
      </div>
    </>
  );
}
