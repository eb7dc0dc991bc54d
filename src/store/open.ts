// Opens the store a command line or a server asks for: a SQLite file (default) or a ClickHouse URL.
import { ClickHouseStore } from './clickhouse.js';
import { JournaledStore } from './journal.js';
import { SqliteStore } from './sqlite.js';
import type { MeasurementStore } from './types.js';

export interface OpenStoreOptions {
  /** SQLite file path (default store). */
  db?: string;
  /** ClickHouse HTTP URL; a path component names the database (http://127.0.0.1:8123/wallscope). */
  clickhouse?: string;
  domainOf?: (input: string | null) => string | null;
  /** SQLite only: inserts on a writer thread (default true) or on the caller's thread. */
  sqliteWriterThread?: boolean;
  /** ClickHouse only: acknowledge submissions once they are in this local journal file (src/store/journal.ts). */
  journal?: string;
  onShipError?: (e: unknown) => void;
}

export async function openStore(opts: OpenStoreOptions): Promise<MeasurementStore> {
  if (opts.clickhouse) {
    const u = new URL(opts.clickhouse);
    const database = decodeURIComponent(u.pathname.replace(/^\/+|\/+$/g, '')) || 'wallscope';
    u.pathname = '/';
    const ch = await ClickHouseStore.open({ url: u.toString().replace(/\/$/, ''), database, domainOf: opts.domainOf });
    return opts.journal ? new JournaledStore(ch, { file: opts.journal, onShipError: opts.onShipError }) : ch;
  }
  if (opts.journal) throw new Error('a journal is for ClickHouse (--clickhouse); the SQLite store is its own journal');
  return new SqliteStore(opts.db ?? 'wallscope.db', { domainOf: opts.domainOf, writerThread: opts.sqliteWriterThread });
}
