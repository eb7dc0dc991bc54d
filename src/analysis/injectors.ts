// Which injector forged the resets a probe captured (`measure --capture`, test_keys.x_captured).
// Injectors are told apart by their packets (censors.md sections 3, 5, 9; SP25 table 2): how many,
// which flags, DF, the IP ID and TTL ranges, the TCP window, a payload. Those fingerprints are DATA
// (src/analysis/data/injector-fingerprints.json, which a researcher extends without touching code:
// the GFW's 2025 port-443 injector matched no known device, so the table must grow); this module
// parses that data and matches packets against it. Pure: text in, fingerprints out; no I/O.
import { LAYERS, type Layer } from '../model/index.js';

export interface InjectorFingerprint {
  name: string;
  layer: Layer;
  /** Who, in words: "the Henan provincial firewall". */
  label: string;
  source: string;
  /** Number of forged resets per trigger. */
  count?: number;
  /** TCP flags, e.g. "RST+ACK" (the names of packet.ts tcpFlagNames). */
  flags?: string;
  df?: boolean;
  ipId?: [number, number];
  ttl?: [number, number];
  window?: [number, number];
  /** Exact payload, lower-case hex ("" = none). */
  payloadHex?: string;
  /** true: the injector resets the client only (Henan); false: both ends (the GFW). */
  clientOnly?: boolean;
  /** Whether the injector keeps resetting the endpoint afterwards (residual blocking). */
  residual?: boolean;
}

export class InjectorFingerprintError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InjectorFingerprintError';
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A 16-bit or 8-bit field: a number or "0x..." text. */
function fieldNumber(v: unknown, where: string, max: number): number {
  const n =
    typeof v === 'number'
      ? v
      : typeof v === 'string' && /^0x[0-9a-f]+$/i.test(v)
        ? parseInt(v, 16)
        : typeof v === 'string' && /^\d+$/.test(v)
          ? Number(v)
          : NaN;
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new InjectorFingerprintError(`${where}: expected an integer 0..${max} (or "0x..."), got ${JSON.stringify(v)}`);
  return n;
}

/** A value or an inclusive range [low, high]. */
function range(v: unknown, where: string, max: number): [number, number] {
  if (Array.isArray(v)) {
    if (v.length !== 2) throw new InjectorFingerprintError(`${where}: expected [low, high], got ${v.length} values`);
    const lo = fieldNumber(v[0], `${where}[0]`, max);
    const hi = fieldNumber(v[1], `${where}[1]`, max);
    if (lo > hi) throw new InjectorFingerprintError(`${where}: low ${lo} is above high ${hi}`);
    return [lo, hi];
  }
  const n = fieldNumber(v, where, max);
  return [n, n];
}

const KNOWN_KEYS = new Set([
  'name',
  'layer',
  'label',
  'source',
  'count',
  'flags',
  'df',
  'ip_id',
  'ttl',
  'window',
  'payload_hex',
  'client_only',
  'residual',
  'notes',
]);
const FLAG_NAMES = new Set(['SYN', 'RST', 'FIN', 'PSH', 'ACK']);

/**
 * Parses the fingerprint file: `{"fingerprints": [{name, layer, label, source, count?, flags?, df?,
 * ip_id?, ttl?, window?, payload_hex?, client_only?, residual?, notes?}]}`. An absent key matches
 * anything. Throws InjectorFingerprintError naming the file, the entry and the key.
 */
export function parseInjectorFingerprints(text: string, source: string): InjectorFingerprint[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InjectorFingerprintError(`${source}: not JSON: ${(e as Error).message}`);
  }
  if (!isObj(doc) || !Array.isArray(doc.fingerprints)) throw new InjectorFingerprintError(`${source}: expected {"fingerprints": [...]}`);
  const seen = new Set<string>();
  return doc.fingerprints.map((f, i) => {
    const at = `${source}: fingerprints[${i}]`;
    if (!isObj(f)) throw new InjectorFingerprintError(`${at}: expected an object`);
    for (const k of Object.keys(f)) if (!KNOWN_KEYS.has(k)) throw new InjectorFingerprintError(`${at}: unknown key "${k}"`);
    const text = (k: string): string => {
      if (typeof f[k] !== 'string' || !(f[k] as string).trim())
        throw new InjectorFingerprintError(`${at}.${k}: expected a non-empty string`);
      return (f[k] as string).trim();
    };
    const bool = (k: string): boolean | undefined => {
      if (f[k] === undefined) return undefined;
      if (typeof f[k] !== 'boolean') throw new InjectorFingerprintError(`${at}.${k}: expected true or false`);
      return f[k] as boolean;
    };
    const name = text('name');
    if (seen.has(name)) throw new InjectorFingerprintError(`${at}.name: "${name}" appears twice`);
    seen.add(name);
    const layer = text('layer');
    if (!(LAYERS as readonly string[]).includes(layer))
      throw new InjectorFingerprintError(`${at}.layer: expected one of ${LAYERS.join(', ')}, got "${layer}"`);
    const out: InjectorFingerprint = { name, layer: layer as Layer, label: text('label'), source: text('source') };
    if (f.count !== undefined) {
      out.count = fieldNumber(f.count, `${at}.count`, 64);
      if (out.count < 1) throw new InjectorFingerprintError(`${at}.count: expected at least 1`);
    }
    if (f.flags !== undefined) {
      const names = text('flags').toUpperCase().split('+');
      if (names.some((n) => !FLAG_NAMES.has(n)))
        throw new InjectorFingerprintError(`${at}.flags: expected names like "RST+ACK", got "${String(f.flags)}"`);
      out.flags = canonicalFlags(names);
    }
    const df = bool('df');
    if (df !== undefined) out.df = df;
    if (f.ip_id !== undefined) out.ipId = range(f.ip_id, `${at}.ip_id`, 0xffff);
    if (f.ttl !== undefined) out.ttl = range(f.ttl, `${at}.ttl`, 255);
    if (f.window !== undefined) out.window = range(f.window, `${at}.window`, 0xffff);
    if (f.payload_hex !== undefined) {
      if (typeof f.payload_hex !== 'string' || !/^([0-9a-f]{2})*$/i.test(f.payload_hex.replace(/\s+/g, '')))
        throw new InjectorFingerprintError(`${at}.payload_hex: expected hex bytes`);
      out.payloadHex = f.payload_hex.replace(/\s+/g, '').toLowerCase();
    }
    const co = bool('client_only');
    if (co !== undefined) out.clientOnly = co;
    const res = bool('residual');
    if (res !== undefined) out.residual = res;
    return out;
  });
}

