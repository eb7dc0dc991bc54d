// `wallscope lab up SCENARIO` and `wallscope lab eval SCENARIO [--json]`: parse arguments, wire
// the lab layer, print. The lab's logic lives in src/lab.
import type { Command } from 'commander';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  censorHops,
  evalNetnsScenario,
  evalScenario,
  expectedPath,
  loadScenario,
  NetnsError,
  netnsMissing,
  scenarioTruth,
  startLab,
  startNetnsLab,
  sweepNetns,
  sweepStaleTables,
  timeoutWaitMs,
  writeExpected,
  ScenarioError,
  type EvalReport,
  type RouterEvent,
} from '../lab/index.js';
import { fileURLToPath } from 'node:url';
import { scenarioAt } from '../model/index.js';
import { repoRoot } from '../probe/index.js';
import { wallscopeCommand } from './self.js';

function usageError(message: string, exitCode = 2): Error {
  return Object.assign(new Error(message), { exitCode });
}

function load(file: string) {
  try {
    return loadScenario(file);
  } catch (e) {
    if (e instanceof ScenarioError) throw usageError(`invalid scenario:\n${e.message}`);
    throw e;
  }
}

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw usageError(`${name} must be a whole number, got ${v}`);
  return n;
};

function pct(x: number | null): string {
  return x === null ? '  -  ' : `${(x * 100).toFixed(1)}%`;
}

export function printReport(r: EvalReport, write: (s: string) => void): void {
  write(`scenario ${r.scenario}: ${r.targets} targets, blocking agreement ${pct(r.blocking_agreement)}\n`);
  for (const [title, table] of [
    ['mechanism', r.per_mechanism],
    ['layer', r.per_layer],
  ] as const) {
    write(`  per ${title}:\n`);
    for (const [k, s] of Object.entries(table))
      write(
        `    ${k.padEnd(16)} precision ${pct(s.precision).padStart(6)}  recall ${pct(s.recall).padStart(6)}  (tp ${s.tp}, fp ${s.fp}, fn ${s.fn})\n`,
      );
  }
  if (r.mismatches.length) {
    write(`  mismatches (${r.mismatches.length}):\n`);
    for (const m of r.mismatches)
      write(
        `    ${m.target}: expected ${m.expected.blocking}/${m.expected.mechanism}/${m.expected.layer}, got ${m.got.blocking}/${m.got.mechanism}/${m.got.layer}\n`,
      );
  }
}

/** Registers `lab up`, `lab eval` and `demo` (the lab's built-in showcase). */
export function register(program: Command): void {
  const lab = program.command('lab');
  registerUp(lab);
  registerTruth(lab);
  registerEval(lab);
  registerClean(lab);
}

function registerUp(lab: Command): void {
  lab
    .command('up')
    .argument('<scenario>', 'scenario file (YAML)')
    .option('--base <n>', 'second octet R of the lab range 127.R.0.0/16 (default: a free random one)', int('--base'))
    .option('--ephemeral-ports', 'serve on ephemeral ports instead of 53/80/443 (the default when not root)')
    .option('--ca-out <file>', 'where to write the lab CA certificate (PEM)')
    .option('--log', 'print every censor action')
    .option('--netns', 'packet-level mode (root): client -> one router per censor -> internet as network namespaces, censors on path')
    .description('Run the lab in the foreground and print how to point a probe at it (Ctrl-C stops it)')
    .action(labUp);
}

interface UpOptions {
  base?: number;
  ephemeralPorts?: boolean;
  caOut?: string;
  log?: boolean;
  netns?: boolean;
}

interface EvalOptions {
  json?: boolean;
  concurrency: number;
  base?: number;
  out?: string;
  only?: string;
  netns?: boolean;
  infer?: boolean;
}

