// The probe layer's public surface (docs/INTERNAL-API.md "probe").
export { measureWebConnectivity, newReportId, DEFAULT_DECOY, checkDecoyName, type ProbeOptions, type SniVariant, type ResidualCheck } from './webconnectivity.js';
export { startTestHelper, runControl, parseControlRequest, BadControlRequest, type TestHelper, type TestHelperOptions } from './helper.js';
export { createCA, issueCert, type CA, type IssuedCert } from './ca.js';
export { resolveUdp, resolveTcp, resolveDoh, resolveSystem, parseReply, encodeQuery, type QueryType } from './dns.js';
export { tcpConnect } from './tcp.js';
export { tlsHandshake } from './tls.js';
export { httpRoundTrip, fetchUrl, extractTitle, MAX_REDIRECTS } from './http.js';
export { NetPolicy, parseCidr, splitHostPort, joinHostPort, isBogonAddress } from './policy.js';
export { Trace } from './trace.js';
export { lookupAsn, lookupCountry, probeLocation } from './geo.js';
export { scrubberFor, scrubValue, SCRUBBED } from './scrub.js';
export { startDnsServer, startSite, startRawServer, startBlackhole, afterRequestHead, page, type DnsBehaviour, type DnsServer, type Site } from './testing.js';
export { spoolMeasurement, flushSpool, pendingFiles, defaultSpoolDir, type FlushOptions, type FlushResult, type SpoolEvent } from './spool.js';
export { readTargetList, parseCsv, type Target, type TargetListResult } from './targets.js';
export { measureMany, type MeasureOutcome } from './runner.js';
export { decodeFrame, decodeIpv4, encodeTcpPacket, encodeUdpPacket, frame, internetChecksum, seqDiff, tcpFlagNames, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type DecodedPacket, type IpFields, type TcpFields, type UdpFields } from './packet.js';
export { openCapture, captureAvailable, CaptureError, type Capture, type CapturedFrame, type CaptureOptions } from './capture.js';
