// GroupNorm (NHWC) and weight standardisation: the two normalisations of BiT (ResNet-v2).
//
// group_norm: x [N,H,W,C], gamma [C], beta [C] -> y [N,H,W,C]. Channels split into G groups of
// Cg = C/G; statistics per (n, group) over its M = H*W*Cg elements (biased variance), then
// y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c], then an optional fused activation
// (BiT's pre-activation GN is followed by ReLU).
//
// Numerics as in layernorm.ts: two passes shifted by the group's first element K; pass 1 gives
// mu = mean - K from Σ(x - K), pass 2 gives Σ((x - K) - mu)², and the output is computed from
// (x - K) - mu, so a large common offset costs no accuracy.
//
// Mapping: the statistics of one (n, group) are computed by one workgroup of `wg` lanes (a
// power of two) that stride over the group's M elements (flat index k -> pixel k / Cg, channel
// k % Cg; vec4 loads when Cg % 4 == 0) and meet in a tree reduction; wg = 1 means no
// workgroup memory and no barriers (SwiftShader). Config `mode`, from
// ctx.prefer.group_norm, a GroupNormVariant ('fused' | 'split', optionally ',wg=<lanes>'):
//   fused  one dispatch: the same workgroup then writes its group's outputs.
//   split  two dispatches: the stats kernel writes (K, mu, rstd) per (n, group) to a temp
//          buffer, then an elementwise kernel (one invocation per 4 outputs, vec4 when C % 4
//          == 0) normalises everything in parallel. Meant for GPUs where N*G workgroups are
//          too few to fill the device (batch 1, 32 groups).
// On SwiftShader (2 cores) fused with 4 to 16 lanes measured fastest (1x56x56x256, 32 groups:
// ~20 ms, about 2x a plain copy of the tensor); 64+ lanes or 1 lane were 2-10x slower.
//
// weight_standardize: w [KH,KW,Cin,Cout] (HWIO) -> w' = (w - mean) / sqrt(var + eps) with
// mean and biased var over (KH,KW,Cin) for each output channel (timm StdConv2d). Viewed as a
// [K, Cout] matrix each column is one channel: one invocation per column (or per 4 adjacent
// columns as a vec4 when Cout % 4 == 0) walks down it, so neighbours read neighbouring
// addresses. Its input is a graph constant, so this runs once at compile time.

import {
  type Activation,
  type HostTensor,
  type KernelFamily,
  type OpDef,
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
} from './kernel.js';
import {
  actTWgsl,
  flatMain,
  floorPow2,
  foldWgsl,
  mainWgsl,
  vecType,
  wgsl,
  workgroupIndex,
  workgroupReduceWgsl,
} from './wgsl.js';
import { defineVariant } from './variant.js';

// ---- group_norm --------------------------------------------------------------------------------

export interface GroupNormAttrs {
  groups: number;
  eps?: number;
  act?: Activation;
}

export type GroupNormMode = 'fused' | 'split';

/** ctx.prefer.group_norm: the mapping and the lanes per group; unset fields are the heuristic's. */
export interface GroupNormVariant {
  mode?: GroupNormMode;
  wg?: number;
}

export const groupNormVariant = defineVariant<GroupNormVariant>('group_norm', [
  { kind: 'enum', key: 'mode', values: ['fused', 'split'], bare: true },
  { kind: 'int', key: 'wg', min: 1 },
]);

interface GroupStatsConfig {
  N: number;
  HW: number;
  C: number;
  G: number;
  eps: number;
  act: Activation;
  /** 'fused' writes y; 'stats' writes (K, mu, rstd, 0) per (n, group) for group_norm_apply. */
  out: 'y' | 'stats';
  /** Reduction width: lanes per (n, group). */
  wg: number;
  /** Cg % 4 == 0: a vec4 never straddles two groups. */
  vec4: boolean;
  gridX: number;
}

