// BiT ResNet-v2 (Kolesnikov et al., "Big Transfer"), with timm's names (`resnetv2_50x1_bit` …):
// a pre-activation ResNet whose convs are all weight-standardised and whose norms are
// GroupNorm + ReLU. Mirrors timm's ResNetV2 as `_create_resnetv2_bit` builds it: stem_type
// 'fixed' (7×7/2 conv, zero pad 1, 3×3/2 max pool without padding), PreActBottleneck blocks
// with the stride on the 3×3 conv and the projection shortcut on the pre-activated input,
// StdConv2d with eps 1e-8, and a 1×1-conv head after GroupNorm + ReLU + global average pool.
//
// Checkpoint names are the builder's names, so the weight mapping is the identity.

import type { Activation } from '../kernels/kernel.js';
import type { NetBuilder } from './layers.js';
import type { ModelDef, Preprocess } from './types.js';

export interface ResNetV2Config {
  /** Blocks per stage. */
  layers: [number, number, number, number];
  /** Width factor: multiplies the stem and every stage width (then rounded to a multiple of 8). */
  wf: number;
  /** Stem width before the width factor; default 64. */
  stemWidth?: number;
  /** Stage output widths before the width factor; default [256, 512, 1024, 2048]. Mid = out / 4. */
  widths?: [number, number, number, number];
  /** GroupNorm groups; default 32. */
  gnGroups?: number;
  /** Weight-standardisation eps; default 1e-8 (timm's BiT; BiT's own code uses 1e-10). */
  wsEps?: number;
  /** GroupNorm eps; default 1e-5. */
  gnEps?: number;
}

export const RESNETV2_CONFIGS: Record<string, ResNetV2Config> = {
  resnetv2_50x1_bit: { layers: [3, 4, 6, 3], wf: 1 },
  resnetv2_50x3_bit: { layers: [3, 4, 6, 3], wf: 3 },
  resnetv2_101x1_bit: { layers: [3, 4, 23, 3], wf: 1 },
  resnetv2_101x3_bit: { layers: [3, 4, 23, 3], wf: 3 },
  resnetv2_152x2_bit: { layers: [3, 8, 36, 3], wf: 2 },
};

/** timm's `*_bit.goog_in21k_ft_in1k` evaluation: 448×448, no crop, bilinear, mean = std = 0.5.
 *  BiT's own code squashes the image to the square; timm's crop_pct 1.0 would resize the short
 *  side and centre-crop instead (the same on square images). */
export const BIT_PREPROCESS: Preprocess = {
  size: 448,
  resizeMode: 'squash',
  cropPct: 1,
  interpolation: 'bilinear',
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
};

/** timm.layers.make_divisible(v, 8): channel counts after the width factor. */
export function makeDivisible(v: number, divisor = 8): number {
  const r = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  return r < 0.9 * v ? r + divisor : r;
}

/** The resolved channel plan: stem width, stage output widths and bottleneck widths. */
export function resnetv2Widths(cfg: ResNetV2Config): { stem: number; out: number[]; mid: number[] } {
  const stem = makeDivisible((cfg.stemWidth ?? 64) * cfg.wf);
  const out = (cfg.widths ?? [256, 512, 1024, 2048]).map((w) => makeDivisible(w * cfg.wf));
  return { stem, out, mid: out.map((o) => makeDivisible(o * 0.25)) };
}

interface StdConvOpts {
  stride?: number;
  pad?: number;
  wsEps: number;
}

/** timm StdConv2d: the weight is standardised per output channel (a compile-time node), no bias. */
function stdConv(b: NetBuilder, name: string, x: string, cout: number, k: number, o: StdConvOpts): string {
  const cin = b.channels(x);
  const w = b.param(`${name}.weight`, [k, k, cin, cout], 'conv', k * k * cin);
  const ws = b.g.op('weight_standardize', [w], { eps: o.wsEps }, `${name}.std`);
  const p = o.pad ?? Math.floor((k - 1) / 2);
  const s = o.stride ?? 1;
  return b.g.op(
    'conv2d',
    [x, ws],
    { stride: [s, s], pad: [p, p, p, p], dilation: [1, 1], groups: 1, act: 'none' },
    name,
  );
}

