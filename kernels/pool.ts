// Pooling over NHWC activations: `maxpool` and `avgpool` (windowed, PyTorch semantics) and
// `global_avgpool` (mean over H·W, flattened to [N,C] for the classifier that follows).
//
// Windowed pooling, family `pool2d`: one invocation per output pixel and 4 consecutive
// channels. With C % 4 == 0 the input is read as vec4 along C (one load per tap); otherwise the
// 4 lanes are loaded one by one and lanes past C are skipped. Taps that land in padding are
// skipped: for max they never win (as -inf padding would), for avg they count toward the divisor
// only with countIncludePad, and then only inside the padded extent: taps that ceil mode pushes
// past the right/bottom padding never count (PyTorch's rule, hend = min(hstart + k, H + pad)).
//
// Output size, as PyTorch: out = floor((in + p0 + p1 − d·(k−1) − 1 + (ceil ? s−1 : 0)) / s) + 1,
// and in ceil mode the last window must start inside the input or the left padding, else it is
// dropped. A window with no tap inside the input is a ShapeError (PyTorch forbids it by requiring
// pad ≤ k/2; checking the windows themselves also covers asymmetric pads).
//
// global_avgpool, family `global_avgpool`; `partition` says how the H·W reduction is split:
//   'serial'    one invocation per (n, 4 channels) loops over all of H·W in registers. No
//               workgroup memory: the cheap choice on SwiftShader, and enough parallelism
//               whenever N·C/4 fills the machine (ResNet-50: 512 invocations of 49 taps).
//   'workgroup' one workgroup per (n, 4 channels); its threads stride over H·W and add their
//               partial sums as a tree in workgroup memory. For real GPUs with small N·C/4 and
//               large H·W. Chosen by ctx.prefer.global_avgpool (a GlobalAvgpoolVariant: 'serial' or
//               'workgroup'), else by that size heuristic.

import {
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type OpDef,
  type Shape,
  ceilDiv,
  expectRank,
  f32Lit,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
} from './kernel.js';
import { ceilPow2, flatMain, mainWgsl, vecType, wgsl, workgroupIndex } from './wgsl.js';
import { defineVariant } from './variant.js';

const WG = 64;

/** WGSL helpers to read/write 4 channels (c4·4 … c4·4+3) of pixel `pix` of a [.., C] tensor. */
function channelIo(c: number, vec4: boolean, src: string, dst: string): string {
  const c4 = ceilDiv(c, 4);
  if (vec4) {
    return `
fn load4(pix: u32, c4: u32) -> vec4<f32> { return ${src}[pix * ${c4}u + c4]; }
fn store4(pix: u32, c4: u32, v: vec4<f32>) { ${dst}[pix * ${c4}u + c4] = v; }`;
  }
  // Lanes past C are neither read nor written; C is not a multiple of 4 here.
  return `
fn load4(pix: u32, c4: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  let base = pix * ${c}u + c4 * 4u;
  for (var k = 0u; k < 4u; k++) { if (c4 * 4u + k < ${c}u) { v[k] = ${src}[base + k]; } }
  return v;
}
fn store4(pix: u32, c4: u32, v: vec4<f32>) {
  let base = pix * ${c}u + c4 * 4u;
  for (var k = 0u; k < 4u; k++) { if (c4 * 4u + k < ${c}u) { ${dst}[base + k] = v[k]; } }
}`;
}

// ---- output size ------------------------------------------------------------------------------

/** PyTorch's pooling_output_shape for one spatial axis (may return ≤ 0: the caller throws). */
export function poolOutSize(
  inp: number,
  k: number,
  s: number,
  p0: number,
  p1: number,
  d: number,
  ceilMode: boolean,
): number {
  const num = inp + p0 + p1 - d * (k - 1) - 1 + (ceilMode ? s - 1 : 0);
  let out = Math.floor(num / s) + 1;
  if (ceilMode && out > 0 && (out - 1) * s >= inp + p0) out--;
  return out;
}

// ---- maxpool / avgpool ------------------------------------------------------------------------

export interface PoolAttrs {
  kernel: [number, number];
  /** Default: the kernel size. */
  stride?: [number, number];
  /** [top, left, bottom, right], default 0. Padded cells never win a max. */
  pad?: [number, number, number, number];
  dilation?: [number, number];
  ceilMode?: boolean;
}

export interface AvgPoolAttrs extends PoolAttrs {
  /** Divide by the window size including padding (PyTorch's default, true) or by the taps inside the input. */
  countIncludePad?: boolean;
}

