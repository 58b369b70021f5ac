// Elementwise ops: `activation` (unary) and `add` (binary, numpy broadcasting, optional fused
// activation, which is how a residual add + ReLU runs as one kernel).
//
// Mapping: one invocation per 4 output elements. When both operands have the output's shape
// and the count is a multiple of 4, the buffers are read as vec4; otherwise each invocation
// unravels its indices against the broadcast strides baked into the shader.

import {
  type Activation,
  type HostTensor,
  type KernelFamily,
  type OpDef,
  type Shape,
  activationRef,
  activationWgsl,
  broadcastShapes,
  ceilDiv,
  grid,
  input,
  makeDispatch,
  numel,
  output,
} from './kernel.js';
import { actTWgsl, flatMain, vecType, wgsl } from './wgsl.js';

// ---- activation ------------------------------------------------------------------------------

interface UnaryConfig {
  n: number;
  act: Activation;
  vec4: boolean;
  wg: number;
  gridX: number;
}

const unary: KernelFamily<UnaryConfig> = {
  name: 'activation',
  wgsl: (c) => wgsl`
${activationWgsl(c.act)}
${actTWgsl(c.vec4)}
@group(0) @binding(0) var<storage, read> x: array<${vecType(c.vec4)}>;        // input  [n]
@group(0) @binding(1) var<storage, read_write> y: array<${vecType(c.vec4)}>;  // output [n]

${flatMain(c.wg, c.gridX)}
#if ${c.vec4}
  if (t >= ${c.n / 4}u) { return; }
  y[t] = actT(x[t]);
#else
  for (var k = 0u; k < 4u; k++) {
    let i = t * 4u + k;
    if (i < ${c.n}u) { y[i] = actT(x[i]); }
  }
#endif
}`,
};

export interface ActivationAttrs {
  act: Activation;
}

