// The entry point of the netns lab's child processes, each started inside its namespace by
// netns-lab.ts as `ip netns exec NS node child.js ROLE CONFIG.json`:
//   world   the scenario's world (src/lab/lab.ts in world mode) in the internet namespace
//   router  one censor on path (router.ts) in its router's namespace
//   client  the probe measuring targets (eval.ts measureLab) in the client namespace
// It speaks JSON lines on stdout ({"ready": ...} once, events or rows before or after) and exits
// when its stdin closes: a parent that dies, even by SIGKILL, takes its children with it.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { CaptureHub, loadInjectorFingerprints, ResetWatcher } from '../../probe/index.js';
import type { ProbeOptions } from '../../probe/index.js';
import { measureLab } from '../eval.js';
import { inferLab } from '../infer.js';
import { startLab } from '../lab.js';
import { netnsClientAddress } from './netns-lab.js';
import { startRouterCensor, type RouterConfig } from './router.js';
import { WORLD_NET } from './topology.js';

const say = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

async function main(): Promise<void> {
  const [role, file] = process.argv.slice(2);
  const cfg = JSON.parse(readFileSync(file!, 'utf8'));
  let stop: () => Promise<void> | void = () => undefined;
  process.stdin.resume();
  process.stdin.on('end', async () => {
    await stop();
    process.exit(0);
  });
  process.on('SIGTERM', async () => {
    await stop();
    process.exit(0);
  });
  if (role === 'world') {
    const lab = await startLab(cfg.scenario, { world: { net: WORLD_NET, genuineDelayMs: cfg.genuineDelayMs }, standardPorts: true });
    stop = () => lab.close();
    say({
      ready: {
        resolver: lab.resolver,
        publicResolver: lab.publicResolver,
        silentDns: lab.silentDns,
        helperUrl: lab.helperUrl,
        caPem: lab.ca.certPem,
        sites: lab.sites,
        services: lab.services,
        targets: lab.targets,
        allowNet: lab.probeOptions().allowNet ?? [],
        warnings: lab.warnings,
      },
    });
  } else if (role === 'router') {
    const r = startRouterCensor(cfg as RouterConfig, (event) => say({ event }));
    stop = () => r.close();
    // The parent sends {"start": epoch ms} once every part is up: lab time 0 of the timeline.
    createInterface({ input: process.stdin }).on('line', (line) => {
      try {
        const m = JSON.parse(line) as { start?: unknown };
        if (typeof m.start === 'number') r.startTimeline(m.start);
      } catch {
        /* not ours */
      }
    });
    say({ ready: true });
  } else if (role === 'client') {
    // Packet evidence: the probe captures the packets that ended each failed step and the analysis
    // reads the injector's fingerprint from them (it has root here, as the lab has).
    const base: ProbeOptions = { ...(cfg.probeOptions as ProbeOptions), capture: true, injectors: loadInjectorFingerprints() };
    const lab = {
      scenario: cfg.scenario,
      targets: cfg.targets,
      probeOptions: (extra: Partial<ProbeOptions> = {}) => ({ ...base, ...extra }),
      clientAddress: netnsClientAddress,
    };
    await measureLab(lab, { concurrency: cfg.concurrency, probe: cfg.probe, onRow: (row, _done, _total, i) => say({ i, row }) });
    say({ ready: true });
  } else if (role === 'infer') {
    // `lab eval --netns --infer`: the trials dial from the client's own addresses, so they run here.
    const lab = { scenario: cfg.scenario, sites: cfg.sites, silentDns: cfg.silentDns, clientAddress: netnsClientAddress };
    // Root here: the layers of a name both block are told apart by their resets' fingerprints.
    const hub = new CaptureHub();
    try {
      const resets = { watcher: new ResetWatcher(hub, loadInjectorFingerprints()), waitMs: 1000 };
      say({ ready: await inferLab(lab, cfg.targets, { firstClient: cfg.firstClient, resets }) });
    } finally {
      await hub.close();
    }
  } else throw new Error(`unknown role ${role}`);
}

main().catch((e) => {
  say({ error: (e as Error).message });
  process.exit(1);
});
