// The loopback lab the injection benchmarks share (bench/scan-dns.ts, bench/infer.ts): one national
// censor injecting forged DNS answers at once (lead_ms 0) at the lab's silent address, which runs no
// resolver (only the injectors answer, GFWatch's set-up), optionally resetting SNIs at one front.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseScenario, startLab, type Lab } from '../lab/index.js';

export interface InjectionLab {
  lab: Lab;
  /** The silent address: host and port apart, and as ADDR:PORT for `scan dns --target`. */
  silent: { host: string; port: number; target: string };
  close(): Promise<void>;
}

export interface InjectionLabOptions {
  /** Inline rules, or the lines of a list file (written to a temporary rules_file). */
  rules: string[];
  /** Forged replies per query (the GFW: 2). */
  injectors?: number;
  /** Also reset ClientHellos whose SNI the same rules match, at the front `front.example` (residual 180 s). */
  sni?: boolean;
}

export async function startInjectionLab(o: InjectionLabOptions): Promise<InjectionLab> {
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-injection-lab-'));
  try {
    writeFileSync(join(dir, 'rules.txt'), `${o.rules.join('\n')}\n`);
    const yaml = [
      'name: injection-bench',
      'seed: 1',
      'world: { sites: [{ domain: front.example }], resolvers: { isp: {}, public: {} }, helper: false }',
      'censors:',
      '  - name: gfw',
      '    layer: national',
      `    dns_injection: { rules_file: rules.txt, injectors: ${o.injectors ?? 2}, lead_ms: 0 }`,
      ...(o.sni ? ['    sni_reset: { rules_file: rules.txt, residual_s: 180 }'] : []),
      '',
    ].join('\n');
    const lab = await startLab(parseScenario(yaml, join(dir, 'bench.yaml')), { standardPorts: false });
    const [host, port] = lab.silentDns.split(':') as [string, string];
    return {
      lab,
      silent: { host, port: Number(port), target: lab.silentDns },
      close: async () => {
        await lab.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
