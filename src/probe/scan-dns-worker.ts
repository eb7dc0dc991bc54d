// A sending thread of `scan dns` (src/probe/scan-dns.ts, scanInThreads): it sends the batches the
// scan hands it, at its share of the rate, from sockets of its own, reads their replies, and
// returns each batch's lines (in send order) once all of that batch's windows have closed.
import { parentPort, workerData } from 'node:worker_threads';
import { Pacer, ScanRun, type ScanBatch, type ScanBatchLines, type ScanEngineOptions } from './scan-dns-engine.js';

const port = parentPort!;
const { engine } = workerData as { engine: ScanEngineOptions };

const queue: ScanBatch[] = [];
const owed: number[] = []; // lines owed per batch, oldest first
let at = 0; // the next pair of queue[0]
let ended = false;
let wake: () => void = () => undefined;
let lines: string[] = [];
const told = { sent: 0, replies: 0, late: 0 };
const utf8 = new TextEncoder();

const run = new ScanRun(engine, (line) => {
  lines.push(line);
  if (lines.length < owed[0]!) return;
  owed.shift();
  const p = run.progress;
  // As UTF-8 bytes whose buffer is transferred: a string would be copied into the writing
  // thread's heap, whose young generation V8 then grows with the run's length (its peak RSS with it).
  const bytes = utf8.encode(lines.join(''));
  const m: ScanBatchLines = {
    lines: bytes,
    n: lines.length,
    sent: p.sent - told.sent,
    replies: p.replies - told.replies,
    late: p.late - told.late,
  };
  Object.assign(told, { sent: p.sent, replies: p.replies, late: p.late });
  lines = [];
  port.postMessage(m, [bytes.buffer]);
});

port.on('message', (m: ScanBatch | { end: true }) => {
  if ('end' in m) ended = true;
  else {
    queue.push(m);
    owed.push(m.names.length);
  }
  wake();
});

async function main(): Promise<void> {
  await run.openSockets();
  const ticker = setInterval(() => run.flush(false), 5);
  const pacer = new Pacer(engine.rate);
  for (;;) {
    if (!queue.length) {
      if (ended) break;
      await new Promise<void>((r) => (wake = r));
      continue;
    }
    const budget = await pacer.turn(run);
    for (let b = 0; b < budget && queue.length; b++) {
      const batch = queue[0]!;
      run.send(batch.names[at]!, batch.qtypes[at]!);
      pacer.took();
      if (++at === batch.names.length) {
        queue.shift();
        at = 0;
      }
    }
  }
  await run.drain();
  clearInterval(ticker);
  await run.close();
  port.postMessage({ done: true });
}

void main();
