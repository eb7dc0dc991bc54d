// `wallscope campaign` as a volunteer runs it (bin/wallscope.js in a child process) against the
// loopback lab and a real collector (startServer on a SQLite file): killed with -9 mid-round and
// restarted, every measurement of every round reaches the store exactly once.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { labProbeDefaults, parseScenario, startLab } from '../lab/index.js';
import { repoRoot } from '../probe/index.js';
import { parseCampaign, runCampaign, shuffled } from '../probe/index.js';
import { startServer } from '../server/index.js';
import { SqliteStore } from '../store/index.js';

const BIN = join(repoRoot, 'bin', 'wallscope.js');

const SCENARIO = String.raw`
name: campaign-test
world:
  sites:
    - domain: ok.example
    - domain: blocked.example
    - domain: news.example
censors:
  - name: prov
    layer: regional
    sni_reset: { rules: ['^blocked\.example$'], residual_s: 0 }
    http_reset: { host_rules: ['^blocked\.example$'] }
`;

describe('parseCampaign(text, file)', () => {
  it('reads urls, lists, every, collector and limits, and names file:line for each problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-camp-parse-'));
    try {
      writeFileSync(join(dir, 'list.csv'), 'url,category_code\nhttps://a.example/,NEWS\nhttps://b.example/,HUMR\n');
      const s = parseCampaign(
        'urls: [https://c.example/, https://a.example/]\nlists: [list.csv]\nevery: 6h\ncollector: http://127.0.0.1:1/\nlimits: { per_hour: 100 }\n',
        join(dir, 'c.yaml'),
      );
      assert.deepEqual(
        s.targets.map((t) => t.url),
        ['https://c.example/', 'https://a.example/', 'https://b.example/'],
      );
      assert.equal(s.everyS, 6 * 3600);
      assert.equal(s.perHour, 100);
      assert.equal(s.name, 'c');
      writeFileSync(join(dir, 'bad.csv'), 'url\nhttps://a.example/\nftp://x/\n');
      assert.throws(
        () => parseCampaign('lists: [bad.csv]\nevery: 10\n', join(dir, 'c.yaml')),
        (e: Error) => /bad\.csv:3: /.test(e.message),
      );
      assert.throws(
        () => parseCampaign('urls: [https://a.example/]\nevery: soon\n', 'c.yaml'),
        (e: Error) => /^c\.yaml:2:8: every: expected a period/.test(e.message),
      );
      assert.throws(
        () => parseCampaign('urls: [https://a.example/]\nevry: 10\n', 'c.yaml'),
        (e: Error) => /^c\.yaml:2:1: evry: unknown key 'evry'/.test(e.message),
      );
      assert.throws(
        () => parseCampaign('urls: [notaurl]\nevery: 10\n', 'c.yaml'),
        (e: Error) => /c\.yaml:1:8: urls: 'notaurl' is not an http or https URL/.test(e.message),
      );
      // An OONI Run v2 descriptor: web_connectivity's inputs, the period from the command line.
      const run = JSON.stringify({
        name: 'My run',
        description: 'x',
        author: 'me',
        nettests: [
          {
            test_name: 'web_connectivity',
            inputs: ['https://a.example/'],
            options: {},
            backend_options: {},
            is_background_run_enabled_default: false,
            is_manual_run_enabled_default: false,
          },
        ],
      });
      const r = parseCampaign(run, 'run.json', { every: '1h' });
      assert.deepEqual([r.name, r.ooniRun, r.everyS, r.targets.length], ['My run', true, 3600, 1]);
      assert.throws(
        () => parseCampaign(run, 'run.json'),
        (e: Error) => /give --every/.test(e.message),
      );
      // Other nettests are skipped with a located warning; a descriptor with nothing to run is an error.
      const mixed = parseCampaign(
        JSON.stringify({
          name: 'x',
          nettests: [{ test_name: 'telegram' }, { test_name: 'web_connectivity', inputs: ['https://a.example/'] }],
        }),
        'run.json',
        { every: '1h' },
      );
      assert.equal(mixed.targets.length, 1);
      assert.match(mixed.warnings.join('\n'), /^run\.json:1:\d+: nettests\[0\]\.test_name: 'telegram' skipped/);
      assert.throws(
        () => parseCampaign(JSON.stringify({ name: 'x', nettests: [{ test_name: 'telegram' }] }), 'run.json', { every: '1h' }),
        (e: Error) => /run\.json: nothing to measure .*'telegram' skipped/.test(e.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('wallscope campaign FILE (loopback lab, real collector)', () => {
  it('killed with -9 mid-round and restarted, uploads every measurement of every round exactly once', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-campaign-'));
    const lab = await startLab(parseScenario(SCENARIO, join(dir, 's.yaml')), { standardPorts: false });
    const store = new SqliteStore(join(dir, 'c.sqlite'));
    const srv = await startServer({ store, host: '127.0.0.1', port: 0, rateLimit: false, webRoot: false });
    const children: ChildProcess[] = [];
    t.after(async () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await srv.close();
      await store.close();
      await lab.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, lab.ca.certPem);
    const urls = lab.targets.map((x) => x.dialUrl);
    const ROUNDS = 3;
    writeFileSync(
      join(dir, 'campaign.yaml'),
      `name: kill-test\nurls:\n${urls.map((u) => `  - ${u}\n`).join('')}every: 5s\ncollector: ${srv.url}\nlimits: { concurrency: 2 }\n`,
    );
    const state = join(dir, 'state');
    const po = lab.probeOptions();
    const args = [
      BIN,
      'campaign',
      join(dir, 'campaign.yaml'),
      '--state',
      state,
      '--rounds',
      String(ROUNDS),
      '--resolver',
      po.resolver!,
      '--helper',
      po.helper!,
      '--ca',
      ca,
      '--allow-net',
      po.allowNet!.join(','),
      '--timeout',
      '3000',
      '--no-fingerprints',
    ];
    let log = '';
    const start = (): ChildProcess => {
      const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(c);
      c.stdout!.on('data', (d: Buffer) => (log += d));
      c.stderr!.on('data', (d: Buffer) => (log += d));
      return c;
    };
    const exited = (c: ChildProcess) =>
      new Promise<number | null>((r) => (c.exitCode !== null || c.signalCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

    // First run: killed with -9 once three measurements of round 0 are reported.
    const first = start();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no measurements in time:\n${log}`)), 60_000);
      const tick = setInterval(() => {
        if ((log.match(/ round 0: http/g) ?? []).length >= 3) {
          clearInterval(tick);
          clearTimeout(timer);
          first.kill('SIGKILL');
          resolve();
        }
      }, 5);
    });
    await exited(first);
    const killedAt = log.length;
    // Second run: finishes round 0 (even when its period has passed meanwhile) and runs to the last round.
    const second = start();
    const code = await Promise.race([exited(second), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 90_000).unref())]);
    assert.equal(code, 0, log);
    const after = log.slice(killedAt);
    assert.match(after, /round 0: \d of 6 URL\(s\) to measure \([1-6] already done before a restart\)/, after);

    // The store holds each (round, URL) once, for every round and every URL; nothing is left spooled.
    const seen = new Map<string, number>();
    let cursor: string | null = null;
    for (;;) {
      const page = await store.scan(cursor, 1000);
      if (!page.length) break;
      for (const m of page) {
        const k = `${m.measurement.annotations?.campaign_round} ${m.measurement.input}`;
        seen.set(k, (seen.get(k) ?? 0) + 1);
      }
      cursor = page[page.length - 1]!.measurement_uid;
    }
    const expected = Array.from({ length: ROUNDS }, (_, r) => urls.map((u) => `${r} ${u}`))
      .flat()
      .sort();
    assert.deepEqual([...seen.keys()].sort(), expected, log);
    assert.ok([...seen.values()].every((n) => n === 1));
    assert.equal(await store.count(), ROUNDS * urls.length);
    // Nothing left in the spool, not even a write the kill cut short (removed at the restart).
    const spool = join(state, 'spool');
    assert.deepEqual(existsSync(spool) ? readdirSync(spool).filter((f) => f.endsWith('.json')) : [], []);
    assert.equal(existsSync(join(state, 'lock')), false);
    // The journal agrees: one line per (round, URL).
    const lines = readFileSync(join(state, 'journal.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { round: number; url: string });
    assert.equal(new Set(lines.map((l) => `${l.round} ${l.url}`)).size, lines.length);
    // Blocked targets were seen blocked: the lab's truth reached the collector's verdicts.
    const blocked = await store.list({ domain: 'blocked.example' }, { limit: 100 });
    assert.ok(
      blocked.results.length === ROUNDS * 2 && blocked.results.every((r) => r.status === 'blocked'),
      JSON.stringify(blocked.results.map((r) => [r.input, r.status, r.mechanism])),
    );
  });
});

describe('runCampaign(spec, options): budget and order', () => {
  it('orders each round at random, reproducibly per (campaign, round)', () => {
    const urls = Array.from({ length: 20 }, (_, i) => `https://s${i}.example/`);
    const r0 = shuffled(urls, 'c\u00000');
    assert.deepEqual([...r0].sort(), [...urls].sort());
    assert.deepEqual(shuffled(urls, 'c\u00000'), r0);
    assert.notDeepEqual(shuffled(urls, 'c\u00001'), r0);
    assert.notDeepEqual(r0, urls);
  });

  it('stops at the per-hour budget and says so', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-budget-'));
    const lab = await startLab(parseScenario(SCENARIO, join(dir, 's.yaml')), { standardPorts: false });
    t.after(async () => {
      await lab.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const spec = parseCampaign(
      `urls:\n${lab.targets.map((x) => `  - ${x.dialUrl}\n`).join('')}every: 1s\nlimits: { per_hour: 4, concurrency: 2 }\n`,
      join(dir, 'budget.yaml'),
    );
    const stop = new AbortController();
    const log: string[] = [];
    const summary = await runCampaign(spec, {
      stateDir: join(dir, 'state'),
      probe: { ...lab.probeOptions(), ...labProbeDefaults(lab.scenario) },
      log: (l) => {
        log.push(l);
        if (l.startsWith('budget:')) setTimeout(() => stop.abort(), 1500);
      },
      signal: stop.signal,
    });
    assert.equal(summary.measured, 4, log.join('\n'));
    // A second campaign on a state directory in use is refused.
    writeFileSync(join(dir, 'state', 'lock'), `${process.ppid}\n`);
    await assert.rejects(
      runCampaign(spec, { stateDir: join(dir, 'state'), probe: {}, log: () => undefined }),
      /is in use by another campaign \(pid \d+\)/,
    );
    assert.ok(
      log.some((l) => /^budget: 4 measurements in the last hour; waiting 3\d{3} s$/.test(l)),
      log.join('\n'),
    );
    // Without a collector the measurements stay in the spool, ready for `wallscope upload`.
    assert.equal(summary.spooled, 4);
    assert.equal(readdirSync(join(dir, 'state', 'spool')).filter((f) => f.endsWith('.json')).length, 4);
  });
});
