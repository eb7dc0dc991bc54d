// For the netns lab's tests: a lab started from scenario text with its CA written to a file, so that
// third-party witnesses (Debian's curl, dig, tcpdump) in the client namespace can verify the lab's
// certificates, and a runner for those witnesses' command lines. Everything is removed by close().
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseScenario } from '../lab/scenario.js';
import { startNetnsLab, type NetnsLab, type NetnsLabOptions } from '../lab/netns/netns-lab.js';

export interface CommandResult {
  /** The exit code; -1 when the command was killed (timeout) or could not start. */
  code: number;
  /** Trimmed. */
  stdout: string;
  stderr: string;
  pid: number;
}

/** Runs argv (e.g. `lab.inClient([...])`) to its end, or kills it after timeoutMs; never rejects. */
export function runCommand(argv: [string, string[]], timeoutMs = 15000): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(argv[0], argv[1], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: stdout.trim(), stderr, pid: child.pid ?? -1 });
    });
  });
}

export interface WitnessLab {
  lab: NetnsLab;
  /** The lab's CA certificate, as a file for curl's --cacert. */
  ca: string;
  /** Stops the lab (namespaces, nft tables, children) and removes the CA's folder. */
  close(): Promise<void>;
}

/** A netns lab from scenario text (named `name` in errors), with its CA in a fresh temporary folder. */
export async function startWitnessLab(yaml: string, name: string, opts: NetnsLabOptions = {}): Promise<WitnessLab> {
  const lab = await startNetnsLab(parseScenario(yaml, join(tmpdir(), `${name}.yaml`)), opts);
  const dir = mkdtempSync(join(tmpdir(), `wallscope-${name}-`));
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, lab.caPem);
  return {
    lab,
    ca,
    async close() {
      try {
        await lab.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
