// Where the probe may dial, and which addresses count as bogons.
// Lab mode (../shared/DESIGN.md "Lab mode of the probe"): with --allow-net the probe refuses to dial
// outside the given ranges, and addresses inside them count as public (a lab on 127.0.0.0/8 is
// measured like the internet). With a lab resolver it never uses the system resolver.
import ipaddr from 'ipaddr.js';
import { isIP } from 'node:net';
import { unknownFailure, type Failure } from '../model/index.js';
import { canonicalIp, inCidrs, isBogon, unmap } from '../analysis/index.js';

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

export class NetPolicy {
  private readonly cidrs: Cidr[];
  /** True when dialing is restricted to the allowed ranges. */
  readonly restricted: boolean;

  /** Source address for every outgoing socket (the lab exempts its helper by source). */
  readonly localAddress: string | undefined;

  /** Unrestricted, refuse TCP connects to non-public addresses (a test helper on the internet). */
  readonly publicOnly: boolean;

  constructor(allowNet: readonly string[] | undefined, localAddress?: string, opts: { publicOnly?: boolean } = {}) {
    this.cidrs = (allowNet ?? []).map(parseCidr);
    this.restricted = this.cidrs.length > 0;
    this.localAddress = localAddress;
    this.publicOnly = opts.publicOnly === true && !this.restricted;
  }

  /**
   * checkDial, plus (publicOnly) no TCP connect to a loopback, private, link-local or other
   * non-unicast address: a helper on the internet would otherwise fetch its own network's services
   * (cloud metadata at 169.254.169.254, admin ports on 127.0.0.1) for whoever asks. DNS to the
   * configured resolver goes through checkDial only (a local resolver stays usable).
   */
  checkConnect(ip: string): Failure | null {
    const f = this.checkDial(ip);
    if (f) return f;
    if (this.publicOnly && isBogonAddress(ip)) return unknownFailure(`refused to dial ${ip}: not a public address`);
    return null;
  }

  /** Answers of inAllowed: a measurement asks about the same few addresses a dozen times (every dial, every bogon check). */
  private readonly allowedMemo = new Map<string, boolean>();

  /** Whether `ip` lies inside one of the allowed ranges (false when there are none). */
  inAllowed(ip: string): boolean {
    if (this.cidrs.length === 0) return false;
    let r = this.allowedMemo.get(ip);
    if (r === undefined) {
      r = inCidrs(ip, this.cidrs);
      if (this.allowedMemo.size >= 4096) this.allowedMemo.clear();
      this.allowedMemo.set(ip, r);
    }
    return r;
  }

  /** null when dialing `ip` is allowed, else the failure to record instead of dialing. */
  checkDial(ip: string): Failure | null {
    if (!isIP(ip)) return unknownFailure(`not an IP address: ${ip}`);
    if (this.restricted && !this.inAllowed(ip)) return unknownFailure(`refused to dial ${ip}: outside --allow-net`);
    return null;
  }

  /** Bogon by the analysis' rule (OONI's list, analysis/ip.ts), lab ranges counted as public: a DNS answer. */
  isBogon(ip: string): boolean {
    return isBogon(ip, this.cidrs);
  }
}

/**
 * Whether one of our own or dialled socket addresses is a bogon: OONI's rule (analysis/ip.ts) on
 * the address as Node may report it (an IPv4-mapped form is judged by the IPv4 address it carries).
 */
export function isBogonAddress(ip: string): boolean {
  return isBogon(canonicalIp(ip));
}

const normalize = unmap; // the one IPv4-mapped normalisation (analysis/ip.ts)

export function parseCidr(s: string): Cidr {
  const text = s.trim();
  try {
    if (text.includes('/')) {
      const [net, bits] = ipaddr.parseCIDR(text);
      return [normalize(net), net.kind() === 'ipv6' && normalize(net).kind() === 'ipv4' ? bits - 96 : bits];
    }
    const a = normalize(ipaddr.parse(text));
    return [a, a.kind() === 'ipv4' ? 32 : 128];
  } catch {
    throw new TypeError(`not a CIDR: ${JSON.stringify(s)}`);
  }
}

/** Split "ip:port" or "[v6]:port". */
export function splitHostPort(s: string, defaultPort?: number): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s);
  if (!m) {
    if (isIP(s) === 6 && defaultPort !== undefined) return { host: s, port: defaultPort };
    throw new TypeError(`not host:port: ${JSON.stringify(s)}`);
  }
  const port = m[2] !== undefined ? Number(m[2]) : defaultPort;
  if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new TypeError(`no valid port in ${JSON.stringify(s)}`);
  return { host: m[1]!, port };
}

export function joinHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
