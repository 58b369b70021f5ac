// 2-D convolution: y = act(conv(x, w) + bias + residual), NHWC activations, HWIO weights, with
// stride, asymmetric zero padding, dilation and groups.
//
//   x        [N,H,W,Cin]             y[n,oy,ox,co] = act(bias[co] + r[n,oy,ox,co] + Σ_{ky,kx,ci} x[n,iy,ix,g·Cig+ci] · w[ky,kx,ci,co])
//   w        [KH,KW,Cin/groups,Cout]   with g = co / Cog, iy = oy·sh − top + ky·dh, ix = ox·sw − left + kx·dw,
//   bias     [Cout] (optional)         Cig = Cin/groups, Cog = Cout/groups; x outside the image reads 0.
//   residual [N,OH,OW,Cout]          (optional, 4th input; needs the bias as 3rd, a zero one if the conv
//                                      has none) r = residual, else 0: the skip connection of a ResNet
//                                      or MobileNetV2 block, fused by engine/passes.ts fuseResidual.
//   y        [N,OH,OW,Cout]          OH = ⌊(H + top + bottom − dh·(KH−1) − 1)/sh⌋ + 1, likewise OW.
//
// One WGSL generator, two mappings of invocations to outputs (config field `path`). Either way an
// invocation owns a register tile of tm output pixels × tn output channels (channels within one
// group), loops over the receptive field (ky, kx, then ci, innermost and contiguous in NHWC/HWIO),
// and applies bias (+ residual, read at y's own index) + activation in the epilogue. Nothing is staged in workgroup memory: on
// SwiftShader registers and vec4 loads are cheap and barriers are not (docs/swiftshader.md).
//
// - direct: the tm pixels are consecutive along one output row (n, oy, ox0..ox0+tm−1), so the
//   input-row test for each ky is made once per tile. The general path, and the default for
//   grouped convs (depthwise included when it is not delegated to kernels/depthwise.ts).
// - gemm (implicit GEMM): C[M,Cout] = A[M,K] · B[K,Cout] with M = N·OH·OW, K = KH·KW·Cig, A the
//   im2col of x read on the fly (never stored) and B = w viewed as [K, Cout]. The tm pixels are
//   tm consecutive rows of M, crossing output rows and images. `pointwise` (1×1, stride 1, no
//   padding) is a plain GEMM with A = x viewed as [N·H·W, Cin]: no window arithmetic at all.
//
// Vector widths: `vec4` reads w, bias, residual and y as vec4 along Cout (needs Cog % 4 == 0, TN % 4 == 0:
// each accumulator is a vec4 of 4 channels); `xVec4` reads x as vec4 along Cin (Cig % 4 == 0)
// and unrolls the ci loop by 4. Tiles hanging over the edge clamp their read indices (so every
// load is in bounds) and skip their writes.
//
// Workgroups are 2-D: x over channel blocks, y over pixel blocks; the flat workgroup index is
// `wid.x + wid.y·gridX` (see grid()), split into (channel-block group, pixel-block group).
//
// Choice (lower): ctx.prefer.conv2d, a Conv2dVariant (kernels/variant.ts syntax: 'gemm',
// 'direct,tile=4x8' = tm×tn, 'gemm,tile=4x16,sg'); unset fields go to the heuristic: gemm for groups == 1, direct for grouped convs, and depthwise convs
// (groups == Cin > 1) go to kernels/depthwise.ts (both paths here still handle them), except
// when they carry a residual: depthwise.ts has no residual epilogue, so those stay here, direct.
//
// Variants for real GPUs (in the tune space where the device can run them, never the heuristic's
// choice; docs/kernels-gpu.md):
// - 'gemm,wgmem,wg=<x>x<y>,tk=<k>': implicit GEMM through workgroup memory (conv2dWgmemWgsl): a
//   workgroup stages a (wg[1]·tm) × tk slab of im2col(x) and a tk × (wg[0]·tn) slab of w per K
//   step between two barriers; tilings sized from the limits (conv2dWgmemTilings).
// - 'f16=w' / 'f16=all': w (a constant) stored as halves, made once at load (kernels/f16.ts);
//   'w' widens them to f32 (any adapter), 'all' computes in f16 (needs shader-f16).
// - 'gemm,generic' (groups 1, channels in fours, constant w; any adapter): the shape-generic
//   kernels, one pipeline for every plain 1×1 conv of a model (kernels/pointwise-generic.ts) and
//   one for every other conv (kernels/conv-generic.ts), for a cold start.
// - 'sg' on any subgroup size from 4 to 64: 4 lanes load one weight row each and every lane
//   reads them by subgroupBroadcast from lanes 0..3; a wider subgroup's other lanes load copies
//   of row (lane mod 4) that nobody reads (Conv2dConfig.sgWide).
//
// Variant for SwiftShader's peak (docs/kernels-gpu.md):
// - 'pk': w (a constant) packed at compile time into the order the register loop reads it,
//   [groups·⌈Cog/tn⌉, K, tn] (Conv2dConfig.packW): a channel block's tn weights of consecutive
//   k are contiguous, so the loop streams its own block instead of striding Cout per k (as
//   matmul's 'pk'). Direct or gemm path, with or without 'sg' and 'f16=w'; not with 'wgmem'.

import {
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type Lowering,
  type OpDef,
  type Shape,
  type TuneSpace,
  activationRef,
  activationWgsl,
  ceilDiv,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
} from './kernel.js';
import { depthwiseTuneCandidates, lowerDepthwise } from './depthwise.js';
import { XYZW, actTWgsl, ceilPow2, range, u, vecType, wgsl, workgroupIndex } from './wgsl.js';
import { defineVariant } from './variant.js';
import { type F16Mode, UNPACK_F16_WGSL, toF16Words } from './f16.js';
import { lowerConvGeneric } from './conv-generic.js';
import { type Conv2dAttrs, type Conv2dGeometry, conv2dGeometry, isPointwise, isPosInt } from './conv-geometry.js';
import { lowerPointwiseGeneric } from './pointwise-generic.js';

// ---- kernel family -------------------------------------------------------------------------------

export type Conv2dPath = 'direct' | 'gemm';

