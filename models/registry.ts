// Every model cnnlab knows by name, and how to build one with random or checkpoint weights.
// A family file exports its ModelDefs (a config table plus a builder); this file lists them.

import { Graph } from '../engine/graph.js';
import type { SafetensorsFile } from '../engine/safetensors.js';
import { WeightFileError } from '../engine/safetensors.js';
import { NetBuilder, RandomWeights, type WeightSource } from './layers.js';
import type { HostTensor } from '../kernels/kernel.js';
import { loadWeights, RecordingWeights, torchShape, toTorch, type WeightMapping } from './weights.js';

/** Evaluation preprocessing, as timm's default_cfg: data attached to the model. */
export interface Preprocess {
  /** Side of the square network input. */
  size: number;
  /** 'short': resize the short side to ⌊size / cropPct⌋ keeping aspect, then centre-crop `size`.
   *  'squash': resize both sides to `size`, no crop (BiT). */
  resizeMode: 'short' | 'squash';
  cropPct: number;
  interpolation: 'bilinear' | 'bicubic';
  mean: [number, number, number];
  std: [number, number, number];
}

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

/** The same preprocessing at another test resolution (resize scales with it, as timm does). */
export function atResolution(p: Preprocess, size: number): Preprocess {
  return { ...p, size };
}

/** The resize target before the crop: ⌊size / cropPct⌋ for 'short', size for 'squash'. */
export function resizeTarget(p: Preprocess): number {
  return p.resizeMode === 'squash' ? p.size : Math.floor(p.size / p.cropPct);
}

export interface BuiltModel {
  logits: string;
  /** Pre-logit features [N, D] (for transfer). */
  features: string;
}

export interface ModelDef {
  name: string;
  family: 'resnet' | 'resnetv2' | 'mobilenetv2' | 'vit';
  preprocess: Preprocess;
  /** Checkpoint tensor whose dim 0 is the number of classes. */
  headWeight: string;
  mapping: WeightMapping;
  /** Build on NHWC input `x` [N,H,W,3]. */
  build(b: NetBuilder, x: string, classes: number): BuiltModel;
  /** Names of the classes when they are not ImageNet-1k's (the built-in synthetic model). */
  classNames?: readonly string[];
  /** A checkpoint shipped in the repo (path relative to the repo root), used for --weights builtin. */
  builtinWeights?: string;
}

const families: ModelDef[][] = [];

/** Family files call this at import time. */
export function registerModels(defs: ModelDef[]): void {
  families.push(defs);
}

export function listModels(): ModelDef[] {
  return families.flat();
}

export function getModel(name: string): ModelDef {
  const d = listModels().find((m) => m.name === name);
  if (!d) throw new Error(`unknown model "${name}"; known: ${listModels().map((m) => m.name).join(', ')}`);
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

function buildGraph(def: ModelDef, w: WeightSource, o: LoadOptions, size: number, classes: number): { graph: Graph } & BuiltModel {
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
  if (o.weights === 'random') {
    source = new RandomWeights(o.seed ?? 0);
    weights = `random (seed ${o.seed ?? 0})`;
  } else {
    const file = o.weights;
    const head = file.tensors.get(def.headWeight);
    if (!head) {
      throw new WeightFileError(`${file.name ?? 'weight file'} has no "${def.headWeight}", the head of ${def.name}: is it a ${def.family} checkpoint?` +
        ` It holds e.g. ${[...file.tensors.keys()].slice(0, 5).join(', ')}`);
    }
    classes = head.shape[0];
    const rec = new RecordingWeights();
    buildGraph(def, rec, o, size, classes);
    source = await loadWeights(file, rec.requests, def.mapping, def.name);
    weights = file.name ?? 'weight file';
  }
  const { graph, logits, features } = buildGraph(def, source, o, size, classes);
  return { def, graph, classes, preprocess: atResolution(def.preprocess, size), weights, input: 'image', logits, features };
}

/**
 * A model's seeded random weights as a PyTorch-style checkpoint (timm/torchvision names and
 * layouts), e.g. to check cnnlab against PyTorch at full size with the same weights.
 */
export function randomCheckpoint(name: string, o: { seed?: number; classes?: number } = {}): Record<string, HostTensor> {
  const def = getModel(name);
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
