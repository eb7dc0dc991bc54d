import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DnsScanSummarizer, inShard, type DnsScanLine } from '../analysis/index.js';
import { generateRules, parseScenario, startLab, type Lab } from '../lab/index.js';
import { repoRoot } from '../probe/index.js';
import { Policy } from '../lab/policy.js';

const bin = join(repoRoot, 'bin', 'wallscope.js');
const dir = mkdtempSync(join(tmpdir(), 'wallscope-scan-test-'));
let lab: Lab;
let policy: Policy;
const NAMES: string[] = [];

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, 'scan', 'dns', ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const lines = (f: string): DnsScanLine[] =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DnsScanLine);

before(async () => {
  // A GFW-shaped list of 2,000 rules; the scanned names are half its own names (blocked), half
  // unrelated ones, plus `kw$` overblocking samples.
  const rules = [...generateRules(3, 2000, 'gfw')];
  writeFileSync(join(dir, 'gfw.txt'), rules.map((r) => r.rule).join('\n'));
  for (const [i, r] of rules.slice(0, 600).entries()) NAMES.push(r.shape === 'unanchored' ? `${r.kw}.org` : r.kw, `free${i}.example`);
  for (const r of rules.filter((x) => x.shape === 'end').slice(0, 10)) NAMES.push(`not${r.kw}`);
  writeFileSync(join(dir, 'names.txt'), `# scan list\n${NAMES.join('\n')}\n`);
  const s = parseScenario(
    `name: scan\nworld: { sites: [{ domain: ok.example }] }\ncensors:\n  - name: gfw\n    layer: national\n    dns_injection: { rules_file: gfw.txt, injectors: 2, lead_ms: 0 }\n`,
    join(dir, 'scan.yaml'),
  );
  lab = await startLab(s);
  policy = new Policy(s);
});
after(async () => {
  await lab?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('wallscope scan dns against the lab silent address (real sockets)', () => {
  it('writes one line per name and query type in list order, every injected reply kept', async () => {
    const out = join(dir, 'full.jsonl');
    const r = await run([
      '--target',
      lab.silentDns,
      '--list',
      join(dir, 'names.txt'),
      '--rate',
      '2000',
      '--wait',
      '1500',
      '--qtype',
      'A,MX',
      '--out',
      out,
      '--summary',
      '--quiet',
      '--io',
      'sendmmsg', // the udp-batch addon; the dgram path gives the same lines (below)
    ]);
    assert.equal(r.code, 0, r.stderr);
    const got = lines(out);
    assert.deepEqual(
      got.map((l) => `${l.name} ${l.qtype}`),
      NAMES.flatMap((n) => [`${n} A`, `${n} MX`]),
    );
    for (const l of got) {
      const blocked = policy.dnsInjectors(l.name).length > 0;
      assert.equal(l.injected, blocked, l.name);
      assert.equal(l.replies.length, blocked ? 2 : 0, JSON.stringify(l)); // two injectors, no resolver
      for (const rep of l.replies) {
        assert.equal(rep.rcode, 'NOERROR');
        assert.equal(rep.flags, 0x8180); // RD=1 -> QR|RD|RA (blackbox.c)
        assert.equal(rep.answers.length, 1);
        assert.equal(rep.answers[0]!.type, 'A'); // an A record even to MX queries
        assert.ok(rep.ms >= 0 && rep.ms < 1500);
        assert.equal(rep.ip_ttl, 64); // read by the addon's sockets (IP_RECVTTL): loopback sockets send TTL 64
      }
    }
    const sum = JSON.parse(r.stdout) as ReturnType<DnsScanSummarizer['result']>;
    const injectedMx = got.filter((l) => l.qtype === 'MX' && l.injected).length;
    assert.ok(injectedMx > 250, String(injectedMx));
    assert.equal(sum.forged_a_to_non_a, injectedMx);
    assert.equal(sum.injectors, 2);
    assert.ok(sum.forged_pool.distinct > 500 && sum.forged_pool.distinct <= 592, String(sum.forged_pool.distinct)); // the remapped 592-address pool
    assert.ok(sum.forged_pool.top.every(([a]) => a.startsWith(lab.range.split('.').slice(0, 2).join('.'))));
  });

  it('splits one list into shards that cover every name exactly once', async () => {
    const all: string[] = [];
    for (let i = 0; i < 3; i++) {
      const out = join(dir, `shard${i}.jsonl`);
      const r = await run([
        '--target',
        lab.silentDns,
        '--list',
        join(dir, 'names.txt'),
        '--rate',
        '0',
        '--wait',
        '100',
        '--shard',
        `${i}/3`,
        '--threads',
        String(i + 1), // 1 to 3 sending threads: the lines come back in list order either way
        '--io',
        i === 1 ? 'dgram' : 'sendmmsg',
        '--out',
        out,
        '--quiet',
        '--no-ip-ttl',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const got = lines(out).map((l) => l.name);
      assert.deepEqual(
        got,
        NAMES.filter((n) => inShard(n, i, 3)),
      );
      assert.ok(got.length > NAMES.length / 5);
      all.push(...got);
    }
    assert.deepEqual([...all].sort(), [...NAMES].sort());
  });

  it('resumes after kill -9 without repeating or losing a name', async () => {
    const out = join(dir, 'killed.jsonl');
    const args = ['--target', lab.silentDns, '--list', join(dir, 'names.txt'), '--rate', '400', '--wait', '1000', '--out', out, '--quiet'];
    // Killed while two sending threads work (without capture: with one, a single thread does all).
    const child = spawn(process.execPath, [bin, 'scan', 'dns', ...args, '--threads', '2', '--no-ip-ttl', '--io', 'sendmmsg'], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 30_000;
    while ((!existsSync(out) || statSync(out).size < 40_000) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const before = readFileSync(out, 'utf8');
    assert.ok(before.split('\n').length > 50 && before.split('\n').length < NAMES.length, 'killed mid-scan');
    // Without --resume the file is refused, untouched.
    const refused = await run(args);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /exists; pass --resume/);
    assert.equal(readFileSync(out, 'utf8'), before);
    // Resumed through dgram (and its capture when root): the two paths continue each other's files.
    const r = await run([...args, '--resume', '--rate', '2000', '--io', 'dgram']);
    assert.equal(r.code, 0, r.stderr);
    const got = lines(out);
    assert.deepEqual(
      got.map((l) => l.name),
      NAMES,
    );
    for (const l of got) assert.equal(l.injected, policy.dnsInjectors(l.name).length > 0, l.name);
    // A different list is not resumed into this file.
    writeFileSync(join(dir, 'other.txt'), 'a.example\nb.example\n');
    const mismatch = await run(['--target', lab.silentDns, '--list', join(dir, 'other.txt'), '--out', out, '--resume', '--quiet']);
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.stderr, /not the same scan/);
  });

  it('writes the same lines through the udp-batch addon (sendmmsg) as through dgram', async () => {
    // The injectors walk their forged pool in arrival order and draw TTLs from the scenario seed:
    // each path gets a fresh lab of the same seed, and the queries leave in list order on both.
    const yaml = `name: same\nseed: 7\nworld: { sites: [{ domain: ok.example }] }\ncensors:\n  - name: gfw\n    layer: national\n    dns_injection: { rules_file: gfw.txt, injectors: 2, lead_ms: 0 }\n`;
    writeFileSync(join(dir, 'some.txt'), `${NAMES.slice(0, 300).join('\n')}\n`);
    // Reply IP TTLs: the addon reads them from its socket, dgram from a capture (root only).
    const ttl = process.getuid?.() === 0 ? [] : ['--no-ip-ttl'];
    const byPath: Record<string, string[]> = {};
    for (const io of ['sendmmsg', 'dgram']) {
      const fresh = await startLab(parseScenario(yaml, join(dir, 'same.yaml')));
      try {
        const out = join(dir, `same-${io}.jsonl`);
        const args = ['--list', join(dir, 'some.txt'), '--rate', '500', '--wait', '800', '--qtype', 'A,MX', '--out', out, '--io', io];
        const r = await run(['--target', fresh.silentDns, ...args, ...ttl]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, new RegExp(`; io ${io} \\(`)); // the summary says which path ran
        // Everything but each reply's time (`ms`), which no two runs share, and the lab's own 127.R range.
        const range = `"${fresh.range.split('.').slice(0, 2).join('.')}.`;
        byPath[io] = lines(out).map((l) =>
          JSON.stringify({ ...l, replies: l.replies.map(({ ms: _, ...rest }) => rest) }).replaceAll(range, '"127.R.'),
        );
      } finally {
        await fresh.close();
      }
    }
    assert.equal(byPath.sendmmsg!.length, 600);
    assert.ok(byPath.sendmmsg!.filter((l) => l.includes('"injected":true')).length > 200);
    if (!ttl.length) assert.ok(byPath.sendmmsg!.every((l) => !l.includes('"ip_ttl":null')));
    assert.deepEqual(byPath.sendmmsg, byPath.dgram);
  });

  it('refuses bad input with one line and writes nothing', async () => {
    writeFileSync(join(dir, 'bad.txt'), 'ok.example\n# fine\nnot a name\n');
    const out = join(dir, 'bad.jsonl');
    let r = await run(['--target', lab.silentDns, '--list', join(dir, 'bad.txt'), '--out', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`bad\\.txt:3: not a domain name`));
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.equal(existsSync(out), false);
    for (const args of [
      ['--target', 'example.com', 'a.example'],
      ['--target', lab.silentDns, '--shard', '3/3', 'a.example'],
      ['--target', lab.silentDns, '--qtype', 'BOGUS', 'a.example'],
      ['--target', lab.silentDns, '--threads', '0', 'a.example'],
      ['--target', lab.silentDns, '--outstanding', '-1', 'a.example'],
      ['--target', lab.silentDns, '--io', 'uring', 'a.example'],
      ['--target', lab.silentDns],
    ]) {
      r = await run([...args, '--out', out]);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(existsSync(out), false);
    }
  });
});
