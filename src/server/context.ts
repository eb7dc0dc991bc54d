// What the server's route plugins share, made once by buildApp (app.ts) and passed to each plugin
// as its options: the store, the analysis, the report-id secret, the rate limiter and the metrics.
import type { FastifyReply } from 'fastify';
import type { MeasurementStore } from '../store/index.js';
import { ERRORS, type ErrorBody, type ErrorCode } from './errors.js';
import type { ServerMetrics } from './metrics-routes.js';
import type { RateLimiter } from './ratelimit.js';
import type { Analyzer } from './reanalyze.js';

export interface ServerContext {
  store: MeasurementStore;
  /** The analysis run on ingest and by reanalyze, made safe (a throwing analysis gives a verdict saying so). */
  analyze: Analyzer;
  analysisVersion: string;
  /** Signs report ids (report-id.ts). */
  secret: Buffer;
  limiter: RateLimiter | null;
  metrics: ServerMetrics;
}

export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: message, code, statusCode: ERRORS[code].status };
}

export function sendError(reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  return reply.code(ERRORS[code].status).type('application/json; charset=utf-8').send(errorBody(code, message));
}
