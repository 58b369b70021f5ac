// Training on the GPU: a Trainer turns a forward graph into one training step (forward, softmax
// cross-entropy loss, backward by engine/autodiff.ts, gradient clipping, the optimiser update,
// BN running statistics) compiled into one plan and run as one command buffer, plus a predict plan
// that binds the same parameter buffers (docs/autodiff.md).
//
// Trainable constants become parameters (engine/graph.ts), with optimiser slots '<p>#momentum'
// (SGD) or '<p>#m', '<p>#v' (AdamW) beside them; every update writes back into them at the end of
// the step. Per-step scalars (learning rate, gradient scale, AdamW's bias corrections) are one
// small graph input, `hyper` (kernels/backward/optim.ts), so one plan serves a whole schedule;
// the step counter lives here, on the host.
//
// BatchNorm: with batchNorm 'train' (the default), each `batchnorm` node becomes `batchnorm_train`
// (batch statistics; outputs y, mean, biased variance) and its running mean and variance become
// parameters updated as PyTorch does: r ← (1 − m)·r + m·batch statistic, the variance unbiased
// by n/(n − 1), n = N·H·W. Predict runs the original `batchnorm` nodes on those running statistics.
//
// Gradient accumulation: `accumulate` runs forward and backward and adds the gradients into
// '<p>#grad' parameters (a second plan); `apply` (a third) updates from them, scaled by
// 1/microBatches, and clears them.

import { HYPER, hyperFor } from '../kernels/backward/optim.js';
import { type HostTensor, ShapeError, fmtShape, numel } from '../kernels/kernel.js';
import { grad } from './autodiff.js';
import { BufferPool } from './buffer-pool.js';
import type { Device } from './device.js';
import { InputError } from './errors.js';
import { type CompileOptions, type MemoryReport, type Plan, compile } from './executor.js';
import { Graph } from './graph.js';

export type OptimizerSpec =
  | { kind: 'sgd'; momentum: number; nesterov?: boolean; weightDecay: number }
  | { kind: 'adamw'; beta1: number; beta2: number; eps: number; weightDecay: number };

export interface TrainSpec {
  logits: string; // the forward graph's logits value, [N, K]
  trainable: string[]; // graph constants to train; all others stay frozen
  optimizer: OptimizerSpec;
  clipNorm?: number; // global-norm clipping when set
  labelSmoothing?: number;
  batchNorm?: 'train' | 'frozen'; // default 'train'
  bnMomentum?: number; // default 0.1 (PyTorch)
}

/** The step plan's memory, with what its parameters hold broken down. */
export interface TrainMemoryReport extends MemoryReport {
  /** Trainable parameters. */
  trainableBytes: number;
  /** Optimiser slots (momentum buffers, Adam moments). */
  optimizerBytes: number;
  /** BN running statistics trained in batch mode. */
  bnStatBytes: number;
  /** The gradients of the trainable parameters: intermediates of the step, placed by the memory plan. */
  gradientBytes: number;
}

/** The optimiser slots of parameter `p`, by the names readState uses. */
export function slotNames(p: string, o: OptimizerSpec): string[] {
  return o.kind === 'sgd' ? [`${p}#momentum`] : [`${p}#m`, `${p}#v`];
}

const STEP_KEY = 'step';

/** The forward graph prepared for training: trainables as parameters, BN in batch mode, the loss. */
export interface Prepared {
  g: Graph;
  inputName: string;
  targets: string;
  loss: string;
  /** BN running statistics (parameters), each with its update source. */
  bnStats: [stat: string, source: string][];
}

/**
 * The forward graph (cloned) with the trainable constants as parameters, `batchnorm` rewritten to
 * `batchnorm_train` with running-statistics updates (when BN trains), and the loss on a new
 * `targets` input as the only output. Nothing differentiated yet.
 */
