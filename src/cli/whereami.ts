// `wallscope whereami [IP]`: the "IP territory" (IP属地) label a Chinese platform would stamp on
// your posts, computed on this machine from the bundled offline databases (src/probe/territory.ts).
// Nothing is sent anywhere and nothing is written: the address is neither printed nor logged.
import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { isBogonAddress, territoryOf } from '../probe/index.js';

function usageError(message: string, exitCode = 2): Error {
  return Object.assign(new Error(message), { exitCode });
}

/** The first public address of this machine's own interfaces (none behind a NAT). */
function interfaceAddress(): string | null {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (!a.internal && !isBogonAddress(a.address)) return a.address;
  return null;
}

export function register(program: Command): void {
  program
    .command('whereami')
    .description(
      'the IP territory label (IP属地) a platform would show for your address: offline, on this machine, never uploaded or logged',
    )
    .argument('[ip]', "your public address (default: a public address of this machine's interfaces, if it has one)")
    .option('--json', 'one JSON object: {"territory": {"code", "label"}, "from"}')
    .action((ip: string | undefined, o: { json?: boolean }) => {
      if (ip !== undefined && isIP(ip) === 0) throw usageError(`${JSON.stringify(ip.slice(0, 60))} is not an IP address`);
      const address = ip ?? interfaceAddress();
      if (!address)
        throw usageError(
          'this machine has no public address of its own (behind a NAT?): give your public address as an argument; it stays on this machine',
          1,
        );
      const t = territoryOf(address);
      const from = ip ? 'argument' : 'interface';
      if (o.json) process.stdout.write(JSON.stringify({ territory: t, from }) + '\n');
      else
        process.stdout.write(
          `IP属地：${t.label}${t.code ? ` (${t.code})` : ''}\n  computed offline on this machine from the bundled databases; the address was not sent or stored\n`,
        );
    });
}
