// `wallscope demo`: the built-in realistic lab with the Citizen Lab China list's domains, measured
// and summed up. Parses arguments, wires src/lab, prints.
import type { Command } from 'commander';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ANALYSIS_VERSION } from '../analysis/index.js';
import { defaultFingerprintsDir, defaultForgedPoolFiles, loadFingerprints } from '../probe/index.js';
import { buildDemoScenario, DEMO_LIST, measureLab, scoreRows, startLab, summarize } from '../lab/index.js';
import type { Measurement } from '../model/index.js';
import { placeReportId, repoRoot, territoryTablesV4 } from '../probe/index.js';
import { parseListen, startServer } from '../server/index.js';
import { ChangeStore, ListStore, SqliteStore } from '../store/index.js';
import { analyzerWith } from '../server/index.js';

// The demo's emulated vantage point: a volunteer on China Unicom in Henan, behind the Henan
// provincial firewall and the national one. Lab measurements carry it, marked as emulated, so the
// explorer's country and network pages have something to show; nothing here is a real probe's.
// Its region goes where a volunteer's `measure --region` puts it: annotations.region.
const DEMO_VANTAGE = { probe_cc: 'CN', probe_asn: 'AS4837', probe_network_name: 'China Unicom (emulated, wallscope lab)' };
const DEMO_REGION = 'Henan';

export function register(program: Command): void {
  program
    .command('demo')
    .option('--list <csv>', 'Citizen Lab test list to use', DEMO_LIST)
    .option('--limit <n>', 'only the first n entries of the list', (v) => Number(v))
    .option('--concurrency <n>', 'targets measured at once', (v) => Number(v), 12)
    .option('--json', 'print the summary and the score as JSON')
    .option('--out <file.jsonl>', 'also write every measurement (OONI format, verdict in test_keys.x_verdict) as JSON lines')
    .option('--db <file>', 'SQLite store the results go into (made afresh each run)', join(repoRoot, '.wallscope', 'demo.db'))
    .option('--listen <host:port>', 'where the explorer is served', '127.0.0.1:8080')
    .option('--no-serve', 'stop after the summary instead of serving the explorer')
    .action(
      async (o: {
        list: string;
        limit?: number;
        concurrency: number;
        json?: boolean;
        out?: string;
        db: string;
        listen: string;
        serve: boolean;
      }) => {
        const { scenario, skipped } = buildDemoScenario(o.list, o.limit);
        const w = (x: string) => process.stdout.write(x);
        if (!o.json)
          w(
            `Starting a lab with ${scenario.world.sites.length} sites from ${o.list} (${skipped} entries skipped: not http(s) with a plain domain)...\n`,
          );
        const t0 = performance.now();
        // As root the sites listen on 80/443 of their own 127.x addresses (the lab's default), so the
        // URLs read as they do on the internet.
        const lab = await startLab(scenario);
        let measurements: Measurement[] = [];
        try {
          const { rows } = await measureLab(lab, {
            concurrency: o.concurrency,
            onRow: o.json || !process.stderr.isTTY ? undefined : (_r, done, total) => process.stderr.write(`\rmeasured ${done}/${total}`),
          });
          if (!o.json && process.stderr.isTTY) process.stderr.write('\n');
          const seconds = (performance.now() - t0) / 1000;
          measurements = rows.flatMap((r) => (r.measurement ? [r.measurement as unknown as Measurement] : []));
          if (o.out) writeFileSync(o.out, rows.flatMap((r) => (r.measurement ? [JSON.stringify(r.measurement)] : [])).join('\n') + '\n');
          const sum = summarize(rows, scenario.world.sites.length);
          const score = scoreRows(scenario.name, rows);
          if (o.json) {
            w(JSON.stringify({ summary: sum, seconds, warnings: lab.warnings, score }) + '\n');
            return;
          }
          w(`\nMeasured ${sum.targets} URLs on ${sum.sites} sites in ${seconds.toFixed(1)} s.\n`);
          w(`  blocked:    ${sum.blocked}\n  accessible: ${sum.accessible}\n  other (down or no verdict): ${sum.other}\n`);
          w('  blocked, by mechanism:\n');
          for (const [m, n] of Object.entries(sum.byMechanism).sort((a, b) => b[1] - a[1])) w(`    ${m.padEnd(16)} ${n}\n`);
          w('  blocked, by layer:\n');
          for (const [l, n] of Object.entries(sum.byLayer).sort((a, b) => b[1] - a[1])) w(`    ${l.padEnd(16)} ${n}\n`);
          w(
            `  the lab really blocked ${sum.truthBlocked}; the probe's blocking class agreed on ${(score.blocking_agreement * 100).toFixed(1)}% of the URLs, ${score.mismatches.length} verdicts differ in mechanism or layer.\n`,
          );
          for (const warn of lab.warnings) w(`  WARNING: ${warn}\n`);
        } finally {
          await lab.close();
        }
        if (o.json) return;
        await storeAndServe(measurements, o, w);
      },
    );
}

/** The demo's results into a fresh SQLite store, analysed as the collector would; then the explorer over it. */
async function storeAndServe(
  measurements: Measurement[],
  o: { db: string; listen: string; serve: boolean },
  w: (s: string) => void,
): Promise<void> {
  const db = resolve(o.db);
  mkdirSync(dirname(db), { recursive: true });
  for (const suffix of ['', '-wal', '-shm']) rmSync(db + suffix, { force: true });
  const fingerprints = loadFingerprints(defaultFingerprintsDir(), defaultForgedPoolFiles());
  const analyze = analyzerWith({ fingerprints });
  const store = new SqliteStore(db);
  const items = measurements.map((m) => {
    const placed: Measurement = {
      ...m,
      ...DEMO_VANTAGE,
      report_id: placeReportId(m.report_id, DEMO_VANTAGE.probe_cc, DEMO_VANTAGE.probe_asn),
      annotations: { ...m.annotations, region: DEMO_REGION, x_lab_vantage: 'emulated' },
    };
    return { m: placed, verdict: analyze(placed) };
  });
  await store.putMany(items);
  w(`\nStored ${items.length} measurements in ${db} (analysis ${ANALYSIS_VERSION}).\n`);
  if (!o.serve) {
    await store.close();
    return;
  }
  const { host, port } = parseListen(o.listen);
  // Change detection as `serve` has it on a SQLite store, so the explorer's Changes page and
  // "blocked since" work over the demo too (one run: the current states, no change yet).
  const changes = new ChangeStore(db);
  changes.rebuild();
  // The list tables as `serve` has them (empty: the demo infers no rules; `lists snapshot --store` fills them).
  const lists = new ListStore(db);
  const srv = await startServer({
    store,
    host,
    port,
    analysisContext: { fingerprints },
    webRoot: join(repoRoot, 'web', 'dist'),
    logger: false,
    territoryTables: territoryTablesV4,
    changes,
    lists,
  });
  w(
    `Explorer: open ${srv.url}/ in a browser (the emulated vantage point is CN / AS4837 / ${DEMO_REGION}: #/region/${DEMO_REGION}). Ctrl-C to stop.\n`,
  );
  await new Promise<void>((done) => {
    const stop = () => done();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await srv.close();
  await store.close();
  changes.close();
  lists.close();
}
