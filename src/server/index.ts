// The server layer's public surface.
export { buildApp, toCsv, BACKEND_VERSION, type AppOptions } from './app.js';
export { startServer, parseListen, type RunningServer } from './listen.js';
export { ERRORS, type ErrorCode } from './errors.js';
export { scrubMeasurement, SCRUBBED } from './scrub.js';
export { startWebhooks, signWebhook, type Webhooks, type WebhookOptions } from './webhooks.js';
