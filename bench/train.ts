// The training bench (`npx cnnlab bench --train`): the time of one training step (forward,
// softmax cross-entropy on fixed labels, backward, SGD-with-momentum update) of cnnlab's Trainer
// (engine/train.ts) against TF.js's (tf.variableGrads + tf.train.momentum's applyGradients on the
// network rebuilt by bench/peers/tfjs.ts), timed by the inference bench's harness
// (bench/harness.ts timeEngine) with "a run" = one step that ends when its loss is on the host:
//
//   load_ms  cnnlab: engine modules + a fresh GPUDevice; TF.js: the library + setBackend('webgpu')
//   cold_ms  from weights in memory and a ready runtime to the first finished step: cnnlab:
//            Trainer.create (training graph, compile: pipelines, weight upload) + step 1; TF.js:
//            the model built with its weights as tf.variable (upload) + the optimiser + step 1
//            (its shaders compile as the step first meets them)
//   steady   median (min, p90) of `iters` timed steps after `warmup` untimed ones
//
// Both engines get the same random weights, images and one-hot labels (image n has class n mod K),
// train every weight (BN running statistics are not weights), run BatchNorm on batch statistics
// with PyTorch's running-statistics update, and use the same learning rate and momentum. cnnlab's
// first-step loss is the reference: TF.js's must agree within 1e-3 relative before it is timed
// (docs/peers.md says why that bound), and the second step's loss, after one update, is checked by
// the same rule, so the two engines provably computed the same gradients and update.
// Each engine runs in a page of its own (the CLI opens one per engine, model and batch).

import type { Device } from '../engine/device.js';
import type { Graph } from '../engine/graph.js';
import type { Trainer } from '../engine/train.js';
import { Rng } from '../models/init.js';
import { loadModel } from '../models/registry.js';
import { DASH, fmtBytes, fmtMs } from '../report/format.js';
import { type BenchEngine, compare, timeEngine } from './harness.js';
import { pageColdGuard, startTfjsWebgpu } from './models.js';
import type { TrainBench, TrainEngineName, TrainEngineResult, TrainSection } from './schema.js';

export const TRAIN_MOMENTUM = 0.9;
/** Default learning rate: large enough that the second step's loss moves measurably, small enough not to diverge. */
export const TRAIN_LR = 0.01;

export interface TrainJob {
  engine: TrainEngineName;
  model: string;
  batch: number;
  size: number;
  seed: number;
  iters: number;
  warmup: number;
  lr: number;
  /** cnnlab's losses, to check the peer against (the first gates the timing). */
  reference?: number[];
}

export interface TrainOutcome {
  result: TrainEngineResult;
}

export type TrainRunner = (job: TrainJob) => Promise<TrainOutcome>;

/** The settings both engines share, for bench.json. */
export function trainSettings(lr: number): TrainSection['settings'] {
  return {
    optimizer: 'SGD with momentum (PyTorch/TF.js form: v ← μ·v + g, w ← w − lr·v), no weight decay',
    lr,
    momentum: TRAIN_MOMENTUM,
    loss: 'softmax cross-entropy, mean over the batch',
    labels: 'one-hot, image n has class n mod K',
    batchnorm: 'training mode: batch statistics; running mean/var updated with momentum 0.1 (PyTorch)',
    trainable: 'every weight of the graph (BN running statistics excluded)',
  };
}

/** Fixed one-hot targets [N, K]: image n has class n mod K. */
export function trainTargets(n: number, k: number): Float32Array {
  const t = new Float32Array(n * k);
  for (let i = 0; i < n; i++) t[i * k + (i % k)] = 1;
  return t;
}

/** Every constant a node reads, but BN running statistics (batchnorm inputs 3 and 4). */
export function trainableOf(g: Graph): string[] {
  const stats = new Set(g.nodes.filter((n) => n.op === 'batchnorm').flatMap((n) => n.inputs.slice(3, 5)));
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  return [...g.values.values()]
    .filter((v) => v.kind === 'const' && read.has(v.name) && !stats.has(v.name))
    .map((v) => v.name);
}

interface Model {
  graph: Graph;
  logits: string;
  trainable: string[];
  targets: Float32Array;
}

