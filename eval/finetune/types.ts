// What the fine-tuning loop needs from a trainer: exactly the methods of engine/train.ts's
// Trainer (the WebGPU training step) that eval/finetune/ calls, so that Trainer plugs in as is and
// tests can drive a plain-TS trainer through the same loop.

import type { HostTensor } from '../../kernels/kernel.js';

export interface TrainerLike {
  /** N of the forward input: every step and every predict() takes exactly this many examples. */
  readonly batch: number;
  /** K, the logits' width. */
  readonly classes: number;
  /** One optimiser step on inputs x with targets [N, K] (probabilities) at learning rate lr. */
  step(x: Float32Array, targets: Float32Array, lr: number): Promise<{ loss: number }>;
  /** Gradient accumulation: adds one micro-batch's gradients (inputs and targets as step's). */
  accumulate(x: Float32Array, targets: Float32Array): Promise<{ loss: number }>;
  /** One update from the gradients accumulated over `microBatches` micro-batches (their mean). */
  apply(lr: number, microBatches: number): Promise<void>;
  /** Logits [N, K] with the current weights (BatchNorm in eval mode). */
  predict(x: Float32Array): Promise<Float32Array>;
  /** The names readState() returns; a checkpoint refuses to fill any of them from the starting weights. */
  readonly stateNames?: readonly string[];
  /** Everything that makes a resume exact, by graph value name. */
  readState(): Promise<Map<string, HostTensor>>;
  writeState(state: Map<string, HostTensor>): Promise<void>;
  dispose(): void;
}
