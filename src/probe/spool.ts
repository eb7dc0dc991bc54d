// The probe's local spool: every measurement is written to disk BEFORE any upload, one file per
// measurement, atomically (write a temp file, fsync, rename, fsync the directory), and deleted only
// after the collector acknowledged it with a measurement_uid. A crash or an offline collector loses
// nothing; a retry after a lost acknowledgement is harmless (the collector is idempotent on uid).
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Measurement } from '../model/index.js';
import { sleep } from './sleep.js';

const TMP_PREFIX = '.tmp-';

/** $WALLSCOPE_SPOOL, else ~/.local/share/wallscope/spool. */
export function defaultSpoolDir(): string {
  return process.env.WALLSCOPE_SPOOL || join(homedir(), '.local', 'share', 'wallscope', 'spool');
}
export const REJECTED_DIR = 'rejected';

async function fsyncDir(dir: string): Promise<void> {
  // Robustness: without this, a power loss can forget the rename even though the data is on disk.
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // some filesystems refuse fsync on directories; the rename is still atomic
  } finally {
    await fh.close();
  }
}

/** Writes one measurement into the spool; resolves with its file once it is durable. */
export async function spoolMeasurement(dir: string, m: Measurement): Promise<string> {
  await mkdir(dir, { recursive: true });
  const name = `${Date.now().toString().padStart(14, '0')}-${process.pid}-${randomBytes(6).toString('hex')}.json`;
  const tmp = join(dir, TMP_PREFIX + name);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(JSON.stringify(m));
    await fh.sync();
  } finally {
    await fh.close();
  }
  const file = join(dir, name);
  await rename(tmp, file);
  await fsyncDir(dir);
  return file;
}

/** Spooled files waiting for upload, oldest first. */
export async function pendingFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names
    .filter((n) => n.endsWith('.json') && !n.startsWith(TMP_PREFIX) && !n.startsWith('.'))
    .sort()
    .map((n) => join(dir, n));
}

export type SpoolEvent =
  | { type: 'uploaded'; file: string; measurement_uid: string }
  | { type: 'retry'; file: string; attempt: number; delayMs: number; reason: string }
  | { type: 'rejected'; file: string; status: number; reason: string }
  | { type: 'gave_up'; file: string; reason: string };

export interface FlushOptions {
  /** Retries per file after the first attempt (default 5). */
  retries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per request (default 30 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
  onEvent?: (e: SpoolEvent) => void;
  /**
   * Upload in NDJSON batches through POST /api/v1/submit_measurements (wallscope collectors) of at most
   * this many files (default 500; 0: one POST per measurement). A collector without that route (404,
   * 405, 413, 415: OONI's, or a smaller limit) gets the rest one by one.
   */
  batchSize?: number;
  /** Most bytes in one batch (default 8 MiB, half the collector's default limit). */
  batchBytes?: number;
}

export interface FlushResult {
  uploaded: number;
  rejected: number;
  remaining: number;
  errors: string[];
}

type Attempt = { kind: 'ok'; uid: string } | { kind: 'retry'; reason: string } | { kind: 'reject'; status: number; reason: string };

/** One POST and its answer's text; a network failure or a lost body is a retry with its reason. */
async function postOnce(
  url: string,
  contentType: string,
  body: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ status: number; ok: boolean; text: string } | { kind: 'retry'; reason: string }> {
  const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])];
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body, signal: AbortSignal.any(signals) });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    return { kind: 'retry', reason: `network: ${err.cause?.code ?? err.name}: ${err.message}`.slice(0, 200) };
  }
  try {
    return { status: res.status, ok: res.ok, text: await res.text() };
  } catch {
    return { kind: 'retry', reason: `HTTP ${res.status}: body lost` };
  }
}

async function uploadOnce(url: string, body: string, timeoutMs: number, signal?: AbortSignal): Promise<Attempt> {
  const res = await postOnce(url, 'application/json', body, timeoutMs, signal);
  if ('kind' in res) return res;
  const text = res.text.slice(0, 2000);
  if (res.ok) {
    try {
      const uid = (JSON.parse(text) as { measurement_uid?: unknown }).measurement_uid;
      if (typeof uid === 'string' && uid) return { kind: 'ok', uid };
    } catch {
      // fall through: an answer without a uid is not an acknowledgement
    }
    return { kind: 'retry', reason: `HTTP ${res.status} without a measurement_uid` };
  }
  if (res.status === 408 || res.status === 429 || res.status >= 500)
    return { kind: 'retry', reason: `HTTP ${res.status}: ${text.slice(0, 160)}` };
  return { kind: 'reject', status: res.status, reason: text.slice(0, 300) };
}

type BatchAttempt =
  | { kind: 'ok'; results: Array<{ line?: unknown; measurement_uid?: unknown; error?: unknown; code?: unknown; statusCode?: unknown }> }
  | { kind: 'unsupported'; reason: string }
  | { kind: 'retry'; reason: string };

