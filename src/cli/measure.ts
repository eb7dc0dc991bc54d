// `wallscope measure URL... | --list FILE.csv`: run web_connectivity on each target and print a
// table (or JSONL). Wiring only: src/probe measures, src/analysis decides.
import { closeSync, createWriteStream, openSync, readFileSync, readSync, truncateSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import type cliProgress from 'cli-progress';
// The probe's modules one by one rather than its index: the index also loads the CA (x509),
// locate and FET code, which a measurement does not need (start-up: bench/cli-startup.ts).
import { type ProbeOptions } from '../probe/webconnectivity.js';
import { defaultSpoolDir, flushSpool, spoolMeasurement } from '../probe/spool.js';
import { measureMany } from '../probe/runner.js';
import { readTargetList, type Target } from '../probe/targets.js';
import type { Measurement, Verdict } from '../model/index.js';
import { networkOptions, positiveInt, probeOptionsFrom, type NetworkCliOptions } from './probe-options.js';
import { wallscopeCommand } from './self.js';

interface MeasureCliOptions extends NetworkCliOptions {
  list?: string[];
  concurrency: string;
  out?: string;
  json?: boolean;
  spool?: string | true;
  upload?: string;
  resume?: string;
}

const collect = (v: string, acc: string[] = []): string[] => [...acc, v];

async function writeTo(stream: NodeJS.WritableStream | WriteStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

function cell(s: string, width: number): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > width ? `${one.slice(0, width - 1)}…` : one.padEnd(width);
}

/** Registers `measure` and `helper` (the probe's two commands). */
export function register(program: Command): void {
  measureCommand(program).action(async (urls: string[], o: MeasureCliOptions) => {
    const targets = loadTargets(urls, o.list ?? []);
    const done = o.resume !== undefined ? readResumeFile(o.resume) : new Set<string>();
    const todo = targets.filter((t) => !done.has(t.url));
    const outFile = o.out ?? o.resume;
    const concurrency = positiveInt('--concurrency', o.concurrency);
    const opts: ProbeOptions = probeOptionsFrom(o, 'measure');

    const out = outFile ? createWriteStream(outFile, { flags: 'a' }) : null;
    if (o.upload !== undefined && !/^https?:\/\/[^/]/.test(o.upload))
      throw Object.assign(new Error(`--upload: expected the collector's http(s) URL, got ${JSON.stringify(o.upload)}`), { exitCode: 2 });
    // Robustness: with --upload, every measurement is on disk before anything is sent, so a
    // crash or an offline collector loses nothing.
    const spoolDir = o.spool === true || (o.upload !== undefined && o.spool === undefined) ? defaultSpoolDir() : o.spool;
    const bar = await progressBar();
    const started = performance.now();
    let measured = 0;
    let blocked = 0;
    bar?.start(todo.length, 0, { rate: '0.0', blocked: 0 });
    const table = verdictTable(!o.json);
    await table.start();
    const finishOutput = (): Promise<void> => (out ? new Promise<void>((resolve) => out.end(resolve)) : Promise.resolve());
    const interrupted = (): string =>
      `interrupted: ${measured} of ${todo.length} measured${outFile ? ` and written to ${outFile}` : ''}; ${resumeHint(outFile)}\n`;
    const { stop, onSigint } = interruption(bar, finishOutput, interrupted);
    process.on('SIGINT', onSigint);
    try {
      await measureMany(
        todo,
        opts,
        concurrency,
        async (r) => {
          if (!r.ok) {
            await table.emit([r.target.url, 'error', '-', '-', r.error]);
            return;
          }
          const line = JSON.stringify(r.measurement) + '\n';
          if (out) await writeTo(out, line);
          if (spoolDir) await spoolMeasurement(spoolDir, r.measurement as unknown as Measurement);
          if (o.json) await writeTo(process.stdout, line);
          const v = r.measurement.test_keys.x_verdict as Verdict | undefined;
          measured++;
          if (v?.status === 'blocked') blocked++;
          if (bar && !stop.signal.aborted) bar.increment({ rate: (measured / ((performance.now() - started) / 1000)).toFixed(1), blocked });
          await table.emit([r.target.url, v?.status ?? 'unknown', v?.mechanism ?? '-', v?.layer ?? '-', v?.explanation ?? '']);
        },
        { signal: stop.signal },
      );
    } finally {
      process.off('SIGINT', onSigint);
    }
    bar?.stop();
    await finishOutput();
    if (stop.signal.aborted) {
      process.stderr.write(interrupted());
      process.exitCode = 130;
    }
    if (o.upload !== undefined && spoolDir) await upload(spoolDir, o.upload);
    table.end();
  });
}

/** The `measure` command and its options. */
function measureCommand(program: Command): Command {
  return networkOptions(
    program
      .command('measure')
      .description('measure URLs with web_connectivity (OONI format); prints a verdict table, or JSONL with --json')
      .argument('[urls...]', 'URLs to measure'),
  )
    .option('--list <file>', 'a Citizen Lab test-list CSV (or one URL per line); repeatable', collect)
    .option('--concurrency <n>', 'URLs measured at once', '8')
    .option('--out <file.jsonl>', 'append each measurement as one JSON line')
    .option('--json', 'print measurements as JSONL on stdout instead of the table')
    .option(
      '--upload <collector-url>',
      'spool each measurement first, then upload the spool to this collector with retry and backoff (what cannot be sent stays spooled for `wallscope upload`)',
    )
    .option(
      '--resume <file.jsonl>',
      'skip the URLs already measured in this output file and append the rest to it (unless --out names another file)',
    )
    .option(
      '--spool [dir]',
      'also keep each measurement in the upload spool (default dir: $WALLSCOPE_SPOOL or ~/.local/share/wallscope/spool); send with `wallscope upload`',
    );
}

/**
 * Ctrl-C: stop taking URLs, let those in flight finish and be written; a second one drops them
 * (what is finished is written, and the message says how to resume).
 */
function interruption(
  bar: cliProgress.SingleBar | null,
  finishOutput: () => Promise<void>,
  interrupted: () => string,
): { stop: AbortController; onSigint: () => void } {
  const stop = new AbortController();
  const onSigint = (): void => {
    if (!stop.signal.aborted) {
      stop.abort();
      bar?.stop();
      process.stderr.write(`\ninterrupted: finishing the URLs in flight (Ctrl-C again to drop them)\n`);
      return;
    }
    void finishOutput().then(() => {
      process.stderr.write(interrupted());
      process.exit(130);
    });
  };
  return { stop, onSigint };
}

/** How to continue an interrupted run: the same command line with --resume OUTFILE. */
function resumeHint(outFile: string | undefined): string {
  const args = process.argv.slice(2).filter((a, i, all) => a !== '--resume' && all[i - 1] !== '--resume' && !a.startsWith('--resume='));
  return outFile
    ? `resume with: ${wallscopeCommand()} ${[...args, '--resume', outFile].map(shellQuote).join(' ')}`
    : 'nothing was written to a file: run again with --out FILE, then --resume FILE';
}

/** The command line's URLs and the --list files' targets; a malformed URL argument is a usage error. */
function loadTargets(urls: string[], lists: string[]): Target[] {
  // A malformed URL on the command line is a usage error: nothing is measured (exit 2). A bad
  // row of a --list file is skipped with its file:line, the rest measured (a published list
  // with one broken row should not stop a volunteer's run).
  for (const url of urls) {
    if (!isHttpUrl(url)) throw Object.assign(new Error(`not an http(s) URL: ${JSON.stringify(url).slice(0, 200)}`), { exitCode: 2 });
  }
  const targets: Target[] = urls.map((url) => ({ url }));
  for (const file of lists) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw Object.assign(new Error(`cannot read ${file}: ${(e as Error).message}`), { exitCode: 2 });
    }
    const r = readTargetList(text);
    for (const err of r.errors) process.stderr.write(`${file}:${err.line}: skipped: ${err.error}\n`);
    targets.push(...r.targets);
  }
  if (targets.length === 0) throw Object.assign(new Error('nothing to measure: give URLs or --list FILE.csv'), { exitCode: 2 });
  return targets;
}

