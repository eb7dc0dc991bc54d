// Changes over time (DESIGN.md "Contracts of the next capabilities": Changes; "Time"):
//   GET /api/v1/changes?since=ISO8601[&view filters]  {"changes": [...]} exactly per the contract
//   GET /api/v1/changes.atom?[view filters]           the same changes as an Atom feed (RFC 4287)
//   GET /api/v1/states?[view filters][&blocked=true]  the current state per key ("blocked since")
// View filters: probe_cc, probe_asn, region, domain, target, layer (one view = any combination).
// Detection itself is src/model/changes.ts, stored by src/store/changes.ts on ingest.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { changeFilterFrom, type ChangeRecord, type ChangeStore } from '../store/index.js';

export interface ChangesRoutesOptions {
  /** Absent: change detection is off; the routes answer 404 and /api/v1/changes/status says so. */
  changes?: ChangeStore;
}

const xml = (s: string) => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/** "blocked (dns.injection)" / "reachable". */
function stateText(s: { blocking: string | false; mechanism: string }): string {
  return s.blocking === false ? 'reachable' : `blocked (${s.mechanism}, ${s.blocking})`;
}

export function changeTitle(c: ChangeRecord): string {
  const where = `${c.probe_cc} ${c.probe_asn}${c.region ? ` ${c.region}` : ''}`;
  const what =
    c.from.blocking === false
      ? `blocked by ${c.to.mechanism}`
      : c.to.blocking === false
        ? `unblocked (was ${c.from.mechanism})`
        : `${c.from.mechanism} -> ${c.to.mechanism}`;
  return `${c.target} ${what} in ${where}${c.layer ? ` (${c.layer} layer)` : ''}`;
}

/** The base URL the client reached us at (links in the feed). */
function baseUrl(req: FastifyRequest): string {
  const host = req.headers.host ?? 'localhost';
  return `${req.protocol}://${host}`;
}

export function atomFeed(changes: ChangeRecord[], self: string, base: string, title: string): string {
  const updated = changes.reduce((m, c) => (c.detected_at > m ? c.detected_at : m), '1970-01-01T00:00:00Z');
  const entries = changes
    .slice()
    .reverse()
    .map((c) => {
      const links = c.evidence
        .map(
          (uid) =>
            `<link rel="related" type="text/html" title="evidence ${xml(uid)}" href="${xml(`${base}/#/measurement/${encodeURIComponent(uid)}`)}"/>`,
        )
        .join('\n    ');
      const body = `${stateText(c.from)} -> ${stateText(c.to)} since ${c.at}; evidence: ${c.evidence.join(', ')}`;
      return `  <entry>
    <id>urn:wallscope:change:${c.id}</id>
    <title>${xml(changeTitle(c))}</title>
    <updated>${c.detected_at}</updated>
    <published>${c.at}</published>
    <link rel="alternate" type="text/html" href="${xml(`${base}/#/measurement/${encodeURIComponent(c.evidence[c.evidence.length - 1] ?? '')}`)}"/>
    ${links}
    <category term="${xml(c.layer ?? 'unknown')}" label="layer"/>
    <summary>${xml(body)}</summary>
    <content type="application/json">${xml(JSON.stringify(publicChange(c)))}</content>
  </entry>`;
    })
    .join('\n');
  return `<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>${xml(self)}</id>
  <title>${xml(title)}</title>
  <updated>${updated}</updated>
  <link rel="self" type="application/atom+xml" href="${xml(self)}"/>
  <generator>wallscope</generator>
${entries}
</feed>
`;
}

/** A change as the contract spells it (plus its id and detection time, which extend it). */
export function publicChange(c: ChangeRecord): Record<string, unknown> {
  return {
    target: c.target,
    probe_cc: c.probe_cc,
    probe_asn: c.probe_asn,
    region: c.region,
    layer: c.layer,
    at: c.at,
    from: c.from,
    to: c.to,
    evidence: c.evidence,
    id: c.id,
    detected_at: c.detected_at,
  };
}

const VIEW_KEYS = ['since', 'probe_cc', 'probe_asn', 'region', 'domain', 'target', 'layer', 'limit'];

function viewTitle(q: Record<string, unknown>): string {
  const parts = ['probe_cc', 'probe_asn', 'region', 'domain', 'target', 'layer']
    .filter((k) => typeof q[k] === 'string' && q[k])
    .map((k) => `${k}=${String(q[k])}`);
  return `wallscope changes${parts.length ? ` (${parts.join(', ')})` : ''}`;
}

export default async function changesRoutes(app: FastifyInstance, opts: ChangesRoutesOptions): Promise<void> {
  // The explorer asks this first, so that a server without change detection shows no broken panel.
  app.get('/api/v1/changes/status', async () => ({
    enabled: opts.changes !== undefined,
    ...(opts.changes ? { confirmations: opts.changes.confirmations } : {}),
  }));
  if (!opts.changes) return;
  const { changes } = opts;
  const query = {
    type: 'object',
    properties: Object.fromEntries([...VIEW_KEYS, 'blocked'].map((k) => [k, { type: 'string', maxLength: 2048 }])),
    additionalProperties: false,
  } as const;

  app.get('/api/v1/changes', { schema: { querystring: query } }, async (req) => {
    const f = changeFilterFrom(req.query as Record<string, unknown>);
    return { changes: changes.list(f).map(publicChange) };
  });

  app.get('/api/v1/changes.atom', { schema: { querystring: query } }, async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const f = changeFilterFrom(q);
    // A feed shows the latest changes: the newest `limit` (default 100), detection order.
    const all = changes.list({ ...f, limit: 10_000 });
    const latest = all.sort((a, b) => a.id - b.id).slice(-(f.limit ?? 100));
    const base = baseUrl(req);
    reply.type('application/atom+xml; charset=utf-8');
    return atomFeed(latest, `${base}${req.url}`, base, viewTitle(q));
  });

  app.get('/api/v1/states', { schema: { querystring: query } }, async (req) => {
    const q = req.query as Record<string, unknown>;
    const { since: _s, layer: _l, ...f } = changeFilterFrom(q);
    return { states: changes.states({ ...f, blockedOnly: q.blocked === 'true' }) };
  });
}
