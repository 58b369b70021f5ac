// Fine-tuning checkpoints (docs/finetune.md), two files per save, each written atomically (a
// temporary file in the same folder, then a rename, so a kill leaves the old file or the new one):
//
//   <dir>/step-NNNNNN.safetensors, final.safetensors   the weights in the checkpoint's own names and
//        PyTorch layouts (models/weights.ts's toTorch and the model's WeightMapping), loadable by
//        `--weights FILE` of infer, robustness and transfer (the head's size gives the classes)
//   <dir>/state.safetensors   everything a resume needs: the trainer's state by graph value name
//        (parameters, optimiser slots '<param>#momentum' …, BatchNorm running statistics, the step
//        counter) and, in the metadata, the run's progress (FinetuneProgress: step, seed, data
//        order key, loss curve, evaluations)
//
// The data order and every random draw are functions of (seed, step) (eval/finetune/data.ts,
// augment.ts), so the step and the seed are the whole RNG state; `dataKey` identifies the
// training items so a resume on other data is refused.

import type { SafetensorsFile } from '../../engine/safetensors.js';
import { encodeSafetensors } from '../../engine/safetensors.js';
import type { HostTensor } from '../../kernels/kernel.js';
import type { WeightMapping } from '../../models/weights.js';
import { type ParamRequest, torchShape, toTorch } from '../../models/weights.js';

export const STATE_FORMAT = 'cnnlab-finetune-state/1';

/** One evaluation: accuracy on a split after `step` steps. */
export interface EvalPoint {
  step: number;
  split: 'val' | 'test';
  accuracy: number;
  n: number;
}

/** The run's progress, saved in the state file's metadata. */
export interface FinetuneProgress {
  /** Steps done (the next step to run). */
  step: number;
  seed: number;
  /** Identifies the training items and their order's inputs (count, ids, batch). */
  dataKey: string;
  /** Mean loss of each step so far (index = step). */
  loss: number[];
  /** Learning rate of each step so far. */
  lr: number[];
  evals: EvalPoint[];
}

/**
 * The weights as a checkpoint: request by request, the trained value (else the initial one, for
 * frozen tensors) in PyTorch layout. A name in `required` (what the trainer updates: parameters,
 * BatchNorm running statistics) must come from `trained`, so a naming mismatch can never save the
 * starting value in its place; a trained tensor of another shape is an error too.
 */
export function checkpointTensors(
  requests: readonly ParamRequest[],
  mapping: WeightMapping,
  initial: ReadonlyMap<string, Float32Array>,
  trained: ReadonlyMap<string, HostTensor>,
  required: ReadonlySet<string> = new Set(),
): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const r of requests) {
    const t = trained.get(r.name);
    if (t && t.shape.join() !== r.shape.join())
      throw new Error(`checkpoint: the trainer's "${r.name}" is [${t.shape}], the model asks for [${r.shape}]`);
    if (!t && required.has(r.name))
      throw new Error(`checkpoint: the trainer's state has no "${r.name}", which it trains`);
    const data = t ? t.data : initial.get(r.name);
    if (!data) throw new Error(`checkpoint: no value for "${r.name}" (neither trained nor initial)`);
    if (data.length !== r.shape.reduce((a, b) => a * b, 1))
      throw new Error(`checkpoint: "${r.name}" has ${data.length} values, the model asks for [${r.shape}]`);
    out[mapping.fileName?.(r.name) ?? r.name] = { shape: torchShape(r), data: toTorch(r, data) };
  }
  return out;
}

/**
 * Where a run's checkpoint files go, by file name (STATE_FILE, step-NNNNNN.safetensors …):
 * checkpoint-files.ts's folder in Node; a run without a store saves and resumes nothing (the page).
 */
export interface CheckpointStore {
  /** How the file is named in messages and results (a folder's store: its path). */
  where(name: string): string;
  exists(name: string): Promise<boolean>;
  open(name: string): Promise<SafetensorsFile>;
  /** Replace the file atomically: a kill leaves the old file or the new one. */
  write(name: string, bytes: Uint8Array): Promise<void>;
}

/** Write `bytes` to `file` atomically: a temporary file beside it, then a rename. */
export async function writeAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const fs = await import('node:fs/promises');
  const tmp = `${file}.tmp-${process.pid}`;
  const h = await fs.open(tmp, 'w');
  try {
    await h.writeFile(bytes);
    await h.sync();
  } finally {
    await h.close();
  }
  await fs.rename(tmp, file);
}

/** The weights file of a checkpoint (metadata: model, step, classes). */
export function encodeWeights(
  tensors: Record<string, HostTensor>,
  meta: { model: string; step: number; classes: number },
): Uint8Array {
  return encodeSafetensors(tensors, {
    format: 'pt',
    model: meta.model,
    step: String(meta.step),
    classes: String(meta.classes),
    written_by: 'cnnlab finetune',
  });
}

/** The state file: trainer state tensors plus the progress as JSON metadata. */
export function encodeState(state: ReadonlyMap<string, HostTensor>, progress: FinetuneProgress): Uint8Array {
  return encodeSafetensors(Object.fromEntries(state), { format: STATE_FORMAT, progress: JSON.stringify(progress) });
}

/** Read a state file back: the trainer state and the progress. Throws naming what is wrong. */
export async function decodeState(
  file: SafetensorsFile,
): Promise<{ state: Map<string, HostTensor>; progress: FinetuneProgress }> {
  const what = file.name ?? 'state file';
  if (file.metadata.format !== STATE_FORMAT)
    throw new Error(`${what} is not a cnnlab fine-tuning state (format "${file.metadata.format ?? 'none'}")`);
  let progress: FinetuneProgress;
  try {
    progress = JSON.parse(file.metadata.progress ?? '') as FinetuneProgress;
  } catch {
    throw new Error(`${what}: its progress metadata is not JSON`);
  }
  if (!Number.isInteger(progress.step) || !Array.isArray(progress.loss) || progress.loss.length !== progress.step)
    throw new Error(`${what}: progress at step ${progress.step} with ${progress.loss?.length} losses is inconsistent`);
  const state = new Map<string, HostTensor>();
  for (const name of file.tensors.keys()) state.set(name, await file.read(name));
  return { state, progress };
}