/** `lab up` in loopback mode (netns mode is upNetns): start, print how to use it, wait for Ctrl-C. */
async function labUp(file: string, o: UpOptions): Promise<void> {
  const s = load(file);
  if (o.netns) return upNetns(s, o);
  const running = await startLab(s, {
    ...(o.base !== undefined ? { base: o.base } : {}),
    ...(o.ephemeralPorts ? { standardPorts: false } : {}),
    onTimeline: (at, now) => {
      const entries = (s.timeline ?? []).filter((e) => e.at === at);
      for (const e of entries)
        process.stdout.write(
          `${new Date().toISOString()} timeline at ${at} s: censor ${e.censor}${e.add ? ` add ${JSON.stringify(e.add)}` : ''}${e.remove ? ` remove ${JSON.stringify(e.remove)}` : ''}\n`,
        );
      if (!entries.length) process.stdout.write(`${new Date().toISOString()} timeline at ${at} s: ${now.censors.length} censors updated\n`);
    },
    ...(o.log
      ? {
          log: (e) =>
            process.stdout.write(
              `${new Date(e.t).toISOString()} ${e.client} -> ${e.server} ${e.action}${e.censor ? ` by ${e.censor}` : ''}${e.name ? ` (${e.name})` : ''}${e.detail ? `: ${e.detail}` : ''}\n`,
            ),
        }
      : {}),
  });
  const caFile = o.caOut ?? join(tmpdir(), `wallscope-lab-${process.pid}-ca.pem`);
  try {
    writeFileSync(caFile, running.ca.certPem);
  } catch (e) {
    await running.close();
    throw usageError(`cannot write the lab CA certificate to ${caFile}: ${(e as Error).message}`, 1);
  }
  const w = (x: string) => process.stdout.write(x);
  printLabUp(w, s, running, caFile);
  w('Ctrl-C to stop.\n');
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await running.close();
  rmSync(caFile, { force: true });
  w('lab stopped; nothing left behind.\n');
}

/** What `lab up` prints: the lab's addresses, and commands to point a probe at it. */
function printLabUp(
  w: (x: string) => void,
  s: ReturnType<typeof load>,
  running: Awaited<ReturnType<typeof startLab>>,
  caFile: string,
): void {
  w(`lab "${s.name}" is up on ${running.range}\n`);
  w(`  ISP resolver (behind the censors): ${running.resolver}\n`);
  w(`  public resolver (outside them):    ${running.publicResolver}\n`);
  w(`  silent DNS address (injectors only): ${running.silentDns}\n`);
  w(`  test helper (outside them):        ${running.helperUrl ?? 'none (world.helper: false)'}\n`);
  if (running.platform) {
    w(`  platform ${running.platform.name}:`.padEnd(36) + `${running.platform.url} (API /api/v1/..., pages /u/NAME, truth /_lab/truth)\n`);
    const accounts = s.platform!.accounts;
    w(
      `    ${accounts.length} account(s): ${accounts
        .slice(0, 8)
        .map((a) => a.name)
        .join(', ')}${accounts.length > 8 ? ', ...' : ''} (API token: the scenario's, else token-NAME)\n`,
    );
    w(
      `    e.g. wallscope platform watch ${running.platform.url} ${accounts
        .slice(0, 3)
        .map((a) => a.name)
        .join(' ')} --interval 10 --json\n`,
    );
  }
  for (const svc of running.services) w(`  service ${svc.name} (${svc.kind}):`.padEnd(36) + `${svc.address}:${svc.port}\n`);
  w(`  lab CA certificate:                ${caFile}\n`);
  w(`  allowed range:                     ${running.probeOptions().allowNet!.join(', ')}\n`);
  w(`  sites:\n`);
  for (const site of running.sites.slice(0, 50))
    w(`    ${site.domain.padEnd(28)} ${site.address}  http ${site.httpPort ?? '-'}  https ${site.httpsPort ?? '-'}\n`);
  if (running.sites.length > 50) w(`    ... and ${running.sites.length - 50} more\n`);
  const first = running.sites[0];
  const example = first
    ? `${first.httpsPort ? 'https' : 'http'}://${first.domain}${first.httpsPort && first.httpsPort !== 443 ? `:${first.httpsPort}` : first.httpsPort ? '' : first.httpPort !== 80 ? `:${first.httpPort}` : ''}/`
    : 'URL';
  w(
    `  measure through it: ${wallscopeCommand()} measure --resolver ${running.resolver}${running.helperUrl ? ` --helper ${running.helperUrl}` : ''} --ca ${caFile} --allow-net ${running.probeOptions().allowNet!.join(',')} ${example}\n`,
  );
  w(`  e.g. dig @${running.resolver.split(':')[0]} -p ${running.resolver.split(':')[1]} ${running.sites[0]?.domain ?? 'example.com'}\n`);
  for (const warn of running.warnings) w(`  WARNING: ${warn}\n`);
}

