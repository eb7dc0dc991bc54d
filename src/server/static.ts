// The explorer's static files (web/dist), served read-only from one directory: no path leaves
// it, no listing, and the explorer runs under a CSP without inline script.
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
};

/** Resolves a URL path to a file inside root, or null (outside, missing, a directory, a dotfile). */
export function staticFile(root: string, urlPath: string): string | null {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  if (rel.includes('\0') || rel.split('/').some((p) => p.startsWith('.'))) return null;
  if (rel === '/' || rel === '') rel = '/index.html';
  const file = resolve(root, '.' + rel);
  if (file !== root && !file.startsWith(root + sep)) return null;
  try {
    if (!statSync(file).isFile()) return null;
    const real = realpathSync(file);
    return real.startsWith(realpathSync(root) + sep) ? real : null;
  } catch {
    return null;
  }
}

export function registerStatic(app: FastifyInstance, dir: string): boolean {
  const root = resolve(dir);
  if (!existsSync(join(root, 'index.html'))) return false;
  const handler = async (req: { url: string }, reply: import('fastify').FastifyReply) => {
    const file = staticFile(root, req.url);
    if (!file) return reply.code(404).type('application/json').send({ error: `not found: ${req.url.slice(0, 200)}`, code: 'WS_NOT_FOUND', statusCode: 404 });
    const type = TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    reply.type(type);
    // Hashed asset names never change; the page itself is always revalidated.
    reply.header('cache-control', file.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
    return reply.send(createReadStream(file));
  };
  app.get('/', handler);
  app.get('/*', handler);
  return true;
}