export function prepareTraining(forward: Graph, spec: TrainSpec): Prepared {
  const g = forward.clone();
  const inputs = [...g.values.values()].filter((v) => v.kind === 'input');
  if (inputs.length !== 1)
    throw new InputError(
      `the forward graph must have exactly one input (the images), got ${inputs.map((v) => v.name)}`,
    );
  const logits = g.shape(spec.logits);
  if (logits.length !== 2) throw new ShapeError(`logits "${spec.logits}" must be [N, K], got ${fmtShape(logits)}`);
  for (const p of spec.trainable) {
    const v = g.values.get(p);
    if (v?.kind !== 'const') throw new InputError(`trainable "${p}" is not a constant of the forward graph`);
    g.makeParam(p);
  }
  const bnStats: [string, string][] = [];
  if ((spec.batchNorm ?? 'train') === 'train') {
    const momentum = spec.bnMomentum ?? 0.1;
    for (const bn of g.nodes.filter((n) => n.op === 'batchnorm')) {
      const [x, gamma, beta, mean, variance] = bn.inputs;
      const xs = g.shape(x);
      const n = numel(xs) / xs[xs.length - 1];
      const idx = g.nodes.indexOf(bn);
      g.nodes.splice(idx, 1);
      const out = bn.outputs[0];
      g.values.delete(out);
      const [y, bMean, bVar] = g.addAt(
        idx,
        'batchnorm_train',
        [x, gamma, beta],
        { eps: bn.attrs.eps ?? 1e-5 },
        bn.name,
      );
      const act = bn.attrs.act;
      const yAct =
        act && act !== 'none' ? g.addAt(idx + 1, 'activation', [y], { act }, g.freshName(`${bn.name}.act`))[0] : y;
      for (const n2 of g.nodes) n2.inputs = n2.inputs.map((v) => (v === out ? yAct : v));
      g.outputs = g.outputs.map((v) => (v === out ? yAct : v));
      if (spec.logits === out) throw new Error(`logits "${out}" cannot be a batchnorm output`);
      for (const [stat, batch, scale] of [
        [mean, bMean, 1],
        [variance, bVar, n / Math.max(1, n - 1)],
      ] as const) {
        if (g.value(stat).kind === 'param') throw new InputError(`"${stat}" is a BN running statistic, not trainable`);
        g.makeParam(stat);
        bnStats.push([stat, g.op('ema_update', [stat, batch], { momentum, scale }, g.freshName(`${stat}.update`))]);
      }
    }
  }
  const [N, K] = logits;
  const targets = g.input(g.freshName('targets'), [N, K]);
  const loss = g.op('softmax_xent', [spec.logits, targets], {}, g.freshName('loss'));
  g.outputs = [loss];
  return { g, inputName: inputs[0].name, targets, loss, bnStats };
}

/** Σ‖g‖² over `grads` and the clipped hyper, or hyper itself when not clipping. */
function clipped(g: Graph, grads: string[], hyper: string, clipNorm: number | undefined): string {
  if (clipNorm === undefined) return hyper;
  let s: string | undefined;
  grads.forEach((d, i) => {
    s = g.op('sum_squares', s === undefined ? [d] : [d, s], {}, g.freshName(`clip.sumsq${i}`));
  });
  return g.op('grad_clip_scale', [s!, hyper], { maxNorm: clipNorm }, g.freshName('clip.hyper'));
}

/**
 * Optimiser nodes for every parameter with its gradient; their outputs update parameter and
 * slots. Each goes right after the last node its inputs need and the last reader of its parameter,
 * so a gradient dies as soon as it is used and the executor copies the update in at once (without
 * clipping, which needs every gradient first, that is during backward).
 */
function addOptimizer(g: Graph, params: string[], grads: string[], hyper: string, o: OptimizerSpec): void {
  const made = (v: string) => g.nodes.findIndex((n) => n.outputs.includes(v));
  params.forEach((p, i) => {
    const shape = g.shape(p);
    const slots = slotNames(p, o).map((s) => (g.values.has(s) ? s : g.param(s, shape, new Float32Array(numel(shape)))));
    let lastRead = -1;
    g.nodes.forEach((n, k) => {
      if (n.inputs.includes(p)) lastRead = k;
    });
    const at = Math.max(made(grads[i]), made(hyper), lastRead) + 1;
    const name = g.freshName(`${p}.${o.kind}`);
    const outs =
      o.kind === 'sgd'
        ? g.addAt(
            at,
            'sgd_update',
            [p, grads[i], ...slots, hyper],
            { momentum: o.momentum, nesterov: !!o.nesterov, weightDecay: o.weightDecay },
            name,
          )
        : g.addAt(
            at,
            'adamw_update',
            [p, grads[i], ...slots, hyper],
            { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay },
            name,
          );
    [p, ...slots].forEach((t, k) => {
      g.update(t, outs[k]);
    });
  });
}

const bytesOf = (g: Graph, names: string[]) => names.reduce((s, n) => s + BufferPool.round(numel(g.shape(n)) * 4), 0);

