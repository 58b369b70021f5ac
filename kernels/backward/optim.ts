// Backward kernels: optimiser updates (SGD with momentum, AdamW), global-norm gradient clipping,
// and the running-statistics update of batchnorm in training mode. Formulas (PyTorch's, in our
// words) are in docs/autodiff.md.
//
// Per-step scalars come from one small tensor, `hyper` [4] = [lr, gradScale, bc1, bc2] (HYPER
// below), a graph input written every step, so one compiled plan serves a whole learning-rate
// schedule. gradScale multiplies every gradient before use: 1/microBatches when gradients were
// accumulated, times the clipping coefficient when grad_clip_scale rewrote it. bc1 = 1 − β1^t and
// bc2 = 1 − β2^t are AdamW's bias corrections for step t, computed by the host in double precision
// from its step counter: in f32, 1 − 0.999^t keeps only a few digits for small t (SGD ignores them).
//
//   sgd_update       [p, g, buf, hyper] -> [p', buf']         one invocation per element
//   adamw_update     [p, g, m, v, hyper] -> [p', m', v']      one invocation per element
//   sum_squares      [x] or [x, acc [1]] -> [1] = acc + Σ x²  one workgroup, lanes stride, tree sum
//   grad_clip_scale  [sumsq [1], hyper] -> hyper with gradScale·min(1, maxNorm / (‖g‖ + 1e-6)),
//                    ‖g‖ = √sumsq · gradScale (PyTorch's clip_grad_norm_); one invocation
//   ema_update       [r, b] -> (1 − momentum)·r + momentum·scale·b (BN running mean and variance)
//
// sgd_update, adamw_update and ema_update also lower in place (OpDef.inPlace, LowerContext.inPlace):
// parameter, slots and running statistic bound read_write and overwritten, each element by the
// invocation that read it, with no output buffers. The executor picks that form when nothing after
// the node reads the old values (docs/autodiff.md); both forms do the same arithmetic, bit for bit.

import {
  type HostTensor,
  type KernelFamily,
  type OpDef,
  type Shape,
  ShapeError,
  ceilDiv,
  f32Lit,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
} from '../kernel.js';
import { flatMain, mainWgsl, workgroupReduceWgsl } from '../wgsl.js';

const WG = 64;

/** Slots of the per-step scalars tensor `hyper` [4]. */
export const HYPER = { lr: 0, gradScale: 1, bc1: 2, bc2: 3, length: 4 } as const;

/** hyper for one step: learning rate, gradient scale, and AdamW's bias corrections of step t (≥ 1). */
export function hyperFor(lr: number, gradScale: number, t: number, betas: [number, number] = [0, 0]): Float32Array {
  const h = new Float32Array(HYPER.length);
  h[HYPER.lr] = lr;
  h[HYPER.gradScale] = gradScale;
  h[HYPER.bc1] = 1 - betas[0] ** t;
  h[HYPER.bc2] = 1 - betas[1] ** t;
  return h;
}

function sameShapes(what: string, shapes: Shape[], names: string[]): void {
  for (let i = 1; i < shapes.length; i++) {
    if (fmtShape(shapes[i]) !== fmtShape(shapes[0]))
      throw new ShapeError(`${what}: ${names[i]} ${fmtShape(shapes[i])} must match ${names[0]} ${fmtShape(shapes[0])}`);
  }
}

function expectHyper(what: string, s: Shape): void {
  if (fmtShape(s) !== `[${HYPER.length}]`)
    throw new ShapeError(`${what}: hyper must be [${HYPER.length}] ([lr, gradScale, bc1, bc2]), got ${fmtShape(s)}`);
}

/**
 * WGSL declarations of an elementwise update's bindings, in order: the inputs, then the outputs.
 * In place (LowerContext.inPlace), an input that an output overwrites is declared read_write and
 * that output is not declared; the body writes `store[k]`, the name output k is stored through.
 */
function updateBindings(
  ins: [name: string, what: string][],
  outs: [name: string, what: string, overwrites: number][],
  inPlace: boolean,
): { decls: string; store: string[] } {
  const rw = new Set(inPlace ? outs.map(([, , i]) => i) : []);
  const lines = ins.map(([name, what], i) => [name, rw.has(i) ? 'read_write' : 'read', `input  ${what}`]);
  if (!inPlace) for (const [name, what] of outs) lines.push([name, 'read_write', `output ${what}`]);
  const decls = lines
    .map(
      ([name, access, what], b) =>
        `${`@group(0) @binding(${b}) var<storage, ${access}> ${name}: array<f32>;`.padEnd(66)}// ${what}`,
    )
    .join('\n');
  return { decls, store: outs.map(([name, , i]) => (inPlace ? ins[i][0] : name)) };
}

