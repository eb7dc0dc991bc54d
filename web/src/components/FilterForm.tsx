// Filters of a view, kept in the URL hash so the view stays a permalink. Every control is labelled.
import { useState } from 'preact/hooks';
import { LAYERS, MECHANISMS } from '../format.js';
import { href, navigate } from '../router.js';

export type FilterField =
  'domain' | 'probe_cc' | 'probe_asn' | 'region' | 'test_name' | 'mechanism' | 'layer' | 'since' | 'until' | 'time_grain';

const LABEL: Record<FilterField, string> = {
  domain: 'Domain',
  probe_cc: 'Country (CC)',
  probe_asn: 'Network (ASN)',
  region: 'Region (self-declared)',
  test_name: 'Test',
  mechanism: 'Mechanism',
  layer: 'Layer',
  since: 'Since',
  until: 'Until',
  time_grain: 'Time grain',
};

export function FilterForm({
  path,
  params,
  fields,
  idPrefix = 'f',
  extra,
}: {
  path: string[];
  params: URLSearchParams;
  fields: FilterField[];
  idPrefix?: string;
  /** Params kept as they are (e.g. chart axes). */
  extra?: Record<string, string>;
}) {
  const [vals, setVals] = useState<Record<string, string>>(() => Object.fromEntries(fields.map((f) => [f, params.get(f) ?? ''])));
  const set = (f: string) => (e: Event) => setVals({ ...vals, [f]: (e.currentTarget as HTMLInputElement).value });
  const submit = (e: Event) => {
    e.preventDefault();
    navigate(href(path, { ...extra, ...vals }));
  };
  return (
    <form class="filters" onSubmit={submit} role="search" aria-label="Filters">
      {fields.map((f) => {
        const id = `${idPrefix}-${f}`;
        const v = vals[f] ?? '';
        let control;
        if (f === 'mechanism' || f === 'layer') {
          const opts = f === 'mechanism' ? MECHANISMS : LAYERS;
          control = (
            <select id={id} name={f} value={v} onChange={set(f)}>
              <option value="">any</option>
              {opts.map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          );
        } else if (f === 'time_grain') {
          control = (
            <select id={id} name={f} value={v} onChange={set(f)}>
              <option value="">auto</option>
              <option value="day">day</option>
              <option value="week">week</option>
              <option value="month">month</option>
            </select>
          );
        } else if (f === 'since' || f === 'until') {
          control = <input id={id} name={f} type="date" value={v} onInput={set(f)} />;
        } else {
          const ph =
            f === 'probe_cc'
              ? 'CN'
              : f === 'probe_asn'
                ? 'AS4134'
                : f === 'region'
                  ? 'Henan'
                  : f === 'domain'
                    ? 'youtube.com'
                    : 'web_connectivity';
          control = (
            <input id={id} name={f} type="text" value={v} placeholder={ph} onInput={set(f)} autocomplete="off" spellcheck={false} />
          );
        }
        return (
          <div class="field" key={f}>
            <label for={id}>{LABEL[f]}</label>
            {control}
          </div>
        );
      })}
      <div class="field field-actions">
        <button type="submit">Apply</button>
      </div>
    </form>
  );
}
