// GET /metrics (Prometheus text exposition, prom-client: metrics.ts) and the server's metrics: request counts and latency
// per route (counted by app.ts's hooks), measurements by ingest result, scrubbed strings, memory,
// uptime and the journal's backlog.
import type { FastifyInstance } from 'fastify';
import { JournaledStore, type MeasurementStore } from '../store/index.js';
import { Metrics } from './metrics.js';

export interface ServerMetrics {
  registry: Metrics;
  countRequest: (l?: Record<string, string>, by?: number) => void;
  observe: (l: Record<string, string>, seconds: number) => void;
  countIngest: (l?: Record<string, string>, by?: number) => void;
  countScrub: (l?: Record<string, string>, by?: number) => void;
}

export function serverMetrics(store: MeasurementStore): ServerMetrics {
  const registry = new Metrics();
  const m: ServerMetrics = {
    registry,
    countRequest: registry.counter('wallscope_http_requests_total', 'HTTP requests by route, method and status.', [
      'route',
      'method',
      'status',
    ]),
    observe: registry.histogram('wallscope_http_request_duration_seconds', 'HTTP request latency by route.', ['route']),
    countIngest: registry.counter('wallscope_measurements_total', 'Submitted measurements by result (stored, duplicate, rejected).', [
      'result',
    ]),
    countScrub: registry.counter('wallscope_scrubbed_strings_total', "Strings from which the collector removed the submitter's address."),
  };
  registry.gauge('process_resident_memory_bytes', 'Resident memory of the server process.', () => process.memoryUsage().rss);
  registry.gauge('wallscope_uptime_seconds', 'Seconds since the app was built.', () => process.uptime());
  if (store instanceof JournaledStore) {
    registry.gauge(
      'wallscope_journal_backlog',
      'Measurements acknowledged from the local journal and not yet shipped to the store.',
      () => store.stats().backlog,
    );
    registry.gauge(
      'wallscope_journal_refused',
      'Journaled measurements the store refused alone (kept in the journal file).',
      () => store.stats().refused,
    );
    registry.gauge(
      'wallscope_journal_failed_shipments',
      'Shipments from the journal that failed (retried with backoff).',
      () => store.stats().failedShipments,
    );
  }
  return m;
}

export default async function metricsRoutes(app: FastifyInstance, opts: { metrics: ServerMetrics }): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    reply.type(opts.metrics.registry.contentType);
    return opts.metrics.registry.render();
  });
}
