// The types a model family file needs (its ModelDef, its preprocessing), apart from the registry
// so that family files and the registry, which lists them, do not import each other.

import type { NetBuilder } from './layers.js';
import type { WeightMapping } from './weights.js';

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
  family: 'resnet' | 'resnetv2' | 'mobilenetv2' | 'vit' | 'onnx';
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
  /** The model carries its own weights (an ONNX file): what they are, for run records. Its build
   *  asks the weight source for nothing, and a checkpoint given for it is an error. */
  embeddedWeights?: string;
  /** The only input side the model runs at (an ONNX file exported with fixed H and W). */
  fixedSize?: number;
}
