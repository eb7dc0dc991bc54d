// The analysis layer's public surface: pure functions from measurements to verdicts.
// No I/O here (scripts/check-layers.mjs refuses it): the files are read by probe/fingerprints-load.ts
// and passed in through AnalysisContext.
export { ANALYSIS_VERSION, analyzeWebConnectivity, REGIONAL_RESET_MS, type AnalysisContext } from './webconnectivity.js';
export { analyzeMeasurement, noVerdict } from './measurement.js';
export { readMeasurements, readMeasurementStream, type ReadResult, MAX_RECORD_CHARS } from './read.js';
export { domainOf } from '../model/index.js';
export { parseFingerprintCsv, parseAddressList, emptyFingerprintSet, type FingerprintSet, type Fingerprint } from './fingerprints.js';
export { scrubberFor, scrubValue, SCRUBBED } from './scrub.js';
export { compareHttp, extractTitle, titleOfBytes, TITLE_SCAN, type HttpComparison } from './http-compare.js';
export { isBogon, isIp, canonicalIp, parseIp, unmap, parseCidrs, inCidrs, type Cidr } from './ip.js';
export {
  parseInjectorFingerprints,
  matchInjector,
  injectorBursts,
  InjectorFingerprintError,
  type InjectorFingerprint,
  type PacketView,
} from './injectors.js';
export { compareRow, AgreementTally, type AnalyzeRow } from './row.js';
export { classifyFirstPacket, fetProtocolPrefix, FET_POPCOUNT_LOW, FET_POPCOUNT_HIGH, FET_PREFIX_LEN, FET_RUN_LEN } from './fet.js';
export { readPcapTcp, firstClientPayload, parseFlowKey, PcapError, type TcpSegment, type FlowKey } from './pcap.js';
export {
  watchRecord,
  keywordRecord,
  summarizeWatch,
  keywordTable,
  type WatchRecord,
  type KeywordRecord,
  type PlatformSummary,
  type StatusCounts,
} from './platform.js';
export {
  nameHash,
  inShard,
  DnsScanSummarizer,
  type DnsScanLine,
  type DnsScanReply,
  type DnsScanAnswer,
  type DnsScanSummary,
} from './dns-scan.js';
export {
  inferRule,
  isolateKeyword,
  ruleOf,
  escapeRegexLiteral,
  VARIANTS,
  type InferredRule,
  type InferredShape,
  type IsolatedKeyword,
  type Oracle,
  type VariantName,
} from './infer.js';
export {
  stepChange,
  observedState,
  emptyKeyState,
  DEFAULT_CONFIRMATIONS,
  type ChangeObservation,
  type TrackedState,
  type KeyState,
  type DetectedChange,
} from '../model/changes.js';
export { seriesAnomalies, type SeriesPoint, type SeriesAnomaly, type AnomalyOptions } from './anomaly.js';
