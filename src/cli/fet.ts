// `wallscope fet ...`: the fully-encrypted-traffic censor (censors.md section 7) from a tool
// author's and a volunteer's side. `classify` says whether a first packet is exempt and why;
// `sink` and `test` measure whether the rule is active on a path. Wiring only: the rule is
// src/analysis/fet.ts, the experiment src/probe/fet.ts.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { classifyFirstPacket, firstClientPayload, parseFlowKey, type FlowKey } from '../analysis/index.js';
import type { FetClassification } from '../model/index.js';
import { runFetTest, splitHostPort, startFetSink, type FetTestKeys } from '../probe/index.js';

function usageError(message: string, exitCode = 2): Error {
  return Object.assign(new Error(message), { exitCode });
}

/** Hex as users paste it: optional 0x, spaces/colons between bytes. Anything else is refused. */
export function parseHex(text: string): Buffer {
  const s = text.replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (s.length === 0) throw usageError(`empty packet: ${JSON.stringify(text)}`);
  if (!/^[0-9a-fA-F]*$/.test(s)) throw usageError(`not hex: ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '...' : text)}`);
  if (s.length % 2 !== 0) throw usageError(`odd number of hex digits (${s.length}): ${JSON.stringify(text.slice(0, 40))}`);
  return Buffer.from(s, 'hex');
}

function human(c: FetClassification, label: string): string {
  const verdict = c.exempt ? `exempt (${c.reason})` : 'NOT exempt (the censor may block this flow)';
  return (
    `${label}: ${verdict}; ${c.length} bytes, popcount/byte ${c.popcount_per_byte.toFixed(3)}, ` +
    `printable ${(c.printable_share * 100).toFixed(1)}%, longest printable run ${c.longest_printable_run}, ` +
    `prefix ${c.prefix ?? 'none'}`
  );
}

interface ClassifyOptions {
  json?: boolean;
  file?: string[];
  pcap?: string;
  flow?: string;
}

