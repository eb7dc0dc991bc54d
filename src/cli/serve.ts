// `wallscope serve`, and the store options the store commands (upload, import, reanalyze: each
// in its own file, registered in main.ts) share. Wiring only: src/server, src/store and src/analysis decide.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ANALYSIS_VERSION, type analyzeMeasurement, type AnalysisContext } from '../analysis/index.js';
import { defaultFingerprintsDir, defaultForgedPoolFiles, loadFingerprints } from '../probe/index.js';
import type { Measurement } from '../model/index.js';
import { lookupAsn, repoRoot, territoryTablesV4 } from '../probe/index.js';
import { analyzerWith, parseListen, startServer, startWebhooks, type Webhooks } from '../server/index.js';
import { ChangeStore, ListStore, openStore, Outbox, type ClickHouseStore, type MeasurementStore } from '../store/index.js';
import { INJECTORS_OPTION, injectorsFrom } from './injectors.js';

export interface StoreCliOptions {
  db?: string;
  clickhouse?: string;
  journal?: string;
  sqliteWriter?: string;
}
export interface AnalysisCliOptions {
  fingerprints?: string | false;
  forgedPool?: string[];
  allowNet?: string[];
  asn?: boolean;
  injectors?: string;
}

export const collect = (v: string, acc: string[] = []): string[] => [...acc, v];

export function storeOptions(cmd: Command): Command {
  return cmd
    .option('--db <file>', 'SQLite store file (the default store)', 'wallscope.db')
    .option('--clickhouse <url>', 'ClickHouse HTTP URL instead of SQLite; the path names the database (http://127.0.0.1:8123/wallscope)');
}

export function analysisOptions(cmd: Command): Command {
  return cmd
    .option('--fingerprints <dir>', 'OONI blocking-fingerprints CSV directory (default: ../shared/fixtures/fingerprints when present)')
    .option('--no-fingerprints', 'use no fingerprints and no forged pools')
    .option(
      '--forged-pool <file>',
      'known forged DNS answers, one address per line (repeatable; default: ../shared/fixtures/gfw-forged-ips/*.txt)',
      collect,
    )
    .option('--allow-net <cidr>', 'lab mode: addresses in this range count as public, not bogons (repeatable)', collect)
    .option('--asn', 'look up answer ASNs in the offline database')
    .option(...INJECTORS_OPTION);
}

const onShipError = (e: unknown) =>
  process.stderr.write(`journal: shipping to ClickHouse failed, will retry: ${(e as Error).message ?? String(e)}\n`.slice(0, 500));

/** The store the options name; a store that cannot be opened is a usage error (exit 2) naming the option. */
export async function openStoreFrom(o: StoreCliOptions): Promise<MeasurementStore> {
  if (o.sqliteWriter !== undefined && o.sqliteWriter !== 'thread' && o.sqliteWriter !== 'inline')
    throw usage(`--sqlite-writer: "thread" or "inline", got ${JSON.stringify(o.sqliteWriter)}`);
  try {
    return await openStore(
      o.clickhouse
        ? { clickhouse: o.clickhouse, journal: o.journal, onShipError }
        : { db: o.db, journal: o.journal, sqliteWriterThread: o.sqliteWriter !== 'inline' },
    );
  } catch (e) {
    const which = o.clickhouse ? `--clickhouse ${o.clickhouse}` : `--db ${o.db ?? '(default)'}`;
    throw usage(`cannot open the store (${which}): ${(e as Error).message}`);
  }
}

function usage(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 2 });
}

export function analysisFrom(o: AnalysisCliOptions): {
  ctx: AnalysisContext;
  analyze: (m: Measurement) => ReturnType<typeof analyzeMeasurement>;
} {
  const ctx: AnalysisContext = {};
  if (o.fingerprints !== false) {
    const fps = loadFingerprints(
      typeof o.fingerprints === 'string' ? o.fingerprints : defaultFingerprintsDir(),
      o.forgedPool ?? defaultForgedPoolFiles(),
    );
    if (fps.skipped.length) process.stderr.write(`fingerprints: ${fps.skipped.length} rows skipped\n`);
    ctx.fingerprints = fps;
  }
  if (o.allowNet?.length) ctx.allowNets = o.allowNet;
  if (o.asn) ctx.asnOf = lookupAsn;
  ctx.injectors = injectorsFrom(o.injectors);
  return { ctx, analyze: analyzerWith(ctx) };
}

interface ServeOptions extends StoreCliOptions, AnalysisCliOptions {
  listen: string;
  bodyLimit: string;
  batchBodyLimit: string;
  batchMaxItems: string;
  rateLimit: string;
  adminTokenFile?: string;
  reportSecretFile?: string;
  web?: string | false;
  log: boolean;
  trustProxy?: boolean;
  changes: boolean;
  changesDb?: string;
  changesFollow: string;
  changeConfirmations: string;
  webhook?: string[];
  webhookSecretFile?: string;
}

