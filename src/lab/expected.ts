// Stored expectations: every scenario's ground truth, per target, as a JSON file beside the
// library (scenarios/expected/<same path>.json). The runner fails when one is missing or differs
// from what the lab computes; `wallscope lab truth SCENARIO --write` regenerates it on purpose.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { scenarioAt, type Scenario } from '../model/index.js';
import { Policy } from './policy.js';
import { computedTruths, type Truth } from './truth.js';

export interface ExpectedFile {
  scenario: string;
  targets: Array<{ url: string; expect: Truth }>;
}

/**
 * The truth of every target: computed by the lab, with the scenario's `expect` overrides applied;
 * for a scenario with a timeline, at lab time 0 (its entries at 0 applied), as `lab eval` measures it.
 */
export function scenarioTruth(s: Scenario): ExpectedFile {
  const computed = computedTruths(s, new Policy(s.timeline ? scenarioAt(s, 0) : s));
  const overrides = new Map((s.targets ?? []).map((t) => [t.url, t.expect]));
  return {
    scenario: s.name,
    targets: computed.map((c) => ({ url: c.url, expect: { ...c.truth, ...(overrides.get(c.url) ?? {}) } as Truth })),
  };
}

/** scenarios/qa/x.yaml -> scenarios/expected/qa/x.json (relative to the library root). */
export function expectedPath(libraryRoot: string, scenarioFile: string): string {
  return join(libraryRoot, 'expected', relative(libraryRoot, scenarioFile).replace(/\.ya?ml$/, '.json'));
}

export function readExpected(file: string): ExpectedFile | null {
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as ExpectedFile;
}

export function writeExpected(file: string, e: ExpectedFile): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(e, null, 1) + '\n');
}
