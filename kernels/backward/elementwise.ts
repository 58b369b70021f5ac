// Backward kernels: activation gradients, the sum-reduction that undoes broadcasting, the softmax
// backward, and the softmax cross-entropy loss with its gradient (formulas: docs/autodiff.md).
//
//   activation_grad    [x, dy] -> dx = act'(x)·dy, elementwise; one invocation per element.
//   reduce_sum         [x] -> x summed down to attrs.shape (a shape that broadcasts to x's, numpy
//                      rules): the adjoint of broadcasting. One invocation per output element,
//                      looping over the reduced elements (broadcast axes) in row-major order.
//   softmax_grad       [y, dy] -> dx = y·(dy − Σ y·dy) over the last axis; one invocation per row.
//   softmax_xent       [logits [N,K], targets [N,K]] -> [1], mean over rows of −Σ_k t_k·log p_k,
//                      p = softmax(logits) (log-sum-exp with the row max subtracted). One
//                      workgroup: lanes stride over rows, a tree reduction adds the row losses.
//   softmax_xent_grad  [logits, targets, dloss [1]] -> dlogits = (p·Σt − t)·dloss/N (= p − t for
//                      targets that are probabilities); one invocation per row.
//
// Layout: row-major f32; rows are all leading dims, the last axis is the softmax axis.

import {
  type Activation,
  type HostTensor,
  type KernelFamily,
  type OpDef,
  type Shape,
  activationWgsl,
  broadcastShapes,
  ceilDiv,
  erf,
  expectRank,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
} from '../kernel.js';
import { flatMain, mainWgsl, workgroupReduceWgsl } from '../wgsl.js';

const WG = 64;

// ---- activation_grad ----------------------------------------------------------------------------

/** WGSL `fn dact(x: f32) -> f32`, the derivative of activation `a` (after activationWgsl(a)). */
export function activationGradWgsl(a: Activation): string {
  const body: Record<Activation, string> = {
    none: 'return 1.0;',
    relu: 'return select(0.0, 1.0, x > 0.0);',
    relu6: 'return select(0.0, 1.0, x > 0.0 && x < 6.0);',
    // Φ(x) + x·φ(x)
    gelu: 'return 0.5 * (1.0 + erf_approx(x * 0.70710678118654752)) + x * 0.3989422804014327 * exp(-0.5 * x * x);',
    // PyTorch: 0 below −3, x/3 + 1/2 up to 3, 1 above.
    hardswish: 'if (x < -3.0) { return 0.0; } if (x <= 3.0) { return x / 3.0 + 0.5; } return 1.0;',
    silu: 'let s = 1.0 / (1.0 + exp(-x)); return s * (1.0 + x * (1.0 - s));',
  };
  return `${activationWgsl(a)}\nfn dact(x: f32) -> f32 { ${body[a]} }`;
}

