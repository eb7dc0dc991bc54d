import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../server/index.js';
import { SqliteStore } from '../store/index.js';
import { createCA, issueCert, startTestHelper, type TestHelper } from '../probe/index.js';
import { runWallscope, WALLSCOPE_BIN as bin } from '../testing/cli.js';
import { startDnsServer, startSite, type DnsServer, type Site } from '../testing/probe-servers.js';
import { readResumeFile } from './measure.js';

const run = (args: string[]) => runWallscope(args);

describe('wallscope measure', () => {
  let dir: string;
  let dns: DnsServer;
  let site: Site;
  let tlsSite: Site;
  let helper: TestHelper;
  let caFile: string;
  /** Where the probe resolves, which helper it asks, and that it may reach the local servers. */
  const labOptions = () => ['--resolver', dns.address, '--helper', helper.url, '--allow-net', '127.0.0.0/8'];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wallscope-measure-'));
    const ca = await createCA();
    const leaf = await issueCert(ca, ['a.test']);
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, ca.certPem);
    site = await startSite({ host: '127.0.0.2' });
    tlsSite = await startSite({ host: '127.0.0.2', tls: { cert: leaf.chainPem, key: leaf.keyPem } });
    dns = await startDnsServer({ 'a.test': { kind: 'answer', addrs: ['127.0.0.2'] } });
    helper = await startTestHelper({ host: '127.0.0.1', port: 0, resolver: dns.address, ca: [ca.certPem], allowNet: ['127.0.0.0/8'] });
  });
  after(async () => {
    await helper.close();
    await Promise.all([dns.close(), site.close(), tlsSite.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a malformed URL on the command line is a usage error: exit 2, one line, nothing measured', async () => {
    for (const bad of ['not-a-url', 'ftp://a.test/']) {
      const r = await run(['measure', `http://a.test:${site.port}/`, bad, '--resolver', dns.address, '--allow-net', '127.0.0.0/8']);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `wallscope: not an http(s) URL: ${JSON.stringify(bad)}\n`);
    }
  });

  it('measures a test-list CSV and writes OONI JSONL with --json and --out', async () => {
    const list = join(dir, 'list.csv');
    writeFileSync(
      list,
      `url,category_code,category_description,date_added,source,notes\nhttp://a.test:${site.port}/,NEWS,News Media,2020-01-01,x,"note, with comma"\nhttps://a.test:${tlsSite.port}/,HUMR,Human Rights,2020-01-01,x,\nnot a url,X,,,,\n`,
    );
    const out = join(dir, 'out.jsonl');
    const r = await run([
      'measure',
      '--json',
      '--list',
      list,
      ...labOptions(),
      '--ca',
      caFile,
      '--out',
      out,
      '--concurrency',
      '2',
      '--timeout',
      '3000',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /list\.csv:4: skipped: not an http\(s\) URL/);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { input: string; test_keys: { accessible: boolean }; annotations: Record<string, string> });
    assert.equal(lines.length, 2);
    assert.deepEqual(
      lines.map((m) => m.test_keys.accessible),
      [true, true],
    );
    assert.deepEqual(lines.map((m) => m.annotations.category_code).sort(), ['HUMR', 'NEWS']);
    assert.equal(readFileSync(out, 'utf8'), r.stdout);
  });

  it('--region NAME writes the self-declared region to annotations.region; a bad one exits 2', async () => {
    const r = await run([
      'measure',
      '--json',
      `http://a.test:${site.port}/`,
      ...labOptions(),
      '--no-fingerprints',
      '--no-attribution',
      '--region',
      '  Henan  ',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout.trim()) as { annotations: Record<string, string> };
    assert.equal(m.annotations.region, 'Henan');
    const none = await run(['measure', '--json', `http://a.test:${site.port}/`, ...labOptions(), '--no-fingerprints', '--no-attribution']);
    assert.equal(
      (JSON.parse(none.stdout.trim()) as { annotations: Record<string, string> }).annotations.region,
      undefined,
      'no region unless declared',
    );
    for (const bad of ['   ', 'x'.repeat(65), 'He\u0007nan']) {
      const b = await run(['measure', `http://a.test:${site.port}/`, '--region', bad]);
      assert.equal(b.code, 2, bad);
      assert.match(b.stderr, /--region/);
    }
  });

  it('keeps measurements in the upload spool with --spool DIR', async () => {
    const spool = join(dir, 'spool');
    const r = await run(['measure', `http://a.test:${site.port}/`, ...labOptions(), '--no-fingerprints', '--spool', spool]);
    assert.equal(r.code, 0, r.stderr);
    const files = readdirSync(spool).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1);
    assert.equal((JSON.parse(readFileSync(join(spool, files[0]!), 'utf8')) as { input: string }).input, `http://a.test:${site.port}/`);
  });

  it('spools then uploads to a collector with --upload, and keeps what the collector could not take', async () => {
    const store = new SqliteStore(join(dir, 'collector.sqlite'));
    const srv = await startServer({ store, webRoot: false, rateLimit: false, logger: false });
    try {
      const spool = join(dir, 'spool-up');
      const r = await run([
        'measure',
        `http://a.test:${site.port}/`,
        `https://a.test:${tlsSite.port}/`,
        ...labOptions(),
        '--ca',
        caFile,
        '--no-fingerprints',
        '--spool',
        spool,
        '--upload',
        srv.url,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /upload: 2 uploaded, 0 refused, 0 still spooled/);
      assert.deepEqual(
        readdirSync(spool).filter((f) => f.endsWith('.json')),
        [],
      );
      const list = (await (await fetch(`${srv.url}/api/v1/measurements?limit=10`)).json()) as {
        results: Array<{ input: string; status: string }>;
      };
      assert.deepEqual(list.results.map((x) => x.input).sort(), [`http://a.test:${site.port}/`, `https://a.test:${tlsSite.port}/`]);
    } finally {
      await srv.close();
    }
    // The collector is gone now: the measurement stays in the spool, the run still succeeds.
    const spool2 = join(dir, 'spool-offline');
    const off = await run([
      'measure',
      `http://a.test:${site.port}/`,
      ...labOptions(),
      '--no-fingerprints',
      '--spool',
      spool2,
      '--upload',
      srv.url,
    ]);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stderr, /upload: 0 uploaded, 0 refused, 1 still spooled/);
    assert.equal(readdirSync(spool2).filter((f) => f.endsWith('.json')).length, 1);
    await store.close();
    const bad = await run(['measure', 'http://a.test/', '--upload', 'collector']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--upload: expected the collector's http\(s\) URL/);
  });

  it('prints a table of URL, verdict, mechanism, layer and reason', async () => {
    const r = await run(['measure', `http://a.test:${site.port}/`, 'http://gone.test/', ...labOptions(), '--no-fingerprints']);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.trim().split('\n');
    assert.match(rows[0]!, /^URL\s+VERDICT\s+MECHANISM\s+LAYER\s+REASON$/);
    assert.match(
      rows.find((l) => l.startsWith(`http://a.test:${site.port}/`))!,
      /\sok\s+none\s+\S/,
    );
    assert.match(
      rows.find((l) => l.startsWith('http://gone.test/'))!,
      /\sdown\s/,
    );
  });

  it('rejects bad arguments with a clear message and exit code 2', async () => {
    const none = await run(['measure']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /nothing to measure/);
    const conc = await run(['measure', 'http://a.test/', '--concurrency', 'many']);
    assert.equal(conc.code, 2);
    assert.match(conc.stderr, /--concurrency must be a positive integer/);
    const cidr = await run(['measure', 'http://a.test/', '--allow-net', '127.0.0.0/8,300.0.0.0/8']);
    assert.equal(cidr.code, 2);
    assert.match(cidr.stderr, /bad option: not a CIDR: "300\.0\.0\.0\/8"/);
    const decoy = await run(['measure', 'http://a.test/', '--decoy-sni', '127.0.0.1']);
    assert.equal(decoy.code, 2);
    assert.match(decoy.stderr, /bad option: not a host name for a decoy: "127\.0\.0\.1"/);
    const tcp = await run(['measure', 'http://a.test/', '--dns-tcp']);
    assert.equal(tcp.code, 2);
    assert.match(tcp.stderr, /--dns-tcp needs --resolver/);
  });

  it('passes --decoy-sni and --dns-tcp to the probe', async () => {
    const r = await run([
      'measure',
      '--json',
      `https://a.test:${tlsSite.port}/`,
      ...labOptions(),
      '--ca',
      caFile,
      '--no-fingerprints',
      '--decoy-sni',
      'Decoy.Example.Test',
      '--dns-tcp',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout) as {
      test_keys: {
        queries: Array<{ engine: string; query_type: string }>;
        x_tls_sni_variants: Array<{ tag: string; server_name: string | null }>;
      };
    };
    assert.deepEqual(
      m.test_keys.queries.map((q) => `${q.engine}/${q.query_type}`),
      ['udp/A', 'udp/AAAA', 'tcp/A', 'tcp/AAAA'],
    );
    assert.deepEqual(
      m.test_keys.x_tls_sni_variants.map((v) => [v.tag, v.server_name]),
      [
        ['decoy-before', 'decoy.example.test'],
        ['no-sni', null],
      ],
    );
  });
});

describe('wallscope helper', () => {
  it('listens where told and answers control requests until interrupted', async () => {
    const p = spawn(process.execPath, [bin, 'helper', '--listen', '127.0.0.1:0', '--allow-net', '127.0.0.0/8'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        p.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /listening at (\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        p.once('exit', () => reject(new Error(`helper exited: ${out}`)));
      });
      const res = await fetch(url, {
        method: 'POST',
        body: JSON.stringify({ http_request: 'http://127.0.0.2:1/', tcp_connect: ['127.0.0.2:1'] }),
      });
      const body = (await res.json()) as { tcp_connect: Record<string, { failure: string }> };
      assert.equal(body.tcp_connect['127.0.0.2:1']!.failure, 'connection_refused');
    } finally {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
  });

  it('rejects a bad --max-concurrent with exit code 2', async () => {
    const r = await run(['helper', '--listen', '127.0.0.1:0', '--max-concurrent', '0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--max-concurrent must be a positive integer/);
  });
});

describe('wallscope measure: Ctrl-C and --resume', () => {
  it('SIGINT mid-list leaves a valid output file that --resume completes without duplicates or gaps', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-resume-'));
    // Each page takes 250 ms, two at a time: 12 URLs take long enough to be interrupted half-way.
    const slow = await startSite({ host: '127.0.0.2', handler: (_req, res) => void setTimeout(() => res.end('<title>slow</title>'), 250) });
    const dns = await startDnsServer({ 'slow.test': { kind: 'answer', addrs: ['127.0.0.2'] } });
    try {
      const urls = Array.from({ length: 12 }, (_, i) => `http://slow.test:${slow.port}/p${i}`);
      const list = join(dir, 'list.txt');
      writeFileSync(list, urls.join('\n') + '\n');
      const out = join(dir, 'out.jsonl');
      const args = [
        'measure',
        '--list',
        list,
        '--resolver',
        dns.address,
        '--allow-net',
        '127.0.0.0/8',
        '--concurrency',
        '2',
        '--timeout',
        '3000',
        '--no-fingerprints',
      ];
      const child = spawn(process.execPath, [bin, ...args, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.stdout.resume();
      // Interrupt once some (not all) measurements are on disk; bounded wait.
      for (let i = 0; i < 300; i++) {
        await new Promise((r) => setTimeout(r, 50));
        let n = 0;
        try {
          n = readFileSync(out, 'utf8').split('\n').filter(Boolean).length;
        } catch {
          /* not created yet */
        }
        if (n >= 2) break;
      }
      child.kill('SIGINT');
      const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      assert.equal(code, 130, stderr);
      assert.match(
        stderr,
        /interrupted: \d+ of 12 measured and written to .*out\.jsonl; resume with: (?:wallscope|node \S+\/bin\/wallscope\.js) measure .*--resume .*out\.jsonl/,
      );
      const first = readFileSync(out, 'utf8');
      assert.ok(first.endsWith('\n'));
      const firstInputs = first
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { input: string }).input);
      assert.ok(firstInputs.length >= 2 && firstInputs.length < 12, `interrupted after ${firstInputs.length} of 12`);
      // A line cut short (as by a kill -9 mid-write) is dropped by --resume, not kept half-written.
      writeFileSync(out, first + '{"input":"http://slow.te');
      // The printed resume command, run exactly as printed (a shell line).
      const printed = /resume with: (.*)$/m.exec(stderr)![1]!;
      const r = await new Promise<{ code: number; stderr: string }>((done) => {
        execFile('/bin/sh', ['-c', printed], { maxBuffer: 64 << 20 }, (err, _o, e) =>
          done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr: e }),
        );
      });
      assert.equal(r.code, 0, r.stderr);
      const all = readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { input: string }).input);
      assert.equal(all.length, 12, 'no duplicates');
      assert.deepEqual([...all].sort(), [...urls].sort(), 'no gaps');
      assert.deepEqual(all.slice(0, firstInputs.length), firstInputs, "the first run's lines are kept as they were");
    } finally {
      await Promise.all([dns.close(), slow.close()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('readResumeFile(file): the inputs of an output file, read a chunk at a time', () => {
  it('keeps every input across chunk boundaries, cuts a last line cut short, and names file:line of a foreign line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wallscope-resume-read-'));
    try {
      const file = join(dir, 'out.jsonl');
      // ~3 MB of lines (longer than the 1 MiB chunk, so lines straddle chunk ends), then half a line.
      const pad = 'x'.repeat(3000);
      const lines = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ input: `https://site-${i}.test/`, test_keys: { pad } }) + '\n');
      const whole = lines.join('');
      writeFileSync(file, whole + '{"input":"https://cut.te');
      const done = readResumeFile(file);
      assert.equal(done.size, 1000);
      for (let i = 0; i < 1000; i++) assert.ok(done.has(`https://site-${i}.test/`), `site-${i}`);
      assert.ok(!done.has('https://cut.te'));
      assert.equal(readFileSync(file, 'utf8'), whole, 'the half line is cut off, the rest untouched');
      writeFileSync(file, whole + 'not json\n');
      assert.throws(() => readResumeFile(file), /--resume: .*out\.jsonl:1001: not a measurement line/);
      assert.deepEqual(readResumeFile(join(dir, 'absent.jsonl')), new Set());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
