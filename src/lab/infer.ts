// `lab eval --infer` (DESIGN.md "Contracts of the next capabilities"): after the measurements,
// infer the rule behind every blocked target of the scenario, per protocol and per layer, through
// the running loopback lab. DNS trials go to the lab's silent address (only injectors answer),
// SNI and Host trials to the target site's own front, each from a fresh client address of the
// lab so that one trial's residual blocking never pollutes the next; keyword-blocked URLs get the
// minimal triggering substring of their path by bisection (src/analysis/infer.ts).
import { escapeRegexLiteral, inferRule, isolateKeyword, nameHash, type InferredRule, type Oracle } from '../analysis/index.js';
import { prng, type Layer } from '../model/index.js';
import { dnsTrial, httpHostTrial, httpPathTrial, sniTrial } from '../probe/index.js';
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
}

const PROTOCOL_OF: Record<string, InferProtocol> = { 'dns.injection': 'dns', 'tls.reset': 'sni', 'http.reset': 'http' };

/** A padding label no list holds: letters drawn from the name's hash (reproducible). */
export function padFor(name: string, seed: number): string {
  const r = prng(nameHash(name) ^ seed);
  let s = 'zq';
  for (let i = 0; i < 6; i++) s += String.fromCharCode(97 + Math.floor(r() * 26));
  return s;
}

export async function inferLab(lab: Pick<Lab, 'scenario' | 'sites' | 'silentDns' | 'clientAddress'>, targets: InferTarget[], opts: InferLabOptions = {}): Promise<InferLine[]> {
  let client = opts.firstClient ?? 6000;
  const fresh = { localAddress: () => lab.clientAddress(client++), timeoutMs: 3000 };
  const [dnsHost, dnsPort] = lab.silentDns.split(':') as [string, string];
  const dns = dnsTrial({ host: dnsHost, port: Number(dnsPort) }, { ...fresh, timeoutMs: opts.dnsWaitMs ?? 500 });
  // One job per (name, protocol, layer); a keyword block is its own job per URL.
  const jobs = new Map<string, { name: string; protocol: InferProtocol; layer: Layer | null; url: string }>();
  for (const t of targets) {
    const protocol = t.mechanism ? PROTOCOL_OF[t.mechanism] : undefined;
    if (!protocol) continue;
    let name: string;
    try {
      name = new URL(t.url).hostname.toLowerCase();
    } catch {
      continue;
    }
    const key = `${name}\0${protocol}\0${t.layer}`;
    if (!jobs.has(key)) jobs.set(key, { name, protocol, layer: t.layer, url: t.url });
  }
  const blockedNames = [...new Set(targets.filter((t) => t.mechanism && PROTOCOL_OF[t.mechanism]).map((t) => new URL(t.url).hostname.toLowerCase()))];
  const out: InferLine[] = [];
  const list = [...jobs.values()];
  let next = 0;
  const worker = async () => {
    for (;;) {
      const job = list[next++];
      if (!job) return;
      const site = lab.sites.find((s) => s.domain === job.name);
      const pad = padFor(job.name, lab.scenario.seed);
      let oracle: Oracle | null = null;
      if (job.protocol === 'dns') oracle = dns;
      else if (job.protocol === 'sni' && site?.httpsPort) oracle = sniTrial({ host: site.address, port: site.httpsPort }, fresh);
      else if (job.protocol === 'http' && site?.httpPort) {
        const server = { host: site.address, port: site.httpPort };
        const host = httpHostTrial(server, fresh);
        if (!(await host(job.name))) {
          // Not the Host: a keyword in the path. Its minimal triggering substring, by bisection.
          const u = new URL(job.url);
          const text = decodePath(`${u.pathname}${u.search}`);
          const got = await isolateKeyword(text, httpPathTrial(server, job.name, fresh));
          if (got)
            out.push({ name: job.name, protocol: 'http', layer: job.layer, rule: escapeRegexLiteral(got.keyword), variants: {}, overblocks: [], queries: got.queries + 1, url: job.url, keyword: got.keyword, x_shape: 'keyword', x_kw: got.keyword });
          continue;
        }
        oracle = host;
      }
      if (!oracle) continue;
      const got = await inferRule(job.name, oracle, pad);
      if (!got) continue;
      // The scenario's other blocked names this rule also blocks (overblocking samples).
      const re = new RegExp(got.rule);
      const also = blockedNames.filter((n) => n !== got.name && !n.endsWith(`.${got.name}`) && re.test(n));
      out.push({
        name: job.name,
        protocol: job.protocol,
        layer: job.layer,
        rule: got.rule,
        variants: got.variants,
        overblocks: [...new Set([...got.overblocks, ...also])],
        queries: got.queries,
        x_shape: got.shape,
        x_kw: got.kw,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 8, list.length)) }, worker));
  const order = new Map(list.map((j, i) => [`${j.name}\0${j.protocol}\0${j.layer}`, i]));
  return out.sort((a, b) => (order.get(`${a.name}\0${a.protocol}\0${a.layer}`) ?? 0) - (order.get(`${b.name}\0${b.protocol}\0${b.layer}`) ?? 0));
}
