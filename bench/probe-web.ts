// Benchmark: 1,000 loopback URLs (healthy and slow sites, http and https, mixed; BENCH_URLS=N for
// more) measured by wallscope's web_connectivity at concurrency 64, against two peers fetching the
// same URLs with the same CA and concurrency:
// - the fair peer, what a practitioner reaches for: names resolved in one `dig -f` batch, then one
//   `curl --parallel --parallel-max 64` process for every URL;
// - the hand loop (BENCH_HAND_LOOP=0 skips it: it pays a dig and a curl process per URL): dig + curl
//   per URL through `xargs -P 64`.
// Prints each wall time and ratio on its own line, and wallscope's CPU and peak RSS. Not a test: run
// `node dist/bench/probe-web.js` (`node --cpu-prof --cpu-prof-dir DIR ...` profiles every process).
// Knobs: BENCH_URLS=N, BENCH_CONCURRENCY=N; BENCH_FAIR_PEER=0, BENCH_HAND_LOOP=0, BENCH_LEAN=0,
// BENCH_NODE_FLOOR=0, BENCH_CAPTURE=0 and BENCH_WARMUP=0 (an untimed full probe run of at most 1,000 URLs warming the helper and the world) skip those
// runs; BENCH_SPLIT=1 adds runs that each leave one part of the full evidence out (attribution,
// DNS window, control: the difference is its cost); BENCH_MEM=1 prints the probe's memory every
// tenth of the list and where it is resident at the end; BENCH_V8_FLAGS sets V8 flags in the probe.
// Besides the probe's CPU, each run prints the test helper's and the world's (they share the cores).
//
// Separate processes so that each figure is its own: the world (DNS server, sites), the test
// helper (on another machine in real life), the probe, and the peers.
import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { forkRole } from './fork.js';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { captureAvailable, createCA, issueCert, startTestHelper, measureMany, type ProbeOptions, type Target } from '../src/probe/index.js';
import { startDnsServer, startSite, type DnsBehaviour } from '../src/testing/probe-servers.js';

const N = Number(process.env.BENCH_URLS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const SLOW_MS = 300;
const self = fileURLToPath(import.meta.url);

interface World {
  dns: string;
  helper: string;
  caFile: string;
  targets: Array<{ url: string; name: string; ip: string; port: number }>;
}

async function world(dir: string): Promise<void> {
  const ca = await createCA();
  const names = Array.from({ length: N }, (_, i) => `site-${i}.bench.test`);
  const leaf = await issueCert(ca, ['*.bench.test']);
  const body = `<html><head><title>Bench page</title></head><body>${'x'.repeat(4000)}</body></html>`;
  const handler = (slow: boolean) => (_req: unknown, res: import('node:http').ServerResponse) => {
    const send = (): void => {
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (slow) setTimeout(send, SLOW_MS);
    else send();
  };
  const kinds = [
    { ip: '127.0.10.1', tls: false, slow: false },
    { ip: '127.0.10.2', tls: true, slow: false },
    { ip: '127.0.10.3', tls: false, slow: true },
    { ip: '127.0.10.4', tls: true, slow: true },
  ];
  const sites = await Promise.all(
    kinds.map((k) =>
      startSite({ host: k.ip, handler: handler(k.slow), ...(k.tls ? { tls: { cert: leaf.chainPem, key: leaf.keyPem } } : {}) }),
    ),
  );
  const zone: Record<string, DnsBehaviour> = {};
  const targets: World['targets'] = [];
  names.forEach((name, i) => {
    // 3 of 4 healthy-and-fast, 1 of 4 slow; half http, half https in each group.
    const k = i % 4 === 3 ? 2 + (Math.floor(i / 4) % 2) : i % 2;
    const kind = kinds[k]!;
    zone[name] = { kind: 'answer', addrs: [kind.ip] };
    targets.push({ url: `${kind.tls ? 'https' : 'http'}://${name}:${sites[k]!.port}/`, name, ip: kind.ip, port: sites[k]!.port });
  });
  const dns = await startDnsServer(zone, '127.0.0.1');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  process.send!({ dns: dns.address, helper: '', caFile, targets } satisfies World);
  answerCpu();
  process.on('disconnect', () => process.exit(0));
}

/** The world and the helper answer 'cpu' with their CPU time so far (µs): what each probe run cost them. */
function answerCpu(): void {
  process.on('message', (m) => {
    if (m !== 'cpu') return;
    const c = process.cpuUsage();
    process.send!({ cpuUs: c.user + c.system });
  });
}

function cpuOf(p: import('node:child_process').ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: unknown): void => {
      if (typeof m !== 'object' || m === null || !('cpuUs' in m)) return;
      p.off('message', on);
      resolve((m as { cpuUs: number }).cpuUs);
    };
    p.on('message', on);
    p.send('cpu');
  });
}

