// `wallscope helper --listen HOST:PORT`: run the web_connectivity test helper (OONI's control
// protocol) until interrupted. Wiring only: src/probe implements it.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { parseCidr, splitHostPort, startTestHelper } from '../probe/index.js';

interface HelperCliOptions {
  listen: string;
  resolver?: string;
  ca?: string[];
  allowNet?: string;
  localAddress?: string;
  timeout?: string;
  maxConcurrent: string;
}

const collect = (v: string, acc: string[] = []): string[] => [...acc, v];
const usage = (message: string) => Object.assign(new Error(message), { exitCode: 2 });

/** The helper's options from the command line; bad input is a usage error (exit 2) before anything listens. */
function helperOptionsFrom(o: HelperCliOptions): Parameters<typeof startTestHelper>[0] {
  let hp: { host: string; port: number };
  try {
    hp = splitHostPort(o.listen);
  } catch (e) {
    throw usage(`--listen: ${(e as Error).message}`);
  }
  const timeoutMs = Number(o.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw usage(`--timeout must be a positive integer`);
  const maxConcurrent = Number(o.maxConcurrent);
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) throw usage(`--max-concurrent must be a positive integer`);
  // Names are never resolved through the system resolver: the resolver is an address.
  if (o.resolver !== undefined) {
    let r: { host: string } | null = null;
    try {
      r = splitHostPort(o.resolver, 53);
    } catch {
      // reported below
    }
    if (!r || !isIP(r.host)) throw usage(`--resolver: expected IP:PORT, got ${JSON.stringify(o.resolver)}`);
  }
  if (o.localAddress !== undefined && !isIP(o.localAddress))
    throw usage(`--local-address: expected an IP address, got ${JSON.stringify(o.localAddress)}`);
  const allowNet = (o.allowNet ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const c of allowNet) {
    try {
      parseCidr(c);
    } catch (e) {
      throw usage(`--allow-net: ${(e as Error).message}`);
    }
  }
  const ca = (o.ca ?? []).map((f) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw usage(`--ca: cannot read ${f}: ${(e as Error).message}`);
    }
  });
  return {
    host: hp.host,
    port: hp.port,
    timeoutMs,
    maxConcurrent,
    ...(o.resolver ? { resolver: o.resolver } : {}),
    ...(ca.length ? { ca } : {}),
    ...(allowNet.length ? { allowNet } : {}),
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
  };
}

export function register(program: Command): void {
  program
    .command('helper')
    .requiredOption('--listen <host:port>', 'address to listen on, e.g. 127.0.0.1:8080')
    .option('--resolver <ip:port>', 'resolver the helper asks (lab mode: never the system resolver)')
    .option('--ca <file>', 'extra trusted CA certificate(s), PEM; repeatable', collect)
    .option('--allow-net <cidrs>', 'comma-separated CIDRs the helper may dial (lab mode)')
    .option('--local-address <ip>', "source address of the helper's outgoing sockets")
    .option('--timeout <ms>', 'time budget of each network step', '10000')
    .option('--max-concurrent <n>', 'control requests measured at once; more are answered 503 with Retry-After', '64')
    .action(async (o: HelperCliOptions) => {
      const helper = await startTestHelper(helperOptionsFrom(o));
      process.stdout.write(`test helper listening at ${helper.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await helper.close();
    });
}