/** timm PreActBottleneck: x + conv3(gn3(conv2(gn2(conv1(gn1(x)))))) with the projection, if any,
 *  on gn1(x). No activation after the add: the next block's norm1 (or the final norm) has it. */
function preActBottleneck(
  b: NetBuilder,
  p: string,
  x: string,
  mid: number,
  out: number,
  stride: number,
  project: boolean,
  cfg: ResNetV2Config,
): string {
  const groups = cfg.gnGroups ?? 32,
    gnEps = cfg.gnEps ?? 1e-5,
    wsEps = cfg.wsEps ?? 1e-8;
  const gn = (n: string, v: string, act: Activation = 'relu') => b.groupnorm(`${p}.${n}`, v, groups, act, gnEps);
  const pre = gn('norm1', x);
  const shortcut = project ? stdConv(b, `${p}.downsample.conv`, pre, out, 1, { stride, pad: 0, wsEps }) : x;
  let y = stdConv(b, `${p}.conv1`, pre, mid, 1, { wsEps });
  y = stdConv(b, `${p}.conv2`, gn('norm2', y), mid, 3, { stride, pad: 1, wsEps });
  y = stdConv(b, `${p}.conv3`, gn('norm3', y), out, 1, { wsEps });
  return b.add(y, shortcut, 'none', `${p}.add`);
}

export function buildResNetV2(
  b: NetBuilder,
  x: string,
  classes: number,
  cfg: ResNetV2Config,
): { logits: string; features: string } {
  const { g } = b;
  const w = resnetv2Widths(cfg);
  const wsEps = cfg.wsEps ?? 1e-8;
  x = stdConv(b, 'stem.conv', x, w.stem, 7, { stride: 2, pad: 3, wsEps });
  x = g.op('pad', [x], { pad: [1, 1, 1, 1], value: 0 }, 'stem.pad');
  x = g.op('maxpool', [x], { kernel: [3, 3], stride: [2, 2] }, 'stem.pool');
  cfg.layers.forEach((depth, i) => {
    for (let j = 0; j < depth; j++) {
      const stride = j === 0 && i > 0 ? 2 : 1;
      x = preActBottleneck(b, `stages.${i}.blocks.${j}`, x, w.mid[i], w.out[i], stride, j === 0, cfg);
    }
  });
  x = b.groupnorm('norm', x, cfg.gnGroups ?? 32, 'relu', cfg.gnEps ?? 1e-5);
  const features = g.op('global_avgpool', [x], {}, 'head.global_pool');
  const [n, c] = g.shape(features);
  // timm's head is a 1×1 conv (use_conv=True): apply it as one on the pooled [N,1,1,C].
  const pooled = g.op('reshape', [features], { shape: [n, 1, 1, c] }, 'head.unflatten');
  const fc = b.conv('head.fc', pooled, classes, 1, { bias: true });
  const logits = g.op('reshape', [fc], { shape: [n, classes] }, 'head.flatten');
  return { logits, features };
}

export function makeResNetV2(name: string, cfg: ResNetV2Config, preprocess: Preprocess = BIT_PREPROCESS): ModelDef {
  return {
    name,
    family: 'resnetv2',
    preprocess,
    headWeight: 'head.fc.weight',
    mapping: {},
    build: (b, x, classes) => buildResNetV2(b, x, classes, cfg),
  };
}

/** Every BiT model in RESNETV2_CONFIGS, for the registry. */
export const RESNETV2_MODELS: ModelDef[] = Object.entries(RESNETV2_CONFIGS).map(([name, cfg]) =>
  makeResNetV2(name, cfg),
);
