import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adjacentPieces, cutAt } from './platform-keywords.js';

describe('adjacentPieces(kept)', () => {
  it('joins characters that were next to each other in the word and separates the others', () => {
    // Indices into "falungong": 0-4 are "falun", 5-6 the "go" of "gong".
    const chars = [...'falungong'];
    const keep = (is: number[]) => is.map((i) => ({ c: chars[i]!, i }));
    assert.deepEqual(adjacentPieces(keep([0, 1, 2, 3, 4])), ['falun']);
    assert.deepEqual(adjacentPieces(keep([0, 1, 5, 6])), ['fa', 'go']);
    assert.deepEqual(adjacentPieces(keep([8])), ['g']);
    assert.deepEqual(adjacentPieces([]), []);
  });
});

describe('cutAt(chars, cuts)', () => {
  it('cuts a piece into the words of a combination', () => {
    assert.deepEqual(cutAt([...'六四天安门'], [2]), ['六四', '天安门']);
    assert.deepEqual(cutAt([...'abc'], [1, 2]), ['a', 'b', 'c']);
    assert.deepEqual(cutAt([...'abc'], []), ['abc']);
  });
});
