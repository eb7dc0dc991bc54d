// TCP connect step (df-005). Never throws for a network outcome; the socket is handed back on
// success so that the TLS and HTTP steps can reuse it.
import net from 'node:net';
import { classifyError, type Failure, type TcpConnectEntry } from '../model/index.js';
import type { Trace } from './trace.js';
import { joinHostPort, type NetPolicy } from './policy.js';
import { canonicalIp } from '../analysis/index.js';

export interface ConnectOptions {
  trace: Trace;
  timeoutMs: number;
  tags?: string[];
  transactionId?: number;
}

export interface ConnectResult {
  entry: TcpConnectEntry;
  socket: net.Socket | null;
}

export function tcpConnect(ip: string, port: number, policy: NetPolicy, opts: ConnectOptions): Promise<ConnectResult> {
  const { trace } = opts;
  const t0 = trace.now();
  const txid = opts.transactionId ?? trace.nextTransaction();
  const address = joinHostPort(ip, port);
  const make = (failure: Failure | null): TcpConnectEntry => ({
    ip,
    port,
    status: { success: failure === null, failure, blocked: null },
    t0,
    t: trace.now(),
    transaction_id: txid,
    tags: opts.tags ?? null,
  });
  const refused = policy.checkConnect(ip);
  if (refused) {
    trace.event({ operation: 'connect', address, proto: 'tcp', failure: refused, t0, transaction_id: txid });
    return Promise.resolve({ entry: make(refused), socket: null });
  }
  return new Promise((done) => {
    let settled = false;
    const sock = net.connect({ host: ip, port, noDelay: true, ...(policy.localAddress ? { localAddress: policy.localAddress } : {}) });
    const settle = (failure: Failure | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.removeListener('error', onError);
      const entry = make(failure);
      // The local port exists once the connect was issued, also for one that timed out.
      if (sock.localPort) trace.sockets.push({ transaction_id: txid, address, local_port: sock.localPort, tags: opts.tags ?? null });
      trace.event({ operation: 'connect', address, proto: 'tcp', failure, t0, t: entry.t, transaction_id: txid });
      if (failure) {
        sock.destroy();
        done({ entry, socket: null });
      } else {
        // Robustness: errors after connect belong to whoever uses the socket next; keep one
        // listener so that a reset while idle never crashes the process.
        sock.on('error', () => {});
        if (sock.localAddress) trace.localAddresses.add(canonicalIp(sock.localAddress));
        done({ entry, socket: sock });
      }
    };
    const onError = (err: Error): void => settle(classifyError(err));
    const timer = setTimeout(() => settle('generic_timeout_error'), opts.timeoutMs);
    sock.once('connect', () => settle(null));
    sock.on('error', onError);
  });
}
