// The forged packets of each on-path injector, built from the client packet that triggered it, as
// published (censors.md sections 2, 3 and 5):
//   henan      ONE RST+ACK, to the client only, TTL 58, IP ID 0x0001, DF=0, the 10-byte payload
//              01 02 03 04 05 06 07 08 09 00 [SP25]
//   gfw-type-1 RST, 1, DF=0, IP ID 0, TTL seen 55-118, to both ends [SP25]
//   gfw-type-2 RST+ACK, 3, DF=1, IP ID 0x00A3-0xFE5F, TTL seen 39-238, both ends; sequence numbers
//              base, base+1460, base+4380 [Clayton06]
//   gfw-type-3 RST+ACK, 1, DF=0, IP ID 0x9916-0x9933, TTL seen 248, both ends [SP25]
// "TTL seen" is what arrives at the client: the injector sends it plus the hops back to the client,
// so the probe sees the published value whatever the injector's hop.
import type { CloseKind, ResetFingerprint } from '../../model/index.js';
import { encodeTcpPacket, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, type DecodedPacket } from '../../probe/index.js';

export const HENAN_PAYLOAD = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);

export interface Forged {
  toClient: Buffer[];
  toServer: Buffer[];
}

interface Shape {
  flags: number;
  count: number;
  df: boolean;
  ipId: (rng: () => number) => number;
  ttlSeen: (rng: () => number) => number;
  payload: Buffer;
  bothEnds: boolean;
  seqSteps: number[];
}

const between = (lo: number, hi: number) => (rng: () => number) => lo + Math.floor(rng() * (hi - lo + 1));

export const SHAPES: Record<ResetFingerprint, Shape> = {
  henan: {
    flags: TCP_RST | TCP_ACK,
    count: 1,
    df: false,
    ipId: () => 0x0001,
    ttlSeen: () => 58,
    payload: HENAN_PAYLOAD,
    bothEnds: false,
    seqSteps: [0],
  },
  'gfw-type-1': {
    flags: TCP_RST,
    count: 1,
    df: false,
    ipId: () => 0,
    ttlSeen: between(55, 118),
    payload: Buffer.alloc(0),
    bothEnds: true,
    seqSteps: [0],
  },
  'gfw-type-2': {
    flags: TCP_RST | TCP_ACK,
    count: 3,
    df: true,
    ipId: between(0x00a3, 0xfe5f),
    ttlSeen: between(39, 238),
    payload: Buffer.alloc(0),
    bothEnds: true,
    seqSteps: [0, 1460, 4380],
  },
  'gfw-type-3': {
    flags: TCP_RST | TCP_ACK,
    count: 1,
    df: false,
    ipId: between(0x9916, 0x9933),
    ttlSeen: () => 248,
    payload: Buffer.alloc(0),
    bothEnds: true,
    seqSteps: [0],
  },
};

/**
 * The reset (or, with close 'eof', the FIN) an injector with `fingerprint` sends for the client
 * segment `p`, `hopsBack` routers away from the client.
 */
export function forgeReset(
  p: DecodedPacket,
  fingerprint: ResetFingerprint,
  hopsBack: number,
  rng: () => number,
  close: CloseKind = 'reset',
): Forged {
  const tcp = p.tcp!;
  const shape = SHAPES[fingerprint];
  const clientNext = (tcp.seq + tcp.payload.length) >>> 0;
  const ttl = Math.min(255, shape.ttlSeen(rng) + hopsBack);
  const toClient: Buffer[] = [];
  const toServer: Buffer[] = [];
  if (close === 'eof') {
    // A censor that closes with a FIN (webconnectivityqa ...AndThenEOF): the client reads EOF.
    toClient.push(
      encodeTcpPacket(
        { src: p.ip.dst, dst: p.ip.src, ttl, id: shape.ipId(rng), df: shape.df },
        { srcPort: tcp.dstPort, dstPort: tcp.srcPort, seq: tcp.ack, ack: clientNext, flags: TCP_FIN | TCP_ACK, window: 502 },
      ),
    );
    return { toClient, toServer };
  }
  for (let i = 0; i < shape.count; i++) {
    const step = shape.seqSteps[i] ?? 0;
    toClient.push(
      encodeTcpPacket(
        { src: p.ip.dst, dst: p.ip.src, ttl, id: shape.ipId(rng), df: shape.df },
        {
          srcPort: tcp.dstPort,
          dstPort: tcp.srcPort,
          seq: (tcp.ack + step) >>> 0,
          ack: shape.flags & TCP_ACK ? clientNext : 0,
          flags: shape.flags,
          window: 0,
          payload: shape.payload,
        },
      ),
    );
    if (shape.bothEnds)
      toServer.push(
        encodeTcpPacket(
          { src: p.ip.src, dst: p.ip.dst, ttl: Math.min(255, shape.ttlSeen(rng)), id: shape.ipId(rng), df: shape.df },
          {
            srcPort: tcp.srcPort,
            dstPort: tcp.dstPort,
            seq: (clientNext + step) >>> 0,
            ack: shape.flags & TCP_ACK ? tcp.ack : 0,
            flags: shape.flags,
            window: 0,
            payload: shape.payload,
          },
        ),
      );
  }
  return { toClient, toServer };
}

/** An injected HTTP response (a block page) that closes the connection, ahead of the genuine one. */
export function forgeResponse(p: DecodedPacket, body: Buffer, hopsBack: number): Buffer[] {
  const tcp = p.tcp!;
  const clientNext = (tcp.seq + tcp.payload.length) >>> 0;
  const out: Buffer[] = [];
  const MSS = 1400;
  for (let off = 0; off < body.length || off === 0; off += MSS) {
    const chunk = body.subarray(off, off + MSS);
    const last = off + MSS >= body.length;
    out.push(
      encodeTcpPacket(
        { src: p.ip.dst, dst: p.ip.src, ttl: 64 + hopsBack, id: (off / MSS + 1) & 0xffff, df: true },
        {
          srcPort: tcp.dstPort,
          dstPort: tcp.srcPort,
          seq: (tcp.ack + off) >>> 0,
          ack: clientNext,
          flags: TCP_ACK | TCP_PSH | (last ? TCP_FIN : 0),
          window: 502,
          payload: chunk,
        },
      ),
    );
    if (last) break;
  }
  return out;
}
