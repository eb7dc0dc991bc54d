import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { measureMany } from './runner.js';

const youngSize = (): number => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;

describe('measureMany memory', () => {
  it("bounds V8's heap for the rest of the run: the young generation stays at its initial size (flat peak RSS)", async () => {
    const seen: unknown[] = [];
    await measureMany([], {}, 4, (r) => void seen.push(r));
    assert.equal(seen.length, 0);
    // Allocation whose objects survive several scavenges, as in-flight measurements do: by
    // default V8 grows the young generation for it (to 32 MB here); bounded, it stays within a
    // few MB.
    const keep: Array<Array<{ i: number; s: string }>> = [];
    for (let r = 0; r < 40; r++) {
      const a: Array<{ i: number; s: string }> = [];
      for (let i = 0; i < 50_000; i++) a.push({ i, s: `x${i}` });
      keep.push(a);
      if (keep.length > 8) keep.shift();
    }
    assert.ok(keep.length > 0);
    assert.ok(youngSize() <= 4 << 20, `young generation ${youngSize()} bytes`);
  });
});
