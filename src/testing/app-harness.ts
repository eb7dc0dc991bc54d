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
