// The corruption contract: what every file of this folder exports, and what the `corrupt` graph
// op (op.ts) passes to it. Every ImageNet-C corruption is one graph op, `corrupt`, so a
// corruption, the model's normalisation and the model itself run in one command buffer.
//
//   inputs : x   [N,H,W,3] RGB in [0,1] (NHWC, the 224×224 crop as ImageNet-C corrupts it)
//            ids [N]       global image indices (f32, exact below 2^24): per-image randomness
//                          depends on (seed, id), so batching and sharding do not change it
//            assets…       constant textures the corruption made on the CPU (optional)
//   output : y   [N,H,W,3] in [0,1]
//   attrs  : { name, severity (1-5), seed }
//
// Parameters per severity are those of hendrycks/robustness `imagenet_c/corruptions.py`, listed
// with their sources in docs/imagenet-c.md. index.ts lists every corruption; common.ts holds what
// several of them share (launch plumbing, borders, Gaussian taps, zoom, rounding); the randomness
// is eval/rng.ts's counter-based hash keyed by (seed, image id, stream, index).

import type { HostTensor, LowerContext, Lowering, Shape } from '../../kernels/kernel.js';

export interface CorruptionDef<P = unknown> {
  name: string;
  /** One of the 4 extra corruptions (not in mCE). */
  extra?: boolean;
  /** Parameters for severities 1..5. */
  params: readonly [P, P, P, P, P];
  /**
   * Constant textures made on the CPU (a frost texture, a plasma fractal…), deterministic in
   * (params, seed, shape). They become graph constants bound as inputs 2, 3, …
   */
  assets?(p: P, seed: number, shape: Shape): HostTensor[];
  /** Dispatches: input(0) = x, input(1) = ids, input(2+) = assets, output(0) = y; temps allowed. */
  lower(p: P, seed: number, shape: Shape, ctx: LowerContext): Lowering;
  /** The same maths in plain TS (the test oracle): y from x, ids and assets. */
  ref(p: P, seed: number, x: HostTensor, ids: Float32Array, assets: HostTensor[]): HostTensor;
}

export interface CorruptAttrs {
  name: string;
  severity: number;
  seed: number;
}
