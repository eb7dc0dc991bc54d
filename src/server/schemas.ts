// The route schemas (TypeBox, i.e. JSON Schema): the single source of validation and of the
// handlers' types. Filters are closed vocabularies wherever the domain has one.
import { Type, type Static } from '@sinclair/typebox';
import { LAYERS, MECHANISMS } from '../model/index.js';
import { AXES, BLOCKING_FILTERS, TIME_GRAINS } from '../store/index.js';

const Str = (max: number, pattern?: string) => Type.String({ maxLength: max, ...(pattern ? { pattern } : {}) });
const CC = Str(2, '^[A-Z]{2}$');
const ASN = Str(12, '^AS[0-9]{1,10}$');
const TEST_NAME = Str(64, '^[a-z0-9_]+$');
const OONI_TIME = Str(19, '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$');

/** What the collector needs of a measurement (OONI data format 0.2.0); other keys pass through. */
export const MeasurementSchema = Type.Object(
  {
    data_format_version: Str(16),
    input: Type.Union([Str(8192), Type.Null()]),
    measurement_start_time: OONI_TIME,
    probe_asn: ASN,
    probe_cc: CC,
    probe_ip: Type.Optional(Str(64)),
    report_id: Type.Optional(Str(256)),
    software_name: Str(128),
    software_version: Str(64),
    test_name: TEST_NAME,
    test_start_time: Type.Optional(OONI_TIME),
    test_version: Type.Optional(Str(64)),
    test_keys: Type.Object({}, { additionalProperties: true }),
    annotations: Type.Optional(Type.Object({}, { additionalProperties: true })),
  },
  { additionalProperties: true },
);

export const OpenReportBody = Type.Object(
  {
    data_format_version: Str(16),
    format: Str(16),
    probe_asn: ASN,
    probe_cc: CC,
    software_name: Str(128),
    software_version: Str(64),
    test_name: TEST_NAME,
    test_start_time: Type.Optional(Str(32)),
    test_version: Str(64),
  },
  { additionalProperties: true },
);
export type OpenReportBody = Static<typeof OpenReportBody>;

export const SubmitBody = Type.Object({ format: Str(16), content: MeasurementSchema }, { additionalProperties: true });
export type SubmitBody = Static<typeof SubmitBody>;

export const ReportParams = Type.Object({ report_id: Str(256) });
export const UidParams = Type.Object({ uid: Str(128, '^[A-Za-z0-9._-]+$') });

const TimeBound = Str(40);
const FilterProps = {
  probe_cc: Type.Optional(CC),
  probe_asn: Type.Optional(Str(12, '^(AS)?[0-9]{1,10}$')),
  domain: Type.Optional(Str(253)),
  /** Self-declared region (annotations.region); normalised like the stored value, exact match. */
  region: Type.Optional(Str(256)),
  input: Type.Optional(Str(2048)),
  test_name: Type.Optional(TEST_NAME),
  category_code: Type.Optional(Str(16, '^[A-Z]{1,16}$')),
  since: Type.Optional(TimeBound),
  until: Type.Optional(TimeBound),
  blocking: Type.Optional(Type.Union(BLOCKING_FILTERS.map((b) => Type.Literal(b)))),
  mechanism: Type.Optional(Type.Union(MECHANISMS.map((m) => Type.Literal(m)))),
  layer: Type.Optional(Type.Union(LAYERS.map((l) => Type.Literal(l)))),
  // Query strings are text: no type coercion anywhere (a body is stored as submitted, never coerced).
  confirmed: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
  anomaly: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
};

export const ListQuery = Type.Object(
  { ...FilterProps, limit: Type.Optional(Str(4, '^(1000|[1-9][0-9]{0,2})$')), cursor: Type.Optional(Str(512)) },
  { additionalProperties: false },
);
export type ListQuery = Static<typeof ListQuery>;

const AxisT = Type.Union(AXES.map((a) => Type.Literal(a)));
export const AggregationQuerySchema = Type.Object(
  {
    ...FilterProps,
    axis_x: Type.Optional(AxisT),
    axis_y: Type.Optional(AxisT),
    time_grain: Type.Optional(Type.Union(TIME_GRAINS.map((g) => Type.Literal(g)))),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv'), Type.Literal('JSON'), Type.Literal('CSV')])),
  },
  { additionalProperties: false },
);
export type AggregationQuerySchema = Static<typeof AggregationQuerySchema>;

export const ReanalyzeBody = Type.Object(
  { only_outdated: Type.Optional(Type.Boolean()), limit: Type.Optional(Type.Integer({ minimum: 1 })) },
  { additionalProperties: false },
);
export type ReanalyzeBody = Static<typeof ReanalyzeBody>;

const Nullable = <T extends import('@sinclair/typebox').TSchema>(t: T) => Type.Union([t, Type.Null()]);
/** Response schema of a list row (serialisation is schema-driven: nothing else leaks out). */
export const MeasurementRowSchema = Type.Object({
  measurement_uid: Type.String(),
  report_id: Type.String(),
  input: Nullable(Type.String()),
  domain: Nullable(Type.String()),
  test_name: Type.String(),
  probe_cc: Type.String(),
  probe_asn: Type.String(),
  region: Nullable(Type.String()),
  measurement_start_time: Type.String(),
  status: Type.String(),
  blocking: Type.Union([Type.Literal(false), Type.String(), Type.Null()]),
  accessible: Nullable(Type.Boolean()),
  mechanism: Nullable(Type.String()),
  layer: Nullable(Type.String()),
  confidence: Type.Number(),
  confirmed: Type.Boolean(),
  explanation: Type.String(),
  anomaly: Type.Boolean(),
  failure: Type.Boolean(),
  category_code: Nullable(Type.String()),
  analysis_version: Type.String(),
});
export const ListResponse = Type.Object({ results: Type.Array(MeasurementRowSchema), next_cursor: Nullable(Type.String()) });
