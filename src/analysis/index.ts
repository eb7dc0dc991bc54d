// The analysis layer's public surface: pure functions from measurements to verdicts.
// fingerprints-load.ts is the one file with I/O (it reads fingerprint files); only the cli and
// the server call it, and pass the result in through AnalysisContext.
export { ANALYSIS_VERSION, analyzeWebConnectivity, type AnalysisContext } from './webconnectivity.js';
export { analyzeMeasurement } from './measurement.js';
export { readMeasurements, readMeasurementStream, type ReadResult, MAX_RECORD_CHARS } from './read.js';
export { domainOf } from './view.js';
export { parseFingerprintCsv, parseAddressList, emptyFingerprintSet, type FingerprintSet, type Fingerprint } from './fingerprints.js';
export { loadFingerprints, defaultFingerprintsDir, defaultForgedPoolFiles, loadInjectorFingerprints, defaultInjectorFingerprintsFile } from './fingerprints-load.js';
export { parseInjectorFingerprints, matchInjector, InjectorFingerprintError, type InjectorFingerprint } from './injectors.js';
export { compareRow, AgreementTally, type AnalyzeRow } from './row.js';