/** Progress on a terminal only (stderr); a pipe or a log file stays quiet (and never loads the bar's library). */
async function progressBar(): Promise<cliProgress.SingleBar | null> {
  if (!process.stderr.isTTY) return null;
  const { default: cliProgress } = await import('cli-progress');
  return new cliProgress.SingleBar(
    {
      stream: process.stderr,
      clearOnComplete: true,
      etaBuffer: 200,
      format: 'measuring [{bar}] {value}/{total} {rate}/s ETA {eta_formatted} blocked {blocked}',
    },
    cliProgress.Presets.shades_classic,
  );
}

type Row = [string, string, string, string, string];

/**
 * The verdict table: in a pipe each row is printed as its URL completes (nothing kept); on a
 * terminal it waits for the progress bar to end (and is the only per-URL state kept). Nothing
 * when `on` is false (--json).
 */
function verdictTable(on: boolean): { start: () => Promise<void>; emit: (r: Row) => Promise<void>; end: () => void } {
  const streamRows = on && !process.stdout.isTTY;
  const width = process.stdout.isTTY ? (process.stdout.columns ?? 140) : 100_000;
  const reasonWidth = Math.max(30, width - 50 - 9 - 16 - 9 - 4);
  const header = `${cell('URL', 50)} ${cell('VERDICT', 8)} ${cell('MECHANISM', 15)} ${cell('LAYER', 8)} REASON\n`;
  const row = (r: Row): string =>
    `${cell(r[0], 50)} ${cell(r[1], 8)} ${cell(r[2], 15)} ${cell(r[3], 8)} ${cell(r[4], reasonWidth).trimEnd()}\n`;
  const rows: Row[] = [];
  return {
    start: async () => {
      if (streamRows) await writeTo(process.stdout, header);
    },
    emit: async (r) => {
      if (streamRows) await writeTo(process.stdout, row(r));
      else if (on) rows.push(r);
    },
    end: () => {
      if (!on || streamRows) return;
      process.stdout.write(header);
      for (const r of rows) process.stdout.write(row(r));
    },
  };
}

