// netns mode of the lab (../shared/DESIGN.md "Lab", second mode): the SAME scenario files as loopback mode,
// run as client -> one router per censor (path order: the first listed is nearest the client) ->
// internet, each a network namespace (topology.ts). The world (sites, resolvers, test helper) is
// the loopback lab's code run inside the internet namespace on 198.19.0.0/16 with no socket-level
// censor; each router runs its censor on path (router.ts). Every part is a child process started
// with `ip netns exec`; each exits when its stdin closes, so a parent killed with SIGKILL takes its
// children with it, and the next start (or `wallscope lab clean`) sweeps the namespaces.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Scenario } from '../../model/index.js';
import type { ProbeOptions } from '../../probe/index.js';
import { inferTargetsOf, scoreRows, type EvalOptions, type EvalRow, type EvalRun } from '../eval.js';
import type { InferLine, InferTarget } from '../infer.js';
import type { LabTarget } from '../lab.js';
import type { RouterConfig, RouterEvent } from './router.js';
import { buildTopology, CLIENT_NET, inNetns, NetnsError, WORLD_NET, type Topology } from './topology.js';

/** How far the internet is: genuine DNS answers and the sites' first response bytes wait this long, so the on-path injections win the race (no tc netem here). */
export const GENUINE_DELAY_MS = 80;
const READY_TIMEOUT_MS = 60_000;
const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

export interface WorldReady {
  resolver: string;
  publicResolver: string;
  silentDns: string;
  helperUrl: string | null;
  caPem: string;
  sites: Array<{ domain: string; address: string; httpPort: number | null; httpsPort: number | null }>;
  services: Array<{ name: string; kind: string; address: string; port: number }>;
  targets: LabTarget[];
  allowNet: string[];
  warnings: string[];
}

export interface NetnsLabOptions {
  log?: (e: RouterEvent) => void;
  /** Keep TCP timestamps in the client namespace (then Henan sees no 20-byte TCP header and stays silent). */
  clientTimestamps?: boolean;
  genuineDelayMs?: number;
}

export interface NetnsLab {
  scenario: Scenario;
  topology: Topology;
  resolver: string;
  publicResolver: string;
  silentDns: string;
  helperUrl: string | null;
  caPem: string;
  sites: WorldReady['sites'];
  services: WorldReady['services'];
  targets: LabTarget[];
  warnings: string[];
  /** Lab time 0 of the scenario's timeline (epoch ms): when every part was up. */
  startedAt: number;
  /** The i-th client source address (each target from its own, so residual blocking does not leak). */
  clientAddress(i: number): string;
  probeOptions(extra?: Partial<ProbeOptions>): ProbeOptions;
  /** argv that runs a command inside the client namespace. */
  inClient(argv: string[]): [string, string[]];
  close(): Promise<void>;
}

export function netnsClientAddress(i: number): string {
  const k = i % (127 * 250);
  return `198.18.${128 + Math.floor(k / 250)}.${1 + (k % 250)}`;
}

/** The hop of each censor's router, in path order (`hop`, else the previous one + 1). */
export function censorHops(s: Scenario): number[] {
  let last = 0;
  return s.censors.map((c) => (last = c.hop ?? last + 1));
}

/** Scenario keys netns mode cannot honour, each as `key: why`. */
export function netnsProblems(s: Scenario): string[] {
  const out: string[] = [];
  s.world.sites.forEach((site, i) => {
    if (site.addresses?.length)
      out.push(`world.sites[${i}].addresses: fixed loopback addresses cannot be placed in the netns lab's 198.19.0.0/16; drop the key`);
  });
  (s.world.services ?? []).forEach((svc, i) => {
    if (svc.address)
      out.push(`world.services[${i}].address: fixed loopback addresses cannot be placed in the netns lab's 198.19.0.0/16; drop the key`);
  });
  if (s.platform?.address)
    out.push("platform.address: a fixed loopback address cannot be placed in the netns lab's 198.19.0.0/16; drop the key");
  return out;
}

