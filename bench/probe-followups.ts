// Benchmark: what the probe-hardening follow-ups cost. 256 loopback URLs, each an http:// page that
// redirects to an https:// one on another name (so every measurement has an https redirect hop, which
// now gets decoy-before / no-sni alongside its connect), measured at concurrency 32 in three
// configurations one after the other on the same world: default (attribution on), attribution off,
// and default plus --dns-tcp. Prints wall and CPU time of each and the ratios to "attribution off".
// Not a test: run `node dist/bench/probe-followups.js`.
//
// Two processes per run so that each figure is its own: the world (DNS server, sites, test helper)
// and the probe.
import { forkRole } from './fork.js';
import { writeFileSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCA, issueCert, startTestHelper, measureMany, type ProbeOptions } from '../src/probe/index.js';
import { startDnsServer, startSite, type DnsBehaviour } from '../src/testing/probe-servers.js';

const N = Number(process.env.BENCH_URLS ?? 256);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const self = fileURLToPath(import.meta.url);

interface World {
  dns: string;
  helper: string;
  caFile: string;
  urls: string[];
}
interface Figures {
  wall: number;
  cpuS: number;
  ok: number;
  variants: number;
  tcpQueries: number;
}

async function world(dir: string): Promise<void> {
  const ca = await createCA();
  const leaf = await issueCert(ca, ['*.bench.test']);
  const target = await startSite({ host: '127.0.11.2', tls: { cert: leaf.chainPem, key: leaf.keyPem }, title: 'Bench page' });
  const redirector = await startSite({
    host: '127.0.11.1',
    handler: (req, res) => {
      const name = (req.headers.host ?? '').replace(/^rd-/, 'site-').replace(/:\d+$/, '');
      res.writeHead(302, { location: `https://${name}:${target.port}/` });
      res.end();
    },
  });
  const zone: Record<string, DnsBehaviour> = {};
  const urls: string[] = [];
  for (let i = 0; i < N; i++) {
    zone[`rd-${i}.bench.test`] = { kind: 'answer', addrs: ['127.0.11.1'] };
    zone[`site-${i}.bench.test`] = { kind: 'answer', addrs: ['127.0.11.2'] };
    urls.push(`http://rd-${i}.bench.test:${redirector.port}/`);
  }
  const dns = await startDnsServer(zone, '127.0.0.1');
  const helper = await startTestHelper({ host: '127.0.0.1', port: 0, resolver: dns.address, ca: [ca.certPem], allowNet: ['127.0.0.0/8'] });
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  process.send!({ dns: dns.address, helper: helper.url, caFile, urls } satisfies World);
  process.on('disconnect', () => process.exit(0));
}

async function probe(w: World, mode: string): Promise<void> {
  const base: ProbeOptions = {
    resolver: w.dns,
    helper: w.helper,
    ca: [readFileSync(w.caFile, 'utf8')],
    allowNet: ['127.0.0.0/8'],
    dnsWindowMs: 0,
  };
  const opts: ProbeOptions = mode === 'off' ? { ...base, attribution: false } : mode === 'dns-tcp' ? { ...base, dnsTcp: true } : base;
  let ok = 0;
  let variants = 0;
  let tcpQueries = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await measureMany(
    w.urls.map((url) => ({ url })),
    opts,
    CONCURRENCY,
    (r) => {
      if (!r.ok) return;
      const tk = r.measurement.test_keys;
      if (tk.accessible === true) ok++;
      variants += (tk.x_tls_sni_variants as unknown[] | undefined)?.length ?? 0;
      tcpQueries += (tk.queries ?? []).filter((q) => q.engine === 'tcp').length;
    },
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  process.send!({ wall, cpuS: (cpu.user + cpu.system) / 1e6, ok, variants, tcpQueries } satisfies Figures);
}

const child = <T>(role: string, payload?: unknown) => forkRole<T>(self, role, payload);

async function main(): Promise<void> {
  const role = process.argv[2];
  if (role === 'world') return world(process.env.BENCH_DIR!);
  if (role?.startsWith('probe-')) {
    process.once('message', (w) => void probe(w as World, role.slice('probe-'.length)).then(() => process.exit(0)));
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-bench-'));
  process.env.BENCH_DIR = dir;
  const { msg: w, proc: worldProc } = await child<World>('world');
  try {
    console.log(
      `probe-followups: ${w.urls.length} loopback URLs, each http -> 302 -> https on another name, concurrency ${CONCURRENCY}, no DNS duplicate window`,
    );
    const figures: Record<string, Figures> = {};
    for (const mode of ['off', 'default', 'dns-tcp']) {
      const { msg, proc } = await child<Figures>(`probe-${mode}`, w);
      proc.kill();
      figures[mode] = msg;
    }
    const off = figures.off!;
    for (const [mode, f] of Object.entries(figures)) {
      console.log(
        `  ${mode.padEnd(8)} wall ${f.wall.toFixed(2)} s (x${(f.wall / off.wall).toFixed(2)}), CPU ${f.cpuS.toFixed(2)} s (x${(f.cpuS / off.cpuS).toFixed(2)}), ${f.ok} accessible, ${(f.variants / w.urls.length).toFixed(1)} SNI variants and ${(f.tcpQueries / w.urls.length).toFixed(1)} TCP DNS queries per measurement`,
      );
    }
  } finally {
    worldProc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
