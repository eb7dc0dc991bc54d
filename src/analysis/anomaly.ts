// Anomalies on aggregate series (issue 14, "Change detection"): the share of blocked measurements
// of a network, a domain category, a country... jumps from one time bucket to the next. Pure.
//
// Per series, each bucket's share is compared with the pooled share of the `window` buckets
// before it by a two-proportion z-test; a bucket is an anomaly when both samples are big enough
// (minCount), the difference is large in absolute terms (minDelta) AND unlikely to be chance
// (|z| >= minZ). The first is what a reader cares about; the second keeps a handful of
// measurements on a quiet network from raising an alarm. After an anomaly the baseline starts
// again at it: a level shift is reported once, where it happens, not on every bucket after it.

export interface SeriesPoint {
  /** The bucket's label (a day, an hour), in increasing order. */
  bucket: string;
  measurements: number;
  blocked: number;
}

export interface SeriesAnomaly {
  bucket: string;
  share: number;
  baseline_share: number;
  measurements: number;
  baseline_measurements: number;
  z: number;
  direction: 'up' | 'down';
}

export interface AnomalyOptions {
  /** Buckets pooled into the baseline (default 7). */
  window?: number;
  /** Smallest sample of the bucket and of its baseline (default 20). */
  minCount?: number;
  /** Smallest absolute change of the share (default 0.2: 20 points). */
  minDelta?: number;
  /** Smallest |z| (default 3). */
  minZ?: number;
}

export function seriesAnomalies(points: readonly SeriesPoint[], o: AnomalyOptions = {}): SeriesAnomaly[] {
  const window = o.window ?? 7;
  const minCount = o.minCount ?? 20;
  const minDelta = o.minDelta ?? 0.2;
  const minZ = o.minZ ?? 3;
  const out: SeriesAnomaly[] = [];
  let start = 0;
  for (let i = 1; i < points.length; i++) {
    const cur = points[i]!;
    let n0 = 0;
    let b0 = 0;
    for (let j = Math.max(start, i - window); j < i; j++) {
      n0 += points[j]!.measurements;
      b0 += points[j]!.blocked;
    }
    if (cur.measurements < minCount || n0 < minCount) continue;
    const p1 = cur.blocked / cur.measurements;
    const p0 = b0 / n0;
    const pooled = (cur.blocked + b0) / (cur.measurements + n0);
    const se = Math.sqrt(pooled * (1 - pooled) * (1 / cur.measurements + 1 / n0));
    const z = se === 0 ? (p1 === p0 ? 0 : Infinity) * Math.sign(p1 - p0) : (p1 - p0) / se;
    if (Math.abs(p1 - p0) >= minDelta && Math.abs(z) >= minZ) {
      start = i;
      out.push({
        bucket: cur.bucket,
        share: p1,
        baseline_share: p0,
        measurements: cur.measurements,
        baseline_measurements: n0,
        z: Number.isFinite(z) ? Math.round(z * 100) / 100 : z > 0 ? 99 : -99,
        direction: p1 > p0 ? 'up' : 'down',
      });
    }
  }
  return out;
}
