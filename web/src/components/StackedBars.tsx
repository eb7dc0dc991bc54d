// Stacked bars (ok, anomaly, confirmed, failure, or the values of a second axis) drawn with uPlot. uPlot has no stacking of its
// own: each series is the running total up to that class, drawn from the tallest down so every
// class shows as its own band. On top of the canvas, one transparent button per bar: a bar is
// clickable and reachable by keyboard, and screen readers hear its counts.
import type { RefObject } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Counts } from '../api.js';
import { COUNT_COLOR, COUNT_KEYS, COUNT_LABEL, fmtInt, type CountKey } from '../format.js';

export interface Bar {
  /** x value: unix seconds for time axes, index for categories. */
  x: number;
  label: string;
  counts: Counts;
}

interface Props {
  title: string;
  bars: Bar[];
  time: boolean;
  /** Width of one bar in x units (seconds for time axes, 1 for categories). */
  step: number;
  selected?: number | null;
  onSelect?: (i: number) => void;
  /** Stack by these series instead of the status counts: values[bar][series]. */
  split?: { series: Array<{ label: string; color: string }>; values: number[][] };
}

interface Layer {
  label: string;
  color: string;
  vals: number[];
}

const VALUE: Record<CountKey, keyof Counts> = {
  ok: 'ok_count',
  anomaly: 'anomaly_count',
  confirmed: 'confirmed_count',
  failure: 'failure_count',
};

type Slot = { left: number; width: number; top: number; height: number };

export function StackedBars({ title, bars, time, step, selected, onSelect, split }: Props) {
  const layers = layersOf(bars, split);
  const host = useRef<HTMLDivElement>(null); // uPlot's own; preact renders nothing inside it
  const wrap = useRef<HTMLDivElement>(null);
  const slots = useBarPlot(host, wrap, bars, layers, time, step, split);
  const [focusIdx, setFocusIdx, onKey] = useRovingFocus(bars.length, selected);

  if (bars.length === 0) return <p class="empty">No measurements match.</p>;
  return (
    <figure class="chart">
      <figcaption>
        <span class="chart-title">{title}</span>
        <span class="legend" aria-hidden="true">
          {layers.map((l) => (
            <span key={l.label} class="legend-item">
              <span class="swatch" style={{ background: l.color }} />
              {l.label}
            </span>
          ))}
        </span>
      </figcaption>
      <div class="chart-host" ref={wrap}>
        <div ref={host} />
        <div class="bar-slots" role="group" aria-label={`${title}: one button per bar; arrow keys move between bars`} onKeyDown={onKey}>
          {slots.map((s, i) => {
            const b = bars[i];
            if (!b) return null;
            const text = barText(b, i, layers, split !== undefined);
            return (
              <button
                key={i}
                type="button"
                class={'bar-slot' + (selected === i ? ' selected' : '')}
                style={{ left: `${s.left}px`, width: `${s.width}px`, top: `${s.top}px`, height: `${s.height}px` }}
                aria-label={text}
                aria-pressed={selected === i}
                title={text}
                data-bar={b.label}
                // Roving tab stop: one Tab reaches the chart, arrows walk its bars (a year is 365 bars).
                tabIndex={i === focusIdx ? 0 : -1}
                onFocus={() => setFocusIdx(i)}
                onClick={() => onSelect?.(i)}
              />
            );
          })}
        </div>
      </div>
    </figure>
  );
}

/** The layers to stack, bottom layer first: the second axis's series, else the status counts. */
function layersOf(bars: Bar[], split: Props['split']): Layer[] {
  return split
    ? split.series.map((se, j) => ({ label: se.label, color: se.color, vals: bars.map((_, i) => split.values[i]?.[j] ?? 0) }))
    : COUNT_KEYS.map((k) => ({ label: COUNT_LABEL[k], color: COUNT_COLOR[k], vals: bars.map((b) => b.counts[VALUE[k]] ?? 0) }));
}

/** What a screen reader hears (and a tooltip shows) for one bar. */
function barText(b: Bar, i: number, layers: Layer[], split: boolean): string {
  const c = b.counts;
  return split
    ? `${b.label}: ${fmtInt(c.measurement_count)} measurements; ${layers
        .filter((l) => l.vals[i])
        .map((l) => `${l.label} ${fmtInt(l.vals[i]!)}`)
        .join(', ')}`
    : `${b.label}: ${fmtInt(c.measurement_count)} measurements, ${fmtInt(c.ok_count)} ok, ${fmtInt(
        c.anomaly_count,
      )} anomalies, ${fmtInt(c.confirmed_count)} confirmed, ${fmtInt(c.failure_count)} failures`;
}