interface PoolGeom {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  pt: number;
  pl: number;
  pb: number;
  pr: number;
  dh: number;
  dw: number;
  ceilMode: boolean;
}

function isIntArray(v: unknown, len: number, min: number): v is number[] {
  return Array.isArray(v) && v.length === len && v.every((x) => Number.isInteger(x) && x >= min);
}

function poolGeom(a: PoolAttrs): PoolGeom {
  const what = (k: string, v: unknown) => new ShapeError(`pool attr ${k} ${JSON.stringify(v)} is invalid`);
  if (!isIntArray(a.kernel, 2, 1)) throw what('kernel (want [kh,kw] ≥ 1)', a.kernel);
  const stride = a.stride ?? a.kernel;
  if (!isIntArray(stride, 2, 1)) throw what('stride (want [sh,sw] ≥ 1)', a.stride);
  const pad = a.pad ?? [0, 0, 0, 0];
  if (!isIntArray(pad, 4, 0)) throw what('pad (want [top,left,bottom,right] ≥ 0)', a.pad);
  const dil = a.dilation ?? [1, 1];
  if (!isIntArray(dil, 2, 1)) throw what('dilation (want [dh,dw] ≥ 1)', a.dilation);
  return {
    kh: a.kernel[0],
    kw: a.kernel[1],
    sh: stride[0],
    sw: stride[1],
    pt: pad[0],
    pl: pad[1],
    pb: pad[2],
    pr: pad[3],
    dh: dil[0],
    dw: dil[1],
    ceilMode: !!a.ceilMode,
  };
}

/** Output size along one axis; throws if it is empty or some window has no tap inside the input. */
function axisOut(
  axis: string,
  x: Shape,
  inp: number,
  k: number,
  s: number,
  p0: number,
  p1: number,
  d: number,
  ceilMode: boolean,
): number {
  const out = poolOutSize(inp, k, s, p0, p1, d, ceilMode);
  const geom = `kernel ${k}, stride ${s}, pad ${p0}+${p1}, dilation ${d}${ceilMode ? ', ceil mode' : ''}`;
  if (out <= 0) throw new ShapeError(`pooling input ${fmtShape(x)} is too small along ${axis} for ${geom}`);
  for (let o = 0; o < out; o++) {
    let hit = false;
    for (let j = 0; j < k && !hit; j++) {
      const i = o * s - p0 + j * d;
      hit = i >= 0 && i < inp;
    }
    if (!hit)
      throw new ShapeError(
        `pooling input ${fmtShape(x)}: window ${o} along ${axis} lies entirely in padding (${geom})`,
      );
  }
  return out;
}

function poolInfer(a: PoolAttrs, x: Shape): number[] {
  expectRank('pooling input (NHWC)', x, 4);
  const g = poolGeom(a);
  const [n, h, w, c] = x;
  return [
    n,
    axisOut('H', x, h, g.kh, g.sh, g.pt, g.pb, g.dh, g.ceilMode),
    axisOut('W', x, w, g.kw, g.sw, g.pl, g.pr, g.dw, g.ceilMode),
    c,
  ];
}

interface Pool2dConfig extends Omit<PoolGeom, 'ceilMode'> {
  mode: 'max' | 'avg';
  countIncludePad: boolean;
  n: number;
  h: number;
  w: number;
  c: number;
  oh: number;
  ow: number;
  /** Read/write along C as vec4 (C % 4 == 0). */
  vec4: boolean;
  wg: number;
  gridX: number;
}

