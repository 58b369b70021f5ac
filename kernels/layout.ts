// Layout and glue ops: `reshape` (a free alias), `transpose`, `concat`, `slice` and `pad`.
//
// All but pad are one kernel family, `strided_copy`: walk an iteration space in row-major
// order and copy element at Σ idx·inStride + inOffset to Σ idx·outStride + outOffset. Every op
// describes itself as such a walk (transpose permutes the input strides; concat writes each
// input into its slab of the output with stride 0 on broadcast dims; slice starts at an offset).
// Before baking the walk into WGSL it is simplified: size-1 dims are dropped and neighbours
// that are contiguous in both tensors are merged, so NHWC glue usually becomes a 1-3 D walk.
// One invocation per 4 elements: as one vec4 when the innermost dim is contiguous in both
// tensors and everything is 4-aligned, else 4 scalar unravels.
//
// transpose has a second family, `transpose2d`, for permutations that simplify to a batched
// 2-D transpose [B,R,S] -> [B,S,R] (NCHW<->NHWC: perm [0,2,3,1] and [0,3,1,2]): one invocation
// per 4×4 tile, 4 row loads and 4 row stores (vec4 when R resp. S is a multiple of 4), no index
// unravelling per element. ctx.prefer.transpose (a TransposeVariant: 'generic' | 'tile2d') picks;
// default tile2d where it applies.
//
// pad, family `pad`: one invocation per output pixel and 4 channels, vec4 along C when
// C % 4 == 0; cells outside the input get `value`.

