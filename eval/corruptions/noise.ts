// ImageNet-C noise: gaussian_noise, shot_noise, impulse_noise and the extra speckle_noise, ported
// from hendrycks/robustness `imagenet_c/corruptions.py` (parameters: docs/imagenet-c.md). The
// reference works on x/255, i.e. on [0,1], as cnnlab's images are, so its constants carry over.
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]; ids [N]. Mapping: one invocation per pixel, all three
// channels, through common.ts's pixelMain. Every draw is the shared counter RNG at
// (seed, image id, stream, e) with e = (y·W + x)·3 + channel, the element's index within its image:
// the GPU and the TS reference draw the same numbers, and an image's noise does not depend on the
// batch or shard it is in.
//
//   gaussian_noise  clip(x + N(0, σ))
//   speckle_noise   clip(x + x·N(0, c))
//   impulse_noise   skimage random_noise('s&p', amount): an element flips when U ≤ amount; a flipped
//                   element is salt (1) when a second U ≤ 0.5, pepper (0) otherwise
//   shot_noise      clip(Poisson(x·c) / c), Poisson sampled exactly by inversion of its CDF from one
//                   uniform, summing P(k) upward from k = 0 in f32; the loop stops after
//                   ⌈c + 10√c + 10⌉ terms (λ ≤ c for x ≤ 1; past that k/c > 1 is clipped anyway).
//                   The reference uses numpy's Poisson sampler: same distribution, other draws.

import { type KernelFamily, type Shape, f32Lit, input, makeDispatch, output } from '../../kernels/kernel.js';
import { RNG_WGSL, rngNormal, rngUniform } from '../rng.js';
import { type PixelGrid, clamp01, pixelGrid, pixelMain, u32Seed } from './common.js';
import type { CorruptionDef } from './corruption.js';

type NoiseKind = 'gaussian' | 'shot' | 'impulse' | 'speckle';

/** RNG streams (other corruption files use other ranges). */
export const NOISE_STREAM = { gaussian: 0x100, speckle: 0x101, shot: 0x102, flip: 0x103, salt: 0x104 } as const;

interface NoiseConfig extends PixelGrid {
  kind: NoiseKind;
  c: number;
  seed: number;
}

/** Poisson loop bound for rate c: λ = x·c ≤ c. */
export const shotKmax = (c: number): number => Math.ceil(c + 10 * Math.sqrt(c) + 10);

function noiseExpr(c: NoiseConfig): string {
  const s = `${c.seed}u, id`;
  switch (c.kind) {
    case 'gaussian':
      return `v + ${f32Lit(c.c)} * rng_normal(${s}, ${NOISE_STREAM.gaussian}u, e)`;
    case 'speckle':
      return `v + v * (${f32Lit(c.c)} * rng_normal(${s}, ${NOISE_STREAM.speckle}u, e))`;
    case 'impulse':
      return `select(v, select(0.0, 1.0, rng_uniform(${s}, ${NOISE_STREAM.salt}u, e) <= 0.5), rng_uniform(${s}, ${NOISE_STREAM.flip}u, e) <= ${f32Lit(c.c)})`;
    case 'shot':
      return `poisson(max(v, 0.0) * ${f32Lit(c.c)}, rng_uniform(${s}, ${NOISE_STREAM.shot}u, e)) / ${f32Lit(c.c)}`;
  }
}

const noiseFamily: KernelFamily<NoiseConfig> = {
  name: 'corrupt-noise',
  wgsl: (c) => `
${RNG_WGSL}
${
  c.kind === 'shot'
    ? `
// Smallest k with u < P(X ≤ k), X ~ Poisson(lam): the CDF summed upward from k = 0.
fn poisson(lam: f32, u: f32) -> f32 {
  var pk = exp(-lam);
  var cdf = pk;
  var k = 0u;
  while (u >= cdf && k < ${shotKmax(c.c)}u) {
    k += 1u;
    pk = pk * (lam / f32(k));
    cdf = cdf + pk;
  }
  return f32(k);
}`
    : ''
}
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> ids: array<f32>;      // input  [N] image ids
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]
${pixelMain(
  c,
  `
  let id = u32(ids[b]);
  for (var ch = 0u; ch < 3u; ch++) {
    let e = q * 3u + ch;           // element index within the image
    let v = x[p * 3u + ch];
    y[p * 3u + ch] = clamp(${noiseExpr(c)}, 0.0, 1.0);
  }`,
)}`,
};

/** Reference Poisson inversion in f32 arithmetic, step for step as the WGSL. */
export function poissonF32(lam: number, u: number, kmax: number): number {
  const f = Math.fround;
  let pk = f(Math.exp(-lam));
  let cdf = pk;
  let k = 0;
  while (u >= cdf && k < kmax) {
    k += 1;
    pk = f(pk * f(lam / k));
    cdf = f(cdf + pk);
  }
  return k;
}

function noiseDef(
  name: string,
  kind: NoiseKind,
  params: [number, number, number, number, number],
  extra = false,
): CorruptionDef<number> {
  return {
    name,
    extra,
    params,
    lower(c, seed, shape: Shape, ctx) {
      const { g, groups } = pixelGrid(shape, ctx);
      const cfg: NoiseConfig = { ...g, kind, c, seed: u32Seed(seed) };
      return {
        dispatches: [
          makeDispatch(noiseFamily, cfg, groups, [input(0), input(1), output(0)], { bytes: 24 * g.n * g.h * g.w }),
        ],
      };
    },
    ref(c, seed, x, ids) {
      const [n, h, w] = x.shape;
      const s = u32Seed(seed);
      const cf = Math.fround(c);
      const out = new Float32Array(x.data.length);
      for (let b = 0; b < n; b++) {
        const id = ids[b] >>> 0;
        for (let e = 0; e < h * w * 3; e++) {
          const i = b * h * w * 3 + e;
          const v = x.data[i];
          let r: number;
          switch (kind) {
            case 'gaussian':
              r = v + cf * rngNormal(s, id, NOISE_STREAM.gaussian, e);
              break;
            case 'speckle':
              r = v + v * (cf * rngNormal(s, id, NOISE_STREAM.speckle, e));
              break;
            case 'impulse':
              r =
                rngUniform(s, id, NOISE_STREAM.flip, e) <= cf
                  ? rngUniform(s, id, NOISE_STREAM.salt, e) <= 0.5
                    ? 1
                    : 0
                  : v;
              break;
            case 'shot':
              r =
                poissonF32(Math.fround(Math.max(v, 0) * cf), rngUniform(s, id, NOISE_STREAM.shot, e), shotKmax(c)) / cf;
              break;
          }
          out[i] = clamp01(r);
        }
      }
      return { shape: [...x.shape], data: out };
    },
  };
}

export const gaussianNoise = noiseDef('gaussian_noise', 'gaussian', [0.08, 0.12, 0.18, 0.26, 0.38]);
export const shotNoise = noiseDef('shot_noise', 'shot', [60, 25, 12, 5, 3]);
export const impulseNoise = noiseDef('impulse_noise', 'impulse', [0.03, 0.06, 0.09, 0.17, 0.27]);
export const speckleNoise = noiseDef('speckle_noise', 'speckle', [0.15, 0.2, 0.35, 0.45, 0.6], true);
