// The `wallscope` command: parses arguments and wires the layers. No logic of its own: each
// subcommand lives in its own file here (`export function register(program)`) and is listed ONCE
// in COMMANDS below. Only the command being run is loaded: `wallscope --help` lists the table
// without importing any command module (start-up time: bench/cli-startup.ts).
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
// Not '../probe/index.js': that loads the whole probe; paths.ts alone is a few lines.
import { repoRoot } from '../probe/paths.js';

export interface CommandEntry {
  name: string;
  /** The line `wallscope --help` shows; also the command's own description when its file sets none. */
  description: string;
  load: () => Promise<{ register(program: Command): void }>;
}

// Every subcommand, one line each, in the order `wallscope --help` lists them. To add one: write
// src/cli/<name>.ts exporting register(program) and add its line here.
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'measure',
    description: 'measure URLs with web_connectivity (OONI format); prints a verdict table, or JSONL with --json',
    load: () => import('./measure.js'),
  },
  {
    name: 'helper',
    description: "run a web_connectivity test helper speaking OONI's control protocol (POST / with JSON)",
    load: () => import('./helper.js'),
  },
  {
    name: 'locate',
    description: 'find the hop of each injector on the path with TTL-limited triggers (root)',
    load: () => import('./locate.js'),
  },
  {
    name: 'fet',
    description: 'the fully-encrypted-traffic censor: classify first packets, test whether the rule is active',
    load: () => import('./fet.js'),
  },
  {
    name: 'analyze',
    description: 're-derive verdicts from OONI measurements (.json, .jsonl, .jsonc): JSONL on stdout, agreement summary on stderr',
    load: () => import('./analyze.js'),
  },
  { name: 'lab', description: 'The censor emulator: run a scenario, or measure and score it', load: () => import('./lab.js') },
  {
    name: 'demo',
    description:
      'Run a realistic national + provincial + ISP censor lab over the Citizen Lab China list and show what is blocked, how and by whom',
    load: () => import('./demo.js'),
  },
  {
    name: 'serve',
    description: 'run the collector (OONI report protocol, submit_measurement), the query/aggregation API, /metrics and the explorer',
    load: () => import('./serve.js'),
  },
  {
    name: 'upload',
    description: 'upload the spooled measurements to a collector; each file is deleted only once acknowledged',
    load: () => import('./upload.js'),
  },
  { name: 'import', description: 'load measurements into the store', load: () => import('./import.js') },
  {
    name: 'reanalyze',
    description: 're-run the analysis over every stored measurement and rewrite the verdicts',
    load: () => import('./reanalyze.js'),
  },
  {
    name: 'campaign',
    description:
      'measure a campaign (YAML with urls:/lists:, every:, collector:, limits:; or an OONI Run v2 descriptor) on a schedule, unattended; resumable after a kill or a reboot',
    load: () => import('./campaign.js'),
  },
  {
    name: 'changes',
    description: 'change detection over the stored measurements (SQLite store): rebuild, list, webhook outbox',
    load: () => import('./changes.js'),
  },
  {
    name: 'lists',
    description:
      'censor lists: generate realistic ones for the lab; snapshots of the inferred rules per layer and date (store, diff, history)',
    load: () => import('./lists.js'),
  },
  { name: 'scan', description: 'scans at scale: which names an on-path injector answers for', load: () => import('./scan.js') },
  {
    name: 'infer',
    description:
      'infer the rule behind each blocked name from its variants (padded left and right, as a label, parent, child, sibling) over DNS, SNI and Host; for a URL blocked by a keyword, the minimal triggering substring',
    load: () => import('./infer.js'),
  },
  {
    name: 'platform',
    description: 'social platforms: deleted posts and the keywords that get posts removed',
    load: () => import('./platform.js'),
  },
  {
    name: 'whereami',
    description:
      'the IP territory label (IP属地) a platform would show for your address: offline, on this machine, never uploaded or logged',
    load: () => import('./whereami.js'),
  },
];

/** The subcommand argv names (`wallscope [--opts] NAME ...`, `wallscope help NAME`), if any. */
function commandNamed(args: readonly string[]): string | undefined {
  const words = args.filter((a) => !a.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

/**
 * The program with every command of COMMANDS listed, and the one named in `argv` (if any) loaded
 * and registered in full. `all: true` loads every command (tests).
 */
export async function buildProgram(argv: readonly string[] = process.argv, opts: { all?: boolean } = {}): Promise<Command> {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const program = new Command('wallscope')
    .description('An open censorship observatory: measure, emulate, collect and explain censorship.')
    .version(pkg.version)
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) })
    // Commander's own errors (unknown command or option, missing argument) become exit 2, the
    // usage-error code of every command (README "Exit codes"); set before the commands inherit it.
    .exitOverride();
  const wanted = commandNamed(argv.slice(2));
  for (const entry of COMMANDS) {
    if (opts.all || entry.name === wanted) {
      (await entry.load()).register(program);
      const cmd = program.commands.find((c) => c.name() === entry.name);
      if (!cmd) throw new Error(`src/cli/${entry.name}.ts registered no '${entry.name}' command`);
      if (!cmd.description()) cmd.description(entry.description);
    } else {
      // A listing only: never run (the named command is the one loaded above).
      program.command(entry.name).description(entry.description);
    }
  }
  return program;
}

const isMain = process.argv[1] && /wallscope(\.js)?$|cli[\\/]main\.(js|ts)$/.test(process.argv[1]);
if (isMain) {
  // `wallscope ... | head` closes our stdout early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  buildProgram(process.argv)
    .then((program) => program.parseAsync(process.argv))
    .catch((err: unknown) => {
      // Commander has printed its message (or the help, or the version) already.
      if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
      const e = err as { message?: string; exitCode?: number };
      process.stderr.write(`wallscope: ${e.message ?? String(err)}\n`);
      process.exit(typeof e.exitCode === 'number' ? e.exitCode : 1);
    });
}