const pool2d: KernelFamily<Pool2dConfig> = {
  name: 'pool2d',
  wgsl(c) {
    const T = vecType(c.vec4);
    const c4 = ceilDiv(c.c, 4);
    const total = c.n * c.oh * c.ow * c4;
    // Divisor rows/cols: taps inside the padded extent (countIncludePad) or inside the input.
    const [ylo, yhi, xlo, xhi] = c.countIncludePad ? [-c.pt, c.h + c.pb, -c.pl, c.w + c.pr] : [0, c.h, 0, c.w];
    const isMax = c.mode === 'max';
    return wgsl`
@group(0) @binding(0) var<storage, read> x: array<${T}>;        // input  [${c.n},${c.h},${c.w},${c.c}]
@group(0) @binding(1) var<storage, read_write> y: array<${T}>;  // output [${c.n},${c.oh},${c.ow},${c.c}]
${channelIo(c.c, c.vec4, 'x', 'y')}

${flatMain(c.wg, c.gridX)}
  if (t >= ${total}u) { return; }
  let c4 = t % ${c4}u;
  var r = t / ${c4}u;
  let ox = r % ${c.ow}u;
  r = r / ${c.ow}u;
  let oy = r % ${c.oh}u;
  let n = r / ${c.oh}u;
  let y0 = i32(oy * ${c.sh}u) - ${c.pt};
  let x0 = i32(ox * ${c.sw}u) - ${c.pl};
  var acc = vec4<f32>(0.0);
#if ${isMax}
  var seeded = false;  // no tap read yet: the first one seeds the max
#endif
  for (var ky = 0; ky < ${c.kh}; ky++) {
    let iy = y0 + ky * ${c.dh};
    if (iy < 0 || iy >= ${c.h}) { continue; }
    for (var kx = 0; kx < ${c.kw}; kx++) {
      let ix = x0 + kx * ${c.dw};
      if (ix < 0 || ix >= ${c.w}) { continue; }
      let v = load4((n * ${c.h}u + u32(iy)) * ${c.w}u + u32(ix), c4);
#if ${isMax}
      acc = select(v, max(acc, v), seeded);
      seeded = true;
#else
      acc += v;
#endif
    }
  }
#if ${!isMax}
  var rows = 0.0;
  for (var ky = 0; ky < ${c.kh}; ky++) {
    let iy = y0 + ky * ${c.dh};
    if (iy >= ${ylo} && iy < ${yhi}) { rows += 1.0; }
  }
  var cols = 0.0;
  for (var kx = 0; kx < ${c.kw}; kx++) {
    let ix = x0 + kx * ${c.dw};
    if (ix >= ${xlo} && ix < ${xhi}) { cols += 1.0; }
  }
  acc = acc / (rows * cols);
#endif
  store4((n * ${c.oh}u + oy) * ${c.ow}u + ox, c4, acc);
}`;
  },
};

function poolLower(mode: 'max' | 'avg', a: AvgPoolAttrs, x: Shape, out: Shape, ctx: LowerContext) {
  const { ceilMode: _ceil, ...g } = poolGeom(a);
  const [n, h, w, c] = x;
  const [, oh, ow] = out;
  const invocations = n * oh * ow * ceilDiv(c, 4);
  const wg = WG;
  const gr = grid(ceilDiv(invocations, wg), ctx.limits.maxComputeWorkgroupsPerDimension);
  const cfg: Pool2dConfig = {
    mode,
    countIncludePad: mode === 'avg' && (a.countIncludePad ?? true),
    n,
    h,
    w,
    c,
    oh,
    ow,
    ...g,
    vec4: c % 4 === 0,
    wg,
    gridX: gr[0],
  };
  const taps = numel(out) * g.kh * g.kw;
  return {
    dispatches: [
      makeDispatch(pool2d, cfg, gr, [input(0), output(0)], { flops: taps, bytes: 4 * (numel(x) + numel(out)) }),
    ],
  };
}

/** Plain loops over every output element and window tap (double-precision sums). */
function poolRef(mode: 'max' | 'avg', a: AvgPoolAttrs, x: HostTensor): HostTensor {
  const g = poolGeom(a);
  const shape = poolInfer(a, x.shape);
  const [n, h, w, c] = x.shape;
  const [, oh, ow] = shape;
  const includePad = a.countIncludePad ?? true;
  const data = new Float32Array(numel(shape));
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let ch = 0; ch < c; ch++) {
          let best = -Infinity,
            sum = 0,
            inside = 0,
            padded = 0;
          for (let ky = 0; ky < g.kh; ky++)
            for (let kx = 0; kx < g.kw; kx++) {
              const iy = oy * g.sh - g.pt + ky * g.dh;
              const ix = ox * g.sw - g.pl + kx * g.dw;
              if (iy >= -g.pt && iy < h + g.pb && ix >= -g.pl && ix < w + g.pr) padded++;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              const v = x.data[((b * h + iy) * w + ix) * c + ch];
              best = Math.max(best, v);
              sum += v;
              inside++;
            }
          data[((b * oh + oy) * ow + ox) * c + ch] = mode === 'max' ? best : sum / (includePad ? padded : inside);
        }
  return { shape, data };
}

export const maxpoolOp: OpDef<PoolAttrs> = {
  op: 'maxpool',
  arity: [1, 1],
  infer: (a, [x]) => [poolInfer(a, x)],
  lower: (a, [x], [out], ctx) => poolLower('max', a, x, out, ctx),
  ref: (a, [x]) => [poolRef('max', a, x)],
};