/** The test helper in its own process: it stands on another machine, outside the censors. */
async function helperRole(dns: string, caFile: string): Promise<void> {
  const ca = readFileSync(caFile, 'utf8');
  const helper = await startTestHelper({ host: '127.0.0.1', port: 0, resolver: dns, ca: [ca], allowNet: ['127.0.0.0/8'] });
  process.send!(helper.url);
  answerCpu();
  process.on('disconnect', () => process.exit(0));
}

/** The probe's variants: what each leaves out shows what that costs. */
const VARIANTS: Record<string, Partial<ProbeOptions>> = {
  probe: {},
  // lean: no DNS duplicate window and no attribution follow-ups.
  'probe-lean': { dnsWindowMs: 0, attribution: false },
  'probe-capture': { capture: true },
  // BENCH_SPLIT=1: one cost at a time.
  'probe-no-attribution': { attribution: false },
  'probe-no-window': { dnsWindowMs: 0 },
  'probe-no-control': { helper: '' },
};

async function probe(w: World, variant: Partial<ProbeOptions>): Promise<void> {
  // BENCH_V8_FLAGS="--flag --flag": V8 flags the probe sets on itself at start (memory experiments).
  for (const f of (process.env.BENCH_V8_FLAGS ?? '').split(' ').filter(Boolean)) setFlagsFromString(f);
  const ca = [readFileSync(w.caFile, 'utf8')];
  const targets: Target[] = w.targets.map((t) => ({ url: t.url }));
  let ok = 0;
  let bytes = 0;
  // BENCH_MEM=1: the process's memory every tenth of the list (what grows with the list, if anything).
  const every = process.env.BENCH_MEM === '1' ? Math.max(1, Math.floor(targets.length / 10)) : 0;
  let n = 0;
  const stop = startRun();
  const opts: ProbeOptions = { resolver: w.dns, helper: w.helper, ca, allowNet: ['127.0.0.0/8'], ...variant };
  if (!opts.helper) delete opts.helper;
  await measureMany(targets, opts, CONCURRENCY, (r) => {
    if (r.ok) {
      bytes += JSON.stringify(r.measurement).length; // what --out would write
      if (r.measurement.test_keys.accessible === true) ok++;
    }
    if (every && ++n % every === 0) {
      const m = process.memoryUsage();
      const mb = (x: number): string => (x / 1048576).toFixed(0);
      process.stderr.write(
        `    mem at ${n}: rss ${mb(m.rss)} MB, heap used ${mb(m.heapUsed)} of ${mb(m.heapTotal)} MB, external ${mb(m.external)} MB, array buffers ${mb(m.arrayBuffers)} MB; ${spaces()}\n`,
      );
    }
  });
  const figures = stop(ok, bytes);
  if (every) process.stderr.write(mappings());
  await sendFigures(figures);
}

/** A timed run of this process: the returned function stops the clock and gives its figures. */
function startRun(): (ok: number, bytes: number) => ProbeFigures {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  return (ok, bytes) => {
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { wall, ok, bytes, maxRssMb: process.resourceUsage().maxRSS / 1024, cpuS: (cpu.user + cpu.system) / 1e6 };
  };
}

/** Hands a run's figures to the bench (probeRun), then lets the process exit. */
function sendFigures(f: ProbeFigures): Promise<void> {
  return new Promise((resolve) => process.send!(f, () => resolve()));
}

/**
 * The floor of any Node probe on this world: node's own http/https fetching every URL on a fresh
 * connection, with the same CA and concurrency, the addresses given (no DNS at all), nothing
 * recorded. With `control`, each URL also asks the test helper (one keep-alive POST of oohelperd's
 * control request, which the helper answers by fetching the URL itself): the least a measurement
 * with a control must cost when the helper shares the cores, as it does here.
 */
