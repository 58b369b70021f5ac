// Backward kernels of the normalisations, and batchnorm in training mode (docs/backward-norm.md
// has the formulas).
//
// batchnorm_train (forward): x [..., C] (channels last), gamma, beta [C] -> y [..., C],
// mean [C], var [C]: the batch mean and the biased batch variance over the R = numel(x) / C
// rows (N·H·W for NHWC, N for [N, C]), and y = (x - mean) / sqrt(var + eps) * gamma + beta,
// then an optional fused activation (autodiff splits it off before differentiating). Two
// dispatches: `stats` (one workgroup of `lanes` per channel, shifted two-pass sums as
// layernorm.ts, reduced by a tree in workgroup memory) writes mean and var, `apply` (one
// invocation per element) normalises. The running-stat update (unbiased variance) is the
// trainer's: batchNormTrainCount() gives R.
//
// One family, `norm_grad`, differentiates every normalisation here, because each is the same
// problem on a different view of its tensor. x is viewed as [N, HW, C] with C channels in G
// groups of Cg = C / G; one "set" is (n, group), its M = HW·Cg elements are normalised
// together, gamma/beta (if any) are per channel:
//   group_norm          x [N,H,W,C]:  N, HW = H·W, C, G = groups
//   layernorm           x [..., D]:   N = rows, HW = 1, C = D, G = 1
//   batchnorm(_train)   x [..., C]:   N = 1, HW = R, C, G = C (a set is a channel)
//   weight_standardize  w [KH,KW,Cin,Cout]: N = 1, HW = KH·KW·Cin, C = Cout, G = Cout, no gamma
// Statistics are recomputed from x (shifted two-pass, as the forward kernels), or read from
// mean/var inputs (batchnorm: the batch statistics batchnorm_train wrote, or the frozen
// running statistics). With x̂ = (x - mean)·rstd and g = dy·gamma:
//   train:  dx = rstd·(g - mean_set(g) - x̂·mean_set(g·x̂))    (statistics depend on x)
//   frozen: dx = rstd·g                                        (statistics are constants)
//   dgamma[c] = Σ dy·x̂, dbeta[c] = Σ dy over every element of channel c.
// Dispatches: `sets` (one workgroup of `lanes` per set) computes the two set sums and writes
// dx; when N = 1 and Cg = 1 (batchnorm) a set is a channel, so it writes dgamma and dbeta too.
// Otherwise it leaves (shift, mu, rstd) per set in a temp and `params` (one invocation per
// channel, walking down the channel's N·HW elements, so neighbours read neighbouring
// addresses) sums dgamma and dbeta.
//
// Variant (ctx.prefer.norm_grad, for batchnorm_train's statistics too): 'wg=<lanes>' per set,
// default 16. Even 256 lanes per set over a long set (batchnorm at 112×112, batch 32: 64 sets of
// 400k elements) leave a GPU mostly idle, so batchnorm_train's statistics also have a split form,
// 'split=<blocks>': `partial` (one workgroup per (channel, block of rows): block mean and squared
// deviations) then `combine` (one invocation per channel, Chan et al.'s pairwise update; the
// formulas in docs/backward-norm.md). The backward dispatches have no split form yet and read
// only 'wg'. Loads are scalar.

import {
  type Activation,
  type BindingRef,
  type Dispatch,
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type OpDef,
  type Shape,
  activationRef,
  activationWgsl,
  ceilDiv,
  expectRank,
  expectVector,
  f32Lit,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
  temp,
} from '../kernel.js';
import { defineVariant } from '../variant.js';
import { flatMain, floorPow2, mainWgsl, wgsl, workgroupIndex, workgroupReduceWgsl } from '../wgsl.js';

/**
 * ctx.prefer.norm_grad (also read by batchnorm_train's statistics): lanes per set in the
 * reductions, e.g. 'wg=64'. Default 16, measured best for group_norm on SwiftShader
 * (groupnorm.ts); GPUs with few long sets (batchnorm at batch 32) want more.
 */
export interface NormGradVariant {
  wg?: number;
  /**
   * batchnorm_train's statistics only: split each channel's R rows into this many blocks (at
   * most R), one workgroup each, then combine the blocks' means and squared deviations (Chan et
   * al.'s pairwise update). Unset: one workgroup per channel.
   */
  split?: number;
}

