// MobileNetV2 as torchvision builds it: `features.0` a 3×3/2 conv + BN + ReLU6; inverted
// residual blocks from the (t, c, n, s) table: 1×1 expand (absent when t = 1) → 3×3 depthwise
// at stride s → 1×1 linear projection, with an identity shortcut when the stride is 1 and the
// channels match; a last 1×1 conv to 1280 channels + BN + ReLU6; global average pool;
// `classifier.1` (classifier.0 is dropout). Node and weight names are the checkpoint's;
// `mobilenetv2_100` is the same network with a mapping onto timm's names.

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

/**
 * timm's checkpoint names for the same network (timm/models/_efficientnet_builder.py,
 * _efficientnet_blocks.py; docs/weights.md): `conv_stem`/`bn1`, then `blocks.{stage}.{i}` per row
 * of the table (a depthwise-separable block `conv_dw`/`bn1`/`conv_pw`/`bn2` when t = 1, else an
 * inverted residual `conv_pw`/`bn1`/`conv_dw`/`bn2`/`conv_pwl`/`bn3`), `conv_head`/`bn2`, `classifier`.
 * Maps our (torchvision) names onto them.
 */
export function timmMobileNetV2Names(table: InvertedResidualRow[] = MOBILENETV2_TABLE): (name: string) => string {
  const blocks: { stage: number; i: number; t: number }[] = [];
  table.forEach(([t, , n], stage) => {
    for (let i = 0; i < n; i++) blocks.push({ stage, i, t });
  });
  const ds: Record<string, string> = { '0.0': 'conv_dw', '0.1': 'bn1', '1': 'conv_pw', '2': 'bn2' };
  const ir: Record<string, string> = {
    '0.0': 'conv_pw',
    '0.1': 'bn1',
    '1.0': 'conv_dw',
    '1.1': 'bn2',
    '2': 'conv_pwl',
    '3': 'bn3',
  };
  const head = blocks.length + 1;
  return (name) => {
    const m = /^features\.(\d+)\.(.+)\.(\w+)$/.exec(name);
    if (name.startsWith('classifier.1.')) return `classifier.${name.slice('classifier.1.'.length)}`;
    if (!m) throw new Error(`mobilenetv2 (timm names): no timm name for "${name}"`);
    const [, f, layer, param] = m;
    const k = Number(f);
    if (k === 0 || k === head) {
      const l = { '0': k === 0 ? 'conv_stem' : 'conv_head', '1': k === 0 ? 'bn1' : 'bn2' }[layer];
      if (l) return `${l}.${param}`;
    } else if (k <= blocks.length && layer.startsWith('conv.')) {
      const b = blocks[k - 1];
      const l = (b.t === 1 ? ds : ir)[layer.slice('conv.'.length)];
      if (l) return `blocks.${b.stage}.${b.i}.${l}.${param}`;
    }
    throw new Error(`mobilenetv2 (timm names): no timm name for "${name}"`);
  };
}

/** timm's eval transform for its MobileNetV2s (mobilenetv2_100.ra_in1k): crop 0.875, bicubic. */
export const TIMM_MOBILENETV2_PREPROCESS: Preprocess = { ...MOBILENETV2_PREPROCESS, interpolation: 'bicubic' };

/** Every MobileNetV2 in MOBILENETV2_CONFIGS, for the registry, and timm's mobilenetv2_100 (same net, timm's names). */
export const MOBILENETV2_MODELS: ModelDef[] = [
  ...Object.entries(MOBILENETV2_CONFIGS).map(([name, cfg]) => makeMobileNetV2(name, cfg)),
  {
    ...makeMobileNetV2('mobilenetv2_100', { widthMult: 1.0 }),
    preprocess: TIMM_MOBILENETV2_PREPROCESS,
    headWeight: 'classifier.weight',
    mapping: { fileName: timmMobileNetV2Names(), ignore: /\.num_batches_tracked$/ },
  },
];
