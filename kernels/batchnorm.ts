// BatchNorm for inference: x [..., C] (channels last), gamma, beta, mean, var [C] ->
// y = (x - mean) / sqrt(var + eps) * gamma + beta, then an optional fused activation.
//
// Usually a graph pass folds BN into the conv before it (foldBatchNormParams gives the
// per-channel scale and shift); this kernel runs the BNs that cannot be folded, e.g. a
// pre-activation BN that follows an add.
//
// Mapping: one invocation per 4 elements. When C % 4 == 0 each invocation reads one vec4 of x
// and the matching vec4 of each parameter (4 consecutive channels); otherwise it loops over 4
// scalars and finds each one's channel as i % C. The per-channel scale is recomputed in every
// invocation: 4 loads and a sqrt, cheaper than a second dispatch for a memory-bound kernel.

import {
  type Activation,
  type HostTensor,
  type KernelFamily,
  type OpDef,
  activationRef,
  activationWgsl,
  ceilDiv,
  expectVector,
  f32Lit,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
} from './kernel.js';
import { actTWgsl, flatMain, vecType, wgsl } from './wgsl.js';

export interface BatchNormAttrs {
  eps?: number;
  act?: Activation;
}

interface BatchNormConfig {
  n: number;
  C: number;
  eps: number;
  act: Activation;
  vec4: boolean;
  wg: number;
  gridX: number;
}

const batchnorm: KernelFamily<BatchNormConfig> = {
  name: 'batchnorm',
  wgsl(c) {
    const T = vecType(c.vec4);
    const body = (i: string, ch: string) =>
      `actT((x[${i}] - mean[${ch}]) * (gamma[${ch}] / sqrt(var_[${ch}] + ${f32Lit(c.eps)})) + beta[${ch}])`;
    return wgsl`
${activationWgsl(c.act)}
${actTWgsl(c.vec4)}
@group(0) @binding(0) var<storage, read> x: array<${T}>;        // input  [${c.n / c.C}, ${c.C}] (leading dims flattened)
@group(0) @binding(1) var<storage, read> gamma: array<${T}>;    // input  [${c.C}]
@group(0) @binding(2) var<storage, read> beta: array<${T}>;     // input  [${c.C}]
@group(0) @binding(3) var<storage, read> mean: array<${T}>;     // input  [${c.C}] running mean
@group(0) @binding(4) var<storage, read> var_: array<${T}>;     // input  [${c.C}] running variance
@group(0) @binding(5) var<storage, read_write> y: array<${T}>;  // output [${c.n / c.C}, ${c.C}]

${flatMain(c.wg, c.gridX)}
#if ${c.vec4}
  if (t >= ${c.n / 4}u) { return; }
  let ch = t % ${c.C / 4}u;
  y[t] = ${body('t', 'ch')};
#else
  for (var k = 0u; k < 4u; k++) {
    let i = t * 4u + k;
    if (i >= ${c.n}u) { return; }
    let ch = i % ${c.C}u;
    y[i] = ${body('i', 'ch')};
  }
#endif
}`;
  },
};

export const batchNormOp: OpDef<BatchNormAttrs> = {
  op: 'batchnorm',
  arity: [5, 5],
  infer(_a, [x, gamma, beta, mean, variance]) {
    if (x.length < 1) throw new ShapeError(`batchnorm input must have rank >= 1, got ${fmtShape(x)}`);
    const C = x[x.length - 1];
    expectVector('gamma', gamma, C, x);
    expectVector('beta', beta, C, x);
    expectVector('mean', mean, C, x);
    expectVector('var', variance, C, x);
    return [x];
  },
  lower(a, [x], _o, ctx) {
    const n = numel(x);
    const C = x[x.length - 1];
    const wg = 64;
    const g = grid(ceilDiv(ceilDiv(n, 4), wg), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: BatchNormConfig = { n, C, eps: a.eps ?? 1e-5, act: a.act ?? 'none', vec4: C % 4 === 0, wg, gridX: g[0] };
    return {
      dispatches: [
        makeDispatch(batchnorm, cfg, g, [input(0), input(1), input(2), input(3), input(4), output(0)], {
          flops: 2 * n,
          bytes: 4 * (2 * n + 4 * C),
        }),
      ],
    };
  },
  ref(a, [x, gamma, beta, mean, variance]) {
    const C = x.shape[x.shape.length - 1];
    const eps = a.eps ?? 1e-5;
    const f = activationRef(a.act ?? 'none');
    const y = new Float32Array(x.data.length);
    for (let i = 0; i < y.length; i++) {
      const c = i % C;
      y[i] = f(((x.data[i] - mean.data[c]) / Math.sqrt(variance.data[c] + eps)) * gamma.data[c] + beta.data[c]);
    }
    return [{ shape: [...x.shape], data: y } satisfies HostTensor];
  },
};

/**
 * BN as a per-channel affine map y = x * scale + shift, for folding into the conv before it:
 * scale = gamma / sqrt(var + eps), shift = beta - mean * scale. Computed in double, rounded once.
 */
export function foldBatchNormParams(
  gamma: Float32Array,
  beta: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  eps: number,
): { scale: Float32Array; shift: Float32Array } {
  const C = gamma.length;
  if (beta.length !== C || mean.length !== C || variance.length !== C) {
    throw new ShapeError(
      `batchnorm parameters differ in length: gamma [${C}], beta [${beta.length}], mean [${mean.length}], var [${variance.length}]`,
    );
  }
  const scale = new Float32Array(C);
  const shift = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const s = gamma[c] / Math.sqrt(variance[c] + eps);
    scale[c] = s;
    shift[c] = beta[c] - mean[c] * s;
  }
  return { scale, shift };
}
