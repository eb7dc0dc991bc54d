// `wallscope scan dns`: a GFWatch-style injection scan (src/probe/scan-dns.ts) of a streamed list
// of names against an address that runs no resolver (in the lab: its silent address, 127.R.0.8).
// Wiring only: argument checks, the streamed list (checked line by line, a bad line is file:line
// before anything is sent), the summary of injected answers (src/analysis/dns-scan.ts).
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import { domainToASCII } from 'node:url';
import type { Command } from 'commander';
import { DnsScanSummarizer, type DnsScanLine } from '../analysis/index.js';
import { forEachListLine, ListError } from '../lab/index.js';
import {
  boundYoungGenerations,
  DnsScanError,
  runDnsScan,
  SCAN_QTYPES,
  splitHostPort,
  type DnsScanOptions,
  type DnsScanProgress,
  type ScanQtype,
} from '../probe/index.js';

function usageError(message: string, exitCode = 2): Error {
  return Object.assign(new Error(message), { exitCode });
}

const NAME_RE = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Outside printable ASCII: through IDNA (a control character comes out as no name either way). */
const NON_ASCII = /[^ -~]/;

/** A list line or argument as a query name (ASCII, lower case), or null when it cannot be one. */
export function scanName(text: string): string | null {
  const t = text.trim().replace(/\.$/, '');
  // ASCII as is (lower-cased); anything else through IDNA, as the censors see the wire name.
  const n = NON_ASCII.test(t) ? domainToASCII(t) : t.toLowerCase();
  return NAME_RE.test(n) ? n : null;
}

/** Checks the whole list first (bounded memory), so a bad line stops the scan before any query. */
function checkList(file: string): number {
  let n = 0;
  forEachListLine(file, (b, s, e, line) => {
    const text = Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('utf8');
    if (scanName(text) === null) throw new ListError(file, line, `not a domain name: ${JSON.stringify(text.slice(0, 80))}`);
    n++;
  });
  return n;
}

/**
 * The names of a checked list, streamed: read in 64 KiB chunks (bounded memory at any list size;
 * a chunk's lines live until the scan has sent them, so a bigger chunk outlives V8's young
 * generation and piles up in the old one),
 * handed over synchronously (a readline async iterator costs a promise and an event per line).
 */
function* listNames(file: string): Generator<string> {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(64 << 10);
    const utf8 = new StringDecoder('utf8'); // a character cut by a chunk's end waits for the next
    let rest = '';
    for (;;) {
      const got = readSync(fd, buf, 0, buf.length, null);
      const text = rest + (got > 0 ? utf8.write(buf.subarray(0, got)) : utf8.end());
      const lines = text.split('\n');
      rest = got > 0 ? lines.pop()! : '';
      for (const line of lines) {
        const t = line.trim();
        if (t && !t.startsWith('#')) yield scanName(t)!;
      }
      if (got <= 0) return;
    }
  } finally {
    closeSync(fd);
  }
}

interface ScanDnsOptions {
  target: string;
  list?: string;
  rate: string;
  shard?: string;
  resume?: boolean;
  out: string;
  qtype: string;
  wait: string;
  ipTtl?: boolean;
  threads: string;
  outstanding: string;
  io: string;
  summary?: boolean;
  quiet?: boolean;
}

export function register(program: Command): void {
  const scan = program.command('scan').description('scans at scale: which names an on-path injector answers for');
  scan
    .command('dns')
    .description(
      'GFWatch-style injection scan: send queries for every name to an address that runs no resolver (every reply is injected) and keep every reply, one JSON line per name and query type',
    )
    .argument('[names...]', 'names to query (or --list)')
    .requiredOption('--target <addr[:port]>', 'an address with no resolver on the path of the censor (lab: its silent DNS address)')
    .option('--list <file>', 'one name a line (# comments and blank lines skipped); streamed, any size')
    .option('--rate <qps>', 'queries per second (0 = as fast as the in-flight bound allows)', '1000')
    .option('--shard <i/n>', "this machine's share of the list: names whose hash mod n is i (0 <= i < n)")
    .option('--resume', 'continue the scan recorded in --out (after a crash or kill -9): no name repeated or skipped')
    .requiredOption('--out <file.jsonl>', 'where the lines go (append-only)')
    .option('--qtype <types>', `comma-separated query types (${SCAN_QTYPES.join(', ')})`, 'A')
    .option('--wait <ms>', "how long each query's replies are collected", '2000')
    .option('--outstanding <n>', "at most n queries waiting for their first reply, as dnsperf's -q (0 = no bound)", '0')
    .option('--threads <n>', 'threads that send and read, each its share of the list and rate (1 when reply IP TTLs are captured)', '1')
    .option(
      '--io <auto|sendmmsg|dgram>',
      'sockets: the udp-batch addon (sendmmsg/recvmmsg, IP TTL from the socket), Node dgram, or auto (the addon when built)',
      'auto',
    )
    .option(
      '--ip-ttl',
      "require the replies' IP TTL (read by the udp-batch addon; with dgram, packet capture as root); default: when available",
    )
    .option('--no-ip-ttl', 'do not capture: ip_ttl is null')
    .option('--summary', 'print the summary of injected answers as JSON on stdout at the end')
    .option('--quiet', 'no progress on stderr')
    .action(async (names: string[], o: ScanDnsOptions) => {
      boundYoungGenerations(); // before checking the list, which is the first to grow it
      const settings = scanSettings(o);
      const result = await runDnsScan({ ...settings, names: namesOf(names, o.list), out: o.out, onProgress: progressPrinter(o) }).catch(
        (e: unknown) => {
          if (e instanceof DnsScanError) throw usageError(e.message, 1);
          throw e;
        },
      );
      if (!o.quiet)
        process.stderr.write(
          `scan dns: ${result.sent} queries in ${(result.elapsedMs / 1000).toFixed(2)} s (${Math.round(result.sent / (result.elapsedMs / 1000))} q/s), ${result.replies} replies, ${result.late} late` +
            `${result.skipped ? `, ${result.skipped} done before (resumed)` : ''}; ip_ttl ${result.ipTtl.available ? 'captured' : `null (${result.ipTtl.reason})`}; peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB; io ${result.io.path} (${result.io.reason})\n`,
        );
      if (o.summary) await printSummary(o.out);
    });
}