/** The bindings matching updateBindings: inputs, then the outputs unless in place. */
function updateRefs(inputs: number, outputs: number, inPlace: boolean) {
  const refs = Array.from({ length: inputs }, (_, i) => input(i));
  if (!inPlace) for (let k = 0; k < outputs; k++) refs.push(output(k));
  return refs;
}

/** One invocation per element of an n-element tensor. */
function flatLaunch(n: number, maxPerDim: number) {
  const g = grid(ceilDiv(n, WG), maxPerDim);
  return { g, gridX: g[0] };
}

// ---- sgd_update -------------------------------------------------------------------------------------

export interface SgdAttrs {
  momentum: number;
  nesterov?: boolean;
  weightDecay: number;
}

interface SgdConfig {
  n: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  inPlace: boolean;
  wg: number;
  gridX: number;
}

const sgd: KernelFamily<SgdConfig> = {
  name: 'sgd_update',
  wgsl: (c) => {
    const { decls, store } = updateBindings(
      [
        ['p', `parameter [${c.n}]`],
        ['g', `gradient [${c.n}]`],
        ['buf', `momentum buffer [${c.n}]`],
        ['hyper', '[lr, gradScale, bc1, bc2]'],
      ],
      [
        ['p1', 'parameter', 0],
        ['buf1', 'momentum buffer', 2],
      ],
      c.inPlace,
    );
    return `
${decls}

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.n}u) { return; }
  let p0 = p[t];
  let d = g[t] * hyper[${HYPER.gradScale}] + ${f32Lit(c.weightDecay)} * p0;
  let b = ${f32Lit(c.momentum)} * buf[t] + d;
  ${store[1]}[t] = b;
  ${store[0]}[t] = p0 - hyper[${HYPER.lr}] * ${c.nesterov ? `(d + ${f32Lit(c.momentum)} * b)` : 'b'};
}`;
  },
};

