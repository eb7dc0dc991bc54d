// The server layer's public surface.
export { buildApp, toCsv, BACKEND_VERSION, type AppOptions } from './app.js';
export { startServer, parseListen, type RunningServer } from './listen.js';
export { ERRORS, type ErrorCode } from './errors.js';
export { scrubMeasurement, SCRUBBED } from './scrub.js';
export { reanalyzeStore, safeAnalyzer, analyzerWith, type Analyzer, type ReanalyzeOptions } from './reanalyze.js';
export { importMeasurementFiles, normalizeForStore, type ImportSummary } from './import.js';
export { startWebhooks, signWebhook, type Webhooks, type WebhookOptions } from './webhooks.js';
