// One failure vocabulary: OONI's df-007 strings (ooni/spec data-formats/df-007-errors.md).
// Classification goes by Node's `err.code` first, then by typed errors, then by message, and
// falls back to `unknown_failure: <text>` exactly as netxlite does.

export const FAILURES = [
  'connection_reset',
  'connection_refused',
  'connection_aborted',
  'connection_already_closed',
  'eof_error',
  'generic_timeout_error',
  'host_unreachable',
  'network_unreachable',
  'address_family_not_supported',
  'interrupted',
  'dns_nxdomain_error',
  'dns_no_answer',
  'dns_servfail_error',
  'dns_refused_error',
  'dns_bogon_error',
  'dns_reply_with_wrong_query_id',
  'dns_non_recoverable_failure',
  'dns_temporary_failure',
  'ssl_invalid_hostname',
  'ssl_unknown_authority',
  'ssl_invalid_certificate',
  'ssl_failed_handshake',
  'json_parse_error',
] as const;

export type KnownFailure = (typeof FAILURES)[number];
/** A failure string as OONI writes it. `null` in a measurement means success. */
export type Failure = KnownFailure | `unknown_failure: ${string}`;

const KNOWN = new Set<string>(FAILURES);

export function isKnownFailure(s: string): s is KnownFailure {
  return KNOWN.has(s);
}

/** Wrap free text as OONI's unknown failure. */
export function unknownFailure(text: string): Failure {
  return `unknown_failure: ${text.replace(/\s+/g, ' ').trim().slice(0, 200)}`;
}

// errno / Node error code -> failure. Node's codes: https://nodejs.org/api/errors.html
const BY_CODE: Record<string, KnownFailure> = {
  ECONNRESET: 'connection_reset',
  EPIPE: 'connection_reset',
  ECONNREFUSED: 'connection_refused',
  ECONNABORTED: 'connection_aborted',
  ETIMEDOUT: 'generic_timeout_error',
  ETIME: 'generic_timeout_error',
  ESOCKETTIMEDOUT: 'generic_timeout_error',
  ABORT_ERR: 'interrupted',
  ERR_WALLSCOPE_TIMEOUT: 'generic_timeout_error',
  EHOSTUNREACH: 'host_unreachable',
  EHOSTDOWN: 'host_unreachable',
  ENETUNREACH: 'network_unreachable',
  ENETDOWN: 'network_unreachable',
  EAFNOSUPPORT: 'address_family_not_supported',
  EADDRNOTAVAIL: 'address_family_not_supported',
  EINTR: 'interrupted',
  // getaddrinfo (dns.lookup) codes
  ENOTFOUND: 'dns_nxdomain_error',
  ENODATA: 'dns_no_answer',
  EAI_NODATA: 'dns_no_answer',
  EAI_NONAME: 'dns_nxdomain_error',
  EAI_AGAIN: 'dns_temporary_failure',
  EAI_FAIL: 'dns_non_recoverable_failure',
  ESERVFAIL: 'dns_servfail_error',
  EREFUSED: 'dns_refused_error',
  ENOTIMP: 'dns_non_recoverable_failure',
  // TLS (OpenSSL through Node)
  ERR_TLS_CERT_ALTNAME_INVALID: 'ssl_invalid_hostname',
  UNABLE_TO_GET_ISSUER_CERT: 'ssl_unknown_authority',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'ssl_unknown_authority',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'ssl_unknown_authority',
  SELF_SIGNED_CERT_IN_CHAIN: 'ssl_unknown_authority',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'ssl_unknown_authority',
  CERT_UNTRUSTED: 'ssl_unknown_authority',
  CERT_HAS_EXPIRED: 'ssl_invalid_certificate',
  CERT_NOT_YET_VALID: 'ssl_invalid_certificate',
  CERT_REVOKED: 'ssl_invalid_certificate',
  CERT_SIGNATURE_FAILURE: 'ssl_invalid_certificate',
  CERT_REJECTED: 'ssl_invalid_certificate',
  INVALID_CA: 'ssl_invalid_certificate',
  INVALID_PURPOSE: 'ssl_invalid_certificate',
  HOSTNAME_MISMATCH: 'ssl_invalid_hostname',
  ERR_SSL_WRONG_VERSION_NUMBER: 'ssl_failed_handshake',
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: 'ssl_failed_handshake',
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'ssl_failed_handshake',
  ERR_SSL_TLSV1_ALERT_INTERNAL_ERROR: 'ssl_failed_handshake',
  ERR_SSL_TLSV1_UNRECOGNIZED_NAME: 'ssl_failed_handshake',
  ERR_SSL_PACKET_LENGTH_TOO_LONG: 'ssl_failed_handshake',
  ERR_SSL_UNEXPECTED_EOF_WHILE_READING: 'eof_error',
  ERR_STREAM_PREMATURE_CLOSE: 'eof_error',
  ERR_STREAM_DESTROYED: 'connection_already_closed',
  ERR_SOCKET_CLOSED: 'connection_already_closed',
};

// Message suffixes, last resort (netxlite matches error strings the same way).
const BY_MESSAGE: Array<[RegExp, KnownFailure]> = [
  [/socket hang up|unexpected eof|client network socket disconnected before secure tls connection/i, 'eof_error'],
  [/connection reset/i, 'connection_reset'],
  [/connection refused/i, 'connection_refused'],
  [/timed? ?out/i, 'generic_timeout_error'],
  [/no route to host/i, 'host_unreachable'],
  [/network is unreachable/i, 'network_unreachable'],
  [/wrong version number|handshake failure|alert/i, 'ssl_failed_handshake'],
];

/**
 * Map any thrown value from a network operation to OONI's failure string.
 * Programmer errors should not reach here; everything that does becomes data.
 */
export function classifyError(err: unknown): Failure {
  if (err === null || err === undefined) return unknownFailure('no error value');
  if (typeof err === 'string') return isKnownFailure(err) ? err : unknownFailure(err);
  const e = err as { code?: unknown; message?: unknown; name?: unknown; cause?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code) {
    const byCode = BY_CODE[code];
    if (byCode) return byCode;
    if (code.startsWith('HPE_')) return unknownFailure(`http_parse_error ${code}`);
    if (code.startsWith('ERR_SSL_')) return 'ssl_failed_handshake';
  }
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return 'generic_timeout_error';
  if (e.cause && e.cause !== err) {
    const inner = classifyError(e.cause);
    if (!inner.startsWith('unknown_failure')) return inner;
  }
  const msg = typeof e.message === 'string' ? e.message : String(err);
  for (const [re, f] of BY_MESSAGE) if (re.test(msg)) return f;
  return unknownFailure(code ? `${code}: ${msg}` : msg);
}

/** An error with a stable code, thrown for timeouts we impose ourselves. */
export class WallscopeTimeoutError extends Error {
  readonly code = 'ERR_WALLSCOPE_TIMEOUT';
  constructor(what: string, ms: number) {
    super(`${what} timed out after ${ms} ms`);
  }
}
