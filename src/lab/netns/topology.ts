// The netns lab's network: client -> one router per hop -> internet, as Linux network namespaces
// joined by veth pairs, with real routing and forwarding, so every router decrements the TTL and
// TTL-limited probing finds each censor's hop. Addresses stay inside 198.18.0.0/15:
//   link j (between node j and node j+1): 198.18.j.0/24, node j = .1, node j+1 = .2
//   the client's own addresses: 198.18.128.0/17 (any of them can be bound: a local route)
//   the internet's: 198.19.0.0/16 (the world's layout: src/lab/lab.ts), also a local route
// Names carry the owning process id (wsl<pid>-<role>), so a start-up sweep can remove what a lab
// killed with SIGKILL left behind: its processes, its namespaces (their veths and nft tables go
// with them) and their /etc/netns/<name> directories (the per-namespace resolv.conf).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onProcessEnd } from '../exit-hook.js';
import { pidAlive } from '../nft.js';

export const NETNS_PREFIX = 'wsl';
export const CLIENT_NET = '198.18.128.0/17';
export const INTERNET_NET = '198.19.0.0/16';
export const WORLD_NET = '198.19';
/** Links may number up to 126 (198.18.0.0/24 .. 198.18.125.0/24): far more hops than any path. */
export const MAX_HOPS = 120;

export class NetnsError extends Error {
  constructor(
    message: string,
    readonly code: 'NETNS_NO_ROOT' | 'NETNS_MISSING_TOOL' | 'NETNS_SETUP_FAILED' | 'NETNS_BAD_SCENARIO',
  ) {
    super(message);
    this.name = 'NetnsError';
  }
}

export interface Topology {
  /** Namespace names in path order: client, routers..., internet. */
  client: string;
  routers: string[];
  internet: string;
  /** The client's address on its link (its default source). */
  clientAddress: string;
  /** Per router: its address on the client side ("left") and on the internet side ("right"). */
  routerAddresses: Array<{ left: string; right: string }>;
  /** The resolver getaddrinfo uses in the client namespace (resolv.conf). */
  resolvConf: string;
  all(): string[];
  destroy(): void;
}

function run(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const why = (err.stderr || err.message).trim().split('\n')[0];
    throw new NetnsError(`${cmd} ${args.join(' ')}: ${why}`, 'NETNS_SETUP_FAILED');
  }
}

/** What netns mode needs and this machine lacks, in plain words; [] when it can run. */
export function netnsMissing(): string[] {
  const missing: string[] = [];
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    missing.push('root (network namespaces, raw sockets and nftables need it)');
  for (const [tool, pkg] of [
    ['ip', 'iproute2'],
    ['nft', 'nftables'],
    ['sysctl', 'procps'],
    // The ESNI drop's in-path match (the xtables `bpf` match, through iptables-nft).
    ['iptables', 'iptables'],
  ] as const) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) missing.push(`${tool} (Debian package ${pkg})`);
  }
  return missing;
}

function listNetns(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

function removeNetns(name: string): void {
  // Processes first (a sniffer left running would keep nothing alive, but would keep running).
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' });
  for (const p of (pids.stdout ?? '').split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
}

const OWN = new RegExp(`^${NETNS_PREFIX}(\\d+)-`);

/** Removes the namespaces of labs whose process is gone (or, with `all`, every lab's). Returns their names. */
export function sweepNetns(all = false): string[] {
  const gone: string[] = [];
  for (const name of listNetns()) {
    const m = OWN.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!all && (pid === process.pid || pidAlive(pid))) continue;
    removeNetns(name);
    gone.push(name);
  }
  // The children's configuration files and `lab up`'s CA file of labs that are gone.
  for (const f of readdirSync(tmpdir())) {
    const m = /^wallscope-(?:netns|lab)-(\d+)-/.exec(f);
    if (m && !pidAlive(Number(m[1]))) rmSync(join(tmpdir(), f), { recursive: true, force: true });
  }
  return gone;
}

let seq = 0;
const live = new Set<Topology>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  // Robustness: an uncaught error, process.exit or a signal still removes the namespaces.
  onProcessEnd(() => {
    for (const t of [...live]) t.destroy();
  });
}

/**
 * Builds client -> `hops` routers -> internet. `resolver` (an address in the internet) goes into
 * the client namespace's resolv.conf, so getaddrinfo there (curl, a browser) asks the lab.
 * `clientTimestamps`: keep TCP timestamps in the client namespace; off by default, so the client's
 * data segments carry the exactly-20-byte TCP header that the Henan firewall inspects (SP25: only
 * ~19-22% of real traffic has it; Linux adds the timestamp option unless told not to).
 */
