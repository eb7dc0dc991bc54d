// `wallscope changes ...`: change detection's maintenance on a SQLite store (rebuild after a
// re-analysis, list, the webhook outbox and its dead-letter list). Wiring only: src/store decides.
import type { Command } from 'commander';
import { ChangeStore, changeFilterFrom, Outbox, SqliteStore, StoreInputError } from '../store/index.js';

const usage = (m: string) => Object.assign(new Error(m), { exitCode: 2 });

async function withChanges<T>(db: string, fn: (c: ChangeStore) => T): Promise<T> {
  // Opening the store first migrates the file (the measurements table the changes are read from).
  // A store that cannot be opened is a usage error (exit 2) naming the option, as for the other store commands.
  let store: SqliteStore;
  try {
    store = new SqliteStore(db);
  } catch (e) {
    throw usage(`cannot open the store (--db ${db}): ${(e as Error).message}`);
  }
  const changes = new ChangeStore(db);
  try {
    return fn(changes);
  } finally {
    changes.close();
    await store.close();
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('changes')
    .description('change detection over the stored measurements (SQLite store): rebuild, list, webhook outbox');
  cmd
    .command('rebuild')
    .option('--db <file>', 'SQLite store file', 'wallscope.db')
    .description(
      'recompute every state and change from the stored measurements (after `wallscope reanalyze`); rebuilt changes are not alerted',
    )
    .action(async (o: { db: string }) => {
      const t0 = performance.now();
      const s = await withChanges(o.db, (c) => c.rebuild());
      process.stdout.write(
        `rebuilt from ${s.measurements} measurements: ${s.keys} keys, ${s.changes} changes in ${((performance.now() - t0) / 1000).toFixed(2)} s\n`,
      );
    });
  cmd
    .command('list')
    .option('--db <file>', 'SQLite store file', 'wallscope.db')
    .option('--since <time>', 'changes at or after this time (ISO 8601, YYYY-MM-DD or unix seconds)')
    .option('--probe-cc <cc>')
    .option('--probe-asn <asn>')
    .option('--region <name>')
    .option('--domain <name>')
    .option('--layer <layer>')
    .description('print the changes as GET /api/v1/changes answers them (one JSON object)')
    .action(
      async (o: { db: string; since?: string; probeCc?: string; probeAsn?: string; region?: string; domain?: string; layer?: string }) => {
        let f;
        try {
          f = changeFilterFrom({
            since: o.since,
            probe_cc: o.probeCc,
            probe_asn: o.probeAsn,
            region: o.region,
            domain: o.domain,
            layer: o.layer,
            limit: '10000',
          });
        } catch (e) {
          if (e instanceof StoreInputError) throw usage(e.message);
          throw e;
        }
        const list = await withChanges(o.db, (c) => c.list(f));
        process.stdout.write(JSON.stringify({ changes: list.map(({ id: _i, detected_at: _d, ...c }) => c) }) + '\n');
      },
    );
  cmd
    .command('outbox')
    .option('--db <file>', 'SQLite store file', 'wallscope.db')
    .option('--dead', 'only the dead-letter list')
    .option('--retry-dead', 'put the dead letters back in the queue (the running server delivers them)')
    .description('the webhook outbox: one line per delivery (state, attempts, last error)')
    .action(async (o: { db: string; dead?: boolean; retryDead?: boolean }) => {
      const store = new SqliteStore(o.db);
      const outbox = new Outbox(o.db);
      try {
        if (o.retryDead) process.stdout.write(`${outbox.retryDead(Date.now())} dead letter(s) queued again\n`);
        else
          for (const i of outbox.list(o.dead ? 'dead' : undefined))
            process.stdout.write(
              `${i.state.padEnd(9)} change ${i.item_id} -> ${i.hook} attempts ${i.attempts}${i.last_error ? ` (${i.last_error})` : ''}\n`,
            );
      } finally {
        outbox.close();
        await store.close();
      }
    });
}