async function nodeFloor(w: World, control: boolean): Promise<void> {
  const ca = [readFileSync(w.caFile, 'utf8')];
  const helper = control ? new URL(w.helper) : null;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const get = (t: World['targets'][number]): Promise<boolean> =>
    new Promise((resolve) => {
      const tls = t.url.startsWith('https:');
      const req = (tls ? https : http).get(
        { host: t.ip, port: t.port, path: '/', agent: false, headers: { host: t.name }, ...(tls ? { servername: t.name, ca } : {}) },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve(res.statusCode === 200));
        },
      );
      req.on('error', () => resolve(false));
    });
  const post = (t: World['targets'][number]): Promise<boolean> =>
    new Promise((resolve) => {
      const body = JSON.stringify({ http_request: t.url, http_request_headers: {}, tcp_connect: [`${t.ip}:${t.port}`] });
      const req = http.request(
        {
          host: helper!.hostname,
          port: helper!.port,
          path: helper!.pathname,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve(res.statusCode === 200));
        },
      );
      req.on('error', () => resolve(false));
      req.end(body);
    });
  let next = 0;
  let ok = 0;
  const stop = startRun();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < w.targets.length) {
        const t = w.targets[next++]!;
        const [fetched, controlled] = await Promise.all([get(t), control ? post(t) : Promise.resolve(true)]);
        if (fetched && controlled) ok++;
      }
    }),
  );
  await sendFigures(stop(ok, 0));
}

/** BENCH_MEM=1: V8's heap by space, used of committed (MB): which one a long list grows, if any. */
function spaces(): string {
  return getHeapSpaceStatistics()
    .filter((sp) => sp.space_size > 1 << 20)
    .map(
      (sp) =>
        `${sp.space_name.replace(/_space$/, '')} ${(sp.space_used_size / 1048576).toFixed(0)}/${(sp.space_size / 1048576).toFixed(0)}`,
    )
    .join(', ');
}

/** BENCH_MEM=1: where the resident memory is at the end (Linux /proc/self/smaps): malloc's heap, V8's, the rest. */
function mappings(): string {
  let text: string;
  try {
    text = readFileSync('/proc/self/smaps', 'utf8');
  } catch {
    return '';
  }
  const kb: Record<string, number> = {};
  let name = '';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) name = head[1] === '' ? 'anonymous' : head[1]!.startsWith('/') ? 'files' : head[1]!;
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kb[name] = (kb[name] ?? 0) + Number(rss[1]);
  }
  const parts = Object.entries(kb)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${(v / 1024).toFixed(0)} MB`);
  return `    resident at the end: ${parts.join(', ')}\n`;
}

function handLoop(w: World, dir: string): Promise<{ wall: number; ok: number }> {
  const [dnsHost, dnsPort] = w.dns.split(':');
  const lines = w.targets.map((t) => `${t.name} ${t.port} ${t.url}`).join('\n') + '\n';
  const list = join(dir, 'urls.txt');
  writeFileSync(list, lines);
  const script =
    `ip=$(dig +short +tries=1 +time=5 -p ${dnsPort} @${dnsHost} "$0" A | head -n1); ` +
    `curl -s -o /dev/null -w '%{http_code}\\n' --max-time 15 --cacert ${w.caFile} --resolve "$0:$1:$ip" "$2"`;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('sh', ['-c', `xargs -P ${CONCURRENCY} -L 1 sh -c '${script.replace(/'/g, `'\\''`)}' < ${list}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.on('error', reject);
    p.on('close', () => resolve({ wall: (performance.now() - t0) / 1000, ok: out.split('\n').filter((l) => l === '200').length }));
  });
}

