// The fine-tuning loop (docs/finetune.md): for each step, the batch's pool positions (data.ts),
// its augmented inputs and targets (a TrainFeed), the schedule's learning rate, one trainer step;
// evaluations every `evalEvery` steps and at the end; checkpoints every `checkpointEvery` steps
// and at the end (checkpoint.ts). A resume loads the last state file into the trainer and
// continues at its step: the data order and every random draw depend on (seed, step) only, so
// the run ends with the same weights and loss curve as one never interrupted. Checkpoints go
// through a CheckpointStore (checkpoint.ts): a folder's files in Node (`dir`,
// checkpoint-files.ts, loaded only when a folder is given), none in the page.

import type { HostTensor } from '../../kernels/kernel.js';
import type { ParamRequest, WeightMapping } from '../../models/weights.js';
import {
  type CheckpointStore,
  checkpointTensors,
  decodeState,
  encodeState,
  encodeWeights,
  type EvalPoint,
  type FinetuneProgress,
} from './checkpoint.js';
import { stepItems } from './data.js';
import { learningRate, type Schedule } from './schedule.js';
import type { TrainerLike } from './types.js';

/** Inputs and targets of a step (its micro-batch `micro`), made from the pool positions of its items. */
export interface TrainFeed {
  batch(step: number, items: readonly number[], micro?: number): Promise<{ x: Float32Array; targets: Float32Array }>;
}

/** A split to evaluate: batches of at most the trainer's batch (x padded to the full batch). */
export interface EvalFeed {
  split: 'val' | 'test';
  batches(batch: number): AsyncIterable<{ x: Float32Array; labels: ArrayLike<number> }>;
}

export interface StepInfo {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  /** Examples per second over the steps run in this process. */
  imagesPerSecond: number;
  /** Seconds left at that rate. */
  etaSeconds: number;
}

export interface FinetuneLoopOptions {
  trainer: TrainerLike;
  schedule: Schedule;
  feed: TrainFeed;
  /** Pool positions this run trains on. */
  train: readonly number[];
  /** Micro-batches of the trainer's batch per step (gradient accumulation); default 1. */
  microBatches?: number;
  seed: number;
  /** Identifies the training data (state files from other data are refused). */
  dataKey: string;
  evals?: EvalFeed[];
  /** Evaluate the 'val' feeds every N steps (0: only at the end). */
  evalEvery?: number;
  /** Save state and weights every N steps (0: only at the end). */
  checkpointEvery?: number;
  /** Checkpoint folder (Node); without it or a store nothing is saved and nothing resumed. */
  dir?: string;
  /** Where checkpoints go, in place of a folder. */
  store?: CheckpointStore;
  resume?: boolean;
  /** How to write the weights files (requests, mapping and starting weights of the model). */
  weights?: {
    model: string;
    requests: readonly ParamRequest[];
    mapping: WeightMapping;
    initial: ReadonlyMap<string, Float32Array>;
  };
  onStep?(info: StepInfo): void;
  onEval?(e: EvalPoint): void;
  /** Stop after this many steps without the final evaluation and save, as a kill would (tests). */
  stopAfter?: number;
}

export interface FinetuneLoopResult {
  progress: FinetuneProgress;
  /** False when stopAfter ended the loop early. */
  complete: boolean;
  /** The step a resume started from (0 for a fresh run). */
  resumedFrom: number;
  /** The weights file written at the end. */
  finalWeights?: string;
}

export const STATE_FILE = 'state.safetensors';
export const FINAL_WEIGHTS = 'final.safetensors';

/** Accuracy of the trainer's current weights on a feed (argmax, ties to the lower class). */
export async function evaluate(trainer: TrainerLike, feed: EvalFeed): Promise<{ accuracy: number; n: number }> {
  let right = 0,
    n = 0;
  const k = trainer.classes;
  for await (const { x, labels } of feed.batches(trainer.batch)) {
    const logits = await trainer.predict(x);
    for (let i = 0; i < labels.length; i++) {
      let best = 0;
      for (let c = 1; c < k; c++) if (logits[i * k + c] > logits[i * k + best]) best = c;
      if (best === labels[i]) right++;
      n++;
    }
  }
  if (n === 0) throw new Error(`the ${feed.split} split has no examples`);
  return { accuracy: right / n, n };
}