export const normGradVariant = defineVariant<NormGradVariant>('norm_grad', [
  { kind: 'int', key: 'wg', min: 1 },
  { kind: 'int', key: 'split', min: 1 },
]);

const normTuneSpace = () => ({ family: 'norm_grad', candidates: ['wg=1', 'wg=64', 'wg=256'] });

/** Rows from which batchnorm_train's tune space also offers split statistics. */
const SPLIT_FROM_ROWS = 4096;

/** A power of two ≤ the preference (default 16) and the device's limit; the default is also capped by the set size. */
function lanesFor(M: number, ctx: LowerContext): number {
  const p = normGradVariant.of(ctx.prefer)?.wg;
  return floorPow2(Math.min(p ?? 16, ctx.limits.maxComputeInvocationsPerWorkgroup, p !== undefined ? Infinity : M));
}

// ---- batchnorm_train (forward) -----------------------------------------------------------------

export interface BatchNormTrainAttrs {
  eps?: number;
  act?: Activation;
}

interface BatchNormTrainConfig {
  R: number;
  C: number;
  eps: number;
  act: Activation;
  /** stats: one workgroup per channel; partial + combine: the split statistics (blocks of L rows). */
  stage: 'stats' | 'partial' | 'combine' | 'apply';
  /** partial, combine: blocks per channel and rows per block (the last block may be shorter). */
  blocks?: number;
  rows?: number;
  wg: number;
  gridX: number;
}

