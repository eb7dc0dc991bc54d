// The genuine web servers of the lab's sites, behind the censor fronts: one HTTP and one HTTPS
// server for every site, choosing the site by Host (HTTP) and SNI (TLS). Certificates come from the
// lab CA, issued lazily per name and cached; the QA cases' bad certificates (expired, wrong name,
// unknown authority) are made on purpose when a site asks for them.
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import type { SiteSpec } from '../model/index.js';
import { createCA, issueCert, type CA } from '../probe/index.js';

export interface Origin {
  host: string;
  httpPort: number;
  httpsPort: number;
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;

export function sitePage(site: SiteSpec): string {
  const title = site.page?.title ?? site.domain;
  const bytes = site.page?.bytes ?? 1200;
  const head = `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>Served by the wallscope lab.</p>`;
  const tail = '</body></html>';
  // Deterministic filler so that a body comparison with the control is stable.
  let filler = '';
  const line = `<p>${site.domain} lorem ipsum dolor sit amet.</p>\n`;
  while (head.length + filler.length + tail.length < bytes) filler += line;
  return (head + filler).slice(0, Math.max(head.length, bytes - tail.length)) + tail;
}

/** A CDN's interstitial challenge (shaped like Cloudflare's "Just a moment..." page). */
export function challengePage(): string {
  return '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head><body><div class="main-wrapper" role="main"><div class="main-content"><h1>Checking if the site connection is secure</h1><p>Enable JavaScript and cookies to continue</p></div></div></body></html>';
}

export interface OriginOptions {
  host: string;
  ca: CA;
  sites: SiteSpec[];
  /** Rewrites a redirect's Location (the lab puts its ports into URLs of its own sites). */
  rewriteLocation?: (location: string) => string;
  /** Clients a `captcha` site serves genuinely (the test helper); everyone else gets the challenge. */
  exempt?: ReadonlySet<string>;
}

export async function startOrigin(opts: OriginOptions): Promise<Origin> {
  const byName = new Map(opts.sites.map((s) => [s.domain, s]));
  const contextFor = siteContexts(opts.ca, byName);
  // Handshakes without SNI (or with a name of no site) get this certificate.
  const fallback = await issueCert(opts.ca, ['lab.invalid']);
  const handler = siteHandler(opts, byName);

  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const h1 = http.createServer(handler);
  const h2 = https.createServer(
    {
      SNICallback: (name, cb) => {
        contextFor(name.toLowerCase()).then(
          (c) => cb(null, c),
          (e: Error) => cb(e),
        );
      },
      cert: fallback.chainPem,
      key: fallback.keyPem,
    },
    handler,
  );
  for (const s of [h1, h2]) {
    s.on('connection', track);
    s.keepAliveTimeout = 1000;
    s.on('clientError', (_e, sock) => sock.destroy());
  }
  h2.on('tlsClientError', () => undefined);
  const listen = (s: net.Server) =>
    new Promise<number>((res, rej) => {
      s.once('error', rej);
      s.listen(0, opts.host, () => res((s.address() as net.AddressInfo).port));
    });
  const httpPort = await listen(h1);
  const httpsPort = await listen(h2);
  return {
    host: opts.host,
    httpPort,
    httpsPort,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([h1, h2].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

/** Each site's TLS context, made on first use: its `cert` kind (valid, expired, wrong-name, untrusted). */
function siteContexts(ca: CA, byName: Map<string, SiteSpec>): (name: string) => Promise<tls.SecureContext> {
  let otherCA: CA | null = null;
  const contexts = new Map<string, Promise<tls.SecureContext>>();
  return (name) => {
    let p = contexts.get(name);
    if (!p) {
      p = (async () => {
        const site = byName.get(name);
        const kind = site?.cert ?? 'valid';
        let cert;
        if (kind === 'expired')
          cert = await issueCert(ca, [name], {
            notBefore: new Date(Date.now() - 60 * DAY_MS),
            notAfter: new Date(Date.now() - 30 * DAY_MS),
          });
        else if (kind === 'wrong-name') cert = await issueCert(ca, [`wrong-name.${name}.invalid`]);
        else if (kind === 'untrusted') cert = await issueCert((otherCA ??= await createCA('wallscope untrusted CA')), [name]);
        else cert = await issueCert(ca, [name]);
        return tls.createSecureContext({ cert: cert.chainPem, key: cert.keyPem });
      })();
      contexts.set(name, p);
    }
    return p;
  };
}

/** The sites over HTTP and HTTPS: by Host (else SNI), a page, a redirect or a captcha challenge. */
function siteHandler(opts: OriginOptions, byName: Map<string, SiteSpec>): http.RequestListener {
  const pages = new Map<string, string>();
  const pageOf = (s: SiteSpec) => {
    let p = pages.get(s.domain);
    if (p === undefined) pages.set(s.domain, (p = sitePage(s)));
    return p;
  };
  return (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    const sni = (req.socket as tls.TLSSocket).servername;
    const site = byName.get(host) ?? (typeof sni === 'string' ? byName.get(sni) : undefined);
    req.resume();
    if (!site) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such site in this lab\n');
      return;
    }
    if (site.captcha && !opts.exempt?.has(req.socket.remoteAddress ?? '')) {
      const page = challengePage();
      res
        .writeHead(503, {
          'content-type': 'text/html; charset=UTF-8',
          'content-length': Buffer.byteLength(page),
          'cache-control': 'private, max-age=0, no-store',
          server: 'cloudflare',
          'cf-mitigated': 'challenge',
        })
        .end(page);
      return;
    }
    if (site.redirect !== undefined) {
      res
        .writeHead(302, { location: opts.rewriteLocation ? opts.rewriteLocation(site.redirect) : site.redirect, 'content-length': '0' })
        .end();
      return;
    }
    const body = pageOf(site);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
  };
}
