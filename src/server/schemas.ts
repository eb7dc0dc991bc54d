// The pieces of the route schemas (TypeBox, i.e. JSON Schema) that more than one plugin uses. Each
// plugin keeps its own schemas in its own file (collector-routes.ts, query-routes.ts,
// admin-routes.ts, ...): they are the single source of validation and of the handlers' types.
// Filters are closed vocabularies wherever the domain has one.
import { Type } from '@sinclair/typebox';

/**
 * How every plugin's schemas are checked (Fastify's ajv options, set by buildApp; a plugin's own
 * tests use them too). No coercion and no removal: a measurement is stored exactly as submitted or
 * refused, never "fixed", and an unknown filter is an error, not silently dropped.
 */
export const SCHEMA_CHECKING = { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } } as const;

/** A bounded string, optionally matching a pattern. */
export const Str = (max: number, pattern?: string) => Type.String({ maxLength: max, ...(pattern ? { pattern } : {}) });
/** Shared by the collector (a measurement's probe_cc) and the query API (the probe_cc filter). */
export const CC = Str(2, '^[A-Z]{2}$');
/** Shared by the collector (a measurement's test_name) and the query API (the test_name filter). */
export const TEST_NAME = Str(64, '^[a-z0-9_]+$');

/** A measurement's uid in a path: shared by the query API (GET) and the admin routes (DELETE). */
export const UidParams = Type.Object({ uid: Str(128, '^[A-Za-z0-9._-]+$') });
