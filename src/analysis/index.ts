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
export { classifyFirstPacket, fetProtocolPrefix, FET_POPCOUNT_LOW, FET_POPCOUNT_HIGH, FET_PREFIX_LEN, FET_RUN_LEN } from './fet.js';
export { readPcapTcp, firstClientPayload, parseFlowKey, PcapError, type TcpSegment, type FlowKey } from './pcap.js';
export { stepChange, observedState, emptyKeyState, DEFAULT_CONFIRMATIONS, type ChangeObservation, type TrackedState, type KeyState, type DetectedChange } from './changes.js';
export { seriesAnomalies, type SeriesPoint, type SeriesAnomaly, type AnomalyOptions } from './anomaly.js';
