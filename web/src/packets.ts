// The packet evidence of one measurement (`measure --capture`: test_keys.x_captured, and the hop
// table of `locate`: test_keys.x_locate) made safe to show: every value checked, strings kept as
// strings (they are rendered as text nodes), long payloads cut. Pure: measurement in, rows out.
import type { Measurement } from '../../src/model/measurement.js';

export interface PacketRow {
  dir: string;
  tMs: string;
  from: string;
  to: string;
  ttl: string;
  ipId: string;
  df: string;
  flags: string;
  window: string;
  seqRel: string;
  ackRel: string;
  tcpHeader: string;
  payload: string;
}

export interface CapturedStep {
  ref: string;
  operation: string;
  address: string;
  failure: string;
  query: string;
  triggerMs: string;
  packets: PacketRow[];
}

export interface HopRow {
  ref: string;
  operation: string;
  address: string;
  hop: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown, max: number): unknown[] => (Array.isArray(v) ? v.slice(0, max) : []);
const text = (v: unknown, max = 80): string =>
  typeof v === 'string'
    ? v.slice(0, max)
    : typeof v === 'number' && Number.isFinite(v)
      ? String(v)
      : typeof v === 'boolean'
        ? v
          ? '1'
          : '0'
        : '–';

const PAYLOAD_SHOWN = 96;

function packetRow(p: Obj): PacketRow {
  const id =
    typeof p.ip_id === 'number' && Number.isInteger(p.ip_id) ? `0x${p.ip_id.toString(16).padStart(4, '0')} (${p.ip_id})` : text(p.ip_id);
  const hex = typeof p.payload_hex === 'string' ? p.payload_hex : '';
  const len = typeof p.payload_length === 'number' ? p.payload_length : hex.length / 2;
  const payload = len === 0 && !hex ? '–' : `${hex.slice(0, PAYLOAD_SHOWN)}${hex.length > PAYLOAD_SHOWN ? '…' : ''} (${len} B)`;
  const t = typeof p.t_ms === 'number' && Number.isFinite(p.t_ms) ? `${p.t_ms >= 0 ? '+' : ''}${p.t_ms.toFixed(2)}` : '–';
  return {
    dir: text(p.dir, 8),
    tMs: t,
    from: text(p.src),
    to: text(p.dst),
    ttl: text(p.ttl),
    ipId: id,
    df: text(p.df),
    flags: text(p.flags, 40),
    window: text(p.window),
    seqRel: text(p.seq_rel),
    ackRel: text(p.ack_rel),
    tcpHeader: text(p.tcp_header_length),
    payload,
  };
}

export function capturedSteps(m: Measurement): CapturedStep[] {
  const tk = isObj(m.test_keys) ? (m.test_keys as Obj) : {};
  const out: CapturedStep[] = [];
  arr(tk.x_captured, 100).forEach((c, i) => {
    if (!isObj(c)) return;
    const q = isObj(c.query) ? `${text(c.query.hostname, 253)} ${text(c.query.query_type, 10)}` : '';
    const trig = typeof c.trigger_t === 'number' && Number.isFinite(c.trigger_t) ? `+${(c.trigger_t * 1000).toFixed(1)} ms` : '–';
    out.push({
      ref: `x_captured[${i}]`,
      operation: text(c.operation, 40),
      address: text(c.address),
      failure: c.failure === null ? '' : text(c.failure, 120),
      query: q,
      triggerMs: trig,
      packets: arr(c.packets, 64).filter(isObj).map(packetRow),
    });
  });
  return out;
}

export function hopRows(m: Measurement): HopRow[] {
  const tk = isObj(m.test_keys) ? (m.test_keys as Obj) : {};
  return arr(tk.x_locate, 100)
    .map((h, i) =>
      isObj(h) ? { ref: `x_locate[${i}]`, operation: text(h.operation, 40), address: text(h.address), hop: text(h.hop) } : null,
    )
    .filter((h): h is HopRow => h !== null);
}
