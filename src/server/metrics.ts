// The server's metrics in Prometheus text exposition (format 0.0.4), kept by prom-client in a
// registry of their own (no global default registry: two apps in one process, as in the tests,
// do not mix their series). Label names are declared with each series; cardinality is bounded
// (route patterns, not URLs).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  private readonly registry = new Registry();

  counter(name: string, help: string, labelNames: readonly string[] = []): (l?: Record<string, string>, by?: number) => void {
    const c = new Counter({ name, help, labelNames, registers: [this.registry] });
    return (l = {}, by = 1) => c.inc(l, by);
  }

  histogram(name: string, help: string, labelNames: readonly string[] = []): (l: Record<string, string>, seconds: number) => void {
    const h = new Histogram({ name, help, labelNames, buckets: BUCKETS, registers: [this.registry] });
    return (l, seconds) => h.observe(l, seconds);
  }

  /** A value read when /metrics is scraped. */
  gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
