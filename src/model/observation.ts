// One network operation as the probe saw it (../shared/DESIGN.md "Model"). Steps return these; the
// experiments turn them into OONI's building blocks (queries, tcp_connect, tls_handshakes,
// requests, network_events). Times are seconds since the measurement started.
import type { Failure } from './failure.js';

export type Operation = 'resolve' | 'connect' | 'tls_handshake' | 'http_round_trip' | 'read' | 'write';

export interface Observation<D = Record<string, unknown>> {
  op: Operation;
  address: string; // "ip:port", a resolver address, or a hostname for getaddrinfo
  t0: number;
  t: number;
  failure: Failure | null;
  details: D;
}
