// `lab eval --infer` (DESIGN.md "Contracts of the next capabilities"): after the measurements,
// infer the rule behind every blocked target of the scenario, per protocol and per layer, through
// the running loopback lab. DNS trials go to the lab's silent address (only injectors answer),
// SNI and Host trials to the target site's own front, each from a fresh client address of the
// lab so that one trial's residual blocking never pollutes the next; keyword-blocked URLs get the
// minimal triggering substring of their path by bisection (src/analysis/infer.ts).
import {
  escapeRegexLiteral,
  inferRule,
  isolateKeyword,
  nameHash,
  REGIONAL_RESET_MS,
  type InferredRule,
  type Oracle,
} from '../analysis/index.js';
import { prng, type Layer } from '../model/index.js';
import {
  dnsTrial,
  hostOutcome,
  httpHostTrial,
  httpPathTrial,
  layeredTrial,
  type ResetWatcher,
  sniOutcome,
  sniTrial,
  type LayeredOutcome,
  type Trial,
} from '../probe/index.js';
import type { Lab } from './lab.js';
import { decodePath } from './rules.js';

export type InferProtocol = 'dns' | 'sni' | 'http';

/** One line of `infer --json` (the contract's keys; `url` and `keyword` for keyword blocks). */
export interface InferLine {
  name: string;
  protocol: InferProtocol;
  layer: Layer | null;
  rule: string;
  variants: InferredRule['variants'];
  overblocks: string[];
  queries: number;
  url?: string;
  keyword?: string;
  /** Extension: the shape and literal behind `rule`. */
  x_shape?: InferredRule['shape'] | 'keyword';
  x_kw?: string;
}

export interface InferTarget {
  url: string;
  mechanism: string | null;
  layer: Layer | null;
}

export interface InferLabOptions {
  /** Names inferred at once (default 8). */
  concurrency?: number;
  /** DNS trial window (ms, default 500). */
  dnsWaitMs?: number;
  /** Client addresses for trials start at this index of lab.clientAddress (past those of eval). */
  firstClient?: number;
  /**
   * Tell the layers of a name both block apart by the fingerprints of the resets captured (root;
   * netns mode, where each censor injects as the packet passes on): how long a blocked trial waits
   * for its regional reset to be handed over by the capture (ms). Without: by how soon the first
   * reset came (REGIONAL_RESET_MS), which a busy machine skews.
   */
  resets?: { watcher: ResetWatcher; waitMs: number };
}

const PROTOCOL_OF: Record<string, InferProtocol> = { 'dns.injection': 'dns', 'tls.reset': 'sni', 'http.reset': 'http' };

/** A padding label no list holds: letters drawn from the name's hash (reproducible). */
export function padFor(name: string, seed: number): string {
  const r = prng(nameHash(name) ^ seed);
  let s = 'zq';
  for (let i = 0; i < 6; i++) s += String.fromCharCode(97 + Math.floor(r() * 26));
  return s;
}

/** Where each protocol's trials go for a name (null: that protocol cannot be tried for it). */
export interface InferEndpoints {
  dns?: Trial | null;
  sni?: (name: string) => Trial | null;
  httpHost?: (name: string) => Trial | null;
  /** Trials of a path alone, with the name as an unblocked Host. */
  httpPath?: (name: string) => Trial | null;
}

export interface InferJob {
  name: string;
  protocol: InferProtocol;
  layer: Layer | null;
  /** For http: the URL whose path may hold a keyword. */
  url?: string;
  /** The trials of this job's layer alone (layersOf); absent: the endpoint's trials, whatever layer blocks. */
  oracle?: Oracle;
}

/**
 * Infers every job, `concurrency` at a time, each name's trials in sequence. `blockedNames`: other
 * names known to be blocked, reported among the overblocks of a rule that matches them.
 */
