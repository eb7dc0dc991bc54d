// `wallscope helper --listen HOST:PORT`: run the web_connectivity test helper (OONI's control
// protocol) until interrupted. Wiring only: src/probe implements it.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { splitHostPort, startTestHelper } from '../probe/index.js';

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
      let hp: { host: string; port: number };
      try {
        hp = splitHostPort(o.listen);
      } catch (e) {
        throw Object.assign(new Error(`--listen: ${(e as Error).message}`), { exitCode: 2 });
      }
      const timeoutMs = Number(o.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1)
        throw Object.assign(new Error(`--timeout must be a positive integer`), { exitCode: 2 });
      const maxConcurrent = Number(o.maxConcurrent);
      if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1)
        throw Object.assign(new Error(`--max-concurrent must be a positive integer`), { exitCode: 2 });
      const helper = await startTestHelper({
        host: hp.host,
        port: hp.port,
        timeoutMs,
        maxConcurrent,
        ...(o.resolver ? { resolver: o.resolver } : {}),
        ...(o.ca?.length ? { ca: o.ca.map((f) => readFileSync(f, 'utf8')) } : {}),
        ...(o.allowNet
          ? {
              allowNet: o.allowNet
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean),
            }
          : {}),
        ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      });
      process.stdout.write(`test helper listening at ${helper.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await helper.close();
    });
}
