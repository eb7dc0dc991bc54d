import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyProportion, compareHttp, extractTitle, headersMatch, statusCodeMatch, titleMatch } from './http-compare.js';

describe('HTTP comparison with the control (reference rules)', () => {
  test('bodyProportion(probe, truncated, control)', () => {
    assert.equal(bodyProportion(50, false, 100), 0.5);
    assert.equal(bodyProportion(100, false, 50), 0.5);
    assert.equal(bodyProportion(100, true, 50), null);
    assert.equal(bodyProportion(0, false, 50), null);
    assert.equal(bodyProportion(10, false, -1), null);
  });
  test('statusCodeMatch(probe, control): a 5xx control proves nothing', () => {
    assert.equal(statusCodeMatch(200, 200), true);
    assert.equal(statusCodeMatch(403, 200), false);
    assert.equal(statusCodeMatch(200, 503), null);
    assert.equal(statusCodeMatch(0, 200), null);
  });
  test('headersMatch(probe, control): the same names, or one uncommon name in common (reference rule)', () => {
    assert.equal(headersMatch(['Date', 'X-A'], ['x-a', 'Server']), true);
    assert.equal(headersMatch(['Date', 'X-A'], ['Server']), false);
    assert.equal(headersMatch(['Date'], ['Server']), false);
    assert.equal(headersMatch(['Date', 'Server'], ['server', 'date']), true);
    assert.equal(headersMatch(['Connection', 'X-B', 'Date'], ['connection', 'X-C']), true);
    assert.equal(headersMatch([], ['Server']), null);
  });
  test('titleMatch(probe, control): words of 5+ characters on both sides', () => {
    assert.equal(titleMatch('Example Domain', 'example domain'), true);
    assert.equal(titleMatch('Access Denied', 'Example Domain'), false);
    assert.equal(titleMatch('a b', 'c d'), null);
    assert.equal(titleMatch(null, 'Example'), null);
    assert.equal(extractTitle('<html><TITLE lang="en"> Hi there </TITLE>'), 'Hi there');
    assert.equal(extractTitle('<html>'), null);
  });
  test('compareHttp(): status AND (body OR headers OR title)', () => {
    const p = { code: 200, bodyLength: 900, truncated: false, headerNames: ['X-A'], title: 'Example Domain' };
    const c = { status_code: 200, body_length: 1000, headerNames: ['X-B'], title: 'Something Else' };
    assert.equal(compareHttp(p, c).matches, true);
    assert.equal(compareHttp({ ...p, bodyLength: 100 }, c).matches, false);
    assert.equal(compareHttp({ ...p, code: 302 }, c).matches, false);
  });
});