interface Child {
  proc: ChildProcess;
  ready: Promise<unknown>;
}

function startChild(
  ns: string,
  role: string,
  config: unknown,
  dir: string,
  onLine?: (msg: Record<string, unknown>) => void,
  readyTimeoutMs = READY_TIMEOUT_MS,
): Child {
  const file = join(dir, `${role}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config));
  const [cmd, args] = inNetns(ns, [process.execPath, CHILD, role, file]);
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 4000) stderr += d.toString();
  });
  const ready = new Promise<unknown>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new NetnsError(`${role} in ${ns} was not done within ${readyTimeoutMs / 1000} s`, 'NETNS_SETUP_FAILED')),
      readyTimeoutMs,
    );
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if ('ready' in msg) {
        clearTimeout(timer);
        resolve(msg.ready);
      } else if ('error' in msg) {
        clearTimeout(timer);
        reject(new NetnsError(`${role}: ${String(msg.error)}`, 'NETNS_SETUP_FAILED'));
      } else onLine?.(msg);
    });
    proc.on('exit', (code, sig) => {
      clearTimeout(timer);
      reject(
        new NetnsError(
          `${role} in ${ns} exited (${sig ?? code}) before it was ready: ${stderr.trim().split('\n').slice(-1)[0] ?? ''}`,
          'NETNS_SETUP_FAILED',
        ),
      );
    });
  });
  proc.stdin!.on('error', () => undefined);
  return { proc, ready };
}

async function stopChild(c: Child): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.proc.once('exit', () => r()));
  c.proc.stdin!.end();
  const t = setTimeout(() => c.proc.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(t);
}

export async function startNetnsLab(scenario: Scenario, opts: NetnsLabOptions = {}): Promise<NetnsLab> {
  const problems = netnsProblems(scenario);
  if (problems.length)
    throw new NetnsError(`${scenario.source ?? scenario.name}: netns mode cannot honour ${problems[0]}`, 'NETNS_BAD_SCENARIO');
  const hops = censorHops(scenario);
  const topo = buildTopology(hops.at(-1) ?? 0, `${WORLD_NET}.0.2`, { clientTimestamps: opts.clientTimestamps });
  const dir = mkdtempSync(join(tmpdir(), `wallscope-netns-${process.pid}-`));
  const children: Child[] = [];
  const close = async () => {
    await Promise.all(children.map(stopChild));
    topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const world = startChild(topo.internet, 'world', { scenario, genuineDelayMs: opts.genuineDelayMs ?? GENUINE_DELAY_MS }, dir);
    children.push(world);
    const w = (await world.ready) as WorldReady;
    const siteAddresses: Record<string, string[]> = {};
    for (const s of w.sites) (siteAddresses[s.domain] ??= []).push(s.address);
    for (const s of w.services) (siteAddresses[s.name] ??= []).push(s.address);
    // Routers between the censors' hops only forward.
    const routers = scenario.censors.map((_, i) => {
      const cfg: RouterConfig = { scenario, censorIndex: i, hopsBack: hops[i]! - 1, siteAddresses, clientNet: CLIENT_NET };
      const c = startChild(topo.routers[hops[i]! - 1]!, 'router', cfg, dir, (m) => m.event && opts.log?.(m.event as RouterEvent));
      children.push(c);
      return c;
    });
    await Promise.all(routers.map((r) => r.ready));
    // Lab time 0 of the scenario's timeline: now that every part is up.
    const startedAt = Date.now();
    for (const r of routers) r.proc.stdin!.write(`${JSON.stringify({ start: startedAt })}\n`);
    const allowNet = ['198.18.0.0/15'];
    let closed = false;
    return {
      scenario,
      topology: topo,
      resolver: w.resolver,
      publicResolver: w.publicResolver,
      silentDns: w.silentDns,
      helperUrl: w.helperUrl,
      caPem: w.caPem,
      sites: w.sites,
      services: w.services,
      targets: w.targets,
      warnings: w.warnings,
      startedAt,
      clientAddress: netnsClientAddress,
      probeOptions: (extra = {}) => ({ resolver: w.resolver, helper: w.helperUrl ?? undefined, ca: [w.caPem], allowNet, ...extra }),
      inClient: (argv) => inNetns(topo.client, argv),
      async close() {
        if (closed) return;
        closed = true;
        await close();
      },
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Measures every target of a netns lab from inside its client namespace (the probe runs there as a
 * child process, exactly as a volunteer's would) and returns the rows in target order.
 */
export async function measureNetnsLab(lab: NetnsLab, opts: EvalOptions = {}): Promise<{ rows: EvalRow[]; measureMs: number }> {
  const targets = opts.only ? lab.targets.filter((t) => opts.only!(t.url)) : lab.targets;
  const dir = mkdtempSync(join(tmpdir(), `wallscope-netns-${process.pid}-client-`));
  const rows: EvalRow[] = new Array(targets.length);
  let done = 0;
  const t0 = performance.now();
  try {
    const cfg = {
      scenario: lab.scenario,
      targets,
      probeOptions: lab.probeOptions(),
      probe: opts.probe ?? {},
      concurrency: opts.concurrency ?? 8,
    };
    // The client says "ready" when every target is measured: bounded by the probe's own budgets
    // (at most ~30 s a target, the control included), target by target over the concurrency.
    const bound = READY_TIMEOUT_MS + Math.ceil(targets.length / cfg.concurrency) * 30_000;
    const c = startChild(
      lab.topology.client,
      'client',
      cfg,
      dir,
      (m) => {
        if (typeof m.i !== 'number' || !m.row) return;
        rows[m.i] = m.row as EvalRow;
        opts.onRow?.(rows[m.i]!, ++done, targets.length, m.i);
      },
      bound,
    );
    await c.ready; // sent after the last row
    await stopChild(c);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const missing = rows.findIndex((r) => !r);
  if (missing >= 0 || rows.length !== targets.length)
    throw new NetnsError(`the client namespace returned no row for ${targets[missing]?.url ?? 'a target'}`, 'NETNS_SETUP_FAILED');
  return { rows, measureMs: performance.now() - t0 };
}

/** `lab eval --netns`: starts the netns lab, measures every target from the client namespace, scores, stops. */
/** `lab eval --netns --infer`: the rule behind each of `targets`, inferred from the client namespace. */
export async function inferNetnsLab(lab: NetnsLab, targets: InferTarget[], firstClient: number): Promise<InferLine[]> {
  const dir = mkdtempSync(join(tmpdir(), `wallscope-netns-${process.pid}-infer-`));
  try {
    const cfg = { scenario: lab.scenario, sites: lab.sites, silentDns: lab.silentDns, targets, firstClient };
    // About 15 trials of at most 3 s per (name, protocol), 8 names at once.
    const c = startChild(
      lab.topology.client,
      'infer',
      cfg,
      dir,
      undefined,
      READY_TIMEOUT_MS + Math.ceil((targets.length * 3) / 8) * 45_000,
    );
    const lines = (await c.ready) as InferLine[];
    await stopChild(c);
    return lines;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function evalNetnsScenario(s: Scenario, opts: EvalOptions & { netns?: NetnsLabOptions } = {}): Promise<EvalRun> {
  const t0 = performance.now();
  const lab = await startNetnsLab(s, opts.netns);
  const startMs = performance.now() - t0;
  try {
    const { rows, measureMs } = await measureNetnsLab(lab, opts);
    const run: EvalRun = {
      report: scoreRows(s.name, rows),
      rows,
      warnings: lab.warnings,
      measureMs,
      startMs,
      probeOptions: lab.probeOptions(),
    };
    if (opts.infer) run.infer = await inferNetnsLab(lab, inferTargetsOf(rows), 6000 + rows.length);
    return run;
  } finally {
    await lab.close();
  }
}