export async function inferJobs(
  jobs: InferJob[],
  ends: InferEndpoints,
  opts: { concurrency?: number; seed?: number; blockedNames?: string[] } = {},
): Promise<InferLine[]> {
  const out: Array<InferLine | null> = new Array(jobs.length).fill(null);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      const job = jobs[i];
      if (!job) return;
      const pad = padFor(job.name, opts.seed ?? 0);
      let oracle: Oracle | null = job.oracle ?? null;
      if (oracle) {
        // Per-layer trials (layersOf): the exact name is blocked at this layer, so not a keyword.
      } else if (job.protocol === 'dns') oracle = ends.dns ?? null;
      else if (job.protocol === 'sni') oracle = ends.sni?.(job.name) ?? null;
      else {
        const host = ends.httpHost?.(job.name) ?? null;
        if (host && !(await host(job.name))) {
          // Not the Host: a keyword in the path. Its minimal triggering substring, by bisection.
          const path = job.url ? ends.httpPath?.(job.name) : null;
          if (!path || !job.url) continue;
          const u = new URL(job.url);
          const got = await isolateKeyword(decodePath(`${u.pathname}${u.search}`), path);
          if (got)
            out[i] = {
              name: job.name,
              protocol: 'http',
              layer: job.layer,
              rule: escapeRegexLiteral(got.keyword),
              variants: {},
              overblocks: [],
              queries: got.queries + 1,
              url: job.url,
              keyword: got.keyword,
              x_shape: 'keyword',
              x_kw: got.keyword,
            };
          continue;
        }
        oracle = host;
      }
      if (!oracle) continue;
      const got = await inferRule(job.name, oracle, pad);
      if (!got) continue;
      // The other blocked names this rule also blocks (overblocking samples).
      const re = new RegExp(got.rule);
      const also = (opts.blockedNames ?? []).filter((n) => n !== got.name && !n.endsWith(`.${got.name}`) && re.test(n));
      out[i] = {
        name: job.name,
        protocol: job.protocol,
        layer: job.layer,
        rule: got.rule,
        variants: got.variants,
        overblocks: [...new Set([...got.overblocks, ...also])],
        queries: got.queries,
        x_shape: got.shape,
        x_kw: got.kw,
      };
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 8, jobs.length)) }, worker));
  return out.filter((l): l is InferLine => l !== null);
}

