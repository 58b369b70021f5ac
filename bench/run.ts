// A whole benchmark run: the adapter's roofline, every (model, batch) against the peers, and
// optionally the kernels on the models' layer shapes. Results are handed to `onPartial` as they
// arrive, so a run that dies late keeps what it measured.

import { type Device, describeDevice } from '../engine/device.js';
import { type TuningFile, type TuningTable, adapterKey, emptyTuningFile, tableFor } from '../engine/tuning.js';
import { benchModel, type PeerName } from './models.js';
import { measureRoofline } from './roofline.js';
import type { BenchJson } from './schema.js';

export interface BenchOptions {
  models: string[];
  batches: number[];
  peers: PeerName[];
  iters: number;
  warmup: number;
  size: number;
  quick: boolean;
  kernels: boolean;
  command?: string;
  /** Tuned choices (all adapters; this adapter's table is used). */
  tuningFile?: TuningFile;
  /** Tune the models' layers (batch 1, this size) first, adding to the table. */
  tune?: boolean;
  /** Called with the updated tuning file after each tuned layer (to save it). */
  onTuning?: (f: TuningFile) => void;
  ortWasmPaths?: string;
  log?: (s: string) => void;
  onPartial?: (b: BenchJson) => void;
}

export async function runBench(device: Device, o: BenchOptions): Promise<BenchJson> {
  const log = o.log ?? (() => {});
  log(`adapter: ${describeDevice(device)}`);
  const roofline = await measureRoofline(device, { scale: o.quick ? 0.05 : 0.25 });
  log(`roofline: FMA ${roofline.fmaGflops.toFixed(2)} GFLOP/s, copy ${roofline.copyGBps.toFixed(2)} GB/s, divergent vec4 loads ${roofline.loadGBps?.toFixed(2)} GB/s (${roofline.timing})`);
  const b: BenchJson = {
    version: 1,
    created: new Date().toISOString(),
    command: o.command ?? '',
    adapter: { ...device.info, summary: describeDevice(device) },
    roofline,
    settings: { models: o.models, batches: o.batches, peers: o.peers, iters: o.iters, warmup: o.warmup, quick: o.quick, size: o.size },
    models: [],
    notes: [],
  };
  o.onPartial?.(b);
  const table = await prepareTuning(device, o, b);
  for (const model of o.models) {
    for (const batch of o.batches) {
      try {
        b.models.push(await benchModel(device, model, batch, { ...o, roofline, tuning: table.size ? table : undefined }));
      } catch (e) {
        const msg = `${model} batch ${batch}: ${e instanceof Error ? e.message : String(e)}`;
        log(`failed: ${msg}`);
        b.notes.push(msg);
      }
      o.onPartial?.(b);
    }
  }
  if (o.kernels) {
    const { collectLayers, benchKernels } = await import('./kernels.js');
    const layers = await collectLayers(o.models, { batch: 1, size: o.size });
    log(`kernels: ${layers.length} distinct layer shapes`);
    b.kernels = await benchKernels(device, layers, { roofline, reps: o.quick ? 1 : 3, log });
    o.onPartial?.(b);
  }
  return b;
}

/** This adapter's tuning table, after tuning the models' layers first when asked. */
async function prepareTuning(device: Device, o: BenchOptions, b: BenchJson): Promise<TuningTable> {
  const log = o.log ?? (() => {});
  const key = adapterKey(device.info);
  let file = o.tuningFile ?? emptyTuningFile();
  let tunedNow = 0;
  if (o.tune) {
    const { tuneModels } = await import('./tune.js');
    const r = await tuneModels(device, { models: o.models, size: o.size, batch: 1, tuningFile: file, reps: o.quick ? 1 : 2, log, onTuning: o.onTuning });
    file = r.file;
    o.onTuning?.(file);
    b.tune = r.rows;
    b.tune_checks = r.checks;
    tunedNow = r.rows.filter((x) => x.status === 'tuned').length;
    o.onPartial?.(b);
  }
  const table = tableFor(file, key);
  b.tuning = { adapter: key, layers: table.size, tuned_now: tunedNow };
  log(table.size ? `cnnlab runs tuned (${table.size} layers in the table for ${key}) and untuned` : `no tuning table for ${key}: cnnlab runs on its heuristics`);
  return table;
}