/** One `dig -f` batch for every name, then one `curl --parallel` process for every URL. */
async function fairPeer(w: World, dir: string): Promise<{ wall: number; ok: number }> {
  const [dnsHost, dnsPort] = w.dns.split(':');
  const names = join(dir, 'names.txt');
  writeFileSync(names, w.targets.map((t) => `${t.name} A`).join('\n') + '\n');
  const t0 = performance.now();
  const dig = await runTool('dig', ['-f', names, '-p', dnsPort!, `@${dnsHost}`, '+noall', '+answer', '+tries=1', '+time=5']);
  const ipOf = new Map<string, string>();
  for (const line of dig.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 5 && f[3] === 'A') ipOf.set(f[0]!.replace(/\.$/, ''), f[4]!);
  }
  // A curl config file (-K): every URL with its own output, and every name pinned to dig's answer.
  const cfg = join(dir, 'curl.cfg');
  writeFileSync(
    cfg,
    w.targets
      .flatMap((t) =>
        ipOf.has(t.name) ? [`resolve = "${t.name}:${t.port}:${ipOf.get(t.name)}"`, `url = "${t.url}"`, 'output = "/dev/null"'] : [],
      )
      .join('\n') + '\n',
  );
  const out = await runTool('curl', [
    '--parallel',
    '--parallel-max',
    String(CONCURRENCY),
    '-s',
    '--no-progress-meter',
    '--max-time',
    '15',
    '--cacert',
    w.caFile,
    '-w',
    '%{http_code}\n',
    '-K',
    cfg,
  ]);
  return { wall: (performance.now() - t0) / 1000, ok: out.split('\n').filter((l) => l === '200').length };
}

function runTool(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => chunks.push(c));
    p.on('error', reject);
    p.on('close', () => resolve(Buffer.concat(chunks).toString()));
  });
}

function exited(p: import('node:child_process').ChildProcess): Promise<void> {
  return p.exitCode !== null ? Promise.resolve() : new Promise((resolve) => p.once('exit', () => resolve()));
}

const child = <T>(role: string, payload?: unknown) => forkRole<T>(self, role, payload);

type ProbeFigures = { wall: number; ok: number; bytes: number; maxRssMb: number; cpuS: number; helperCpuS?: number; worldCpuS?: number };

/**
 * One probe variant's run. The probes exit by themselves once they have reported (so that
 * --cpu-prof writes their profiles). The helper's and the world's CPU during the run too: the three
 * share the machine's cores.
 */
async function probeRun(
  role: string,
  w: World,
  helperProc: import('node:child_process').ChildProcess,
  worldProc: import('node:child_process').ChildProcess,
): Promise<ProbeFigures> {
  const [h0, w0] = await Promise.all([cpuOf(helperProc), cpuOf(worldProc)]);
  const { msg, proc } = await child<ProbeFigures>(role, w);
  await exited(proc);
  const [h1, w1] = await Promise.all([cpuOf(helperProc), cpuOf(worldProc)]);
  return { ...msg, helperCpuS: (h1 - h0) / 1e6, worldCpuS: (w1 - w0) / 1e6 };
}

/** BENCH_SPLIT=1: each part of the full evidence left out in turn; the difference is its cost. */
async function splitRuns(
  ws: ProbeFigures,
  runProbe: (role: string) => Promise<ProbeFigures>,
  figures: (what: string, p: ProbeFigures) => string,
  n: number,
): Promise<void> {
  for (const [role, what] of [
    ['probe-no-attribution', 'without the attribution follow-ups (decoy-before, no-SNI)'],
    ['probe-no-window', 'without the DNS duplicate window'],
    ['probe-no-control', 'without the control (no test helper)'],
  ] as const) {
    const p = await runProbe(role);
    console.log(
      `${figures(`wallscope ${what}`, p)}; full minus this: wall ${(ws.wall - p.wall).toFixed(2)} s, CPU ${(((ws.cpuS - p.cpuS) / n) * 1000).toFixed(2)} ms/URL`,
    );
    const d = (a: number | undefined, b: number | undefined): string => ((((a ?? 0) - (b ?? 0)) / n) * 1000).toFixed(2);
    console.log(
      `    test helper CPU ${d(p.helperCpuS, 0)} ms/URL, world CPU ${d(p.worldCpuS, 0)} ms/URL; full minus this: helper ${d(ws.helperCpuS, p.helperCpuS)}, world ${d(ws.worldCpuS, p.worldCpuS)} ms/URL`,
    );
  }
}

