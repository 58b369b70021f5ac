// A whole benchmark run: the adapter's roofline, tuning and kernels on a setup page (benchSetup),
// then every (model, batch, engine) through the host's engine runner, which the CLI gives a
// fresh page each (bench/harness.ts states the clocks and the fresh-page rule). Results are
// handed to `onPartial` as they arrive, so a run that dies late keeps what it measured.
// runBench itself touches no GPU: it runs wherever the host's pages are driven from.

import type { Device } from '../engine/device.js';
import { type TuningFile, adapterKey, emptyTuningFile, tableFor } from '../engine/tuning.js';
import { type EngineJob, type EngineOutcome, benchModel } from './harness.js';
import type { EngineContext, PeerName } from './models.js';
import type { BenchJson, EngineName } from './schema.js';

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
  litertWasmDir?: string;
  log?: (s: string) => void;
  onPartial?: (b: BenchJson) => void;
}

export type SetupOptions = Pick<
  BenchOptions,
  'models' | 'size' | 'quick' | 'kernels' | 'tune' | 'tuningFile' | 'log' | 'onTuning'
>;

/** What the setup page measured: everything in bench.json but the models. */
export type SetupResult = Pick<BenchJson, 'adapter' | 'roofline' | 'tuning' | 'tune' | 'tune_checks' | 'kernels'> & {
  tuningFile: TuningFile;
};

/** Where the pages are: `setup` on a page of its own, `engine` in a fresh page per call (the CLI's). */
export interface BenchHost {
  /** How engines are isolated, for bench.json: 'page per engine and model' or 'one page'. */
  isolation: string;
  setup(o: SetupOptions): Promise<SetupResult>;
  engine(job: EngineJob, c: EngineContext): Promise<EngineOutcome>;
}

/** The engines a run times, in order: cnnlab, cnnlab-untuned (when a tuning table is used), the peers. */
export function enginesFor(peers: PeerName[], tunedLayers: number): EngineName[] {
  return ['cnnlab', ...(tunedLayers > 0 ? ['cnnlab-untuned' as const] : []), ...peers];
}

export async function runBench(host: BenchHost, o: BenchOptions): Promise<BenchJson> {
  const log = o.log ?? (() => {});
  const s = await host.setup({
    models: o.models,
    size: o.size,
    quick: o.quick,
    kernels: o.kernels,
    tune: o.tune,
    tuningFile: o.tuningFile,
    log,
    onTuning: o.onTuning,
  });
  const { tuningFile, ...measured } = s;
  const b: BenchJson = {
    version: 1,
    created: new Date().toISOString(),
    command: o.command ?? '',
    ...measured,
    settings: {
      models: o.models,
      batches: o.batches,
      peers: o.peers,
      iters: o.iters,
      warmup: o.warmup,
      quick: o.quick,
      size: o.size,
      isolation: host.isolation,
    },
    models: [],
    notes: [],
  };
  o.onPartial?.(b);
  const engines = enginesFor(o.peers, s.tuning?.layers ?? 0);
  const ctx: EngineContext = {
    tuningFile,
    fmaGflops: s.roofline.fmaGflops,
    ortWasmPaths: o.ortWasmPaths,
    litertWasmDir: o.litertWasmDir,
  };
  for (const model of o.models) {
    for (const batch of o.batches) {
      try {
        b.models.push(await benchModel(model, batch, engines, (job) => host.engine(job, ctx), { ...o, seed: 0, log }));
      } catch (e) {
        const msg = `${model} batch ${batch}: ${e instanceof Error ? e.message : String(e)}`;
        log(`failed: ${msg}`);
        b.notes.push(msg);
      }
      o.onPartial?.(b);
    }
  }
  return b;
}

/** The setup page's part: adapter, roofline, tuning (after tuning first when asked), kernels. */
export async function benchSetup(device: Device, o: SetupOptions): Promise<SetupResult> {
  const log = o.log ?? (() => {});
  const [{ describeDevice }, { measureRoofline }] = await Promise.all([
    import('../engine/device.js'),
    import('./roofline.js'),
  ]);
  log(`adapter: ${describeDevice(device)}`);
  const roofline = await measureRoofline(device, { scale: o.quick ? 0.05 : 0.25 });
  log(
    `roofline: FMA ${roofline.fmaGflops.toFixed(2)} GFLOP/s, copy ${roofline.copyGBps.toFixed(2)} GB/s, divergent vec4 loads ${roofline.loadGBps?.toFixed(2)} GB/s (${roofline.timing})`,
  );
  const out: SetupResult = {
    adapter: { ...device.info, summary: describeDevice(device) },
    roofline,
    tuningFile: o.tuningFile ?? emptyTuningFile(),
  };
  const key = adapterKey(device.info);
  let tunedNow = 0;
  if (o.tune) {
    const { tuneModels } = await import('./tune.js');
    const r = await tuneModels(device, {
      models: o.models,
      size: o.size,
      batch: 1,
      tuningFile: out.tuningFile,
      reps: o.quick ? 1 : 2,
      log,
      onTuning: o.onTuning,
    });
    out.tuningFile = r.file;
    o.onTuning?.(r.file);
    out.tune = r.rows;
    out.tune_checks = r.checks;
    tunedNow = r.rows.filter((x) => x.status === 'tuned').length;
  }
  const table = tableFor(out.tuningFile, key);
  out.tuning = { adapter: key, layers: table.size, tuned_now: tunedNow };
  log(
    table.size
      ? `cnnlab runs tuned (${table.size} layers in the table for ${key}) and untuned`
      : `no tuning table for ${key}: cnnlab runs on its heuristics`,
  );
  if (o.kernels) {
    const { collectLayers, benchKernels } = await import('./kernels.js');
    const layers = await collectLayers(o.models, { batch: 1, size: o.size });
    log(`kernels: ${layers.length} distinct layer shapes`);
    out.kernels = await benchKernels(device, layers, { roofline, reps: o.quick ? 1 : 3, log });
  }
  return out;
}
