// A plain TCP service of the world (scenario `world.services`), behind the censors like a site:
// the front accepts, reads the client's first data segment, asks the FET censor (fet.ts), and then
// answers as `wallscope fet sink` does (byte-count receipts), echoes or relays to a loopback program (an ss-server), or drops the flow for the censor:
// a dropped flow is kept open and read, and nothing reaches the service or comes back (the GFW
// drops, it does not reset). Residual flows are dropped the same way from their first byte.
import net from 'node:net';
import type { ServiceSpec } from '../model/index.js';
import { listenTracked, sinkConnection } from '../probe/index.js';
import type { FetCensor } from './fet.js';
import type { FrontEvent, RunningFront } from './front.js';

/** A dropped flow is held this long without traffic before the front lets go of it. */
const DROPPED_IDLE_MS = 10 * 60_000;

export interface ServiceFrontOptions {
  host: string;
  port: number;
  service: ServiceSpec;
  fet: FetCensor;
  exempt: ReadonlySet<string>;
  log?: (e: FrontEvent) => void;
}

/** Keeps a flow open and swallows what the client sends: what a black-holing on-path censor looks like from the client. */
export function holdDropped(client: net.Socket): void {
  client.removeAllListeners('data');
  client.on('data', () => undefined);
  client.setTimeout(DROPPED_IDLE_MS, () => client.destroy());
}

export async function startServiceFront(o: ServiceFrontOptions): Promise<RunningFront> {
  return listenTracked(o.host, o.port, (client, track) => {
    const clientIp = client.remoteAddress ?? '';
    const serverIp = client.localAddress ?? o.host;
    const port = client.localPort ?? o.port;
    const log = (action: FrontEvent['action'], censor?: string): void =>
      o.log?.({
        t: Date.now(),
        client: `${clientIp}:${client.remotePort}`,
        server: `${serverIp}:${port}`,
        action,
        censor,
        name: o.service.name,
      });
    let up: net.Socket | null = null;
    if (o.service.kind === 'forward') {
      const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(o.service.forward!)!;
      up = net.connect(Number(m[2]), m[1]!);
      track(up);
      up.setNoDelay(true);
      up.on('close', () => client.destroy());
      client.on('close', () => up?.destroy());
      up.pause(); // nothing flows back before the first segment was let through
    }
    client.once('data', (first: Buffer) => {
      const d = o.exempt.has(clientIp)
        ? ({ kind: 'pass' } as const)
        : o.fet.decide({ client: clientIp, server: serverIp, port, serverNames: [o.service.name] }, first, Date.now());
      if (d.kind === 'drop') {
        log(d.why === 'residual' ? 'residual' : 'fet-drop', d.censor);
        up?.destroy();
        holdDropped(client);
        return;
      }
      log('pass');
      switch (o.service.kind) {
        case 'sink':
          sinkConnection(client, first);
          return;
        case 'echo':
          client.write(first);
          client.pipe(client);
          return;
        case 'forward':
          up!.write(first);
          client.pipe(up!);
          up!.pipe(client);
          up!.resume();
          return;
      }
    });
  });
}
