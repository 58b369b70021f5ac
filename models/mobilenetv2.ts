// MobileNetV2 as torchvision builds it: `features.0` a 3×3/2 conv + BN + ReLU6; inverted
// residual blocks from the (t, c, n, s) table: 1×1 expand (absent when t = 1) → 3×3 depthwise
// at stride s → 1×1 linear projection, with an identity shortcut when the stride is 1 and the
// channels match; a last 1×1 conv to 1280 channels + BN + ReLU6; global average pool;
// `classifier.1` (classifier.0 is dropout). Node and weight names are the checkpoint's.

import type { NetBuilder } from './layers.js';
import { IMAGENET_MEAN, IMAGENET_STD, type ModelDef, type Preprocess } from './types.js';

/** One row of the block table: expansion t, output channels c, n blocks, stride s of the first. */
export type InvertedResidualRow = [t: number, c: number, n: number, s: number];

export interface MobileNetV2Config {
  /** Scales every channel count (rounded to a multiple of 8); default 1.0. */
  widthMult?: number;
  /** Default: torchvision's (the paper's) table, MOBILENETV2_TABLE. */
  table?: InvertedResidualRow[];
}

export const MOBILENETV2_TABLE: InvertedResidualRow[] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

export const MOBILENETV2_CONFIGS: Record<string, MobileNetV2Config> = {
  mobilenet_v2: { widthMult: 1.0 },
};

/** torchvision's eval transform, as ResNet's: short side to 256, centre-crop 224, bilinear. */
export const MOBILENETV2_PREPROCESS: Preprocess = {
  size: 224,
  resizeMode: 'short',
  cropPct: 0.875,
  interpolation: 'bilinear',
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
};

const STEM_CHANNELS = 32;
const LAST_CHANNELS = 1280;

/** torchvision's _make_divisible: nearest multiple of `divisor`, at least `divisor`, never below 90% of v. */
export function makeDivisible(v: number, divisor = 8): number {
  let r = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (r < 0.9 * v) r += divisor;
  return r;
}

/** conv (no bias) + BN, as torchvision's Conv2dNormActivation at `name` (`name.0`, `name.1`). */
function convBn(
  b: NetBuilder,
  name: string,
  x: string,
  cout: number,
  k: number,
  act: 'relu6' | 'none',
  o: { stride?: number; groups?: number } = {},
): string {
  return b.batchnorm(`${name}.1`, b.conv(`${name}.0`, x, cout, k, o), act);
}

/** InvertedResidual at `name` (e.g. `features.3`); the names of its layers depend on whether it expands. */
function invertedResidual(b: NetBuilder, name: string, x: string, t: number, cout: number, stride: number): string {
  const cin = b.channels(x);
  const hidden = Math.round(cin * t);
  let y = x;
  let i = 0; // index in the block's `conv` Sequential
  if (t !== 1) y = convBn(b, `${name}.conv.${i++}`, y, hidden, 1, 'relu6');
  y = convBn(b, `${name}.conv.${i++}`, y, hidden, 3, 'relu6', { stride, groups: hidden });
  y = b.batchnorm(`${name}.conv.${i + 1}`, b.conv(`${name}.conv.${i}`, y, cout, 1));
  return stride === 1 && cin === cout ? b.add(x, y, 'none', `${name}.add`) : y;
}

export function makeMobileNetV2(name: string, cfg: MobileNetV2Config): ModelDef {
  const width = cfg.widthMult ?? 1.0;
  const table = cfg.table ?? MOBILENETV2_TABLE;
  return {
    name,
    family: 'mobilenetv2',
    preprocess: MOBILENETV2_PREPROCESS,
    headWeight: 'classifier.1.weight',
    mapping: { ignore: /\.num_batches_tracked$/ },
    build(b, x, classes) {
      let y = convBn(b, 'features.0', x, makeDivisible(STEM_CHANNELS * width), 3, 'relu6', { stride: 2 });
      let f = 1;
      for (const [t, c, n, s] of table) {
        for (let i = 0; i < n; i++) {
          y = invertedResidual(b, `features.${f++}`, y, t, makeDivisible(c * width), i === 0 ? s : 1);
        }
      }
      y = convBn(b, `features.${f}`, y, makeDivisible(LAST_CHANNELS * Math.max(1.0, width)), 1, 'relu6');
      const features = b.g.op('global_avgpool', [y], {}, 'avgpool');
      return { logits: b.linear('classifier.1', features, classes), features };
    },
  };
}

/** Every MobileNetV2 in MOBILENETV2_CONFIGS, for the registry. */
export const MOBILENETV2_MODELS: ModelDef[] = Object.entries(MOBILENETV2_CONFIGS).map(([name, cfg]) =>
  makeMobileNetV2(name, cfg),
);
