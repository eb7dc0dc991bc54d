// `wallscope upload`: flush the local spool to a collector. Wiring only (src/probe/spool.ts).
import type { Command } from 'commander';
import { defaultSpoolDir, flushSpool } from '../probe/index.js';

export function register(program: Command): void {
  program
    .command('upload')
    .requiredOption(
      '--collector <url>',
      'collector base URL (NDJSON batches to POST /api/v1/submit_measurements, else one by one to POST /api/v1/submit_measurement)',
    )
    .option('--spool <dir>', 'spool directory (default: $WALLSCOPE_SPOOL or ~/.local/share/wallscope/spool)')
    .option('--retries <n>', 'retries per measurement before giving up for this run', '5')
    .option('--timeout <ms>', 'per request', '30000')
    .option('--batch-size <n>', 'measurements per batch (0: one request per measurement, as to an OONI collector)', '500')
    .action(async (o: { collector: string; spool?: string; retries: string; timeout: string; batchSize: string }) => {
      const batchSize = Number(o.batchSize);
      const usage = (m: string): Error => Object.assign(new Error(m), { exitCode: 2 });
      if (!Number.isSafeInteger(batchSize) || batchSize < 0)
        throw usage(`--batch-size: expected 0 or a positive integer, got ${JSON.stringify(o.batchSize)}`);
      if (!/^https?:\/\/[^/]/.test(o.collector) || !URL.canParse(o.collector))
        throw usage(`--collector: not an http(s) URL: ${JSON.stringify(o.collector)}`);
      const dir = o.spool ?? defaultSpoolDir();
      const r = await flushSpool(dir, o.collector, {
        retries: Number(o.retries),
        timeoutMs: Number(o.timeout),
        batchSize,
        onEvent: (e) => {
          if (e.type === 'retry') process.stderr.write(`retry ${e.attempt} in ${e.delayMs} ms: ${e.reason}\n`);
          if (e.type === 'rejected') process.stderr.write(`refused by the collector, kept in ${dir}/rejected: ${e.reason}\n`);
        },
      });
      process.stdout.write(`uploaded ${r.uploaded}, refused ${r.rejected}, still spooled ${r.remaining}\n`);
      for (const e of r.errors) process.stderr.write(`${e}\n`);
      if (r.remaining > 0) process.exitCode = 2;
    });
}
