import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { repoRoot } from '../model/index.js';

const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** Runs the real command in a child process (its own stdout, exit code and signals). */
function run(args: string[]): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { timeout: 60_000 }, (e, out, err) => {
      resolve({ out, err, code: e ? ((e as { code?: number }).code ?? null) : 0 });
    });
  });
}

describe('wallscope lab eval SCENARIO [--json]', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-lab-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints exactly the DESIGN.md JSON object', async () => {
    const f = join(dir, 's.yaml');
    writeFileSync(f, "name: cli\nworld: { sites: [{ domain: ok.example }, { domain: bad.example, https: false }] }\ncensors: [{ name: g, layer: national, http_reset: { host_rules: ['^bad\\.example$'] } }]\n");
    const r = await run(['lab', 'eval', f, '--json']);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.deepEqual(Object.keys(j), ['scenario', 'targets', 'blocking_agreement', 'per_mechanism', 'per_layer', 'mismatches']);
    assert.equal(j.scenario, 'cli');
    assert.equal(j.targets, 3);
    assert.deepEqual(Object.keys(j.per_mechanism['http.reset']), ['tp', 'fp', 'fn', 'precision', 'recall']);
  });

  it('fails with exit code 2 and located errors on a broken scenario', async () => {
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'name: x\nworld:\n  sites: [{ domain: a.example, colour: red }]\n');
    const r = await run(['lab', 'eval', f]);
    assert.equal(r.code, 2);
    assert.match(r.err, /bad\.yaml:3:\d+: world\.sites\[0\]\.colour: unknown key/);
  });
});
