// Ethernet II / IPv4 / TCP / UDP frames: decode what a sniffer sees, encode what an injector sends.
// Only what the censors and the probe's packet evidence need: IPv4 (RFC 791) without options on
// encode, TCP (RFC 9293) with its options kept opaque, UDP (RFC 768). Checksums are the Internet
// checksum (RFC 1071) over the pseudo-header. decode() never throws: a truncated or non-IPv4 frame
// gives null, because hostile bytes arrive on every sniffed link.

export const ETH_HEADER = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMP = 1;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export interface Ipv4Header {
  src: string;
  dst: string;
  ttl: number;
  id: number;
  df: boolean;
  protocol: number;
  /** Header length in bytes (20 without options). */
  headerLength: number;
  totalLength: number;
}

export interface TcpHeader {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** Header length in bytes: exactly 20 means no option (Henan inspects only those, SP25). */
  headerLength: number;
  payload: Buffer;
}

export interface UdpHeader {
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

export interface IcmpHeader {
  type: number;
  code: number;
  /** For time-exceeded and unreachable: the quoted IP header and the first 8+ bytes after it. */
  quoted: Buffer;
}

export interface DecodedPacket {
  srcMac: string;
  dstMac: string;
  ip: Ipv4Header;
  tcp?: TcpHeader;
  udp?: UdpHeader;
  icmp?: IcmpHeader;
}

function ipString(b: Buffer, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

function macString(b: Buffer, o: number): string {
  return Array.from(b.subarray(o, o + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Decodes an IPv4 packet that starts at `off` (no link header). */
export function decodeIpv4(b: Buffer, off = 0): Omit<DecodedPacket, 'srcMac' | 'dstMac'> | null {
  if (b.length < off + 20 || b[off]! >> 4 !== 4) return null;
  const ihl = (b[off]! & 0x0f) * 4;
  const total = b.readUInt16BE(off + 2);
  if (ihl < 20 || total < ihl || b.length < off + ihl) return null;
  const end = Math.min(b.length, off + total);
  const frag = b.readUInt16BE(off + 6);
  const ip: Ipv4Header = {
    src: ipString(b, off + 12),
    dst: ipString(b, off + 16),
    ttl: b[off + 8]!,
    id: b.readUInt16BE(off + 4),
    df: (frag & 0x4000) !== 0,
    protocol: b[off + 9]!,
    headerLength: ihl,
    totalLength: total,
  };
  const l4 = off + ihl;
  const out: Omit<DecodedPacket, 'srcMac' | 'dstMac'> = { ip };
  // Robustness: later fragments carry no transport header.
  if ((frag & 0x1fff) !== 0) return out;
  if (ip.protocol === PROTO_TCP) {
    if (end < l4 + 20) return null;
    const doff = (b[l4 + 12]! >> 4) * 4;
    if (doff < 20 || end < l4 + doff) return null;
    out.tcp = {
      srcPort: b.readUInt16BE(l4),
      dstPort: b.readUInt16BE(l4 + 2),
      seq: b.readUInt32BE(l4 + 4),
      ack: b.readUInt32BE(l4 + 8),
      flags: b[l4 + 13]!,
      window: b.readUInt16BE(l4 + 14),
      headerLength: doff,
      payload: b.subarray(l4 + doff, end),
    };
  } else if (ip.protocol === PROTO_UDP) {
    if (end < l4 + 8) return null;
    out.udp = { srcPort: b.readUInt16BE(l4), dstPort: b.readUInt16BE(l4 + 2), payload: b.subarray(l4 + 8, end) };
  } else if (ip.protocol === PROTO_ICMP) {
    if (end < l4 + 8) return null;
    out.icmp = { type: b[l4]!, code: b[l4 + 1]!, quoted: b.subarray(l4 + 8, end) };
  }
  return out;
}

/** Decodes an Ethernet II frame carrying IPv4; null for anything else or a truncated frame. */
export function decodeFrame(b: Buffer): DecodedPacket | null {
  if (b.length < ETH_HEADER + 20 || b.readUInt16BE(12) !== ETHERTYPE_IPV4) return null;
  const rest = decodeIpv4(b, ETH_HEADER);
  if (!rest) return null;
  return { dstMac: macString(b, 0), srcMac: macString(b, 6), ...rest };
}

function sum16(b: Buffer, start: number, end: number, acc = 0): number {
  let s = acc;
  for (let i = start; i + 1 < end; i += 2) s += b.readUInt16BE(i);
  if ((end - start) % 2) s += b[end - 1]! << 8;
  return s;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** RFC 1071 checksum of b[start, end). */
export function internetChecksum(b: Buffer, start = 0, end = b.length): number {
  return fold(sum16(b, start, end));
}

function writeIp(b: Buffer, o: number, s: string): void {
  const parts = s.split('.').map(Number);
  if (parts.length !== 4 || parts.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new TypeError(`not an IPv4 address: ${s}`);
  parts.forEach((x, i) => (b[o + i] = x));
}

function writeMac(b: Buffer, o: number, s: string): void {
  const parts = s.split(':').map((x) => parseInt(x, 16));
  if (parts.length !== 6 || parts.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new TypeError(`not a MAC address: ${s}`);
  parts.forEach((x, i) => (b[o + i] = x));
}

export interface IpFields {
  src: string;
  dst: string;
  ttl: number;
  id: number;
  df: boolean;
}

/** What encodeTcpPacket takes: the decoded header's fields (TcpHeader), payload optional, no header length. */
export interface TcpFields extends Omit<TcpHeader, 'headerLength' | 'payload'> {
  payload?: Uint8Array;
}

export interface UdpFields {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export interface LinkFields {
  srcMac: string;
  dstMac: string;
}

function ipHeader(b: Buffer, o: number, ip: IpFields, protocol: number, total: number): void {
  b[o] = 0x45;
  b[o + 1] = 0;
  b.writeUInt16BE(total, o + 2);
  b.writeUInt16BE(ip.id & 0xffff, o + 4);
  b.writeUInt16BE(ip.df ? 0x4000 : 0, o + 6);
  b[o + 8] = ip.ttl & 0xff;
  b[o + 9] = protocol;
  b.writeUInt16BE(0, o + 10);
  writeIp(b, o + 12, ip.src);
  writeIp(b, o + 16, ip.dst);
  b.writeUInt16BE(internetChecksum(b, o, o + 20), o + 10);
}

function pseudoSum(b: Buffer, ipOff: number, protocol: number, l4Len: number): number {
  return sum16(b, ipOff + 12, ipOff + 20) + protocol + l4Len;
}

/** An IPv4 packet carrying one TCP segment (20-byte header, no options), checksums filled. */
export function encodeTcpPacket(ip: IpFields, tcp: TcpFields): Buffer {
  const payload = tcp.payload ?? new Uint8Array(0);
  const total = 40 + payload.length;
  const b = Buffer.alloc(total);
  ipHeader(b, 0, ip, PROTO_TCP, total);
  b.writeUInt16BE(tcp.srcPort, 20);
  b.writeUInt16BE(tcp.dstPort, 22);
  b.writeUInt32BE(tcp.seq >>> 0, 24);
  b.writeUInt32BE(tcp.ack >>> 0, 28);
  b[32] = 5 << 4;
  b[33] = tcp.flags & 0xff;
  b.writeUInt16BE(tcp.window & 0xffff, 34);
  b.set(payload, 40);
  b.writeUInt16BE(fold(sum16(b, 20, total, pseudoSum(b, 0, PROTO_TCP, total - 20))), 36);
  return b;
}

/**
 * A captured IPv4 TCP packet as a router forwards it: a copy with the IP TTL lowered by one and both
 * checksums recomputed (a capture on a veth may hold a TCP checksum left to offload, never filled).
 * Null when the TTL would expire or the packet is not a whole IPv4 TCP packet.
 */
export function forwardedTcpCopy(ipPacket: Uint8Array): Buffer | null {
  if (ipPacket.length < 20 || ipPacket[0]! >> 4 !== 4 || ipPacket[9] !== PROTO_TCP) return null;
  const ihl = (ipPacket[0]! & 0x0f) * 4;
  const b = Buffer.from(ipPacket);
  const total = b.readUInt16BE(2);
  if (total > b.length || total < ihl + 20 || b[8]! <= 1) return null;
  b[8] = b[8]! - 1;
  b.writeUInt16BE(0, 10);
  b.writeUInt16BE(fold(sum16(b, 0, ihl)), 10);
  b.writeUInt16BE(0, ihl + 16);
  b.writeUInt16BE(fold(sum16(b, ihl, total, pseudoSum(b, 0, PROTO_TCP, total - ihl))), ihl + 16);
  return b.subarray(0, total);
}

/** An IPv4 packet carrying one UDP datagram, checksums filled. */
export function encodeUdpPacket(ip: IpFields, udp: UdpFields): Buffer {
  const total = 28 + udp.payload.length;
  const b = Buffer.alloc(total);
  ipHeader(b, 0, ip, PROTO_UDP, total);
  b.writeUInt16BE(udp.srcPort, 20);
  b.writeUInt16BE(udp.dstPort, 22);
  b.writeUInt16BE(8 + udp.payload.length, 24);
  b.set(udp.payload, 28);
  const c = fold(sum16(b, 20, total, pseudoSum(b, 0, PROTO_UDP, total - 20)));
  b.writeUInt16BE(c === 0 ? 0xffff : c, 26);
  return b;
}

/** Prepends an Ethernet II header to an IPv4 packet. */
export function frame(link: LinkFields, ipPacket: Buffer): Buffer {
  const b = Buffer.alloc(ETH_HEADER + ipPacket.length);
  writeMac(b, 0, link.dstMac);
  writeMac(b, 6, link.srcMac);
  b.writeUInt16BE(ETHERTYPE_IPV4, 12);
  ipPacket.copy(b, ETH_HEADER);
  return b;
}

/** `a - b` in 32-bit sequence space, as a signed number (RFC 9293 modular arithmetic). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export function tcpFlagNames(flags: number): string {
  const n: string[] = [];
  if (flags & TCP_SYN) n.push('SYN');
  if (flags & TCP_RST) n.push('RST');
  if (flags & TCP_FIN) n.push('FIN');
  if (flags & TCP_PSH) n.push('PSH');
  if (flags & TCP_ACK) n.push('ACK');
  return n.join('+') || 'none';
}