function registerTruth(lab: Command): void {
  lab
    .command('truth')
    .argument('<scenario>', 'scenario file (YAML)')
    .option('--write', 'store it as the expectation file of the library (scenarios/expected/...)')
    .option(
      '--at <seconds>',
      'the truth at this lab time: the timeline applied up to it (default 0, the lab as it comes up)',
      (v: string) => {
        const n = Number(v);
        if (v.trim() === '' || !Number.isFinite(n) || n < 0)
          throw usageError(`--at: expected seconds of lab time (a number >= 0), got ${JSON.stringify(v)}`);
        return n;
      },
    )
    .description("Print the lab's ground truth for every target (no network)")
    .action((file: string, o: { write?: boolean; at?: number }) => {
      const s = load(file);
      if (o.write && o.at !== undefined) throw usageError('--write stores the truth at lab time 0; it does not take --at');
      const truth = o.at !== undefined ? { ...scenarioTruth(scenarioAt(s, o.at)), at: o.at } : scenarioTruth(s);
      if (o.write) {
        const out = expectedPath(join(repoRoot, 'scenarios'), s.source!);
        writeExpected(out, truth);
        process.stdout.write(`wrote ${out}\n`);
      } else process.stdout.write(JSON.stringify(truth, null, 1) + '\n');
    });
}

function registerEval(lab: Command): void {
  lab
    .command('eval')
    .argument('<scenario>', 'scenario file (YAML)')
    .option('--json', 'print only the JSON object of the `lab eval --json` contract (../shared/DESIGN.md)')
    .option('--concurrency <n>', 'targets measured at once', int('--concurrency'), 8)
    .option('--base <n>', 'second octet R of the lab range 127.R.0.0/16', int('--base'))
    .option('--out <file.jsonl>', 'also write every measurement (OONI format) as JSON lines')
    .option('--only <text>', 'only the targets whose URL contains this text')
    .option('--netns', 'packet-level mode (root): the same scenario in network namespaces, the probe in the client namespace')
    .option('--infer', 'also infer the rule behind every blocked target (dns, sni, http; per layer) and add "infer": [lines] to the JSON')
    .description('Measure every target of a scenario through the lab and score the verdicts against the ground truth')
    .action(labEval);
}

/** `lab eval`: measure every target through the lab (loopback or netns), print the scores. */
async function labEval(file: string, o: EvalOptions): Promise<void> {
  const s = load(file);
  if (o.netns) requireNetns();
  const common = {
    concurrency: Math.max(1, o.concurrency),
    ...(o.only !== undefined ? { only: (url: string) => url.includes(o.only!) } : {}),
    onRow:
      o.json || !process.stderr.isTTY
        ? undefined
        : (row: { target: string }, done: number, total: number) =>
            process.stderr.write(`\r${done}/${total} ${row.target.slice(0, 60).padEnd(60)}`),
  };
  const run = o.netns
    ? await netnsOrExit(() => evalNetnsScenario(s, { ...common, ...(o.infer ? { infer: true } : {}) }))
    : await evalScenario(s, {
        ...common,
        ...(o.infer ? { infer: true } : {}),
        lab: { standardPorts: false, ...(o.base !== undefined ? { base: o.base } : {}) },
      });
  if (!o.json && process.stderr.isTTY) process.stderr.write('\n');
  for (const warn of run.warnings) process.stderr.write(`warning: ${warn}\n`);
  if (o.out) writeFileSync(o.out, run.rows.flatMap((r) => (r.measurement ? [JSON.stringify(r.measurement)] : [])).join('\n') + '\n');
  const failed = run.rows.filter((r) => r.error);
  for (const r of failed) process.stderr.write(`error measuring ${r.target}: ${r.error}\n`);
  // Mismatches are results, not failures; a target the probe could not measure at all is.
  if (failed.length) process.exitCode = 1;
  const infer = 'infer' in run ? run.infer : undefined;
  if (o.json) process.stdout.write(JSON.stringify(infer ? { ...run.report, infer } : run.report) + '\n');
  else {
    printReport(run.report, (x) => process.stdout.write(x));
    if (infer) {
      process.stdout.write(`  inferred rules (${infer.length}):\n`);
      for (const l of infer)
        process.stdout.write(
          `    ${l.name} ${l.protocol} ${l.layer ?? '-'}: ${l.keyword !== undefined ? `keyword ${JSON.stringify(l.keyword)}` : l.rule}${l.overblocks.length ? `, overblocks ${l.overblocks.slice(0, 3).join(' ')}${l.overblocks.length > 3 ? ' ...' : ''}` : ''} (${l.queries} queries)\n`,
        );
    }
    const { busyMs, waitMs } = timeoutWaitMs(run.rows, run.probeOptions.dnsWindowMs ?? 0);
    process.stdout.write(
      `  measured in ${(run.measureMs / 1000).toFixed(1)} s (lab start ${(run.startMs / 1000).toFixed(1)} s); ${busyMs ? ((waitMs / busyMs) * 100).toFixed(0) : 0}% of it waiting on configured timeouts\n`,
    );
  }
}