const batchnormTrain: KernelFamily<BatchNormTrainConfig> = {
  name: 'batchnorm_train',
  wgsl(c) {
    const { R, C } = c;
    if (c.stage === 'partial') {
      // Workgroup (ch, b) over rows [b·L, min(R, (b + 1)·L)): block mean and Σ (x − block mean)²,
      // shifted by the block's first value as the one-pass kernel is.
      const B = c.blocks!;
      const L = c.rows!;
      const loop = (body: string) => `for (var r = r0 + lid; r < r1; r += ${c.wg}u) {
    let i = r * ${C}u + ch;
    ${body}
  }`;
      return `
${workgroupReduceWgsl(c.wg)}
@group(0) @binding(0) var<storage, read> x: array<f32>;            // input  [${R}, ${C}] (leading dims flattened)
@group(0) @binding(1) var<storage, read_write> part: array<f32>;   // temp   [${C}, ${B}, 2] block mean, Σ d²

${mainWgsl(c.wg)}
  let w = ${workgroupIndex(c.gridX)};
  if (w >= ${C * B}u) { return; }  // uniform: the whole workgroup leaves
  let ch = w / ${B}u;
  let b = w % ${B}u;
  let r0 = b * ${L}u;
  let r1 = min(${R}u, r0 + ${L}u);
  let n = f32(r1 - r0);
  let shift = x[r0 * ${C}u + ch];
  var s1 = 0.0;
  ${loop('s1 += x[i] - shift;')}
  let mu = wg_sum(s1, lid) / n;
  var s2 = 0.0;
  ${loop('let d = (x[i] - shift) - mu;\n    s2 += d * d;')}
  let m2 = wg_sum(s2, lid);
  if (lid == 0u) {
    part[2u * w] = shift + mu;
    part[2u * w + 1u] = m2;
  }
}`;
    }
    if (c.stage === 'combine') {
      // One invocation per channel: mean = m0 + Σ n_b (m_b − m0) / R, M2 = Σ M2_b + n_b (m_b − mean)².
      const B = c.blocks!;
      const L = c.rows!;
      return `
@group(0) @binding(0) var<storage, read> part: array<f32>;         // temp   [${C}, ${B}, 2] block mean, Σ d²
@group(0) @binding(1) var<storage, read_write> mean: array<f32>;   // output [${C}] batch mean
@group(0) @binding(2) var<storage, read_write> var_: array<f32>;   // output [${C}] biased batch variance

${flatMain(c.wg, c.gridX)}
  if (t >= ${C}u) { return; }
  let base = t * ${2 * B}u;
  let m0 = part[base];
  var s = 0.0;
  for (var b = 0u; b < ${B}u; b++) {
    let n = f32(min(${R}u, (b + 1u) * ${L}u) - b * ${L}u);
    s += n * (part[base + 2u * b] - m0);
  }
  let mu = m0 + s / ${f32Lit(R)};
  var m2 = 0.0;
  for (var b = 0u; b < ${B}u; b++) {
    let n = f32(min(${R}u, (b + 1u) * ${L}u) - b * ${L}u);
    let d = part[base + 2u * b] - mu;
    m2 += part[base + 2u * b + 1u] + n * d * d;
  }
  mean[t] = mu;
  var_[t] = m2 / ${f32Lit(R)};
}`;
    }
    if (c.stage === 'stats') {
      const loop = (body: string) => `for (var r = lid; r < ${R}u; r += ${c.wg}u) {
    let i = r * ${C}u + ch;
    ${body}
  }`;
      return `
${workgroupReduceWgsl(c.wg)}
@group(0) @binding(0) var<storage, read> x: array<f32>;            // input  [${R}, ${C}] (leading dims flattened)
@group(0) @binding(1) var<storage, read_write> mean: array<f32>;   // output [${C}] batch mean
@group(0) @binding(2) var<storage, read_write> var_: array<f32>;   // output [${C}] biased batch variance

${mainWgsl(c.wg)}
  let ch = ${workgroupIndex(c.gridX)};
  if (ch >= ${C}u) { return; }  // uniform: the whole workgroup leaves
  let shift = x[ch];
  var s1 = 0.0;
  ${loop('s1 += x[i] - shift;')}
  let mu = wg_sum(s1, lid) / ${f32Lit(R)};
  var s2 = 0.0;
  ${loop('let d = (x[i] - shift) - mu;\n    s2 += d * d;')}
  let v = wg_sum(s2, lid) / ${f32Lit(R)};
  if (lid == 0u) {
    mean[ch] = shift + mu;
    var_[ch] = v;
  }
}`;
    }
    return `
${activationWgsl(c.act)}
@group(0) @binding(0) var<storage, read> x: array<f32>;            // input  [${R}, ${C}]
@group(0) @binding(1) var<storage, read> gamma: array<f32>;        // input  [${C}]
@group(0) @binding(2) var<storage, read> beta: array<f32>;         // input  [${C}]
@group(0) @binding(3) var<storage, read_write> mean: array<f32>;   // output [${C}] (written by the stats stage)
@group(0) @binding(4) var<storage, read_write> var_: array<f32>;   // output [${C}] (written by the stats stage)
@group(0) @binding(5) var<storage, read_write> y: array<f32>;      // output [${R}, ${C}]

${flatMain(c.wg, c.gridX)}
  if (t >= ${R * C}u) { return; }
  let ch = t % ${C}u;
  y[t] = act((x[t] - mean[ch]) * (gamma[ch] / sqrt(var_[ch] + ${f32Lit(c.eps)})) + beta[ch]);
}`;
  },
};

/** Rows a batchnorm_train statistic is taken over (N·H·W): the unbiased variance is var·R/(R - 1). */
export function batchNormTrainCount(x: Shape): number {
  return numel(x) / x[x.length - 1];
}