function cnnlabTrainEngine(m: Model, lr: number, out: TrainEngineResult): BenchEngine {
  let device: Device | undefined;
  let trainer: Trainer | undefined;
  let ex: typeof import('../engine/executor.js') | undefined;
  let tr: typeof import('../engine/train.js') | undefined;
  return {
    name: 'cnnlab',
    settings: {
      device: 'fresh GPUDevice',
      graph:
        'unoptimised forward graph → Trainer: loss, backward graph, optimiser nodes, one plan (one command buffer)',
      tuning: 'heuristics',
      readback: 'loss',
    },
    async load() {
      const [dev, executor, train] = await Promise.all([
        import('../engine/device.js'),
        import('../engine/executor.js'),
        import('../engine/train.js'),
      ]);
      [ex, tr] = [executor, train];
      device = await dev.createDevice();
    },
    cachedPipelines: () => (device && ex ? ex.cachedPipelineCount(device.gpu) : 0),
    async prepare() {
      trainer = await tr!.Trainer.create(device!, m.graph, {
        logits: m.logits,
        trainable: m.trainable,
        optimizer: { kind: 'sgd', momentum: TRAIN_MOMENTUM, weightDecay: 0 },
        batchNorm: 'train',
      });
    },
    async run(x) {
      return Float32Array.of((await trainer!.step(x, m.targets, lr)).loss);
    },
    extras() {
      const mem = trainer!.memory;
      Object.assign(out, {
        trainable_bytes: mem.trainableBytes,
        optimizer_bytes: mem.optimizerBytes,
        gradient_bytes: mem.gradientBytes,
        bn_stat_bytes: mem.bnStatBytes,
      });
      // The step plan's weightBytes counts only its constants; here the weights are parameters.
      return { peak_memory_bytes: mem.peakBytes, weight_bytes: mem.trainableBytes + mem.bnStatBytes };
    },
    dispose() {
      trainer?.dispose();
      device?.destroy();
    },
  };
}

/** TF.js flags that bear on the step, as they were (we set none: their defaults are TF.js's tuned choice). */
const TFJS_FLAGS = ['WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', 'WEBGPU_CPU_FORWARD', 'PROD', 'DEBUG'];

function tfjsTrainEngine(m: Model, lr: number, x: Float32Array, out: TrainEngineResult): BenchEngine {
  let tf: typeof import('@tensorflow/tfjs') | undefined;
  let build: typeof import('./peers/tfjs-train.js').buildTfjsTrainer | undefined;
  let trainer: import('./peers/tfjs-train.js').TfjsTrainer | undefined;
  const settings: TrainEngineResult['settings'] = {
    backend: 'webgpu',
    step: 'tf.tidy(tf.variableGrads(softmaxCrossEntropy ∘ model) → tf.train.momentum.applyGradients), loss.data()',
    graph:
      'unoptimised graph rebuilt from tf ops (BN in training mode cannot be folded); convs via tf.fused.* (linear)',
    readback: 'loss',
  };
  return {
    name: 'tfjs-webgpu',
    settings,
    async load() {
      const [t, p] = await Promise.all([startTfjsWebgpu(), import('./peers/tfjs-train.js')]);
      tf = t;
      build = p.buildTfjsTrainer;
      settings.version = tf.version.tfjs;
      settings.flags = `none set; as run: ${TFJS_FLAGS.map((f) => `${f}=${tf!.env().get(f)}`).join(', ')}`;
    },
    async prepare() {
      trainer = build!(tf!, m.graph, { logits: m.logits, trainable: m.trainable, lr, momentum: TRAIN_MOMENTUM });
    },
    async run(input) {
      return Float32Array.of(await trainer!.step(input, m.targets));
    },
    async afterRuns() {
      // One more step, untimed, under tf.profile: the peak of TF.js's live tensor bytes.
      const p = await tf!.profile(() => trainer!.step(x, m.targets));
      out.peak_memory_bytes = p.peakBytes;
      const mem = tf!.memory() as { numBytesAllocatedInGPU?: number };
      out.gpu_allocated_bytes = mem.numBytesAllocatedInGPU;
    },
    extras: () => ({ weight_bytes: trainer!.variableBytes }),
    dispose: () => trainer?.dispose(),
  };
}

const CNNLAB_MEMORY =
  'the step plan’s peak: parameters, momentum buffers, BN statistics, inputs and the memory plan’s intermediates (activations kept for backward, gradients)';
