// The explorer's static files (web/dist), served read-only from one directory by @fastify/static:
// no path leaves it (send's root check), no dotfiles, no listing, and the explorer runs under a CSP
// without inline script (app.ts). Unknown paths get the API's JSON 404.
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { existsSync, realpathSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';

/** Serves `dir` at / when it holds a built explorer (index.html); false when it does not. */
export async function registerStatic(app: FastifyInstance, dir: string): Promise<boolean> {
  if (!existsSync(join(resolve(dir), 'index.html'))) return false;
  // The real path: a symlink inside the folder cannot point send outside it.
  const root = realpathSync(resolve(dir));
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    index: ['index.html'],
    list: false,
    dotfiles: 'deny',
    cacheControl: false,
    setHeaders: (res, file) => {
      // JavaScript is text/javascript (RFC 9239); send still says application/javascript.
      if (/\.m?js$/.test(file)) res.header('content-type', 'text/javascript; charset=utf-8');
      // Hashed asset names never change; the page itself is always revalidated.
      res.header('cache-control', file.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  return true;
}
