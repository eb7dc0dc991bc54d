// The platform routes (issue 15): what `platform watch` and `platform keywords` stored, summarised
// for the explorer (src/analysis/platform.ts decides), and the IP territory tables that the
// explorer's self-check searches in the browser, so that the user's address never reaches us.
import type { FastifyInstance } from 'fastify';
import { keywordRecord, keywordTable, summarizeWatch, watchRecord, type KeywordRecord, type WatchRecord } from '../analysis/index.js';
import { parseTimeBound, StoreInputError, type MeasurementFilter, type MeasurementStore } from '../store/index.js';

/** The most measurements one summary reads (a bounded request; the answer says when it was cut). */
export const PLATFORM_SUMMARY_MAX = 20_000;

async function collect(
  store: MeasurementStore,
  filter: MeasurementFilter,
  max: number,
): Promise<{ items: Array<{ uid: string; at: string; tk: unknown }>; truncated: boolean }> {
  const items: Array<{ uid: string; at: string; tk: unknown }> = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await store.list(filter, { limit: 500, cursor });
    for (const row of page.results) {
      if (items.length >= max) return { items, truncated: true };
      const m = await store.get(row.measurement_uid);
      if (m) items.push({ uid: row.measurement_uid, at: row.measurement_start_time, tk: m.measurement.test_keys });
    }
    if (!page.next_cursor) return { items, truncated: false };
    cursor = page.next_cursor;
  }
}

export default async function platformRoutes(
  app: FastifyInstance,
  opts: { store: MeasurementStore; territoryTables?: () => unknown },
): Promise<void> {
  const store = opts.store;

  app.get<{ Querystring: { since?: string; until?: string; platform?: string } }>(
    '/api/v1/platform/summary',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            since: { type: 'string', maxLength: 40 },
            until: { type: 'string', maxLength: 40 },
            platform: { type: 'string', maxLength: 300 },
          },
        },
      },
    },
    async (req) => {
      const base: MeasurementFilter = {};
      if (req.query.since) base.since = parseTimeBound(req.query.since, 'since');
      if (req.query.until) base.until = parseTimeBound(req.query.until, 'until');
      if (base.since !== undefined && base.until !== undefined && base.since >= base.until)
        throw new StoreInputError('since must be before until');
      const watch = await collect(store, { ...base, test_name: 'x_platform_watch' }, PLATFORM_SUMMARY_MAX);
      const kw = await collect(store, { ...base, test_name: 'x_platform_keywords' }, PLATFORM_SUMMARY_MAX);
      const wanted = (p: string) => !req.query.platform || p === req.query.platform;
      const records = watch.items.map((i) => watchRecord(i.uid, i.tk)).filter((r): r is WatchRecord => r !== null && wanted(r.platform));
      const keywords = kw.items
        .map((i) => keywordRecord(i.uid, i.at, i.tk))
        .filter((r): r is KeywordRecord => r !== null && wanted(r.platform));
      return { platforms: summarizeWatch(records), keywords: keywordTable(keywords), truncated: watch.truncated || kw.truncated };
    },
  );

  // The same tables and rule as `wallscope whereami` (src/probe/territory.ts, handed over by the
  // cli); static, so cacheable.
  const load = opts.territoryTables;
  if (!load) return;
  let tables: string | null = null;
  app.get('/api/v1/platform/territory-tables', async (_req, reply) => {
    tables ??= JSON.stringify(load());
    reply.header('cache-control', 'public, max-age=86400').type('application/json; charset=utf-8');
    return tables;
  });
}