/** A positive integer option; anything else is a usage error (exit 2). */
function positiveInt(s: string, flag: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n <= 0) throw usage(`${flag}: expected a positive integer, got ${JSON.stringify(s)}`);
  return n;
}

/** The SQLite file of the collector's own tables (change detection, list snapshots, the webhook outbox): the store's, or beside ClickHouse --changes-db. */
const sideFile = (o: ServeOptions) => (o.clickhouse ? (o.changesDb ?? 'wallscope-changes.db') : (o.db ?? 'wallscope.db'));

/**
 * Change detection (src/store/changes.ts): in the SQLite store's own file, reading its measurements;
 * beside ClickHouse, in --changes-db with an observation log of its own, filled from ClickHouse's
 * measurements on its first start, then following every row version written to ClickHouse since
 * (this collector's, other collectors', re-analyses and deletes) every --changes-follow seconds.
 */
async function openChangeStore(o: ServeOptions, confirmations: number): Promise<{ changes: ChangeStore; stopFollow(): Promise<void> }> {
  if (!o.clickhouse) return { changes: new ChangeStore(sideFile(o), { confirmations }), stopFollow: async () => {} };
  const changes = new ChangeStore(sideFile(o), { confirmations, observationLog: true });
  const ch = (await openStore({ clickhouse: o.clickhouse })) as ClickHouseStore;
  if (changes.observationCount() === 0) {
    const from = await ch.maxVersion();
    const r = await changes.syncFrom((after, n) => ch.changeRows(after, n), 2000);
    changes.setFollowCursor({ version: from, uid: '' });
    process.stderr.write(`changes: ${r.measurements} measurements from ClickHouse, ${r.keys} keys, ${r.changes} changes\n`);
  } else if (!changes.followCursor()) {
    // A side file from before the follow: what other collectors wrote until now is not in it.
    changes.setFollowCursor({ version: Date.now() * 1000, uid: '' });
    process.stderr.write(
      'changes: following ClickHouse from now on (start from a fresh --changes-db to include earlier measurements of other collectors)\n',
    );
  }
  return { changes, stopFollow: followClickHouse(changes, ch, positiveInt(o.changesFollow, '--changes-follow')) };
}

/** Follows ClickHouse every `seconds` (one follow at a time); the returned stop waits for a running one. */
function followClickHouse(changes: ChangeStore, ch: ClickHouseStore, seconds: number): () => Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    running = changes
      .follow((after, n) => ch.followRows(after, n))
      .then(
        () => {},
        (e: unknown) =>
          void process.stderr.write(`changes: following ClickHouse failed (retried in ${seconds} s): ${(e as Error).message}\n`),
      )
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, seconds * 1000);
      });
  };
  timer = setTimeout(tick, seconds * 1000);
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
    await ch.close();
  };
}

/** The numeric options, checked before anything is opened. */
function limitsFrom(o: ServeOptions) {
  const perMinute = Number(o.rateLimit);
  if (!Number.isSafeInteger(perMinute) || perMinute < 0)
    throw usage(`--rate-limit: expected a whole number (0: no limit), got ${JSON.stringify(o.rateLimit)}`);
  return {
    bodyLimit: positiveInt(o.bodyLimit, '--body-limit'),
    batchBodyLimit: positiveInt(o.batchBodyLimit, '--batch-body-limit'),
    batchMaxItems: positiveInt(o.batchMaxItems, '--batch-max-items'),
    rateLimit: perMinute > 0 ? { max: perMinute, windowMs: 60_000 } : (false as const),
    changeConfirmations: positiveInt(o.changeConfirmations, '--change-confirmations'),
  };
}

