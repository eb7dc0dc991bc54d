// Stacking bars by the values of a second axis (mechanism, layer, country ...): the most frequent
// values each get a colour, the rest are "other".
import type { AggregationRow } from './api.js';

// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
export const SPLIT_COLORS = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#56B4E9', '#CC79A7', '#F0E442', '#000000'];
const NEUTRAL = '#8c959f';

export interface Split {
  series: Array<{ label: string; color: string }>;
  /** values[bar][series] */
  values: number[][];
}

const yOf = (r: AggregationRow, axisY: string) =>
  r[axisY] === null || r[axisY] === undefined || r[axisY] === '' ? '(none)' : String(r[axisY]);

/**
 * rows: aggregation rows with both axes; barOf: the bar key of a row (null to skip it);
 * barKeys: the bars in display order.
 */
export function buildSplit(rows: AggregationRow[], axisY: string, barOf: (r: AggregationRow) => string | null, barKeys: string[]): Split {
  const totals = new Map<string, number>();
  for (const r of rows) totals.set(yOf(r, axisY), (totals.get(yOf(r, axisY)) ?? 0) + r.measurement_count);
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([y]) => y);
  const top = ranked.slice(0, ranked.length > SPLIT_COLORS.length ? SPLIT_COLORS.length - 1 : SPLIT_COLORS.length);
  const other = ranked.length > top.length;
  // "none"/"(none)" (nothing blocked, or not decided) in neutral grey so the blocking values stand out.
  let c = 0;
  const series = top.map((y) => ({ label: y, color: y === 'none' || y === '(none)' ? NEUTRAL : SPLIT_COLORS[c++]! }));
  if (other) series.push({ label: 'other', color: '#57606a' });
  const index = new Map(barKeys.map((k, i) => [k, i]));
  const values = barKeys.map(() => series.map(() => 0));
  for (const r of rows) {
    const b = barOf(r);
    const i = b === null ? undefined : index.get(b);
    if (i === undefined) continue;
    const j = top.indexOf(yOf(r, axisY));
    values[i]![j >= 0 ? j : series.length - 1]! += r.measurement_count;
  }
  return { series, values };
}
