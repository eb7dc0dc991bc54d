// The `wallscope` command: parses arguments and wires the layers. No logic of its own: each
// subcommand lives in its own file here and registers itself on the program.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../model/index.js';
import { register as registerAnalyze } from './analyze.js';
import { register as registerFet } from './fet.js';
import { register as registerLab } from './lab.js';
import { register as registerServe } from './serve.js';
import { register as registerMeasure } from './measure.js';
import { register as registerLocate } from './locate.js';
import { register as registerCampaign } from './campaign.js';
import { register as registerChanges } from './changes.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('wallscope')
    .description('An open censorship observatory: measure, emulate, collect and explain censorship.')
    .version(pkg.version)
    .showHelpAfterError()
    .configureOutput({ outputError: (s, write) => write(s) });
  // Subcommands register here, one line each (keep the list sorted by layer).
  registerAnalyze(program);
  registerFet(program);
  registerLab(program);
  registerServe(program);
  registerMeasure(program);
  registerLocate(program);
  registerCampaign(program);
  registerChanges(program);
  return program;
}

const isMain = process.argv[1] && /wallscope(\.js)?$|cli[\\/]main\.(js|ts)$/.test(process.argv[1]);
if (isMain) {
  // `wallscope ... | head` closes our stdout early: that is the reader's choice, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      const e = err as { message?: string; exitCode?: number };
      process.stderr.write(`wallscope: ${e.message ?? String(err)}\n`);
      process.exit(typeof e.exitCode === 'number' ? e.exitCode : 1);
    });
}