async function uploadBatchOnce(url: string, body: string, timeoutMs: number, signal?: AbortSignal): Promise<BatchAttempt> {
  const res = await postOnce(url, 'application/x-ndjson', body, timeoutMs, signal);
  if ('kind' in res) return res;
  const { text } = res;
  if ([404, 405, 413, 415].includes(res.status)) return { kind: 'unsupported', reason: `HTTP ${res.status}` };
  if (res.status === 408 || res.status === 429 || res.status >= 500)
    return { kind: 'retry', reason: `HTTP ${res.status}: ${text.slice(0, 160)}` };
  if (res.ok) {
    try {
      const results = (JSON.parse(text) as { results?: unknown }).results;
      if (Array.isArray(results)) return { kind: 'ok', results };
    } catch {
      // fall through
    }
  }
  // Anything else (another 4xx for the whole batch, or a 200 that is not a batch answer): the
  // measurements go one by one, where each gets its own answer.
  return { kind: 'unsupported', reason: `HTTP ${res.status}: ${text.slice(0, 160)}` };
}

type Spooled = { file: string; text: string };
type BatchResult = Extract<BatchAttempt, { kind: 'ok' }>['results'][number];

/** One flush of a spool directory: its settings, its tally, and the steps flushSpool takes. */
class Flush {
  readonly out: FlushResult = { uploaded: 0, rejected: 0, remaining: 0, errors: [] };
  private readonly retries: number;
  private readonly base: number;
  private readonly max: number;
  private readonly timeoutMs: number;
  private readonly url: string;
  private readonly batchUrl: string;
  readonly batchSize: number;
  private readonly batchBytes: number;

  constructor(
    private readonly dir: string,
    collectorUrl: string,
    private readonly opts: FlushOptions,
  ) {
    this.retries = opts.retries ?? 5;
    this.base = opts.baseDelayMs ?? 500;
    this.max = opts.maxDelayMs ?? 30_000;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    const root = collectorUrl.endsWith('/') ? collectorUrl : collectorUrl + '/';
    this.url = new URL('/api/v1/submit_measurement', root).toString();
    this.batchUrl = new URL('/api/v1/submit_measurements', root).toString();
    this.batchSize = Math.max(0, Math.floor(opts.batchSize ?? 500));
    this.batchBytes = opts.batchBytes ?? 8 * 1024 * 1024;
  }

  get aborted(): boolean {
    return !!this.opts.signal?.aborted;
  }

  /** A spool file's text, checked as JSON; null when it is gone or was moved aside as unreadable. */
  async readSpooled(file: string): Promise<string | null> {
    try {
      const text = await readFile(file, 'utf8');
      JSON.parse(text);
      return text;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null; // another flush took it
      await reject(this.dir, file, 0, `unreadable spool file: ${(e as Error).message}`);
      this.out.rejected++;
      this.opts.onEvent?.({ type: 'rejected', file, status: 0, reason: 'unreadable spool file' });
      return null;
    }
  }

  private backoff(attempt: number): number {
    return Math.round(Math.min(this.max, this.base * 2 ** attempt) * (0.5 + Math.random() / 2));
  }

  /** After a failed attempt: false when it was the last one (gave up, reported), else waits and returns true. */
  private async mayRetry(attempt: number, file: string, what: string, reason: string): Promise<boolean> {
    if (attempt >= this.retries || this.aborted) {
      this.out.errors.push(`${what}: ${reason} (gave up after ${attempt + 1} attempts)`);
      this.opts.onEvent?.({ type: 'gave_up', file, reason });
      return false;
    }
    const delayMs = this.backoff(attempt);
    this.opts.onEvent?.({ type: 'retry', file, attempt: attempt + 1, delayMs, reason });
    await sleep(delayMs, this.opts.signal);
    return true;
  }

  private async uploaded(file: string, uid: string): Promise<void> {
    await unlink(file).catch(() => undefined);
    this.out.uploaded++;
    this.opts.onEvent?.({ type: 'uploaded', file, measurement_uid: uid });
  }

  private async rejected(file: string, status: number, reason: string): Promise<void> {
    await reject(this.dir, file, status, reason);
    this.out.rejected++;
    this.out.errors.push(`${file}: rejected (HTTP ${status}): ${reason}`);
    this.opts.onEvent?.({ type: 'rejected', file, status, reason });
  }

  /** The collector's answer per line: acknowledged files deleted, refused ones moved aside, unanswered ones kept. */
  private async applyBatchResults(chunk: Spooled[], results: BatchResult[]): Promise<void> {
    const byLine = new Map(results.map((x) => [Number(x.line), x]));
    for (let k = 0; k < chunk.length; k++) {
      const { file } = chunk[k];
      const x = byLine.get(k + 1);
      if (x && typeof x.measurement_uid === 'string' && x.measurement_uid) await this.uploaded(file, x.measurement_uid);
      else if (x && typeof x.statusCode === 'number' && x.statusCode >= 400 && x.statusCode < 500)
        await this.rejected(file, x.statusCode, JSON.stringify({ error: x.error, code: x.code }).slice(0, 300));
      // No answer for this line: it stays in the spool for the next flush.
      else this.out.errors.push(`${file}: the collector's batch answer has no result for it; kept`);
    }
  }