/** --upload: send the spool to the collector; what cannot be sent stays spooled. */
async function upload(spoolDir: string, collector: string): Promise<void> {
  const up = await flushSpool(spoolDir, collector, {
    onEvent: (e) => {
      if (e.type === 'retry') process.stderr.write(`upload: retry ${e.attempt} in ${e.delayMs} ms: ${e.reason}\n`);
      if (e.type === 'rejected') process.stderr.write(`upload: refused by the collector, kept in ${spoolDir}/rejected: ${e.reason}\n`);
    },
  });
  process.stderr.write(
    `upload: ${up.uploaded} uploaded, ${up.rejected} refused, ${up.remaining} still spooled in ${spoolDir}${up.remaining ? ` (send them later with: ${wallscopeCommand()} upload --collector ${collector} --spool ${spoolDir})` : ''}\n`,
  );
}

function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/**
 * The inputs already measured in an output file (--resume). A last line cut short (the process was
 * killed mid-write) is cut off the file so that appending continues on a line boundary; any other
 * line that is not a measurement is an error: resuming into a file we do not understand could
 * duplicate or lose URLs. Read a chunk at a time: a 20,000-URL output is ~225 MB of JSON, and only
 * the inputs are kept.
 */
export function readResumeFile(file: string): Set<string> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw Object.assign(new Error(`--resume: cannot read ${file}: ${(e as Error).message}`), { exitCode: 2 });
  }
  const done = new Set<string>();
  let cutAt: number | null = null;
  try {
    const chunk = Buffer.alloc(1 << 20);
    let carry = Buffer.alloc(0);
    let offset = 0; // bytes of the file before `carry`
    let line = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, offset + carry.length);
      if (n === 0) break;
      let buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
      let start = 0;
      for (let nl = buf.indexOf(10); nl !== -1; nl = buf.indexOf(10, start)) {
        resumeLine(buf.toString('utf8', start, nl), file, ++line, done);
        start = nl + 1;
      }
      offset += start;
      buf = buf.subarray(start);
      carry = Buffer.from(buf);
    }
    if (carry.length > 0) cutAt = offset;
  } finally {
    closeSync(fd);
  }
  if (cutAt !== null) truncateSync(file, cutAt);
  return done;
}

/** One line of a --resume file: its measurement's input is added to `done`. */
function resumeLine(l: string, file: string, line: number, done: Set<string>): void {
  if (!l.trim()) return;
  let input: unknown;
  try {
    input = (JSON.parse(l) as { input?: unknown }).input;
  } catch {
    input = undefined;
  }
  if (typeof input !== 'string')
    throw Object.assign(new Error(`--resume: ${file}:${line}: not a measurement line (refusing to resume into it)`), { exitCode: 2 });
  done.add(input);
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}