export interface Conv2dConfig extends Conv2dGeometry {
  path: Conv2dPath;
  /** Output pixels per invocation (direct: along one output row; gemm: consecutive rows of M). */
  tm: number;
  /** Output channels per invocation, within one group (a multiple of 4 when vec4). */
  tn: number;
  /** Workgroup shape: [channel blocks, pixel blocks]. */
  wg: [number, number];
  /** w, bias, residual and y read/written as vec4 along Cout. */
  vec4: boolean;
  /** x read as vec4 along Cin. */
  xVec4: boolean;
  /** 1×1, stride 1, no padding, gemm path: A is x viewed as [N·H·W, Cin]. */
  pointwise: boolean;
  /**
   * Subgroup sharing of w (0 = off, else the device's fixed subgroup size S = 4; gemm path only,
   * whose loops have no divergent exits; needs vec4, xVec4 and wg[0] = 1, so a subgroup's lanes
   * share their channel block): per step of 4 input
   * channels lane l loads weight row ci + l once and subgroupBroadcast hands it to every lane,
   * instead of each lane loading all four (see kernels/matmul.ts `sg`).
   */
  sg: number;
  /** The device's subgroups may be wider than `sg`: lanes then load weight row ci + (lane mod sg). */
  sgWide: boolean;
  /**
   * Implicit GEMM through workgroup memory (gemm path, for real GPUs): the workgroup stages a
   * (wg[1]·tm) × tk slab of the im2col of x and a tk × (wg[0]·tn) slab of w per K step, with
   * two barriers per step (conv2dWgmemWgsl). 0 = off, else the K step tk.
   */
  tk: number;
  /** w in half precision (kernels/f16.ts): 'w' halves widened to f32, 'all' f16 arithmetic. */
  f16: F16Mode;
  /**
   * w read in the packed layout [groups·cb, K, tn] (cb = ⌈Cog/tn⌉, K = KH·KW·Cig, zeros past
   * Cog), made at compile time by packConvWeights (Lowering.constLayouts): block nb's weights for
   * k are the tn/4 vec4s at (nb·K + k)·tn/4. Needs vec4 and no workgroup memory.
   */
  packW: boolean;
  /** Workgroups along x of the dispatch grid (see grid()). */
  gridX: number;
}

/**
 * Invocation counts of a config: channel blocks (all groups) and pixel blocks, and the workgroup
 * grid wgx × wgy. With workgroup memory (tk > 0) a block is a workgroup's tile: (wg[0]·tn)
 * channels of one group × (wg[1]·tm) rows of M.
 */
function blocks(c: Conv2dConfig) {
  if (c.tk) {
    const cb = ceilDiv(c.cog, c.tn * c.wg[0]);
    const nb = c.groups * cb;
    const mb = ceilDiv(c.n * c.oh * c.ow, c.tm * c.wg[1]);
    return { cb, pb: 0, nb, mb, wgx: nb, wgy: mb };
  }
  const cb = ceilDiv(c.cog, c.tn);
  const pb = ceilDiv(c.ow, c.tm); // direct: pixel blocks per output row
  const nb = c.groups * cb;
  const mb = c.path === 'direct' ? c.n * c.oh * pb : ceilDiv(c.n * c.oh * c.ow, c.tm);
  return { cb, pb, nb, mb, wgx: ceilDiv(nb, c.wg[0]), wgy: ceilDiv(mb, c.wg[1]) };
}

/** WGSL pieces shared by both generators: weight loads, the f16 conversions, types. */
function precision(c: Conv2dConfig) {
  const full = c.f16 === 'all';
  return {
    full,
    /** A vec4 (or scalar) load of w at `i`, widened from halves for 'w'. */
    ldw: (i: string) => (c.f16 === 'none' ? `w[${i}]` : `ldw(${i})`),
    /** x's value `e` (of type vec4 when xVec4) converted for the arithmetic. */
    cvx: (e: string) => (full ? `${c.xVec4 ? 'vec4<f16>' : 'f16'}(${e})` : e),
    /** The accumulator type, and an accumulator as f32. */
    accT: full ? 'vec4<f16>' : vecType(c.vec4),
    acc32: (a: string) => (full ? `vec4<f32>(${a})` : a),
    /** w's binding type and the WGSL that declares ldw. */
    wType: c.f16 === 'w' ? 'vec2<u32>' : full ? 'vec4<f16>' : vecType(c.vec4),
    decls: `${full ? 'enable f16;\n' : ''}${c.f16 === 'w' ? `${UNPACK_F16_WGSL}\nfn ldw(i: u32) -> vec4<f32> { return ldw4(w[i]); }` : full ? 'fn ldw(i: u32) -> vec4<f16> { return w[i]; }' : ''}`,
  };
}