const groupNormStats: KernelFamily<GroupStatsConfig> = {
  name: 'group_norm',
  wgsl(c) {
    const T = vecType(c.vec4);
    const v = c.vec4 ? 4 : 1;
    const CV = c.C / v,
      CgV = c.C / c.G / v; // channels and group width in loads
    const M = c.HW * CgV; // loads per group
    const fused = c.out === 'y';
    const loop = (body: string) => `for (var k = lid; k < ${M}u; k += ${c.wg}u) {
    let j = k % ${CgV}u;
    let i = base + (k / ${CgV}u) * ${CV}u + j;
    ${body}
  }`;
    return wgsl`
${activationWgsl(c.act)}
${actTWgsl(c.vec4)}
${foldWgsl(c.vec4)}
${workgroupReduceWgsl(c.wg)}
@group(0) @binding(0) var<storage, read> x: array<${T}>;          // input  [${c.N}, ${c.HW}, ${c.C}] (H*W flattened)
#if ${fused}
@group(0) @binding(1) var<storage, read> gamma: array<${T}>;      // input  [${c.C}]
@group(0) @binding(2) var<storage, read> beta: array<${T}>;       // input  [${c.C}]
@group(0) @binding(3) var<storage, read_write> y: array<${T}>;    // output [${c.N}, ${c.HW}, ${c.C}]
#else
@group(0) @binding(1) var<storage, read_write> st: array<vec4<f32>>;  // temp   [${c.N}*${c.G}] (K, mu, rstd, 0)
#endif

${mainWgsl(c.wg)}
  let ng = ${workgroupIndex(c.gridX)};
  if (ng >= ${c.N * c.G}u) { return; }  // uniform: the whole workgroup leaves
  let g = ng % ${c.G}u;
  let base = (ng / ${c.G}u) * ${c.HW * CV}u + g * ${CgV}u;
  let shift = x[base]${c.vec4 ? '.x' : ''};
  var s1 = ${T}(0.0);
  ${loop('s1 += x[i] - shift;')}
  let mu = wg_sum(hsum(s1), lid) / ${f32Lit(c.HW * (c.C / c.G))};
  var s2 = ${T}(0.0);
  ${loop('let d = (x[i] - shift) - mu;\n    s2 += d * d;')}
  let rstd = 1.0 / sqrt(wg_sum(hsum(s2), lid) / ${f32Lit(c.HW * (c.C / c.G))} + ${f32Lit(c.eps)});
#if ${fused}
  ${loop(`let ch = g * ${CgV}u + j;\n    y[i] = actT(((x[i] - shift) - mu) * rstd * gamma[ch] + beta[ch]);`)}
#else
  if (lid == 0u) { st[ng] = vec4<f32>(shift, mu, rstd, 0.0); }
#endif
}`;
  },
};

interface GroupApplyConfig {
  N: number;
  HW: number;
  C: number;
  G: number;
  act: Activation;
  /** C % 4 == 0: read x as vec4 (its 4 channels may span several groups when Cg < 4). */
  vec4: boolean;
  wg: number;
  gridX: number;
}

const groupNormApply: KernelFamily<GroupApplyConfig> = {
  name: 'group_norm_apply',
  wgsl(c) {
    const T = vecType(c.vec4);
    const n = c.N * c.HW * c.C;
    const Cg = c.C / c.G;
    // Stats of channel `ch` (an expression) in sample `s`: a vec4 (K, mu, rstd, 0).
    const stat = (ch: string) => `st[s * ${c.G}u + (${ch}) / ${Cg}u]`;
    let body: string;
    if (!c.vec4) {
      body = `
  for (var k = 0u; k < 4u; k++) {
    let i = t * 4u + k;
    if (i >= ${n}u) { return; }
    let ch = i % ${c.C}u;
    let s = i / ${c.HW * c.C}u;
    let p = ${stat('ch')};
    y[i] = act(((x[i] - p.x) - p.y) * p.z * gamma[ch] + beta[ch]);
  }`;
    } else if (Cg % 4 === 0) {
      body = `
  if (t >= ${n / 4}u) { return; }
  let c4 = t % ${c.C / 4}u;
  let s = t / ${(c.HW * c.C) / 4}u;
  let p = ${stat('c4 * 4u')};
  y[t] = actT(((x[t] - p.x) - p.y) * p.z * gamma[c4] + beta[c4]);`;
    } else {
      body = `
  if (t >= ${n / 4}u) { return; }
  let c4 = t % ${c.C / 4}u;
  let s = t / ${(c.HW * c.C) / 4}u;
  let p0 = ${stat('c4 * 4u')};
  let p1 = ${stat('c4 * 4u + 1u')};
  let p2 = ${stat('c4 * 4u + 2u')};
  let p3 = ${stat('c4 * 4u + 3u')};
  let d = (x[t] - vec4<f32>(p0.x, p1.x, p2.x, p3.x)) - vec4<f32>(p0.y, p1.y, p2.y, p3.y);
  y[t] = actT(d * vec4<f32>(p0.z, p1.z, p2.z, p3.z) * gamma[c4] + beta[c4]);`;
    }
    return `
${activationWgsl(c.act)}
${actTWgsl(c.vec4)}
@group(0) @binding(0) var<storage, read> x: array<${T}>;           // input  [${c.N}, ${c.HW}, ${c.C}]
@group(0) @binding(1) var<storage, read> gamma: array<${T}>;       // input  [${c.C}]
@group(0) @binding(2) var<storage, read> beta: array<${T}>;        // input  [${c.C}]
@group(0) @binding(3) var<storage, read_write> st: array<vec4<f32>>; // temp   [${c.N}*${c.G}] (K, mu, rstd, 0) from group_norm
@group(0) @binding(4) var<storage, read_write> y: array<${T}>;     // output [${c.N}, ${c.HW}, ${c.C}]

${flatMain(c.wg, c.gridX)}${body}
}`;
  },
};