/** The peers' lines: the fair peer, node's floors (with their ratio to the fair peer) and the hand loop. */
function printPeers(
  fair: { wall: number; ok: number } | null,
  fairWorldCpuS: number,
  floors: ProbeFigures[],
  hand: { wall: number; ok: number } | null,
  perUrl: (s: number | undefined) => string,
): void {
  if (fair)
    console.log(
      `  fair peer (one dig -f batch, then one curl --parallel --parallel-max ${CONCURRENCY}): wall ${fair.wall.toFixed(2)} s, ${fair.ok} x HTTP 200; world CPU ${perUrl(fairWorldCpuS)} ms/URL`,
    );
  const [floor, floorControl] = floors;
  const peerRatio = (p: ProbeFigures): string => (fair ? ` (${(p.wall / fair.wall).toFixed(2)}x the fair peer)` : '');
  const cpus = (p: ProbeFigures): string =>
    `CPU ${perUrl(p.cpuS)} ms/URL, test helper ${perUrl(p.helperCpuS)}, world ${perUrl(p.worldCpuS)}`;
  if (floor)
    console.log(
      `  node's floor (node http/https, fresh connections, no DNS, nothing recorded): wall ${floor.wall.toFixed(2)} s${peerRatio(floor)}, ${floor.ok} x HTTP 200; ${cpus(floor)}`,
    );
  if (floorControl)
    console.log(
      `  node's floor + a control per URL (the same, plus one POST to the test helper): wall ${floorControl.wall.toFixed(2)} s${peerRatio(floorControl)}, ${floorControl.ok} x both; ${cpus(floorControl)}`,
    );
  if (hand) console.log(`  hand loop (dig + curl per URL, xargs -P ${CONCURRENCY}): wall ${hand.wall.toFixed(2)} s, ${hand.ok} x HTTP 200`);
}

/**
 * --capture (root): the same run with libpcap open for every URL's resolver and endpoints.
 * On loopback every URL shares 4 site addresses, so each capture also sees (and drops later)
 * its 63 neighbours' packets: a worst case a real network, with one site per URL, does not have.
 * BENCH_CAPTURE=0 skips it.
 */
async function captureRun(ws: ProbeFigures, runProbe: (role: string) => Promise<ProbeFigures>): Promise<void> {
  const can = process.env.BENCH_CAPTURE === '0' ? { ok: false as const, reason: 'BENCH_CAPTURE=0' } : captureAvailable();
  if (can.ok) {
    const cap = await runProbe('probe-capture');
    console.log(
      `  wallscope --capture: wall ${cap.wall.toFixed(2)} s, CPU ${cap.cpuS.toFixed(1)} s, ${cap.ok} accessible, peak RSS ${cap.maxRssMb.toFixed(0)} MB; overhead vs wallscope: wall ${(((cap.wall - ws.wall) / ws.wall) * 100).toFixed(1)}%, CPU ${(((cap.cpuS - ws.cpuS) / ws.cpuS) * 100).toFixed(1)}%`,
    );
  } else console.log(`  wallscope --capture: skipped (${can.reason})`);
}