function registerClean(lab: Command): void {
  lab
    .command('clean')
    .option('--all', 'also the namespaces of labs that are still running')
    .description(
      "Remove what a killed lab left behind: netns mode's namespaces (with their veths, nft tables and processes) and loopback mode's nft tables",
    )
    .action((o: { all?: boolean }) => {
      const missing = netnsMissing().filter((m) => m.startsWith('root'));
      if (missing.length) throw usageError(`lab clean needs ${missing.join(', ')}`, 1);
      const ns = sweepNetns(o.all ?? false);
      const tables = sweepStaleTables();
      process.stdout.write(
        `removed ${ns.length} namespace(s)${ns.length ? ` (${ns.join(', ')})` : ''} and ${tables.length} nft table(s)\n`,
      );
    });
}

/** Without root or the tools, netns mode says what is missing and exits non-zero, leaving nothing behind. */
function requireNetns(): void {
  const missing = netnsMissing();
  if (missing.length) throw usageError(`--netns needs ${missing.join(', ')}`, 1);
}

async function netnsOrExit<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof NetnsError) throw usageError(e.message, e.code === 'NETNS_BAD_SCENARIO' ? 2 : 1);
    throw e;
  }
}

const WALLSCOPE_BIN = fileURLToPath(new URL('../../../bin/wallscope.js', import.meta.url));

function formatRouterEvent(e: RouterEvent): string {
  return `${new Date(e.t).toISOString()} ${e.client} -> ${e.server} ${e.action} by ${e.censor}${e.name ? ` (${e.name})` : ''}\n`;
}

async function upNetns(s: Parameters<typeof startNetnsLab>[0], o: { caOut?: string; log?: boolean }): Promise<void> {
  requireNetns();
  const running = await netnsOrExit(() => startNetnsLab(s, o.log ? { log: (e) => process.stdout.write(formatRouterEvent(e)) } : {}));
  const caFile = o.caOut ?? join(tmpdir(), `wallscope-lab-${process.pid}-ca.pem`);
  try {
    writeFileSync(caFile, running.caPem);
  } catch (e) {
    await running.close();
    throw usageError(`cannot write the lab CA certificate to ${caFile}: ${(e as Error).message}`, 1);
  }
  const w = (x: string) => process.stdout.write(x);
  const t = running.topology;
  w(`lab "${s.name}" is up in network namespaces (netns mode)\n`);
  const hops = censorHops(s);
  w(
    `  path: ${[t.client, ...t.routers.map((r, i) => (hops.includes(i + 1) ? `${r} (${s.censors[hops.indexOf(i + 1)]!.name}, hop ${i + 1})` : `${r} (hop ${i + 1})`)), t.internet].join(' -> ')}\n`,
  );
  w(`  ISP resolver (the client namespace's resolv.conf): ${running.resolver}\n`);
  w(`  public resolver: ${running.publicResolver}; silent DNS address (injectors only): ${running.silentDns}\n`);
  w(`  test helper: ${running.helperUrl ?? 'none (world.helper: false)'}\n`);
  w(`  lab CA certificate: ${caFile}\n`);
  w(`  sites:\n`);
  for (const site of running.sites.slice(0, 50)) w(`    ${site.domain.padEnd(28)} ${site.address}\n`);
  if (running.sites.length > 50) w(`    ... and ${running.sites.length - 50} more\n`);
  const first = running.sites[0];
  const url = first ? `${first.httpsPort ? 'https' : 'http'}://${first.domain}/` : 'URL';
  w(`  any client in the client namespace is censored on path, e.g.:\n`);
  w(`    ip netns exec ${t.client} curl --cacert ${caFile} ${url}\n`);
  w(`    ip netns exec ${t.client} dig ${first?.domain ?? 'example.com'}\n`);
  w(
    `    ip netns exec ${t.client} node ${WALLSCOPE_BIN} measure --resolver ${running.resolver}${running.helperUrl ? ` --helper ${running.helperUrl}` : ''} --ca ${caFile} --allow-net 198.18.0.0/15 ${url}\n`,
  );
  for (const warn of running.warnings) w(`  WARNING: ${warn}\n`);
  w('Ctrl-C to stop.\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await running.close();
  rmSync(caFile, { force: true });
  w('lab stopped; namespaces removed.\n');
}