function checkGroups(groups: unknown, C: number, x: readonly number[]): number {
  if (typeof groups !== 'number' || !Number.isInteger(groups) || groups < 1) {
    throw new ShapeError(
      `group_norm needs a positive integer attr groups, got ${String(groups)} for input ${fmtShape(x)}`,
    );
  }
  if (C % groups !== 0)
    throw new ShapeError(`group_norm: channels C=${C} of input ${fmtShape(x)} are not divisible by groups=${groups}`);
  return groups;
}

export const groupNormOp: OpDef<GroupNormAttrs> = {
  op: 'group_norm',
  arity: [3, 3],
  infer(a, [x, gamma, beta]) {
    expectRank('group_norm input', x, 4);
    const C = x[3];
    checkGroups(a.groups, C, x);
    expectVector('gamma', gamma, C, x);
    expectVector('beta', beta, C, x);
    return [x];
  },
  lower(a, [x], _o, ctx) {
    const [N, H, W, C] = x;
    const G = a.groups,
      HW = H * W,
      Cg = C / G;
    const elems = N * HW * C;
    const p = groupNormVariant.of(ctx.prefer) ?? {};
    // Default 'fused,wg=16', measured best or near it on SwiftShader for BiT's shapes (56x56x64 to
    // 7x7x2048, 32 groups, batch 1 and 8); real GPUs likely want 'split,wg=256' at batch 1.
    const mode = p.mode ?? 'fused';
    const M = HW * Cg;
    const wg = floorPow2(
      Math.min(p.wg ?? 16, ctx.limits.maxComputeInvocationsPerWorkgroup, p.wg !== undefined ? Infinity : M),
    );
    const eps = a.eps ?? 1e-5,
      act = a.act ?? 'none';
    const g = grid(N * G, ctx.limits.maxComputeWorkgroupsPerDimension);
    const stats: GroupStatsConfig = {
      N,
      HW,
      C,
      G,
      eps,
      act,
      out: mode === 'fused' ? 'y' : 'stats',
      wg,
      vec4: Cg % 4 === 0,
      gridX: g[0],
    };
    if (mode === 'fused') {
      return {
        dispatches: [
          makeDispatch(groupNormStats, stats, g, [input(0), input(1), input(2), output(0)], {
            flops: 8 * elems,
            bytes: 4 * (2 * elems + 2 * C),
          }),
        ],
      };
    }
    const awg = 64;
    const ag = grid(ceilDiv(ceilDiv(elems, 4), awg), ctx.limits.maxComputeWorkgroupsPerDimension);
    const apply: GroupApplyConfig = { N, HW, C, G, act, vec4: C % 4 === 0, wg: awg, gridX: ag[0] };
    return {
      temps: [4 * N * G],
      dispatches: [
        makeDispatch(groupNormStats, { ...stats, act: 'none' }, g, [input(0), temp(0)], {
          flops: 5 * elems,
          bytes: 4 * elems,
        }),
        makeDispatch(groupNormApply, apply, ag, [input(0), input(1), input(2), temp(0), output(0)], {
          flops: 4 * elems,
          bytes: 4 * (2 * elems + 2 * C),
        }),
      ],
    };
  },
  ref(a, [x, gamma, beta]) {
    const [N, H, W, C] = x.shape;
    const G = a.groups,
      HW = H * W,
      Cg = C / G,
      M = HW * Cg;
    const eps = a.eps ?? 1e-5;
    const f = activationRef(a.act ?? 'none');
    const y = new Float32Array(x.data.length);
    for (let n = 0; n < N; n++) {
      for (let g = 0; g < G; g++) {
        const idx = (p: number, j: number) => (n * HW + p) * C + g * Cg + j;
        let s = 0;
        for (let p = 0; p < HW; p++) for (let j = 0; j < Cg; j++) s += x.data[idx(p, j)];
        const mean = s / M;
        let v = 0;
        for (let p = 0; p < HW; p++) for (let j = 0; j < Cg; j++) v += (x.data[idx(p, j)] - mean) ** 2;
        const rstd = 1 / Math.sqrt(v / M + eps);
        for (let p = 0; p < HW; p++) {
          for (let j = 0; j < Cg; j++) {
            const i = idx(p, j),
              c = g * Cg + j;
            y[i] = f((x.data[i] - mean) * rstd * gamma.data[c] + beta.data[c]);
          }
        }
      }
    }
    return [{ shape: [...x.shape], data: y } satisfies HostTensor];
  },
};