/** The whole training step as a graph: prepareTraining, grad, clipping, the optimiser, all updates. */
export function buildTrainGraph(forward: Graph, spec: TrainSpec): Prepared & { hyper: string; grads: string[] } {
  const prepared = prepareTraining(forward, spec);
  const { g, loss, bnStats } = prepared;
  const grads = grad(g, loss, spec.trainable);
  const hyper = g.input(g.freshName('hyper'), [HYPER.length]);
  addOptimizer(g, spec.trainable, grads, clipped(g, grads, hyper, spec.clipNorm), spec.optimizer);
  for (const [stat, src] of bnStats) g.update(stat, src);
  g.prune();
  return { ...prepared, hyper, grads };
}

export class Trainer {
  private stepCount = 0;
  /** Micro-batches accumulated since the last apply. */
  private pending = 0;
  private accumPlan?: Plan;
  private applyPlan?: Plan;
  private predictPlan?: Plan;

  private constructor(
    private readonly device: Device,
    private readonly forward: Graph,
    readonly spec: TrainSpec,
    private readonly opts: CompileOptions,
    /** The training step's graph (forward, loss, backward, updates), as compiled. */
    readonly graph: Graph,
    private readonly plan: Plan,
    private readonly prepared: Prepared,
    readonly inputName: string,
    readonly batch: number,
    readonly classes: number,
    readonly memory: TrainMemoryReport,
    private readonly hyperName: string,
  ) {}

  static async create(device: Device, forward: Graph, spec: TrainSpec, opts: CompileOptions = {}): Promise<Trainer> {
    if (!spec.trainable.length) throw new InputError('nothing to train: spec.trainable is empty');
    const prepared = buildTrainGraph(forward, spec);
    const { g, inputName, bnStats, grads, hyper } = prepared;
    const plan = await compile(device, g, opts);
    const [N, K] = g.shape(spec.logits);
    const memory: TrainMemoryReport = {
      ...plan.memory,
      trainableBytes: bytesOf(g, spec.trainable),
      optimizerBytes: bytesOf(
        g,
        spec.trainable.flatMap((p) => slotNames(p, spec.optimizer)),
      ),
      bnStatBytes: bytesOf(
        g,
        bnStats.map(([s]) => s),
      ),
      gradientBytes: bytesOf(g, grads),
    };
    return new Trainer(device, forward, spec, opts, g, plan, prepared, inputName, N, K, memory, hyper);
  }

  /** Names readState returns (besides 'step'): parameters, optimiser slots, BN running statistics. */
  get stateNames(): string[] {
    return [
      ...this.spec.trainable,
      ...this.spec.trainable.flatMap((p) => slotNames(p, this.spec.optimizer)),
      ...this.prepared.bnStats.map(([s]) => s),
    ];
  }

  /** Steps taken so far (each `step` and each `apply` counts one). */
  get steps(): number {
    return this.stepCount;
  }

  private smoothed(targets: Float32Array): Float32Array {
    if (targets.length !== this.batch * this.classes)
      throw new InputError(
        `targets need ${this.batch}×${this.classes} = ${this.batch * this.classes} values, got ${targets.length}`,
      );
    const e = this.spec.labelSmoothing ?? 0;
    return e ? targets.map((t) => t * (1 - e) + e / this.classes) : targets;
  }

  private hyper(lr: number, gradScale: number): Float32Array {
    const o = this.spec.optimizer;
    return hyperFor(lr, gradScale, this.stepCount, o.kind === 'adamw' ? [o.beta1, o.beta2] : undefined);
  }

  async step(x: Float32Array, targets: Float32Array, lr: number): Promise<{ loss: number }> {
    const t = this.smoothed(targets);
    this.stepCount++;
    const feeds = { [this.inputName]: x, [this.prepared.targets]: t, [this.hyperName]: this.hyper(lr, 1) };
    const { outputs } = await this.plan.run(feeds);
    return { loss: outputs[this.prepared.loss].data[0] };
  }

  /** The accumulation plan: forward, backward, '<p>#grad' += gradient (compiled on first use). */
  private async accumulation(): Promise<Plan> {
    if (this.accumPlan) return this.accumPlan;
    const p = prepareTraining(this.forward, this.spec);
    const { g } = p;
    const grads = grad(g, p.loss, this.spec.trainable);
    this.spec.trainable.forEach((w, i) => {
      const acc = g.param(`${w}#grad`, g.shape(w), new Float32Array(numel(g.shape(w))));
      g.update(acc, g.op('add', [acc, grads[i]], {}, g.freshName(`${w}.accumulate`)));
    });
    for (const [stat, src] of p.bnStats) g.update(stat, src);
    g.prune();
    this.accumPlan = await compile(this.device, g, { ...this.opts, shareParams: this.plan });
    // The apply plan: the optimiser on the accumulated gradients.
    const a = new Graph();
    for (const w of this.spec.trainable) {
      a.param(w, g.shape(w), new Float32Array(numel(g.shape(w))));
      a.param(`${w}#grad`, g.shape(w), new Float32Array(numel(g.shape(w))));
    }
    const accs = this.spec.trainable.map((w) => `${w}#grad`);
    const hyper = a.input('hyper', [HYPER.length]);
    addOptimizer(a, this.spec.trainable, accs, clipped(a, accs, hyper, this.spec.clipNorm), this.spec.optimizer);
    this.applyPlan = await compile(this.device, a, { ...this.opts, shareParams: [this.plan, this.accumPlan] });
    return this.accumPlan;
  }

