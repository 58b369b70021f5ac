// The benchmark's clocks and rules, with no GPU and no library in sight: an engine is anything
// with the phases below, so the same timing code runs cnnlab, its peers and the fake engines of
// tests/bench/harness.test.ts (whose phases take known times on a fake clock).
//
// One definition of each clock, applied to every engine alike:
//   load_ms   making the runtime ready: library import, wasm fetch + compile, backend start,
//             device creation (BenchEngine.load)
//   export_ms conversion of our graph to the engine's own format (ONNX, TF.js's fused graph),
//             a one-off a user does offline (BenchEngine.export; absent when there is none)
//   cold_ms   from weights in memory and a ready runtime to the first result: the engine's own
//             graph preparation (BenchEngine.prepare) and its first run
//   steady    `iters` timed runs after `warmup` untimed ones: min, median, p90
// Every run reads back the same outputs: the logits, nothing else.
//
// A cold start must happen where nothing it measures can already be cached: each engine and
// model gets a page (and GPU device) of its own. The page counts its cold starts (ColdGuard) and
// an engine reports the pipelines its device already holds; a cold start taken after either is
// recorded with `cold_invalid` saying why, and is left out of comparisons.

import type { EngineName, EngineResult, EngineSettings, ModelBench } from './schema.js';

/** What the harness needs of an engine; each method is one phase, timed on its own. */
export interface BenchEngine {
  name: EngineName;
  /** How this engine was run (backend, threads, layout, graph …), written into bench.json. */
  settings: EngineSettings;
  /** Make the runtime ready (load_ms). */
  load(): Promise<void>;
  /** Convert the graph to the engine's format (export_ms), before the cold clock. */
  export?(): Promise<void>;
  /** The engine's own graph preparation: the first part of the cold start. */
  prepare(): Promise<void>;
  /** One run on `x`; the logits come back to the CPU. */
  run(x: Float32Array): Promise<Float32Array>;
  /** Pipelines already compiled on the engine's device (where it can tell): must be 0 before prepare(). */
  cachedPipelines?(): number;
  /** Anything the engine adds to its row (cnnlab: memory). */
  extras?(): Partial<EngineResult>;
  /** After the timed runs, untimed (cnnlab: one profiled run). */
  afterRuns?(): Promise<void>;
  dispose(): Promise<void> | void;
}

export type Clock = () => number;

/** A page's record of its cold starts: the first is a real one, any later one is warm. */
export class ColdGuard {
  private starts: string[] = [];
  constructor(readonly pageId: string) {}
  /** Claim the page for a cold start of `what`; returns the cold starts it had before. */
  claim(what: string): string[] {
    const before = [...this.starts];
    this.starts.push(what);
    return before;
  }
}

export interface TimeOptions {
  iters: number;
  warmup: number;
  batch: number;
  /** cnnlab's logits, to check a peer against before it is timed (absent: not checked). */
  reference?: Float32Array;
  guard: ColdGuard;
  /** The model, for the guard and the log. */
  model: string;
  now?: Clock;
  log?: (s: string) => void;
}

export interface TimedEngine {
  result: EngineResult;
  /** The first run's logits (when the engine got that far). */
  first?: Float32Array;
}

