// The format of bench.json (documented in the README). Every figure in it was measured in the
// run that wrote it; nothing is copied from elsewhere.

import type { DeviceInfo } from '../engine/device.js';
import type { Roofline } from './roofline.js';

/**
 * 'cnnlab' runs with the adapter's tuning table (when it has one); 'cnnlab-untuned' with the
 * heuristics alone. 'ort-wasm' runs at navigator.hardwareConcurrency threads, 'ort-wasm-1t' at one.
 * 'litert-webgpu' and 'litert-wasm' are LiteRT.js on its WebGPU and wasm (XNNPack) accelerators.
 */
export const ENGINES = [
  'cnnlab',
  'cnnlab-untuned',
  'ort-webgpu',
  'tfjs-webgpu',
  'litert-webgpu',
  'litert-wasm',
  'ort-wasm',
  'ort-wasm-1t',
] as const;
export type EngineName = (typeof ENGINES)[number];

/** How an engine was run (backend, threads, layout, graph, …): every key is shown on the report. */
export type EngineSettings = Record<string, string | number | boolean>;

export interface EngineResult {
  status: 'ok' | 'error' | 'skipped';
  /** Why it failed or was skipped. */
  error?: string;
  /** How the engine was run (bench/models.ts writes each engine's). */
  settings?: EngineSettings;
  /** Making the runtime ready: library import, wasm fetch + compile, backend start, device creation. */
  load_ms?: number;
  /** Converting our graph to the engine's format (ONNX; TF.js's fused graph), before the cold clock. */
  export_ms?: number;
  /** Weights in memory and a ready runtime → first result: the engine's graph preparation and first run. */
  cold_ms?: number;
  /** Set when cold_ms was not a cold start (the page or device had compiled before): why. Left out of comparisons. */
  cold_invalid?: string;
  /** The page (browser context) the engine ran in: one per engine and model. */
  page_id?: string;
  /** Cold starts that page had run before this one (0 for a valid cold start). */
  cold_starts_before?: number;
  /** Pipelines the engine's device already held at its cold start, where the engine can tell (cnnlab). */
  pipelines_before?: number;
  /** Steady state over `runs` timed runs after warm-up. */
  min_ms?: number;
  median_ms?: number;
  p90_ms?: number;
  /** Images per second at the median latency. */
  throughput_ips?: number;
  runs_ms?: number[];
  /** Logits agree with cnnlab's: max|Δ| ≤ 1e-3·max|cnnlab| (cnnlab itself: against its CPU reference when checked, else null). */
  logits_match: boolean | null;
  max_abs_diff?: number;
  /** cnnlab: the plan's peak GPU bytes (weights + I/O + planned activations). */
  peak_memory_bytes?: number;
  weight_bytes?: number;
  /** cnnlab: the largest intermediate, and peak ≤ weights + 3 × that (the memory target). */
  largest_activation_bytes?: number;
  memory_within_target?: boolean;
  /** cnnlab: nodes whose kernel variant came from the tuning table. */
  tuned_nodes?: number;
}

export interface ModelBench {
  model: string;
  batch: number;
  size: number;
  /** Multiply-adds × 2 for one batch, counted from the graph's dispatches. */
  flops: number;
  engines: Partial<Record<EngineName, EngineResult>>;
  /** cnnlab's median speed-up over each peer (peer median / cnnlab median). */
  speedup?: Partial<Record<EngineName, number>>;
  /** Per-kernel-family GPU time of one cnnlab run (timestamp queries). */
  profile?: {
    mode: string;
    total_ms: number;
    families: {
      family: string;
      calls: number;
      ms: number;
      share: number;
      gflops?: number;
      gbps?: number;
      fraction_of_peak?: number;
    }[];
  };
}

export interface KernelBench {
  model: string;
  /** Node name in the model's optimised graph, e.g. layer3.0.conv2. */
  node: string;
  op: string;
  family: string;
  /** Input shapes and the attrs that matter, for the table. */
  shape: string;
  /** Other nodes of the same models with identical shapes and attrs (timed once). */
  count: number;
  ms: number;
  gflops?: number;
  gbps?: number;
  /** Against the roofline: GFLOP/s ÷ FMA peak for compute-bound kernels, GB/s ÷ copy peak otherwise. */
  fraction_of_peak: number;
  bound: 'compute' | 'memory';
  /** Arithmetic intensity: flops per byte of the layer's compulsory traffic (inputs, weights, output). */
  ai?: number;
  /** GFLOP/s ÷ the adapter's measured FMA peak, for every layer that does flops (whatever bounds it). */
  fraction_of_fma_peak?: number;
  /** GFLOP/s ÷ the roofline at this AI, min(FMA peak, AI × copy bandwidth): how close to what the roofline allows. */
  fraction_of_roofline?: number;
  /** What is in the way, in words: 'launch overhead: …', 'memory-bound at AI …', 'compute-bound: …' (bench/kernels.ts classify). */
  limit?: string;
  /** Against the CPU reference before timing; `skipped` when validation was off or too costly. */
  validated: { max_abs_diff: number; max_abs_ref: number; ok: boolean; skipped?: boolean };
}

