import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import { captureAvailable, openCapture } from './capture.js';

const avail = captureAvailable();

describe('openCapture(device, filter, onFrame)', { skip: avail.ok ? false : avail.reason }, () => {
  it('survives captures opened and closed by the hundred while packets flow (cap 0.2.1 close() bug)', async () => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const port = s.address().port;
    const tx = dgram.createSocket('udp4');
    const iv = setInterval(() => {
      for (let i = 0; i < 20; i++) tx.send('x'.repeat(100), port, '127.0.0.1');
    }, 1);
    let seen = 0;
    try {
      for (let round = 0; round < 150; round++) {
        const caps = Array.from({ length: 8 }, () =>
          openCapture('lo', `udp dst port ${port}`, (f) => (f.packet.udp?.dstPort === port ? seen++ : 0)),
        );
        await new Promise((r) => setTimeout(r, 3 + (round % 7)));
        for (const c of caps) c.close();
      }
    } finally {
      clearInterval(iv);
      tx.close();
      s.close();
    }
    assert.ok(seen > 0, 'frames were captured');
  });
});
