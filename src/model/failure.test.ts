import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyError, isKnownFailure, unknownFailure, WallscopeTimeoutError, FAILURES } from './failure.js';

test('classifyError(err): Node error codes first', () => {
  const cases: Array<[string, string]> = [
    ['ECONNRESET', 'connection_reset'],
    ['ECONNREFUSED', 'connection_refused'],
    ['ETIMEDOUT', 'generic_timeout_error'],
    ['EHOSTUNREACH', 'host_unreachable'],
    ['ENETUNREACH', 'network_unreachable'],
    ['ENOTFOUND', 'dns_nxdomain_error'],
    ['ENODATA', 'dns_no_answer'],
    ['ESERVFAIL', 'dns_servfail_error'],
    ['EREFUSED', 'dns_refused_error'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'ssl_invalid_hostname'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ssl_unknown_authority'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'ssl_unknown_authority'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'ssl_unknown_authority'],
    ['CERT_HAS_EXPIRED', 'ssl_invalid_certificate'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'ssl_failed_handshake'],
    ['ERR_SSL_SOMETHING_NEW', 'ssl_failed_handshake'],
  ];
  for (const [code, want] of cases) {
    const err = Object.assign(new Error('whatever the text says'), { code });
    assert.equal(classifyError(err), want, code);
  }
});

test('classifyError(err): typed errors, causes and messages', () => {
  assert.equal(classifyError(new WallscopeTimeoutError('connect', 10)), 'generic_timeout_error');
  const abort = new Error('aborted');
  abort.name = 'TimeoutError';
  assert.equal(classifyError(abort), 'generic_timeout_error');
  assert.equal(classifyError(new Error('socket hang up')), 'eof_error');
  assert.equal(classifyError(new Error('read: connection reset by peer')), 'connection_reset');
  assert.equal(
    classifyError(new Error('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) })),
    'connection_refused',
  );
  assert.equal(
    classifyError(Object.assign(new Error('bad'), { code: 'HPE_INVALID_CONSTANT' })),
    'unknown_failure: http_parse_error HPE_INVALID_CONSTANT',
  );
  assert.equal(classifyError(new Error('something odd\nhappened')), 'unknown_failure: something odd happened');
  assert.equal(classifyError('connection_reset'), 'connection_reset');
  assert.equal(classifyError(undefined), 'unknown_failure: no error value');
});

test('FAILURES are all recognised and unknownFailure() bounds its text', () => {
  for (const f of FAILURES) assert.ok(isKnownFailure(f));
  assert.ok(!isKnownFailure('connection reset'));
  assert.ok(unknownFailure('x'.repeat(1000)).length < 230);
});