function conv2dWgsl(c: Conv2dConfig): string {
  if (c.tk) return conv2dWgmemWgsl(c);
  const P = precision(c);
  const { cb, pb, nb, mb, wgx } = blocks(c);
  const V = c.vec4 ? 4 : 1; // channels per accumulator
  const XV = c.xVec4 ? 4 : 1; // ci per x load
  const T = vecType(c.vec4);
  const XT = vecType(c.xVec4);
  const nAcc = c.tn / V;
  const I = range(c.tm),
    J = range(nAcc),
    S = range(XV);
  const padded = c.pad.some((p) => p > 0);
  const direct = c.path === 'direct';
  const m = c.n * c.oh * c.ow;
  const coutV = c.cout / V;
  const L: string[] = [];

  // Pixel rows of the tile: `q{i}` is the (clamped, always valid) output pixel it reads for,
  // `live{i}` whether row i exists, `o{i}` its output pixel index.
  if (direct) {
    L.push(
      `  let ox0 = (mb % ${u(pb)}) * ${u(c.tm)};`,
      `  let r = mb / ${u(pb)};`,
      `  let oy = r % ${u(c.oh)};`,
      `  let img = r / ${u(c.oh)};`,
    );
    L.push(`  let iy0 = i32(oy * ${u(c.sh)}) - ${c.pad[0]};`);
    for (const i of I) {
      L.push(`  let ix${i}0 = i32(min(ox0 + ${u(i)}, ${u(c.ow - 1)}) * ${u(c.sw)}) - ${c.pad[1]};`);
      L.push(
        `  let live${i} = ox0 + ${u(i)} < ${u(c.ow)};`,
        `  let o${i} = (img * ${u(c.oh)} + oy) * ${u(c.ow)} + ox0 + ${u(i)};`,
      );
    }
  } else {
    for (const i of I) {
      L.push(
        `  let o${i} = mb * ${u(c.tm)} + ${u(i)};`,
        `  let live${i} = o${i} < ${u(m)};`,
        `  let q${i} = min(o${i}, ${u(m - 1)});`,
      );
      if (!c.pointwise) {
        L.push(`  let ix${i}0 = i32((q${i} % ${u(c.ow)}) * ${u(c.sw)}) - ${c.pad[1]};`);
        L.push(`  let iy${i}0 = i32((q${i} / ${u(c.ow)} % ${u(c.oh)}) * ${u(c.sh)}) - ${c.pad[0]};`);
        L.push(`  let img${i} = q${i} / ${u(c.ow * c.oh)};`);
      }
    }
  }
  // Output channel columns: col{j} is the first channel (of V) of accumulator j, clamped into
  // the group for reading; `c0 + j·V < Cog` says whether it is written.
  L.push(`  let g = nb / ${u(cb)};`, `  let c0 = (nb % ${u(cb)}) * ${u(c.tn)};`);
  for (const j of J) L.push(`  let col${j} = g * ${u(c.cog)} + min(c0 + ${u(j * V)}, ${u(c.cog - V)});`);
  if (c.packW)
    L.push(`  let pw = nb * ${u((c.kh * c.kw * c.cig * c.tn) / 4)};  // this channel block's packed weights`);
  for (const i of I) for (const j of J) L.push(`  var acc${i}_${j} = ${P.accT}(0.0);`);

  // The ci loop for one (ky, kx): a{i} is row i's x offset at ci = 0, ok{i} whether it is inside.
  const inner = (ind: string, check: boolean): string[] => {
    const R: string[] = [];
    R.push(`${ind}for (var ci = 0u; ci < ${u(c.cig)}; ci += ${u(XV)}) {`);
    for (const i of I) {
      const load = `x[(a${i} + ci)${XV > 1 ? ' / 4u' : ''}]`;
      R.push(`${ind}  let xa${i} = ${P.cvx(check ? `select(${XT}(0.0), ${load}, ok${i})` : load)};`);
    }
    // A weight row's stride and the vec4 of accumulator j in it: Cout/4 and col{j}/4 in HWIO,
    // tn/4 and j in the packed block (based at pw).
    const rowV = c.packW ? c.tn / 4 : coutV;
    const wBase = c.packW ? 'pw + ' : '';
    const wCol = (j: number) => (c.packW ? u(j) : `col${j}${V > 1 ? ' / 4u' : ''}`);
    if (c.sg) {
      R.push(`${ind}  let wl = ${wBase}(kb + ci + ${c.sgWide ? `(sl % ${u(c.sg)})` : 'sl'}) * ${u(rowV)};`);
      for (const j of J) R.push(`${ind}  let wl${j} = ${P.ldw(`wl + ${wCol(j)}`)};`);
    } else {
      R.push(`${ind}  let wr = ${wBase}(kb + ci) * ${u(rowV)};`);
    }
    for (const s of S) {
      for (const j of J) {
        R.push(
          c.sg
            ? `${ind}  let b${s}_${j} = subgroupBroadcast(wl${j}, ${u(s)});`
            : `${ind}  let b${s}_${j} = ${P.ldw(`wr + ${u(s * rowV)} + ${wCol(j)}`)};`,
        );
      }
      for (const i of I) {
        const xs = XV > 1 ? `xa${i}.${XYZW[s]}` : `xa${i}`;
        for (const j of J) R.push(`${ind}  acc${i}_${j} += ${xs} * b${s}_${j};`);
      }
    }
    R.push(`${ind}}`);
    return R;
  };

  if (c.pointwise) {
    L.push(`  let kb = 0u;`);
    for (const i of I) L.push(`  let a${i} = q${i} * ${u(c.cin)} + g * ${u(c.cig)};`);
    L.push(...inner('  ', false));
  } else {
    L.push(`  for (var ky = 0u; ky < ${u(c.kh)}; ky++) {`);
    if (direct) {
      L.push(`    let iy = iy0 + i32(ky * ${u(c.dh)});`);
      if (padded) L.push(`    if (iy < 0 || iy >= ${c.h}) { continue; }`);
      L.push(`    let rowb = (img * ${u(c.h)} + u32(iy)) * ${u(c.w)};`);
    }
    L.push(`    for (var kx = 0u; kx < ${u(c.kw)}; kx++) {`);
    for (const i of I) {
      L.push(`      let ix${i} = ix${i}0 + i32(kx * ${u(c.dw)});`);
      if (direct) {
        if (padded) L.push(`      let ok${i} = ix${i} >= 0 && ix${i} < ${c.w};`);
        L.push(`      let p${i} = rowb + u32(ix${i});`);
      } else {
        L.push(`      let iy${i} = iy${i}0 + i32(ky * ${u(c.dh)});`);
        if (padded) L.push(`      let ok${i} = iy${i} >= 0 && iy${i} < ${c.h} && ix${i} >= 0 && ix${i} < ${c.w};`);
        L.push(`      let p${i} = (img${i} * ${u(c.h)} + u32(iy${i})) * ${u(c.w)} + u32(ix${i});`);
      }
      // Outside the image p{i} is garbage (wrapped); read x[0..] instead and discard it.
      const a = `p${i} * ${u(c.cin)} + g * ${u(c.cig)}`;
      L.push(`      let a${i} = ${padded ? `select(0u, ${a}, ok${i})` : a};`);
    }
    L.push(`      let kb = (ky * ${u(c.kw)} + kx) * ${u(c.cig)};`);
    L.push(...inner('      ', padded));
    L.push('    }', '  }');
  }

  // Epilogue: bias (+ residual, at y's index) + activation, skipping rows and channels past the
  // edge (the residual is only read where y is written, so its reads stay in bounds too).
  for (const j of J) if (c.bias) L.push(`  let bias${j} = bias[col${j}${V > 1 ? ' / 4u' : ''}];`);
  for (const i of I) {
    L.push(`  if (live${i}${c.sg ? ' && mLive' : ''}) {`);
    for (const j of J) {
      const yi = `o${i} * ${u(coutV)} + col${j}${V > 1 ? ' / 4u' : ''}`;
      const a = P.acc32(`acc${i}_${j}`);
      const store = c.residual
        ? `{ let yi = ${yi}; y[yi] = actT(${a} + bias${j} + residual[yi]); }`
        : `y[${yi}] = actT(${a}${c.bias ? ` + bias${j}` : ''});`;
      const partial = c.cog % c.tn !== 0 && (j + 1) * V > c.cog % c.tn;
      L.push(partial ? `    if (c0 + ${u(j * V)} < ${u(c.cog)}) { ${store} }` : `    ${store}`);
    }
    L.push('  }');
  }

  // With sg every lane must reach the broadcasts: pixel blocks past the end are clamped and
  // their stores skipped (mLive) instead of returning early.
  const head = c.sg
    ? [
        `  let mb0 = (f / ${u(wgx)}) * ${u(c.wg[1])} + lid.y;  // pixel block`,
        `  if (nb >= ${u(nb)}) { return; }`,
        `  let mLive = mb0 < ${u(mb)};`,
        `  let mb = min(mb0, ${u(mb - 1)});`,
      ]
    : [
        `  let mb = (f / ${u(wgx)}) * ${u(c.wg[1])} + lid.y;  // pixel block`,
        `  if (nb >= ${u(nb)} || mb >= ${u(mb)}) { return; }`,
      ];
  return wgsl`// conv2d ${c.path}${c.pointwise ? ' pointwise' : ''}: ${c.tm} pixels x ${c.tn} channels per invocation${c.sg ? ', w shared by subgroup broadcasts' : ''}
#if ${c.sg}
enable subgroups;
#endif
${P.decls}
${activationWgsl(c.act)}
${actTWgsl(c.vec4)}
@group(0) @binding(0) var<storage, read> x: array<${XT}>;  // input   [${c.n},${c.h},${c.w},${c.cin}] NHWC
@group(0) @binding(1) var<storage, read> w: array<${P.wType}>;  // weights [${c.kh},${c.kw},${c.cig},${c.cout}] HWIO${c.packW ? `, packed [${c.groups * cb}, ${c.kh * c.kw * c.cig}, ${c.tn}]` : ''}${c.f16 !== 'none' ? ', as halves' : ''}
#if ${c.bias}
@group(0) @binding(2) var<storage, read> bias: array<${T}>;  // bias    [${c.cout}]
#endif
#if ${c.residual}
@group(0) @binding(3) var<storage, read> residual: array<${T}>;  // residual [${c.n},${c.oh},${c.ow},${c.cout}] NHWC
#endif
@group(0) @binding(${2 + Number(c.bias) + Number(c.residual)}) var<storage, read_write> y: array<${T}>;  // output  [${c.n},${c.oh},${c.ow},${c.cout}] NHWC

@compute @workgroup_size(${c.wg[0]}, ${c.wg[1]})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>${c.sg ? ', @builtin(subgroup_invocation_id) sl: u32' : ''}) {
  let f = ${workgroupIndex(c.gridX)};
  let nb = ${c.sg ? `f % ${u(wgx)}` : `(f % ${u(wgx)}) * ${u(c.wg[0])} + lid.x`};  // channel block (group-major)
${head.join('\n')}
${L.join('\n')}
}
`;
}

