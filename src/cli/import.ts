// `wallscope import ooni FILE...`: published OONI measurements into the store. Wiring only.
import type { Command } from 'commander';
import { importMeasurementFiles } from '../server/index.js';
import { analysisFrom, analysisOptions, openStoreFrom, storeOptions, type AnalysisCliOptions, type StoreCliOptions } from './serve.js';

export function register(program: Command): void {
  const imp = program.command('import');
  const ooni = imp
    .command('ooni')
    .description('load published OONI measurements (.json, .jsonl, .jsonc), analysed on the way in; idempotent on measurement_uid')
    .argument('<files...>', 'measurement files');
  storeOptions(ooni);
  analysisOptions(ooni);
  ooni.action(async (files: string[], o: StoreCliOptions & AnalysisCliOptions) => {
    const store = await openStoreFrom(o);
    try {
      const { analyze } = analysisFrom(o);
      const r = await importMeasurementFiles(store, files, analyze, {
        onError: (where, error) => process.stderr.write(`${where}: ${error}\n`),
      });
      process.stdout.write(
        `files ${r.files}, read ${r.read}, stored ${r.stored}, already stored ${r.duplicates}, errors ${r.errors.length}\n`,
      );
      if (r.errors.length) process.exitCode = 1;
    } finally {
      await store.close();
    }
  });
}
