// A printable-prefix shim for circumvention tests (the FET paper's Ex2 evasion): the client side
// writes six printable bytes before a tunnel's first bytes, in one segment, so the censor sees an
// exempt first packet; the server side strips them. Test support for the lab's FET tests, run
// in-process (loopback) or as `node prefix-shim.js add|strip LISTEN_PORT TO_HOST TO_PORT` inside a
// netns lab's namespace. It listens on 127.0.0.1 only.
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export const PREFIX = Buffer.from('hello ');

/** A shim pair: the client side writes PREFIX before the tunnel's bytes, the server side strips it. */
export async function shim(listenPort: number, to: { host: string; port: number }, mode: 'add' | 'strip'): Promise<net.Server> {
  const server = net.createServer((c) => {
    c.on('error', () => undefined);
    const up = net.connect(to.port, to.host);
    up.on('error', () => c.destroy());
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
    if (mode === 'add') {
      // One segment: the prefix and the tunnel's first bytes together, as the censor must see them.
      c.once('data', (d: Buffer) => {
        up.write(Buffer.concat([PREFIX, d]));
        c.pipe(up);
      });
      up.pipe(c);
    } else {
      let seen = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        seen = Buffer.concat([seen, d]);
        if (seen.length < PREFIX.length) return;
        c.off('data', onData);
        up.write(seen.subarray(PREFIX.length));
        c.pipe(up);
      };
      c.on('data', onData);
      up.pipe(c);
    }
  });
  await new Promise<void>((r) => server.listen(listenPort, '127.0.0.1', r));
  return server;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [mode, listen, host, port] = process.argv.slice(2);
  if ((mode !== 'add' && mode !== 'strip') || !listen || !host || !port) {
    process.stderr.write('usage: prefix-shim.js add|strip LISTEN_PORT TO_HOST TO_PORT\n');
    process.exit(2);
  }
  await shim(Number(listen), { host, port: Number(port) }, mode);
  process.stdout.write('listening\n');
}
