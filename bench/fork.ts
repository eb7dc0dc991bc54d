// Benchmarks run their parts (the world, the probe) in child processes of the same script, so
// each side's CPU and memory are its own. This starts one role and waits for its first message.
import { fork, type ChildProcess } from 'node:child_process';

export function forkRole<T>(script: string, role: string, payload?: unknown): Promise<{ msg: T; proc: ChildProcess }> {
  return new Promise((resolve, reject) => {
    const proc = fork(script, [role], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    proc.once('message', (msg) => resolve({ msg: msg as T, proc }));
    proc.once('error', reject);
    // A child that dies before reporting (a crash) must not leave the benchmark waiting forever.
    proc.once('exit', (code, signal) => reject(new Error(`bench role ${role} exited (${signal ?? code}) before reporting`)));
    if (payload !== undefined) proc.send(payload as object);
  });
}