export const batchNormTrainOp: OpDef<BatchNormTrainAttrs> = {
  op: 'batchnorm_train',
  arity: [3, 3],
  tuneSpace(_a, [x]) {
    const space = normTuneSpace();
    if (batchNormTrainCount(x) >= SPLIT_FROM_ROWS) space.candidates.push('wg=64,split=16', 'wg=256,split=64');
    return space;
  },
  infer(_a, [x, gamma, beta]) {
    if (x.length < 2) throw new ShapeError(`batchnorm_train input must be [..., C] with rank >= 2, got ${fmtShape(x)}`);
    const C = x[x.length - 1];
    expectVector('gamma', gamma, C, x);
    expectVector('beta', beta, C, x);
    return [x, [C], [C]];
  },
  lower(a, [x], _o, ctx) {
    const C = x[x.length - 1];
    const R = numel(x) / C;
    const eps = a.eps ?? 1e-5;
    const maxDim = ctx.limits.maxComputeWorkgroupsPerDimension;
    const lanes = lanesFor(R, ctx);
    const gs = grid(C, maxDim);
    const ga = grid(ceilDiv(R * C, 64), maxDim);
    const base = { R, C, eps, act: a.act ?? 'none' };
    const split = normGradVariant.of(ctx.prefer)?.split;
    let stats: Dispatch[];
    let temps: number[] | undefined;
    if (split === undefined) {
      stats = [
        makeDispatch(
          batchnormTrain,
          { ...base, stage: 'stats', act: 'none', wg: lanes, gridX: gs[0] },
          gs,
          [input(0), output(1), output(2)],
          { flops: 5 * R * C, bytes: 4 * (R * C + 2 * C) },
        ),
      ];
    } else {
      // Blocks of L rows, every block non-empty: B = ⌈R / L⌉ ≤ split.
      const rows = ceilDiv(R, Math.min(split, R));
      const blocks = ceilDiv(R, rows);
      const gp = grid(C * blocks, maxDim);
      const gc = grid(ceilDiv(C, 64), maxDim);
      const lanesSplit = lanesFor(rows, ctx);
      temps = [2 * C * blocks];
      stats = [
        makeDispatch(
          batchnormTrain,
          { ...base, stage: 'partial', act: 'none', blocks, rows, wg: lanesSplit, gridX: gp[0] },
          gp,
          [input(0), temp(0)],
          { flops: 5 * R * C, bytes: 4 * (R * C + 2 * C * blocks) },
        ),
        makeDispatch(
          batchnormTrain,
          { ...base, stage: 'combine', act: 'none', blocks, rows, wg: 64, gridX: gc[0] },
          gc,
          [temp(0), output(1), output(2)],
          { flops: 6 * C * blocks, bytes: 4 * (2 * C * blocks + 2 * C) },
        ),
      ];
    }
    return {
      ...(temps ? { temps } : {}),
      dispatches: [
        ...stats,
        makeDispatch(
          batchnormTrain,
          { ...base, stage: 'apply', wg: 64, gridX: ga[0] },
          ga,
          [input(0), input(1), input(2), output(1), output(2), output(0)],
          { flops: 2 * R * C, bytes: 4 * (2 * R * C + 4 * C) },
        ),
      ],
    };
  },
  ref(a, [x, gamma, beta]) {
    const C = x.shape[x.shape.length - 1];
    const R = x.data.length / C;
    const eps = a.eps ?? 1e-5;
    const f = activationRef(a.act ?? 'none');
    const y = new Float32Array(x.data.length);
    const mean = new Float32Array(C);
    const variance = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let r = 0; r < R; r++) s += x.data[r * C + c];
      const m = s / R;
      let v = 0;
      for (let r = 0; r < R; r++) v += (x.data[r * C + c] - m) ** 2;
      v /= R;
      const k = gamma.data[c] / Math.sqrt(v + eps);
      for (let r = 0; r < R; r++) y[r * C + c] = f((x.data[r * C + c] - m) * k + beta.data[c]);
      mean[c] = m;
      variance[c] = v;
    }
    return [
      { shape: [...x.shape], data: y },
      { shape: [C], data: mean },
      { shape: [C], data: variance },
    ];
  },
};

// ---- norm_grad: the shared backward family ------------------------------------------------------

/** The [N, HW, C] view with G groups that a normalisation's backward works on (see the header). */
export interface NormView {
  N: number;
  HW: number;
  C: number;
  G: number;
}

interface NormGradConfig extends NormView {
  eps: number;
  /** 'given': statistics from mean/var inputs (N = 1); 'recompute': from x. */
  stats: 'given' | 'recompute';
  /** 'frozen': statistics are constants (dx = rstd·g); 'train': they depend on x. */
  mode: 'train' | 'frozen';
  /** gamma input, dgamma and dbeta outputs. */
  affine: boolean;
  stage: 'sets' | 'params';
  wg: number;
  gridX: number;
}

/** N = 1 and Cg = 1: a set is one channel, so the sets stage also writes dgamma and dbeta. */
const paramsInSets = (c: NormView): boolean => c.N === 1 && c.C === c.G;

