// The injector fingerprints (analysis/injectors.ts) for every command that analyses: the file a
// researcher extends, or the one shipped in src/analysis/data. A bad file is the user's error (exit 2).
import { type InjectorFingerprint } from '../analysis/index.js';
import { loadInjectorFingerprints } from '../probe/fingerprints-load.js';

export const INJECTORS_OPTION = [
  '--injectors <file.json>',
  'forged-reset fingerprints of known injectors, matched against captured packets (default: src/analysis/data/injector-fingerprints.json)',
] as const;

export function injectorsFrom(file: string | undefined): InjectorFingerprint[] {
  try {
    return file === undefined ? loadInjectorFingerprints() : loadInjectorFingerprints(file);
  } catch (e) {
    throw Object.assign(new Error((e as Error).message), { exitCode: 2 });
  }
}
