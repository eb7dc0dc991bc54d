// The one store interface (docs/INTERNAL-API.md "store") and the shapes it speaks. Two
// implementations: SQLite (sqlite.ts, the embedded default) and ClickHouse (clickhouse.ts, scale).
import type { Measurement, MeasurementRow, Verdict } from '../model/index.js';

export type { MeasurementRow } from '../model/index.js';

export interface StoredMeasurement {
  measurement_uid: string;
  /** The raw measurement as submitted (after the collector's scrub), with measurement_uid added. */
  measurement: Measurement;
  verdict: Verdict;
  analysis_version: string;
}

/** Filters shared by list and aggregate. Every value is user input: stores bind or quote it. */
export interface MeasurementFilter {
  probe_cc?: string;
  probe_asn?: number;
  domain?: string;
  /** Exact match on the normalised region (annotations.region). */
  region?: string;
  input?: string;
  test_name?: string;
  /** Unix seconds, inclusive. */
  since?: number;
  /** Unix seconds, exclusive. */
  until?: number;
  /** OONI's blocking value as text: "false", "dns", "tcp_ip", "http-failure", "http-diff", "null"; or "true" (any class). */
  blocking?: string;
  mechanism?: string;
  layer?: string;
  category_code?: string;
  confirmed?: boolean;
  anomaly?: boolean;
}

import { AXES, TIME_GRAINS, type Axis, type TimeGrain } from '../model/index.js';
export { AXES, TIME_GRAINS, type Axis, type TimeGrain };

export interface AggregationQuery {
  axis_x?: Axis;
  axis_y?: Axis;
  /** The grain of measurement_start_day when it is an axis (default day). */
  time_grain?: TimeGrain;
  filter: MeasurementFilter;
}

/** OONI MAT counts, keyed by the axis values (axis names as keys). */
export interface AggregationRow {
  [axis: string]: string | number | null;
  measurement_count: number;
  ok_count: number;
  anomaly_count: number;
  confirmed_count: number;
  failure_count: number;
}

export interface PutResult {
  measurement_uid: string;
  inserted: boolean;
}

export interface MeasurementStore {
  readonly kind: 'sqlite' | 'clickhouse';
  /** Stores raw + verdict atomically; idempotent on the measurement uid (see measurementUid()). */
  put(m: Measurement, verdict: Verdict): Promise<PutResult>;
  /** Many at once (one transaction in SQLite, two inserts in ClickHouse); same idempotency, results in order. */
  putMany(items: Array<{ m: Measurement; verdict: Verdict }>): Promise<PutResult[]>;
  get(uid: string): Promise<StoredMeasurement | null>;
  list(
    filter: MeasurementFilter,
    page: { limit: number; cursor?: string },
  ): Promise<{ results: MeasurementRow[]; next_cursor: string | null }>;
  aggregate(q: AggregationQuery): Promise<AggregationRow[]>;
  /** Raw measurements in uid order after `afterUid`, for re-analysis. */
  scan(
    afterUid: string | null,
    limit: number,
  ): Promise<Array<{ measurement_uid: string; measurement: Measurement; analysis_version: string }>>;
  /** Replaces the verdict of a stored measurement (re-analysis). False when the uid is unknown. */
  setVerdict(uid: string, verdict: Verdict): Promise<boolean>;
  /** Deletes one measurement (admin). False when the uid is unknown. */
  delete(uid: string): Promise<boolean>;
  count(): Promise<number>;
  /**
   * Remembers that a report is closed (OONI's POST /report/{id}/close); idempotent: closing again
   * keeps the first closing time. The collector refuses further submissions to it. Report ids are
   * user input: at most REPORT_ID_MAX characters (longer -> StoreInputError).
   */
  closeReport(reportId: string): Promise<void>;
  /** Whether closeReport(reportId) was called on this store, by this process or any other, before or after a restart. */
  isReportClosed(reportId: string): Promise<boolean>;
  /** The schema version the store is migrated to. */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}

/** A bad cursor, filter or argument coming from a user: the server maps it to a 400. */
export class StoreInputError extends Error {
  readonly code = 'ERR_STORE_INPUT';
}

/** The longest report id the stores accept (the server's route schema allows 256 too). */
export const REPORT_ID_MAX = 256;

/** A report id as the stores take it: a string of 1..REPORT_ID_MAX characters, else StoreInputError. */
export function checkReportId(reportId: string): string {
  if (typeof reportId !== 'string' || reportId.length === 0 || reportId.length > REPORT_ID_MAX)
    throw new StoreInputError(
      `report id: a string of 1 to ${REPORT_ID_MAX} characters (got ${typeof reportId === 'string' ? `${reportId.length} characters` : typeof reportId})`,
    );
  return reportId;
}