/** The derivative of activation `a`, in double precision. */
export function activationGradRef(a: Activation): (x: number) => number {
  switch (a) {
    case 'none':
      return () => 1;
    case 'relu':
      return (x) => (x > 0 ? 1 : 0);
    case 'relu6':
      return (x) => (x > 0 && x < 6 ? 1 : 0);
    case 'gelu':
      return (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
    case 'hardswish':
      return (x) => (x < -3 ? 0 : x <= 3 ? x / 3 + 0.5 : 1);
    case 'silu':
      return (x) => {
        const s = 1 / (1 + Math.exp(-x));
        return s * (1 + x * (1 - s));
      };
  }
}

interface ActGradConfig {
  n: number;
  act: Activation;
  wg: number;
  gridX: number;
}

const activationGrad: KernelFamily<ActGradConfig> = {
  name: 'activation_grad',
  wgsl: (c) => `
${activationGradWgsl(c.act)}
@group(0) @binding(0) var<storage, read> x: array<f32>;         // input  x [${c.n}] (the activation's input)
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // input  dL/dy [${c.n}]
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;  // output dL/dx [${c.n}]

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.n}u) { return; }
  dx[t] = dact(x[t]) * dy[t];
}`,
};

export interface ActivationGradAttrs {
  act: Activation;
}

export const activationGradOp: OpDef<ActivationGradAttrs> = {
  op: 'activation_grad',
  arity: [2, 2],
  infer(_a, [x, dy]) {
    if (fmtShape(x) !== fmtShape(dy)) throw new ShapeError(`x ${fmtShape(x)} and dy ${fmtShape(dy)} must match`);
    return [x];
  },
  lower(a, [x], _o, ctx) {
    const n = numel(x);
    const g = grid(ceilDiv(n, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: ActGradConfig = { n, act: a.act, wg: WG, gridX: g[0] };
    return {
      dispatches: [
        makeDispatch(activationGrad, cfg, g, [input(0), input(1), output(0)], { flops: 2 * n, bytes: 12 * n }),
      ],
    };
  },
  ref(a, [x, dy]) {
    const f = activationGradRef(a.act);
    return [{ shape: [...x.shape], data: x.data.map((v, i) => f(v) * dy.data[i]) }];
  },
};

// ---- reduce_sum -----------------------------------------------------------------------------------

/** Sizes and input strides of the kept axes (those of the output) and of the summed-over axes. */
function reduceAxes(x: Shape, target: Shape) {
  const r = x.length;
  const t = [...new Array<number>(r - target.length).fill(1), ...target];
  const strides: number[] = new Array(r);
  let acc = 1;
  for (let d = r - 1; d >= 0; d--) {
    strides[d] = acc;
    acc *= x[d];
  }
  const kept: [number, number][] = [];
  const summed: [number, number][] = [];
  for (let d = 0; d < r; d++) {
    if (x[d] === 1) continue;
    (t[d] === 1 ? summed : kept).push([x[d], strides[d]]);
  }
  return { kept, summed };
}

interface ReduceSumConfig {
  n: number;
  /** [size, input stride] of each output axis and each summed axis (size-1 axes dropped). */
  kept: readonly (readonly number[])[];
  summed: readonly (readonly number[])[];
  wg: number;
  gridX: number;
}

/** WGSL statements adding to `off` the input offset of flat index `v` unravelled over `axes`. */
function unravel(v: string, axes: readonly (readonly number[])[], off: string): string {
  let s = `    var r_${off} = ${v};\n`;
  for (let d = axes.length - 1; d >= 0; d--) {
    const [size, stride] = axes[d];
    s += `    ${off} += (r_${off} % ${size}u) * ${stride}u; r_${off} = r_${off} / ${size}u;\n`;
  }
  return s;
}

const reduceSum: KernelFamily<ReduceSumConfig> = {
  name: 'reduce_sum',
  wgsl(c) {
    const R = c.summed.reduce((p, [s]) => p * s, 1);
    return `
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  (the broadcast-shaped tensor)
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // output [${c.n}] (the target shape)

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.n}u) { return; }
  var base = 0u;
${unravel('t', c.kept, 'base')}  var s = 0.0;
  for (var j = 0u; j < ${R}u; j++) {
    var off = base;
${unravel('j', c.summed, 'off')}    s += x[off];
  }
  y[t] = s;
}`;
  },
};

export interface ReduceSumAttrs {
  /** The output shape: one that broadcasts to the input's (numpy rules). */
  shape: number[];
}

function reduceInfer(a: ReduceSumAttrs, x: Shape): number[] {
  const t = a.shape;
  if (!Array.isArray(t) || !t.every((d) => Number.isInteger(d) && d >= 1) || t.length > x.length)
    throw new ShapeError(`reduce_sum target ${JSON.stringify(t)} must be positive integers, rank ≤ ${x.length}`);
  if (fmtShape(broadcastShapes(t, x)) !== fmtShape(x))
    throw new ShapeError(`reduce_sum target ${fmtShape(t)} does not broadcast to the input ${fmtShape(x)}`);
  return [...t];
}

export const reduceSumOp: OpDef<ReduceSumAttrs> = {
  op: 'reduce_sum',
  arity: [1, 1],
  infer: (a, [x]) => [reduceInfer(a, x)],
  lower(_a, [x], [out], ctx) {
    const n = numel(out);
    const { kept, summed } = reduceAxes(x, out);
    const g = grid(ceilDiv(n, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: ReduceSumConfig = { n, kept, summed, wg: WG, gridX: g[0] };
    return {
      dispatches: [
        makeDispatch(reduceSum, cfg, g, [input(0), output(0)], { flops: numel(x), bytes: 4 * (numel(x) + n) }),
      ],
    };
  },
  ref(a, [x]) {
    const shape = reduceInfer(a, x.shape);
    const { kept, summed } = reduceAxes(x.shape, shape);
    const n = numel(shape);
    const R = summed.reduce((p, [s]) => p * s, 1);
    const offsets = (v: number, axes: [number, number][]) => {
      let off = 0;
      for (let d = axes.length - 1; d >= 0; d--) {
        off += (v % axes[d][0]) * axes[d][1];
        v = Math.floor(v / axes[d][0]);
      }
      return off;
    };
    const data = new Float32Array(n);
    for (let o = 0; o < n; o++) {
      const base = offsets(o, kept);
      let s = 0;
      for (let j = 0; j < R; j++) s += x.data[base + offsets(j, summed)];
      data[o] = s;
    }
    return [{ shape, data }];
  },
};

// ---- softmax_grad -----------------------------------------------------------------------------------

interface RowsConfig {
  rows: number;
  L: number;
  wg: number;
  gridX: number;
}

const softmaxGrad: KernelFamily<RowsConfig> = {
  name: 'softmax_grad',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> y: array<f32>;         // input  softmax output [${c.rows}, ${c.L}]
@group(0) @binding(1) var<storage, read> dy: array<f32>;        // input  dL/dy [${c.rows}, ${c.L}]
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;  // output dL/dx [${c.rows}, ${c.L}]

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.rows}u) { return; }
  let base = t * ${c.L}u;
  var dot = 0.0;
  for (var k = 0u; k < ${c.L}u; k++) { dot += y[base + k] * dy[base + k]; }
  for (var k = 0u; k < ${c.L}u; k++) { dx[base + k] = y[base + k] * (dy[base + k] - dot); }
}`,
};

const rowsOf = (x: Shape) => ({ L: x[x.length - 1], rows: numel(x) / x[x.length - 1] });

export const softmaxGradOp: OpDef<Record<string, never>> = {
  op: 'softmax_grad',
  arity: [2, 2],
  infer(_a, [y, dy]) {
    if (fmtShape(y) !== fmtShape(dy) || y.length < 1)
      throw new ShapeError(`y ${fmtShape(y)} and dy ${fmtShape(dy)} must match (rank ≥ 1)`);
    return [y];
  },
  lower(_a, [y], _o, ctx) {
    const { L, rows } = rowsOf(y);
    const g = grid(ceilDiv(rows, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: RowsConfig = { rows, L, wg: WG, gridX: g[0] };
    const n = numel(y);
    return {
      dispatches: [makeDispatch(softmaxGrad, cfg, g, [input(0), input(1), output(0)], { flops: 4 * n, bytes: 12 * n })],
    };
  },
  ref(_a, [y, dy]) {
    const { L, rows } = rowsOf(y.shape);
    const dx = new Float32Array(y.data.length);
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      for (let k = 0; k < L; k++) dot += y.data[r * L + k] * dy.data[r * L + k];
      for (let k = 0; k < L; k++) dx[r * L + k] = y.data[r * L + k] * (dy.data[r * L + k] - dot);
    }
    return [{ shape: [...y.shape], data: dx }];
  },
};

// ---- softmax_xent, softmax_xent_grad -----------------------------------------------------------------

function xentInfer(logits: Shape, targets: Shape): void {
  expectRank('softmax_xent logits [N, K]', logits, 2);
  if (fmtShape(logits) !== fmtShape(targets))
    throw new ShapeError(`targets ${fmtShape(targets)} must match logits ${fmtShape(logits)}`);
}

/** WGSL: `m` (row max) and `s` (Σ exp(x − m)) of the row at `base`. */
const rowStats = (L: number) => `
  var m = logits[base];
  for (var k = 1u; k < ${L}u; k++) { m = max(m, logits[base + k]); }
  var s = 0.0;
  for (var k = 0u; k < ${L}u; k++) { s += exp(logits[base + k] - m); }`;

const softmaxXent: KernelFamily<RowsConfig> = {
  name: 'softmax_xent',
  wgsl: (c) => `
${workgroupReduceWgsl(c.wg)}
@group(0) @binding(0) var<storage, read> logits: array<f32>;     // input  [${c.rows}, ${c.L}]
@group(0) @binding(1) var<storage, read> targets: array<f32>;    // input  [${c.rows}, ${c.L}] (probabilities)
@group(0) @binding(2) var<storage, read_write> loss: array<f32>; // output [1], the mean over rows

${mainWgsl(c.wg)}
  var total = 0.0;
  for (var row = lid; row < ${c.rows}u; row += ${c.wg}u) {
    let base = row * ${c.L}u;
${rowStats(c.L)}
    let lse = m + log(s);
    for (var k = 0u; k < ${c.L}u; k++) { total += targets[base + k] * (lse - logits[base + k]); }
  }
  let sum = wg_sum(total, lid);
  if (lid == 0u) { loss[0] = sum / ${c.rows}.0; }
}`,
};

const softmaxXentGrad: KernelFamily<RowsConfig> = {
  name: 'softmax_xent_grad',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> logits: array<f32>;     // input  [${c.rows}, ${c.L}]
@group(0) @binding(1) var<storage, read> targets: array<f32>;    // input  [${c.rows}, ${c.L}]
@group(0) @binding(2) var<storage, read> dloss: array<f32>;      // input  [1]
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;   // output dL/dlogits [${c.rows}, ${c.L}]

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.rows}u) { return; }
  let base = t * ${c.L}u;
${rowStats(c.L)}
  var tsum = 0.0;
  for (var k = 0u; k < ${c.L}u; k++) { tsum += targets[base + k]; }
  let f = dloss[0] / ${c.rows}.0;
  let inv = tsum / s;
  for (var k = 0u; k < ${c.L}u; k++) {
    dx[base + k] = (exp(logits[base + k] - m) * inv - targets[base + k]) * f;
  }
}`,
};

/** Per row of [N, K]: max, log Σ exp(x − max) and the softmax. */
function softmaxRows(x: HostTensor): { lse: Float64Array; p: Float64Array } {
  const [N, K] = x.shape;
  const lse = new Float64Array(N);
  const p = new Float64Array(N * K);
  for (let r = 0; r < N; r++) {
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, x.data[r * K + k]);
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(x.data[r * K + k] - m);
    lse[r] = m + Math.log(s);
    for (let k = 0; k < K; k++) p[r * K + k] = Math.exp(x.data[r * K + k] - lse[r]);
  }
  return { lse, p };
}