/** The serve command's own options (the store and analysis options are added by register). */
function serveOptions(cmd: Command): Command {
  return cmd
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8080')
    .option('--body-limit <bytes>', 'largest accepted request body', String(4 * 1024 * 1024))
    .option('--batch-body-limit <bytes>', 'largest body of POST /api/v1/submit_measurements (NDJSON batches)', String(16 * 1024 * 1024))
    .option('--batch-max-items <n>', 'most measurements in one batch', '5000')
    .option('--rate-limit <n>', 'requests per minute per client (0: no limit)', '6000')
    .option(
      '--admin-token-file <file>',
      'file holding the bearer token for admin routes (or $WALLSCOPE_ADMIN_TOKEN); without one they are disabled',
    )
    .option(
      '--report-secret-file <file>',
      'file holding the report-id secret shared by collectors behind one balancer (or $WALLSCOPE_REPORT_SECRET)',
    )
    .option('--web <dir>', 'explorer files to serve at / (default: web/dist)')
    .option('--no-web', 'serve no explorer')
    .option('--trust-proxy', 'take the client address from X-Forwarded-For (behind a reverse proxy)')
    .option('--no-log', 'no structured request logs on stdout')
    .option(
      '--sqlite-writer <mode>',
      'SQLite inserts on a writer thread ("thread", the default: parsing and writing use two cores) or "inline"',
    )
    .option('--no-changes', "no change detection (on by default: in the SQLite store's file, or in --changes-db beside ClickHouse)")
    .option(
      '--changes-db <file>',
      'with --clickhouse: the SQLite file beside it for change detection (states, changes, its observation log), the webhook outbox and list snapshots (`lists import --store FILE`)',
      'wallscope-changes.db',
    )
    .option(
      '--changes-follow <seconds>',
      'with --clickhouse: how often change detection reads the row versions written since (by any collector, re-analyses and deletes too)',
      '10',
    )
    .option(
      '--change-confirmations <n>',
      'consecutive measurements that confirm a new state (hysteresis: one flaky measurement is not a change)',
      '2',
    )
    .option(
      '--webhook <url>',
      'POST every change detected to this URL, signed (HMAC-SHA256), retried from a persistent outbox; repeatable',
      collect,
    )
    .option('--webhook-secret-file <file>', 'file holding the webhook signing secret (or $WALLSCOPE_WEBHOOK_SECRET)')
    .option(
      '--journal <file>',
      'with --clickhouse: acknowledge a submission once it is in this local journal (SQLite, WAL) and ship to ClickHouse in large batches; what is left after a crash ships at the next start',
    );
}

/** The address and the webhook secret, checked before anything is opened or listens; usage errors (exit 2). */
function checkFlags(o: ServeOptions): { host: string; port: number; hookSecret?: string } {
  positiveInt(o.changesFollow, '--changes-follow');
  let listen: { host: string; port: number };
  try {
    listen = parseListen(o.listen);
  } catch (e) {
    throw usage((e as Error).message);
  }
  if (!o.webhook?.length) return listen;
  if (!o.changes) throw usage('--webhook needs change detection (without --no-changes)');
  for (const u of o.webhook) if (!/^https?:\/\/[^/]/.test(u)) throw usage(`--webhook: expected an http(s) URL, got ${JSON.stringify(u)}`);
  const hookSecret = o.webhookSecretFile ? readFileSync(o.webhookSecretFile, 'utf8').trim() : process.env.WALLSCOPE_WEBHOOK_SECRET;
  if (!hookSecret) throw usage('--webhook needs a signing secret: --webhook-secret-file FILE or $WALLSCOPE_WEBHOOK_SECRET');
  return { ...listen, hookSecret };
}

/** A secret from its file (trimmed), else from the environment variable. */
const secretFrom = (file: string | undefined, env: string) => (file ? readFileSync(file, 'utf8').trim() : process.env[env]);

async function serve(o: ServeOptions): Promise<void> {
  const { host, port, hookSecret } = checkFlags(o);
  const { changeConfirmations, ...limits } = limitsFrom(o);
  const store = await openStoreFrom(o);
  const { ctx } = analysisFrom(o);
  const opened = o.changes ? await openChangeStore(o, changeConfirmations) : undefined;
  const changes = opened?.changes;
  // List snapshots (`lists snapshot|import --store FILE`, src/store/lists.ts) live in the SQLite
  // store's file, or beside ClickHouse in the side file (--changes-db) with the webhook outbox:
  // they are small tables of inferred rules, not measurements.
  const lists = new ListStore(sideFile(o));
  const token = secretFrom(o.adminTokenFile, 'WALLSCOPE_ADMIN_TOKEN');
  const secret = secretFrom(o.reportSecretFile, 'WALLSCOPE_REPORT_SECRET');
  const srv = await startServer({
    store,
    host,
    port,
    analysisContext: ctx,
    ...limits,
    adminToken: token || undefined,
    reportSecret: secret || undefined,
    webRoot: o.web === false ? false : (o.web ?? join(repoRoot, 'web', 'dist')),
    logger: o.log,
    trustProxy: o.trustProxy ?? false,
    territoryTables: territoryTablesV4,
    ...(changes ? { changes } : {}),
    lists,
  });
  let hooks: Webhooks | undefined;
  let outbox: Outbox | undefined;
  if (o.webhook?.length && changes && hookSecret) {
    outbox = new Outbox(sideFile(o));
    hooks = startWebhooks({ changes, outbox, hooks: o.webhook, secret: hookSecret, log: (l) => process.stderr.write(`${l}\n`) });
  }
  process.stderr.write(`wallscope serve: ${srv.url} (${store.kind}, analysis ${ANALYSIS_VERSION}${token ? ', admin enabled' : ''})\n`);
  const stop = async () => {
    await hooks?.close();
    await opened?.stopFollow();
    await srv.close();
    await store.close();
    outbox?.close();
    changes?.close();
    lists.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

export function register(program: Command): void {
  const cmd = serveOptions(program.command('serve'));
  storeOptions(cmd);
  analysisOptions(cmd);
  cmd.action(serve);
}
