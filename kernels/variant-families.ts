// Every kernel family that has variants, by name, with its variant schema (kernels/variant.ts):
// for code that handles choices of any family (tuning files, their migration, tests). A new
// family with variants is added here.

import { attentionVariant } from './attention.js';
import { attentionGradVariant } from './backward/attention.js';
import { normGradVariant } from './backward/norm.js';
import { conv2dGradInputVariant, conv2dGradWeightVariant } from './backward/conv2d.js';
import { conv2dVariant } from './conv2d.js';
import { depthwiseVariant } from './depthwise.js';
import { groupNormVariant } from './groupnorm.js';
import { layernormVariant } from './layernorm.js';
import { transposeVariant } from './layout.js';
import { matmulVariant } from './matmul.js';
import { globalAvgpoolVariant } from './pool.js';
import { softmaxVariant } from './softmax.js';
import { type VariantObject, type VariantSchema, VariantError } from './variant.js';

export const VARIANT_FAMILIES: ReadonlyMap<string, VariantSchema<VariantObject>> = new Map(
  [
    conv2dVariant,
    depthwiseVariant,
    matmulVariant,
    attentionVariant,
    attentionGradVariant,
    normGradVariant,
    layernormVariant,
    softmaxVariant,
    groupNormVariant,
    globalAvgpoolVariant,
    transposeVariant,
    conv2dGradInputVariant,
    conv2dGradWeightVariant,
  ].map((s) => [s.family, s as unknown as VariantSchema<VariantObject>]),
);

/** The schema of `family`; throws a VariantError naming the known families. */
export function variantFamily(family: string): VariantSchema<VariantObject> {
  const s = VARIANT_FAMILIES.get(family);
  if (!s) {
    const known = [...VARIANT_FAMILIES.keys()].join(', ');
    throw new VariantError(`unknown kernel family "${family}" (families with variants: ${known})`);
  }
  return s;
}