const normGrad: KernelFamily<NormGradConfig> = {
  name: 'norm_grad',
  wgsl(c) {
    const { N, HW, C, G } = c;
    const Cg = C / G,
      M = HW * Cg;
    const fusedParams = c.affine && paramsInSets(c);
    const decls: string[] = [];
    let b = 0;
    const decl = (name: string, rw: boolean, what: string) =>
      decls.push(
        `@group(0) @binding(${b++}) var<storage, ${rw ? 'read_write' : 'read'}> ${name}: array<${name === 'st' ? 'vec4<f32>' : 'f32'}>;  // ${what}`,
      );
    decl('x', false, `input  [${N}, ${HW}, ${C}]`);
    if (c.stage === 'params') {
      decl('dy', false, `input  [${N}, ${HW}, ${C}] dL/dy`);
      decl('st', true, `temp   [${N * G}] (shift, mu, rstd, 0) per set, from the sets stage`);
      decl('dgamma', true, `output [${C}]`);
      decl('dbeta', true, `output [${C}]`);
      return `
${decls.join('\n')}

${flatMain(c.wg, c.gridX)}
  if (t >= ${C}u) { return; }
  let g = t / ${Cg}u;
  var sg = 0.0;
  var sb = 0.0;
  for (var n = 0u; n < ${N}u; n++) {
    let s = st[n * ${G}u + g];
    for (var p = 0u; p < ${HW}u; p++) {
      let i = (n * ${HW}u + p) * ${C}u + t;
      let d = dy[i];
      sb += d;
      sg += d * ((x[i] - s.x) - s.y) * s.z;
    }
  }
  dgamma[t] = sg;
  dbeta[t] = sb;
}`;
    }
    if (c.affine) decl('gamma', false, `input  [${C}]`);
    if (c.stats === 'given') {
      decl('mean', false, `input  [${G}] statistics of each set`);
      decl('var_', false, `input  [${G}]`);
    }
    decl('dy', false, `input  [${N}, ${HW}, ${C}] dL/dy`);
    decl('dx', true, `output [${N}, ${HW}, ${C}]`);
    if (fusedParams) {
      decl('dgamma', true, `output [${C}]`);
      decl('dbeta', true, `output [${C}]`);
    }
    const writeStats = c.affine && !fusedParams;
    if (writeStats) decl('st', true, `temp   [${N * G}] (shift, mu, rstd, 0) per set, for the params stage`);
    const loop = (body: string) => `for (var k = lid; k < ${M}u; k += ${c.wg}u) {
    let j = k % ${Cg}u;
    let i = base + (k / ${Cg}u) * ${C}u + j;
    ${body}
  }`;
    const gam = c.affine ? `gamma[g * ${Cg}u + j]` : '1.0';
    // With the params fused (Cg = 1), the sums are of dy and gamma is applied after.
    const gd = fusedParams ? 'dy[i]' : `dy[i] * ${gam}`;
    const stats =
      c.stats === 'given'
        ? `let shift = mean[g];
  let mu = 0.0;
  let rstd = 1.0 / sqrt(var_[g] + ${f32Lit(c.eps)});`
        : `let shift = x[base];
  var s1 = 0.0;
  ${loop('s1 += x[i] - shift;')}
  let mu = wg_sum(s1, lid) / ${f32Lit(M)};
  var s2 = 0.0;
  ${loop('let d = (x[i] - shift) - mu;\n    s2 += d * d;')}
  let rstd = 1.0 / sqrt(wg_sum(s2, lid) / ${f32Lit(M)} + ${f32Lit(c.eps)});`;
    const dx =
      c.mode === 'frozen'
        ? `dx[i] = dy[i] * ${gam} * rstd;`
        : fusedParams
          ? `dx[i] = rstd * (gamma[g] * dy[i] - ma - xh * mb);`
          : `dx[i] = rstd * (${gd} - ma - xh * mb);`;
    return wgsl`
${workgroupReduceWgsl(c.wg)}
${decls.join('\n')}

${mainWgsl(c.wg)}
  let s = ${workgroupIndex(c.gridX)};
  if (s >= ${N * G}u) { return; }  // uniform: the whole workgroup leaves
  let g = s % ${G}u;
  let base = (s / ${G}u) * ${HW * C}u + g * ${Cg}u;
  ${stats}
  var sa = 0.0;
  var sb = 0.0;
  ${loop(`let xh = ((x[i] - shift) - mu) * rstd;\n    let gd = ${gd};\n    sa += gd;\n    sb += gd * xh;`)}
  let ta = wg_sum(sa, lid);
  let tb = wg_sum(sb, lid);
#if ${fusedParams}
  if (lid == 0u) {
    dbeta[g] = ta;
    dgamma[g] = tb;
  }
#elif ${writeStats}
  if (lid == 0u) { st[s] = vec4<f32>(shift, mu, rstd, 0.0); }
#endif
  let ma = ${fusedParams ? 'gamma[g] * ' : ''}ta / ${f32Lit(M)};
  let mb = ${fusedParams ? 'gamma[g] * ' : ''}tb / ${f32Lit(M)};
  ${loop(`let xh = ((x[i] - shift) - mu) * rstd;\n    ${dx}`)}
}`;
  },
};

