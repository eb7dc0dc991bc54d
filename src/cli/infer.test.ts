import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseScenario, startLab, type Lab } from '../lab/index.js';
import { repoRoot } from '../probe/index.js';

let lab: Lab;
function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(repoRoot, 'bin', 'wallscope.js'), 'infer', ...args], (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

before(async () => {
  lab = await startLab(
    parseScenario(
      String.raw`
name: infer-cli
world:
  sites: [{ domain: site.example }, { domain: example.com }]
censors:
  - name: henan
    layer: regional
    sni_reset: { rules: ['example\.com$'] }
  - name: gfw
    layer: national
    dns_injection: { rules: ['^(.*\.)?blocked\.org$'] }
    http_reset: { host_rules: ['^(.*\.)?google\.com'], keywords: [tiananmen], residual_s: 90 }
`,
      '/tmp/infer-cli.yaml',
    ),
  );
});
after(async () => lab?.close());

describe('wallscope infer', () => {
  it('prints one JSON line per (name, protocol, layer) that blocks it, from trials on fresh source addresses', async () => {
    const site = lab.sites.find((s) => s.domain === 'site.example')!;
    const locals = Array.from({ length: 60 }, (_, i) => lab.clientAddress(3000 + i)).join(',');
    const r = await run([
      '--resolver',
      lab.silentDns,
      '--tls-server',
      `${site.address}:${site.httpsPort}`,
      '--http-server',
      `${site.address}:${site.httpPort}`,
      '--local-address',
      locals,
      '--layer',
      'national',
      '--timeout',
      '1000',
      '--json',
      'www.blocked.org',
      'example.com',
      'www.google.com',
      `http://site.example/a/tiananmen-1989?x=1`,
      'free.example',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            name: string;
            protocol: string;
            layer: string;
            rule: string;
            variants: Record<string, boolean>;
            overblocks: string[];
            queries: number;
            keyword?: string;
            url?: string;
          },
      );
    const by = (name: string, protocol: string) => lines.find((l) => l.name === name && l.protocol === protocol && l.keyword === undefined);
    assert.equal(by('www.blocked.org', 'dns')?.rule, '(^|\\.)blocked\\.org$');
    assert.equal(by('example.com', 'sni')?.rule, 'example\\.com$');
    assert.ok(by('example.com', 'sni')!.overblocks.some((o) => o.endsWith('example.com') && o !== 'example.com'));
    assert.equal(by('www.google.com', 'http')?.rule, '(^|\\.)google\\.com');
    const kw = lines.find((l) => l.keyword !== undefined);
    assert.equal(kw?.keyword, 'tiananmen');
    assert.equal(kw?.url, 'http://site.example/a/tiananmen-1989?x=1');
    assert.equal(lines.filter((l) => l.name === 'free.example').length, 0);
    for (const l of lines) {
      assert.equal(l.layer, 'national');
      assert.ok(l.queries > 0);
      if (l.keyword === undefined) assert.equal(Object.keys(l.variants).length, 9);
    }
  });

  it('refuses bad input with one line', async () => {
    for (const args of [
      ['x.example'],
      ['--resolver', 'example.com', 'x.example'],
      ['--resolver', lab.silentDns, '--protocol', 'sni', 'x.example'],
      ['--resolver', lab.silentDns, 'not a name'],
      ['--resolver', lab.silentDns, '--layer', 'moon', 'x.example'],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
