// Puts an app on a socket. Closing the server closes the app (and so drains in-flight requests)
// but not the store: whoever opened the store closes it.
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from './app.js';

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/** "HOST:PORT", "[::1]:PORT" or ":PORT" -> parts; throws on anything else. */
export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]*)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`--listen: expected HOST:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export async function startServer(opts: AppOptions & { host?: string; port?: number }): Promise<RunningServer> {
  const app = await buildApp(opts);
  const host = opts.host ?? '127.0.0.1';
  await app.listen({ host, port: opts.port ?? 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (opts.port ?? 0);
  const h = host.includes(':') ? `[${host}]` : host;
  return { app, url: `http://${h}:${port}`, close: () => app.close() };
}
