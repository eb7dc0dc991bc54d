// `wallscope fet sink` and `wallscope fet test HOST:PORT`: is the fully-encrypted-traffic rule
// (censors.md section 7; Wu et al., USENIX Security 2023) active on the path to a sink we run?
// Method, after the paper's: fresh TCP connections whose first data packet is random and not
// exempt (classifyFirstPacket says so), and exempt controls (the same kind of bytes behind a
// printable prefix); a blocked flow drops the client's later packets, so the sink's byte count
// receipt for a second segment never arrives. After a block, controls every `residualStepMs` find
// when (client, server, port) is let through again (the residual). A sequential probability ratio
// test (Wald 1945) on the random trials decides between noise (p0) and an active rule (p1).
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { classifyFirstPacket } from '../analysis/index.js';
import { classifyError, type Failure, type Measurement } from '../model/index.js';
import { probeLocation } from './geo.js';
import { isBogonAddress } from './policy.js';
import { scrubberFor, scrubValue } from '../analysis/index.js';
import { listenTracked, type TrackedServer } from './tcpserver.js';
import { newReportId } from './webconnectivity.js';
import { ooniEnvelope } from './envelope.js';
import { sleep } from './sleep.js';

/** The sink's receipt: after every read, the 4-byte big-endian count of bytes read so far. Nothing else. */
export function sinkConnection(s: net.Socket, alreadyRead?: Buffer): void {
  let total = 0;
  s.setNoDelay(true);
  s.setTimeout(120_000, () => s.destroy());
  s.on('error', () => undefined);
  const receipt = (d: Buffer): void => {
    total += d.length;
    const r = Buffer.alloc(4);
    r.writeUInt32BE(total >>> 0);
    s.write(r);
  };
  if (alreadyRead) receipt(alreadyRead);
  s.on('data', receipt);
}

export async function startFetSink(o: { host: string; port: number }): Promise<TrackedServer> {
  return listenTracked(o.host, o.port, (s) => sinkConnection(s), 1024);
}

export type TrialKind = 'random' | 'control' | 'residual_probe';
export interface FetTrial {
  kind: TrialKind;
  t: number; // ms since the start
  length: number;
  reason: string | null; // the classification of the first packet
  first_bytes_hex: string;
  outcome: 'pass' | 'dropped' | 'connect_failed';
  failure: Failure | null;
  elapsed_ms: number;
}

/** A non-exempt random first packet (resampled until no exemption holds). */
export function randomNonExempt(len: number): Buffer {
  for (let i = 0; i < 1000; i++) {
    const b = randomBytes(len);
    if (!classifyFirstPacket(b).exempt) return b;
  }
  throw new Error(`no non-exempt packet of ${len} bytes in 1000 draws`);
}

/** An exempt control: random bytes behind six printable ones (Ex2), otherwise alike. */
export function exemptControl(len: number): Buffer {
  const b = randomBytes(len);
  for (let i = 0; i < 6; i++) b[i] = 0x61 + (b[i]! % 26);
  return b;
}

/** One fresh connection: the first packet, then a second segment whose receipt proves the flow is not dropped. */
export function fetTrial(
  host: string,
  port: number,
  first: Buffer,
  timeoutMs: number,
  onLocal?: (ip: string) => void,
): Promise<Pick<FetTrial, 'outcome' | 'failure' | 'elapsed_ms'>> {
  const started = performance.now();
  return new Promise((resolve) => {
    let done = false;
    let connected = false;
    const s = net.connect({ host, port });
    const finish = (outcome: FetTrial['outcome'], failure: Failure | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ outcome, failure, elapsed_ms: Math.round(performance.now() - started) });
    };
    const timer = setTimeout(() => finish(connected ? 'dropped' : 'connect_failed', 'generic_timeout_error'), timeoutMs);
    const second = randomBytes(16);
    const want = first.length + second.length;
    let got = Buffer.alloc(0);
    s.setNoDelay(true);
    s.on('connect', () => {
      connected = true;
      if (s.localAddress) onLocal?.(s.localAddress);
      s.write(first);
      // A separate segment, later: the censor has seen the first one alone.
      setTimeout(() => {
        if (!done) s.write(second);
      }, 20);
    });
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      while (got.length >= 4) {
        const n = got.readUInt32BE(0);
        got = got.subarray(4);
        if (n >= want) return finish('pass', null);
      }
    });
    s.on('error', (e) => finish(connected ? 'dropped' : 'connect_failed', classifyError(e)));
    s.on('close', () => finish(connected ? 'dropped' : 'connect_failed', 'connection_reset'));
  });
}

