// Null routing with nftables: a table `wallscope_<pid>_<n>` whose output-hook chain drops the SYNs
// to null-routed lab addresses, so a client sees a connect timeout (N4P#129). Loopback traffic
// crosses the output hook, so this works on 127.0.0.0/8. Removed on close, on process exit and by
// a startup sweep of tables whose pid is dead. Without root (or without nft) null routing cannot
// be emulated; nftAvailable() says why, and the lab reports it.
import { execFileSync, spawnSync } from 'node:child_process';
import { onProcessEnd } from './exit-hook.js';

const PREFIX = 'wallscope_';
const live = new Set<string>();
let counter = 0;
let exitHook = false;

export function nftAvailable(): { ok: true } | { ok: false; reason: string } {
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return { ok: false, reason: 'null_route, reject and site down:timeout need root (nftables); run the lab as root to emulate them' };
  const r = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8', timeout: 5000 });
  if (r.error || r.status !== 0)
    return {
      ok: false,
      reason: `nftables is not usable (${r.error?.message ?? r.stderr.trim()}); null_route, reject and site down:timeout cannot be emulated`,
    };
  return { ok: true };
}

function nft(args: string[], input?: string): void {
  execFileSync('nft', args, { input, stdio: ['pipe', 'ignore', 'pipe'], timeout: 5000 });
}

/** Whether a process exists (EPERM: it does, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes wallscope tables left by dead processes. Returns the names removed. */
export function sweepStaleTables(): string[] {
  const r = spawnSync('nft', ['list', 'tables'], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) return [];
  const removed: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^table (\w+) (wallscope_(\d+)(?:_\d+)?)$/.exec(line.trim());
    if (!m) continue;
    const pid = Number(m[3]);
    if (pid === process.pid || pidAlive(pid)) continue;
    try {
      nft(['delete', 'table', m[1]!, m[2]!]);
      removed.push(m[2]!);
    } catch {
      /* someone else removed it */
    }
  }
  return removed;
}

export interface NullRoute {
  table: string;
  remove(): void;
}

/**
 * Drops SYNs to `dropFromAll` (from every source) and to `dropFromProbe` unless they come from an
 * exempt source (the test helper, which stands outside the censors); answers SYNs to
 * `rejectFromProbe` with a RST (connection refused), exempt sources aside.
 */
export function installNullRoute(
  dropFromProbe: string[],
  dropFromAll: string[],
  exempt: string[],
  rejectFromProbe: string[] = [],
  // netns mode's world receives the clients' SYNs from outside: the input hook sees those and,
  // through lo, its own helper's.
  hook: 'output' | 'input' = 'output',
): NullRoute | null {
  if (dropFromProbe.length === 0 && dropFromAll.length === 0 && rejectFromProbe.length === 0) return null;
  const table = `${PREFIX}${process.pid}_${++counter}`;
  const set = (a: string[]) => `{ ${a.join(', ')} }`;
  const rules: string[] = [];
  if (dropFromAll.length) rules.push(`ip daddr ${set(dropFromAll)} tcp flags & (syn | ack) == syn drop`);
  if (dropFromProbe.length)
    rules.push(
      exempt.length
        ? `ip saddr != ${set(exempt)} ip daddr ${set(dropFromProbe)} tcp flags & (syn | ack) == syn drop`
        : `ip daddr ${set(dropFromProbe)} tcp flags & (syn | ack) == syn drop`,
    );
  if (rejectFromProbe.length)
    rules.push(
      `${exempt.length ? `ip saddr != ${set(exempt)} ` : ''}ip daddr ${set(rejectFromProbe)} tcp flags & (syn | ack) == syn reject with tcp reset`,
    );
  const script = `table ip ${table} {\n chain out {\n  type filter hook ${hook} priority 0; policy accept;\n  ${rules.join('\n  ')}\n }\n}\n`;
  nft(['-f', '-'], script);
  live.add(table);
  if (!exitHook) {
    exitHook = true;
    // Robustness: a lab killed by an uncaught error, process.exit, SIGINT or SIGTERM still removes its tables.
    onProcessEnd(removeAll);
  }
  return {
    table,
    remove() {
      if (!live.delete(table)) return;
      try {
        nft(['delete', 'table', 'ip', table]);
      } catch {
        /* already gone */
      }
    },
  };
}

function removeAll(): void {
  for (const t of live) {
    try {
      nft(['delete', 'table', 'ip', t]);
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

export function liveTables(): string[] {
  return [...live];
}