/**
 * Implicit GEMM through workgroup memory (Conv2dConfig.tk > 0), for real GPUs. A workgroup owns
 * a tile of BM = wg[1]·tm rows of M (output pixels) × BN = wg[0]·tn channels of one group; per
 * K step of tk it stages As = im2col(x)[BM, tk] (vec4 along K when Cin/groups % 4 == 0: four
 * consecutive k share the tap and are contiguous input channels) and Bs = w[tk, BN] (vec4
 * along Cout when vec4), barrier, each invocation multiplies its tm × tn register tile out of
 * them, barrier. Loads outside the image, past M, K or the group's channels are zeros (their
 * indices clamped into bounds); every invocation reaches every barrier (the only early exit is
 * a whole workgroup past the end of the grid).
 */
function conv2dWgmemWgsl(c: Conv2dConfig): string {
  const P = precision(c);
  const { cb, nb, mb } = blocks(c);
  const V = c.vec4 ? 4 : 1;
  const XV = c.xVec4 ? 4 : 1;
  const T = vecType(c.vec4);
  const XT = vecType(c.xVec4);
  const ST = P.full ? 'f16' : 'f32';
  const AT = c.xVec4 ? `vec4<${ST}>` : ST;
  const BT = c.vec4 ? `vec4<${ST}>` : ST;
  const nAcc = c.tn / V;
  const BM = c.wg[1] * c.tm,
    BN = c.wg[0] * c.tn,
    WG = c.wg[0] * c.wg[1];
  const K = c.kh * c.kw * c.cig;
  const m = c.n * c.oh * c.ow;
  const TKX = c.tk / XV,
    BNV = BN / V;
  const coutV = c.cout / V;
  const padded = c.pad.some((p) => p > 0);
  const L: string[] = [];
  L.push(
    `  let g = nbk / ${u(cb)};`,
    `  let c0 = (nbk % ${u(cb)}) * ${u(BN)};  // first channel of the tile, in group g`,
  );
  L.push(`  let m0 = mbk * ${u(BM)};`);
  for (const i of range(c.tm)) for (const j of range(nAcc)) L.push(`  var acc${i}_${j} = ${P.accT}(0.0);`);
  L.push(`  for (var k0 = 0u; k0 < ${u(K)}; k0 += ${u(c.tk)}) {`);
  // im2col slab: element e is row e / TKX, k = k0 + (e % TKX)·XV.
  L.push(`    for (var e = li; e < ${u(BM * TKX)}; e += ${u(WG)}) {`);
  L.push(`      let mr = m0 + e / ${u(TKX)};`, `      let k = k0 + (e % ${u(TKX)}) * ${u(XV)};`);
  L.push(`      let q = min(mr, ${u(m - 1)});`, `      let kc = min(k, ${u(K - XV)});`);
  L.push(
    `      let ci = kc % ${u(c.cig)};`,
    `      let kx = (kc / ${u(c.cig)}) % ${u(c.kw)};`,
    `      let ky = kc / ${u(c.cig * c.kw)};`,
  );
  L.push(`      let iy = i32((q / ${u(c.ow)} % ${u(c.oh)}) * ${u(c.sh)} + ky * ${u(c.dh)}) - ${c.pad[0]};`);
  L.push(`      let ix = i32((q % ${u(c.ow)}) * ${u(c.sw)} + kx * ${u(c.dw)}) - ${c.pad[1]};`);
  const inside = padded ? ` && iy >= 0 && iy < ${c.h} && ix >= 0 && ix < ${c.w}` : '';
  L.push(`      let ok = mr < ${u(m)} && k < ${u(K)}${inside};`);
  L.push(
    `      let p = ((q / ${u(c.ow * c.oh)}) * ${u(c.h)} + u32(max(iy, 0))) * ${u(c.w)} + u32(max(ix, 0));`,
    `      let xi = select(0u, p * ${u(c.cin)} + g * ${u(c.cig)} + ci, ok)${XV > 1 ? ' / 4u' : ''};`,
  );
  L.push(`      As[e] = ${P.cvx(`select(${XT}(0.0), x[xi], ok)`)};`);
  L.push('    }');
  // weight slab: element e is k = k0 + e / BNV, channel c0 + (e % BNV)·V.
  L.push(`    for (var e = li; e < ${u(c.tk * BNV)}; e += ${u(WG)}) {`);
  L.push(`      let k = k0 + e / ${u(BNV)};`, `      let cc = c0 + (e % ${u(BNV)}) * ${u(V)};`);
  L.push(`      let ok = k < ${u(K)} && cc < ${u(c.cog)};`);
  L.push(
    `      let wi = (min(k, ${u(K - 1)}) * ${u(c.cout)} + g * ${u(c.cog)} + min(cc, ${u(c.cog - V)}))${V > 1 ? ' / 4u' : ''};`,
  );
  L.push(`      Bs[e] = select(${BT}(0.0), ${P.ldw('wi')}, ok);`);
  L.push('    }');
  L.push('    workgroupBarrier();');
  L.push(`    for (var kq = 0u; kq < ${u(TKX)}; kq++) {`);
  for (const i of range(c.tm)) L.push(`      let a${i} = As[(lid.y * ${u(c.tm)} + ${u(i)}) * ${u(TKX)} + kq];`);
  for (const s of range(XV)) {
    L.push('      {');
    for (const j of range(nAcc))
      L.push(`        let b${j} = Bs[(kq * ${u(XV)} + ${u(s)}) * ${u(BNV)} + lid.x * ${u(nAcc)} + ${u(j)}];`);
    for (const i of range(c.tm)) {
      const a = XV > 1 ? `a${i}.${XYZW[s]}` : `a${i}`;
      for (const j of range(nAcc)) L.push(`        acc${i}_${j} += ${a} * b${j};`);
    }
    L.push('      }');
  }
  L.push('    }');
  L.push('    workgroupBarrier();');
  L.push('  }');
  // Epilogue: rows past M and channels past the group are skipped.
  for (const j of range(nAcc)) {
    L.push(`  let cc${j} = c0 + lid.x * ${u(c.tn)} + ${u(j * V)};`);
    L.push(`  let col${j} = g * ${u(c.cog)} + min(cc${j}, ${u(c.cog - V)});`);
    if (c.bias) L.push(`  let bias${j} = bias[col${j}${V > 1 ? ' / 4u' : ''}];`);
  }
  for (const i of range(c.tm)) {
    L.push(`  let o${i} = m0 + lid.y * ${u(c.tm)} + ${u(i)};`);
    L.push(`  if (o${i} < ${u(m)}) {`);
    for (const j of range(nAcc)) {
      const yi = `o${i} * ${u(coutV)} + col${j}${V > 1 ? ' / 4u' : ''}`;
      const a = P.acc32(`acc${i}_${j}`);
      const store = c.residual
        ? `let yi = ${yi}; y[yi] = actT(${a} + bias${j} + residual[yi]);`
        : `y[${yi}] = actT(${a}${c.bias ? ` + bias${j}` : ''});`;
      L.push(`    if (cc${j} < ${u(c.cog)}) { ${store} }`);
    }
    L.push('  }');
  }
  return wgsl`// conv2d implicit GEMM through workgroup memory: ${BM} pixels x ${BN} channels per workgroup, K step ${c.tk}, ${c.tm}x${c.tn} per invocation
${P.decls}
${activationWgsl(c.act)}
${actTWgsl(c.vec4)}
@group(0) @binding(0) var<storage, read> x: array<${XT}>;  // input   [${c.n},${c.h},${c.w},${c.cin}] NHWC
@group(0) @binding(1) var<storage, read> w: array<${P.wType}>;  // weights [${c.kh},${c.kw},${c.cig},${c.cout}] HWIO = [K = ${K}, Cout]${c.f16 !== 'none' ? ', as halves' : ''}
#if ${c.bias}
@group(0) @binding(2) var<storage, read> bias: array<${T}>;  // bias    [${c.cout}]
#endif
#if ${c.residual}
@group(0) @binding(3) var<storage, read> residual: array<${T}>;  // residual [${c.n},${c.oh},${c.ow},${c.cout}] NHWC
#endif
@group(0) @binding(${2 + Number(c.bias) + Number(c.residual)}) var<storage, read_write> y: array<${T}>;  // output  [${c.n},${c.oh},${c.ow},${c.cout}] NHWC
var<workgroup> As: array<${AT}, ${BM * TKX}>;  // im2col(x) slab [${BM}, ${c.tk}]
var<workgroup> Bs: array<${BT}, ${c.tk * BNV}>;  // w slab [${c.tk}, ${BN}]

@compute @workgroup_size(${c.wg[0]}, ${c.wg[1]})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let f = ${workgroupIndex(c.gridX)};
  if (f >= ${u(nb * mb)}) { return; }  // whole workgroups only
  let nbk = f % ${u(nb)};  // channel tile (group-major)
  let mbk = f / ${u(nb)};  // pixel tile
${L.join('\n')}
}
`;
}