async function main(): Promise<void> {
  const role = process.argv[2];
  if (role === 'world') return world(process.env.BENCH_DIR!);
  if (role === 'helper') {
    process.once('message', (m) => void helperRole((m as World).dns, (m as World).caFile));
    return;
  }
  if (role === 'node-floor' || role === 'node-floor-control') {
    process.once('message', (w) => void nodeFloor(w as World, role === 'node-floor-control').then(() => process.exit(0)));
    return;
  }
  if (role !== undefined && role in VARIANTS) {
    process.once('message', (w) => void probe(w as World, VARIANTS[role]!).then(() => process.exit(0)));
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'wallscope-bench-'));
  process.env.BENCH_DIR = dir;
  const { msg: w, proc: worldProc } = await child<World>('world');
  const { msg: helperUrl, proc: helperProc } = await child<string>('helper', { ...w, targets: [] });
  w.helper = helperUrl;
  try {
    console.log(`probe-web: ${w.targets.length} loopback URLs (1/4 slow by ${SLOW_MS} ms; half https), concurrency ${CONCURRENCY}`);
    // Side by side in the same run, one after the other on the same world.
    // BENCH_CAPTURE_ONLY=1: only the probe with and without --capture (the peers are the slow part).
    const captureOnly = process.env.BENCH_CAPTURE_ONLY === '1';
    // BENCH_FAIR_PEER=0 skips it (curl --parallel slows down more than linearly with tens of
    // thousands of URLs queued in one process: measured at 20,000 URLs, still running after 5 min).
    // An untimed warm-up first (BENCH_WARMUP=0 skips it): a test helper is a long-running server,
    // and without it the first timed run (the full probe) paid the helper's JIT warm-up (measured:
    // the helper's CPU per URL 3.1 ms in the first run, 1.5-2.0 ms in the next ones).
    // 200 URLs were not enough: the first timed run still paid 1-1.5 ms/URL more of helper and
    // world CPU than the same variant run later (BENCH_SPLIT=1 runs), so the warm-up is now the
    // whole list (at most 1,000 URLs), with every part of the evidence.
    if (process.env.BENCH_WARMUP !== '0') await probeRun('probe', { ...w, targets: w.targets.slice(0, 1000) }, helperProc, worldProc);
    const fw0 = await cpuOf(worldProc);
    const fair = captureOnly || process.env.BENCH_FAIR_PEER === '0' ? null : await fairPeer(w, dir);
    const fairWorldCpuS = ((await cpuOf(worldProc)) - fw0) / 1e6;
    const hand = captureOnly || process.env.BENCH_HAND_LOOP === '0' ? null : await handLoop(w, dir);
    const runProbe = (role: string): Promise<ProbeFigures> => probeRun(role, w, helperProc, worldProc);
    // BENCH_NODE_FLOOR=0 skips node's floor (see nodeFloor).
    const floors =
      captureOnly || process.env.BENCH_NODE_FLOOR === '0' ? [] : [await runProbe('node-floor'), await runProbe('node-floor-control')];
    const ws = await runProbe('probe');
    // BENCH_LEAN=0 skips the lean run.
    const lean = process.env.BENCH_LEAN === '0' ? null : await runProbe('probe-lean');
    const perUrl = (s: number | undefined): string => (((s ?? 0) / w.targets.length) * 1000).toFixed(2);
    printPeers(fair, fairWorldCpuS, floors, hand, perUrl);
    console.log(
      `  wallscope (web_connectivity + control + attribution, 500 ms DNS duplicate window): wall ${ws.wall.toFixed(2)} s, CPU ${ws.cpuS.toFixed(1)} s (${((ws.cpuS / w.targets.length) * 1000).toFixed(2)} ms/URL), ${ws.ok} accessible, peak RSS ${ws.maxRssMb.toFixed(0)} MB, ${(ws.bytes / 1e6).toFixed(1)} MB of measurements`,
    );
    const figures = (what: string, p: ProbeFigures): string =>
      `  ${what}: wall ${p.wall.toFixed(2)} s, CPU ${p.cpuS.toFixed(1)} s (${perUrl(p.cpuS)} ms/URL), ${p.ok} accessible, peak RSS ${p.maxRssMb.toFixed(0)} MB`;
    const others = (what: string, p: ProbeFigures): string =>
      `    during ${what}: test helper CPU ${perUrl(p.helperCpuS)} ms/URL, world CPU ${perUrl(p.worldCpuS)} ms/URL`;
    console.log(others('wallscope', ws));
    if (lean) console.log(figures('wallscope lean (no duplicate window, no attribution)', lean));
    if (lean) console.log(others('lean', lean));
    if (fair) console.log(`  ratio wallscope/fair peer: ${(ws.wall / fair.wall).toFixed(2)} (goal <= 1.2)`);
    if (fair && lean) console.log(`  ratio lean/fair peer: ${(lean.wall / fair.wall).toFixed(2)} (goal <= 1.0)`);
    if (hand) console.log(`  ratio wallscope/hand loop: ${(ws.wall / hand.wall).toFixed(2)}`);
    if (hand && lean) console.log(`  ratio lean/hand loop: ${(lean.wall / hand.wall).toFixed(2)}`);
    if (process.env.BENCH_SPLIT === '1') await splitRuns(ws, runProbe, figures, w.targets.length);
    await captureRun(ws, runProbe);
  } finally {
    // Disconnected, the world and the helper exit by themselves (so that --cpu-prof writes theirs too).
    for (const p of [helperProc, worldProc]) {
      if (p.connected) p.disconnect();
      setTimeout(() => p.kill(), 5_000).unref();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