/**
 * The dispatches of one normalisation backward. Bindings name the node's inputs: `x`, `gamma`
 * (affine), `mean`/`var` (given statistics) and `dy`; outputs are dx, then dgamma, dbeta (affine).
 */
function lowerNormGrad(
  v: NormView,
  o: {
    eps: number;
    stats: 'given' | 'recompute';
    mode: 'train' | 'frozen';
    inputs: { x: number; gamma?: number; mean?: number; var?: number; dy: number };
  },
  ctx: LowerContext,
) {
  const limits = ctx.limits;
  const { N, HW, C, G } = v;
  const affine = o.inputs.gamma !== undefined;
  const M = (HW * C) / G;
  const elems = N * HW * C;
  const lanes = lanesFor(M, ctx);
  const gs = grid(N * G, limits.maxComputeWorkgroupsPerDimension);
  const base = { ...v, eps: o.eps, stats: o.stats, mode: o.mode, affine };
  const fused = affine && paramsInSets(v);
  const ins = o.inputs;
  const setBindings: BindingRef[] = [
    input(ins.x),
    ...(affine ? [input(ins.gamma!)] : []),
    ...(o.stats === 'given' ? [input(ins.mean!), input(ins.var!)] : []),
    input(ins.dy),
    output(0),
    ...(fused ? [output(1), output(2)] : []),
    ...(affine && !fused ? [temp(0)] : []),
  ];
  const dispatches = [
    makeDispatch(normGrad, { ...base, stage: 'sets', wg: lanes, gridX: gs[0] } as NormGradConfig, gs, setBindings, {
      flops: 14 * elems,
      bytes: 4 * 3 * elems,
    }),
  ];
  if (!affine || fused) return { dispatches };
  const gp = grid(ceilDiv(C, 64), limits.maxComputeWorkgroupsPerDimension);
  dispatches.push(
    makeDispatch(
      normGrad,
      { ...base, stats: 'recompute', mode: 'train', stage: 'params', wg: 64, gridX: gp[0] } as NormGradConfig,
      gp,
      [input(ins.x), input(ins.dy), temp(0), output(1), output(2)],
      { flops: 5 * elems, bytes: 4 * 2 * elems },
    ),
  );
  return { dispatches, temps: [4 * N * G] };
}

/**
 * Plain-TS backward of a normalisation on its [N, HW, C] view, in double precision: dx and, with
 * gamma, dgamma and dbeta. `stats` gives each set's mean and biased variance (batchnorm), else
 * they are recomputed from x; `frozen` treats them as constants.
 */