export interface FetTestOptions {
  /** Per-trial timeout (default 3000 ms). */
  timeoutMs?: number;
  /** Connections in all (default 400) and wall time (default 3600 s). */
  maxTrials?: number;
  maxSeconds?: number;
  /** SPRT: noise rate p0 and the smallest rate worth detecting p1; error rates alpha, beta (default 0.01, 0.08, 0.01, 0.01). */
  p0?: number;
  p1?: number;
  alpha?: number;
  beta?: number;
  /** Between residual probes after a block (default 10 s), and the longest residual looked for (default 600 s). */
  residualStepMs?: number;
  maxResidualS?: number;
  /** First packet length (default 64). */
  length?: number;
  /** One control every N random trials (default 3). */
  controlEvery?: number;
  onTrial?: (t: FetTrial) => void;
}

export interface FetTestKeys {
  x_fet_verdict: 'active' | 'not_active' | 'inconclusive';
  x_fet_stop_reason: 'sprt_active' | 'sprt_not_active' | 'controls_blocked' | 'max_trials' | 'max_time';
  x_fet_confidence: number;
  x_fet_rate_estimate: number | null;
  x_fet_residual_s: number | null;
  x_fet_trials_spent: number;
  x_fet_random: { sent: number; blocked: number };
  x_fet_control: { sent: number; blocked: number };
  x_fet_sprt: { p0: number; p1: number; alpha: number; beta: number; llr: number; upper: number; lower: number };
  x_fet_trials: FetTrial[];
  x_fet_elapsed_s: number;
}

/** The sequential experiment; every connection is accounted for in x_fet_trials. */
export async function runFetTest(host: string, port: number, o: FetTestOptions = {}): Promise<Measurement<FetTestKeys>> {
  const startWall = new Date();
  const run = new FetRun(host, port, o);
  await run.loop();
  return fetMeasurement(host, port, run.testKeys(), run.localIps, startWall, Math.round(run.elapsed()) / 1000);
}

/** The test's bounds and its sequential probability ratio test (Wald's SPRT) from the options. */
function fetSettings(o: FetTestOptions) {
  const p0 = o.p0 ?? 0.01;
  const p1 = o.p1 ?? 0.08;
  const alpha = o.alpha ?? 0.01;
  const beta = o.beta ?? 0.01;
  return {
    timeoutMs: o.timeoutMs ?? 3000,
    maxTrials: o.maxTrials ?? 400,
    maxMs: (o.maxSeconds ?? 3600) * 1000,
    p0,
    p1,
    alpha,
    beta,
    step: o.residualStepMs ?? 10_000,
    maxResidualMs: (o.maxResidualS ?? 600) * 1000,
    len: o.length ?? 64,
    every: o.controlEvery ?? 3,
    upper: Math.log((1 - beta) / alpha),
    lower: Math.log(beta / (1 - alpha)),
    winBlocked: Math.log(p1 / p0),
    winPassed: Math.log((1 - p1) / (1 - p0)),
  };
}

