// The built-in demo model: MobileNetV2 at width 0.35, trained on cnnlab's synthetic object
// classes (eval/synth.ts) at 112×112 by scripts/train_synth_model.py. The README's main command
// evaluates it, so a robustness run needs no downloaded data or weights.

import { makeMobileNetV2 } from './mobilenetv2.js';
import { IMAGENET_MEAN, IMAGENET_STD, type ModelDef } from './types.js';

/** The synthetic train classes in label order (sorted folder names, as the training ImageFolder). */
export const SYNTH_MODEL_CLASSES = [
  'arrow',
  'circle',
  'crescent',
  'cross',
  'heart',
  'hexagon',
  'ring',
  'square',
  'star',
  'triangle',
];

export const SYNTH_MODEL: ModelDef = {
  ...makeMobileNetV2('mobilenet_v2_synth', { widthMult: 0.35 }),
  // The synthetic images are 224×224 (ImageNet-C's crop size); the model sees them squashed to 112.
  preprocess: {
    size: 112,
    resizeMode: 'squash' as const,
    cropPct: 1,
    interpolation: 'bilinear' as const,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
  },
  classNames: SYNTH_MODEL_CLASSES,
  builtinWeights: 'models/weights/mobilenet_v2_synth.safetensors',
};
