// `wallscope import ooni FILE...`: published OONI measurements (.json, .jsonl, .jsonc) into the
// store, analysed on the way in. A record that cannot be stored is reported with its file and
// line; the run goes on. Files are streamed, so a large JSONL never sits in memory whole.
import { createReadStream } from 'node:fs';
import { readMeasurementStream } from '../analysis/index.js';
import type { Measurement, Verdict } from '../model/index.js';
import { parseOoniTime, type MeasurementStore } from '../store/index.js';

export interface ImportSummary {
  files: number;
  read: number;
  stored: number;
  duplicates: number;
  errors: Array<{ where: string; error: string }>;
}

/** Published measurements vary (2015's http_requests, spec examples): make them storable or say why not. */
export function normalizeForStore(m: Measurement): { ok: true; m: Measurement } | { ok: false; error: string } {
  const start =
    typeof m.measurement_start_time === 'string' && parseOoniTime(m.measurement_start_time) !== null
      ? m.measurement_start_time
      : typeof m.test_start_time === 'string' && parseOoniTime(m.test_start_time) !== null
        ? m.test_start_time
        : null;
  if (!start) return { ok: false, error: 'no usable measurement_start_time (nor test_start_time): expected "YYYY-MM-DD hh:mm:ss"' };
  return {
    ok: true,
    m: {
      ...m,
      measurement_start_time: start,
      probe_cc: typeof m.probe_cc === 'string' && /^[A-Z]{2}$/.test(m.probe_cc) ? m.probe_cc : 'ZZ',
      probe_asn: typeof m.probe_asn === 'string' && /^AS\d{1,10}$/.test(m.probe_asn) ? m.probe_asn : 'AS0',
      report_id: typeof m.report_id === 'string' ? m.report_id : '',
      input: typeof m.input === 'string' ? m.input : null,
    },
  };
}

export async function importMeasurementFiles(
  store: MeasurementStore,
  files: string[],
  analyze: (m: Measurement) => Verdict,
  opts: { batch?: number; onError?: (where: string, error: string) => void } = {},
): Promise<ImportSummary> {
  const out: ImportSummary = { files: 0, read: 0, stored: 0, duplicates: 0, errors: [] };
  const fail = (where: string, error: string) => {
    out.errors.push({ where, error });
    opts.onError?.(where, error);
  };
  const batchSize = opts.batch ?? 500;
  let batch: Array<{ m: Measurement; verdict: Verdict }> = [];
  let batchWhere: string[] = [];
  const flush = async () => {
    if (!batch.length) return;
    const items = batch;
    const wheres = batchWhere;
    batch = [];
    batchWhere = [];
    try {
      for (const r of await store.putMany(items)) {
        if (r.inserted) out.stored++;
        else out.duplicates++;
      }
    } catch {
      // Robustness: find the record the store refuses; the others go in one by one.
      for (const [i, it] of items.entries()) {
        try {
          if ((await store.put(it.m, it.verdict)).inserted) out.stored++;
          else out.duplicates++;
        } catch (e) {
          fail(wheres[i], `not stored: ${String((e as Error)?.message ?? e).slice(0, 200)}`);
        }
      }
    }
  };
  for (const file of files) {
    try {
      for await (const r of readMeasurementStream(createReadStream(file, { highWaterMark: 1 << 20 }), file)) {
        const where = `${file}:${r.line}`;
        if (!r.ok) {
          fail(where, r.error);
          continue;
        }
        out.read++;
        const n = normalizeForStore(r.measurement);
        if (!n.ok) {
          fail(where, n.error);
          continue;
        }
        try {
          batch.push({ m: n.m, verdict: analyze(n.m) });
          batchWhere.push(where);
        } catch (e) {
          fail(where, `analysis failed: ${String((e as Error)?.message ?? e).slice(0, 200)}`);
          continue;
        }
        if (batch.length >= batchSize) await flush();
      }
      out.files++;
    } catch (e) {
      fail(file, `cannot read: ${(e as Error).message}`);
    }
  }
  await flush();
  return out;
}
