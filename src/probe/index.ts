// The probe layer's public surface (docs/INTERNAL-API.md "probe").
export {
  measureWebConnectivity,
  newReportId,
  placeReportId,
  DEFAULT_DECOY,
  checkDecoyName,
  type ProbeOptions,
  type SniVariant,
  type ResidualCheck,
} from './webconnectivity.js';
export { startTestHelper, runControl, parseControlRequest, BadControlRequest, type TestHelper, type TestHelperOptions } from './helper.js';
export { createCA, issueCert, type CA, type IssuedCert } from './ca.js';
export { resolveUdp, resolveTcp, resolveDoh, resolveSystem, parseReply, encodeQuery, type QueryType } from './dns.js';
export { tcpConnect } from './tcp.js';
export { tlsHandshake } from './tls.js';
export { httpRoundTrip, fetchUrl, extractTitle, MAX_REDIRECTS } from './http.js';
export { NetPolicy, parseCidr, splitHostPort, joinHostPort, isBogonAddress } from './policy.js';
export { Trace } from './trace.js';
export { lookupAsn, lookupCountry, probeLocation } from './geo.js';
export {
  loadFingerprints,
  defaultFingerprintsDir,
  defaultForgedPoolFiles,
  loadInjectorFingerprints,
  defaultInjectorFingerprintsFile,
} from './fingerprints-load.js';
export * from './paths.js';
export {
  spoolMeasurement,
  flushSpool,
  pendingFiles,
  defaultSpoolDir,
  type FlushOptions,
  type FlushResult,
  type SpoolEvent,
} from './spool.js';
export { readTargetList, parseCsv, type Target, type TargetListResult } from './targets.js';
export { CaptureHub } from './packet-evidence.js';
export { measureMany, type MeasureOutcome } from './runner.js';
export {
  decodeFrame,
  decodeIpv4,
  encodeTcpPacket,
  encodeUdpPacket,
  ETH_HEADER,
  forwardedTcpCopy,
  frame,
  internetChecksum,
  seqDiff,
  tcpFlagNames,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  type DecodedPacket,
  type IpFields,
  type TcpFields,
  type UdpFields,
} from './packet.js';
export {
  openCapture,
  captureAvailable,
  CaptureError,
  routeTo,
  deviceMac,
  type Capture,
  type CapturedFrame,
  type CaptureOptions,
  type Route,
} from './capture.js';
export {
  locate,
  assignHops,
  clientHelloFor,
  type LocateMechanism,
  type LocateResult,
  type InjectorHop,
  type LocatedPacket,
} from './locate.js';
export {
  startFetSink,
  sinkConnection,
  runFetTest,
  fetTrial,
  randomNonExempt,
  exemptControl,
  type FetTestOptions,
  type FetTestKeys,
  type FetTrial,
} from './fet.js';
export { listenTracked, type TrackedServer } from './tcpserver.js';
export { territoryOf, territoryTablesV4, lookupProvince, CN_PROVINCES, UNKNOWN_LABEL } from './territory.js';
export { PlatformClient, transient, type ApiReply, type PlatformClientOptions } from './platform-client.js';
export {
  watchPlatform,
  watchMeasurement,
  platformMeasurement,
  trackedPosts,
  loadWatchState,
  statusFromReply,
  WatchStateError,
  type VanishedPost,
  type WatchOptions,
  type WatchResult,
  type WatchState,
} from './platform-watch.js';
export {
  testKeywords,
  keywordMeasurement,
  KeywordTestError,
  type KeywordResult,
  type KeywordOptions,
  type KeywordRun,
} from './platform-keywords.js';
export {
  runDnsScan,
  boundYoungGenerations,
  DnsScanError,
  SCAN_QTYPES,
  type ScanQtype,
  type DnsScanOptions,
  type DnsScanProgress,
  type DnsScanResult,
} from './scan-dns.js';
export {
  dnsTrial,
  sniTrial,
  httpHostTrial,
  httpPathTrial,
  sniOutcome,
  hostOutcome,
  layeredTrial,
  ResetWatcher,
  type Trial,
  type TrialOptions,
  type TrialOutcome,
  type LayeredOutcome,
} from './infer-trials.js';
export {
  parseCampaign,
  runCampaign,
  parseDuration,
  shuffled,
  CampaignError,
  type CampaignSpec,
  type CampaignRunOptions,
  type CampaignSummary,
  type CampaignOverrides,
} from './campaign.js';
