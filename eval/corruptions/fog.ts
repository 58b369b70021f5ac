// ImageNet-C fog, ported from hendrycks/robustness `imagenet_c/corruptions.py` (parameters:
// docs/imagenet-c.md): y = clip((x + c0·fractal) · max(x) / (max(x) + c0)), max over the image.
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]; ids [N]; asset: a bank of FOG_BANK plasma fractals
// [K,M,M] (textures.ts, a faithful port of plasma_fractal: same mapsize and decay). Dispatches:
// row max (one invocation per image row) → image max (one per image) (common.ts imageMax, temps
// 0 and 1) → blend (one invocation per pixel, all channels), stage kernels of common.ts.
//
// Deviation: the reference draws a fresh 256×256 plasma fractal per image on the CPU
// (diamond-square is sequential). Here each image picks one fractal of the bank, a random
// toroidal roll (the fractal wraps, as the reference builds it with np.roll) and one of the 8
// flips/transposes, then crops H×W; images larger than 256 get a larger fractal.

import { type KernelFamily, type Lowering, f32Lit, input, output, temp } from '../../kernels/kernel.js';
import { RNG_WGSL, rngU32 } from '../rng.js';
import {
  type Dims,
  type Launch,
  STAGE_PIXEL,
  clamp01,
  dims,
  five,
  imageMax,
  rowMaxRef,
  stageDispatch,
  stageShader,
} from './common.js';
import type { CorruptionDef } from './corruption.js';
import { fogBank, memoTexture } from './textures.js';

/** RNG stream of fog's per-image choice of fractal, roll and flip (other files use other ranges). */
const STREAM = { fogPick: 0x666f0101 } as const;

/** Fractals in the fog bank; each image uses one of them, rolled and flipped. */
export const FOG_BANK = 8;

const f = f32Lit;

export interface FogParams {
  strength: number;
  decay: number;
}

interface FogConfig extends Dims, Launch {
  seed: number;
  strength: number;
  k: number;
  m: number;
}

const fogFamily: KernelFamily<FogConfig> = {
  name: 'fog',
  wgsl: (c) =>
    stageShader(
      c,
      `
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> ids: array<f32>;        // input  [N] image ids
@group(0) @binding(2) var<storage, read> bank: array<f32>;       // input  [K,M,M] plasma fractals
@group(0) @binding(3) var<storage, read> xmax: array<f32>;       // temp   [N] max of each image
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // output [N,H,W,3]`,
      `
${STAGE_PIXEL}
  let id = u32(ids[n]);
  let k = rng_u32(${c.seed}u, id, ${STREAM.fogPick}u, 0u) % ${c.k}u;
  let oy = rng_u32(${c.seed}u, id, ${STREAM.fogPick}u, 1u) % ${c.m}u;
  let ox = rng_u32(${c.seed}u, id, ${STREAM.fogPick}u, 2u) % ${c.m}u;
  let d = rng_u32(${c.seed}u, id, ${STREAM.fogPick}u, 3u) % 8u;
  var a = i;
  var b = j;
  if ((d & 4u) != 0u) { a = j; b = i; }
  if ((d & 1u) != 0u) { a = ${c.m - 1}u - a; }
  if ((d & 2u) != 0u) { b = ${c.m - 1}u - b; }
  let fog = bank[(k * ${c.m}u + (a + oy) % ${c.m}u) * ${c.m}u + (b + ox) % ${c.m}u];
  let mx = xmax[n];
  for (var ch = 0u; ch < 3u; ch++) {
    y[t * 3u + ch] = clamp((x[t * 3u + ch] + ${f(c.strength)} * fog) * mx / (mx + ${f(c.strength)}), 0.0, 1.0);
  }`,
      RNG_WGSL,
    ),
};

/** Fractal side: the reference's 256, or the next power of two that covers the image. */
const fogMapSize = (h: number, w: number) => Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(h, w))));

export const fog: CorruptionDef<FogParams> = {
  name: 'fog',
  params: five(
    [
      [1.5, 2],
      [2, 2],
      [2.5, 1.7],
      [2.5, 1.5],
      [3, 1.4],
    ] as const,
    ([strength, decay]) => ({ strength, decay }),
  ),
  assets(p, seed, shape) {
    const m = fogMapSize(shape[1], shape[2]);
    const data = memoTexture(`fog:${seed}:${m}:${p.decay}`, () => fogBank(FOG_BANK, m, p.decay, seed));
    return [{ shape: [FOG_BANK, m, m], data }];
  },
  lower(p, seed, shape, ctx): Lowering {
    const d = dims(shape);
    const px = d.n * d.h * d.w;
    return {
      dispatches: [
        ...imageMax(input(0), 0, 1, d.n, d.h, d.w * 3, ctx),
        stageDispatch(
          fogFamily,
          { ...d, seed: seed >>> 0, strength: p.strength, k: FOG_BANK, m: fogMapSize(d.h, d.w) },
          px,
          [input(0), input(1), input(2), temp(1), output(0)],
          ctx,
          4 * px * 7,
        ),
      ],
      temps: [d.n * d.h, d.n],
    };
  },
  ref(p, seed, x, ids, [bank]) {
    const [n, h, w] = x.shape;
    const m = bank.shape[1];
    const xmax = rowMaxRef(rowMaxRef(x.data, n * h, w * 3), n, h);
    const y = new Float32Array(x.data.length);
    const s = seed >>> 0,
      st = STREAM.fogPick;
    for (let b = 0; b < n; b++) {
      const id = ids[b] >>> 0;
      const k = rngU32(s, id, st, 0) % bank.shape[0],
        oy = rngU32(s, id, st, 1) % m,
        ox = rngU32(s, id, st, 2) % m,
        dd = rngU32(s, id, st, 3) % 8;
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          let a = dd & 4 ? j : i,
            c = dd & 4 ? i : j;
          if (dd & 1) a = m - 1 - a;
          if (dd & 2) c = m - 1 - c;
          const fogv = bank.data[(k * m + ((a + oy) % m)) * m + ((c + ox) % m)];
          for (let ch = 0; ch < 3; ch++) {
            const q = ((b * h + i) * w + j) * 3 + ch;
            y[q] = clamp01(((x.data[q] + p.strength * fogv) * xmax[b]) / (xmax[b] + p.strength));
          }
        }
      }
    }
    return { shape: [...x.shape], data: y };
  },
};