export function normGradRef(
  v: NormView,
  x: Float32Array,
  gamma: Float32Array | undefined,
  dy: Float32Array,
  eps: number,
  stats?: { mean: Float32Array; var: Float32Array; frozen: boolean },
): { dx: Float32Array; dgamma?: Float32Array; dbeta?: Float32Array } {
  const { N, HW, C, G } = v;
  const Cg = C / G,
    M = HW * Cg;
  const dx = new Float32Array(x.length);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  const idx = (n: number, g: number, k: number) => (n * HW + Math.floor(k / Cg)) * C + g * Cg + (k % Cg);
  const xh = new Float64Array(M);
  const gd = new Float64Array(M);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      let mean: number, variance: number;
      if (stats) {
        mean = stats.mean[g];
        variance = stats.var[g];
      } else {
        let s = 0;
        for (let k = 0; k < M; k++) s += x[idx(n, g, k)];
        mean = s / M;
        let q = 0;
        for (let k = 0; k < M; k++) q += (x[idx(n, g, k)] - mean) ** 2;
        variance = q / M;
      }
      const rstd = 1 / Math.sqrt(variance + eps);
      let sa = 0,
        sb = 0;
      for (let k = 0; k < M; k++) {
        const i = idx(n, g, k),
          c = g * Cg + (k % Cg);
        xh[k] = (x[i] - mean) * rstd;
        gd[k] = dy[i] * (gamma ? gamma[c] : 1);
        sa += gd[k];
        sb += gd[k] * xh[k];
        dgamma[c] += dy[i] * xh[k];
        dbeta[c] += dy[i];
      }
      for (let k = 0; k < M; k++) {
        const i = idx(n, g, k);
        dx[i] = stats?.frozen ? rstd * gd[k] : rstd * (gd[k] - sa / M - (xh[k] * sb) / M);
      }
    }
  }
  return gamma ? { dx, dgamma: Float32Array.from(dgamma), dbeta: Float32Array.from(dbeta) } : { dx };
}

const grads = (x: Shape, C: number): Shape[] => [x, [C], [C]];

function checkDy(op: string, x: Shape, dy: Shape): void {
  if (fmtShape(x) !== fmtShape(dy))
    throw new ShapeError(`${op}: dy ${fmtShape(dy)} must have x's shape ${fmtShape(x)}`);
}

const tensors = (x: Shape, r: { dx: Float32Array; dgamma?: Float32Array; dbeta?: Float32Array }): HostTensor[] => [
  { shape: [...x], data: r.dx },
  ...(r.dgamma ? [{ shape: [r.dgamma.length], data: r.dgamma }] : []),
  ...(r.dbeta ? [{ shape: [r.dbeta.length], data: r.dbeta }] : []),
];

// ---- batchnorm backward (frozen and training) ---------------------------------------------------

export interface BatchNormGradAttrs {
  eps?: number;
}

/** inputs [x, gamma, mean, var, dy] -> [dx, dgamma, dbeta]; `frozen` picks the running-stats VJP. */
function makeBatchNormGradOp(frozen: boolean): OpDef<BatchNormGradAttrs> {
  const op = frozen ? 'batchnorm_grad' : 'batchnorm_train_grad';
  const view = (x: Shape): NormView => {
    const C = x[x.length - 1];
    return { N: 1, HW: numel(x) / C, C, G: C };
  };
  return {
    op,
    arity: [5, 5],
    tuneSpace: normTuneSpace,
    infer(_a, [x, gamma, mean, variance, dy]) {
      if (x.length < 1) throw new ShapeError(`${op} input must have rank >= 1, got ${fmtShape(x)}`);
      const C = x[x.length - 1];
      expectVector('gamma', gamma, C, x);
      expectVector('mean', mean, C, x);
      expectVector('var', variance, C, x);
      checkDy(op, x, dy);
      return grads(x, C);
    },
    lower(a, [x], _o, ctx) {
      return lowerNormGrad(
        view(x),
        {
          eps: a.eps ?? 1e-5,
          stats: 'given',
          mode: frozen ? 'frozen' : 'train',
          inputs: { x: 0, gamma: 1, mean: 2, var: 3, dy: 4 },
        },
        ctx,
      );
    },
    ref(a, [x, gamma, mean, variance, dy]) {
      const r = normGradRef(view(x.shape), x.data, gamma.data, dy.data, a.eps ?? 1e-5, {
        mean: mean.data,
        var: variance.data,
        frozen,
      });
      return tensors(x.shape, r);
    },
  };
}

export const batchNormGradOp = makeBatchNormGradOp(true);
export const batchNormTrainGradOp = makeBatchNormGradOp(false);

// ---- group_norm, layernorm, weight_standardize backward ------------------------------------------

export interface GroupNormGradAttrs {
  groups: number;
  eps?: number;
}

