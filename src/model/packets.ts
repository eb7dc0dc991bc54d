// Packet evidence (`wallscope measure --capture`, docs/INTERNAL-API.md "Packet evidence"): the
// packets that ended a failed or suspicious operation, as the probe's own interface saw them. The
// probe writes them into test_keys.x_captured; the analysis matches them against the injector
// fingerprints (censors.md sections 3, 5 and 9). Not part of OONI's format (x_ keys).

/** One captured IPv4 packet of a probe flow. */
export interface CapturedPacket {
  /** 'in': towards the probe; 'out': sent by the probe's host. */
  dir: 'in' | 'out';
  proto: 'tcp' | 'udp';
  /** Milliseconds after the trigger left (the ClientHello, the HTTP request, the DNS query, the first SYN); negative before it. */
  t_ms: number;
  /** "ip:port" of the sender and of the receiver. */
  src: string;
  dst: string;
  ttl: number;
  ip_id: number;
  df: boolean;
  /** TCP flags as names joined by '+', e.g. "RST+ACK" (packet.ts tcpFlagNames); null for UDP. */
  flags: string | null;
  window: number | null;
  /**
   * TCP only. 'in': seq minus the next byte the probe expected from the peer (its last ACK),
   * ack minus the next byte the probe would send (after everything it sent). 'out': seq minus the
   * probe's initial sequence number, ack null. Null when the flow's start was not seen.
   */
  seq_rel: number | null;
  ack_rel: number | null;
  /** TCP header length in bytes (20 = no option); null for UDP. */
  tcp_header_length: number | null;
  payload_length: number;
  /** The first 256 payload bytes, lower-case hex. */
  payload_hex: string;
}

/** The packets that ended one operation. */
export interface CapturedOperation {
  operation: 'tcp_connect' | 'tls_handshake' | 'http_request' | 'dns';
  /** The peer, "ip:port" (the resolver for dns). */
  address: string;
  failure: string | null;
  /** The failing entry's transaction_id (tcp_connect, tls_handshakes) when it has one. */
  transaction_id?: number;
  /** dns: the question. */
  query?: { hostname: string; query_type: string };
  /** Seconds since the measurement started (OONI's t) when the trigger left; null when not seen. */
  trigger_t: number | null;
  /** Number of packets below. */
  count: number;
  packets: CapturedPacket[];
}