export const conv2dFamily: KernelFamily<Conv2dConfig> = { name: 'conv2d', wgsl: conv2dWgsl };

// ---- choosing a config ------------------------------------------------------------------------

/** ctx.prefer.conv2d: the path, the register tile tm × tn, subgroup-shared weights; unset fields are the heuristic's. */
export interface Conv2dVariant {
  path?: Conv2dPath;
  tm?: number;
  tn?: number;
  /** Share w across a subgroup (Conv2dConfig.sg); the size comes from the device. */
  sg?: boolean;
  /** Stage im2col(x) and w in workgroup memory (gemm path; Conv2dConfig.tk), K step tk. */
  wgmem?: boolean;
  /** Workgroup shape [channel blocks, pixel blocks] (written wg=<x>x<y>). */
  wgx?: number;
  wgy?: number;
  tk?: number;
  /** w (a constant) in half precision (Conv2dConfig.f16). */
  f16?: 'w' | 'all';
  /** The shape-generic kernels (kernels/pointwise-generic.ts, kernels/conv-generic.ts): one pipeline for many layers. */
  generic?: boolean;
  /** w (a constant) packed into the order the loop reads it (Conv2dConfig.packW). */
  pk?: boolean;
}

export const conv2dVariant = defineVariant<Conv2dVariant>('conv2d', [
  { kind: 'enum', key: 'path', values: ['direct', 'gemm'], bare: true },
  { kind: 'pair', name: 'tile', keys: ['tm', 'tn'], min: [1, 1] },
  { kind: 'flag', key: 'sg' },
  { kind: 'flag', key: 'wgmem' },
  { kind: 'pair', name: 'wg', keys: ['wgx', 'wgy'], min: [1, 1] },
  { kind: 'int', key: 'tk', min: 1 },
  { kind: 'enum', key: 'f16', values: ['w', 'all'] },
  { kind: 'flag', key: 'generic' },
  { kind: 'flag', key: 'pk' },
]);

/**
 * Workgroup-memory tilings for real GPUs (gemm path), each kept only where the device's limits
 * allow it: wg[0]·wg[1] ≤ maxComputeInvocationsPerWorkgroup and the slabs, 4·tk·(wg[1]·tm +
 * wg[0]·tn) bytes, ≤ maxComputeWorkgroupStorageSize. 64×64 tiles of 16×16 invocations of 4×4
 * (K step 16: 8 KiB), 64×64 of 8×8 invocations of 8×8 (K step 8: 4 KiB), 32×32 of 8×8 of 4×4
 * (K step 32: 8 KiB).
 */
export function conv2dWgmemTilings(limits: LowerContext['limits']): string[] {
  const all: [number, number, number, number, number][] = [
    [4, 4, 16, 16, 16],
    [8, 8, 8, 8, 8],
    [4, 4, 8, 8, 32],
  ];
  return all
    .filter(
      ([tm, tn, wx, wy, tk]) =>
        wx * wy <= limits.maxComputeInvocationsPerWorkgroup &&
        4 * tk * (wy * tm + wx * tn) <= limits.maxComputeWorkgroupStorageSize,
    )
    .map(([tm, tn, wx, wy, tk]) => `gemm,tile=${tm}x${tn},wgmem,wg=${wx}x${wy},tk=${tk}`);
}

