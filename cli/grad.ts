// `npx cnnlab grad`: the loss and every parameter's gradient for one batch, in the checkpoint's own
// tensor names and layouts (timm/torchvision), so anyone can check our gradients against their
// framework. The network runs as fine-tuning runs it (engine/train.ts: BatchNorm with batch
// statistics unless --bn frozen); the loss is the batch mean of −Σ t·log softmax(logits), with t
// the --labels rows (class indices become one-hot rows). docs/autodiff.md says how this is checked
// against PyTorch. Node runtime (Dawn).

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createDevice } from '../engine/device.js';
import { Graph } from '../engine/graph.js';
import { readNpyPath } from '../engine/npy.js';
import { encodeSafetensors, openSafetensorsPath } from '../engine/safetensors.js';
import { Trainer } from '../engine/train.js';
import { checkpointTensors } from '../eval/finetune/checkpoint.js';
import { fmtShape, type HostTensor } from '../kernels/kernel.js';
import { NetBuilder } from '../models/layers.js';
import { getModel, loadModel } from '../models/registry.js';
import { RecordingWeights } from '../models/weights.js';
import { oneOf, parseCommand, resolveWeights } from './common.js';
import { hubWeightsOption } from './hub.js';

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

export async function gradCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    model: { type: 'string' },
    weights: { type: 'string' },
    input: { type: 'string' },
    labels: { type: 'string' },
    bn: { type: 'string', default: 'train' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string' },
  });
  if (!values.input || !values.labels || !values.out)
    throw new Error(
      'usage: npx cnnlab grad --model NAME --weights FILE --input x.npy --labels y.npy --out g.safetensors',
    );
  const hub = await hubWeightsOption(values.weights, values.model);
  if (!values.model && !hub) throw new Error('--model is required (npx cnnlab models lists them)');
  const def = hub?.def ?? getModel(values.model!);
  if (def.embeddedWeights !== undefined)
    throw new Error(`${def.name}: gradients are written in a checkpoint's names; an ONNX model has none`);
  if (!values.weights) throw new Error('--weights is required: a .safetensors file, builtin, random or hf:ORG/REPO');
  const bn = oneOf('bn', values.bn, ['train', 'frozen']);
  const seed = Number(values.seed);
  const x = await readNpyPath(values.input);
  const [n, c, h, w] = x.shape;
  if (x.shape.length !== 4 || c !== 3 || h !== w)
    throw new Error(`--input must be NCHW [N,3,S,S] (square, 3 channels, preprocessed), got ${fmtShape(x.shape)}`);
  const weightsPath = hub ? hub.weightsPath : values.weights === 'random' ? null : resolveWeights(def, values.weights);
  const model = await loadModel(def, {
    weights: weightsPath ? await openSafetensorsPath(weightsPath) : 'random',
    seed,
    batch: n,
    size: h,
  });
  const targets = targetsFrom(await readNpyPath(values.labels), n, model.classes);

  // What the builder asks for, by its names and in our layouts: the parameters to differentiate.
  const rec = new RecordingWeights();
  const dry = new Graph();
  def.build(new NetBuilder(dry, rec), dry.input('image', [n, h, w, 3]), model.classes);
  const requests = rec.requests.filter((r) => !isStat(r.kind) && model.graph.values.get(r.name)?.kind === 'const');
  const trainable = [...new Set(requests.map((r) => r.name))];

  const device = await createDevice();
  const trainer = await Trainer.create(device, model.graph, {
    logits: model.logits,
    trainable,
    optimizer: { kind: 'sgd', momentum: 0, weightDecay: 0 },
    batchNorm: bn,
  });
  try {
    const { loss, grads } = await trainer.gradients(x.data, targets);
    const tensors = checkpointTensors(requests, def.mapping, new Map(), grads, new Set(trainable));
    tensors.loss = { shape: [], data: Float32Array.of(loss) };
    writeFileSync(
      values.out,
      encodeSafetensors(tensors, {
        model: def.name,
        weights: model.weights,
        batch_norm: bn,
        loss: 'mean over the batch of -sum(t * log_softmax(logits))',
        written_by: 'cnnlab grad',
      }),
    );
    console.log(
      `${def.name} (${model.weights}), input ${fmtShape(x.shape)}, BN ${bn}: loss ${loss.toPrecision(7)}; ` +
        `${Object.keys(tensors).length - 1} gradients → ${path.resolve(values.out)}`,
    );
  } finally {
    trainer.dispose();
    device.destroy();
  }
  return 0;
}
