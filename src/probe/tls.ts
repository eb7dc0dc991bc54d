// TLS handshake step (df-006) with a chosen SNI (a name, or null for none), recording version,
// cipher, ALPN and the peer chain even when verification fails (we verify after the handshake,
// as OONI's probe does, so the evidence of a MITM certificate is kept).
import tls from 'node:tls';
import net from 'node:net';
import { classifyError, type Failure, type TlsHandshakeEntry } from '../model/index.js';
import type { Trace } from './trace.js';

export interface HandshakeOptions {
  trace: Trace;
  timeoutMs: number;
  /** SNI to send; null sends none. */
  serverName: string | null;
  /** Name to verify the certificate against (defaults to serverName). */
  verifyName?: string | null;
  /** Verify the chain and name (false for decoy handshakes: only reachability matters). */
  verify: boolean;
  /** Record the peer chain (default true). Decoys skip it: decoding a chain is the costliest step. */
  recordChain?: boolean;
  /** Extra trusted CA certificates (PEM), added to node's roots. */
  ca?: string[];
  alpn?: string[];
  address: string;
  tags?: string[];
  transactionId?: number;
}

export interface HandshakeResult {
  entry: TlsHandshakeEntry & { x_reset_latency_ms?: number };
  socket: tls.TLSSocket | null;
}

const contexts = new Map<string, tls.SecureContext>();
const byArray = new WeakMap<string[], tls.SecureContext>();

/** One SecureContext per set of extra CAs: building node's root store costs milliseconds. */
export function secureContextFor(ca: string[] | undefined): tls.SecureContext {
  // A list passes the same array for every handshake: found by identity, its PEM texts are not joined again.
  const same = ca ? byArray.get(ca) : undefined;
  if (same) return same;
  const key = ca && ca.length > 0 ? ca.join('\n') : '';
  let ctx = contexts.get(key);
  if (!ctx) {
    ctx = tls.createSecureContext(key ? { ca: [...tls.rootCertificates, ...ca!] } : {});
    if (contexts.size > 16) contexts.clear();
    contexts.set(key, ctx);
  }
  if (ca) byArray.set(ca, ctx);
  return ctx;
}

/**
 * A context that trusts no CA at all (`ca: []` adds none and skips node's root store), for handshakes
 * that verify nothing (decoys, no-SNI). Why: when a chain verifies, node decodes the whole peer
 * chain into objects (getPeerCertificate(true)) for its identity check on every handshake, the
 * costliest step of a handshake on the probe's side (--cpu-prof on bench/probe-web.ts); with
 * nothing trusted the chain never verifies and that decoding is skipped. The handshake itself
 * (what the censor sees) is the same bytes.
 */
let trustNothing: tls.SecureContext | undefined;
function trustNothingContext(): tls.SecureContext {
  return (trustNothing ??= tls.createSecureContext({ ca: [] }));
}

function peerChain(detailed: tls.PeerCertificate | undefined): Array<{ format: 'base64'; data: string }> | null {
  const out: Array<{ format: 'base64'; data: string }> = [];
  let c = detailed as tls.DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (c && c.raw && out.length < 10) {
    const data = c.raw.toString('base64');
    if (seen.has(data)) break;
    seen.add(data);
    out.push({ format: 'base64', data });
    c = c.issuerCertificate;
  }
  return out.length ? out : null;
}

/**
 * The peer's certificate decoded by node: the whole chain (`detailed`, for the evidence) or the
 * leaf alone (enough for the name check; decoding is the costly part). Never
 * getPeerX509Certificate(): in node 20 it leaks the certificates it takes off the connection
 * (about 4.7 KB of malloc's heap per handshake of a 2-certificate chain, never given back: the
 * native RSS creep of a 20,000-URL list on bench/probe-web.ts).
 */
function peerCert(s: tls.TLSSocket, detailed: boolean): tls.PeerCertificate | undefined {
  try {
    const c = s.getPeerCertificate(detailed);
    return c && c.raw ? c : undefined;
  } catch {
    return undefined;
  }
}

