// A throwaway certificate authority for loopback worlds (tests, the lab, benchmarks).
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs the Reflect metadata API before it loads
// ECDSA P-256 through node's webcrypto: a CA and a leaf take a few milliseconds, so every
// test can make its own. Certificates are PEM texts that `tls.createServer` and `--ca` accept.
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface CA {
  /** PEM of the CA certificate (give it to clients as an extra trusted root). */
  certPem: string;
  /** PEM (PKCS#8) of the CA private key. */
  keyPem: string;
  /** Internal: the signing keys. */
  readonly keys: CryptoKeyPair;
  readonly name: string;
}

export interface IssuedCert {
  certPem: string;
  keyPem: string;
  /** certPem followed by the CA certificate, the chain a server presents. */
  chainPem: string;
}

async function keyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** Make a new self-signed CA. */
export async function createCA(commonName = 'wallscope test CA'): Promise<CA> {
  const keys = await newKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${commonName}`,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 365 * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyToPem(keys.privateKey), keys, name: `CN=${commonName}` };
}

export interface IssueOptions {
  /** Validity window; defaults to yesterday .. in 90 days. Use a past window for an expired cert. */
  notBefore?: Date;
  notAfter?: Date;
}

/** Issue a server certificate for DNS names and/or IP addresses, signed by `ca`. */
export async function issueCert(ca: CA, names: string[], opts: IssueOptions = {}): Promise<IssuedCert> {
  if (names.length === 0) throw new TypeError('issueCert: at least one name is required');
  const keys = await newKeys();
  const now = Date.now();
  const sans = names.map((n) => ({ type: isIP(n) ? ('ip' as const) : ('dns' as const), value: n }));
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${names[0]}`,
    issuer: ca.name,
    notBefore: opts.notBefore ?? new Date(now - DAY_MS),
    notAfter: opts.notAfter ?? new Date(now + 90 * DAY_MS),
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(sans),
    ],
  });
  const certPem = cert.toString('pem');
  return { certPem, keyPem: await keyToPem(keys.privateKey), chainPem: `${certPem}\n${ca.certPem}` };
}