export function buildTopology(hops: number, resolver: string, opts: { clientTimestamps?: boolean } = {}): Topology {
  const missing = netnsMissing();
  if (missing.length)
    throw new NetnsError(`netns mode needs ${missing.join(', ')}`, missing[0]!.startsWith('root') ? 'NETNS_NO_ROOT' : 'NETNS_MISSING_TOOL');
  if (!Number.isInteger(hops) || hops < 0 || hops > MAX_HOPS)
    throw new NetnsError(`netns mode supports 0..${MAX_HOPS} routers, got ${hops}`, 'NETNS_BAD_SCENARIO');
  hookExit();
  sweepNetns();
  const id = `${NETNS_PREFIX}${process.pid}-${++seq}`;
  const client = `${id}-c`;
  const routers = Array.from({ length: hops }, (_, i) => `${id}-r${i + 1}`);
  const internet = `${id}-i`;
  const nodes = [client, ...routers, internet];
  let destroyed = false;
  const topo: Topology = {
    client,
    routers,
    internet,
    clientAddress: '198.18.0.1',
    routerAddresses: routers.map((_, i) => ({ left: `198.18.${i}.2`, right: `198.18.${i + 1}.1` })),
    resolvConf: resolver,
    all: () => [...nodes],
    destroy() {
      if (destroyed) return;
      destroyed = true;
      live.delete(topo);
      for (const n of nodes) removeNetns(n);
    },
  };
  live.add(topo);
  try {
    wireChain(id, nodes, opts.clientTimestamps ?? false);
    // Safety: nothing leaves the lab. The client and routers have no route off 198.18.0.0/15
    // except the default toward the internet namespace, which answers only for 198.19.0.0/16;
    // anything else dies there (the internet namespace has no default route).
    mkdirSync(`/etc/netns/${client}`, { recursive: true });
    writeFileSync(
      `/etc/netns/${client}/resolv.conf`,
      `# wallscope netns lab: the ISP resolver\nnameserver ${resolver}\noptions timeout:2 attempts:1\n`,
    );
    writeFileSync(`/etc/netns/${client}/hosts`, `127.0.0.1 localhost\n`);
    return topo;
  } catch (e) {
    topo.destroy();
    throw e;
  }
}

/** The namespaces, one veth pair between each two neighbours (`right` of one, `left` of the next), addressed and routed. */
function wireChain(id: string, nodes: string[], clientTimestamps: boolean): void {
  const batch: string[] = [];
  for (const n of nodes) batch.push(`netns add ${n}`);
  run('ip', ['-batch', '-'], batch.join('\n') + '\n');
  const cmds: string[][] = [];
  for (let j = 0; j + 1 < nodes.length; j++) {
    const a = `${id.slice(NETNS_PREFIX.length)}a${j}`.slice(-15);
    const b = `${id.slice(NETNS_PREFIX.length)}b${j}`.slice(-15);
    run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    run('ip', ['link', 'set', a, 'netns', nodes[j]!]);
    run('ip', ['link', 'set', b, 'netns', nodes[j + 1]!]);
    cmds.push(['-n', nodes[j]!, 'link', 'set', a, 'name', 'right']);
    cmds.push(['-n', nodes[j + 1]!, 'link', 'set', b, 'name', 'left']);
  }
  for (const c of cmds) run('ip', c);
  for (let j = 0; j < nodes.length; j++) addressNode(nodes, j, clientTimestamps);
}

/** One namespace's addresses, routes and sysctls: the client, a router, or the internet. */
function addressNode(nodes: string[], j: number, clientTimestamps: boolean): void {
  const ns = nodes[j]!;
  const sysctl = (kv: string) => run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', kv]);
  run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  if (j > 0) {
    run('ip', ['-n', ns, 'addr', 'add', `198.18.${j - 1}.2/24`, 'dev', 'left']);
    run('ip', ['-n', ns, 'link', 'set', 'left', 'up']);
  }
  if (j + 1 < nodes.length) {
    run('ip', ['-n', ns, 'addr', 'add', `198.18.${j}.1/24`, 'dev', 'right']);
    run('ip', ['-n', ns, 'link', 'set', 'right', 'up']);
  }
  sysctl('net.ipv4.conf.all.rp_filter=0');
  sysctl('net.ipv4.conf.default.rp_filter=0');
  if (j === 0) {
    run('ip', ['-n', ns, 'route', 'add', 'local', CLIENT_NET, 'dev', 'lo']);
    run('ip', ['-n', ns, 'route', 'add', 'default', 'via', `198.18.0.2`]);
    if (!clientTimestamps) sysctl('net.ipv4.tcp_timestamps=0');
  } else if (j === nodes.length - 1) {
    run('ip', ['-n', ns, 'route', 'add', 'local', INTERNET_NET, 'dev', 'lo']);
    run('ip', ['-n', ns, 'route', 'add', '198.18.0.0/16', 'via', `198.18.${j - 1}.1`]);
  } else {
    sysctl('net.ipv4.ip_forward=1');
    run('ip', ['-n', ns, 'route', 'add', '198.18.0.0/16', 'via', `198.18.${j - 1}.1`]);
    run('ip', ['-n', ns, 'route', 'add', 'default', 'via', `198.18.${j}.2`]);
  }
}

/** argv for running a command inside a namespace. */
export function inNetns(ns: string, argv: string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', ns, ...argv]];
}