/** Where one handshake stands: what the steps below share. */
interface HandshakeState {
  opts: HandshakeOptions;
  socket: net.Socket;
  t0: number;
  txid: number;
  alpn: string[];
  /** The TCP socket's bytes written before the handshake. */
  sentBefore: number;
  /** When the ClientHello was written, and its size (null/0 until seen). */
  helloT: number | null;
  helloBytes: number;
  settled: boolean;
}

export function tlsHandshake(socket: net.Socket, opts: HandshakeOptions): Promise<HandshakeResult> {
  const { trace } = opts;
  const t0 = trace.now();
  const txid = opts.transactionId ?? trace.nextTransaction();
  const alpn = opts.alpn ?? ['http/1.1'];
  trace.event({
    operation: 'tls_handshake_start',
    address: opts.address,
    t0,
    transaction_id: txid,
    ...(opts.tags ? { tags: opts.tags } : {}),
  });
  return new Promise((done) => {
    const st: HandshakeState = {
      opts,
      socket,
      t0,
      txid,
      alpn,
      sentBefore: socket.bytesWritten,
      helloT: null,
      helloBytes: 0,
      settled: false,
    };
    // The name is checked after the handshake (verifyPeer, on the certificate decoded once): node's own check is a no-op here.
    const s = tls.connect({
      socket,
      secureContext: !opts.verify && opts.recordChain === false ? trustNothingContext() : secureContextFor(opts.ca),
      checkServerIdentity: () => undefined,
      // An empty servername sends no SNI extension.
      servername: opts.serverName ?? '',
      rejectUnauthorized: false,
      ALPNProtocols: alpn,
    });
    const restore = skipIdentityDecode(s);
    // The ClientHello: on a connected socket node writes it synchronously inside tls.connect, so the
    // first bytes written are stamped here (attribution rule 2 times the reset from this write, not
    // from the handshake start). A socket still connecting writes it on 'connect'.
    stampHello(st);
    if (st.helloT === null) socket.once('connect', () => setImmediate(() => stampHello(st)));
    let chain: Array<{ format: 'base64'; data: string }> | null | undefined;
    const settle = (failure: Failure | null): void => {
      if (st.settled) return;
      st.settled = true;
      clearTimeout(timer);
      const t = trace.now();
      restore();
      // A handshake that failed before secureConnect: whatever certificates had arrived.
      const entry = handshakeEntry(st, s, failure, t, opts.recordChain === false ? null : (chain ?? peerChain(peerCert(s, true))));
      traceHandshakeTraffic(st, failure, t);
      if (failure) {
        s.destroy();
        socket.destroy();
        done({ entry, socket: null });
      } else {
        done({ entry, socket: s });
      }
    };
    const timer = setTimeout(() => settle('generic_timeout_error'), opts.timeoutMs);
    s.on('error', (err) => settle(classifyError(err)));
    s.on('close', () => settle('eof_error'));
    s.once('secureConnect', () => {
      restore();
      // One decoding serves the chain and the name check; without a chain to record, the leaf alone.
      const cert = opts.recordChain !== false ? peerCert(s, true) : opts.verify ? peerCert(s, false) : undefined;
      if (opts.recordChain !== false) chain = peerChain(cert);
      settle(opts.verify ? verifyPeer(s, opts, cert) : null);
    });
  });
}

/**
 * Node decodes the whole peer chain into objects (`this.getPeerCertificate(true)` in _tls_wrap's
 * onConnectSecure) whenever the chain verified, only to hand it to checkServerIdentity; ours
 * ignores it. So until the handshake is done this socket's getPeerCertificate returns an empty
 * object (the returned function puts node's back), and the handshake decodes what it needs once
 * (peerCert): the whole chain where it is recorded, the leaf alone for the name check of a
 * handshake that records none (the test helper's). The chain is still verified by OpenSSL
 * (s.authorized). Decoding the chain was the test helper's largest single cost (--cpu-prof on
 * bench/probe-web.ts: about 10% of its CPU, 0.8 ms per control request).
 */
