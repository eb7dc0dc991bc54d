// Reads the server name (SNI, RFC 6066 section 3) out of the first TLS record a client sends, the
// way an on-path censor does: from the first record only. A ClientHello split across several TLS
// records is NOT reassembled (SP25: splitting across records evaded the GFW in 2024), so its SNI is
// reported as not visible. Never throws: hostile bytes give { kind: 'not-tls' }.

export type ClientHelloPeek =
  | { kind: 'incomplete' } // need more bytes to decide
  | { kind: 'not-tls' }
  | {
      kind: 'hello';
      sni: string | null;
      /** the handshake spans more than this record */
      fragmented: boolean;
      /** The extension types in the order sent (empty when fragmented or malformed before them). */
      extensions: number[];
    };

const MAX_RECORD = 16384 + 2048;

export function peekClientHello(buf: Uint8Array): ClientHelloPeek {
  if (buf.length < 1) return { kind: 'incomplete' };
  if (buf[0] !== 0x16) return { kind: 'not-tls' }; // handshake record
  if (buf.length < 5) return { kind: 'incomplete' };
  if (buf[1] !== 0x03) return { kind: 'not-tls' };
  const recLen = (buf[3]! << 8) | buf[4]!;
  if (recLen === 0 || recLen > MAX_RECORD) return { kind: 'not-tls' };
  if (buf.length < 5 + recLen) return { kind: 'incomplete' };
  const rec = buf.subarray(5, 5 + recLen);
  if (rec.length < 4 || rec[0] !== 0x01) return { kind: 'not-tls' }; // client_hello
  const hsLen = (rec[1]! << 16) | (rec[2]! << 8) | rec[3]!;
  const fragmented = hsLen + 4 > rec.length;
  if (fragmented) return { kind: 'hello', sni: null, fragmented, extensions: [] };
  const body = rec.subarray(4, 4 + hsLen);
  const extensions: number[] = [];
  return { kind: 'hello', sni: walkExtensions(body, extensions), fragmented, extensions };
}

/**
 * Walks the ClientHello body (RFC 8446 4.1.2), pushing each extension type seen onto `types`;
 * returns the host_name, or null when there is no (valid) one.
 */
function walkExtensions(b: Uint8Array, types: number[]): string | null {
  let p = 2 + 32; // legacy_version, random
  if (p + 1 > b.length) return null;
  p += 1 + b[p]!; // legacy_session_id
  if (p + 2 > b.length) return null;
  p += 2 + ((b[p]! << 8) | b[p + 1]!); // cipher_suites
  if (p + 1 > b.length) return null;
  p += 1 + b[p]!; // legacy_compression_methods
  if (p + 2 > b.length) return null;
  const extEnd = Math.min(b.length, p + 2 + ((b[p]! << 8) | b[p + 1]!));
  p += 2;
  let sni: string | null = null;
  while (p + 4 <= extEnd) {
    const type = (b[p]! << 8) | b[p + 1]!;
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    p += 4;
    if (p + len > extEnd) return sni;
    types.push(type);
    if (type === 0 && sni === null) sni = hostNameOf(b.subarray(p, p + len));
    p += len;
  }
  return sni;
}

/** The host_name of a server_name extension's body (ServerNameList { NameType(1) HostName<2> }+). */
function hostNameOf(e: Uint8Array): string | null {
  if (e.length < 2) return null;
  let q = 2;
  const listEnd = Math.min(e.length, 2 + ((e[0]! << 8) | e[1]!));
  while (q + 3 <= listEnd) {
    const nameType = e[q]!;
    const nlen = (e[q + 1]! << 8) | e[q + 2]!;
    q += 3;
    if (q + nlen > listEnd) return null;
    if (nameType === 0)
      return Buffer.from(e.subarray(q, q + nlen))
        .toString('latin1')
        .toLowerCase();
    q += nlen;
  }
  return null;
}
