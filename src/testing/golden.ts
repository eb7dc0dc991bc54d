// Stored expectations: the verdict of every fixture measurement (../shared/fixtures/measurements,
// read in place) is kept under src/analysis/testdata/expected/, one file per fixture, and diffed by
// golden.test.ts. Regenerate after an intended change with `node dist/src/testing/regen.js`.
// This module reads files: it is used only by the golden test and the regen command.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Verdict } from '../model/index.js';
import { fixturesDir, repoRoot, sharedDir, loadFingerprints, defaultFingerprintsDir, defaultForgedPoolFiles } from '../probe/index.js';
import { analyzeMeasurement, readMeasurements, compareRow, type AnalyzeRow, type AnalysisContext } from '../analysis/index.js';

export const measurementsDir = join(fixturesDir, 'measurements');
/** Real measurements from the reference's own unit-test data (ooni/probe-cli, ooni/backend), read in
 * place like the fixtures; MANIFEST.tsv there lists each file's source, commit and licence. */
export const realCorpusDir = join(sharedDir, 'real-corpus');
/**
 * The real corpus (public test data of the reference's probe and pipeline, MANIFEST.tsv there) is
 * read in place from ../shared like every fixture; where that copy of shared/ lacks it, only the
 * fixtures are checked.
 */
export const realCorpusPresent = existsSync(realCorpusDir);
export const expectedDir = join(repoRoot, 'src', 'analysis', 'testdata', 'expected');
export const differencesFile = join(repoRoot, 'src', 'analysis', 'testdata', 'deliberate-differences.json');

export interface GoldenRecord {
  line: number;
  error?: string;
  verdict?: Verdict;
  ooni?: { blocking: unknown; accessible: unknown };
  agrees?: boolean | null;
}
export interface GoldenFile {
  source: string;
  records: GoldenRecord[];
}

/** Deliberate differences from OONI's recorded verdict, each with its reason. */
export interface DeliberateDifference {
  source: string;
  line: number;
  ooni: { blocking: unknown; accessible: unknown };
  ours: { blocking: unknown; accessible: unknown };
  reason: string;
}

export function fixtureFiles(): string[] {
  const out: string[] = [];
  for (const d of readdirSync(measurementsDir).sort()) {
    for (const f of readdirSync(join(measurementsDir, d)).sort())
      if (/\.(json|jsonl|jsonc)$/.test(f)) out.push(join(measurementsDir, d, f));
  }
  if (realCorpusPresent)
    for (const f of readdirSync(realCorpusDir).sort()) if (/\.(json|jsonl|jsonc)$/.test(f)) out.push(join(realCorpusDir, f));
  return out;
}

let ctxCache: AnalysisContext | null = null;
/** The context the stored expectations are computed with: the default fingerprints and forged pools. */
export function goldenContext(): AnalysisContext {
  ctxCache ??= { fingerprints: loadFingerprints(defaultFingerprintsDir(), defaultForgedPoolFiles()) };
  return ctxCache;
}

export function computeGolden(file: string): { golden: GoldenFile; rows: AnalyzeRow[] } {
  const source = sourceName(file);
  const records: GoldenRecord[] = [];
  const rows: AnalyzeRow[] = [];
  for (const r of readMeasurements(readFileSync(file, 'utf8'), file)) {
    if (!r.ok) {
      records.push({ line: r.line, error: r.error });
      continue;
    }
    const verdict = analyzeMeasurement(r.measurement, goldenContext());
    const row = compareRow(r.measurement, verdict);
    rows.push(row);
    records.push({
      line: r.line,
      verdict,
      ooni: { blocking: row.ooni_blocking ?? null, accessible: row.ooni_accessible ?? null },
      agrees: row.agrees,
    });
  }
  return { golden: { source, records }, rows };
}

/** "measurements/<dir>/<file>" for a fixture, "real-corpus/<file>" for the real corpus. */
function sourceName(file: string): string {
  return file.startsWith(realCorpusDir) ? join('real-corpus', relative(realCorpusDir, file)) : relative(fixturesDir, file);
}

export function expectedPath(file: string): string {
  return file.startsWith(realCorpusDir)
    ? join(expectedDir, 'real-corpus', relative(realCorpusDir, file))
    : join(expectedDir, relative(measurementsDir, file));
}

export function readExpected(file: string): GoldenFile | null {
  const p = expectedPath(file);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as GoldenFile) : null;
}

export function readDifferences(): DeliberateDifference[] {
  return existsSync(differencesFile) ? (JSON.parse(readFileSync(differencesFile, 'utf8')) as DeliberateDifference[]) : [];
}
