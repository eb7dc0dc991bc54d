// The network options of `measure`, shared with every command that measures on its behalf
// (`campaign`): one definition of the flags and one translation into ProbeOptions.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
// The probe's modules one by one rather than its index (start-up: bench/cli-startup.ts).
import { captureAvailable } from '../probe/capture.js';
import { defaultFingerprintsDir, defaultForgedPoolFiles, loadFingerprints } from '../probe/fingerprints-load.js';
import { parseCidr, splitHostPort } from '../probe/policy.js';
import { checkDecoyName, DEFAULT_DECOY, type ProbeOptions } from '../probe/webconnectivity.js';
import { INJECTORS_OPTION, injectorsFrom } from './injectors.js';

export interface NetworkCliOptions {
  resolver?: string;
  doh?: string;
  helper?: string;
  ca?: string[];
  allowNet?: string;
  timeout?: string;
  probeIp?: string[];
  attribution: boolean;
  fingerprints: boolean;
  localAddress?: string;
  decoySni?: string;
  dnsTcp?: boolean;
  region?: string;
  capture?: boolean;
  injectors?: string;
}

const collect = (v: string, acc: string[] = []): string[] => [...acc, v];

export function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw Object.assign(new Error(`${name} must be a positive integer, got ${JSON.stringify(v)}`), { exitCode: 2 });
  return n;
}

/** Adds the network options of `measure` to a command. */
export function networkOptions(cmd: Command): Command {
  return cmd
    .option('--resolver <ip:port>', 'ask this resolver over UDP (lab mode: the only resolver used)')
    .option('--doh <url>', 'DNS over HTTPS endpoint')
    .option('--helper <url>', 'web_connectivity test helper URL (control)')
    .option('--ca <file>', 'extra trusted CA certificate(s), PEM; repeatable', collect)
    .option('--allow-net <cidrs>', 'comma-separated CIDRs: refuse to dial outside them; addresses inside count as public (lab mode)')
    .option('--timeout <ms>', 'time budget of each network step (default: DNS 5 s, connect/TLS 10 s, HTTP 15 s)')
    .option(
      '--probe-ip <ip>',
      'your public IP: scrubbed from every measurement and used to find your country/ASN offline; repeatable',
      collect,
    )
    .option('--local-address <ip>', "source address of the probe's sockets")
    .option('--no-attribution', 'skip the decoy/no-SNI/residual follow-ups')
    .option(
      '--decoy-sni <name>',
      `benign name for the decoy handshakes and residual checks (default ${DEFAULT_DECOY}); change it where that name is itself blocked`,
    )
    .option(
      '--dns-tcp',
      'with --resolver: ask it over TCP too (engine "tcp"); UDP answers that differ from TCP ones point to on-path injection rather than a lying resolver',
    )
    .option(
      '--region <name>',
      'your region as you choose to declare it, coarse (e.g. a province: "Henan"); written to annotations.region. Never derived from your IP; not an identifier; at most 64 characters',
    )
    .option(
      '--capture',
      'root: record the packets that ended each failed step (RST/FIN, SYN answers, every reply of a DNS query answered twice) in test_keys.x_captured; without root, a note and measure as usual',
    )
    .option(...INJECTORS_OPTION)
    .option('--no-fingerprints', 'do not load the OONI blocking fingerprints for the verdict');
}

/** ProbeOptions from the network options; a bad value is a usage error (exit 2). */
export function probeOptionsFrom(o: NetworkCliOptions, command: string): ProbeOptions {
  const opts: ProbeOptions = { attribution: o.attribution };
  if (o.resolver) opts.resolver = o.resolver;
  if (o.doh) opts.doh = o.doh;
  if (o.helper) opts.helper = o.helper;
  if (o.ca?.length) opts.ca = o.ca.map((f) => readFileSync(f, 'utf8'));
  if (o.allowNet)
    opts.allowNet = o.allowNet
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  try {
    for (const c of opts.allowNet ?? []) parseCidr(c);
    if (opts.resolver) splitHostPort(opts.resolver, 53);
    if (opts.helper) new URL(opts.helper);
    if (opts.doh) new URL(opts.doh);
    if (o.decoySni !== undefined) opts.decoySni = checkDecoyName(o.decoySni);
  } catch (e) {
    throw Object.assign(new Error(`bad option: ${(e as Error).message}`), { exitCode: 2 });
  }
  if (o.timeout) opts.timeoutMs = positiveInt('--timeout', o.timeout);
  if (o.probeIp?.length) opts.probeIps = o.probeIp;
  if (o.localAddress) opts.localAddress = o.localAddress;
  if (o.region !== undefined) {
    const r = o.region.replace(/\s+/g, ' ').trim();
    // eslint-disable-next-line no-control-regex -- refusing control characters is the point
    if (!r || [...r].length > 64 || /[\u0000-\u001f\u007f-\u009f]/.test(r))
      throw Object.assign(
        new Error(`--region: expected a name of 1..64 printable characters, got ${JSON.stringify(o.region.slice(0, 80))}`),
        { exitCode: 2 },
      );
    opts.region = r;
  }
  if (o.dnsTcp) {
    if (!opts.resolver) throw Object.assign(new Error('--dns-tcp needs --resolver (it asks that resolver over TCP)'), { exitCode: 2 });
    opts.dnsTcp = true;
  }
  if (o.capture) {
    const c = captureAvailable();
    if (c.ok) opts.capture = true;
    else process.stderr.write(`${command}: --capture ignored: ${c.reason}\n`);
  }
  opts.injectors = injectorsFrom(o.injectors);
  if (o.fingerprints) opts.fingerprints = loadFingerprints(defaultFingerprintsDir(), defaultForgedPoolFiles());
  return opts;
}
