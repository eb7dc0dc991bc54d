import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { nftAvailable, sweepStaleTables } from '../lab/index.js';
import { repoRoot } from '../probe/index.js';

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

  it('prints exactly the ../shared/DESIGN.md JSON object', async () => {
    const f = join(dir, 's.yaml');
    writeFileSync(
      f,
      "name: cli\nworld: { sites: [{ domain: ok.example }, { domain: bad.example, https: false }] }\ncensors: [{ name: g, layer: national, http_reset: { host_rules: ['^bad\\.example$'] } }]\n",
    );
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

describe('wallscope lab up SCENARIO', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-lab-up-'));
  const file = join(dir, 'up.yaml');
  writeFileSync(
    file,
    'name: up\nworld: { sites: [{ domain: a.example }, { domain: dropped.example }] }\ncensors: [{ name: g, layer: national, null_route: [dropped.example] }]\n',
  );
  after(() => rmSync(dir, { recursive: true, force: true }));
  const tables = () => spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout;

  function up(): Promise<{ child: ChildProcess; out: string }> {
    const child = spawn(process.execPath, [main, 'lab', 'up', file, '--ephemeral-ports'], { stdio: ['ignore', 'pipe', 'pipe'] });
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`lab up did not come up: ${out}`)), 20_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ctrl-C to stop.')) {
          clearTimeout(timer);
          resolve({ child, out });
        }
      });
      child.on('exit', () => reject(new Error(`lab up exited: ${out}`)));
    });
  }

  it('prints how to point a probe at it, and leaves nothing behind when stopped', async (t) => {
    const { child, out } = await up();
    t.after(() => child.kill('SIGKILL'));
    assert.match(out, /ISP resolver \(behind the censors\): 127\.\d+\.0\.2:\d+/);
    assert.match(out, /test helper \(outside them\): +http:\/\/127\.\d+\.0\.4:\d+/);
    assert.match(out, /--allow-net 127\.\d+\.0\.0\/16/);
    const ca = /lab CA certificate: +(\S+)/.exec(out)![1]!;
    assert.ok(existsSync(ca));
    if (nftAvailable().ok) assert.match(tables(), new RegExp(`wallscope_${child.pid}_`));
    else assert.match(out, /WARNING: .*null_route/);
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    await exited;
    assert.doesNotMatch(tables(), new RegExp(`wallscope_${child.pid}_`));
    assert.equal(existsSync(ca), false);
  });

  it('a lab killed half-way (SIGKILL) has its nftables table swept by the next start', async (t) => {
    if (!nftAvailable().ok) return t.skip('no nftables');
    const { child } = await up();
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;
    assert.match(tables(), new RegExp(`wallscope_${child.pid}_`));
    sweepStaleTables();
    assert.doesNotMatch(tables(), new RegExp(`wallscope_${child.pid}_`));
  });
});

describe('wallscope demo', () => {
  it('measures the first entries of the China list through the built-in lab and sums them up', async () => {
    const r = await run(['demo', '--limit', '25', '--json']);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.equal(j.summary.targets, 25);
    assert.equal(j.summary.blocked + j.summary.accessible + j.summary.other, 25);
    assert.ok(j.summary.blocked > 0, 'the list has blocked entries in the demo world');
    assert.deepEqual(Object.keys(j.score), ['scenario', 'targets', 'blocking_agreement', 'per_mechanism', 'per_layer', 'mismatches']);
  });
});

describe('wallscope demo (store and explorer)', () => {
  it('stores every measurement, serves the explorer and its API over them, and stops on SIGINT', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-demo-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const db = join(dir, 'demo.db');
    const child = spawn(process.execPath, [main, 'demo', '--limit', '20', '--db', db, '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no explorer URL within 90 s:\n${out}`)), 90_000);
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /Explorer: open (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`demo exited (${code}) before serving:\n${out}`));
      });
    });
    assert.match(out, /Stored 20 measurements in /);
    const list = (await (await fetch(`${url}/api/v1/measurements?limit=100`)).json()) as {
      results: Array<{ probe_cc: string; status: string; mechanism: string | null }>;
    };
    assert.equal(list.results.length, 20);
    assert.ok(
      list.results.every((r) => r.probe_cc === 'CN'),
      'the emulated vantage point is stored',
    );
    assert.ok(
      list.results.some((r) => r.status === 'blocked'),
      'blocked targets are in the store',
    );
    // The explorer's Changes page has its API over the demo too (one run: no change yet).
    const changes = await fetch(`${url}/api/v1/changes?since=2020-01-01T00:00:00Z`);
    assert.equal(changes.status, 200);
    assert.deepEqual(await changes.json(), { changes: [] });
    // And its Lists page has the list tables (no snapshot: the demo infers no rules).
    assert.deepEqual(await (await fetch(`${url}/api/v1/lists/status`)).json(), { enabled: true, dates: [] });
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<div id="app"|<script type="module"/);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.ok(existsSync(db));
  });
});