/** packet.ts tcpFlagNames' order, so that "ACK+RST" in a file equals "RST+ACK" on the wire. */
function canonicalFlags(names: string[]): string {
  return ['SYN', 'RST', 'FIN', 'PSH', 'ACK'].filter((n) => names.includes(n)).join('+');
}

/** A captured packet as the analysis reads it (test_keys.x_captured[].packets[], checked). */
export interface PacketView {
  dir: 'in' | 'out';
  flags: string | null;
  ttl: number | null;
  ipId: number | null;
  df: boolean | null;
  window: number | null;
  payloadHex: string;
  tMs: number | null;
}

export interface CapturedView {
  ref: string;
  operation: string;
  ip: string | null;
  port: number | null;
  failure: string | null;
  packets: PacketView[];
}

const inRange = (v: number | null, r: [number, number] | undefined): boolean => r === undefined || (v !== null && v >= r[0] && v <= r[1]);

/** Whether every reset matches `f` (and there are as many as it sends). */
function matches(f: InjectorFingerprint, resets: PacketView[]): boolean {
  if (f.count !== undefined && resets.length !== f.count) return false;
  return resets.every(
    (p) =>
      (f.flags === undefined || p.flags === f.flags) &&
      (f.df === undefined || p.df === f.df) &&
      inRange(p.ipId, f.ipId) &&
      inRange(p.ttl, f.ttl) &&
      inRange(p.window, f.window) &&
      (f.payloadHex === undefined || p.payloadHex === f.payloadHex),
  );
}

/** How much a fingerprint pins down: a payload or a window says more than a wide TTL range. */
function specificity(f: InjectorFingerprint): number {
  const r = (x: [number, number] | undefined): number => (x === undefined ? 0 : x[0] === x[1] ? 2 : 1);
  return (
    (f.count !== undefined ? 1 : 0) +
    (f.flags !== undefined ? 1 : 0) +
    (f.df !== undefined ? 1 : 0) +
    r(f.ipId) +
    r(f.ttl) +
    (f.window ? 4 : 0) +
    (f.payloadHex !== undefined ? 4 : 0)
  );
}

/** The inbound resets of a capture (what an injector sends). */
export function resetsOf(c: CapturedView): PacketView[] {
  return c.packets.filter((p) => p.dir === 'in' && p.flags !== null && p.flags.split('+').includes('RST'));
}

/** The most specific fingerprint that all the resets match, or null. */
export function matchInjector(fps: readonly InjectorFingerprint[], resets: PacketView[]): InjectorFingerprint | null {
  if (resets.length === 0) return null;
  let best: InjectorFingerprint | null = null;
  for (const f of fps) if (matches(f, resets) && (best === null || specificity(f) > specificity(best))) best = f;
  return best;
}

/**
 * The resets split by injector, in arrival order. On a path with two censors that both block a
 * name (a provincial and the national firewall, SP25), each sends its own burst: the first is what
 * ended the connection. One injector's burst shares flags, DF and payload (its TTL and IP ID may vary).
 */
export function injectorBursts(resets: PacketView[]): PacketView[][] {
  const ordered = [...resets].sort((a, b) => (a.tMs ?? 0) - (b.tMs ?? 0));
  const groups = new Map<string, PacketView[]>();
  for (const p of ordered) {
    const k = `${p.flags}|${p.df}|${p.payloadHex}`;
    (groups.get(k) ?? groups.set(k, []).get(k)!).push(p);
  }
  return [...groups.values()];
}

const COUNT_WORDS = ['no', 'one', 'two', 'three', 'four', 'five'];

/** "one RST+ACK with TTL 58, IP ID 1, DF=0 and the 10-byte payload 0102030405060708 0900". */
export function describeResets(resets: PacketView[]): string {
  const n = resets.length;
  const values = (get: (p: PacketView) => number | null): string => {
    const vs = [...new Set(resets.map(get).filter((x): x is number => x !== null))];
    return vs.length <= 3 ? vs.join('/') : `${Math.min(...vs)}-${Math.max(...vs)}`;
  };
  const flags = [...new Set(resets.map((p) => p.flags ?? '?'))].join('/');
  const parts = [`TTL ${values((p) => p.ttl)}`, `IP ID ${values((p) => p.ipId)}`];
  const dfs = [...new Set(resets.map((p) => (p.df === null ? '?' : p.df ? '1' : '0')))];
  parts.push(`DF=${dfs.join('/')}`);
  const windows = values((p) => p.window);
  if (windows && windows !== '0') parts.push(`window ${windows}`);
  const payloads = [...new Set(resets.map((p) => p.payloadHex))].filter(Boolean);
  const last = payloads.length ? ` and the ${payloads[0]!.length / 2}-byte payload ${payloads[0]!.slice(0, 40)}` : ', no payload';
  return `${COUNT_WORDS[n] ?? String(n)} ${flags}${n > 1 ? 's' : ''} with ${parts.join(', ')}${last}`;
}