export const sgdUpdateOp: OpDef<SgdAttrs> = {
  op: 'sgd_update',
  arity: [4, 4],
  inPlace: [
    [0, 0],
    [1, 2],
  ],
  infer(_a, [p, g, buf, hyper]) {
    sameShapes('sgd_update', [p, g, buf], ['parameter', 'gradient', 'momentum buffer']);
    expectHyper('sgd_update', hyper);
    return [p, p];
  },
  lower(a, [p], _o, ctx) {
    const n = numel(p);
    const { g, gridX } = flatLaunch(n, ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: SgdConfig = {
      n,
      momentum: a.momentum,
      nesterov: !!a.nesterov,
      weightDecay: a.weightDecay,
      inPlace: !!ctx.inPlace,
      wg: WG,
      gridX,
    };
    const bindings = updateRefs(4, 2, cfg.inPlace);
    return { dispatches: [makeDispatch(sgd, cfg, g, bindings, { flops: 6 * n, bytes: 20 * n })] };
  },
  ref(a, [p, g, buf, hyper]) {
    const lr = hyper.data[HYPER.lr];
    const s = hyper.data[HYPER.gradScale];
    const p1 = new Float32Array(p.data.length);
    const b1 = new Float32Array(p.data.length);
    for (let i = 0; i < p1.length; i++) {
      const d = g.data[i] * s + a.weightDecay * p.data[i];
      const b = a.momentum * buf.data[i] + d;
      b1[i] = b;
      p1[i] = p.data[i] - lr * (a.nesterov ? d + a.momentum * b : b);
    }
    return [
      { shape: [...p.shape], data: p1 },
      { shape: [...p.shape], data: b1 },
    ];
  },
};

// ---- adamw_update -------------------------------------------------------------------------------------

export interface AdamwAttrs {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

interface AdamwConfig extends AdamwAttrs {
  n: number;
  inPlace: boolean;
  wg: number;
  gridX: number;
}

const adamw: KernelFamily<AdamwConfig> = {
  name: 'adamw_update',
  wgsl: (c) => {
    const { decls, store } = updateBindings(
      [
        ['p', `parameter [${c.n}]`],
        ['g', `gradient [${c.n}]`],
        ['m', `first moment [${c.n}]`],
        ['v', `second moment [${c.n}]`],
        ['hyper', '[lr, gradScale, bc1, bc2]'],
      ],
      [
        ['p1', 'parameter', 0],
        ['m1', 'first moment', 2],
        ['v1', 'second moment', 3],
      ],
      c.inPlace,
    );
    return `
${decls}

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.n}u) { return; }
  let lr = hyper[${HYPER.lr}];
  let p0 = p[t];
  let d = g[t] * hyper[${HYPER.gradScale}];
  let mt = ${f32Lit(c.beta1)} * m[t] + ${f32Lit(1 - c.beta1)} * d;
  let vt = ${f32Lit(c.beta2)} * v[t] + ${f32Lit(1 - c.beta2)} * d * d;
  ${store[1]}[t] = mt;
  ${store[2]}[t] = vt;
  let denom = sqrt(vt) / sqrt(hyper[${HYPER.bc2}]) + ${f32Lit(c.eps)};
  ${store[0]}[t] = p0 * (1.0 - lr * ${f32Lit(c.weightDecay)}) - (lr / hyper[${HYPER.bc1}]) * mt / denom;
}`;
  },
};

export const adamwUpdateOp: OpDef<AdamwAttrs> = {
  op: 'adamw_update',
  arity: [5, 5],
  inPlace: [
    [0, 0],
    [1, 2],
    [2, 3],
  ],
  infer(_a, [p, g, m, v, hyper]) {
    sameShapes('adamw_update', [p, g, m, v], ['parameter', 'gradient', 'first moment', 'second moment']);
    expectHyper('adamw_update', hyper);
    return [p, p, p];
  },
  lower(a, [p], _o, ctx) {
    const n = numel(p);
    const { g, gridX } = flatLaunch(n, ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: AdamwConfig = {
      n,
      beta1: a.beta1,
      beta2: a.beta2,
      eps: a.eps,
      weightDecay: a.weightDecay,
      inPlace: !!ctx.inPlace,
      wg: WG,
      gridX,
    };
    const bindings = updateRefs(5, 3, cfg.inPlace);
    return { dispatches: [makeDispatch(adamw, cfg, g, bindings, { flops: 16 * n, bytes: 28 * n })] };
  },
  ref(a, [p, g, m, v, hyper]) {
    const lr = hyper.data[HYPER.lr];
    const s = hyper.data[HYPER.gradScale];
    const bc1 = hyper.data[HYPER.bc1];
    const bc2 = hyper.data[HYPER.bc2];
    const n = p.data.length;
    const [p1, m1, v1] = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
    for (let i = 0; i < n; i++) {
      const d = g.data[i] * s;
      const mt = a.beta1 * m.data[i] + (1 - a.beta1) * d;
      const vt = a.beta2 * v.data[i] + (1 - a.beta2) * d * d;
      m1[i] = mt;
      v1[i] = vt;
      p1[i] = p.data[i] * (1 - lr * a.weightDecay) - ((lr / bc1) * mt) / (Math.sqrt(vt) / Math.sqrt(bc2) + a.eps);
    }
    return [p1, m1, v1].map((data) => ({ shape: [...p.shape], data }));
  },
};

// ---- sum_squares ---------------------------------------------------------------------------------------

interface SumSquaresConfig {
  n: number;
  acc: boolean;
  wg: number;
}

const sumSquares: KernelFamily<SumSquaresConfig> = {
  name: 'sum_squares',
  wgsl: (c) => `
${workgroupReduceWgsl(c.wg)}
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [${c.n}]
${c.acc ? '@group(0) @binding(1) var<storage, read> acc: array<f32>;        // input  [1], the sum so far\n' : ''}@group(0) @binding(${c.acc ? 2 : 1}) var<storage, read_write> y: array<f32>;   // output [1]

${mainWgsl(c.wg)}
  var s = 0.0;
  for (var i = lid; i < ${c.n}u; i += ${c.wg}u) { s += x[i] * x[i]; }
  let total = wg_sum(s, lid);
  if (lid == 0u) { y[0] = total${c.acc ? ' + acc[0]' : ''}; }
}`,
};

export const sumSquaresOp: OpDef<Record<string, never>> = {
  op: 'sum_squares',
  arity: [1, 2],
  infer(_a, [, acc]) {
    if (acc && fmtShape(acc) !== '[1]') throw new ShapeError(`sum_squares: acc must be [1], got ${fmtShape(acc)}`);
    return [[1]];
  },
  lower(_a, ins) {
    const n = numel(ins[0]);
    const acc = ins.length === 2;
    const cfg: SumSquaresConfig = { n, acc, wg: 256 };
    const bindings = acc ? [input(0), input(1), output(0)] : [input(0), output(0)];
    return { dispatches: [makeDispatch(sumSquares, cfg, [1, 1, 1], bindings, { flops: 2 * n, bytes: 4 * n })] };
  },
  ref(_a, [x, acc]) {
    let s = 0;
    for (const v of x.data) s += v * v;
    return [{ shape: [1], data: new Float32Array([s + (acc ? acc.data[0] : 0)]) }];
  },
};

// ---- grad_clip_scale -------------------------------------------------------------------------------------

export interface GradClipAttrs {
  maxNorm: number;
}

const gradClip: KernelFamily<GradClipAttrs> = {
  name: 'grad_clip_scale',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> sumsq: array<f32>;      // input  [1], Σ g² over every gradient (unscaled)
@group(0) @binding(1) var<storage, read> hyper: array<f32>;      // input  [lr, gradScale, bc1, bc2]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // output hyper with gradScale clipped

@compute @workgroup_size(1)
fn main() {
  let s = hyper[${HYPER.gradScale}];
  let norm = sqrt(sumsq[0]) * s;
  let coef = min(1.0, ${f32Lit(c.maxNorm)} / (norm + 1e-6));
  for (var i = 0u; i < ${HYPER.length}u; i++) { y[i] = hyper[i]; }
  y[${HYPER.gradScale}] = s * coef;
}`,
};

export const gradClipScaleOp: OpDef<GradClipAttrs> = {
  op: 'grad_clip_scale',
  arity: [2, 2],
  infer(a, [sumsq, hyper]) {
    if (fmtShape(sumsq) !== '[1]') throw new ShapeError(`grad_clip_scale: sumsq must be [1], got ${fmtShape(sumsq)}`);
    expectHyper('grad_clip_scale', hyper);
    if (!(a.maxNorm > 0)) throw new ShapeError(`grad_clip_scale: maxNorm must be positive, got ${a.maxNorm}`);
    return [hyper];
  },
  lower(a) {
    const cfg: GradClipAttrs = { maxNorm: a.maxNorm };
    return { dispatches: [makeDispatch(gradClip, cfg, [1, 1, 1], [input(0), input(1), output(0)])] };
  },
  ref(a, [sumsq, hyper]) {
    const s = hyper.data[HYPER.gradScale];
    const norm = Math.sqrt(sumsq.data[0]) * s;
    const data = hyper.data.slice();
    data[HYPER.gradScale] = s * Math.min(1, a.maxNorm / (norm + 1e-6));
    return [{ shape: [...hyper.shape], data }];
  },
};

// ---- ema_update ------------------------------------------------------------------------------------------

export interface EmaAttrs {
  momentum: number;
  /** Multiplies the new value first: n/(n − 1) turns a biased batch variance into the unbiased one. */
  scale?: number;
}

interface EmaConfig {
  n: number;
  momentum: number;
  scale: number;
  inPlace: boolean;
  wg: number;
  gridX: number;
}

const ema: KernelFamily<EmaConfig> = {
  name: 'ema_update',
  wgsl: (c) => {
    const { decls, store } = updateBindings(
      [
        ['r', `running statistic [${c.n}]`],
        ['b', `this batch's statistic [${c.n}]`],
      ],
      [['y', 'updated running statistic', 0]],
      c.inPlace,
    );
    return `
${decls}

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.n}u) { return; }
  ${store[0]}[t] = ${f32Lit(1 - c.momentum)} * r[t] + ${f32Lit(c.momentum * c.scale)} * b[t];
}`;
  },
};

export const emaUpdateOp: OpDef<EmaAttrs> = {
  op: 'ema_update',
  arity: [2, 2],
  inPlace: [[0, 0]],
  infer(_a, [r, b]) {
    sameShapes('ema_update', [r, b], ['running statistic', 'batch statistic']);
    return [r];
  },
  lower(a, [r], _o, ctx) {
    const n = numel(r);
    const { g, gridX } = flatLaunch(n, ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: EmaConfig = { n, momentum: a.momentum, scale: a.scale ?? 1, inPlace: !!ctx.inPlace, wg: WG, gridX };
    return {
      dispatches: [makeDispatch(ema, cfg, g, updateRefs(2, 1, cfg.inPlace), { flops: 3 * n, bytes: 12 * n })],
    };
  },
  ref(a, [r, b]) {
    const k = Math.fround(a.momentum * (a.scale ?? 1));
    const data = r.data.map((v, i) => Math.fround(1 - a.momentum) * v + k * b.data[i]);
    return [{ shape: [...r.shape], data } satisfies HostTensor];
  },
};

export const optimOps: OpDef[] = [sgdUpdateOp, adamwUpdateOp, sumSquaresOp, gradClipScaleOp, emaUpdateOp];
