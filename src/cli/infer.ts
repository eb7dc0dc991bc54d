// `wallscope infer`: the rule behind each blocked name (DESIGN.md "Contracts of the next
// capabilities"): variants of the name over DNS, SNI and Host, bisection for URL keywords
// (src/analysis/infer.ts), trials from src/probe/infer-trials.ts, jobs from src/lab/infer.ts.
// Wiring only. Point it at the lab with `lab eval --infer`, or at endpoints on a path you measure.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { inferJobs, uniqueLines, type InferEndpoints, type InferJob, type InferLine, type InferProtocol } from '../lab/index.js';
import { isLayer, type Layer } from '../model/index.js';
import { dnsTrial, httpHostTrial, httpPathTrial, sniTrial, splitHostPort, type TrialOptions } from '../probe/index.js';
import { scanName } from './scan.js';

function usageError(message: string, exitCode = 2): Error {
  return Object.assign(new Error(message), { exitCode });
}

interface InferOptions {
  list?: string;
  resolver?: string;
  tlsServer?: string;
  httpServer?: string;
  protocol?: string;
  layer: string;
  localAddress?: string;
  pause: string;
  timeout: string;
  concurrency: string;
  json?: boolean;
}

const endpoint = (flag: string, v: string, port: number) => {
  let hp: { host: string; port: number };
  try {
    hp = splitHostPort(v, port);
  } catch (e) {
    throw usageError(`${flag}: ${(e as Error).message}`);
  }
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(hp.host)) throw usageError(`${flag} must be an IPv4 address (names are never resolved), got ${v}`);
  return hp;
};

export function register(program: Command): void {
  program
    .command('infer')
    .description(
      'infer the rule behind each blocked name from its variants (padded left and right, as a label, parent, child, sibling) over DNS, SNI and Host; for a URL blocked by a keyword, the minimal triggering substring',
    )
    .argument('[items...]', 'names or http(s) URLs')
    .option('--list <file>', 'one name or URL a line (# comments and blank lines skipped)')
    .option(
      '--resolver <ip[:port]>',
      'DNS trials go to this address, which must run NO resolver (any reply is injected; lab: its silent address)',
    )
    .option('--tls-server <ip[:port]>', 'SNI trials: ClientHellos to this server (default port 443)')
    .option('--http-server <ip[:port]>', 'Host and keyword trials: requests to this server (default port 80)')
    .option('--protocol <list>', 'comma-separated: dns, sni, http (default: those with an endpoint)')
    .option('--layer <layer>', 'the layer the lines are attributed to (national, regional, isp, unknown)', 'unknown')
    .option('--local-address <ips>', 'comma-separated source addresses, one per trial in turn (fresh ones avoid residual blocking)')
    .option(
      '--pause <s>',
      'seconds between trials, to outwait residual blocking (GFW: 90-180 s) when fresh addresses are not available',
      '0',
    )
    .option('--timeout <ms>', 'how long a trial waits for a block or an answer', '3000')
    .option('--concurrency <n>', "names inferred at once (each name's trials in sequence)", '4')
    .option('--json', 'one JSON line per (name, protocol, layer) that blocks it')
    .action(async (items: string[], o: InferOptions) => {
      items.push(...listItems(o.list));
      if (!items.length) throw usageError('give names, URLs or --list');
      if (!isLayer(o.layer)) throw usageError(`--layer must be national, regional, isp or unknown, got ${o.layer}`);
      const { trial, concurrency } = trialOptions(o);
      const { ends, protocols } = endpointsOf(o, trial);
      const lines = uniqueLines(await inferJobs(jobsOf(items, protocols, o.layer as Layer), ends, { concurrency }));
      printLines(lines, !!o.json);
    });
}

