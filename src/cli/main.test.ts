// The command table (src/cli/main.ts COMMANDS) is the one place commands are registered: every
// entry's module registers exactly its command, `wallscope --help` lists every entry, and each
// `wallscope <cmd> --help` gives that command's full help (options included) from its own module.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runWallscope } from '../testing/cli.js';
import { buildProgram, COMMANDS } from './main.js';

const run = (args: string[]) => runWallscope(args);

describe('wallscope command table', () => {
  it('every entry loads a module that registers exactly that command, with the listed description', async () => {
    const names = COMMANDS.map((c) => c.name);
    assert.equal(new Set(names).size, names.length, 'no name twice');
    const program = await buildProgram(['node', 'wallscope'], { all: true });
    assert.deepEqual(program.commands.map((c) => c.name()).sort(), [...names].sort(), 'no command registered outside the table');
    for (const entry of COMMANDS) {
      const cmd = program.commands.find((c) => c.name() === entry.name)!;
      assert.ok(cmd.description().length > 0, entry.name);
      // reanalyze states its analysis version in its own help; the others take the table's line.
      if (entry.name !== 'reanalyze') assert.equal(cmd.description(), entry.description, entry.name);
    }
  });

  it('`wallscope --help` lists every command', async () => {
    const r = await run(['--help']);
    assert.equal(r.code, 0, r.stderr);
    for (const entry of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${entry.name} `, 'm'), entry.name);
  });

  for (const entry of COMMANDS) {
    it(`\`wallscope ${entry.name} --help\` and \`wallscope help ${entry.name}\` show the command's own help`, async () => {
      const full = await buildProgram(['node', 'wallscope', entry.name]);
      const cmd = full.commands.find((c) => c.name() === entry.name)!;
      const want = cmd.helpInformation();
      assert.ok(cmd.options.length > 0 || cmd.commands.length > 0, `${entry.name} is registered in full (options or subcommands)`);
      for (const args of [
        [entry.name, '--help'],
        ['help', entry.name],
      ]) {
        const r = await run(args);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, want);
        assert.match(r.stdout, new RegExp(`^Usage: wallscope ${entry.name} `, 'm'));
      }
    });
  }

  it('an unknown command exits non-zero with one clear line', async () => {
    const r = await run(['frobnicate']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
  });
});