/** Arrow keys, Home and End move the one focusable bar (a roving tab stop). */
function useRovingFocus(count: number, selected: number | null | undefined) {
  const [focusIdx, setFocusIdx] = useState(() => (selected != null && selected >= 0 ? selected : count - 1));
  const onKey = (e: KeyboardEvent) => {
    const last = count - 1;
    const to =
      e.key === 'ArrowLeft' ? focusIdx - 1 : e.key === 'ArrowRight' ? focusIdx + 1 : e.key === 'Home' ? 0 : e.key === 'End' ? last : null;
    if (to === null) return;
    e.preventDefault();
    const i = Math.max(0, Math.min(last, to));
    setFocusIdx(i);
    (e.currentTarget as HTMLElement).querySelectorAll<HTMLButtonElement>('.bar-slot')[i]?.focus();
  };
  return [focusIdx, setFocusIdx, onKey] as const;
}

/** Draws the bars with uPlot in `host`; the bars' boxes relative to `wrap`, for the buttons over them. */
function useBarPlot(
  host: RefObject<HTMLDivElement | null>,
  wrap: RefObject<HTMLDivElement | null>,
  bars: Bar[],
  layers: Layer[],
  time: boolean,
  step: number,
  split: Props['split'],
): Slot[] {
  const [slots, setSlots] = useState<Slot[]>([]);
  useLayoutEffect(() => {
    const el = host.current;
    const box = wrap.current;
    if (!el || !box || bars.length === 0) return;
    const xs = bars.map((b) => b.x);
    const drawOrder = layers.map((_, j) => j).reverse(); // tallest (total) first
    const cum = runningTotals(layers, bars.length);
    const data: uPlot.AlignedData = [xs, ...drawOrder.map((j) => cum[j]!)];
    const opts = plotOptions(bars, layers, drawOrder, time, step, Math.max(320, box.clientWidth || 800), (u) => {
      const over = u.over.getBoundingClientRect();
      const base = box.getBoundingClientRect();
      const left0 = over.left - base.left;
      const top0 = over.top - base.top;
      const w = Math.max(6, Math.abs(u.valToPos(xs[0]! + step, 'x') - u.valToPos(xs[0]!, 'x')) * 0.9);
      setSlots(
        xs.map((x) => ({
          left: left0 + u.valToPos(x, 'x') - w / 2,
          width: w,
          top: top0,
          height: over.height,
        })),
      );
    });
    const plot = new uPlot(opts, data, el);
    return () => plot.destroy();
  }, [bars, time, step, split]);
  return slots;
}

/** Running totals, bottom layer first: uPlot has no stacking, each band is drawn to its total. */
function runningTotals(layers: Layer[], n: number): number[][] {
  const cum: number[][] = [];
  let run = Array.from({ length: n }, () => 0);
  for (const l of layers) {
    run = run.map((v, i) => v + l.vals[i]!);
    cum.push(run);
  }
  return cum;
}

function plotOptions(
  bars: Bar[],
  layers: Layer[],
  drawOrder: number[],
  time: boolean,
  step: number,
  width: number,
  onDraw: (u: uPlot) => void,
): uPlot.Options {
  const xs = bars.map((b) => b.x);
  const minX = Math.min(...xs) - step / 2;
  const maxX = Math.max(...xs) + step / 2;
  const series: uPlot.Series[] = [
    {},
    ...drawOrder.map((j) => ({
      label: layers[j]!.label,
      fill: layers[j]!.color,
      stroke: layers[j]!.color,
      width: 0,
      paths: uPlot.paths.bars!({ size: [0.8, 80], align: 0 }),
      points: { show: false },
    })),
  ];
  return {
    width,
    height: 260,
    legend: { show: false },
    cursor: { show: false },
    select: { show: false, left: 0, top: 0, width: 0, height: 0 },
    scales: {
      x: { time, range: () => [minX, maxX] },
      y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.05] },
    },
    axes: [
      time
        ? { stroke: '#24292f', grid: { show: false } }
        : {
            stroke: '#24292f',
            grid: { show: false },
            splits: () => xs,
            values: (_u, splits) => splits.map((s) => bars[Math.round(s)]?.label ?? ''),
          },
      { stroke: '#24292f', grid: { stroke: '#e5e7eb' } },
    ],
    series,
    hooks: { draw: [onDraw] },
  };
}