export function stats(
  runs: number[],
  batch: number,
): Pick<EngineResult, 'min_ms' | 'median_ms' | 'p90_ms' | 'throughput_ips' | 'runs_ms'> {
  const s = [...runs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { min_ms: s[0], median_ms: median, p90_ms: q(0.9), throughput_ips: (1000 * batch) / median, runs_ms: runs };
}

/** Logits agree when max|Δ| ≤ 1e-3 · max|want|. */
export function compare(got: Float32Array, want: Float32Array): { logits_match: boolean; max_abs_diff: number } {
  let d = 0,
    ref = 0;
  if (got.length !== want.length) return { logits_match: false, max_abs_diff: Infinity };
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    ref = Math.max(ref, Math.abs(want[i]));
  }
  return { logits_match: d <= 1e-3 * ref, max_abs_diff: d };
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * One engine through every phase: load, export, cold (prepare + first run), the logits check,
 * warm-up and timed runs. A phase that throws ends it with status 'error' and the clocks it
 * finished; the engine is always disposed.
 */
export async function timeEngine(e: BenchEngine, x: Float32Array, o: TimeOptions): Promise<TimedEngine> {
  const now = o.now ?? (() => performance.now());
  const log = o.log ?? (() => {});
  const r: EngineResult = { status: 'ok', logits_match: null, settings: e.settings, page_id: o.guard.pageId };
  let phase = 'load';
  let first: Float32Array | undefined;
  try {
    let t = now();
    await e.load();
    r.load_ms = now() - t;
    if (e.export) {
      phase = 'export';
      t = now();
      await e.export();
      r.export_ms = now() - t;
    }
    phase = 'cold start';
    const before = o.guard.claim(`${e.name} ${o.model}`);
    const cached = e.cachedPipelines?.() ?? 0;
    r.cold_starts_before = before.length;
    if (e.cachedPipelines) r.pipelines_before = cached;
    const why = [
      before.length ? `this page already ran ${before.length} cold start(s) (${before.join(', ')})` : '',
      cached ? `its device already held ${cached} compiled pipeline(s)` : '',
    ].filter(Boolean);
    if (why.length) r.cold_invalid = `not a cold start: ${why.join('; ')}`;
    t = now();
    await e.prepare();
    first = await e.run(x);
    r.cold_ms = now() - t;
    if (o.reference) Object.assign(r, compare(first, o.reference));
    Object.assign(r, e.extras?.());
    log(
      `  ${e.name}: load ${r.load_ms.toFixed(0)} ms${r.export_ms === undefined ? '' : `, export ${r.export_ms.toFixed(0)} ms`}, ` +
        `cold ${r.cold_ms.toFixed(0)} ms${r.cold_invalid ? ` (${r.cold_invalid})` : ''}` +
        `${o.reference ? `, logits ${r.logits_match ? 'match' : 'DIFFER'} (max|Δ| ${r.max_abs_diff!.toExponential(2)})` : ''}`,
    );
    if (r.logits_match === false) {
      return {
        result: {
          ...r,
          status: 'error',
          error: `logits differ from cnnlab's (max|Δ| ${r.max_abs_diff!.toExponential(2)}): not timed`,
        },
        first,
      };
    }
    phase = 'timed runs';
    for (let i = 0; i < o.warmup; i++) await e.run(x);
    const runs: number[] = [];
    for (let i = 0; i < o.iters; i++) {
      t = now();
      await e.run(x);
      runs.push(now() - t);
    }
    Object.assign(r, stats(runs, o.batch));
    phase = 'after the timed runs';
    await e.afterRuns?.();
    log(`  ${e.name}: median ${r.median_ms!.toFixed(1)} ms`);
    return { result: r, first };
  } catch (err) {
    log(`  ${e.name}: ${phase} failed: ${message(err)}`);
    return { result: { ...r, status: 'error', error: `${phase}: ${message(err)}` }, first };
  } finally {
    try {
      await e.dispose();
    } catch (err) {
      log(`  ${e.name}: dispose failed: ${message(err)}`);
    }
  }
}

/** One engine on one model and batch, wherever the runner puts it (a fresh page in the CLI). */
export interface EngineJob {
  engine: EngineName;
  model: string;
  batch: number;
  size: number;
  seed: number;
  iters: number;
  warmup: number;
  /** cnnlab's logits to check against (peers and cnnlab-untuned). */
  reference?: number[];
}

export interface EngineOutcome {
  result: EngineResult;
  /** First-run logits (cnnlab's become the reference for the others). */
  logits?: number[];
  /** cnnlab: flops counted from the plan, and one profiled run. */
  flops?: number;
  profile?: ModelBench['profile'];
}

export type EngineRunner = (job: EngineJob) => Promise<EngineOutcome>;

/** cnnlab's median speed-up over every other engine that ran ok (their median / cnnlab's). */
export function speedups(engines: ModelBench['engines']): NonNullable<ModelBench['speedup']> {
  const out: NonNullable<ModelBench['speedup']> = {};
  const ours = engines.cnnlab;
  if (ours?.status !== 'ok' || !ours.median_ms) return out;
  for (const [name, r] of Object.entries(engines) as [EngineName, EngineResult][]) {
    if (name !== 'cnnlab' && r.status === 'ok' && r.median_ms !== undefined) out[name] = r.median_ms / ours.median_ms;
  }
  return out;
}

/**
 * One model at one batch size: cnnlab first (its logits are the reference), then each other
 * engine, each through `run` (which gives it a page of its own). A failed cnnlab leaves the
 * peers unchecked, so they are not run.
 */
export async function benchModel(
  model: string,
  batch: number,
  engines: EngineName[],
  run: EngineRunner,
  o: { size: number; seed: number; iters: number; warmup: number; log?: (s: string) => void },
): Promise<ModelBench> {
  const log = o.log ?? (() => {});
  log(`${model}, batch ${batch}, ${o.size}×${o.size}`);
  const job = { model, batch, size: o.size, seed: o.seed, iters: o.iters, warmup: o.warmup };
  const ours = await run({ ...job, engine: 'cnnlab' });
  const results: ModelBench['engines'] = { cnnlab: ours.result };
  for (const engine of engines.filter((e) => e !== 'cnnlab')) {
    if (ours.result.status !== 'ok' || !ours.logits) {
      results[engine] = {
        status: 'skipped',
        error: 'cnnlab did not run, so there are no logits to check against',
        logits_match: null,
      };
      continue;
    }
    try {
      results[engine] = (await run({ ...job, engine, reference: ours.logits })).result;
    } catch (e) {
      log(`  ${engine}: ${message(e)}`);
      results[engine] = { status: 'error', error: message(e), logits_match: null };
    }
  }
  return {
    model,
    batch,
    size: o.size,
    flops: ours.flops ?? 0,
    engines: results,
    speedup: speedups(results),
    profile: ours.profile,
  };
}
