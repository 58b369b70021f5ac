// Shape-generic matmul with a constant weight (matmul variant 'generic'): one pipeline for every
// Linear layer of a model with the same epilogue (ViT's qkv, projection, MLP and head), to cut the
// pipelines a cold start must build (docs/kernels-gpu.md, "Cold start").
//
// y[m, n] = act(bias[n] + Σ_k a[m, k] · b[k, n]) with a [..., M, K] (leading dims folded into rows)
// and b a constant [K, N] weight (or [N, K] with transB) is the product the shape-generic
// pointwise conv computes (kernels/pointwise-generic.ts: x [M, Cin] · w [Cin, Cout]), so this file
// lowers onto that kernel: M, K/4, N/4 and the grid's x extent travel in the header in front of
// the weights. With transB the weights are transposed to [K, N] at load, in the same relayout
// that adds the header. A product of two activations (attention's q·kᵀ) has no constant to carry
// the header and keeps the specialised kernels.

import type { Activation, Lowering } from './kernel.js';
import { lowerPointwiseGeneric } from './pointwise-generic.js';

/** b [N, K] (row-major) → [K, N]. */
export function transposeNK(b: Float32Array, N: number, K: number): Float32Array {
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[k * N + n] = b[n * K + k];
  return out;
}

/**
 * The lowering of rows × K · K × N (b a constant, K and N multiples of 4) on the generic kernel:
 * the pointwise-generic dispatch, and b's layout with the header in front (transposed first with transB).
 */
export function lowerMatmulGeneric(
  shape: { rows: number; k: number; n: number; transB: boolean; bias: boolean; act: Activation },
  tile: { tm: number; tn: number },
  maxPerDim: number,
  cost: { flops: number; bytes: number },
): Lowering {
  const low = lowerPointwiseGeneric(
    { m: shape.rows, cin: shape.k, cout: shape.n, bias: shape.bias, residual: false, act: shape.act },
    tile,
    maxPerDim,
    cost,
  );
  if (!shape.transB) return low;
  const [cl] = low.constLayouts!;
  return {
    ...low,
    constLayouts: [
      { ...cl, layout: `${cl.layout}-transB`, apply: (w: Float32Array) => cl.apply(transposeNK(w, shape.n, shape.k)) },
    ],
  };
}