const TFJS_MEMORY =
  'tf.profile peakBytes of one step: the most bytes of live tensors (variables, optimiser accumulators, activations kept by the tape, gradients)';

/** One engine's training step on one model and batch, in this page (the harness times it). */
export async function benchTrainEngine(job: TrainJob, c: { log?: (s: string) => void } = {}): Promise<TrainOutcome> {
  const loaded = await loadModel(job.model, { weights: 'random', seed: job.seed, batch: job.batch, size: job.size });
  const [, K] = loaded.graph.shape(loaded.logits);
  const m: Model = {
    graph: loaded.graph,
    logits: loaded.logits,
    trainable: trainableOf(loaded.graph),
    targets: trainTargets(job.batch, K),
  };
  const x = new Rng(1234 + job.batch).uniforms(job.batch * 3 * job.size * job.size, -2, 2);
  const extra: TrainEngineResult = { status: 'ok', loss_match: null };
  const inner = job.engine === 'cnnlab' ? cnnlabTrainEngine(m, job.lr, extra) : tfjsTrainEngine(m, job.lr, x, extra);
  const losses: number[] = [];
  const e: BenchEngine = {
    ...inner,
    async run(input) {
      const y = await inner.run(input);
      losses.push(y[0]);
      return y;
    },
  };
  const log = c.log && ((s: string) => c.log!(s.replace(/logits (match|DIFFER)/, 'first-step loss $1')));
  const t = await timeEngine(e, x, {
    iters: job.iters,
    warmup: job.warmup,
    batch: job.batch,
    model: job.model,
    guard: pageColdGuard(),
    log,
    reference: job.reference?.length ? Float32Array.of(job.reference[0]) : undefined,
  });
  const {
    logits_match,
    max_abs_diff,
    largest_activation_bytes: _l,
    memory_within_target: _w,
    tuned_nodes: _t,
    ...r
  } = t.result;
  const result: TrainEngineResult = {
    ...r,
    ...extra,
    ...(r.weight_bytes === undefined ? {} : { weight_bytes: r.weight_bytes }),
    status: r.status,
    losses,
    loss_match: logits_match,
    loss_diff: max_abs_diff,
    memory_what: job.engine === 'cnnlab' ? CNNLAB_MEMORY : TFJS_MEMORY,
  };
  if (r.peak_memory_bytes !== undefined) result.peak_memory_bytes = r.peak_memory_bytes;
  if (result.error)
    result.error = result.error.replace(/^logits differ from cnnlab's/, "first-step loss differs from cnnlab's");
  if (job.reference && job.reference.length > 1 && losses.length > 1) {
    const u = compare(Float32Array.of(losses[1]), Float32Array.of(job.reference[1]));
    result.update_match = u.logits_match;
    result.update_diff = u.max_abs_diff;
  }
  return { result };
}

/** One model at one batch: cnnlab first (its losses are the reference), then TF.js. */
export async function benchTrainModel(
  model: string,
  batch: number,
  engines: TrainEngineName[],
  run: TrainRunner,
  o: { size: number; seed: number; iters: number; warmup: number; lr: number; log?: (s: string) => void },
): Promise<TrainBench> {
  const log = o.log ?? (() => {});
  log(`train ${model}, batch ${batch}, ${o.size}×${o.size}`);
  const job = { model, batch, size: o.size, seed: o.seed, iters: o.iters, warmup: o.warmup, lr: o.lr };
  const ours = (await run({ ...job, engine: 'cnnlab' })).result;
  const results: TrainBench['engines'] = { cnnlab: ours };
  for (const engine of engines.filter((e) => e !== 'cnnlab')) {
    if (ours.status !== 'ok' || !ours.losses?.length) {
      results[engine] = {
        status: 'skipped',
        error: 'cnnlab did not train, so there is no loss to check against',
        loss_match: null,
      };
      continue;
    }
    try {
      results[engine] = (await run({ ...job, engine, reference: ours.losses })).result;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      log(`  ${engine}: ${msg}`);
      results[engine] = { status: 'error', error: msg, loss_match: null };
    }
  }
  const out: TrainBench = { model, batch, size: o.size, engines: results };
  const tfjs = results['tfjs-webgpu'];
  if (ours.status === 'ok' && tfjs?.status === 'ok' && ours.median_ms && tfjs.median_ms !== undefined)
    out.speedup = tfjs.median_ms / ours.median_ms;
  if (ours.cold_ms && tfjs?.cold_ms !== undefined && !ours.cold_invalid && !tfjs.cold_invalid)
    out.cold_speedup = tfjs.cold_ms / ours.cold_ms;
  return out;
}

/** Every model and batch through `run` (a fresh page per engine in the CLI). */
export async function runTrainBench(
  run: TrainRunner,
  o: {
    models: string[];
    batches: number[];
    engines: TrainEngineName[];
    size: number;
    iters: number;
    warmup: number;
    lr: number;
    log?: (s: string) => void;
    onPartial?: (t: TrainSection) => void;
    notes?: string[];
  },
): Promise<TrainSection> {
  const section: TrainSection = { settings: trainSettings(o.lr), models: [] };
  for (const model of o.models) {
    for (const batch of o.batches) {
      try {
        section.models.push(await benchTrainModel(model, batch, o.engines, run, { ...o, seed: 0 }));
      } catch (e) {
        const msg = `train ${model} batch ${batch}: ${e instanceof Error ? e.message : String(e)}`;
        o.log?.(`failed: ${msg}`);
        o.notes?.push(msg);
      }
      o.onPartial?.(section);
    }
  }
  return section;
}

// ---- the table --------------------------------------------------------------------------------

/** The cells of one engine's row: status, load, cold, median, p90, peak memory, first/second-step loss. */
export function trainCells(r: TrainEngineResult | undefined): string[] {
  if (!r) return Array(8).fill(DASH);
  const ms = (x: number | undefined) => (x === undefined ? DASH : fmtMs(x));
  const loss = (v: number | undefined, match: boolean | null | undefined) =>
    v === undefined ? DASH : `${v.toFixed(4)}${match === true ? ' ✓' : match === false ? ' ✗' : ''}`;
  return [
    r.status,
    ms(r.load_ms),
    `${ms(r.cold_ms)}${r.cold_invalid ? '!' : ''}`,
    ms(r.median_ms),
    ms(r.p90_ms),
    r.peak_memory_bytes === undefined ? DASH : fmtBytes(r.peak_memory_bytes),
    loss(r.losses?.[0], r.loss_match),
    loss(r.losses?.[1], r.update_match),
  ];
}

export const TRAIN_HEAD = [
  'model',
  'batch',
  'engine',
  'status',
  'load ms',
  'cold ms',
  'median ms',
  'p90 ms',
  'peak memory',
  'loss step 1',
  'loss step 2',
  'cnnlab speed-up',
];

/** The terminal table: one row per model, batch and engine. */
export function formatTrainTable(t: TrainSection): string {
  const rows = t.models.flatMap((m) =>
    (Object.keys(m.engines) as TrainEngineName[]).map((e) => [
      m.model,
      String(m.batch),
      e,
      ...trainCells(m.engines[e]),
      e === 'cnnlab' || m.speedup === undefined
        ? DASH
        : `×${m.speedup.toFixed(2)}${m.cold_speedup === undefined ? '' : ` (cold ×${m.cold_speedup.toFixed(2)})`}`,
    ]),
  );
  const widths = TRAIN_HEAD.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const problems = t.models.flatMap((m) =>
    Object.entries(m.engines).flatMap(([e, r]) =>
      r && r.status !== 'ok' && r.error
        ? [`  ${e} on ${m.model} b=${m.batch}: ${r.status}: ${r.error.split('\n')[0]}`]
        : [],
    ),
  );
  const s = t.settings;
  return [
    `training step: ${s.optimizer}, lr ${s.lr}, momentum ${s.momentum}; ${s.loss}; BN ${s.batchnorm}`,
    line(TRAIN_HEAD),
    ...rows.map(line),
    ...(problems.length ? ['', ...problems] : []),
    '',
    'one step = forward + loss + backward + update, ended by reading the loss; ✓/✗: loss agrees with cnnlab’s (|Δ| ≤ 1e-3·|loss|);',
    'step 2 is after one update (checks gradients and optimiser); ×N: TF.js median ÷ cnnlab median; ! : not a cold start',
  ].join('\n');
}
