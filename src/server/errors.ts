// Every error the HTTP API returns, in one registry: a stable code (clients branch on it), the
// HTTP status and what it means. docs/INTERNAL-API.md lists them; a test checks it does.
export const ERRORS = {
  WS_BAD_REQUEST: { status: 400, meaning: 'the request does not match the route schema (the message names the field)' },
  WS_INVALID_JSON: { status: 400, meaning: 'the body is not valid JSON' },
  WS_BAD_FORMAT: { status: 400, meaning: 'the submission format is not "json"' },
  WS_REPORT_MISMATCH: { status: 400, meaning: 'probe_cc, probe_asn or test_name of the measurement disagree with the report' },
  WS_BAD_MEASUREMENT: { status: 400, meaning: 'the measurement is not a valid OONI 0.2.0 measurement' },
  WS_UNAUTHORIZED: { status: 401, meaning: 'an admin route without the right bearer token' },
  WS_ADMIN_DISABLED: { status: 403, meaning: 'admin routes are disabled (no admin token configured)' },
  WS_NOT_FOUND: { status: 404, meaning: 'no such measurement, report or route' },
  WS_UNKNOWN_REPORT: { status: 404, meaning: 'the report id was not issued by this collector' },
  // 409, not 404: OONI's own collectors differ. The legacy oonib kept open reports in a table and
  // closing dropped the report from it, so a later submission got 404 "report-not-found" (closed and
  // never-issued looked alike); today's OONI API is stateless, its close is a no-op and it accepts
  // anything. Ours knows the id is valid (signed) and that its state forbids the request: a
  // conflict, which lets a client tell "open a new report and submit there" from "this id is
  // bogus". Clients lose nothing by it: OONI's probes treat any non-200 as a failed submission, and
  // our spool keeps a measurement refused with a 4xx in rejected/ (never retried, never deleted).
  WS_REPORT_CLOSED: { status: 409, meaning: 'the report was closed (POST /report/{id}/close); nothing was stored: open a new report' },
  WS_BODY_TOO_LARGE: { status: 413, meaning: 'the body exceeds the configured size limit' },
  WS_UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'the body is not application/json' },
  WS_RATE_LIMITED: { status: 429, meaning: 'too many requests from this client; retry after Retry-After seconds' },
  WS_INTERNAL: { status: 500, meaning: 'a bug; nothing was stored' },
  WS_STORE_UNAVAILABLE: { status: 503, meaning: 'the store failed; nothing was acknowledged, retry later' },
} as const;
export type ErrorCode = keyof typeof ERRORS;

export class ApiError extends Error {
  readonly statusCode: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.statusCode = ERRORS[code].status;
  }
}

export function createError(code: ErrorCode, message: string): ApiError {
  return new ApiError(code, message);
}

/** The body of every error response. */
export interface ErrorBody {
  error: string;
  code: ErrorCode;
  statusCode: number;
}
