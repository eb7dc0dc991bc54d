// `wallscope reanalyze`: re-run the analysis over stored measurements (rules or fingerprints changed).
import type { Command } from 'commander';
import { ANALYSIS_VERSION } from '../analysis/index.js';
import { reanalyzeStore, safeAnalyzer } from '../server/index.js';
import { analysisFrom, analysisOptions, openStoreFrom, storeOptions, type AnalysisCliOptions, type StoreCliOptions } from './serve.js';

export function register(program: Command): void {
  const cmd = program
    .command('reanalyze')
    .description(`re-run the analysis (${ANALYSIS_VERSION}) over every stored measurement and rewrite the verdicts`)
    .option('--only-outdated', `only measurements analysed by another version than ${ANALYSIS_VERSION}`);
  storeOptions(cmd);
  analysisOptions(cmd);
  cmd.action(async (o: StoreCliOptions & AnalysisCliOptions & { onlyOutdated?: boolean }) => {
    const store = await openStoreFrom(o);
    try {
      const { analyze } = analysisFrom(o);
      const r = await reanalyzeStore(store, safeAnalyzer(analyze, ANALYSIS_VERSION), {
        onlyOutdatedFor: o.onlyOutdated ? ANALYSIS_VERSION : undefined,
        onProgress: (d) => process.stderr.write(`\rscanned ${d.scanned}, updated ${d.updated}`),
      });
      process.stderr.write('\n');
      process.stdout.write(`scanned ${r.scanned}, updated ${r.updated}, failed ${r.failed} (analysis ${ANALYSIS_VERSION})\n`);
      if (r.failed) process.exitCode = 1;
    } finally {
      await store.close();
    }
  });
}
