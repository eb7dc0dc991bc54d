// The OONI measurement envelope (../shared/reference/measurement.md, data format 0.2.0): the
// probe_*, resolver_*, software_* and test_* keys around a test's test_keys. One builder for every
// test the probe writes (web_connectivity, x_fet, the platform tests), so that the keys, their
// order and their defaults are the same everywhere.
import { ooniTime, WALLSCOPE_SOFTWARE_NAME, type Measurement } from '../model/index.js';

export const SOFTWARE_NAME = WALLSCOPE_SOFTWARE_NAME;
export const SOFTWARE_VERSION = '0.1.0';

export interface EnvelopeFields<K> {
  testName: string;
  testVersion: string;
  input: string;
  /** measurement_start_time. */
  start: Date;
  /** test_start_time (default: start). */
  testStart?: Date;
  /** test_runtime, seconds. */
  runtime: number;
  /** probe_asn / probe_cc / probe_network_name (geo.ts probeLocation); default AS0 / ZZ / ''. */
  location?: { probe_asn: string; probe_cc: string; probe_network_name: string };
  reportId: string;
  /** Set only by tests whose records are stored once by their uid (the platform tests). */
  measurementUid?: string;
  /** resolver_ip (default 127.0.0.2: none recorded). */
  resolverIp?: string;
  testHelpers?: Record<string, unknown>;
  /** Annotations after the engine's own (engine_name, engine_version, platform). */
  annotations?: Record<string, string>;
  testKeys: K;
}

const NOWHERE = { probe_asn: 'AS0', probe_cc: 'ZZ', probe_network_name: '' };

/** The envelope, keys in OONI's order; probe_ip is always 127.0.0.1 (the probe's address is never published). */
export function ooniEnvelope<K>(f: EnvelopeFields<K>): Measurement<K> {
  const loc = f.location ?? NOWHERE;
  return {
    annotations: { engine_name: SOFTWARE_NAME, engine_version: SOFTWARE_VERSION, platform: process.platform, ...(f.annotations ?? {}) },
    data_format_version: '0.2.0',
    input: f.input,
    measurement_start_time: ooniTime(f.start),
    ...(f.measurementUid !== undefined ? { measurement_uid: f.measurementUid } : {}),
    probe_asn: loc.probe_asn,
    probe_cc: loc.probe_cc,
    probe_ip: '127.0.0.1',
    probe_network_name: loc.probe_network_name,
    report_id: f.reportId,
    resolver_asn: 'AS0',
    resolver_ip: f.resolverIp ?? '127.0.0.2',
    resolver_network_name: '',
    software_name: SOFTWARE_NAME,
    software_version: SOFTWARE_VERSION,
    test_helpers: f.testHelpers ?? {},
    test_keys: f.testKeys,
    test_name: f.testName,
    test_runtime: f.runtime,
    test_start_time: ooniTime(f.testStart ?? f.start),
    test_version: f.testVersion,
  };
}
