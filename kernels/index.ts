// The op registry: every op the graph IR knows, by name. A new kernel family adds its OpDefs here.

import { conv2dOp } from './conv2d.js';
import { activationOp, addOp } from './elementwise.js';
import { binaryOp } from './binary.js';
import { unaryOp } from './unary.js';
import { attentionOp } from './attention.js';
import { matmulOp } from './matmul.js';
import type { OpDef } from './kernel.js';
import { batchNormOp } from './batchnorm.js';
import { groupNormOp, weightStandardizeOp } from './groupnorm.js';
import { layerNormOp } from './layernorm.js';
import { concatOp, padOp, reshapeOp, sliceOp, transposeOp } from './layout.js';
import { avgpoolOp, globalAvgpoolOp, maxpoolOp } from './pool.js';
import { softmaxOp } from './softmax.js';
import { imageNormalizeOp, imagePreprocessOp } from './image.js';
import { BACKWARD_OPS } from './backward/index.js';
import { augmentCropOp, mixupOp } from './augment.js';

const ops: OpDef[] = [
  activationOp,
  addOp,
  binaryOp,
  unaryOp,
  conv2dOp,
  batchNormOp,
  groupNormOp,
  weightStandardizeOp,
  layerNormOp,
  softmaxOp,
  maxpoolOp,
  avgpoolOp,
  globalAvgpoolOp,
  reshapeOp,
  transposeOp,
  concatOp,
  sliceOp,
  padOp,
  matmulOp,
  attentionOp,
  imagePreprocessOp,
  imageNormalizeOp,
  augmentCropOp,
  mixupOp,
  ...BACKWARD_OPS,
];

const registry = new Map<string, OpDef>();
for (const o of ops) {
  if (registry.has(o.op)) throw new Error(`op "${o.op}" is defined twice in the op list`);
  registry.set(o.op, o);
}
export const OPS: ReadonlyMap<string, OpDef> = registry;

/** Add an op from outside this folder (experiments, tests). Names must be new. */
export function registerOp(def: OpDef): void {
  if (registry.has(def.op)) throw new Error(`op "${def.op}" is already registered`);
  registry.set(def.op, def);
}

export function getOp(op: string): OpDef {
  const d = OPS.get(op);
  if (!d) throw new Error(`unknown op "${op}" (known: ${[...OPS.keys()].sort().join(', ')})`);
  return d;
}