/** Whether the 'sg' variant (4 lanes share w) runs right on subgroups of min..max lanes in a workgroup of 64. */
export function conv2dSgOk(min: number, max: number): boolean {
  return min >= 4 && max >= min && 64 % max === 0;
}

/** A Conv2dVariant plus the workgroup shape (tests and benchmarks force it; the tuner does not). */
export interface Conv2dTiling extends Conv2dVariant {
  wg?: [number, number];
}

/**
 * The config for `geo` on `path` (default: gemm when groups == 1, else direct), with tile sizes
 * from `t` or the heuristic below, 64 invocations per workgroup, as many along channels as there
 * are channel blocks (up to 16).
 *
 * Heuristic tiles, from a SwiftShader run on ResNet-50-like layers (noisy, 2 shared cores):
 * gemm tm×tn = 4×8 was about 1.4-1.6× faster than 4×4 on 3×3 and 7×7 convs; 8×8 was about as fast
 * but took 17-30 s to compile on padded convs (≈0.1 s for 4×8), so only the pointwise
 * specialisation (≈0.2 s) gets 8×8. The direct path keeps 4×4: it serves grouped convs with
 * few channels per group, where a wider channel tile is wasted.
 */
export function conv2dConfig(
  geo: Conv2dGeometry,
  t0: Conv2dTiling,
  maxPerDim: number,
  subgroupSize = 0,
  subgroupRange: readonly [number, number] = [subgroupSize, subgroupSize],
): Conv2dConfig {
  const t = { ...sgDefault(geo, t0, subgroupSize), ...t0 };
  const wgGiven =
    t.wg ?? (t.wgx !== undefined && t.wgy !== undefined ? ([t.wgx, t.wgy] as [number, number]) : undefined);
  for (const v of [t.tm, t.tn, t.tk, ...(wgGiven ?? [])])
    if (v !== undefined && !isPosInt(v))
      throw new Error(`conv2d tiling ${JSON.stringify(t)}: sizes must be positive integers`);
  const path = t.path ?? (geo.groups === 1 ? 'gemm' : 'direct');
  const wgmem = !!t.wgmem;
  if (wgmem && (path !== 'gemm' || t.sg))
    throw new Error(`conv2d 'wgmem' is a variant of the gemm path, without 'sg' (got ${JSON.stringify(t0)})`);
  if (!wgmem && t.tk !== undefined) throw new Error(`conv2d 'tk' is the K step of 'wgmem' (got ${JSON.stringify(t0)})`);
  const tk = wgmem ? (t.tk ?? 16) : 0;
  const pointwise = path === 'gemm' && isPointwise(geo);
  const wide = path === 'gemm' && geo.cog % 8 === 0 && !wgmem;
  const tn = t.tn ?? (wide ? 8 : geo.cog % 4 === 0 ? 4 : Math.min(geo.cog, 4));
  const vec4 = geo.cog % 4 === 0 && tn % 4 === 0;
  const tm = wgmem
    ? (t.tm ?? 4)
    : (t.tm ?? Math.min(pointwise && wide ? 8 : 4, path === 'direct' ? geo.ow : geo.n * geo.oh * geo.ow));
  const nbCount = geo.groups * ceilDiv(geo.cog, tn);
  const wgx = Math.min(16, ceilPow2(nbCount));
  // vec4 loads of x along K: four consecutive k are one tap's contiguous input channels.
  const xVec4 = geo.cig % 4 === 0 && tk % 4 === 0;
  const [sgMin, sgMax] = subgroupRange;
  if (t.sg && !(conv2dSgOk(sgMin, sgMax) && vec4 && xVec4 && path === 'gemm')) {
    throw new Error(
      `conv2d 'sg' needs the gemm path, subgroups of 4 to 64 lanes (this device: ${sgMin ? `${sgMin}..${sgMax}` : 'none'}), Cin/groups and the channel tile multiples of 4`,
    );
  }
  const f16: F16Mode = t.f16 ?? 'none';
  if (f16 !== 'none' && !vec4) {
    throw new Error(
      `conv2d 'f16' reads w as vec4s: Cout/groups (${geo.cog}) and the channel tile (${tn}) must be multiples of 4`,
    );
  }
  if (t.pk && (!vec4 || wgmem)) {
    throw new Error(
      `conv2d 'pk' reads packed w as vec4s without workgroup memory: Cout/groups (${geo.cog}) and the channel tile (${tn}) must be multiples of 4, and no 'wgmem'`,
    );
  }
  const wg = t.sg ? ([1, 64] as [number, number]) : (wgGiven ?? (wgmem ? [8, 8] : [wgx, 64 / wgx]));
  const cfg: Conv2dConfig = {
    ...geo,
    pad: [...geo.pad],
    path,
    tm,
    tn,
    wg,
    vec4,
    xVec4,
    pointwise,
    sg: t.sg ? 4 : 0,
    sgWide: !!t.sg && sgMax > 4,
    tk,
    f16,
    packW: !!t.pk,
    gridX: 1,
  };
  const b = blocks(cfg);
  cfg.gridX = grid(b.wgx * b.wgy, maxPerDim)[0];
  return cfg;
}

/**
 * The heuristic's subgroup choice, when nothing is forced: where the device has a fixed
 * subgroup size of 4 (SwiftShader), gemm convs over at least 28×28 output pixels share their
 * weights by subgroup broadcasts. Tuned on ResNet-50 and MobileNetV2 at 224 in Chromium's
 * SwiftShader (npx cnnlab tune): 'gemm,tile=4x32,sg' / 'gemm,tile=8x16,sg' won 1.1-1.6× over 4×8 there,
 * while on 7×7 and 14×14 maps the plain tiles mostly held on.
 */
function sgDefault(geo: Conv2dGeometry, t: Conv2dTiling, subgroupSize: number): Conv2dTiling {
  if (
    t.path !== undefined ||
    t.tm !== undefined ||
    t.tn !== undefined ||
    t.wg !== undefined ||
    t.sg !== undefined ||
    t.wgmem !== undefined ||
    t.wgx !== undefined ||
    t.tk !== undefined
  )
    return {};
  if (
    subgroupSize !== 4 ||
    geo.groups !== 1 ||
    geo.cig % 4 !== 0 ||
    geo.cog % 16 !== 0 ||
    geo.n * geo.oh * geo.ow < 784
  )
    return {};
  return isPointwise(geo)
    ? { path: 'gemm', tm: 8, tn: 16, sg: true }
    : { path: 'gemm', tm: 4, tn: geo.cog % 32 === 0 ? 32 : 16, sg: true };
}

export function conv2dDispatchGrid(c: Conv2dConfig, maxPerDim: number): [number, number, number] {
  const b = blocks(c);
  return grid(b.wgx * b.wgy, maxPerDim);
}

