// `wallscope fet ...`: the fully-encrypted-traffic censor (censors.md section 7) from a tool
// author's and a volunteer's side. `classify` says whether a first packet is exempt and why;
// `sink` and `test` measure whether the rule is active on a path. Wiring only: the rule is
// src/analysis/fet.ts, the experiment src/probe/fet.ts.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { classifyFirstPacket, firstClientPayload, parseFlowKey, type FlowKey } from '../analysis/index.js';
import type { FetClassification } from '../model/index.js';

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
  return `${label}: ${verdict}; ${c.length} bytes, popcount/byte ${c.popcount_per_byte.toFixed(3)}, ` +
    `printable ${(c.printable_share * 100).toFixed(1)}%, longest printable run ${c.longest_printable_run}, ` +
    `prefix ${c.prefix ?? 'none'}`;
}

interface ClassifyOptions { json?: boolean; file?: string[]; pcap?: string; flow?: string }

export function register(program: Command): void {
  const fet = program.command('fet').description('the fully-encrypted-traffic censor: classify first packets, test whether the rule is active');
  fet
    .command('classify')
    .description('which exemption of the GFW\'s fully-encrypted-traffic rule a first packet falls under (Wu et al. 2023), with the figures')
    .argument('[hex...]', 'first packets as hex')
    .option('--file <raw>', 'a raw first packet (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--pcap <file>', 'a pcap file: the first client data segment of --flow, or of the first TCP flow')
    .option('--flow <SRC:PORT-DST:PORT>', 'with --pcap: the flow, client first (IPv6 in brackets)')
    .option('--json', 'one JSON line per packet')
    .action((hexes: string[], o: ClassifyOptions) => {
      const packets: Array<{ label: string; bytes: Buffer }> = [];
      for (const h of hexes) packets.push({ label: h.length > 24 ? `${h.slice(0, 24)}...` : h, bytes: parseHex(h) });
      for (const f of o.file ?? []) {
        let bytes: Buffer;
        try { bytes = readFileSync(f); } catch (e) { throw usageError(`--file ${f}: ${(e as Error).message}`, 1); }
        if (bytes.length === 0) throw usageError(`--file ${f}: empty file`, 1);
        packets.push({ label: f, bytes });
      }
      if (o.flow && !o.pcap) throw usageError('--flow needs --pcap');
      if (o.pcap) {
        let flow: FlowKey | undefined;
        try { flow = o.flow ? parseFlowKey(o.flow) : undefined; } catch (e) { throw usageError(`--flow: ${(e as Error).message}`); }
        let file: Buffer;
        try { file = readFileSync(o.pcap); } catch (e) { throw usageError(`--pcap ${o.pcap}: ${(e as Error).message}`, 1); }
        let found;
        try { found = firstClientPayload(file, flow); } catch (e) { throw usageError(`--pcap ${o.pcap}: ${(e as Error).message}`, 1); }
        if (!found) throw usageError(`--pcap ${o.pcap}: ${o.flow ? `flow ${o.flow}` : 'the first TCP flow'} carries no client data`, 1);
        const f = found.flow;
        packets.push({ label: `${o.pcap} record ${found.segment.record} (${f.src}:${f.srcPort} -> ${f.dst}:${f.dstPort})`, bytes: Buffer.from(found.segment.payload) });
      }
      if (packets.length === 0) throw usageError('nothing to classify: give hex arguments, --file or --pcap');
      for (const p of packets) {
        const c = classifyFirstPacket(p.bytes);
        process.stdout.write((o.json ? JSON.stringify(c) : human(c, p.label)) + '\n');
      }
    });
}
