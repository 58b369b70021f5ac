// ImageNet-C frost, ported from hendrycks/robustness `imagenet_c/corruptions.py` (parameters:
// docs/imagenet-c.md): y = clip(c0·x + c1·frost).
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]; ids [N]; asset: the frost texture [S,S,3],
// S = max(512, 2·max(H,W)). Mapping: one invocation per pixel (all channels), a stage kernel of
// common.ts. Per image: a random crop (offsets in [0, S−H) × [0, S−W) as the reference's
// randint) and a random horizontal/vertical flip, from the counter RNG (eval/rng.ts).
//
// Deviation: the texture is GENERATED (textures.ts `frostTexture`, greyish-blue ice film +
// dendrites), not the reference's frost photographs (six files, of which its randint(5) draws the
// first five), which we cannot ship; the random flip stands in for the choice of photo.

import { type KernelFamily, f32Lit, input, output } from '../../kernels/kernel.js';
import { RNG_WGSL, rngU32 } from '../rng.js';
import { type Dims, type Launch, STAGE_PIXEL, clamp01, dims, five, stageDispatch, stageShader } from './common.js';
import type { CorruptionDef } from './corruption.js';
import { frostTexture, memoTexture } from './textures.js';

/** RNG stream of frost's per-image crop and flip (other files use other ranges). */
const STREAM = { frostCrop: 0x66720101 } as const;

const f = f32Lit;
const fr = Math.fround;

export interface FrostParams {
  image: number;
  frost: number;
}

interface FrostConfig extends Dims, Launch {
  seed: number;
  image: number;
  frost: number;
  s: number;
}

const frostFamily: KernelFamily<FrostConfig> = {
  name: 'frost',
  wgsl: (c) =>
    stageShader(
      c,
      `
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> ids: array<f32>;        // input  [N] image ids
@group(0) @binding(2) var<storage, read> tex: array<f32>;        // input  [S,S,3] frost texture
@group(0) @binding(3) var<storage, read_write> y: array<f32>;    // output [N,H,W,3]`,
      `
${STAGE_PIXEL}
  let id = u32(ids[n]);
  let y0 = rng_u32(${c.seed}u, id, ${STREAM.frostCrop}u, 0u) % ${c.s - c.h}u;
  let x0 = rng_u32(${c.seed}u, id, ${STREAM.frostCrop}u, 1u) % ${c.s - c.w}u;
  let flip = rng_u32(${c.seed}u, id, ${STREAM.frostCrop}u, 2u) % 4u;
  var a = i;
  var b = j;
  if ((flip & 1u) != 0u) { a = H - 1u - i; }
  if ((flip & 2u) != 0u) { b = W - 1u - j; }
  let q = ((y0 + a) * ${c.s}u + x0 + b) * 3u;
  for (var ch = 0u; ch < 3u; ch++) {
    y[t * 3u + ch] = clamp(${f(c.image)} * x[t * 3u + ch] + ${f(c.frost)} * tex[q + ch], 0.0, 1.0);
  }`,
      RNG_WGSL,
    ),
};

const frostSize = (h: number, w: number) => Math.max(512, 2 * Math.max(h, w));

export const frost: CorruptionDef<FrostParams> = {
  name: 'frost',
  params: five(
    [
      [1, 0.4],
      [0.8, 0.6],
      [0.7, 0.7],
      [0.65, 0.7],
      [0.6, 0.75],
    ] as const,
    ([image, frostW]) => ({ image, frost: frostW }),
  ),
  assets(_p, seed, shape) {
    const s = frostSize(shape[1], shape[2]);
    return [{ shape: [s, s, 3], data: memoTexture(`frost:${seed}:${s}`, () => frostTexture(s, seed)) }];
  },
  lower(p, seed, shape, ctx) {
    const d = dims(shape);
    const px = d.n * d.h * d.w;
    const cfg = { ...d, seed: seed >>> 0, image: p.image, frost: p.frost, s: frostSize(d.h, d.w) };
    return {
      dispatches: [stageDispatch(frostFamily, cfg, px, [input(0), input(1), input(2), output(0)], ctx, 4 * px * 9)],
    };
  },
  ref(p, seed, x, ids, [tex]) {
    const [n, h, w] = x.shape;
    const s = tex.shape[0],
      st = STREAM.frostCrop,
      sd = seed >>> 0;
    const y = new Float32Array(x.data.length);
    for (let b = 0; b < n; b++) {
      const id = ids[b] >>> 0;
      const y0 = rngU32(sd, id, st, 0) % (s - h),
        x0 = rngU32(sd, id, st, 1) % (s - w),
        flip = rngU32(sd, id, st, 2) % 4;
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          const a = flip & 1 ? h - 1 - i : i,
            c = flip & 2 ? w - 1 - j : j;
          const q = ((y0 + a) * s + x0 + c) * 3;
          for (let ch = 0; ch < 3; ch++) {
            const o = ((b * h + i) * w + j) * 3 + ch;
            y[o] = clamp01(fr(p.image) * x.data[o] + fr(p.frost) * tex.data[q + ch]);
          }
        }
      }
    }
    return { shape: [...x.shape], data: y };
  },
};