export function conv2dFlops(g: Conv2dGeometry): number {
  return 2 * g.n * g.oh * g.ow * g.cout * g.kh * g.kw * g.cig;
}

function lowerConv2d(a: Conv2dAttrs, inputs: Shape[], outputs: Shape[], ctx: LowerContext): Lowering {
  const geo = conv2dGeometry(a, inputs);
  const tiling = conv2dVariant.of(ctx.prefer);
  // Depthwise (one input channel per group) has its own kernel unless a path is forced; that
  // kernel has no residual epilogue, so a depthwise conv with a residual stays here (direct path,
  // the default for grouped convs).
  if (!tiling && !geo.residual && geo.groups > 1 && geo.groups === geo.cin)
    return lowerDepthwise(a, inputs, outputs, ctx);
  const maxPerDim = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (tiling?.generic) return lowerGeneric(geo, tiling, inputs, ctx);
  const sgSize = ctx.subgroupSize ?? 0;
  const cfg = conv2dConfig(geo, tiling ?? {}, maxPerDim, sgSize, [
    ctx.subgroupMinSize ?? sgSize,
    ctx.subgroupMaxSize ?? sgSize,
  ]);
  const name = () => conv2dVariant.format(tiling ?? {});
  if (cfg.packW && !ctx.constInputs?.[1])
    throw new Error(`conv2d variant "${name()}": 'pk' needs the weights to be a graph constant`);
  if (cfg.f16 !== 'none' && !ctx.constInputs?.[1])
    throw new Error(`conv2d variant "${name()}": 'f16' needs the weights to be a graph constant`);
  if (cfg.f16 === 'all' && !ctx.shaderF16)
    throw new Error(
      `conv2d variant "${name()}": 'f16=all' needs the device feature shader-f16, which this adapter lacks`,
    );
  if (cfg.tk) {
    const inv = cfg.wg[0] * cfg.wg[1];
    const wgBytes = (cfg.f16 === 'all' ? 2 : 4) * cfg.tk * (cfg.wg[1] * cfg.tm + cfg.wg[0] * cfg.tn);
    if (inv > ctx.limits.maxComputeInvocationsPerWorkgroup || wgBytes > ctx.limits.maxComputeWorkgroupStorageSize) {
      throw new Error(
        `conv2d variant "${name()}": ${inv} invocations and ${wgBytes} bytes of workgroup memory, over this device's ` +
          `${ctx.limits.maxComputeInvocationsPerWorkgroup} and ${ctx.limits.maxComputeWorkgroupStorageSize}`,
      );
    }
  }
  const bindings = [
    input(0),
    input(1),
    ...(geo.bias ? [input(2)] : []),
    ...(geo.residual ? [input(3)] : []),
    output(0),
  ];
  const ysize = geo.n * geo.oh * geo.ow * geo.cout;
  const bytes =
    4 * (numel(inputs[0]) + numel(inputs[1]) + (geo.bias ? geo.cout : 0) + (geo.residual ? ysize : 0) + ysize);
  const wElems = numel(inputs[1]);
  return {
    dispatches: [
      makeDispatch(conv2dFamily, cfg, conv2dDispatchGrid(cfg, maxPerDim), bindings, { flops: conv2dFlops(geo), bytes }),
    ],
    constLayouts: weightLayouts(cfg, wElems),
  };
}

/** The compile-time relayouts of w: packed (Conv2dConfig.packW) and/or halves (f16). */
function weightLayouts(c: Conv2dConfig, wElems: number): Lowering['constLayouts'] {
  const half = c.f16 !== 'none';
  if (!c.packW && !half) return undefined;
  const K = c.kh * c.kw * c.cig;
  const f32Elems = c.packW ? c.groups * ceilDiv(c.cog, c.tn) * K * c.tn : wElems;
  return [
    {
      input: 1,
      layout: `${c.packW ? `hwio-blocks${c.tn}` : 'hwio'}${half ? '-f16' : ''}`,
      elements: half ? f32Elems / 2 : f32Elems,
      apply: (w: Float32Array) => {
        const packed = c.packW ? packConvWeights(w, K, c.groups, c.cog, c.tn) : w;
        return half ? toF16Words(packed) : packed;
      },
    },
  ];
}

/**
 * w [KH,KW,Cig,Cout] (HWIO, Cout = groups·cog), viewed as [K, Cout] → [groups·⌈cog/tn⌉, K, tn]:
 * block (g, b) holds channels g·cog + b·tn .. + tn − 1 of every k, zeros past the group's cog
 * (Conv2dConfig.packW).
 */
export function packConvWeights(w: Float32Array, K: number, groups: number, cog: number, tn: number): Float32Array {
  const cb = ceilDiv(cog, tn);
  const cout = groups * cog;
  const out = new Float32Array(groups * cb * K * tn);
  for (let g = 0; g < groups; g++) {
    for (let b = 0; b < cb; b++) {
      const c0 = g * cog + b * tn;
      const width = Math.min(tn, cog - b * tn);
      const base = (g * cb + b) * K * tn;
      for (let k = 0; k < K; k++) out.set(w.subarray(k * cout + c0, k * cout + c0 + width), base + k * tn);
    }
  }
  return out;
}

/**
 * The shape-generic kernels ('gemm,generic'): a conv without groups, constant w, channels in
 * fours; a plain 1×1 conv on kernels/pointwise-generic.ts, any other on kernels/conv-generic.ts.
 */
function lowerGeneric(geo: Conv2dGeometry, t: Conv2dVariant, inputs: Shape[], ctx: LowerContext): Lowering {
  const v = conv2dVariant.format(t);
  const { generic: _, path, tm, tn, ...rest } = t;
  const pointwise = isPointwise(geo);
  const tile = { tm: tm ?? (pointwise ? 8 : 4), tn: tn ?? (geo.cout % 8 === 0 ? 8 : 4) };
  if (
    (path !== undefined && path !== 'gemm') ||
    Object.values(rest).some((x) => x !== undefined) ||
    geo.groups !== 1 ||
    geo.cin % 4 !== 0 ||
    geo.cout % 4 !== 0 ||
    tile.tn % 4 !== 0 ||
    !ctx.constInputs?.[1]
  ) {
    throw new Error(
      `conv2d variant "${v}": 'generic' takes only gemm and tile=<tm>x<tn> (tn a multiple of 4), and a conv without groups, Cin and Cout multiples of 4, constant weights`,
    );
  }
  const ysize = geo.n * geo.oh * geo.ow * geo.cout;
  const bytes =
    4 * (numel(inputs[0]) + numel(inputs[1]) + (geo.bias ? geo.cout : 0) + (geo.residual ? ysize : 0) + ysize);
  if (!pointwise) {
    return lowerConvGeneric(geo, tile, ctx.limits.maxComputeWorkgroupsPerDimension, {
      flops: conv2dFlops(geo),
      bytes,
    });
  }
  return lowerPointwiseGeneric(
    { m: geo.n * geo.h * geo.w, cin: geo.cin, cout: geo.cout, bias: geo.bias, residual: geo.residual, act: geo.act },
    tile,
    ctx.limits.maxComputeWorkgroupsPerDimension,
    { flops: conv2dFlops(geo), bytes },
  );
}

