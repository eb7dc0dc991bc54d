// Runs `wallscope serve` (the real CLI) in a child process, for the crash and load tests and the
// benchmarks: a separate process is what a SIGKILL or 64 clients should hit.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../probe/index.js';

export interface ServeChild {
  child: ChildProcess;
  url: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `args` are serve's store options, e.g. ['--db', file] or ['--clickhouse', url]. `web`: serve the built explorer too. */
export async function serveChild(args: string[], extra: string[] = [], o: { web?: boolean } = {}): Promise<ServeChild> {
  const bin = join(repoRoot, 'bin', 'wallscope.js');
  const child = spawn(
    process.execPath,
    [
      bin,
      'serve',
      ...args,
      '--listen',
      '127.0.0.1:0',
      '--no-log',
      ...(o.web ? [] : ['--no-web']),
      '--rate-limit',
      '0',
      '--no-fingerprints',
      ...extra,
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wallscope serve did not start within 60 s: ${err}`));
    }, 60_000);
    child.stderr!.on('data', (c: Buffer) => {
      err = (err + c.toString()).slice(-4000);
      const m = /wallscope serve: (http:\/\/[\d.:]+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`wallscope serve exited (${code}): ${err}`));
    });
  });
  const stop = (signal: NodeJS.Signals = 'SIGTERM') =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  return { child, url, stop };
}
