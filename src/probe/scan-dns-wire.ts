// The hot path of `scan dns` on the wire: a query built straight into its bytes, and a reply turned
// into its JSON for the scan line straight from its bytes. Why not dns-packet here: per query, its
// encode and decode (objects, then JSON.stringify of them) cost more user CPU than the send and
// receive system calls, and the scan shares its machine (in the lab: with the lab itself).
// dns-packet stays the codec of record: any query name outside plain LDH labels and any reply not
// of the injected shape (answers other than A records behind a pointer to the question, an
// authority or additional section, an rcode other than NOERROR, anything malformed) goes through it,
// and scan-dns-wire.test.ts checks byte for byte that both ways agree.
import dnsPacket from 'dns-packet';
import type { DnsScanReply } from '../analysis/index.js';

/** A query as every DNS step of the probe sends it: RD set, one question, class IN. */
export function encodeQuery(name: string, type: dnsPacket.RecordType, id: number): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] });
}

const LDH = /^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/;

/** The query dns-packet's encodeQuery gives (RD set, one question, class IN), built directly. */
export function encodeScanQuery(name: string, qtype: dnsPacket.RecordType, id: number): Buffer {
  if (!plainName(name)) return encodeQuery(name, qtype, id);
  const buf = Buffer.allocUnsafe(12 + name.length + 2 + 4);
  writeScanQuery(buf, 0, name, qtype, id);
  return buf;
}

/** The longest query encodeScanQueryInto writes (a 253-character name; dns-packet's for others may be longer). */
export const MAX_SCAN_QUERY = 12 + 255 + 4;

/**
 * The same query written into `buf` at `at` (the batched sends stage queries back to back);
 * returns its length, or -1 when it does not fit in what is left of `buf`.
 */
export function encodeScanQueryInto(buf: Buffer, at: number, name: string, qtype: dnsPacket.RecordType, id: number): number {
  if (!plainName(name)) {
    const q = encodeQuery(name, qtype, id);
    return at + q.length > buf.length ? -1 : q.copy(buf, at);
  }
  const len = 12 + name.length + 2 + 4;
  if (at + len > buf.length) return -1;
  writeScanQuery(buf, at, name, qtype, id);
  return len;
}

function plainName(name: string): boolean {
  return name.length <= 253 && LDH.test(name);
}

function writeScanQuery(buf: Buffer, at: number, name: string, qtype: dnsPacket.RecordType, id: number): void {
  const end = at + 12 + name.length + 2 + 4;
  buf.writeUInt16BE(id, at);
  buf.writeUInt16BE(dnsPacket.RECURSION_DESIRED, at + 2);
  buf.writeUInt32BE(0x00010000, at + 4); // QDCOUNT 1, ANCOUNT 0
  buf.writeUInt32BE(0, at + 8); // NSCOUNT 0, ARCOUNT 0
  // The name one byte on, each dot then replaced by the length of the label after it.
  const q = at + 12;
  buf.write(name, q + 1, 'latin1');
  let labelEnd = q + 1 + name.length;
  for (let i = labelEnd - 1; i >= q; i--)
    if (i === q || buf[i] === 0x2e) {
      buf[i] = labelEnd - i - 1;
      labelEnd = i;
    }
  buf[q + 1 + name.length] = 0;
  buf.writeUInt16BE(QTYPE[qtype] ?? 0, end - 4);
  buf.writeUInt16BE(1, end - 2); // class IN
}

const QTYPE: Partial<Record<dnsPacket.RecordType, number>> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  CAA: 257,
};

function decodeAnswers(p: dnsPacket.DecodedPacket): DnsScanReply['answers'] {
  return (p.answers ?? []).map((a) => {
    const d = (a as { data?: unknown }).data;
    const data = typeof d === 'string' ? d : Buffer.isBuffer(d) ? d.toString('hex') : JSON.stringify(d ?? null);
    return { type: a.type, data, ttl: (a as { ttl?: number }).ttl ?? 0 };
  });
}