export const softmaxXentOp: OpDef<Record<string, never>> = {
  op: 'softmax_xent',
  arity: [2, 2],
  infer(_a, [logits, targets]) {
    xentInfer(logits, targets);
    return [[1]];
  },
  lower(_a, [x], _o) {
    const [rows, L] = x;
    const cfg: RowsConfig = { rows, L, wg: WG, gridX: 1 };
    return {
      dispatches: [
        makeDispatch(softmaxXent, cfg, [1, 1, 1], [input(0), input(1), output(0)], {
          flops: 5 * rows * L,
          bytes: 8 * rows * L + 4,
        }),
      ],
    };
  },
  ref(_a, [x, t]) {
    const [N, K] = x.shape;
    const { lse } = softmaxRows(x);
    let total = 0;
    for (let r = 0; r < N; r++) for (let k = 0; k < K; k++) total += t.data[r * K + k] * (lse[r] - x.data[r * K + k]);
    return [{ shape: [1], data: new Float32Array([total / N]) }];
  },
};

export const softmaxXentGradOp: OpDef<Record<string, never>> = {
  op: 'softmax_xent_grad',
  arity: [3, 3],
  infer(_a, [logits, targets, dloss]) {
    xentInfer(logits, targets);
    if (fmtShape(dloss) !== '[1]') throw new ShapeError(`dloss must be [1], got ${fmtShape(dloss)}`);
    return [logits];
  },
  lower(_a, [x], _o, ctx) {
    const [rows, L] = x;
    const g = grid(ceilDiv(rows, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: RowsConfig = { rows, L, wg: WG, gridX: g[0] };
    return {
      dispatches: [
        makeDispatch(softmaxXentGrad, cfg, g, [input(0), input(1), input(2), output(0)], {
          flops: 6 * rows * L,
          bytes: 12 * rows * L,
        }),
      ],
    };
  },
  ref(_a, [x, t, dloss]) {
    const [N, K] = x.shape;
    const { p } = softmaxRows(x);
    const dx = new Float32Array(N * K);
    const f = dloss.data[0] / N;
    for (let r = 0; r < N; r++) {
      let tsum = 0;
      for (let k = 0; k < K; k++) tsum += t.data[r * K + k];
      for (let k = 0; k < K; k++) dx[r * K + k] = (p[r * K + k] * tsum - t.data[r * K + k]) * f;
    }
    return [{ shape: [N, K], data: dx }];
  },
};

export const elementwiseGradOps: OpDef[] = [
  activationGradOp,
  reduceSumOp,
  softmaxGradOp,
  softmaxXentOp,
  softmaxXentGradOp,
];
