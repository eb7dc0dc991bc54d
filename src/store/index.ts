// The store layer's public surface (docs/INTERNAL-API.md "store").
export type {
  MeasurementStore,
  MeasurementRow,
  MeasurementFilter,
  StoredMeasurement,
  AggregationQuery,
  AggregationRow,
  Axis,
  TimeGrain,
  PutResult,
} from './types.js';
export { AXES, TIME_GRAINS, StoreInputError, REPORT_ID_MAX } from './types.js';
export { SqliteStore, SQLITE_MIGRATIONS } from './sqlite.js';
export { bulkLoadSqlite, type BulkLoadReport } from './sqlite-bulk.js';
export { ClickHouseStore, chString, CLICKHOUSE_MIGRATIONS } from './clickhouse.js';
export { openStore, type OpenStoreOptions } from './open.js';
export { measurementUid, parseOoniTime, parseTimeBound, parseAsn, BLOCKING_FILTERS, normalizeRegion, regionOf, REGION_MAX } from './row.js';
export { JournaledStore, type JournalOptions, type JournalStats } from './journal.js';
export {
  ChangeStore,
  trackChanges,
  changeFilterFrom,
  type ChangeRecord,
  type ChangeFilter,
  type StateRecord,
  type ChangeKey,
  type ChangeStoreOptions,
} from './changes.js';
export { Outbox, type OutboxItem } from './outbox.js';
export { ListStore } from './lists.js';
