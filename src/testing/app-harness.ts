// For the server's tests: buildApp over a fresh SQLite store in a temp dir, all removed when the test ends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { SqliteStore } from '../store/index.js';
import { buildApp, type AppOptions } from '../server/index.js';

export async function appHarness(
  t: { after: (fn: () => unknown) => void },
  opts: Partial<AppOptions> = {},
): Promise<{ app: FastifyInstance; store: SqliteStore; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-server-'));
  const store = new SqliteStore(join(dir, 'db.sqlite'));
  const app = await buildApp({ store, webRoot: false, rateLimit: false, ...opts });
  t.after(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { app, store, dir };
}

/** A valid body of POST /report (OONI's report protocol) for CN AS4134 web_connectivity. */
export const OPEN_REPORT_BODY = {
  data_format_version: '0.2.0',
  format: 'json',
  probe_asn: 'AS4134',
  probe_cc: 'CN',
  software_name: 'wallscope',
  software_version: '0.1.0',
  test_name: 'web_connectivity',
  test_version: '0.4.3',
};

/** POST /report with OPEN_REPORT_BODY and the given keys replaced or added; the collector's answer. */
export function openReport(app: FastifyInstance, over: Record<string, unknown> = {}) {
  return app.inject({ method: 'POST', url: '/report', payload: { ...OPEN_REPORT_BODY, ...over } });
}