export function register(program: Command): void {
  const fet = program.command('fet');
  fet
    .command('classify')
    .description("which exemption of the GFW's fully-encrypted-traffic rule a first packet falls under (Wu et al. 2023), with the figures")
    .argument('[hex...]', 'first packets as hex')
    .option('--file <raw>', 'a raw first packet (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--pcap <file>', 'a pcap file: the first client data segment of --flow, or of the first TCP flow')
    .option('--flow <SRC:PORT-DST:PORT>', 'with --pcap: the flow, client first (IPv6 in brackets)')
    .option('--json', 'one JSON line per packet')
    .action(fetClassify);

  fet
    .command('sink')
    .description('a sink for `fet test`: accepts, reads, and answers only byte-count receipts (run it outside the network under test)')
    .option('--listen <host:port>', 'address to listen on', '0.0.0.0:8000')
    .action(async (o: { listen: string }) => {
      let hp: { host: string; port: number };
      try {
        hp = splitHostPort(o.listen);
      } catch (e) {
        throw usageError(`--listen: ${(e as Error).message}`);
      }
      const sink = await startFetSink(hp).catch((e: Error) => {
        throw usageError(`--listen ${o.listen}: ${e.message}`, 1);
      });
      process.stderr.write(`fet sink listening on ${sink.host}:${sink.port}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void sink.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
  fet
    .command('test')
    .description(
      'is the fully-encrypted-traffic rule active on the path to HOST:PORT (a `fet sink`)? An OONI-format measurement (test_name x_fet) on stdout',
    )
    .argument('<host:port>', 'the sink')
    .option('--timeout <ms>', 'per-connection timeout', '3000')
    .option('--max-trials <n>', 'connections in all', '400')
    .option('--max-time <s>', 'wall time bound in seconds', '3600')
    .option('--residual-step <ms>', 'between residual probes after a block', '10000')
    .option('--max-residual <s>', 'longest residual looked for', '600')
    .option('--progress', 'one line per connection on stderr')
    .action(fetTest);
}

/** `fet classify`: the exemption each first packet falls under. */
function fetClassify(hexes: string[], o: ClassifyOptions): void {
  const packets: Array<{ label: string; bytes: Buffer }> = [];
  for (const h of hexes) packets.push({ label: h.length > 24 ? `${h.slice(0, 24)}...` : h, bytes: parseHex(h) });
  for (const f of o.file ?? []) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(f);
    } catch (e) {
      throw usageError(`--file ${f}: ${(e as Error).message}`, 1);
    }
    if (bytes.length === 0) throw usageError(`--file ${f}: empty file`, 1);
    packets.push({ label: f, bytes });
  }
  if (o.flow && !o.pcap) throw usageError('--flow needs --pcap');
  if (o.pcap) packets.push(pcapPacket(o.pcap, o.flow));
  if (packets.length === 0) throw usageError('nothing to classify: give hex arguments, --file or --pcap');
  for (const p of packets) {
    const c = classifyFirstPacket(p.bytes);
    process.stdout.write((o.json ? JSON.stringify(c) : human(c, p.label)) + '\n');
  }
}

/** --pcap: the first client data segment of the flow (or of the first TCP flow). */
function pcapPacket(pcap: string, flow: string | undefined): { label: string; bytes: Buffer } {
  let key: FlowKey | undefined;
  try {
    key = flow ? parseFlowKey(flow) : undefined;
  } catch (e) {
    throw usageError(`--flow: ${(e as Error).message}`);
  }
  let file: Buffer;
  try {
    file = readFileSync(pcap);
  } catch (e) {
    throw usageError(`--pcap ${pcap}: ${(e as Error).message}`, 1);
  }
  let found;
  try {
    found = firstClientPayload(file, key);
  } catch (e) {
    throw usageError(`--pcap ${pcap}: ${(e as Error).message}`, 1);
  }
  if (!found) throw usageError(`--pcap ${pcap}: ${flow ? `flow ${flow}` : 'the first TCP flow'} carries no client data`, 1);
  const f = found.flow;
  return {
    label: `${pcap} record ${found.segment.record} (${f.src}:${f.srcPort} -> ${f.dst}:${f.dstPort})`,
    bytes: Buffer.from(found.segment.payload),
  };
}

interface FetTestCli {
  timeout: string;
  maxTrials: string;
  maxTime: string;
  residualStep: string;
  maxResidual: string;
  progress?: boolean;
}

/** `fet test`: run the test against a sink, the measurement on stdout. */
async function fetTest(target: string, o: FetTestCli): Promise<void> {
  let hp: { host: string; port: number };
  try {
    hp = splitHostPort(target);
  } catch (e) {
    throw usageError(`${target}: ${(e as Error).message}`);
  }
  const num = (v: string, name: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw usageError(`${name} must be a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
  const opts = {
    timeoutMs: num(o.timeout, '--timeout'),
    maxTrials: Math.floor(num(o.maxTrials, '--max-trials')),
    maxSeconds: num(o.maxTime, '--max-time'),
    residualStepMs: num(o.residualStep, '--residual-step'),
    maxResidualS: num(o.maxResidual, '--max-residual'),
  };
  // A refused sink is a usage problem, not a measurement. Connections that time out are kept: a
  // sink blocked by address looks like that, and the measurement says the rule cannot be told apart.
  const m = await runFetTest(hp.host, hp.port, {
    ...opts,
    onTrial: o.progress
      ? (t) => process.stderr.write(`${t.t} ms ${t.kind} ${t.outcome}${t.failure ? ` (${t.failure})` : ''}\n`)
      : undefined,
  });
  const k = m.test_keys;
  if (
    k.x_fet_control.sent > 0 &&
    k.x_fet_control.blocked === k.x_fet_control.sent &&
    k.x_fet_random.sent === 0 &&
    k.x_fet_trials.every((t) => t.outcome === 'connect_failed' && t.failure === 'connection_refused')
  ) {
    throw usageError(
      `${target}: the sink is unreachable (${k.x_fet_trials[0]?.failure ?? 'no answer'}); is \`wallscope fet sink\` running there?`,
      1,
    );
  }
  process.stdout.write(JSON.stringify(m) + '\n');
  process.stderr.write(fetSummary(target, k));
}

/** The line on stderr after `fet test`. */
function fetSummary(target: string, k: FetTestKeys): string {
  return (
    `fet test ${target}: ${k.x_fet_verdict.replace('_', ' ')} (${k.x_fet_stop_reason}, confidence ${k.x_fet_confidence}); ` +
    `random ${k.x_fet_random.blocked}/${k.x_fet_random.sent} blocked, controls ${k.x_fet_control.blocked}/${k.x_fet_control.sent}; ` +
    `rate ${k.x_fet_rate_estimate === null ? '-' : k.x_fet_rate_estimate.toFixed(3)}, residual ${k.x_fet_residual_s ?? '-'} s; ` +
    `${k.x_fet_trials_spent} connections, ${k.x_fet_elapsed_s} s\n`
  );
}