  async accumulate(x: Float32Array, targets: Float32Array): Promise<{ loss: number }> {
    const t = this.smoothed(targets);
    const plan = await this.accumulation();
    const loss = plan.graph.outputs[0];
    const { outputs } = await plan.run({ [this.inputName]: x, [this.prepared.targets]: t });
    this.pending++;
    return { loss: outputs[loss].data[0] };
  }

  /**
   * The loss and every trainable parameter's gradient for one batch, by parameter name, without
   * updating the parameters (BN running statistics do move, as in any training-mode forward).
   */
  async gradients(x: Float32Array, targets: Float32Array): Promise<{ loss: number; grads: Map<string, HostTensor> }> {
    if (this.pending) throw new Error(`gradients() between accumulate() and apply() (${this.pending} pending)`);
    const { loss } = await this.accumulate(x, targets);
    const acc = await this.accumPlan!.readParams(this.spec.trainable.map((w) => `${w}#grad`));
    await this.clearAccumulators();
    return { loss, grads: new Map(this.spec.trainable.map((w) => [w, acc.get(`${w}#grad`)!])) };
  }

  private async clearAccumulators(): Promise<void> {
    for (const w of this.spec.trainable)
      await this.accumPlan!.writeParam(`${w}#grad`, new Float32Array(numel(this.graph.shape(w))));
    this.pending = 0;
  }

  async apply(lr: number, microBatches: number): Promise<void> {
    if (!this.pending || !this.applyPlan) throw new Error('apply() without accumulate() since the last apply');
    if (!(microBatches >= 1)) throw new InputError(`microBatches must be ≥ 1, got ${microBatches}`);
    this.stepCount++;
    await this.applyPlan.run({ hyper: this.hyper(lr, 1 / microBatches) });
    await this.clearAccumulators();
  }

  async predict(x: Float32Array): Promise<Float32Array> {
    if (!this.predictPlan) {
      const g = this.forward.clone();
      for (const p of [...this.spec.trainable, ...this.prepared.bnStats.map(([s]) => s)]) g.makeParam(p);
      g.outputs = [this.spec.logits];
      g.prune();
      this.predictPlan = await compile(this.device, g, { ...this.opts, shareParams: this.plan });
    }
    const { outputs } = await this.predictPlan.run({ [this.inputName]: x });
    return outputs[this.spec.logits].data;
  }

  async readState(): Promise<Map<string, HostTensor>> {
    const state = await this.plan.readParams(this.stateNames);
    state.set(STEP_KEY, { shape: [1], data: new Float32Array([this.stepCount]) });
    return state;
  }

  async writeState(state: Map<string, HostTensor>): Promise<void> {
    const names = this.stateNames;
    const missing = [...names, STEP_KEY].filter((n) => !state.has(n));
    const unknown = [...state.keys()].filter((n) => n !== STEP_KEY && !names.includes(n));
    if (missing.length || unknown.length)
      throw new InputError(
        `training state: ${missing.length ? `missing ${missing.join(', ')}` : ''}${missing.length && unknown.length ? '; ' : ''}` +
          `${unknown.length ? `unknown ${unknown.join(', ')}` : ''}`,
      );
    for (const n of names) {
      const t = state.get(n)!;
      if (fmtShape(t.shape) !== fmtShape(this.graph.shape(n)))
        throw new ShapeError(
          `training state "${n}" is ${fmtShape(t.shape)}, expected ${fmtShape(this.graph.shape(n))}`,
        );
      await this.plan.writeParam(n, t.data);
    }
    const step = state.get(STEP_KEY)!.data[0];
    if (!Number.isInteger(step) || step < 0) throw new InputError(`training state "step" must be a count, got ${step}`);
    this.stepCount = step;
  }

  dispose(): void {
    this.predictPlan?.dispose();
    this.applyPlan?.dispose();
    this.accumPlan?.dispose();
    this.plan.dispose();
  }
}
