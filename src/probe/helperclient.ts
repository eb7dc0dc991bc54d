// The probe's client of the test helper: one POST of a control request per URL, over kept-alive
// connections (node's http(s).Agent) so that a list of a thousand URLs costs a handful of TCP (and
// TLS) handshakes to the helper instead of a thousand. The helper's traffic is not evidence: it
// goes through no Trace, only through the NetPolicy (lab mode dials nothing outside --allow-net, and
// never resolves through the system resolver).
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { lookup } from 'node:dns/promises';
import { classifyError, unknownFailure, type Failure } from '../model/index.js';
import type { NetPolicy } from './policy.js';
import { secureContextFor } from './tls.js';

export interface HelperPostOptions {
  policy: NetPolicy;
  timeoutMs: number;
  maxBodyBytes: number;
  ca?: string[];
  /** How to resolve the helper's name (lab mode: the configured resolver, never the system one). */
  resolveHost?: (host: string) => Promise<string[]>;
}

export interface HelperPostResult {
  failure: Failure | null;
  status: number;
  body: Buffer;
}

const agents = new Map<string, http.Agent>();

/** One keep-alive agent per (scheme, extra CAs, source address): sockets are shared within it. */
function agentFor(https_: boolean, ca: string[] | undefined, localAddress: string | undefined): http.Agent {
  const key = `${https_ ? 's' : 'p'}|${localAddress ?? ''}|${ca?.join('\n') ?? ''}`;
  let a = agents.get(key);
  if (!a) {
    // Idle sockets are closed before the helper's own keep-alive timeout (5 s) would close them
    // under us; a request that still meets a closed socket is retried once (postControl).
    const o = { keepAlive: true, keepAliveMsecs: 1_000, maxFreeSockets: 256, timeout: 4_000, scheduling: 'lifo' as const };
    a = https_ ? new https.Agent({ ...o, secureContext: secureContextFor(ca) }) : new http.Agent(o);
    if (agents.size > 16) agents.clear();
    agents.set(key, a);
  }
  return a;
}

const fail = (failure: Failure): HelperPostResult => ({ failure, status: 0, body: Buffer.alloc(0) });

/** POST a JSON body to the test helper; never throws for a network outcome. */
export async function postControl(url: string, json: string, o: HelperPostOptions): Promise<HelperPostResult> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail(unknownFailure(`bad URL ${url}`));
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  let addrs: string[];
  if (net.isIP(host)) addrs = [host];
  else if (o.resolveHost) addrs = await o.resolveHost(host);
  else if (o.policy.restricted) return fail(unknownFailure(`refused to resolve ${host} with the system resolver in lab mode`));
  else {
    try {
      addrs = (await lookup(host, { all: true })).map((a) => a.address);
    } catch (err) {
      return fail(classifyError(err));
    }
  }
  const ip = addrs.find((a) => o.policy.checkDial(a) === null);
  if (ip === undefined) return fail(addrs.length ? o.policy.checkDial(addrs[0]!)! : 'dns_no_answer');
  const first = await postOnce(u, host, ip, json, o);
  // Robustness: a kept-alive socket the helper closed while idle fails at once with a reset or an
  // EOF; that says nothing about the helper, so the request is sent again once on a fresh socket.
  if (first.reused && (first.failure === 'connection_reset' || first.failure === 'eof_error')) return postOnce(u, host, ip, json, o);
  return first;
}

function postOnce(u: URL, host: string, ip: string, json: string, o: HelperPostOptions): Promise<HelperPostResult & { reused: boolean }> {
  const secure = u.protocol === 'https:';
  const body = Buffer.from(json);
  return new Promise((done) => {
    let settled = false;
    let reused = false;
    const settle = (r: HelperPostResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      done({ ...r, reused });
    };
    const req = (secure ? https : http).request({
      host: ip,
      port: Number(u.port) || (secure ? 443 : 80),
      path: `${u.pathname}${u.search}`,
      method: 'POST',
      agent: agentFor(secure, o.ca, o.policy.localAddress),
      headers: { host: u.host, 'content-type': 'application/json', accept: 'application/json', 'content-length': body.length },
      ...(secure && !net.isIP(host) ? { servername: host } : {}),
      ...(o.policy.localAddress ? { localAddress: o.policy.localAddress } : {}),
    });
    const timer = setTimeout(() => {
      settle(fail('generic_timeout_error'));
      req.destroy();
    }, o.timeoutMs);
    req.on('socket', () => (reused = req.reusedSocket));
    req.on('error', (err) => settle(fail(classifyError(err))));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > o.maxBodyBytes) {
          settle(fail(unknownFailure(`test helper answer larger than ${o.maxBodyBytes} bytes`)));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      res.on('error', (err) => settle(fail(classifyError(err))));
      res.on('end', () => settle({ failure: null, status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.end(body);
  });
}