export interface BenchJson {
  version: 1;
  created: string;
  command: string;
  adapter: DeviceInfo & { summary: string };
  roofline: Roofline;
  settings: {
    models: string[];
    batches: number[];
    peers: string[];
    iters: number;
    warmup: number;
    quick: boolean;
    size: number;
    /** Where each engine ran: 'page per engine and model' (the CLI) or 'one page' (the interactive page). */
    isolation?: string;
  };
  /** The tuning table 'cnnlab' ran with: the adapter key and how many layers it holds (0: untuned). */
  tuning?: { adapter: string; layers: number; tuned_now: number };
  models: ModelBench[];
  kernels?: KernelBench[];
  /** Per-layer tuning results, when the run tuned first (bench --tune). */
  tune?: TuneRow[];
  /** With --tune: each model run whole with the table and with the heuristics (tables that did not help were reverted). */
  tune_checks?: ModelCheck[];
  /** With --train: the training step of each model, cnnlab against TF.js (bench/train.ts). */
  train?: TrainSection;
  /** Problems that did not stop the run (a peer that failed to load, say). */
  notes: string[];
}

// ---- the training bench (bench/train.ts writes it) ----------------------------------------------

/** Engines of the training bench: cnnlab's Trainer and TF.js's variableGrads + momentum optimiser. */
export const TRAIN_ENGINES = ['cnnlab', 'tfjs-webgpu'] as const;
export type TrainEngineName = (typeof TRAIN_ENGINES)[number];

/**
 * One engine's training step on one model and batch. The clocks are the inference bench's
 * (bench/harness.ts), with "a run" = one training step (forward, loss, backward, optimiser
 * update) that ends when its loss is on the host.
 */
export interface TrainEngineResult
  extends Omit<
    EngineResult,
    'logits_match' | 'max_abs_diff' | 'largest_activation_bytes' | 'memory_within_target' | 'tuned_nodes'
  > {
  /** Every step's loss in order: the cold step, the warm-up steps, the timed steps. */
  losses?: number[];
  /** The first step's loss agrees with cnnlab's: |Δ| ≤ 1e-3·|cnnlab's| (cnnlab itself: null). Gates the timing. */
  loss_match: boolean | null;
  loss_diff?: number;
  /** The second step's loss (after one update) agrees with cnnlab's by the same rule: the gradients and update agree. */
  update_match?: boolean | null;
  update_diff?: number;
  /** Peak GPU bytes of a step; `memory_what` says what the number counts for this engine. */
  peak_memory_bytes?: number;
  memory_what?: string;
  /** TF.js: bytes its WebGPU buffer manager holds after the runs (it pools freed buffers, so its high-water mark). */
  gpu_allocated_bytes?: number;
  /** cnnlab: the step plan's breakdown (engine/train.ts TrainMemoryReport). */
  trainable_bytes?: number;
  optimizer_bytes?: number;
  gradient_bytes?: number;
  bn_stat_bytes?: number;
}

export interface TrainBench {
  model: string;
  batch: number;
  size: number;
  engines: Partial<Record<TrainEngineName, TrainEngineResult>>;
  /** TF.js median step ÷ cnnlab median step (> 1: cnnlab is faster). */
  speedup?: number;
  /** TF.js cold ÷ cnnlab cold, when both were real cold starts. */
  cold_speedup?: number;
}

export interface TrainSection {
  /** What every engine's step does, the same for both. */
  settings: {
    optimizer: string;
    lr: number;
    momentum: number;
    loss: string;
    labels: string;
    batchnorm: string;
    trainable: string;
  };
  models: TrainBench[];
}

// ---- the tuner's rows (bench/tune.ts writes them) ----------------------------------------------

export interface CandidateResult {
  prefer: string;
  status: 'ok' | 'duplicate' | 'failed' | 'slow-compile' | 'wrong';
  compile_ms?: number;
  ms?: number;
  error?: string;
}

export interface TuneRow {
  model: string;
  node: string;
  op: string;
  shape: string;
  count: number;
  key: string;
  family: string;
  heuristic_ms: number;
  best: string;
  best_ms: number;
  /** Pipeline build time of the heuristic's and the choice's plans (absent for cached rows). */
  heuristic_compile_ms?: number;
  best_compile_ms?: number;
  /** 'tuned' when measured now, 'cached' when the table already had the layer. */
  status: 'tuned' | 'cached';
  candidates: CandidateResult[];
}

export interface ModelCheck {
  model: string;
  tuned_ms: number;
  heuristic_ms: number;
  /** Pipeline build time the table adds (negative: saves) over the heuristics, summed over the model's tuned layers. */
  build_delta_ms?: number;
  /** Whether the table's choices were kept: tuned_ms + build_delta_ms / amortizeRuns < heuristic_ms. */
  kept: boolean;
}
