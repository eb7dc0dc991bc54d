// A small strict reader of classic pcap files (libpcap format, tcpdump's default), enough to find a
// TCP flow's first client data segment. No npm package fits: `pcap` binds libpcap natively and
// `pcap-parser` has not changed since 2013 and does not report truncation. Pure: it reads a Buffer.
// Robustness: every length is checked against what is left; a short record is an error naming the
// record and offset, never a silently shorter packet. pcapng is refused by its magic.

export class PcapError extends Error {
  readonly code = 'PCAP_INVALID';
}

export interface TcpSegment {
  /** Record number in the file, from 1. */
  record: number;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  syn: boolean;
  ack: boolean;
  payload: Uint8Array;
}

// Link types (https://www.tcpdump.org/linktypes.html).
const LINK_NULL = 0;
const LINK_ETHERNET = 1;
const LINK_RAW = 101;
const LINK_RAW_ALT = 12; // DLT_RAW on OpenBSD numbering, seen in some captures
const LINK_LINUX_SLL = 113;
const LINK_LINUX_SLL2 = 276;
const LINK_IPV4 = 228;
const LINK_IPV6 = 229;

function ipv4(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

function ipv6(b: Uint8Array, o: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(((b[o + i]! << 8) | b[o + i + 1]!).toString(16));
  // Canonical compression (RFC 5952): the longest run of zero groups becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

/** The network-layer bytes of one frame, or null when it carries neither IPv4 nor IPv6. */
function networkLayer(link: number, f: Buffer, record: number): Buffer | null {
  const need = (n: number): void => {
    if (f.length < n) throw new PcapError(`record ${record}: frame of ${f.length} bytes is shorter than its link header (${n})`);
  };
  switch (link) {
    case LINK_ETHERNET: {
      need(14);
      let type = f.readUInt16BE(12);
      let off = 14;
      while (type === 0x8100 || type === 0x88a8) {
        // 802.1Q / 802.1ad tags
        need(off + 4);
        type = f.readUInt16BE(off + 2);
        off += 4;
      }
      return type === 0x0800 || type === 0x86dd ? f.subarray(off) : null;
    }
    case LINK_NULL: {
      need(4);
      return f.subarray(4);
    }
    case LINK_LINUX_SLL: {
      need(16);
      const type = f.readUInt16BE(14);
      return type === 0x0800 || type === 0x86dd ? f.subarray(16) : null;
    }
    case LINK_LINUX_SLL2: {
      need(20);
      const type = f.readUInt16BE(0);
      return type === 0x0800 || type === 0x86dd ? f.subarray(20) : null;
    }
    case LINK_RAW:
    case LINK_RAW_ALT:
    case LINK_IPV4:
    case LINK_IPV6:
      return f;
    default:
      throw new PcapError(`unsupported link type ${link}`);
  }
}

function tcpOf(ip: Buffer, record: number): TcpSegment | null {
  if (ip.length < 1) return null;
  const version = ip[0]! >> 4;
  let src: string;
  let dst: string;
  let l4: Buffer;
  if (version === 4) {
    if (ip.length < 20) throw new PcapError(`record ${record}: truncated IPv4 header (${ip.length} bytes)`);
    const ihl = (ip[0]! & 0x0f) * 4;
    const total = ip.readUInt16BE(2);
    if (ihl < 20 || ip.length < ihl) throw new PcapError(`record ${record}: bad IPv4 header length ${ihl}`);
    if (ip[9] !== 6) return null;
    // A fragment other than the first carries no TCP header; the first of several is not reassembled.
    if ((ip.readUInt16BE(6) & 0x3fff) !== 0) return null;
    const end = total === 0 ? ip.length : total; // 0: TSO captures leave it unset
    if (end > ip.length) throw new PcapError(`record ${record}: truncated IPv4 packet (${ip.length} of ${end} bytes captured)`);
    src = ipv4(ip, 12);
    dst = ipv4(ip, 16);
    l4 = ip.subarray(ihl, end);
  } else if (version === 6) {
    if (ip.length < 40) throw new PcapError(`record ${record}: truncated IPv6 header (${ip.length} bytes)`);
    if (ip[6] !== 6) return null; // extension headers before TCP: not a plain segment, skipped
    const end = 40 + ip.readUInt16BE(4);
    if (end > ip.length) throw new PcapError(`record ${record}: truncated IPv6 packet (${ip.length} of ${end} bytes captured)`);
    src = ipv6(ip, 8);
    dst = ipv6(ip, 24);
    l4 = ip.subarray(40, end);
  } else {
    return null;
  }
  if (l4.length < 20) throw new PcapError(`record ${record}: truncated TCP header (${l4.length} bytes)`);
  const doff = (l4[12]! >> 4) * 4;
  if (doff < 20 || doff > l4.length) throw new PcapError(`record ${record}: bad TCP data offset ${doff}`);
  const flags = l4[13]!;
  return {
    record,
    src,
    dst,
    srcPort: l4.readUInt16BE(0),
    dstPort: l4.readUInt16BE(2),
    syn: (flags & 0x02) !== 0,
    ack: (flags & 0x10) !== 0,
    payload: l4.subarray(doff),
  };
}

/** Every TCP segment of a classic pcap file, in file order. Throws PcapError on anything malformed or cut short. */
export function* readPcapTcp(file: Buffer): Generator<TcpSegment> {
  if (file.length < 24) throw new PcapError(`truncated pcap: ${file.length} bytes, a header needs 24`);
  const magic = file.readUInt32LE(0);
  let le: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) le = false;
  else if (magic === 0x0a0d0d0a) throw new PcapError('pcapng is not supported; convert it with `tcpdump -r IN -w OUT`');
  else throw new PcapError(`not a pcap file (magic 0x${magic.toString(16).padStart(8, '0')})`);
  const u32 = (o: number): number => (le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  const link = u32(20) & 0x0fffffff;
  let off = 24;
  for (let record = 1; off < file.length; record++) {
    if (off + 16 > file.length) throw new PcapError(`truncated pcap: record ${record} header at offset ${off} is cut short`);
    const incl = u32(off + 8);
    if (off + 16 + incl > file.length) {
      throw new PcapError(`truncated pcap: record ${record} at offset ${off} declares ${incl} bytes, ${file.length - off - 16} remain`);
    }
    const frame = file.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    const ip = networkLayer(link, frame, record);
    if (ip === null) continue;
    const seg = tcpOf(ip, record);
    if (seg) yield seg;
  }
}

/** A flow as written on the command line, `SRC:PORT-DST:PORT` (IPv6 in brackets), client first. */
export interface FlowKey {
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
}

export function parseFlowKey(text: string): FlowKey {
  const m = /^(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d{1,5})-(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d{1,5})$/.exec(text);
  const port = (s: string): number => {
    const n = Number(s);
    if (n < 1 || n > 65535) throw new PcapError(`flow ${JSON.stringify(text)}: port ${s} out of range`);
    return n;
  };
  if (!m) throw new PcapError(`flow ${JSON.stringify(text)}: expected SRC:PORT-DST:PORT (IPv6 in brackets)`);
  const host = (h: string): string => h.replace(/^\[|\]$/g, '').toLowerCase();
  return { src: host(m[1]!), srcPort: port(m[2]!), dst: host(m[3]!), dstPort: port(m[4]!) };
}

function sameHost(a: string, b: string): boolean {
  if (a === b) return true;
  // Accept a user's uncompressed IPv6 by comparing the canonical 16 bytes.
  if (a.includes(':') && b.includes(':')) return expand6(a) === expand6(b);
  return false;
}

function expand6(s: string): string {
  const [head, tail] = s.includes('::') ? (s.split('::') as [string, string]) : [s, ''];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16)).join(':');
}

/**
 * The client's first data segment of a flow: of `flow` when given (client = its source), else of
 * the first TCP flow seen (client = the SYN's sender, or the first segment's sender when the
 * handshake was not captured). Null when that flow carries no client data.
 */
export function firstClientPayload(file: Buffer, flow?: FlowKey): { flow: FlowKey; segment: TcpSegment } | null {
  let chosen: FlowKey | undefined = flow;
  for (const seg of readPcapTcp(file)) {
    if (!chosen) {
      chosen =
        seg.syn && seg.ack
          ? { src: seg.dst, srcPort: seg.dstPort, dst: seg.src, dstPort: seg.srcPort }
          : { src: seg.src, srcPort: seg.srcPort, dst: seg.dst, dstPort: seg.dstPort };
    }
    const fromClient =
      sameHost(seg.src, chosen.src) && seg.srcPort === chosen.srcPort && sameHost(seg.dst, chosen.dst) && seg.dstPort === chosen.dstPort;
    if (fromClient && seg.payload.length > 0) return { flow: chosen, segment: seg };
  }
  return null;
}
