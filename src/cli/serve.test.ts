// The store commands as a user runs them (bin/wallscope.js in child processes): import ooni,
// reanalyze, serve, and upload of a spool to the served collector.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fixturesDir, repoRoot } from '../probe/index.js';
import { spoolMeasurement } from '../probe/index.js';
import { SqliteStore } from '../store/index.js';
import { sampleMeasurement } from '../testing/seed.js';

const run = promisify(execFile);
const BIN = join(repoRoot, 'bin', 'wallscope.js');
const wallscope = (args: string[]) => run(process.execPath, [BIN, ...args], { timeout: 120_000 });

describe('wallscope import ooni / reanalyze / serve / upload', () => {
  it('imports published measurements, re-analyses them, serves them and takes an upload', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-cli-store-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const db = join(dir, 'w.sqlite');
    const qa = join(fixturesDir, 'measurements', 'synthetic-netem-qa');
    const files = readdirSync(qa)
      .slice(0, 10)
      .map((f) => join(qa, f));
    const imp = await wallscope(['import', 'ooni', ...files, '--db', db, '--no-fingerprints']);
    assert.match(imp.stdout, /files 10, read 10, stored 10, already stored 0, errors 0/);
    const again = await wallscope(['reanalyze', '--db', db, '--only-outdated', '--no-fingerprints']);
    assert.match(again.stdout, /scanned 10, updated 0, failed 0/);
    const all = await wallscope(['reanalyze', '--db', db, '--no-fingerprints']);
    assert.match(all.stdout, /scanned 10, updated 10, failed 0/);

    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--db', db, '--listen', '127.0.0.1:0', '--no-log', '--no-web', '--no-fingerprints'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let err = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 60_000);
      child.stderr.on('data', (c: Buffer) => {
        err += c;
        const m = /wallscope serve: (http:\/\/[\d.:]+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    const list = (await (await fetch(`${url}/api/v1/measurements?limit=100`)).json()) as { results: unknown[] };
    assert.equal(list.results.length, 10);

    const spool = join(dir, 'spool');
    for (let i = 0; i < 3; i++) await spoolMeasurement(spool, sampleMeasurement({ input: `https://cli-${i}.example/` }));
    const up = await wallscope(['upload', '--collector', url, '--spool', spool]);
    assert.match(up.stdout, /uploaded 3, refused 0, still spooled 0/);
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
    const store = new SqliteStore(db);
    t.after(() => store.close());
    assert.equal(await store.count(), 13);
  });

  it('upload exits non-zero and keeps the spool when the collector is unreachable', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-cli-upload-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    await spoolMeasurement(dir, sampleMeasurement());
    await assert.rejects(
      wallscope(['upload', '--collector', 'http://127.0.0.1:9', '--spool', dir, '--retries', '1']),
      (e: { code?: number; stdout?: string }) => {
        assert.equal(e.code, 2);
        assert.match(e.stdout ?? '', /uploaded 0, refused 0, still spooled 1/);
        return true;
      },
    );
  });
});