/** The checked options of `scan dns` (target, rate, wait, shard, query types, resume, ip_ttl). */
function scanSettings(o: ScanDnsOptions): Omit<DnsScanOptions, 'names' | 'out' | 'onProgress'> {
  let target: { host: string; port: number };
  try {
    target = splitHostPort(o.target, 53);
  } catch (e) {
    throw usageError(`--target: ${(e as Error).message}`);
  }
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(target.host))
    throw usageError(`--target must be an IPv4 address (names are never resolved), got ${o.target}`);
  const rate = Number(o.rate);
  if (!Number.isFinite(rate) || rate < 0) throw usageError(`--rate must be a number >= 0, got ${o.rate}`);
  const wait = Number(o.wait);
  if (!Number.isFinite(wait) || wait < 1 || wait > 60_000) throw usageError(`--wait must be 1..60000 ms, got ${o.wait}`);
  let shard = { i: 0, n: 1 };
  if (o.shard !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(o.shard);
    if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw usageError(`--shard must be I/N with 0 <= I < N, got ${o.shard}`);
    shard = { i: Number(m[1]), n: Number(m[2]) };
  }
  const threads = Number(o.threads);
  if (!Number.isInteger(threads) || threads < 1 || threads > 16) throw usageError(`--threads must be 1..16, got ${o.threads}`);
  const outstanding = Number(o.outstanding);
  if (!Number.isInteger(outstanding) || outstanding < 0) throw usageError(`--outstanding must be an integer >= 0, got ${o.outstanding}`);
  if (!['auto', 'sendmmsg', 'dgram'].includes(o.io)) throw usageError(`--io must be auto, sendmmsg or dgram, got ${o.io}`);
  const qtypes = o.qtype.split(',').map((q) => q.trim().toUpperCase());
  for (const q of qtypes)
    if (!(SCAN_QTYPES as readonly string[]).includes(q)) throw usageError(`--qtype: ${q} is not one of ${SCAN_QTYPES.join(', ')}`);
  return {
    host: target.host,
    port: target.port,
    qtypes: qtypes as ScanQtype[],
    rate,
    waitMs: wait,
    shard,
    resume: !!o.resume,
    threads,
    outstanding,
    io: o.io as DnsScanOptions['io'],
    ipTtl: o.ipTtl === undefined ? 'auto' : o.ipTtl,
  };
}

/** The names: the arguments, or the list checked whole first and then streamed. */
function namesOf(names: string[], list: string | undefined): Iterable<string> {
  if (!!list === names.length > 0) throw usageError('give names or --list, not both and not neither');
  if (list) {
    try {
      checkList(list);
    } catch (e) {
      if (e instanceof ListError) throw usageError(e.message, 1);
      throw e;
    }
    return listNames(list);
  }
  const ok = names.map((n) => [n, scanName(n)] as const);
  const bad = ok.find(([, n]) => n === null);
  if (bad) throw usageError(`not a domain name: ${JSON.stringify(bad[0])}`);
  return ok.map(([, n]) => n!);
}

/** Progress on stderr at most once a second (none with --quiet). */
function progressPrinter(o: ScanDnsOptions): (p: DnsScanProgress) => void {
  let lastShown = 0;
  return (p) => {
    const now = Date.now();
    if (o.quiet || now - lastShown < 1000) return;
    lastShown = now;
    process.stderr.write(
      `scan dns: ${p.sent} sent, ${p.written} written, ${p.replies} replies${p.skipped ? `, ${p.skipped} done before` : ''}\n`,
    );
  };
}

/** The summary of the injected answers of the out file (read streaming), as JSON on stdout. */
async function printSummary(out: string): Promise<void> {
  const sum = new DnsScanSummarizer();
  const rl = createInterface({ input: createReadStream(out), crlfDelay: Infinity });
  for await (const line of rl) if (line) sum.add(JSON.parse(line) as DnsScanLine);
  process.stdout.write(`${JSON.stringify(sum.result())}\n`);
}
