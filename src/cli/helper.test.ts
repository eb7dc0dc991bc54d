// `wallscope helper`'s bad input: each is a usage error (exit 2, one line naming the option) found
// before anything listens; the helper never starts with a resolver, address or range it cannot use.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runWallscope } from '../testing/cli.js';

describe('wallscope helper: bad options', () => {
  it('refuses each with exit 2 and one line naming the option', async () => {
    for (const [flag, value] of [
      ['--listen', 'nope'],
      ['--resolver', 'nope'],
      ['--resolver', 'example.com:53'],
      ['--ca', '/nonexistent/ca.pem'],
      ['--local-address', 'nope'],
      ['--allow-net', '127.0.0.0/8,nope'],
      ['--timeout', '0'],
      ['--max-concurrent', 'many'],
    ] as const) {
      const args = flag === '--listen' ? ['helper', flag, value] : ['helper', '--listen', '127.0.0.1:0', flag, value];
      const r = await runWallscope(args, { timeout: 30_000 });
      assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
      assert.equal(r.stdout, '', 'nothing listened');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^wallscope: ${flag}`));
    }
  });
});
