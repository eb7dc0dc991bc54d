// `wallscope analyze FILE...`: re-derive verdicts from published measurements, one JSON line per
// measurement on stdout, an agreement summary with OONI on stderr. Wiring only: src/analysis decides.
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import { AgreementTally, analyzeMeasurement, compareRow, readMeasurementStream, type AnalysisContext } from '../analysis/index.js';
import { defaultFingerprintsDir, defaultForgedPoolFiles, loadFingerprints } from '../probe/index.js';
import { lookupAsn } from '../probe/index.js';
import { INJECTORS_OPTION, injectorsFrom } from './injectors.js';

interface AnalyzeOptions {
  fingerprints?: string | false;
  forgedPool?: string[];
  allowNet?: string[];
  asn?: boolean;
  summary?: boolean;
  injectors?: string;
}

const collect = (v: string, acc: string[] = []): string[] => [...acc, v];

async function write(line: string): Promise<void> {
  if (!process.stdout.write(line)) await once(process.stdout, 'drain');
}

export function register(program: Command): void {
  program
    .command('analyze')
    .argument('<files...>', 'measurement files')
    .option('--fingerprints <dir>', 'OONI blocking-fingerprints CSV directory (default: ../shared/fixtures/fingerprints when present)')
    .option('--no-fingerprints', 'use no fingerprints and no forged pools')
    .option(
      '--forged-pool <file>',
      'a list of known forged DNS answers, one address per line (repeatable; default: ../shared/fixtures/gfw-forged-ips/*.txt)',
      collect,
    )
    .option('--allow-net <cidr>', 'lab mode: addresses in this range count as public, not bogons (repeatable)', collect)
    .option('--asn', 'look up answer ASNs in the offline database (helps with CDNs; slower to start)')
    .option('--no-summary', 'do not print the summary on stderr')
    .option(...INJECTORS_OPTION)
    .action(async (files: string[], o: AnalyzeOptions) => {
      const ctx: AnalysisContext = {};
      if (o.fingerprints !== false) {
        const dir = typeof o.fingerprints === 'string' ? o.fingerprints : defaultFingerprintsDir();
        const fps = loadFingerprints(dir, o.forgedPool ?? defaultForgedPoolFiles());
        for (const s of fps.skipped.slice(0, 5)) process.stderr.write(`fingerprints: ${s.source}:${s.line}: skipped: ${s.reason}\n`);
        if (fps.skipped.length > 5) process.stderr.write(`fingerprints: ${fps.skipped.length - 5} more rows skipped\n`);
        ctx.fingerprints = fps;
      }
      if (o.allowNet?.length) ctx.allowNets = o.allowNet;
      if (o.asn) ctx.asnOf = lookupAsn;
      ctx.injectors = injectorsFrom(o.injectors);
      const tally = new AgreementTally();
      let missing = 0;
      for (const file of files) {
        const notJson = notJsonFile(file);
        if (notJson) {
          missing++;
          process.stderr.write(`${file}: ${notJson}\n`);
          continue;
        }
        const stream = createReadStream(file, { highWaterMark: 1 << 20 });
        try {
          for await (const r of readMeasurementStream(stream, file)) {
            const where = `${file}:${r.line}`;
            if (!r.ok) {
              tally.addError();
              process.stderr.write(`${where}: unreadable: ${r.error}\n`);
              continue;
            }
            const row = compareRow(r.measurement, analyzeMeasurement(r.measurement, ctx));
            tally.add(row, where);
            await write(JSON.stringify(row) + '\n');
          }
        } catch (e) {
          missing++;
          process.stderr.write(`${file}: cannot read: ${(e as Error).message}\n`);
        }
      }
      if (o.summary !== false && missing < files.length) process.stderr.write(tally.format());
      if (missing > 0 || tally.unreadable > 0) process.exitCode = 1;
    });
}

/**
 * One line instead of one error per line for a file that is not JSON at all (a CSV, a pcap, a
 * binary): the first character of a regular file must open a JSON value or a .jsonc comment. Pipes
 * (/dev/stdin) are not peeked at; their records are checked one by one as they stream.
 */
function notJsonFile(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null; // the stream reports it ("cannot read")
  }
  try {
    if (!fstatSync(fd).isFile()) return null;
    const head = Buffer.alloc(512);
    const n = readSync(fd, head, 0, head.length, 0);
    const text = head
      .subarray(0, n)
      .toString('utf8')
      .replace(/^\uFEFF/, '')
      .trimStart();
    if (text === '') return null;
    if (/^[{[/]/.test(text)) return null;
    return `not a JSON measurement file (.json, .jsonl, .jsonc): it starts with ${JSON.stringify(text.slice(0, 20))}`;
  } finally {
    closeSync(fd);
  }
}