/** The items of --list (none without one). */
function listItems(list: string | undefined): string[] {
  if (!list) return [];
  let text: string;
  try {
    text = readFileSync(list, 'utf8');
  } catch (e) {
    throw usageError(`--list ${list}: ${(e as Error).message}`, 1);
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((t) => t && !t.startsWith('#'));
}

/** --pause, --timeout, --local-address and --concurrency, checked. */
function trialOptions(o: InferOptions): { trial: TrialOptions; concurrency: number } {
  const pauseS = Number(o.pause);
  const timeoutMs = Number(o.timeout);
  const concurrency = Number(o.concurrency);
  if (!Number.isFinite(pauseS) || pauseS < 0 || pauseS > 3600) throw usageError(`--pause must be 0..3600 seconds, got ${o.pause}`);
  if (!Number.isFinite(timeoutMs) || timeoutMs < 10 || timeoutMs > 60_000)
    throw usageError(`--timeout must be 10..60000 ms, got ${o.timeout}`);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
    throw usageError(`--concurrency must be 1..256, got ${o.concurrency}`);
  const locals = o.localAddress ? o.localAddress.split(',').map((a) => a.trim()) : [];
  let k = 0;
  return {
    concurrency,
    trial: { timeoutMs, pauseMs: pauseS * 1000, ...(locals.length ? { localAddress: () => locals[k++ % locals.length] } : {}) },
  };
}

/** The trials of each protocol with an endpoint, and the protocols asked (each needing its endpoint). */
function endpointsOf(o: InferOptions, trial: TrialOptions): { ends: InferEndpoints; protocols: InferProtocol[] } {
  const dns = o.resolver ? endpoint('--resolver', o.resolver, 53) : null;
  const tlsServer = o.tlsServer ? endpoint('--tls-server', o.tlsServer, 443) : null;
  const httpServer = o.httpServer ? endpoint('--http-server', o.httpServer, 80) : null;
  const available: InferProtocol[] = [
    ...(dns ? ['dns' as const] : []),
    ...(tlsServer ? ['sni' as const] : []),
    ...(httpServer ? ['http' as const] : []),
  ];
  const protocols = o.protocol ? (o.protocol.split(',').map((p) => p.trim()) as InferProtocol[]) : available;
  for (const p of protocols) {
    if (!['dns', 'sni', 'http'].includes(p)) throw usageError(`--protocol: ${p} is not dns, sni or http`);
    if (!available.includes(p))
      throw usageError(`--protocol ${p} needs ${p === 'dns' ? '--resolver' : p === 'sni' ? '--tls-server' : '--http-server'}`);
  }
  if (!protocols.length) throw usageError('give at least one of --resolver, --tls-server, --http-server');
  const ends: InferEndpoints = {
    dns: dns ? dnsTrial(dns, trial) : null,
    sni: () => (tlsServer ? sniTrial(tlsServer, trial) : null),
    httpHost: () => (httpServer ? httpHostTrial(httpServer, trial) : null),
    httpPath: (name) => (httpServer ? httpPathTrial(httpServer, name, trial) : null),
  };
  return { ends, protocols };
}

/** One job per (item, protocol); a URL's path is kept for keyword isolation over HTTP. */
function jobsOf(items: string[], protocols: InferProtocol[], layer: Layer): InferJob[] {
  const jobs: InferJob[] = [];
  for (const item of items) {
    let name: string | null;
    let url: string | undefined;
    if (/^https?:\/\//i.test(item)) {
      try {
        name = scanName(new URL(item).hostname);
        url = item;
      } catch {
        throw usageError(`not a URL: ${JSON.stringify(item)}`);
      }
    } else name = scanName(item);
    if (!name) throw usageError(`not a domain name: ${JSON.stringify(item)}`);
    for (const protocol of protocols) jobs.push({ name, protocol, layer, ...(url && protocol === 'http' ? { url } : {}) });
  }
  return jobs;
}

function printLines(lines: InferLine[], json: boolean): void {
  for (const l of lines) {
    if (json) process.stdout.write(`${JSON.stringify(l)}\n`);
    else
      process.stdout.write(
        `${l.name} ${l.protocol} ${l.layer}: ${l.keyword !== undefined ? `keyword ${JSON.stringify(l.keyword)} in ${l.url}` : l.rule}${l.overblocks.length ? `; overblocks ${l.overblocks.join(' ')}` : ''} (${l.queries} trials)\n`,
      );
  }
  if (!json && !lines.length) process.stdout.write('no item is blocked over the protocols tried\n');
}