// ---- reference ---------------------------------------------------------------------------------

/**
 * Plain 7-loop convolution (double accumulation): the oracle for both paths. The residual, when
 * given (bias then required, as in the op), is added before the activation.
 */
export function conv2dRef(
  a: Conv2dAttrs,
  x: HostTensor,
  w: HostTensor,
  bias?: HostTensor,
  residual?: HostTensor,
): HostTensor {
  if (residual && !bias)
    throw new ShapeError(
      `conv2d residual ${fmtShape(residual.shape)} needs a bias input before it (a zero one will do)`,
    );
  const g = conv2dGeometry(a, [x.shape, w.shape, ...(bias ? [bias.shape] : []), ...(residual ? [residual.shape] : [])]);
  const f = activationRef(g.act);
  const y = new Float32Array(g.n * g.oh * g.ow * g.cout);
  for (let n = 0; n < g.n; n++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        for (let co = 0; co < g.cout; co++) {
          const grp = Math.floor(co / g.cog);
          let s = bias ? bias.data[co] : 0;
          for (let ky = 0; ky < g.kh; ky++) {
            const iy = oy * g.sh - g.pad[0] + ky * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (let kx = 0; kx < g.kw; kx++) {
              const ix = ox * g.sw - g.pad[1] + kx * g.dw;
              if (ix < 0 || ix >= g.w) continue;
              for (let ci = 0; ci < g.cig; ci++) {
                s +=
                  x.data[((n * g.h + iy) * g.w + ix) * g.cin + grp * g.cig + ci] *
                  w.data[((ky * g.kw + kx) * g.cig + ci) * g.cout + co];
              }
            }
          }
          const yi = ((n * g.oh + oy) * g.ow + ox) * g.cout + co;
          y[yi] = f(residual ? s + residual.data[yi] : s);
        }
      }
    }
  }
  return { shape: [g.n, g.oh, g.ow, g.cout], data: y };
}

export const conv2dOp: OpDef<Conv2dAttrs> = {
  op: 'conv2d',
  /** x, w, then optional bias, then optional residual (which needs the bias before it). */
  arity: [2, 4],
  infer(a, inputs) {
    const g = conv2dGeometry(a, inputs);
    return [[g.n, g.oh, g.ow, g.cout]];
  },
  lower: lowerConv2d,
  ref: (a, [x, w, b, r]) => [conv2dRef(a, x, w, b, r)],
  tuneSpace: conv2dTuneSpace,
};

/**
 * Tuner candidates. The gemm path with tm ≥ 8 is left out for padded windows: its pipelines took
 * 15-30 s to compile on SwiftShader (per-row window tests), which would cost more cold start
 * than it could win; the direct path's 8-pixel tiles compile in ~0.2 s.
 */
function conv2dTuneSpace(a: Conv2dAttrs, inputs: Shape[], ctx: LowerContext): TuneSpace {
  const g = conv2dGeometry(a, inputs);
  // A depthwise conv with a residual is lowered here (direct), not by kernels/depthwise.ts.
  if (!g.residual && g.groups > 1 && g.groups === g.cin)
    return { family: 'depthwise', candidates: depthwiseTuneCandidates(a, inputs, ctx) };
  if (g.groups > 1) return { family: 'conv2d', candidates: ['direct,tile=4x4', 'direct,tile=8x4', 'direct,tile=4x8'] };
  const pointwise = isPointwise(g);
  const c = ['gemm,tile=4x8', 'gemm,tile=4x16', 'direct,tile=4x8', 'direct,tile=8x8', 'direct,tile=4x16'];
  if (pointwise) c.push('gemm,tile=8x8', 'gemm,tile=8x4');
  // One pipeline for every pointwise conv: less to build at a cold start, some run time lost.
  if (pointwise && g.cin % 4 === 0 && g.cog % 8 === 0 && ctx.constInputs?.[1]) c.push('gemm,tile=8x8,generic');
  // One pipeline for every other conv (window and shapes from a header): kernels/conv-generic.ts.
  if (!pointwise && g.cin % 4 === 0 && g.cout % 8 === 0 && ctx.constInputs?.[1]) c.push('gemm,tile=4x8,generic');
  // Workgroup-memory tiles for real GPUs, where a layer fills at least a 32×32 tile.
  if (g.n * g.oh * g.ow >= 32 && g.cog >= 32 && !ctx.cpuAdapter) c.push(...conv2dWgmemTilings(ctx.limits));
  // Half-precision weights where the adapter has shader-f16; the tuner's reference check drops
  // either precision where it breaks the tolerance.
  if (ctx.shaderF16 && ctx.constInputs?.[1] && g.cog % 4 === 0) {
    c.push('gemm,tile=4x8,f16=w', 'gemm,tile=4x8,f16=all');
    if (
      g.n * g.oh * g.ow >= 32 &&
      g.cog >= 32 &&
      !ctx.cpuAdapter &&
      ctx.limits.maxComputeInvocationsPerWorkgroup >= 256
    )
      c.push('gemm,tile=4x4,wgmem,wg=16x16,tk=16,f16=all');
  }
  const sgSize = ctx.subgroupSize ?? 0;
  if (conv2dSgOk(ctx.subgroupMinSize ?? sgSize, ctx.subgroupMaxSize ?? sgSize) && g.cig % 4 === 0 && g.cog % 16 === 0) {
    c.push(
      'gemm,tile=4x16,sg',
      'gemm,tile=4x32,sg',
      ...(pointwise ? ['gemm,tile=8x16,sg', ...(g.cog % 32 === 0 ? ['gemm,tile=8x32,sg'] : [])] : []),
    );
  }
  // Packed constant weights, for 1×1 convs only: 1.7-2.2× on a ResNet-50 1×1 conv to 512
  // channels on SwiftShader, within the noise on a 3×3 one (docs/kernels-gpu.md).
  if (pointwise && ctx.constInputs?.[1] && g.cog % 4 === 0) {
    const sg = conv2dSgOk(ctx.subgroupMinSize ?? sgSize, ctx.subgroupMaxSize ?? sgSize) && g.cig % 4 === 0;
    if (sg && g.cog % 16 === 0) c.push('gemm,tile=8x16,sg,pk', ...(g.cog % 32 === 0 ? ['gemm,tile=8x32,sg,pk'] : []));
    else c.push('gemm,tile=8x8,pk');
  }
  return { family: 'conv2d', candidates: c };
}