export async function finetuneLoop(o: FinetuneLoopOptions): Promise<FinetuneLoopResult> {
  const { trainer, schedule: sc, seed } = o;
  const M = o.microBatches ?? 1;
  if (!Number.isInteger(M) || M < 1) throw new RangeError(`micro-batches must be a positive integer, got ${M}`);
  /** Examples per optimiser step. */
  const B = trainer.batch * M;
  let progress: FinetuneProgress = { step: 0, seed, dataKey: o.dataKey, loss: [], lr: [], evals: [] };
  const store = o.store ?? (o.dir ? (await import('./checkpoint-files.js')).folderStore(o.dir) : undefined);
  const statePath = store?.where(STATE_FILE);
  if (o.resume && store && (await store.exists(STATE_FILE))) {
    const { state, progress: p } = await decodeState(await store.open(STATE_FILE));
    if (p.seed !== seed) throw new Error(`--resume: ${statePath} was trained with seed ${p.seed}, not ${seed}`);
    if (p.dataKey !== o.dataKey)
      throw new Error(`--resume: ${statePath} was trained on other data (${p.dataKey}), not ${o.dataKey}`);
    if (p.step > sc.steps) throw new Error(`--resume: ${statePath} is at step ${p.step}, past the ${sc.steps} steps`);
    await trainer.writeState(state);
    progress = p;
  }
  const resumedFrom = progress.step;

  const save = async (final: boolean) => {
    if (!store) return undefined;
    const state = await trainer.readState();
    let weightsFile: string | undefined;
    if (o.weights) {
      const w = o.weights;
      const name = final ? FINAL_WEIGHTS : `step-${String(progress.step).padStart(6, '0')}.safetensors`;
      weightsFile = store.where(name);
      const required = new Set(trainer.stateNames ?? []);
      const tensors = checkpointTensors(w.requests, w.mapping, w.initial, state as Map<string, HostTensor>, required);
      await store.write(
        name,
        encodeWeights(tensors, { model: w.model, step: progress.step, classes: trainer.classes }),
      );
    }
    // The state last: a weights file at step s exists whenever the state says s.
    await store.write(STATE_FILE, encodeState(state, progress));
    return weightsFile;
  };
  const runEvals = async (split: 'val' | 'test' | 'all') => {
    for (const f of o.evals ?? []) {
      if (split !== 'all' && f.split !== split) continue;
      const r = await evaluate(trainer, f);
      const e: EvalPoint = { step: progress.step, split: f.split, accuracy: r.accuracy, n: r.n };
      progress.evals.push(e);
      o.onEval?.(e);
    }
  };

  const t0 = performance.now();
  for (let s = progress.step; s < sc.steps; s++) {
    const items = stepItems(o.train.length, B, s, seed).map((i) => o.train[i]);
    const lr = learningRate(sc, s);
    let loss: number;
    if (M === 1) {
      const { x, targets } = await o.feed.batch(s, items);
      ({ loss } = await trainer.step(x, targets, lr));
    } else {
      loss = 0;
      for (let m = 0; m < M; m++) {
        const part = items.slice(m * trainer.batch, (m + 1) * trainer.batch);
        const { x, targets } = await o.feed.batch(s, part, m);
        loss += (await trainer.accumulate(x, targets)).loss / M;
      }
      await trainer.apply(lr, M);
    }
    if (!Number.isFinite(loss)) throw new Error(`fine-tuning diverged: the loss of step ${s} is ${loss} (lr ${lr})`);
    progress.loss.push(loss);
    progress.lr.push(lr);
    progress.step = s + 1;
    const secs = (performance.now() - t0) / 1000;
    const done = s + 1 - resumedFrom;
    const ips = secs > 0 ? (done * B) / secs : 0;
    o.onStep?.({
      step: s + 1,
      steps: sc.steps,
      loss,
      lr,
      imagesPerSecond: ips,
      etaSeconds: ips > 0 ? ((sc.steps - s - 1) * B) / ips : 0,
    });
    const last = s + 1 === sc.steps;
    if (!last && o.evalEvery && (s + 1) % o.evalEvery === 0) await runEvals('val');
    if (!last && o.checkpointEvery && (s + 1) % o.checkpointEvery === 0) await save(false);
    if (!last && o.stopAfter !== undefined && s + 1 >= o.stopAfter) return { progress, complete: false, resumedFrom };
  }
  // The end: every split once (unless a resumed run already did it), then the final save.
  if (!progress.evals.some((e) => e.step === sc.steps)) await runEvals('all');
  const finalWeights = await save(true);
  return { progress, complete: true, resumedFrom, finalWeights };
}
