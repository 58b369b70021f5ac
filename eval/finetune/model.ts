// The network a fine-tuning run trains: a registered model with pre-trained (or seeded random)
// weights and a new head of `classes` outputs, zero-initialised as BiT-HyperRule asks (or seeded
// random). The forward graph reads NHWC images [N, S, S, 3] (what the augmentation ops produce).
//
// The head is the checkpoint tensor ModelDef.headWeight and its bias (the same name ending in
// `.bias`); every other tensor comes from the checkpoint, checked in full by models/weights.ts's
// loader. Trainable: every parameter but BatchNorm's running statistics (the trainer updates
// those itself) and a ViT position embedding resampled to another grid (it is frozen there, so
// a checkpoint keeps the original grid and loads back at any size, resampled the same way).

import { Graph } from '../../engine/graph.js';
import type { SafetensorsFile } from '../../engine/safetensors.js';
import { NetBuilder, RandomWeights, type WeightSource } from '../../models/layers.js';
import type { ModelDef } from '../../models/registry.js';
import { loadWeights, type ParamRequest, RecordingWeights } from '../../models/weights.js';

export interface FinetuneModel {
  def: ModelDef;
  graph: Graph;
  /** The graph's image input, [batch, size, size, 3] NHWC. */
  input: string;
  logits: string;
  batch: number;
  size: number;
  classes: number;
  /** Every tensor the model asks for, by builder name, in our layouts (in build order). */
  requests: ParamRequest[];
  /** The starting value of each request, by builder name (request-shaped). */
  initial: Map<string, Float32Array>;
  /** Graph constants the optimiser updates. */
  trainable: string[];
  /** The head's builder names (weight, bias). */
  head: string[];
  /** What the weights were, for the summary. */
  weights: string;
}

/** A SafetensorsFile without some tensors (the old head), for the loader's full comparison. */
function without(file: SafetensorsFile, names: Set<string>): SafetensorsFile {
  return {
    name: file.name,
    metadata: file.metadata,
    dataStart: file.dataStart,
    tensors: new Map([...file.tensors].filter(([n]) => !names.has(n))),
    read: (n) => file.read(n),
  };
}

export async function buildFinetuneModel(
  def: ModelDef,
  o: {
    weights: 'random' | SafetensorsFile;
    seed?: number;
    classes: number;
    batch: number;
    size?: number;
    zeroHead: boolean;
  },
): Promise<FinetuneModel> {
  if (!Number.isInteger(o.classes) || o.classes < 2)
    throw new RangeError(`a fine-tuning head needs at least 2 classes, got ${o.classes}`);
  const size = o.size ?? def.preprocess.size;
  const build = (w: WeightSource) => {
    const g = new Graph();
    const x = g.input('image', [o.batch, size, size, 3]);
    const built = def.build(new NetBuilder(g, w), x, o.classes);
    g.markOutputs(built.logits);
    return { g, logits: built.logits };
  };
  const rec = new RecordingWeights();
  build(rec);
  const fileName = (n: string) => def.mapping.fileName?.(n) ?? n;
  const headFile = new Set([def.headWeight, def.headWeight.replace(/\.weight$/, '.bias')]);
  const head = rec.requests.filter((r) => headFile.has(fileName(r.name))).map((r) => r.name);
  if (!head.some((n) => fileName(n) === def.headWeight))
    throw new Error(`${def.name}: no parameter maps to its head "${def.headWeight}"`);

  const rnd = new RandomWeights(o.seed ?? 0);
  let source: WeightSource = rnd;
  let weights = `random (seed ${o.seed ?? 0})`;
  if (o.weights !== 'random') {
    const file = o.weights;
    const body = rec.requests.filter((r) => !head.includes(r.name));
    source = await loadWeights(without(file, headFile), body, def.mapping, def.name);
    weights = file.name ?? 'weight file';
  }
  const initial = new Map<string, Float32Array>();
  const recording: WeightSource = {
    get(name, shape, kind, fanIn) {
      let data: Float32Array;
      if (head.includes(name)) {
        data = o.zeroHead ? new Float32Array(shape.reduce((a, b) => a * b, 1)) : rnd.get(name, shape, kind, fanIn);
      } else data = source.get(name, shape, kind, fanIn);
      initial.set(name, data);
      return data;
    },
  };
  const { g, logits } = build(recording);
  const trainable = rec.requests
    .filter((r) => r.kind !== 'mean' && r.kind !== 'var')
    .filter((r) => g.values.get(r.name)?.kind === 'const')
    .filter((r) => g.shape(r.name).join() === r.shape.join())
    .map((r) => r.name);
  return {
    def,
    graph: g,
    input: 'image',
    logits,
    batch: o.batch,
    size,
    classes: o.classes,
    requests: rec.requests,
    initial,
    trainable: [...new Set(trainable)],
    head,
    weights,
  };
}
