// `wallscope locate URL|NAME`: the hop of every injector on the path, per mechanism, from
// TTL-limited triggers (src/probe/locate.ts). Root only (capture and injection).
import type { Command } from 'commander';
import {
  captureAvailable,
  locate,
  NetPolicy,
  resolveTcp,
  splitHostPort,
  Trace,
  type LocateMechanism,
  type LocateResult,
} from '../probe/index.js';

function usage(message: string, exitCode = 2): Error {
  return Object.assign(new Error(message), { exitCode });
}

const MECHANISMS: readonly LocateMechanism[] = ['dns', 'sni', 'http'];

export function printHopTable(r: LocateResult, write: (s: string) => void): void {
  write(
    `${r.mechanism} trigger for ${r.target} to ${r.address}:${r.port} (${r.triggers} triggers; destination at hop ${r.destination_hop ?? '?'})\n`,
  );
  const hops = Object.keys(r.routers)
    .map(Number)
    .sort((a, b) => a - b);
  if (hops.length) write(`  routers: ${hops.map((h) => `${h}=${r.routers[h]}`).join('  ')}\n`);
  if (!r.injectors.length) write('  no injector answered\n');
  for (const i of r.injectors)
    write(
      `  hop ${String(i.hop).padStart(2)}  ${i.signature.padEnd(34)}  first at TTL ${i.first_trigger_ttl}, ${i.ttl_behaviour === 'copies-trigger' ? 'copies the trigger TTL' : 'fixed TTL'}; seen with IP TTL ${i.packets[0]!.ip_ttl}, IP ID ${i.packets[0]!.ip_id}\n`,
    );
}

export function register(program: Command): void {
  program
    .command('locate')
    .argument('<target>', 'a URL or a name')
    .option('--mechanism <m>', `dns, sni, http or all (default: dns and sni for https URLs, dns and http otherwise)`)
    .option('--resolver <ip:port>', 'where the DNS trigger goes (an address behind the censor; a resolver or a silent address)')
    .option('--address <ip>', "the site's address for the SNI/HTTP triggers (default: resolved over TCP through --resolver)")
    .option('--allow-net <cidrs>', 'only dial inside these ranges (lab mode)')
    .option('--max-ttl <n>', 'highest trigger TTL', '16')
    .option('--json', 'one JSON object per mechanism')
    .action(
      async (
        target: string,
        o: { mechanism?: string; resolver?: string; address?: string; allowNet?: string; maxTtl: string; json?: boolean },
      ) => {
        let name = target;
        let scheme: string | null = null;
        if (/^[a-z]+:\/\//i.test(target)) {
          let u: URL;
          try {
            u = new URL(target);
          } catch {
            throw usage(`not a URL: ${target}`);
          }
          name = u.hostname.toLowerCase();
          scheme = u.protocol.replace(':', '');
        }
        if (!/^[a-z0-9.-]+$/i.test(name) || name.length > 253) throw usage(`not a host name: ${name}`);
        const maxTtl = Number(o.maxTtl);
        if (!Number.isInteger(maxTtl) || maxTtl < 1 || maxTtl > 64) throw usage(`--max-ttl must be 1..64, got ${o.maxTtl}`);
        const mechs: LocateMechanism[] =
          o.mechanism === undefined
            ? ['dns', scheme === 'http' ? 'http' : 'sni']
            : o.mechanism === 'all'
              ? [...MECHANISMS]
              : [o.mechanism as LocateMechanism];
        for (const m of mechs) if (!MECHANISMS.includes(m)) throw usage(`--mechanism must be dns, sni, http or all, got ${o.mechanism}`);
        const cap = captureAvailable();
        if (!cap.ok) throw usage(`locate: ${cap.reason}`, 1);
        const policy = new NetPolicy(o.allowNet ? o.allowNet.split(',') : undefined);
        const resolver = o.resolver ? splitHostPort(o.resolver, 53) : null;
        if (mechs.includes('dns') && !resolver) throw usage('the DNS trigger needs --resolver IP:PORT (an address behind the censor)');
        let address = o.address ?? null;
        if (!address && mechs.some((m) => m !== 'dns')) {
          if (!resolver) throw usage('the SNI/HTTP triggers need --address IP or --resolver IP:PORT');
          const r = await resolveTcp(name, 'A', `${resolver.host}:${resolver.port}`, policy, { trace: new Trace(), timeoutMs: 5000 });
          address = r.addrs[0] ?? null;
          if (!address) throw usage(`${name} did not resolve over TCP through ${o.resolver}: give --address`, 1);
        }
        for (const m of mechs) {
          const r = await locate({
            name,
            mechanism: m,
            address: m === 'dns' ? resolver!.host : address!,
            port: m === 'dns' ? resolver!.port : undefined,
            maxTtl,
            policy,
          });
          if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
          else printHopTable(r, (s) => process.stdout.write(s));
        }
      },
    );
}
