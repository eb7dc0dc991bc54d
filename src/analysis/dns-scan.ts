// What a GFWatch-style injection scan found (censors.md section 1): the contract's JSONL lines
// (DESIGN.md, `scan dns`), the shard a name belongs to, and a summary of the injected answers:
// the forged pool, how many injectors answer each query, their TTL behaviour, and forged A
// records sent to queries for other types (the blackbox.c tell-tale). Pure: no I/O, no clock.

export interface DnsScanAnswer {
  type: string;
  data: string;
  ttl: number;
}

export interface DnsScanReply {
  /** Milliseconds from sending the query to this reply. */
  ms: number;
  /** The reply's IP TTL as received, or null when it could not be read (no packet capture). */
  ip_ttl: number | null;
  rcode: string;
  /** The 16-bit DNS flags word (QR, opcode, AA, TC, RD, RA, Z, AD, CD and the rcode bits). */
  flags: number;
  answers: DnsScanAnswer[];
}

export interface DnsScanLine {
  name: string;
  qtype: string;
  /** A reply came from an address that runs no resolver: it was injected on the path. */
  injected: boolean;
  replies: DnsScanReply[];
}

/** FNV-1a of the lower-cased name: the same on every machine, so shards split one list exactly. */
export function nameHash(name: string): number {
  let h = 0x811c9dc5;
  const n = name.toLowerCase();
  for (let i = 0; i < n.length; i++) h = Math.imul(h ^ n.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Whether `name` is in shard i of n (0 <= i < n): each name is in exactly one. */
export function inShard(name: string, i: number, n: number): boolean {
  return n <= 1 || nameHash(name) % n === i;
}

export interface DnsScanSummary {
  queries: number;
  injected: number;
  /** replies per query -> number of queries (2 everywhere: two injectors, N4P#466). */
  replies_per_query: Record<string, number>;
  /** The most replies one query drew: a lower bound on the number of injectors. */
  injectors: number;
  forged_pool: { distinct: number; top: Array<[string, number]> };
  /** Per reply rank (first, second, ... reply of a query): the answer TTLs and IP TTLs seen. */
  by_rank: Array<{ rank: number; answer_ttls: Record<string, number>; ip_ttls: Record<string, number> }>;
  /** Injected replies whose IP TTL varies with nothing else but the rank: one value per rank = fixed. */
  ttl_behaviour: string;
  /** Queries for a type other than A that drew an A answer (blackbox.c answers A to everything but AAAA). */
  forged_a_to_non_a: number;
  /** Forged AAAA answers (GFWatch: all inside Teredo 2001::/32). */
  forged_aaaa: number;
}

const TOP = 20;
const MAX_DISTINCT = 100_000; // bounded memory: the field's pools hold under 2,000 addresses

/** Streams scan lines into a summary in bounded memory. */
export class DnsScanSummarizer {
  private queries = 0;
  private injected = 0;
  private readonly perQuery = new Map<number, number>();
  private readonly pool = new Map<string, number>();
  private poolOverflow = false;
  private readonly ranks: Array<{ answer: Map<number, number>; ip: Map<string, number> }> = [];
  private aToNonA = 0;
  private aaaa = 0;

  add(line: DnsScanLine): void {
    this.queries++;
    if (line.injected) this.injected++;
    this.perQuery.set(line.replies.length, (this.perQuery.get(line.replies.length) ?? 0) + 1);
    let aSeen = false;
    line.replies.forEach((r, k) => {
      const rank = (this.ranks[k] ??= { answer: new Map(), ip: new Map() });
      const ipKey = r.ip_ttl === null ? 'unknown' : String(r.ip_ttl);
      rank.ip.set(ipKey, (rank.ip.get(ipKey) ?? 0) + 1);
      for (const a of r.answers) {
        if (a.type === 'A' || a.type === 'AAAA') {
          if (this.pool.has(a.data) || this.pool.size < MAX_DISTINCT) this.pool.set(a.data, (this.pool.get(a.data) ?? 0) + 1);
          else this.poolOverflow = true;
        }
        if (a.type === 'A') aSeen = true;
        if (a.type === 'AAAA') this.aaaa++;
        if (rank.answer.size < 1000 || rank.answer.has(a.ttl)) rank.answer.set(a.ttl, (rank.answer.get(a.ttl) ?? 0) + 1);
      }
    });
    if (aSeen && line.qtype !== 'A') this.aToNonA++;
  }

  result(): DnsScanSummary {
    const rec = <K>(m: Map<K, number>) => Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [String(k), v]));
    const ranks = this.ranks.map((r, i) => ({ rank: i + 1, answer_ttls: rec(r.answer), ip_ttls: rec(r.ip) }));
    const ipSets = this.ranks.map((r) => [...r.ip.keys()].filter((k) => k !== 'unknown'));
    let behaviour: string;
    if (ipSets.every((s) => s.length === 0)) behaviour = 'IP TTL not observed (needs packet capture: root)';
    else if (ipSets.every((s) => s.length <= 1)) behaviour = `one IP TTL per reply rank (${ipSets.map((s) => s[0] ?? '?').join(', ')})`;
    else
      behaviour = `IP TTL varies within a rank (${ipSets.map((s) => s.slice(0, 5).join('/')).join(', ')}): an injector copying the query's TTL, or injectors at several hops`;
    const maxReplies = Math.max(0, ...this.perQuery.keys());
    return {
      queries: this.queries,
      injected: this.injected,
      replies_per_query: rec(this.perQuery),
      injectors: maxReplies,
      forged_pool: {
        distinct: this.pool.size + (this.poolOverflow ? 1 : 0),
        top: [...this.pool].sort((a, b) => b[1] - a[1]).slice(0, TOP),
      },
      by_rank: ranks,
      ttl_behaviour: behaviour,
      forged_a_to_non_a: this.aToNonA,
      forged_aaaa: this.aaaa,
    };
  }
}
