// Scale evidence for run bookkeeping: on a ~200k-record results file, parse, resume and merge
// take time linear in the records (time per record at 200k within 2.5× of that at 50k; the old
// parser re-encoded the whole prefix per line, 4× per record for 4× the records and minutes in
// absolute terms) and hold memory for the images and conditions, not the records (the old resume
// and merge kept every record object: tens of MB here).

import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { IMAGENET_C_CONDITIONS, syntheticSettings, writeSyntheticRun } from '../../bench/records.js';
import { parseRecords, readRecordFile, readRuns, RecordLog } from '../../eval/records.js';
import { getModel } from '../../models/registry.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

const root = mkdtempSync(path.join(tmpdir(), 'cnnlab-scale-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// 2,000 images × 25 or 100 conditions: 50k and 200k records over the same images.
const IMAGES = 2000;
const CONDS = [...IMAGENET_C_CONDITIONS, ...Array.from({ length: 24 }, (_, i) => `res/${64 + 16 * i}`)];

interface Measured {
  records: number;
  /** Best of 3, seconds. */
  parse: number;
  parseText: number;
  resume: number;
  merge: number;
  /** Heap held by an open resumed log, and by a merged accumulator (bytes, after GC). */
  resumeHeap: number;
  mergeHeap: number;
}

async function best(f: () => Promise<unknown>): Promise<number> {
  let t = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await f();
    t = Math.min(t, (performance.now() - t0) / 1000);
  }
  return t;
}

async function measure(conds: string[]): Promise<Measured> {
  const dir = path.join(root, `one-${conds.length}`);
  const shards = [0, 1].map((k) => path.join(root, `shard-${conds.length}-${k}`));
  const { records, bytes } = await writeSyntheticRun(dir, { conds, images: IMAGES });
  for (const [k, d] of shards.entries()) await writeSyntheticRun(d, { conds, images: IMAGES, shard: { k, n: 2 } });
  const file = RecordLog.file(dir);

  let n = 0;
  const parse = await best(async () => {
    n = 0;
    const st = await readRecordFile(file, () => n++);
    // Every byte is scanned once into complete lines, every line is one record.
    expect(st).toEqual({ lines: records, records, validBytes: bytes, tornBytes: 0 });
  });
  expect(n).toBe(records);
  const text = readFileSync(file, 'utf8');
  const parseText = await best(async () => expect(parseRecords(text).validBytes).toBe(bytes));

  const resume = await best(async () => {
    const log = await RecordLog.open(dir, syntheticSettings(), { resume: true });
    await log.close();
    expect(log.done.size).toBe(records);
  });
  const h0 = heap();
  const log = await RecordLog.open(dir, syntheticSettings(), { resume: true });
  const resumeHeap = heap() - h0;
  await log.close();
  expect(statSync(file).size).toBe(bytes);

  const p = getModel('mobilenet_v2_synth').preprocess;
  const merge = await best(async () => {
    const m = await readRuns(shards);
    expect(m.summary.result(m.settings, p, { merged: m.shards, of: 2 }).clean!.n).toBe(IMAGES);
  });
  const h1 = heap();
  const m = await readRuns(shards);
  const mergeHeap = heap() - h1;
  expect(m.summary.records).toBe(records);
  return { records, parse, parseText, resume, merge, resumeHeap, mergeHeap };
}

describe('records at scale', () => {
  it('parse, resume and merge are linear in time and bounded in memory (50k vs 200k records)', async () => {
    await measure(CONDS.slice(0, 4)); // warm up the JIT
    const small = await measure(CONDS.slice(0, 25));
    const large = await measure(CONDS);
    expect(small.records).toBe(50_000);
    expect(large.records).toBe(200_000);
    const perRecord = (m: Measured, k: 'parse' | 'parseText' | 'resume' | 'merge') => m[k] / m.records;
    const report = (['parse', 'parseText', 'resume', 'merge'] as const)
      .map(
        (k) => `${k}: ${(1e6 * perRecord(small, k)).toFixed(2)} → ${(1e6 * perRecord(large, k)).toFixed(2)} µs/record`,
      )
      .join('; ');
    const mb = (b: number) => (b / 2 ** 20).toFixed(2);
    console.log(
      `${report}; heap held: resume ${mb(small.resumeHeap)} → ${mb(large.resumeHeap)} MB, merge ${mb(small.mergeHeap)} → ${mb(large.mergeHeap)} MB`,
    );
    for (const k of ['parse', 'resume', 'merge'] as const) {
      expect(perRecord(large, k) / perRecord(small, k), k).toBeLessThan(2.5);
    }
    // The in-memory parser returns every record by contract, so the GC's share grows a little
    // with them; quadratic would be 4× (and minutes: the old one took ~100 s for 50k lines).
    expect(perRecord(large, 'parseText') / perRecord(small, 'parseText'), 'parseText').toBeLessThan(3);
    // The images and conditions, not the records: well under 1 MB here (records would be ~60 MB).
    expect(large.resumeHeap).toBeLessThan(4 * 2 ** 20);
    expect(large.mergeHeap).toBeLessThan(4 * 2 ** 20);
    expect(large.resumeHeap - small.resumeHeap).toBeLessThan(2 ** 20);
    expect(large.mergeHeap - small.mergeHeap).toBeLessThan(2 ** 20);
  }, 180_000); // ~16 s on the 2-core dev machine under load; the limit leaves room for a busier one
});
