// A TCP server that keeps its sockets so that close() ends them all (fet sink, the lab's fronts):
// a listener whose connections outlive close() would keep a test or a lab running.
import net from 'node:net';

export interface TrackedServer {
  host: string;
  port: number;
  /** Registers a socket (an outgoing one too) to be destroyed on close; errors are the owner's to observe. */
  track(s: net.Socket): void;
  close(): Promise<void>;
}

export async function listenTracked(
  host: string,
  port: number,
  onConnection: (s: net.Socket, track: (s: net.Socket) => void) => void,
  maxConnections = 4096,
): Promise<TrackedServer> {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  };
  const server = net.createServer((s) => {
    track(s);
    onConnection(s, track);
  });
  server.maxConnections = maxConnections;
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(port, host, () => {
      server.off('error', rej);
      res();
    });
  });
  return {
    host,
    port: (server.address() as net.AddressInfo).port,
    track,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