/** A reply as the scan keeps it, through dns-packet; null for a stray (another name's question). */
export function decodeScanReply(msg: Buffer, name: string, ms: number, ipTtl: number | null): DnsScanReply | null {
  let d: dnsPacket.DecodedPacket;
  try {
    d = dnsPacket.decode(msg) as dnsPacket.DecodedPacket;
  } catch {
    d = { id: msg.readUInt16BE(0), flags: msg.readUInt16BE(2), questions: [], answers: [] } as unknown as dnsPacket.DecodedPacket;
  }
  const q = d.questions?.[0];
  if (q && q.name.toLowerCase() !== name) return null; // a stray reply reusing the id
  const flags = msg.readUInt16BE(2);
  return { ms, ip_ttl: ipTtl, rcode: (d as { rcode?: string }).rcode ?? String(flags & 0xf), flags, answers: decodeAnswers(d) };
}

/** Whether the question at 12 is `name` (any case) in plain LDH labels; null when it is not that simple. */
function questionIs(msg: Buffer, name: string): { same: boolean; end: number } | null {
  let at = 12;
  let i = 0; // in name
  let same = true;
  let total = 0;
  for (;;) {
    if (at >= msg.length) return null;
    const len = msg[at++]!;
    if (len === 0) break;
    total += len + 1;
    if (len > 63 || at + len > msg.length || total > 254) return null;
    if (i > 0) {
      if (name.charCodeAt(i) !== 0x2e) same = false;
      i++;
    }
    for (let k = 0; k < len; k++) {
      let c = msg[at + k]!;
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      else if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f)) return null;
      if (name.charCodeAt(i++) !== c) same = false;
    }
    at += len;
  }
  if (at === 13) return null; // the root name: dns-packet's '.'
  return { same: same && i === name.length, end: at + 4 };
}

/**
 * The reply's JSON in the scan line (what JSON.stringify(decodeScanReply(...)) gives), read straight
 * from the bytes when the reply has the injected shape; through dns-packet otherwise. `undefined`
 * for a stray reply.
 */
export function scanReplyJson(msg: Buffer, name: string, ms: number, ipTtl: number | null): string | undefined {
  const fast = msg.length >= 12 ? injectedShape(msg, name) : null;
  const head = `{"ms":${ms},"ip_ttl":${ipTtl},`;
  if (fast === null) {
    const r = decodeScanReply(msg, name, ms, ipTtl);
    return r ? JSON.stringify(r) : undefined;
  }
  if (fast === false) return undefined;
  return `${head}"rcode":"NOERROR","flags":${msg.readUInt16BE(2)},"answers":[${fast}]}`;
}

/** The answers' JSON of a reply of the injected shape; false for a stray; null when not that shape. */
function injectedShape(msg: Buffer, name: string): string | false | null {
  const flags = msg.readUInt16BE(2);
  if ((flags & 0xf) !== 0 || msg.readUInt16BE(4) !== 1 || msg.readUInt32BE(8) !== 0) return null;
  const q = questionIs(msg, name);
  if (!q || q.end > msg.length) return null;
  if (!q.same) return false;
  let at = q.end;
  let out = '';
  for (let n = msg.readUInt16BE(6); n > 0; n--) {
    // An A record behind a pointer to the question (0xC00C), class IN, 4 bytes of data.
    if (at + 16 > msg.length || msg.readUInt16BE(at) !== 0xc00c || msg.readUInt16BE(at + 2) !== 1 || msg.readUInt16BE(at + 4) !== 1)
      return null;
    if (msg.readUInt16BE(at + 10) !== 4) return null;
    const ttl = msg.readUInt32BE(at + 6);
    out += `${out ? ',' : ''}{"type":"A","data":"${msg[at + 12]}.${msg[at + 13]}.${msg[at + 14]}.${msg[at + 15]}","ttl":${ttl}}`;
    at += 16;
  }
  return out;
}
