// Report ids in OONI's shape, `20261122T052800Z_webconnectivity_CN_4134_n1_<nonce><mac>`, that
// carry the report's metadata and a MAC: the collector stays stateless (any number behind a
// balancer, sharing the secret) yet rejects ids it did not issue and submissions that disagree
// with the report's country, network or test.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface ReportMeta {
  probe_cc: string;
  probe_asn: string; // "AS1234"
  test_name: string;
}

// OONI's probes end the id with 16 random letters and digits; ours with an 8-character nonce and a
// 16-hex MAC (24 in all). Both shapes parse; only ours can be `signed`.
const RE = /^(\d{8}T\d{6}Z)_([a-z0-9]{1,64})_([A-Z]{2})_(\d{1,10})_n1_([A-Za-z0-9]{8,64})$/;

function mac(secret: Buffer, prefix: string): string {
  return createHmac('sha256', secret).update(prefix).digest('hex').slice(0, 16);
}

/** OONI writes the test name without underscores in report ids. */
export function compactTestName(name: string): string {
  return name.replace(/_/g, '').toLowerCase();
}

export function issueReportId(meta: ReportMeta, secret: Buffer, now = new Date()): string {
  const t = now.toISOString().slice(0, 19).replace(/[-:]/g, '') + 'Z';
  const asn = /^AS(\d+)$/.exec(meta.probe_asn)?.[1] ?? '0';
  const nonce = randomBytes(6).toString('base64url').replace(/[-_]/g, 'x').slice(0, 8);
  const prefix = `${t}_${compactTestName(meta.test_name)}_${meta.probe_cc}_${asn}_n1_${nonce}`;
  return prefix + mac(secret, prefix);
}

export interface ParsedReportId {
  probe_cc: string;
  probe_asn: string;
  test: string; // compact test name
  signed: boolean;
}

/** Parses any OONI-shaped report id; `signed` says whether it carries our valid MAC. */
export function parseReportId(id: string, secret: Buffer): ParsedReportId | null {
  const m = RE.exec(id);
  if (!m) return null;
  let signed = false;
  const tail = m[5];
  if (tail.length === 24 && /^[0-9a-f]{16}$/.test(tail.slice(8))) {
    const want = Buffer.from(mac(secret, id.slice(0, id.length - 16)));
    signed = timingSafeEqual(want, Buffer.from(tail.slice(8)));
  }
  return { probe_cc: m[3], probe_asn: `AS${Number(m[4])}`, test: m[2], signed };
}

/** What disagrees between a report and a measurement, or null. */
export function reportMismatch(r: ParsedReportId, m: ReportMeta): string | null {
  const bad: string[] = [];
  if (r.probe_cc !== m.probe_cc) bad.push(`probe_cc ${JSON.stringify(m.probe_cc)} (report: ${r.probe_cc})`);
  if (r.probe_asn !== m.probe_asn) bad.push(`probe_asn ${JSON.stringify(m.probe_asn)} (report: ${r.probe_asn})`);
  if (r.test !== compactTestName(m.test_name)) bad.push(`test_name ${JSON.stringify(m.test_name)} (report: ${r.test})`);
  return bad.length ? `the measurement disagrees with its report: ${bad.join(', ')}` : null;
}
