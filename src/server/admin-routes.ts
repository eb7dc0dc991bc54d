// Admin routes (bearer token; disabled without one): POST /api/v1/admin/reanalyze re-runs the
// analysis over the store (reanalyze.ts), DELETE /api/v1/measurement/:uid removes a measurement.
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerContext } from './context.js';
import { createError } from './errors.js';
import { reanalyzeStore } from './reanalyze.js';
import { UidParams } from './schemas.js';

export const ReanalyzeBody = Type.Object(
  { only_outdated: Type.Optional(Type.Boolean()), limit: Type.Optional(Type.Integer({ minimum: 1 })) },
  { additionalProperties: false },
);
export type ReanalyzeBody = Static<typeof ReanalyzeBody>;

export interface AdminOptions extends Pick<ServerContext, 'store' | 'analyze' | 'analysisVersion'> {
  adminToken?: string;
}

export default async function adminRoutes(app: FastifyInstance, opts: AdminOptions): Promise<void> {
  const { store, analyze, analysisVersion } = opts;
  const adminDigest = opts.adminToken ? createHash('sha256').update(opts.adminToken).digest() : null;

  function requireAdmin(req: FastifyRequest): void {
    if (!adminDigest) throw createError('WS_ADMIN_DISABLED', 'admin routes are disabled: start the server with an admin token');
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(h);
    const given = createHash('sha256')
      .update(m ? m[1] : '')
      .digest();
    if (!m || !timingSafeEqual(given, adminDigest)) throw createError('WS_UNAUTHORIZED', 'admin route: missing or wrong bearer token');
  }

  app.post<{ Body: ReanalyzeBody }>('/api/v1/admin/reanalyze', { schema: { body: ReanalyzeBody } }, async (req) => {
    requireAdmin(req);
    const r = await reanalyzeStore(store, analyze, {
      onlyOutdatedFor: req.body.only_outdated ? analysisVersion : undefined,
      limit: req.body.limit,
    });
    req.log.info({ ...r, analysis_version: analysisVersion }, 'reanalyzed');
    return { ...r, analysis_version: analysisVersion };
  });

  app.delete<{ Params: { uid: string } }>('/api/v1/measurement/:uid', { schema: { params: UidParams } }, async (req) => {
    requireAdmin(req);
    if (!(await store.delete(req.params.uid))) throw createError('WS_NOT_FOUND', `no measurement ${req.params.uid}`);
    req.log.info({ measurement_uid: req.params.uid }, 'measurement deleted');
    return { deleted: true, measurement_uid: req.params.uid };
  });
}