/** inputs [x, gamma, dy] -> [dx, dgamma, dbeta]; x NHWC, statistics per (sample, group). */
export const groupNormGradOp: OpDef<GroupNormGradAttrs> = {
  op: 'group_norm_grad',
  arity: [3, 3],
  tuneSpace: normTuneSpace,
  infer(a, [x, gamma, dy]) {
    expectRank('group_norm_grad input', x, 4);
    const C = x[3];
    if (!Number.isInteger(a.groups) || a.groups < 1 || C % a.groups !== 0) {
      throw new ShapeError(
        `group_norm_grad: groups=${a.groups} must be a positive divisor of C=${C} (x ${fmtShape(x)})`,
      );
    }
    expectVector('gamma', gamma, C, x);
    checkDy('group_norm_grad', x, dy);
    return grads(x, C);
  },
  lower(a, [x], _o, ctx) {
    const [N, H, W, C] = x;
    return lowerNormGrad(
      { N, HW: H * W, C, G: a.groups },
      { eps: a.eps ?? 1e-5, stats: 'recompute', mode: 'train', inputs: { x: 0, gamma: 1, dy: 2 } },
      ctx,
    );
  },
  ref(a, [x, gamma, dy]) {
    const [N, H, W, C] = x.shape;
    return tensors(x.shape, normGradRef({ N, HW: H * W, C, G: a.groups }, x.data, gamma.data, dy.data, a.eps ?? 1e-5));
  },
};

export interface LayerNormGradAttrs {
  eps?: number;
}

const lnView = (x: Shape): NormView => {
  const D = x[x.length - 1];
  return { N: numel(x) / D, HW: 1, C: D, G: 1 };
};

/** inputs [x, gamma, dy] -> [dx, dgamma, dbeta]; statistics per row of the last axis. */
export const layerNormGradOp: OpDef<LayerNormGradAttrs> = {
  op: 'layernorm_grad',
  arity: [3, 3],
  tuneSpace: normTuneSpace,
  infer(_a, [x, gamma, dy]) {
    if (x.length < 1) throw new ShapeError(`layernorm_grad input must have rank >= 1, got ${fmtShape(x)}`);
    const D = x[x.length - 1];
    expectVector('gamma', gamma, D, x);
    checkDy('layernorm_grad', x, dy);
    return grads(x, D);
  },
  lower(a, [x], _o, ctx) {
    return lowerNormGrad(
      lnView(x),
      { eps: a.eps ?? 1e-6, stats: 'recompute', mode: 'train', inputs: { x: 0, gamma: 1, dy: 2 } },
      ctx,
    );
  },
  ref(a, [x, gamma, dy]) {
    return tensors(x.shape, normGradRef(lnView(x.shape), x.data, gamma.data, dy.data, a.eps ?? 1e-6));
  },
};

export interface WeightStandardizeGradAttrs {
  eps?: number;
}

const wsView = (w: Shape): NormView => {
  const Cout = w[3];
  return { N: 1, HW: numel(w) / Cout, C: Cout, G: Cout };
};

/** inputs [w, dŵ] -> [dw]; w HWIO, statistics per output channel over KH·KW·Cin. */
export const weightStandardizeGradOp: OpDef<WeightStandardizeGradAttrs> = {
  op: 'weight_standardize_grad',
  arity: [2, 2],
  tuneSpace: normTuneSpace,
  infer(_a, [w, dy]) {
    expectRank('weight_standardize_grad input (HWIO conv weight)', w, 4);
    checkDy('weight_standardize_grad', w, dy);
    return [w];
  },
  lower(a, [w], _o, ctx) {
    return lowerNormGrad(
      wsView(w),
      { eps: a.eps ?? 1e-8, stats: 'recompute', mode: 'train', inputs: { x: 0, dy: 1 } },
      ctx,
    );
  },
  ref(a, [w, dy]) {
    return tensors(w.shape, normGradRef(wsView(w.shape), w.data, undefined, dy.data, a.eps ?? 1e-8));
  },
};

export const normGradOps: OpDef[] = [
  batchNormTrainOp,
  batchNormGradOp,
  batchNormTrainGradOp,
  groupNormGradOp,
  layerNormGradOp,
  weightStandardizeGradOp,
];