import {
  type KernelFamily,
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
import { XYZW, flatMain, range, vecType, wgsl } from './wgsl.js';
import { defineVariant } from './variant.js';

const WG = 64;
const MAX_RANK = 6;

function rowMajorStrides(s: Shape): number[] {
  const st = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

function normAxis(axis: unknown, rank: number, what: string, s: Shape): number {
  if (!Number.isInteger(axis) || (axis as number) < -rank || (axis as number) >= rank) {
    throw new ShapeError(`${what}: axis ${String(axis)} is out of range for ${fmtShape(s)}`);
  }
  return (axis as number) < 0 ? (axis as number) + rank : (axis as number);
}

// ---- strided_copy --------------------------------------------------------------------------------

/** A copy walk: for idx over `shape`, out[Σ idx·outStrides + outOffset] = in[Σ idx·inStrides + inOffset]. */
export interface Walk {
  shape: number[];
  inStrides: number[];
  outStrides: number[];
  inOffset: number;
  outOffset: number;
}

/** Drop size-1 dims and merge neighbours contiguous in both tensors; a 0-D walk becomes [1]. */
export function simplifyWalk(w: Walk): Walk {
  const shape: number[] = [],
    ins: number[] = [],
    outs: number[] = [];
  w.shape.forEach((d, i) => {
    if (d === 1) return;
    const k = shape.length - 1;
    if (k >= 0 && ins[k] === w.inStrides[i] * d && outs[k] === w.outStrides[i] * d) {
      shape[k] *= d;
      ins[k] = w.inStrides[i];
      outs[k] = w.outStrides[i];
    } else {
      shape.push(d);
      ins.push(w.inStrides[i]);
      outs.push(w.outStrides[i]);
    }
  });
  if (!shape.length)
    return { shape: [1], inStrides: [1], outStrides: [1], inOffset: w.inOffset, outOffset: w.outOffset };
  return { shape, inStrides: ins, outStrides: outs, inOffset: w.inOffset, outOffset: w.outOffset };
}

interface CopyConfig extends Walk {
  /** Elements (or vec4s when vec4) in the walk. */
  n: number;
  /** Walk in units of vec4: innermost dim contiguous in both, all else 4-aligned (already divided by 4). */
  vec4: boolean;
  wg: number;
  gridX: number;
}

const stridedCopy: KernelFamily<CopyConfig> = {
  name: 'strided_copy',
  wgsl(c) {
    const T = vecType(c.vec4);
    let unravel = `    var r = i;\n    var ia = ${c.inOffset}u;\n    var ib = ${c.outOffset}u;\n`;
    for (let d = c.shape.length - 1; d >= 0; d--) {
      const last = d === 0;
      unravel += `    { let q = ${last ? 'r' : `r % ${c.shape[d]}u`};${last ? '' : ` r = r / ${c.shape[d]}u;`} ia += q * ${c.inStrides[d]}u; ib += q * ${c.outStrides[d]}u; }\n`;
    }
    const per = c.vec4 ? 1 : 4;
    return `
@group(0) @binding(0) var<storage, read> x: array<${T}>;        // input  (read at the walk's input offsets)
@group(0) @binding(1) var<storage, read_write> y: array<${T}>;  // output (written at the walk's output offsets)

// walk [${c.shape.join(',')}], input strides [${c.inStrides.join(',')}] + ${c.inOffset}, output strides [${c.outStrides.join(',')}] + ${c.outOffset}
${flatMain(c.wg, c.gridX)}
  for (var k = 0u; k < ${per}u; k++) {
    let i = t * ${per}u + k;
    if (i >= ${c.n}u) { return; }
${unravel}    y[ib] = x[ia];
  }
}`;
  },
};

/** The dispatch for one walk (simplified, vec4 where aligned), binding input(inIndex) -> output(0). */
function copyDispatch(walk: Walk, inIndex: number, maxPerDim: number) {
  let w = simplifyWalk(walk);
  const r = w.shape.length - 1;
  const aligned = (v: number) => v % 4 === 0;
  const vec4 =
    w.inStrides[r] === 1 &&
    w.outStrides[r] === 1 &&
    aligned(w.shape[r]) &&
    aligned(w.inOffset) &&
    aligned(w.outOffset) &&
    w.inStrides.slice(0, r).every(aligned) &&
    w.outStrides.slice(0, r).every(aligned);
  const elems = numel(w.shape);
  if (vec4) {
    w = {
      shape: [...w.shape.slice(0, r), w.shape[r] / 4],
      inStrides: [...w.inStrides.slice(0, r).map((s) => s / 4), 1],
      outStrides: [...w.outStrides.slice(0, r).map((s) => s / 4), 1],
      inOffset: w.inOffset / 4,
      outOffset: w.outOffset / 4,
    };
  }
  const n = vec4 ? elems / 4 : elems;
  const g = grid(ceilDiv(vec4 ? n : ceilDiv(n, 4), WG), maxPerDim);
  const cfg: CopyConfig = { ...w, n, vec4, wg: WG, gridX: g[0] };
  return makeDispatch(stridedCopy, cfg, g, [input(inIndex), output(0)], { bytes: 8 * elems });
}

/** Run a walk on host arrays (the references use it; it does not simplify). */
function copyRef(w: Walk, src: Float32Array, dst: Float32Array): void {
  const n = numel(w.shape);
  for (let i = 0; i < n; i++) {
    let r = i,
      ia = w.inOffset,
      ib = w.outOffset;
    for (let d = w.shape.length - 1; d >= 0; d--) {
      const q = r % w.shape[d];
      r = Math.floor(r / w.shape[d]);
      ia += q * w.inStrides[d];
      ib += q * w.outStrides[d];
    }
    dst[ib] = src[ia];
  }
}

// ---- reshape -----------------------------------------------------------------------------------

export interface ReshapeAttrs {
  /** New shape; one entry may be -1 (inferred). */
  shape: number[];
}

function reshapeInfer(a: ReshapeAttrs, x: Shape): number[] {
  const s = a.shape;
  if (
    !Array.isArray(s) ||
    !s.every((d) => Number.isInteger(d) && (d >= 1 || d === -1)) ||
    s.filter((d) => d === -1).length > 1
  ) {
    throw new ShapeError(
      `reshape of ${fmtShape(x)}: target shape ${JSON.stringify(s)} must be positive integers with at most one -1`,
    );
  }
  const n = numel(x);
  const known = s.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  const out = s.map((d) => (d === -1 ? n / known : d));
  if (numel(out) !== n || !out.every(Number.isInteger)) {
    throw new ShapeError(
      `cannot reshape ${fmtShape(x)} (${n} elements) to ${fmtShape(s)}${s.includes(-1) ? '' : ` (${numel(s)} elements)`}`,
    );
  }
  return out;
}

/** Reshape (row-major): output 0 shares input 0's buffer, so it costs nothing. */
export const reshapeOp: OpDef<ReshapeAttrs> = {
  op: 'reshape',
  arity: [1, 1],
  alias: true,
  infer: (a, [x]) => [reshapeInfer(a, x)],
  lower: () => ({ dispatches: [] }),
  ref: (a, [x]) => [{ shape: reshapeInfer(a, x.shape), data: x.data.slice() }],
};

// ---- transpose ---------------------------------------------------------------------------------

export interface TransposeAttrs {
  /** Output dim d is input dim perm[d]. */
  perm: number[];
}

function transposeInfer(a: TransposeAttrs, x: Shape): number[] {
  const p = a.perm;
  if (x.length > MAX_RANK) throw new ShapeError(`transpose supports rank ≤ ${MAX_RANK}, got ${fmtShape(x)}`);
  if (!Array.isArray(p) || p.length !== x.length || [...p].sort((u, v) => u - v).some((v, i) => v !== i)) {
    throw new ShapeError(
      `transpose perm ${JSON.stringify(p)} is not a permutation of the ${x.length} dims of ${fmtShape(x)}`,
    );
  }
  return p.map((d) => x[d]);
}

function transposeWalk(perm: number[], x: Shape): Walk {
  const out = perm.map((d) => x[d]);
  const xs = rowMajorStrides(x);
  return { shape: out, inStrides: perm.map((d) => xs[d]), outStrides: rowMajorStrides(out), inOffset: 0, outOffset: 0 };
}

/** If the walk is a (batched) 2-D transpose [B,R,S] -> [B,S,R], its B, R, S. */
function asTranspose2d(w: Walk): { b: number; r: number; s: number } | undefined {
  const { shape, inStrides: is } = w;
  const k = shape.length;
  if (k !== 2 && k !== 3) return undefined;
  // Output [.., S, R] walked row-major; the input steps 1 along S and S along R.
  const [s, r] = shape.slice(k - 2);
  if (is[k - 2] !== 1 || is[k - 1] !== s) return undefined;
  if (k === 3 && is[0] !== r * s) return undefined;
  return { b: k === 3 ? shape[0] : 1, r, s };
}

interface Transpose2dConfig {
  /** Input [b,r,s] -> output [b,s,r]. */
  b: number;
  r: number;
  s: number;
  /** Input rows read as vec4 (s % 4 == 0); output rows written as vec4 (r % 4 == 0). */
  vec4In: boolean;
  vec4Out: boolean;
  wg: number;
  gridX: number;
}

const transpose2d: KernelFamily<Transpose2dConfig> = {
  name: 'transpose2d',
  wgsl(c) {
    const rt = ceilDiv(c.r, 4),
      st = ceilDiv(c.s, 4);
    // m[i] holds input row r0+i, columns s0..s0+3 (zeros past the edge).
    let loads = '';
    for (let i = 0; i < 4; i++) {
      loads += c.vec4In
        ? `  if (r0 + ${i}u < ${c.r}u) { m${i} = x[(b * ${c.r}u + r0 + ${i}u) * ${c.s / 4}u + st]; }\n`
        : `  if (r0 + ${i}u < ${c.r}u) { for (var j = 0u; j < 4u; j++) { if (s0 + j < ${c.s}u) { m${i}[j] = x[(b * ${c.r}u + r0 + ${i}u) * ${c.s}u + s0 + j]; } } }\n`;
    }
    // Output row s0+j is lane j of m0..m3.
    let stores = '';
    for (let j = 0; j < 4; j++) {
      const v = `vec4<f32>(${range(4)
        .map((i) => `m${i}.${XYZW[j]}`)
        .join(', ')})`;
      stores += c.vec4Out
        ? `  if (s0 + ${j}u < ${c.s}u) { y[(b * ${c.s}u + s0 + ${j}u) * ${c.r / 4}u + rt] = ${v}; }\n`
        : `  if (s0 + ${j}u < ${c.s}u) { let v = ${v}; for (var i = 0u; i < 4u; i++) { if (r0 + i < ${c.r}u) { y[(b * ${c.s}u + s0 + ${j}u) * ${c.r}u + r0 + i] = v[i]; } } }\n`;
    }
    return `
@group(0) @binding(0) var<storage, read> x: array<${vecType(c.vec4In)}>;        // input  [${c.b},${c.r},${c.s}]
@group(0) @binding(1) var<storage, read_write> y: array<${vecType(c.vec4Out)}>;  // output [${c.b},${c.s},${c.r}]

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.b * rt * st}u) { return; }
  let rt = t % ${rt}u;           // tile of output columns (input rows), fastest
  let st = (t / ${rt}u) % ${st}u; // tile of output rows (input columns)
  let b = t / ${rt * st}u;
  let r0 = rt * 4u;
  let s0 = st * 4u;
  var m0 = vec4<f32>(0.0);
  var m1 = vec4<f32>(0.0);
  var m2 = vec4<f32>(0.0);
  var m3 = vec4<f32>(0.0);
${loads}${stores}}`;
  },
};

export type TransposeMode = 'generic' | 'tile2d';

/** ctx.prefer.transpose. */
export interface TransposeVariant {
  variant?: TransposeMode;
}

export const transposeVariant = defineVariant<TransposeVariant>('transpose', [
  { kind: 'enum', key: 'variant', values: ['generic', 'tile2d'], bare: true },
]);

export const transposeOp: OpDef<TransposeAttrs> = {
  op: 'transpose',
  arity: [1, 1],
  infer: (a, [x]) => [transposeInfer(a, x)],
  lower(a, [x], _o, ctx) {
    const walk = simplifyWalk(transposeWalk(a.perm, x));
    const t2 = asTranspose2d(walk);
    const variant: TransposeMode = t2 && transposeVariant.of(ctx.prefer)?.variant !== 'generic' ? 'tile2d' : 'generic';
    const maxPerDim = ctx.limits.maxComputeWorkgroupsPerDimension;
    if (variant === 'generic' || !t2) return { dispatches: [copyDispatch(walk, 0, maxPerDim)] };
    const g = grid(ceilDiv(t2.b * ceilDiv(t2.r, 4) * ceilDiv(t2.s, 4), WG), maxPerDim);
    const cfg: Transpose2dConfig = { ...t2, vec4In: t2.s % 4 === 0, vec4Out: t2.r % 4 === 0, wg: WG, gridX: g[0] };
    return { dispatches: [makeDispatch(transpose2d, cfg, g, [input(0), output(0)], { bytes: 8 * numel(x) })] };
  },
  ref(a, [x]) {
    const shape = transposeInfer(a, x.shape);
    const data = new Float32Array(x.data.length);
    copyRef(transposeWalk(a.perm, x.shape), x.data, data);
    return [{ shape, data }];
  },
};

// ---- concat ------------------------------------------------------------------------------------

/**
 * Concatenate 2 to 8 tensors of equal rank along `axis` (negative counts from the end).
 * Every other dim must match, except that an input whose dim is 1 broadcasts to the others'
 * size: the ViT class token [1,1,D] concatenates with patch tokens [B,N,D] along axis 1 into
 * [B,1+N,D]. One dispatch per input, each writing its slab of the output.
 */
export interface ConcatAttrs {
  axis: number;
}

function concatInfer(a: ConcatAttrs, xs: Shape[]): number[] {
  const rank = xs[0].length;
  const all = xs.map(fmtShape).join(', ');
  if (xs.some((s) => s.length !== rank)) throw new ShapeError(`concat inputs must have equal rank, got ${all}`);
  const axis = normAxis(a.axis, rank, 'concat', xs[0]);
  const out: number[] = [];
  for (let d = 0; d < rank; d++) {
    if (d === axis) {
      out.push(xs.reduce((p, s) => p + s[d], 0));
      continue;
    }
    const size = Math.max(...xs.map((s) => s[d]));
    if (xs.some((s) => s[d] !== size && s[d] !== 1))
      throw new ShapeError(`concat along axis ${axis}: inputs ${all} differ in dim ${d}`);
    out.push(size);
  }
  return out;
}

/** The walk writing input `x` at `offset` along `axis` of `out` (stride 0 on broadcast dims). */
function concatWalk(x: Shape, out: Shape, axis: number, offset: number): Walk {
  const xs = rowMajorStrides(x),
    os = rowMajorStrides(out);
  return {
    shape: out.map((d, i) => (i === axis ? x[i] : d)),
    inStrides: x.map((d, i) => (d === 1 && out[i] !== 1 && i !== axis ? 0 : xs[i])),
    outStrides: os,
    inOffset: 0,
    outOffset: offset * os[axis],
  };
}

export const concatOp: OpDef<ConcatAttrs> = {
  op: 'concat',
  arity: [2, 8],
  infer: (a, xs) => [concatInfer(a, xs)],
  lower(a, xs, [out], ctx) {
    const axis = normAxis(a.axis, out.length, 'concat', out);
    let offset = 0;
    const dispatches = xs.map((x, i) => {
      const d = copyDispatch(concatWalk(x, out, axis, offset), i, ctx.limits.maxComputeWorkgroupsPerDimension);
      offset += x[axis];
      return d;
    });
    return { dispatches };
  },
  ref(a, xs) {
    const shape = concatInfer(
      a,
      xs.map((x) => x.shape),
    );
    const axis = normAxis(a.axis, shape.length, 'concat', shape);
    const data = new Float32Array(numel(shape));
    let offset = 0;
    for (const x of xs) {
      copyRef(concatWalk(x.shape, shape, axis, offset), x.data, data);
      offset += x.shape[axis];
    }
    return [{ shape, data }];
  },
};

// ---- slice -------------------------------------------------------------------------------------

export interface SliceAttrs {
  axis: number;
  /** Python-style: negative counts from the end, out-of-range clamps; end is exclusive. */
  start: number;
  end: number;
}

function sliceRange(a: SliceAttrs, x: Shape): { axis: number; start: number; len: number } {
  const axis = normAxis(a.axis, x.length, 'slice', x);
  const L = x[axis];
  if (!Number.isInteger(a.start) || !Number.isInteger(a.end))
    throw new ShapeError(`slice of ${fmtShape(x)}: start/end must be integers`);
  const norm = (i: number) => Math.min(Math.max(i < 0 ? i + L : i, 0), L);
  const start = norm(a.start),
    end = norm(a.end);
  if (end <= start) throw new ShapeError(`slice ${a.start}:${a.end} along axis ${axis} of ${fmtShape(x)} is empty`);
  return { axis, start, len: end - start };
}

function sliceWalk(x: Shape, axis: number, start: number, len: number): Walk {
  const out = x.map((d, i) => (i === axis ? len : d));
  const xs = rowMajorStrides(x);
  return { shape: out, inStrides: xs, outStrides: rowMajorStrides(out), inOffset: start * xs[axis], outOffset: 0 };
}

export const sliceOp: OpDef<SliceAttrs> = {
  op: 'slice',
  arity: [1, 1],
  infer(a, [x]) {
    const { axis, len } = sliceRange(a, x);
    return [x.map((d, i) => (i === axis ? len : d))];
  },
  lower(a, [x], _o, ctx) {
    const { axis, start, len } = sliceRange(a, x);
    return {
      dispatches: [copyDispatch(sliceWalk(x, axis, start, len), 0, ctx.limits.maxComputeWorkgroupsPerDimension)],
    };
  },
  ref(a, [x]) {
    const { axis, start, len } = sliceRange(a, x.shape);
    const w = sliceWalk(x.shape, axis, start, len);
    const data = new Float32Array(numel(w.shape));
    copyRef(w, x.data, data);
    return [{ shape: w.shape, data }];
  },
};

// ---- pad ---------------------------------------------------------------------------------------

export interface PadAttrs {
  /** Rows/columns added to H and W of an NHWC tensor: [top, left, bottom, right]. */
  pad: [number, number, number, number];
  /** Fill value (finite), default 0. */
  value?: number;
}

function padInfer(a: PadAttrs, x: Shape): number[] {
  expectRank('pad input (NHWC)', x, 4);
  const p = a.pad;
  if (!Array.isArray(p) || p.length !== 4 || !p.every((v) => Number.isInteger(v) && v >= 0)) {
    throw new ShapeError(
      `pad of ${fmtShape(x)}: pad ${JSON.stringify(p)} must be [top,left,bottom,right] integers ≥ 0`,
    );
  }
  return [x[0], x[1] + p[0] + p[2], x[2] + p[1] + p[3], x[3]];
}

interface PadConfig {
  n: number;
  h: number;
  w: number;
  c: number;
  oh: number;
  ow: number;
  top: number;
  left: number;
  value: number;
  /** Read/write along C as vec4 (C % 4 == 0); else 4 scalar channels per invocation. */
  vec4: boolean;
  wg: number;
  gridX: number;
}

const padFamily: KernelFamily<PadConfig> = {
  name: 'pad',
  wgsl(c) {
    const T = vecType(c.vec4);
    const c4 = ceilDiv(c.c, 4);
    const v = f32Lit(c.value);
    // Outside the input, the read index is clamped to 0 and its value discarded by select().
    return wgsl`
@group(0) @binding(0) var<storage, read> x: array<${T}>;        // input  [${c.n},${c.h},${c.w},${c.c}]
@group(0) @binding(1) var<storage, read_write> y: array<${T}>;  // output [${c.n},${c.oh},${c.ow},${c.c}]

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.n * c.oh * c.ow * c4}u) { return; }
  let c4 = t % ${c4}u;
  let dst = t / ${c4}u;  // output pixel
  let ox = dst % ${c.ow}u;
  let oy = (dst / ${c.ow}u) % ${c.oh}u;
  let n = dst / ${c.ow * c.oh}u;
  let iy = i32(oy) - ${c.top};
  let ix = i32(ox) - ${c.left};
  let inside = iy >= 0 && iy < ${c.h} && ix >= 0 && ix < ${c.w};
  let src = (n * ${c.h}u + u32(max(iy, 0))) * ${c.w}u + u32(max(ix, 0));  // input pixel
#if ${c.vec4}
  y[t] = select(vec4<f32>(${v}), x[select(0u, src * ${c4}u + c4, inside)], inside);
#else
  for (var k = 0u; k < 4u; k++) {
    let ch = c4 * 4u + k;
    if (ch < ${c.c}u) { y[dst * ${c.c}u + ch] = select(${v}, x[select(0u, src * ${c.c}u + ch, inside)], inside); }
  }
#endif
}`;
  },
};

export const padOp: OpDef<PadAttrs> = {
  op: 'pad',
  arity: [1, 1],
  infer: (a, [x]) => [padInfer(a, x)],
  lower(a, [x], [out], ctx) {
    const [n, h, w, c] = x;
    const [, oh, ow] = out;
    const g = grid(ceilDiv(n * oh * ow * ceilDiv(c, 4), WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: PadConfig = {
      n,
      h,
      w,
      c,
      oh,
      ow,
      top: a.pad[0],
      left: a.pad[1],
      value: a.value ?? 0,
      vec4: c % 4 === 0,
      wg: WG,
      gridX: g[0],
    };
    return {
      dispatches: [makeDispatch(padFamily, cfg, g, [input(0), output(0)], { bytes: 4 * (numel(x) + numel(out)) })],
    };
  },
  ref(a, [x]) {
    const shape = padInfer(a, x.shape);
    const [n, h, w, c] = x.shape;
    const [, oh, ow] = shape;
    const [top, left] = a.pad;
    const data = new Float32Array(numel(shape)).fill(a.value ?? 0);
    for (let b = 0; b < n; b++)
      for (let iy = 0; iy < h; iy++)
        for (let ix = 0; ix < w; ix++)
          for (let ch = 0; ch < c; ch++) {
            data[((b * oh + iy + top) * ow + ix + left) * c + ch] = x.data[((b * h + iy) * w + ix) * c + ch];
          }
    return [{ shape, data }];
  },
};
