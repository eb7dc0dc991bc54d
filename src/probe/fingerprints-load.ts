// Reads the analysis' data files (fingerprint CSVs, forged-address lists, injector fingerprints)
// for the cli and the lab, which pass the result into the pure analysis (analysis/ does no I/O:
// docs/ARCHITECTURE.md). It lives in the probe, the lowest layer that reads files and that both reach.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  emptyFingerprintSet,
  parseAddressList,
  parseFingerprintCsv,
  type FingerprintSet,
  InjectorFingerprintError,
  parseInjectorFingerprints,
  type InjectorFingerprint,
} from '../analysis/index.js';
import { fixturesDir, repoRoot } from './paths.js';

/** ../shared/fixtures/fingerprints when present. */
export function defaultFingerprintsDir(): string | null {
  const d = join(fixturesDir, 'fingerprints');
  return existsSync(d) ? d : null;
}

/** ../shared/fixtures/gfw-forged-ips/*.txt when present. */
export function defaultForgedPoolFiles(): string[] {
  const d = join(fixturesDir, 'gfw-forged-ips');
  if (!existsSync(d)) return [];
  return readdirSync(d)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((f) => join(d, f));
}

/**
 * Read every *.csv in `dir` as OONI fingerprints, and each file of `forgedPoolFiles` as a list of
 * known forged addresses. Unusable rows are listed in `skipped`; a missing dir throws (a user error).
 */
export function loadFingerprints(dir: string | null, forgedPoolFiles: string[] = []): FingerprintSet {
  const set = emptyFingerprintSet();
  if (dir !== null) {
    if (!statSync(dir).isDirectory()) throw new Error(`fingerprints: ${dir} is not a directory`);
    for (const f of readdirSync(dir)
      .filter((n) => n.endsWith('.csv'))
      .sort()) {
      parseFingerprintCsv(readFileSync(join(dir, f), 'utf8'), f, set);
    }
  }
  for (const f of forgedPoolFiles) parseAddressList(readFileSync(f, 'utf8'), f, set);
  return set;
}

/** The injector fingerprints shipped with wallscope (src/analysis/data/injector-fingerprints.json). */
export function defaultInjectorFingerprintsFile(): string {
  return join(repoRoot, 'src', 'analysis', 'data', 'injector-fingerprints.json');
}

/** Reads an injector fingerprint file (analysis/injectors.ts); a missing or bad file throws InjectorFingerprintError. */
export function loadInjectorFingerprints(file: string = defaultInjectorFingerprintsFile()): InjectorFingerprint[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new InjectorFingerprintError(`cannot read injector fingerprints ${file}: ${(e as Error).message}`);
  }
  return parseInjectorFingerprints(text, file);
}
