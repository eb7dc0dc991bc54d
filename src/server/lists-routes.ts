// Lists as data (DESIGN.md "Rules and lists"; docs/LISTS.md): the snapshots stored by
// `wallscope lists snapshot|import --store` served for the explorer's Lists page and for export.
//   GET /api/v1/lists/status                          {enabled, dates}
//   GET /api/v1/lists/sizes[?format=csv]              list size (rules, names) per date and layer
//   GET /api/v1/lists/overlap[?date]                  Jaccard of the layers' blocked names, per pair
//   GET /api/v1/lists/diff?from&to[&format=csv]       rules added and removed, each with its block duration
//   GET /api/v1/lists/overblocking[?date][&limit]     the rules that overblock the most
//   GET /api/v1/lists/snapshot[?date][&format=csv]    one snapshot, exported
//   GET /api/v1/lists/history[?format=csv]            each rule's first and last date and duration
// `date` defaults to the newest stored one. The comparisons are src/model/lists.ts (shared with the CLI).
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  diffCsv,
  historyCsv,
  isListDate,
  layerOverlap,
  snapshotCsv,
  timedDiff,
  topOverblocking,
  type ListSnapshot,
} from '../model/index.js';
import type { ListStore } from '../store/index.js';
import { ApiError } from './errors.js';

export interface ListsRoutesOptions {
  /** Absent: no list store configured (buildApp without one); only /status answers, enabled: false. */
  lists?: ListStore;
}

const DATE = { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' } as const;
const FORMAT = { type: 'string', enum: ['json', 'csv'] } as const;
const query = (properties: Record<string, unknown>, required: string[] = []) =>
  ({ querystring: { type: 'object', properties, required, additionalProperties: false } }) as const;

const SCHEMAS = {
  sizes: query({ format: FORMAT }),
  overlap: query({ date: DATE }),
  diff: query({ from: DATE, to: DATE, format: FORMAT }, ['from', 'to']),
  overblocking: query({ date: DATE, limit: { type: 'string', pattern: '^[0-9]{1,4}$' } }),
  snapshot: query({ date: DATE, format: FORMAT }),
  history: query({ format: FORMAT }),
};

type Q = { date?: string; from?: string; to?: string; format?: 'json' | 'csv'; limit?: string };

function csv(reply: FastifyReply, name: string, body: string): FastifyReply {
  return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}.csv"`).send(body);
}

/** The stored snapshot of `date` (default: the newest); 400 for an impossible date, 404 for a missing one. */
function snapshotOf(lists: ListStore, date: string | undefined, key = 'date'): ListSnapshot {
  if (date !== undefined && !isListDate(date)) throw new ApiError('WS_BAD_REQUEST', `${key}: not a calendar date: ${date}`);
  const d = date ?? lists.dates().at(-1);
  const s = d === undefined ? null : lists.snapshot(d);
  if (!s) throw new ApiError('WS_NOT_FOUND', d === undefined ? 'no list snapshot is stored' : `no list snapshot at ${d}`);
  return s;
}

export default async function listsRoutes(app: FastifyInstance, opts: ListsRoutesOptions): Promise<void> {
  app.get('/api/v1/lists/status', async () => ({ enabled: opts.lists !== undefined, dates: opts.lists?.dates() ?? [] }));
  if (!opts.lists) return;
  const { lists } = opts;

  app.get('/api/v1/lists/sizes', { schema: SCHEMAS.sizes }, async (req, reply) => {
    const sizes = lists.sizes();
    if ((req.query as Q).format !== 'csv') return { sizes };
    return csv(
      reply,
      'list-sizes',
      ['date,layer,rules,names', ...sizes.map((s) => `${s.date},${s.layer},${s.rules},${s.names}`)].join('\n') + '\n',
    );
  });

  app.get('/api/v1/lists/overlap', { schema: SCHEMAS.overlap }, async (req) => {
    const s = snapshotOf(lists, (req.query as Q).date);
    return { date: s.date, layers: Object.keys(s.layers).sort(), pairs: layerOverlap(s) };
  });

  app.get('/api/v1/lists/diff', { schema: SCHEMAS.diff }, async (req, reply) => {
    const q = req.query as Q;
    const from = snapshotOf(lists, q.from, 'from');
    const to = snapshotOf(lists, q.to, 'to');
    if (from.date > to.date) throw new ApiError('WS_BAD_REQUEST', `from (${from.date}) is after to (${to.date})`);
    const d = timedDiff(lists.history(to.date), from, to);
    return q.format === 'csv' ? csv(reply, `list-diff-${from.date}-${to.date}`, diffCsv(d)) : d;
  });

  app.get('/api/v1/lists/overblocking', { schema: SCHEMAS.overblocking }, async (req) => {
    const q = req.query as Q;
    const s = snapshotOf(lists, q.date);
    return { date: s.date, rules: topOverblocking(s, Math.min(Number(q.limit ?? 20), 1000)) };
  });

  app.get('/api/v1/lists/snapshot', { schema: SCHEMAS.snapshot }, async (req, reply) => {
    const q = req.query as Q;
    const s = snapshotOf(lists, q.date);
    return q.format === 'csv' ? csv(reply, `list-${s.date}`, snapshotCsv(s)) : s;
  });

  app.get('/api/v1/lists/history', { schema: SCHEMAS.history }, async (req, reply) => {
    const rules = lists.history();
    return (req.query as Q).format === 'csv' ? csv(reply, 'list-history', historyCsv(rules)) : { rules };
  });
}
