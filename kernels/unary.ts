// `unary`: pointwise functions that are not fused epilogue activations (kernel.ts Activation):
// sigmoid, tanh and hardsigmoid(x) = clamp(αx + β, 0, 1) (ONNX HardSigmoid; PyTorch's
// nn.Hardsigmoid exports α = 1/6, β = 1/2). The ONNX importer maps Sigmoid, Tanh and HardSigmoid
// here; squeeze-and-excitation gates are the main users.
//
// Numerics: sigmoid as 1 / (1 + exp(-x)) overflows exp for x < -88 to +inf, giving 0, the right
// limit. tanh through WGSL's builtin on x clamped to ±10: SwiftShader's builtin returns NaN for
// large |x| (it divides overflowing exps; the unclamped version failed this kernel's test at
// |x| ≈ 90), and tanh(10) already rounds to 1 in f32.
//
// Mapping: as `activation` (elementwise.ts): one invocation per 4 elements, vec4 loads when the
// count is a multiple of 4.

import {
  type KernelFamily,
  type OpDef,
  ceilDiv,
  f32Lit,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
} from './kernel.js';
import { flatMain, vecType, wgsl } from './wgsl.js';

export type UnaryFn = 'sigmoid' | 'tanh' | 'hardsigmoid';
const FNS: readonly UnaryFn[] = ['sigmoid', 'tanh', 'hardsigmoid'];

export interface UnaryAttrs {
  fn: UnaryFn;
  /** hardsigmoid's slope and offset (default 0.2 and 0.5, as ONNX). */
  alpha?: number;
  beta?: number;
}

interface UnaryConfig {
  fn: UnaryFn;
  alpha: number;
  beta: number;
  n: number;
  vec4: boolean;
  wg: number;
  gridX: number;
}

function fnWgsl(c: UnaryConfig): string {
  const T = vecType(c.vec4);
  switch (c.fn) {
    case 'sigmoid':
      return `fn f(x: ${T}) -> ${T} { return 1.0 / (1.0 + exp(-x)); }`;
    case 'tanh':
      return `fn f(x: ${T}) -> ${T} { return tanh(clamp(x, ${T}(-10.0), ${T}(10.0))); }`;
    case 'hardsigmoid':
      return `fn f(x: ${T}) -> ${T} { return clamp(${f32Lit(c.alpha)} * x + ${f32Lit(c.beta)}, ${T}(0.0), ${T}(1.0)); }`;
  }
}

const unary: KernelFamily<UnaryConfig> = {
  name: 'unary',
  wgsl: (c) => wgsl`
${fnWgsl(c)}
@group(0) @binding(0) var<storage, read> x: array<${vecType(c.vec4)}>;        // input  [n]
@group(0) @binding(1) var<storage, read_write> y: array<${vecType(c.vec4)}>;  // output [n]

${flatMain(c.wg, c.gridX)}
#if ${c.vec4}
  if (t >= ${c.n / 4}u) { return; }
  y[t] = f(x[t]);
#else
  for (var k = 0u; k < 4u; k++) {
    let i = t * 4u + k;
    if (i < ${c.n}u) { y[i] = f(x[i]); }
  }
#endif
}`,
};

function params(a: UnaryAttrs): { fn: UnaryFn; alpha: number; beta: number } {
  if (!FNS.includes(a.fn)) throw new ShapeError(`unary fn "${String(a.fn)}" is not one of ${FNS.join(', ')}`);
  const alpha = a.alpha ?? 0.2;
  const beta = a.beta ?? 0.5;
  if (!Number.isFinite(alpha) || !Number.isFinite(beta))
    throw new ShapeError(`unary ${a.fn}: alpha ${alpha} and beta ${beta} must be finite`);
  return { fn: a.fn, alpha, beta };
}

/** The reference function (double precision, rounded to f32 on store). */
export function unaryRef(a: UnaryAttrs): (x: number) => number {
  const { fn, alpha, beta } = params(a);
  switch (fn) {
    case 'sigmoid':
      return (x) => 1 / (1 + Math.exp(-x));
    case 'tanh':
      return Math.tanh;
    case 'hardsigmoid':
      return (x) => Math.min(Math.max(alpha * x + beta, 0), 1);
  }
}

export const unaryOp: OpDef<UnaryAttrs> = {
  op: 'unary',
  arity: [1, 1],
  infer(a, [x]) {
    params(a);
    return [x];
  },
  lower(a, [x], _o, ctx) {
    const n = numel(x);
    const wg = 64;
    const g = grid(ceilDiv(ceilDiv(n, 4), wg), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: UnaryConfig = { ...params(a), n, vec4: n % 4 === 0, wg, gridX: g[0] };
    return { dispatches: [makeDispatch(unary, cfg, g, [input(0), output(0)], { flops: 4 * n, bytes: 8 * n })] };
  },
  ref(a, [x]) {
    const f = unaryRef(a);
    return [{ shape: [...x.shape], data: x.data.map(f) }];
  },
};