/** One line per (name, protocol, layer) for rules; keyword lines stay one per URL. */
export function uniqueLines(lines: InferLine[]): InferLine[] {
  const seen = new Set<string>();
  return lines.filter((l) => {
    const key = `${l.name}\0${l.protocol}\0${l.layer}\0${l.keyword !== undefined ? l.url : ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * One job per (name, protocol, layer), in target order: the protocol the probe found blocked, then
 * the others (`infer` tries every protocol it has an endpoint for: a name the GFW poisons may also
 * be on its SNI list, behind the poisoned answer the probe saw first). A protocol that does not
 * block the exact name costs one trial and gives no line.
 */
function jobsOf(targets: InferTarget[], site: (name: string) => Lab['sites'][number] | undefined): Map<string, InferJob> {
  const jobs = new Map<string, InferJob>();
  const tried = new Set<string>();
  const add = (job: InferJob) => {
    // A keyword is per URL: two paths of one host may hold different ones.
    const key = `${job.name}\0${job.protocol}\0${job.layer}${job.url !== undefined ? `\0${job.url}` : ''}`;
    if (!jobs.has(key)) jobs.set(key, job);
    tried.add(`${job.name}\0${job.protocol}`);
  };
  const names: Array<{ name: string; t: InferTarget }> = [];
  for (const t of targets) {
    const protocol = t.mechanism ? PROTOCOL_OF[t.mechanism] : undefined;
    if (!protocol) continue;
    let name: string;
    try {
      name = new URL(t.url).hostname.toLowerCase();
    } catch {
      continue;
    }
    add({ name, protocol, layer: t.layer, ...(protocol === 'http' ? { url: t.url } : {}) });
    names.push({ name, t });
  }
  for (const { name, t } of names)
    for (const protocol of ['dns', 'sni', 'http'] as const) {
      if (tried.has(`${name}\0${protocol}`)) continue;
      if ((protocol === 'sni' && !site(name)?.httpsPort) || (protocol === 'http' && !site(name)?.httpPort)) continue;
      // An injection seen at the silent address is on the path: national unless told otherwise
      // (the analysis attributes on-path injection so); SNI and Host are told apart by layersOf.
      add({ name, protocol, layer: protocol === 'dns' ? 'national' : t.layer });
    }
  return jobs;
}

export async function inferLab(
  lab: Pick<Lab, 'scenario' | 'sites' | 'silentDns' | 'clientAddress'>,
  targets: InferTarget[],
  opts: InferLabOptions = {},
): Promise<InferLine[]> {
  let client = opts.firstClient ?? 6000;
  const fresh = { localAddress: () => lab.clientAddress(client++), timeoutMs: 3000 };
  const [dnsHost, dnsPort] = lab.silentDns.split(':') as [string, string];
  const site = (name: string) => lab.sites.find((s) => s.domain === name);
  const ends: InferEndpoints = {
    dns: dnsTrial({ host: dnsHost, port: Number(dnsPort) }, { ...fresh, timeoutMs: opts.dnsWaitMs ?? 500 }),
    sni: (name) => {
      const s = site(name);
      return s?.httpsPort ? sniTrial({ host: s.address, port: s.httpsPort }, fresh) : null;
    },
    httpHost: (name) => {
      const s = site(name);
      return s?.httpPort ? httpHostTrial({ host: s.address, port: s.httpPort }, fresh) : null;
    },
    httpPath: (name) => {
      const s = site(name);
      return s?.httpPort ? httpPathTrial({ host: s.address, port: s.httpPort }, name, fresh) : null;
    },
  };
  const jobs = jobsOf(targets, site);
  const blockedNames = [...new Set([...jobs.values()].map((j) => j.name))];
  const layered = await layersOf([...jobs.values()], (name, protocol) => {
    const s = site(name);
    const port = protocol === 'sni' ? s?.httpsPort : s?.httpPort;
    if (!s || !port) return null;
    const server = { host: s.address, port };
    const outcome = protocol === 'sni' ? sniOutcome : hostOutcome;
    const watching = opts.resets?.watcher.watch(server);
    const trial = layeredTrial((n, local) => outcome(server, n, local, 3000), `${padFor(name, lab.scenario.seed ^ 0x5a5a)}.example`, {
      localAddress: fresh.localAddress,
      regionalResetMs: REGIONAL_RESET_MS,
      resets: opts.resets,
    });
    // The capture is open before the first trial (a problem opening it is a setup error, not a layer).
    return async (n: string) => {
      const problem = await watching;
      if (problem) throw new Error(`infer: cannot capture the resets: ${problem}`);
      return trial(n);
    };
  });
  const lines = await inferJobs(layered, ends, { concurrency: opts.concurrency, seed: lab.scenario.seed, blockedNames });
  return uniqueLines(lines);
}

const TOLD_APART = ['national', 'regional'] as const;

/**
 * Two layers blocking one name over one protocol each get their own line and rule (DESIGN.md:
 * one line per (name, protocol, layer)): per (name, sni|http) the exact name is tried once with
 * layered trials (probe layeredTrial: residual blocking = national, a fast reset = regional), and
 * one job per layer that blocked it runs on that layer's trials alone (cached per candidate, so
 * the layers share each trial). A name whose block neither behaviour explains (a keyword URL, a
 * censor with neither trait) keeps its job and its attributed layer.
 */
export async function layersOf(
  jobs: InferJob[],
  trialsFor: (name: string, protocol: 'sni' | 'http') => ((name: string) => Promise<LayeredOutcome>) | null,
): Promise<InferJob[]> {
  const out: InferJob[] = [];
  // Per (name, protocol): the layers told apart on the exact name (empty: keep the attributed jobs).
  const told = new Map<string, number>();
  for (const job of jobs) {
    const key = `${job.name}\0${job.protocol}`;
    if (job.protocol === 'dns' || told.get(key) === 0) {
      out.push(job);
      continue;
    }
    if (told.has(key)) continue; // its per-layer jobs are in
    const trial = trialsFor(job.name, job.protocol);
    const cache = new Map<string, Promise<LayeredOutcome>>();
    const once = trial && ((c: string) => cache.get(c) ?? (cache.set(c, trial(c)), cache.get(c)!));
    const exact = once ? await once(job.name) : null;
    const layers = exact ? TOLD_APART.filter((l) => exact[l]) : [];
    told.set(key, layers.length);
    if (!once || !layers.length) out.push(job);
    else
      for (const layer of layers)
        out.push({ name: job.name, protocol: job.protocol, layer, url: job.url, oracle: async (c) => (await once(c))[layer] });
  }
  return out;
}
