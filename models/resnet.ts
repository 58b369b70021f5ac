// ResNet-18…152 as torchvision builds them (v1.5, the same module names as timm's `resnet50`):
// stem conv 7×7/2 → BN → ReLU → maxpool 3×3/2 pad 1; stages of basic blocks (two 3×3 convs)
// or bottlenecks (1×1 → 3×3 → 1×1 ×4, the stride on the 3×3: v1.5); a 1×1 conv + BN
// projection shortcut (`downsample.{0,1}`) on the first block of a stage whose shape changes;
// residual add + ReLU; global average pool; `fc`. Node and weight names are the checkpoint's.

import type { NetBuilder } from './layers.js';
import { IMAGENET_MEAN, IMAGENET_STD, type ModelDef, type Preprocess } from './types.js';

export interface ResNetConfig {
  block: 'basic' | 'bottleneck';
  /** Blocks per stage; stage 1 keeps the resolution, each later stage halves it. */
  layers: number[];
  /** Planes per stage (a bottleneck's output is 4× its planes); default [64, 128, 256, 512]. */
  widths?: number[];
  /** Channels of the stem conv; default 64. */
  stemWidth?: number;
}

export const RESNET_CONFIGS: Record<string, ResNetConfig> = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  resnet101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
  resnet152: { block: 'bottleneck', layers: [3, 8, 36, 3] },
};

/** torchvision's eval transform: resize the short side to 256, centre-crop 224, bilinear. */
export const RESNET_PREPROCESS: Preprocess = {
  size: 224,
  resizeMode: 'short',
  cropPct: 0.875,
  interpolation: 'bilinear',
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
};

const EXPANSION = { basic: 1, bottleneck: 4 } as const;

/** One block; `name` is e.g. `layer2.0`. Returns the block's output. */
function block(
  b: NetBuilder,
  name: string,
  x: string,
  kind: ResNetConfig['block'],
  planes: number,
  stride: number,
): string {
  const out = planes * EXPANSION[kind];
  let shortcut = x;
  if (stride !== 1 || b.channels(x) !== out) {
    shortcut = b.batchnorm(`${name}.downsample.1`, b.conv(`${name}.downsample.0`, x, out, 1, { stride }));
  }
  let y: string;
  if (kind === 'basic') {
    y = b.batchnorm(`${name}.bn1`, b.conv(`${name}.conv1`, x, planes, 3, { stride }), 'relu');
    y = b.batchnorm(`${name}.bn2`, b.conv(`${name}.conv2`, y, planes, 3), 'none', 1e-5, true);
  } else {
    y = b.batchnorm(`${name}.bn1`, b.conv(`${name}.conv1`, x, planes, 1), 'relu');
    y = b.batchnorm(`${name}.bn2`, b.conv(`${name}.conv2`, y, planes, 3, { stride }), 'relu');
    y = b.batchnorm(`${name}.bn3`, b.conv(`${name}.conv3`, y, out, 1), 'none', 1e-5, true);
  }
  return b.add(y, shortcut, 'relu', `${name}.add`);
}

export function makeResNet(name: string, cfg: ResNetConfig): ModelDef {
  const widths = cfg.widths ?? [64, 128, 256, 512];
  if (widths.length !== cfg.layers.length) {
    throw new Error(`${name}: ${cfg.layers.length} stages in layers but ${widths.length} widths`);
  }
  return {
    name,
    family: 'resnet',
    preprocess: RESNET_PREPROCESS,
    headWeight: 'fc.weight',
    mapping: { ignore: /\.num_batches_tracked$/ },
    build(b, x, classes) {
      let y = b.batchnorm('bn1', b.conv('conv1', x, cfg.stemWidth ?? 64, 7, { stride: 2, pad: 3 }), 'relu');
      y = b.g.op('maxpool', [y], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }, 'maxpool');
      cfg.layers.forEach((n, s) => {
        for (let i = 0; i < n; i++) {
          y = block(b, `layer${s + 1}.${i}`, y, cfg.block, widths[s], i === 0 && s > 0 ? 2 : 1);
        }
      });
      const features = b.g.op('global_avgpool', [y], {}, 'avgpool');
      return { logits: b.linear('fc', features, classes), features };
    },
  };
}

/** Every ResNet in RESNET_CONFIGS, for the registry. */
export const RESNET_MODELS: ModelDef[] = Object.entries(RESNET_CONFIGS).map(([name, cfg]) => makeResNet(name, cfg));