export const activationOp: OpDef<ActivationAttrs> = {
  op: 'activation',
  arity: [1, 1],
  infer: (_a, [x]) => [x],
  lower(a, [x], _o, ctx) {
    const n = numel(x);
    const wg = 64;
    const g = grid(ceilDiv(ceilDiv(n, 4), wg), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: UnaryConfig = { n, act: a.act, vec4: n % 4 === 0, wg, gridX: g[0] };
    return { dispatches: [makeDispatch(unary, cfg, g, [input(0), output(0)], { bytes: 8 * n })] };
  },
  ref(a, [x]) {
    const f = activationRef(a.act);
    return [{ shape: [...x.shape], data: x.data.map(f) }];
  },
};

// ---- add ---------------------------------------------------------------------------------------

/** Row-major strides of `s` read against output shape `out`, 0 where `s` broadcasts. */
export function broadcastStrides(s: Shape, out: Shape): number[] {
  const r = out.length;
  const strides = new Array<number>(r).fill(0);
  let acc = 1;
  for (let i = r - 1; i >= 0; i--) {
    const d = s[s.length - r + i] ?? 1;
    strides[i] = d === 1 ? 0 : acc;
    acc *= d;
  }
  return strides;
}

/**
 * What a flat broadcast-binary kernel bakes in (shared by `add` here and `binary`): the element
 * count and launch, and unless both operands have the output's shape, the output shape and the
 * operands' strides over it.
 */
export interface BroadcastLayout {
  n: number;
  wg: number;
  gridX: number;
  /** Output shape and operand strides; empty when both operands match the output (fast path). */
  shape: readonly number[];
  aStrides: readonly number[];
  bStrides: readonly number[];
  vec4: boolean;
}

/** The layout and grid of y = a ∘ b for operand shapes x, y and output shape out. */
export function broadcastLayout(
  x: Shape,
  y: Shape,
  out: Shape,
  maxPerDim: number,
): { layout: BroadcastLayout; grid: [number, number, number] } {
  const n = numel(out);
  const same = numel(x) === n && numel(y) === n;
  const wg = 64;
  const g = grid(ceilDiv(ceilDiv(n, 4), wg), maxPerDim);
  const layout: BroadcastLayout = {
    n,
    wg,
    gridX: g[0],
    vec4: same && n % 4 === 0,
    shape: same ? [] : [...out],
    aStrides: same ? [] : broadcastStrides(x, out),
    bStrides: same ? [] : broadcastStrides(y, out),
  };
  return { layout, grid: g };
}

/** WGSL of y = combine(a, b) over a BroadcastLayout; `prelude` holds the functions combine calls. */
export function broadcastBinaryWgsl(
  c: BroadcastLayout,
  combine: (a: string, b: string) => string,
  prelude = '',
): string {
  const T = vecType(c.vec4);
  const same = c.shape.length === 0;
  // Unravel flat index i over the output shape into offsets into a and b.
  let unravel = '';
  if (!same) {
    unravel = '    var r = i;\n    var ia = 0u;\n    var ib = 0u;\n';
    for (let d = c.shape.length - 1; d >= 0; d--) {
      unravel += `    { let q = r % ${c.shape[d]}u; r = r / ${c.shape[d]}u; ia += q * ${c.aStrides[d]}u; ib += q * ${c.bStrides[d]}u; }\n`;
    }
  }
  return wgsl`
${prelude}
@group(0) @binding(0) var<storage, read> a: array<${T}>;        // input  a (broadcast to output)
@group(0) @binding(1) var<storage, read> b: array<${T}>;        // input  b (broadcast to output)
@group(0) @binding(2) var<storage, read_write> y: array<${T}>;  // output [${c.shape.join(',')}]

${flatMain(c.wg, c.gridX)}
#if ${c.vec4}
  if (t >= ${c.n / 4}u) { return; }
  y[t] = ${combine('a[t]', 'b[t]')};
#else
  for (var k = 0u; k < 4u; k++) {
    let i = t * 4u + k;
    if (i >= ${c.n}u) { return; }
${same ? '    let ia = i;\n    let ib = i;\n' : unravel}    y[i] = ${combine('a[ia]', 'b[ib]')};
  }
#endif
}`;
}

/** The reference of y = f(a, b) with numpy broadcasting. */
export function broadcastBinaryRef(x: HostTensor, y: HostTensor, f: (a: number, b: number) => number): HostTensor {
  const shape = broadcastShapes(x.shape, y.shape);
  const n = numel(shape);
  const sa = broadcastStrides(x.shape, shape);
  const sb = broadcastStrides(y.shape, shape);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let r = i,
      ia = 0,
      ib = 0;
    for (let d = shape.length - 1; d >= 0; d--) {
      const q = r % shape[d];
      r = Math.floor(r / shape[d]);
      ia += q * sa[d];
      ib += q * sb[d];
    }
    data[i] = f(x.data[ia], y.data[ib]);
  }
  return { shape, data };
}

interface AddConfig extends BroadcastLayout {
  act: Activation;
}

const add: KernelFamily<AddConfig> = {
  name: 'add',
  wgsl: (c) => broadcastBinaryWgsl(c, (a, b) => `actT(${a} + ${b})`, `${activationWgsl(c.act)}\n${actTWgsl(c.vec4)}`),
};

export interface AddAttrs {
  act?: Activation;
}

export const addOp: OpDef<AddAttrs> = {
  op: 'add',
  arity: [2, 2],
  infer: (_a, [x, y]) => [broadcastShapes(x, y)],
  lower(a, [x, y], [out], ctx) {
    const { layout, grid: g } = broadcastLayout(x, y, out, ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: AddConfig = { ...layout, act: a.act ?? 'none' };
    const n = layout.n;
    return {
      dispatches: [
        makeDispatch(add, cfg, g, [input(0), input(1), output(0)], { flops: n, bytes: 4 * (numel(x) + numel(y) + n) }),
      ],
    };
  },
  ref(a, [x, y]) {
    const f = activationRef(a.act ?? 'none');
    return [broadcastBinaryRef(x, y, (u, v) => f(u + v))];
  },
};
