// What `npx cnnlab grad` computes, in either runtime (docs/autodiff.md, "npx cnnlab grad"): the
// loss and every parameter's gradient for one batch, in the checkpoint's own tensor names and
// PyTorch layouts, encoded as one safetensors file. The network runs as fine-tuning runs it
// (engine/train.ts: BatchNorm with batch statistics unless bn is 'frozen'); the loss is the batch
// mean of −Σ t·log softmax(logits), with t the label rows (class indices become one-hot rows).
// cli/grad.ts calls this in Node (Dawn) and, through web/api.ts, in the page (browser WebGPU);
// nothing here touches files.

import type { Device } from '../../engine/device.js';
import { Graph } from '../../engine/graph.js';
import { encodeSafetensors, type SafetensorsFile } from '../../engine/safetensors.js';
import { Trainer } from '../../engine/train.js';
import { fmtShape, type HostTensor } from '../../kernels/kernel.js';
import { NetBuilder } from '../../models/layers.js';
import { loadModel, type ModelDef } from '../../models/registry.js';
import { RecordingWeights } from '../../models/weights.js';
import { checkpointTensors } from './checkpoint.js';

/** The loss as the file's metadata states it. */
export const GRAD_LOSS = 'mean over the batch of -sum(t * log_softmax(logits))';

const isStat = (kind: string) => kind === 'mean' || kind === 'var';

/** Targets [N, K] from labels: [N] class indices (one-hot) or [N, K] probabilities as given. */
export function targetsFrom(labels: HostTensor, n: number, classes: number): Float32Array {
  const s = labels.shape;
  if (s.length === 1 && s[0] === n) {
    const t = new Float32Array(n * classes);
    labels.data.forEach((c, i) => {
      if (!Number.isInteger(c) || c < 0 || c >= classes)
        throw new Error(`--labels: entry ${i} is ${c}, not a class index in 0..${classes - 1}`);
      t[i * classes + c] = 1;
    });
    return t;
  }
  if (s.length === 2 && s[0] === n && s[1] === classes) return labels.data;
  throw new Error(
    `--labels must be [${n}] class indices or [${n},${classes}] probabilities for this input and model, got ${fmtShape(s)}`,
  );
}

export interface GradOptions {
  def: ModelDef;
  weights: 'random' | SafetensorsFile;
  seed: number;
  /** The preprocessed batch, NCHW [N, 3, S, S]. */
  input: HostTensor;
  /** [N] class indices or [N, K] probabilities. */
  labels: HostTensor;
  bn: 'train' | 'frozen';
}

export interface GradResult {
  loss: number;
  /** Every parameter's gradient by checkpoint name, in PyTorch's layout. */
  gradients: Record<string, HostTensor>;
  /** What the weights were (the loaded model's description). */
  weights: string;
}

/** The loss and every parameter's gradient for one batch, by checkpoint name. */
export async function checkpointGradients(device: Device, o: GradOptions): Promise<GradResult> {
  const { def, input: x } = o;
  if (def.embeddedWeights !== undefined)
    throw new Error(`${def.name}: gradients are written in a checkpoint's names; an ONNX model has none`);
  const [n, c, h, w] = x.shape;
  if (x.shape.length !== 4 || c !== 3 || h !== w)
    throw new Error(`--input must be NCHW [N,3,S,S] (square, 3 channels, preprocessed), got ${fmtShape(x.shape)}`);
  const model = await loadModel(def, { weights: o.weights, seed: o.seed, batch: n, size: h });
  const targets = targetsFrom(o.labels, n, model.classes);

  // What the builder asks for, by its names and in our layouts: the parameters to differentiate.
  const rec = new RecordingWeights();
  const dry = new Graph();
  def.build(new NetBuilder(dry, rec), dry.input('image', [n, h, w, 3]), model.classes);
  const requests = rec.requests.filter((r) => !isStat(r.kind) && model.graph.values.get(r.name)?.kind === 'const');
  const trainable = [...new Set(requests.map((r) => r.name))];

  const trainer = await Trainer.create(device, model.graph, {
    logits: model.logits,
    trainable,
    optimizer: { kind: 'sgd', momentum: 0, weightDecay: 0 },
    batchNorm: o.bn,
  });
  try {
    const { loss, grads } = await trainer.gradients(x.data, targets);
    const gradients = checkpointTensors(requests, def.mapping, new Map(), grads, new Set(trainable));
    return { loss, gradients, weights: model.weights };
  } finally {
    trainer.dispose();
  }
}

/** The file `npx cnnlab grad` writes: the gradients and the scalar `loss`, with what made them. */
export function encodeGradients(r: GradResult, meta: { model: string; bn: 'train' | 'frozen' }): Uint8Array {
  return encodeSafetensors(
    { ...r.gradients, loss: { shape: [], data: Float32Array.of(r.loss) } },
    { model: meta.model, weights: r.weights, batch_norm: meta.bn, loss: GRAD_LOSS, written_by: 'cnnlab grad' },
  );
}
