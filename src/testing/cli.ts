// For the CLI's tests: `wallscope ARGS...` as a user runs it, a child process of bin/wallscope.js.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../probe/index.js';

export const WALLSCOPE_BIN = join(repoRoot, 'bin', 'wallscope.js');

export interface CliResult {
  /** The exit code (1 when the child was killed by a signal or the timeout). */
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  /** Milliseconds before the child is killed (default 60 s). */
  timeout?: number;
  /** Largest stdout or stderr in bytes (default 64 MiB). */
  maxBuffer?: number;
}

/** Runs `wallscope ...args` to its end; never rejects: a failing command is its exit code and output. */
export function runWallscope(args: string[], o: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [WALLSCOPE_BIN, ...args],
      { encoding: 'utf8', timeout: o.timeout ?? 60_000, maxBuffer: o.maxBuffer ?? 64 << 20, ...(o.env ? { env: o.env } : {}) },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}