export const avgpoolOp: OpDef<AvgPoolAttrs> = {
  op: 'avgpool',
  arity: [1, 1],
  infer: (a, [x]) => [poolInfer(a, x)],
  lower: (a, [x], [out], ctx) => poolLower('avg', a, x, out, ctx),
  ref: (a, [x]) => [poolRef('avg', a, x)],
};

// ---- global_avgpool -----------------------------------------------------------------------------

export type GapPartition = 'serial' | 'workgroup';

interface GapConfig {
  n: number;
  hw: number;
  c: number;
  vec4: boolean;
  partition: GapPartition;
  /** Threads per workgroup: any size for 'serial'; a power of two for 'workgroup' (the tree). */
  wg: number;
  gridX: number;
}

const globalAvgpool: KernelFamily<GapConfig> = {
  name: 'global_avgpool',
  wgsl(c) {
    const T = vecType(c.vec4);
    const c4 = ceilDiv(c.c, 4);
    const groups = c.n * c4;
    const head = `
@group(0) @binding(0) var<storage, read> x: array<${T}>;        // input  [${c.n},H·W=${c.hw},${c.c}]
@group(0) @binding(1) var<storage, read_write> y: array<${T}>;  // output [${c.n},${c.c}]
${channelIo(c.c, c.vec4, 'x', 'y')}`;
    if (c.partition === 'serial') {
      return `${head}

${flatMain(c.wg, c.gridX)}
  if (t >= ${groups}u) { return; }
  let c4 = t % ${c4}u;
  let n = t / ${c4}u;
  var acc = vec4<f32>(0.0);
  for (var i = 0u; i < ${c.hw}u; i++) { acc += load4(n * ${c.hw}u + i, c4); }
  store4(n, c4, acc / ${f32Lit(c.hw)});
}`;
    }
    return `${head}
var<workgroup> part: array<vec4<f32>, ${c.wg}>;

${mainWgsl(c.wg)}
  let g = ${workgroupIndex(c.gridX)};  // uniform per workgroup, so the barriers below are too
  let live = g < ${groups}u;
  let c4 = g % ${c4}u;
  let n = g / ${c4}u;
  var acc = vec4<f32>(0.0);
  if (live) {
    for (var i = lid; i < ${c.hw}u; i += ${c.wg}u) { acc += load4(n * ${c.hw}u + i, c4); }
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var s = ${c.wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { part[lid] += part[lid + s]; }
    workgroupBarrier();
  }
  if (live && lid == 0u) { store4(n, c4, part[0] / ${f32Lit(c.hw)}); }
}`;
  },
};

export type GlobalAvgpoolAttrs = Record<string, never>;

/** ctx.prefer.global_avgpool. */
export interface GlobalAvgpoolVariant {
  partition?: GapPartition;
}

export const globalAvgpoolVariant = defineVariant<GlobalAvgpoolVariant>('global_avgpool', [
  { kind: 'enum', key: 'partition', values: ['serial', 'workgroup'], bare: true },
]);

export const globalAvgpoolOp: OpDef<GlobalAvgpoolAttrs> = {
  op: 'global_avgpool',
  arity: [1, 1],
  infer(_a, [x]) {
    expectRank('global_avgpool input (NHWC)', x, 4);
    return [[x[0], x[3]]];
  },
  lower(_a, [x], [out], ctx) {
    const [n, h, w, c] = x;
    const hw = h * w;
    const groups = n * ceilDiv(c, 4);
    const pref = globalAvgpoolVariant.of(ctx.prefer)?.partition;
    // Few long reductions leave most of a GPU idle in 'serial'; otherwise it wins (no barriers).
    const partition: GapPartition = pref ?? (groups < 32 && hw >= 1024 ? 'workgroup' : 'serial');
    let wg = WG;
    let count = ceilDiv(groups, wg);
    if (partition === 'workgroup') {
      wg = Math.min(WG, ceilPow2(Math.max(2, hw)));
      count = groups;
    }
    const gr = grid(count, ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: GapConfig = { n, hw, c, vec4: c % 4 === 0, partition, wg, gridX: gr[0] };
    return {
      dispatches: [
        makeDispatch(globalAvgpool, cfg, gr, [input(0), output(0)], {
          flops: numel(x),
          bytes: 4 * (numel(x) + numel(out)),
        }),
      ],
    };
  },
  ref(_a, [x]) {
    const [n, h, w, c] = x.shape;
    const data = new Float32Array(n * c);
    for (let b = 0; b < n; b++)
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let i = 0; i < h * w; i++) s += x.data[(b * h * w + i) * c + ch];
        data[b * c + ch] = s / (h * w);
      }
    return [{ shape: [n, c], data }];
  },
};
