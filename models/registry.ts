// Every model cnnlab knows by name, and how to build one with random or checkpoint weights.
// A family file exports its ModelDefs (a config table plus a builder); this file lists them.

import { Graph } from '../engine/graph.js';
import type { SafetensorsFile } from '../engine/safetensors.js';
import { WeightFileError } from '../engine/safetensors.js';
import type { HostTensor } from '../kernels/kernel.js';
import { NetBuilder, RandomWeights, type WeightSource } from './layers.js';
import { MOBILENETV2_MODELS } from './mobilenetv2.js';
import { RESNET_MODELS } from './resnet.js';
import { RESNETV2_MODELS } from './resnetv2.js';
import { SYNTH_MODEL } from './synth-model.js';
import { type BuiltModel, type ModelDef, type Preprocess, atResolution } from './types.js';
import { VIT_MODELS } from './vit.js';
import { loadWeights, RecordingWeights, torchShape, toTorch } from './weights.js';

export { IMAGENET_MEAN, IMAGENET_STD, atResolution, resizeTarget } from './types.js';
export type { BuiltModel, ModelDef, Preprocess } from './types.js';

/** Every model, in the order `npx cnnlab models` lists them. */
const MODELS: readonly ModelDef[] = [
  ...RESNETV2_MODELS,
  ...VIT_MODELS,
  ...RESNET_MODELS,
  ...MOBILENETV2_MODELS,
  SYNTH_MODEL,
];

/** Models registered at run time (ONNX files named on the command line or picked in the page). */
const registered: ModelDef[] = [];

export function listModels(): ModelDef[] {
  return [...MODELS, ...registered];
}

/** Make `def` known by its name (replacing an earlier registration of that name); built-in names are refused. */
export function registerModel(def: ModelDef): void {
  if (MODELS.some((m) => m.name === def.name)) throw new Error(`"${def.name}" is a built-in model name`);
  const k = registered.findIndex((m) => m.name === def.name);
  if (k >= 0) registered.splice(k, 1);
  registered.push(def);
}

export function getModel(name: string): ModelDef {
  const d = listModels().find((m) => m.name === name);
  if (!d)
    throw new Error(
      `unknown model "${name}"; known: ${listModels()
        .map((m) => m.name)
        .join(', ')}`,
    );
  return d;
}

export interface LoadOptions {
  /** 'random' (seeded) or an opened safetensors checkpoint with timm/torchvision names. */
  weights: 'random' | SafetensorsFile;
  seed?: number;
  batch?: number;
  /** Input side; default the model's evaluation size. ViTs interpolate their position embedding. */
  size?: number;
  /** Classes for random weights (a checkpoint's head decides otherwise); default the model's class names, else 1000. */
  classes?: number;
  /** 'nchw' (default): input 'image' is [N,3,H,W] as PyTorch gives it, transposed on the GPU;
   *  'nhwc': [N,H,W,3]. */
  inputLayout?: 'nchw' | 'nhwc';
  /** Instead of an 'image' input: make the graph's inputs and return the NHWC tensor the model
   *  reads (e.g. raw [0,1] crops → corruption → normalisation, all in one graph). */
  prelude?: (g: Graph, size: number, batch: number) => string;
}

export interface LoadedModel {
  def: ModelDef;
  graph: Graph;
  classes: number;
  preprocess: Preprocess;
  /** What the weights were, for run records: 'random (seed 0)' or the file's name. */
  weights: string;
  /** Name of the graph input. */
  input: string;
  logits: string;
  features: string;
}

function buildGraph(
  def: ModelDef,
  w: WeightSource,
  o: LoadOptions,
  size: number,
  classes: number,
): { graph: Graph } & BuiltModel {
  const g = new Graph();
  const n = o.batch ?? 1;
  let x: string;
  if (o.prelude) {
    x = o.prelude(g, size, n);
  } else if ((o.inputLayout ?? 'nchw') === 'nchw') {
    g.input('image', [n, 3, size, size]);
    x = g.op('transpose', ['image'], { perm: [0, 2, 3, 1] }, 'to_nhwc');
  } else {
    x = g.input('image', [n, size, size, 3]);
  }
  const built = def.build(new NetBuilder(g, w), x, classes);
  g.markOutputs(built.logits, built.features);
  return { graph: g, ...built };
}

export async function loadModel(name: string | ModelDef, o: LoadOptions): Promise<LoadedModel> {
  const def = typeof name === 'string' ? getModel(name) : name;
  const size = o.size ?? def.preprocess.size;
  let classes = o.classes ?? def.classNames?.length ?? 1000;
  let source: WeightSource;
  let weights: string;
  if (def.embeddedWeights !== undefined) {
    if (o.weights !== 'random')
      throw new WeightFileError(
        `${def.name} carries its own weights; give no checkpoint for it (${o.weights.name ?? 'weight file'})`,
      );
    const { graph, logits, features } = buildGraph(def, new RandomWeights(0), o, size, classes);
    return {
      def,
      graph,
      classes: graph.shape(logits)[1],
      preprocess: atResolution(def.preprocess, size),
      weights: def.embeddedWeights,
      input: 'image',
      logits,
      features,
    };
  }
  if (o.weights === 'random') {
    source = new RandomWeights(o.seed ?? 0);
    weights = `random (seed ${o.seed ?? 0})`;
  } else {
    const file = o.weights;
    const head = file.tensors.get(def.headWeight);
    if (!head) {
      throw new WeightFileError(
        `${file.name ?? 'weight file'} has no "${def.headWeight}", the head of ${def.name}: is it a ${def.family} checkpoint?` +
          ` It holds e.g. ${[...file.tensors.keys()].slice(0, 5).join(', ')}`,
      );
    }
    classes = head.shape[0];
    const rec = new RecordingWeights();
    buildGraph(def, rec, o, size, classes);
    source = await loadWeights(file, rec.requests, def.mapping, def.name);
    weights = file.name ?? 'weight file';
  }
  const { graph, logits, features } = buildGraph(def, source, o, size, classes);
  return {
    def,
    graph,
    classes,
    preprocess: atResolution(def.preprocess, size),
    weights,
    input: 'image',
    logits,
    features,
  };
}

/**
 * A model's seeded random weights as a PyTorch-style checkpoint (timm/torchvision names and
 * layouts), e.g. to check cnnlab against PyTorch at full size with the same weights.
 */
export function randomCheckpoint(
  name: string,
  o: { seed?: number; classes?: number } = {},
): Record<string, HostTensor> {
  const def = getModel(name);
  if (def.embeddedWeights !== undefined)
    throw new Error(`${name} carries its own weights; it has no random checkpoint`);
  const rnd = new RandomWeights(o.seed ?? 0);
  const out: Record<string, HostTensor> = {};
  const recorder: WeightSource = {
    get(n, shape, kind, fanIn) {
      const data = rnd.get(n, shape, kind, fanIn);
      const r = { name: n, shape, kind };
      out[def.mapping.fileName?.(n) ?? n] = { shape: torchShape(r), data: toTorch(r, data) };
      return data;
    },
  };
  buildGraph(def, recorder, { weights: 'random' }, def.preprocess.size, o.classes ?? 1000);
  return out;
}
