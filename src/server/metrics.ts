// Prometheus text exposition (format 0.0.4) for the few series the server keeps. Label values
// are escaped as the format requires; cardinality is bounded (route patterns, not URLs).
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function labels(l: Record<string, string>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export class Metrics {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();
  private readonly histos = new Map<string, { help: string; series: Map<string, { buckets: number[]; sum: number; count: number }> }>();
  private readonly gauges = new Map<string, { help: string; read: () => number }>();

  counter(name: string, help: string): (l?: Record<string, string>, by?: number) => void {
    const c = { help, values: new Map<string, number>() };
    this.counters.set(name, c);
    return (l = {}, by = 1) => {
      const k = labels(l);
      c.values.set(k, (c.values.get(k) ?? 0) + by);
    };
  }

  histogram(name: string, help: string): (l: Record<string, string>, seconds: number) => void {
    const h = { help, series: new Map<string, { buckets: number[]; sum: number; count: number }>() };
    this.histos.set(name, h);
    return (l, seconds) => {
      const k = JSON.stringify(l);
      let s = h.series.get(k);
      if (!s) h.series.set(k, (s = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }));
      for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]) s.buckets[i]++;
      s.sum += seconds;
      s.count++;
    };
  }

  gauge(name: string, help: string, read: () => number): void {
    this.gauges.set(name, { help, read });
  }

  render(): string {
    const out: string[] = [];
    for (const [name, c] of this.counters) {
      out.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [k, v] of c.values) out.push(`${name}${k} ${v}`);
    }
    for (const [name, h] of this.histos) {
      out.push(`# HELP ${name} ${h.help}`, `# TYPE ${name} histogram`);
      for (const [k, s] of h.series) {
        const l = JSON.parse(k) as Record<string, string>;
        BUCKETS.forEach((b, i) => out.push(`${name}_bucket${labels({ ...l, le: String(b) })} ${s.buckets[i]}`));
        out.push(`${name}_bucket${labels({ ...l, le: '+Inf' })} ${s.count}`, `${name}_sum${labels(l)} ${s.sum}`, `${name}_count${labels(l)} ${s.count}`);
      }
    }
    for (const [name, g] of this.gauges) out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`, `${name} ${g.read()}`);
    return out.join('\n') + '\n';
  }
}