/** One FET test in progress: the trials so far, the SPRT's log-likelihood ratio, why it stopped. */
class FetRun {
  readonly trials: FetTrial[] = [];
  readonly random = { sent: 0, blocked: 0 };
  readonly control = { sent: 0, blocked: 0 };
  readonly residuals: number[] = [];
  // Our own source addresses: the location comes from a public one (offline database), and every
  // one is scrubbed from the measurement, as web_connectivity does.
  readonly localIps = new Set<string>();
  llr = 0;
  stop: FetTestKeys['x_fet_stop_reason'] | null = null;
  private readonly s: ReturnType<typeof fetSettings>;
  private readonly t0 = performance.now();

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly o: FetTestOptions,
  ) {
    this.s = fetSettings(o);
  }

  elapsed(): number {
    return performance.now() - this.t0;
  }

  private async one(kind: TrialKind): Promise<FetTrial> {
    const first = kind === 'random' ? randomNonExempt(this.s.len) : exemptControl(this.s.len);
    const t = Math.round(this.elapsed());
    const r = await fetTrial(this.host, this.port, first, this.s.timeoutMs, (ip) => this.localIps.add(ip));
    const trial: FetTrial = {
      kind,
      t,
      length: first.length,
      reason: classifyFirstPacket(first).reason,
      first_bytes_hex: first.subarray(0, 16).toString('hex'),
      ...r,
    };
    this.trials.push(trial);
    this.o.onTrial?.(trial);
    return trial;
  }

  private budgetLeft(): boolean {
    if (this.trials.length >= this.s.maxTrials) {
      this.stop = 'max_trials';
      return false;
    }
    if (this.elapsed() >= this.s.maxMs) {
      this.stop = 'max_time';
      return false;
    }
    return true;
  }

  async loop(): Promise<void> {
    const { s, random } = this;
    while (this.stop === null && this.budgetLeft()) {
      // Controls first and between random trials: a path that blocks everything to HOST:PORT (by
      // address, or a dead sink) says nothing about the FET rule.
      if (random.sent % s.every === 0) {
        const next = await this.controlTrial();
        if (next === 'stop') break;
        if (next === 'again') continue;
      }
      const r = await this.one('random');
      random.sent++;
      if (r.outcome === 'pass') {
        this.llr += s.winPassed;
      } else {
        random.blocked++;
        this.llr += s.winBlocked;
        await this.waitOutResidual(r.t);
      }
      if (this.llr >= s.upper) this.stop = 'sprt_active';
      else if (this.llr <= s.lower) this.stop = 'sprt_not_active';
    }
  }

  /** A control trial: go on to a random trial, try again (a blocked control), or stop. */
  private async controlTrial(): Promise<'go' | 'again' | 'stop'> {
    const { control } = this;
    const c = await this.one('control');
    control.sent++;
    if (c.outcome !== 'pass') {
      control.blocked++;
      if (control.blocked >= 2 && control.blocked * 2 >= control.sent) {
        this.stop = 'controls_blocked';
        return 'stop';
      }
      return 'again';
    }
    return this.budgetLeft() ? 'go' : 'stop';
  }

  /**
   * Honour the residual: probe with controls until (client, server, port) is let through.
   * From the blocked flow's start: the censor set the residual when it saw that first packet.
   */
  private async waitOutResidual(blockedAt: number): Promise<void> {
    const { s } = this;
    let cleared = false;
    while (this.budgetLeft() && this.elapsed() - blockedAt < s.maxResidualMs) {
      await sleep(Math.min(s.step, Math.max(0, s.maxMs - this.elapsed())));
      if (!this.budgetLeft()) break;
      const p = await this.one('residual_probe');
      if (p.outcome === 'pass') {
        cleared = true;
        break;
      }
    }
    if (cleared) this.residuals.push((this.elapsed() - blockedAt) / 1000);
  }

  testKeys(): FetTestKeys {
    const { s, stop, random, residuals, llr } = this;
    const verdict: FetTestKeys['x_fet_verdict'] =
      stop === 'sprt_active' ? 'active' : stop === 'sprt_not_active' || stop === 'controls_blocked' ? 'not_active' : 'inconclusive';
    return {
      x_fet_verdict: verdict,
      x_fet_stop_reason: stop ?? 'max_trials',
      x_fet_confidence: verdict === 'active' ? 1 - s.alpha : verdict === 'not_active' && stop !== 'controls_blocked' ? 1 - s.beta : 0,
      x_fet_rate_estimate: random.sent ? random.blocked / random.sent : null,
      x_fet_residual_s: residuals.length ? Math.round((residuals.reduce((a, b) => a + b, 0) / residuals.length) * 10) / 10 : null,
      x_fet_trials_spent: this.trials.length,
      x_fet_random: random,
      x_fet_control: this.control,
      x_fet_sprt: { p0: s.p0, p1: s.p1, alpha: s.alpha, beta: s.beta, llr: Math.round(llr * 1000) / 1000, upper: s.upper, lower: s.lower },
      x_fet_trials: this.trials,
      x_fet_elapsed_s: Math.round(this.elapsed()) / 1000,
    };
  }
}

/** The OONI envelope around the test keys, located by our public address and scrubbed of our own addresses. */
function fetMeasurement(
  host: string,
  port: number,
  testKeys: FetTestKeys,
  localIps: Set<string>,
  startWall: Date,
  runtime: number,
): Measurement<FetTestKeys> {
  const ownIps = [...localIps].filter((ip) => !isBogonAddress(ip));
  const loc = probeLocation(ownIps[0] ?? null);
  const m = ooniEnvelope<FetTestKeys>({
    testName: 'x_fet',
    testVersion: '0.1.0',
    input: net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`,
    start: startWall,
    runtime,
    location: loc,
    reportId: newReportId(loc.probe_cc, loc.probe_asn, startWall),
    testKeys,
  });
  const scrubbed = scrubValue(m, scrubberFor(ownIps));
  scrubbed.probe_ip = '127.0.0.1';
  return scrubbed;
}