  /** One batch: 'done' (each file acknowledged or moved aside), 'unsupported' (go one by one), 'gave_up'. */
  async flushBatch(chunk: Spooled[]): Promise<'done' | 'unsupported' | 'gave_up'> {
    const body = chunk.map((c) => `{"format":"json","content":${c.text}}`).join('\n') + '\n';
    for (let attempt = 0; ; attempt++) {
      const r = await uploadBatchOnce(this.batchUrl, body, this.timeoutMs, this.opts.signal);
      if (r.kind === 'unsupported') return 'unsupported';
      if (r.kind === 'ok') {
        await this.applyBatchResults(chunk, r.results);
        return 'done';
      }
      if (!(await this.mayRetry(attempt, chunk[0].file, `${chunk.length} measurements from ${chunk[0].file}`, r.reason))) return 'gave_up';
    }
  }

  /** The next batch from files[i]: at most batchSize files and about batchBytes; `next` is the first file not read. */
  async nextChunk(files: string[], i: number): Promise<{ chunk: Spooled[]; next: number }> {
    const chunk: Spooled[] = [];
    let bytes = 0;
    let j = i;
    for (; j < files.length && chunk.length < this.batchSize; j++) {
      const text = await this.readSpooled(files[j]);
      if (text === null) continue;
      if (chunk.length && bytes + text.length > this.batchBytes) break;
      chunk.push({ file: files[j], text });
      bytes += text.length + 32;
    }
    return { chunk, next: j };
  }

  /** One measurement on its own; returns false when it gave up (the collector is down or failing). */
  async flushOne(file: string, text: string): Promise<boolean> {
    const body = `{"format":"json","content":${text}}`;
    for (let attempt = 0; ; attempt++) {
      const r = await uploadOnce(this.url, body, this.timeoutMs, this.opts.signal);
      if (r.kind === 'ok') {
        await this.uploaded(file, r.uid);
        return true;
      }
      if (r.kind === 'reject') {
        await this.rejected(file, r.status, r.reason);
        return true;
      }
      if (!(await this.mayRetry(attempt, file, file, r.reason))) return false;
    }
  }

  async finish(): Promise<FlushResult> {
    this.out.remaining = (await pendingFiles(this.dir)).length;
    return this.out;
  }
}

/**
 * Uploads every spooled measurement to the collector at `collectorUrl`: in NDJSON batches (POST
 * /api/v1/submit_measurements) while the collector takes them, else one by one (POST
 * /api/v1/submit_measurement). Acknowledged files are deleted; files the collector refuses (4xx
 * other than 408/429) move to <dir>/rejected/ with the reason beside them; on repeated network or
 * server failure the flush stops and leaves the rest for next time. Never throws for a network outcome.
 */
export async function flushSpool(dir: string, collectorUrl: string, opts: FlushOptions = {}): Promise<FlushResult> {
  const f = new Flush(dir, collectorUrl, opts);
  await removeStaleTemps(dir);
  const files = await pendingFiles(dir);
  let i = 0;
  // Batches while the collector takes them.
  while (i < files.length && f.batchSize > 0 && !f.aborted) {
    const { chunk, next } = await f.nextChunk(files, i);
    if (!chunk.length) {
      i = next;
      continue;
    }
    const r = await f.flushBatch(chunk);
    // This collector takes measurements one by one: start again from this batch.
    if (r === 'unsupported') break;
    if (r === 'gave_up') return f.finish();
    i = next;
  }
  // One by one: the rest (a collector without the batch route, or batches turned off).
  for (; i < files.length && !f.aborted; i++) {
    const text = await f.readSpooled(files[i]);
    if (text === null) continue;
    // The collector is down or failing: the rest waits for the next flush.
    if (!(await f.flushOne(files[i], text))) break;
  }
  return f.finish();
}

async function reject(dir: string, file: string, status: number, reason: string): Promise<void> {
  const rdir = join(dir, REJECTED_DIR);
  await mkdir(rdir, { recursive: true });
  const name = file.slice(dir.length + 1);
  await rename(file, join(rdir, name));
  const fh = await open(join(rdir, name + '.reason.txt'), 'w', 0o600);
  try {
    await fh.writeFile(`HTTP ${status}\n${reason}\n`);
  } finally {
    await fh.close();
  }
}

/** Temp files older than 10 minutes are writes that crashed before their rename: never acknowledged. */
async function removeStaleTemps(dir: string): Promise<void> {
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(TMP_PREFIX)) continue;
    const p = join(dir, n);
    try {
      if (Date.now() - (await stat(p)).mtimeMs > 10 * 60_000) await unlink(p);
    } catch {
      // gone already
    }
  }
}