// ---- weight_standardize ------------------------------------------------------------------------

export interface WeightStandardizeAttrs {
  eps?: number;
}

interface WeightStdConfig {
  /** Rows KH*KW*Cin and columns Cout of the weight viewed as a matrix. */
  K: number;
  Cout: number;
  eps: number;
  /** Cout % 4 == 0: each invocation owns 4 adjacent columns. */
  vec4: boolean;
  wg: number;
  gridX: number;
}

const weightStd: KernelFamily<WeightStdConfig> = {
  name: 'weight_standardize',
  wgsl(c) {
    const T = vecType(c.vec4);
    const CV = c.vec4 ? c.Cout / 4 : c.Cout;
    const loop = (body: string) => `for (var k = 0u; k < ${c.K}u; k++) {
    let i = k * ${CV}u + t;
    ${body}
  }`;
    return `
@group(0) @binding(0) var<storage, read> w: array<${T}>;        // input  [${c.K}, ${c.Cout}] (KH*KW*Cin flattened)
@group(0) @binding(1) var<storage, read_write> y: array<${T}>;  // output [${c.K}, ${c.Cout}]

${flatMain(c.wg, c.gridX)}  // column (group of 4 columns if vec4)
  if (t >= ${CV}u) { return; }
  let shift = w[t];
  var s1 = ${T}(0.0);
  ${loop('s1 += w[i] - shift;')}
  let mu = s1 / ${f32Lit(c.K)};
  var s2 = ${T}(0.0);
  ${loop('let d = (w[i] - shift) - mu;\n    s2 += d * d;')}
  let rstd = 1.0 / sqrt(s2 / ${f32Lit(c.K)} + ${f32Lit(c.eps)});
  ${loop('y[i] = ((w[i] - shift) - mu) * rstd;')}
}`;
  },
};

export const weightStandardizeOp: OpDef<WeightStandardizeAttrs> = {
  op: 'weight_standardize',
  arity: [1, 1],
  infer(_a, [w]) {
    expectRank('weight_standardize input (HWIO conv weight)', w, 4);
    return [w];
  },
  lower(a, [w], _o, ctx) {
    const Cout = w[3],
      K = numel(w) / Cout;
    const vec4 = Cout % 4 === 0;
    const wg = 64;
    const g = grid(ceilDiv(vec4 ? Cout / 4 : Cout, wg), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: WeightStdConfig = { K, Cout, eps: a.eps ?? 1e-8, vec4, wg, gridX: g[0] };
    return {
      dispatches: [
        makeDispatch(weightStd, cfg, g, [input(0), output(0)], { flops: 7 * K * Cout, bytes: 8 * K * Cout }),
      ],
    };
  },
  ref(a, [w]) {
    const Cout = w.shape[3],
      K = w.data.length / Cout;
    const eps = a.eps ?? 1e-8;
    const y = new Float32Array(w.data.length);
    for (let o = 0; o < Cout; o++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += w.data[k * Cout + o];
      const mean = s / K;
      let v = 0;
      for (let k = 0; k < K; k++) v += (w.data[k * Cout + o] - mean) ** 2;
      const rstd = 1 / Math.sqrt(v / K + eps);
      for (let k = 0; k < K; k++) y[k * Cout + o] = (w.data[k * Cout + o] - mean) * rstd;
    }
    return [{ shape: [...w.shape], data: y } satisfies HostTensor];
  },
};
