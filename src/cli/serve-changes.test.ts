// `wallscope serve` with change detection and webhooks, as an operator starts it (child process):
// the flags are checked before anything listens, and a started collector says it keeps changes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runWallscope, WALLSCOPE_BIN } from '../testing/cli.js';

/** `serve` on a store file, on a free loopback port, quiet and without the explorer; then `extra`. */
const serveArgs = (db: string, ...extra: string[]) => [
  'serve',
  '--db',
  db,
  '--listen',
  '127.0.0.1:0',
  '--no-web',
  '--no-log',
  '--no-fingerprints',
  ...extra,
];

describe('wallscope serve --webhook / --no-changes', () => {
  it('refuses a webhook without a secret or on a server without change detection, in one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-serve-hooks-'));
    try {
      const env = { ...process.env, WALLSCOPE_WEBHOOK_SECRET: '' };
      const noSecret = await runWallscope(serveArgs(join(dir, 'a.db'), '--webhook', 'http://127.0.0.1:9/'), { env });
      assert.notEqual(noSecret.code, 0);
      assert.equal(noSecret.stderr.trim().split('\n').length, 1, noSecret.stderr);
      assert.match(noSecret.stderr, /--webhook needs a signing secret/);
      assert.equal(existsSync(join(dir, 'a.db')), false, 'nothing opened before the flags are checked');
      const off = await runWallscope(serveArgs(join(dir, 'b.db'), '--no-changes', '--webhook', 'http://127.0.0.1:9/'), { env });
      assert.notEqual(off.code, 0);
      assert.match(off.stderr, /--webhook needs change detection/);
      const bad = await runWallscope(serveArgs(join(dir, 'c.db'), '--webhook', 'ftp://x/'), {
        env: { ...env, WALLSCOPE_WEBHOOK_SECRET: 's' },
      });
      assert.match(bad.stderr, /--webhook: expected an http\(s\) URL/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad numbers and an unopenable store are usage errors: exit 2, one line, no store file created', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-serve-hooks-'));
    try {
      for (const [flag, value] of [
        ['--body-limit', 'x'],
        ['--batch-max-items', '-1'],
        ['--rate-limit', 'lots'],
        ['--change-confirmations', '0'],
      ]) {
        const r = await runWallscope(serveArgs(join(dir, 'n.db'), flag!, value!));
        assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, new RegExp(`^wallscope: ${flag}: `));
      }
      assert.equal(existsSync(join(dir, 'n.db')), false, 'nothing opened before the flags are checked');
      const list = await runWallscope(['changes', 'list', '--db', join(dir, 'no', 'such', 'dir', 'x.db')]);
      assert.equal(list.code, 2, list.stderr);
      assert.match(list.stderr, /^wallscope: cannot open the store \(--db .*x\.db\): /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts with a webhook and keeps changes in the store file', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-serve-hooks-'));
    const secret = join(dir, 'secret');
    writeFileSync(secret, 'abc\n');
    const child = spawn(
      process.execPath,
      [WALLSCOPE_BIN, ...serveArgs(join(dir, 'w.db'), '--webhook', 'http://127.0.0.1:9/', '--webhook-secret-file', secret)],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    let err = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 60_000);
      child.stderr!.on('data', (c: Buffer) => {
        err += c;
        const m = /wallscope serve: (http:\/\/\S+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    assert.deepEqual(await (await fetch(`${url}/api/v1/changes/status`)).json(), { enabled: true, confirmations: 2 });
    assert.deepEqual(await (await fetch(`${url}/api/v1/changes`)).json(), { changes: [] });
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    assert.ok(existsSync(join(dir, 'w.db')));
  });
});