function skipIdentityDecode(s: tls.TLSSocket): () => void {
  const own = s as unknown as { getPeerCertificate?: () => object };
  own.getPeerCertificate = () => ({});
  return () => {
    delete own.getPeerCertificate;
  };
}

/** Records the ClientHello's write (once), from the TCP socket's counter. */
function stampHello(st: HandshakeState): void {
  const { socket, opts } = st;
  if (st.helloT !== null || st.settled || socket.bytesWritten <= st.sentBefore) return;
  st.helloT = opts.trace.now();
  st.helloBytes = socket.bytesWritten - st.sentBefore;
  opts.trace.event({
    operation: 'write',
    address: opts.address,
    proto: 'tcp',
    num_bytes: st.helloBytes,
    t0: st.t0,
    t: st.helloT,
    transaction_id: st.txid,
    ...(opts.tags ? { tags: opts.tags } : {}),
  });
}

/** The df-006 entry, with the reset latency for a reset or EOF. */
function handshakeEntry(
  st: HandshakeState,
  s: tls.TLSSocket,
  failure: Failure | null,
  t: number,
  chain: Array<{ format: 'base64'; data: string }> | null,
): HandshakeResult['entry'] {
  const { opts } = st;
  const entry: HandshakeResult['entry'] = {
    network: 'tcp',
    address: opts.address,
    server_name: opts.serverName ?? '',
    failure,
    tls_version: s.getProtocol() ?? '',
    cipher_suite: (s.getCipher() as { standardName?: string } | undefined)?.standardName ?? '',
    negotiated_protocol: typeof s.alpnProtocol === 'string' ? s.alpnProtocol : '',
    no_tls_verify: !opts.verify,
    peer_certificates: chain,
    alpn: st.alpn,
    t0: st.t0,
    t,
    transaction_id: st.txid,
    tags: opts.tags ?? null,
  };
  // From the ClientHello's write to the reset (the handshake start when the hello was never seen).
  if (failure === 'connection_reset' || failure === 'eof_error')
    entry.x_reset_latency_ms = Math.round((t - (st.helloT ?? st.t0)) * 1e6) / 1e3;
  return entry;
}

/**
 * The handshake's own traffic, from the TCP socket's counters (TLS owns the stream, so there are
 * no per-read events here): bytes that arrived before a timeout are how throttling shows. The
 * ClientHello has its own write event (stampHello, at its time); what the client wrote after it
 * (its Finished) is one more write, stamped at the end.
 */
function traceHandshakeTraffic(st: HandshakeState, failure: Failure | null, t: number): void {
  const { opts, socket, t0, txid } = st;
  const { trace, address } = opts;
  const tags = opts.tags ? { tags: opts.tags } : {};
  const rest = socket.bytesWritten - st.sentBefore - st.helloBytes;
  if (rest > 0)
    trace.event({ operation: 'write', address, proto: 'tcp', num_bytes: rest, t0: st.helloT ?? t0, t, transaction_id: txid, ...tags });
  if (socket.bytesRead > 0)
    trace.event({ operation: 'read', address, proto: 'tcp', num_bytes: socket.bytesRead, t0, t, transaction_id: txid, ...tags });
  trace.event({ operation: 'tls_handshake_done', address, failure, t0, t, transaction_id: txid, ...tags });
}

/** After the handshake: the chain (node's verdict) and the name; null when both hold. */
function verifyPeer(s: tls.TLSSocket, opts: HandshakeOptions, cert: tls.PeerCertificate | undefined): Failure | null {
  if (!s.authorized) {
    const code = String(s.authorizationError ?? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    return classifyError(Object.assign(new Error(code), { code }));
  }
  const name = opts.verifyName ?? opts.serverName;
  if (!name) return null;
  // Node's RFC 6125 matching, on the certificate already decoded (peerCert).
  const err = cert ? tls.checkServerIdentity(name, cert) : undefined;
  if (!cert || err)
    return classifyError(err ?? Object.assign(new Error(`certificate is not valid for ${name}`), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }));
  return null;
}
