// Change detection (DESIGN.md "Time"; "Contracts of the next capabilities": Changes): per
// (target, probe_cc, probe_asn, region) the state over time, and the changes between states.
// Pure: one step per measurement, in measurement time order. The store (src/store/changes.ts)
// persists the per-key state and the changes, incrementally on ingest and by a full rebuild, both
// through stepChange(), so they cannot disagree.
//
// Hysteresis: a new state is confirmed only after `confirmations` consecutive measurements agree
// on it (default 2), so one flaky measurement (a timeout, a lost packet) is never a change; a
// measurement back in the confirmed state cancels the pending one. Measurements the analysis could
// not decide (status unknown, OONI blocking null: the control failed) carry no evidence either way
// and are skipped. The change is dated by the FIRST measurement in the new state (when it was first
// seen), and its evidence is the last measurement in the old state followed by those in the new.

/** One measurement as change detection reads it (a flat store row). */
export interface ChangeObservation {
  uid: string;
  /** Unix seconds (measurement_start_time). */
  ts: number;
  status: string;
  /** OONI's blocking as text: 'false', a class ('dns', 'tcp_ip', 'http-failure', 'http-diff') or null. */
  blocking: string | null;
  mechanism: string | null;
  layer: string | null;
}

/** What a target looks like from one network: blocking class (or 'false'), mechanism, layer. */
export interface TrackedState {
  blocking: string;
  mechanism: string;
  layer: string | null;
}

export interface KeyState {
  state: TrackedState | null;
  /** When the confirmed state was first seen (unix seconds), and by which measurement. */
  since: number | null;
  sinceUid: string | null;
  lastUid: string | null;
  lastTs: number;
  /** The measurement that last showed the confirmed state (the "from" evidence of the next change). */
  lastInStateUid: string | null;
  pending: { state: TrackedState; uids: string[]; firstTs: number } | null;
}

export interface DetectedChange {
  at: number;
  from: TrackedState;
  to: TrackedState;
  /** The layer of the new state when blocked, else the old state's (what was lifted). */
  layer: string | null;
  evidence: string[];
}

export const DEFAULT_CONFIRMATIONS = 2;

export function emptyKeyState(): KeyState {
  return { state: null, since: null, sinceUid: null, lastUid: null, lastTs: -Infinity, lastInStateUid: null, pending: null };
}

/** The state a measurement shows, or null when it shows none (undecided). */
export function observedState(o: ChangeObservation): TrackedState | null {
  if (o.status === 'unknown' || o.blocking === null) return null;
  if (o.blocking === 'false') return { blocking: 'false', mechanism: 'none', layer: null };
  return { blocking: o.blocking, mechanism: o.mechanism ?? 'unknown', layer: o.layer ?? null };
}

/**
 * Same blocking and mechanism, and the same layer when both name one: a layer the analysis could
 * not attribute (null, 'unknown') is no evidence of a move between layers, so attribution that
 * comes and goes is not a change, while a block moving from the national to a regional censor is.
 */
export function sameState(a: TrackedState | null, b: TrackedState | null): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.blocking !== b.blocking || a.mechanism !== b.mechanism) return false;
  const known = (l: string | null) => l !== null && l !== 'unknown';
  return !(known(a.layer) && known(b.layer) && a.layer !== b.layer);
}

/** One measurement of a key, in time order: the next state and the change it confirms, if any. */
export function stepChange(
  k: KeyState,
  o: ChangeObservation,
  confirmations = DEFAULT_CONFIRMATIONS,
): { next: KeyState; change: DetectedChange | null } {
  const seen = observedState(o);
  const next: KeyState = { ...k, lastUid: o.uid, lastTs: Math.max(k.lastTs, o.ts) };
  if (seen === null) return { next, change: null };
  if (sameState(seen, k.state)) return { next: { ...next, pending: null, lastInStateUid: o.uid }, change: null };
  const pending =
    k.pending && sameState(k.pending.state, seen)
      ? { ...k.pending, uids: [...k.pending.uids, o.uid] }
      : { state: seen, uids: [o.uid], firstTs: o.ts };
  if (pending.uids.length < Math.max(1, confirmations)) return { next: { ...next, pending }, change: null };
  const confirmed: KeyState = {
    ...next,
    state: seen,
    since: pending.firstTs,
    sinceUid: pending.uids[0]!,
    lastInStateUid: o.uid,
    pending: null,
  };
  // The first state of a key is where observation starts, not a change.
  if (k.state === null) return { next: confirmed, change: null };
  const layer = seen.blocking !== 'false' ? seen.layer : k.state.layer;
  return {
    next: confirmed,
    change: {
      at: pending.firstTs,
      from: k.state,
      to: seen,
      layer,
      evidence: [...(k.lastInStateUid ? [k.lastInStateUid] : []), ...pending.uids],
    },
  };
}

/** OONI's blocking value from its text form ('false' -> false). */
export function ooniBlocking(text: string): string | false {
  return text === 'false' ? false : text;
}

// What the changes API answers (GET /api/v1/changes, /api/v1/states): stored by
// src/store/changes.ts, read by the explorer's Changes page.

/** The state of a key on one side of a change. */
export interface ChangeSide {
  blocking: string | false;
  mechanism: string;
}

/** A change as the API answers it (DESIGN.md "Changes"), plus its id and when it was detected. */
export interface ChangeRecord {
  id: number;
  target: string;
  probe_cc: string;
  probe_asn: string;
  region: string | null;
  layer: string | null;
  at: string;
  from: ChangeSide;
  to: ChangeSide;
  evidence: string[];
  detected_at: string;
}

/** The current state of a key ("blocked since"). */
export interface StateRecord {
  target: string;
  domain: string | null;
  probe_cc: string;
  probe_asn: string;
  region: string | null;
  blocking: string | false;
  mechanism: string;
  layer: string | null;
  since: string;
  since_uid: string;
  last_measurement_uid: string | null;
}
