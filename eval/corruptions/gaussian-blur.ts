// ImageNet-C's extra gaussian_blur, ported from hendrycks/robustness `imagenet_c/corruptions.py`
// (parameters: docs/imagenet-c.md): skimage gaussian(σ) = scipy gaussian_filter, truncate 4,
// mode 'nearest', on each channel.
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]. Mapping: two blur1d passes (common.ts; rows, then
// columns, scipy's axis order) through a temp, one invocation per output pixel, all channels.
// Deviation: float throughout (the reference returns a float image too, then rounds to uint8
// when ImageNet-C stores it).

import { input, output } from '../../kernels/kernel.js';
import { gaussianImageLower, gaussianImageRef, imageElems, toImage } from './common.js';
import type { CorruptionDef } from './corruption.js';

export const gaussianBlur: CorruptionDef<number> = {
  name: 'gaussian_blur',
  extra: true,
  params: [1, 2, 3, 4, 6],
  lower: (sigma, _seed, shape, ctx) => ({
    dispatches: gaussianImageLower(shape, sigma, input(0), output(0), 0, ctx),
    temps: [imageElems(shape)],
  }),
  ref: (sigma, _seed, x) => toImage(x.shape, gaussianImageRef(x.data, x.shape, sigma)),
};
