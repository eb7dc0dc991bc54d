import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MECHANISMS } from '../model/index.js';
import { fixturesDir } from '../probe/index.js';
import { analyzeMeasurement } from './measurement.js';

// Deterministic mutations of real measurements: every value replaced in turn by a hostile one of
// another type. The analysis must always return a well-formed verdict and never modify its input.
function* paths(v: unknown, prefix: Array<string | number> = [], depth = 0): Generator<Array<string | number>> {
  if (depth > 6 || typeof v !== 'object' || v === null) return;
  const entries = Array.isArray(v) ? v.slice(0, 3).map((x, i) => [i, x] as const) : Object.entries(v).slice(0, 40);
  for (const [k, x] of entries) {
    yield [...prefix, k];
    yield* paths(x, [...prefix, k], depth + 1);
  }
}

const HOSTILE: unknown[] = [
  null,
  0,
  -1,
  1e308,
  '',
  'x'.repeat(300),
  [],
  {},
  [null],
  { length: 1e9 },
  true,
  '999.1.1.1',
  '::ffff:127.0.0.1',
  { format: 'base64', data: '%%%' },
];

const pick = (sub: string, keep: (f: string, i: number) => boolean): string[] =>
  readdirSync(join(fixturesDir, 'measurements', sub))
    .filter((f) => f.endsWith('.json'))
    .sort()
    .filter(keep)
    .map((f) => join(sub, f));
// web_connectivity (every fifth netem case), and every other test type the reference scores.
const OTHER = /telegram|whatsapp|signal|tor|httpheader|httpinvalid|header-field|invalid-request|facebook|stun|dnscheck/;

describe('analyzeMeasurement(m) on mutated real measurements', () => {
  const dir = join(fixturesDir, 'measurements');
  const files = [
    ...pick('synthetic-netem-qa', (_, i) => i % 5 === 0),
    ...pick('real-explorer', (f) => OTHER.test(f)),
    ...pick('spec-examples', (f) => OTHER.test(f)),
  ];
  for (const f of files) {
    test(f, () => {
      const text = readFileSync(join(dir, f), 'utf8');
      const base = JSON.parse(text) as Record<string, unknown>;
      let n = 0;
      let i = 0;
      for (const p of paths(base)) {
        const m = JSON.parse(text) as Record<string, unknown>;
        let o: Record<string | number, unknown> = m;
        for (const k of p.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
        o[p[p.length - 1]] = HOSTILE[i++ % HOSTILE.length];
        const frozen = JSON.stringify(m);
        const v = analyzeMeasurement(m as never);
        assert.equal(JSON.stringify(m), frozen, `input modified at ${p.join('.')}`);
        assert.ok(['ok', 'blocked', 'down', 'unknown'].includes(v.status), p.join('.'));
        assert.ok(v.mechanism === null || (MECHANISMS as readonly string[]).includes(v.mechanism), `${p.join('.')}: ${v.mechanism}`);
        assert.equal(typeof v.explanation, 'string');
        assert.ok(v.confidence >= 0 && v.confidence <= 1);
        n++;
      }
      assert.ok(n > 20, `only ${n} mutations`);
    });
  }
});
