// Backward kernels of conv2d: the input gradient (a transposed convolution), the weight gradient
// (a reduction over N·OH·OW), the bias gradient (a column sum), NHWC activations, HWIO weights.
// The index arithmetic is derived in docs/backward-conv.md; the forward op is kernels/conv2d.ts.
//
//   conv2d_grad_input   inputs [dy, w], attrs = conv2d's + xShape      → dx [N,H,W,Cin]
//     dx[n,iy,ix,g·Cig+ci] = Σ_{ky,kx,co<Cog} dy[n,oy,ox,g·Cog+co] · w[ky,kx,ci,g·Cog+co]
//     over the taps where oy = (iy + top − ky·dh)/sh and ox = (ix + left − kx·dw)/sw are whole
//     numbers inside the output.
//   conv2d_grad_weight  inputs [x, dy], attrs = conv2d's + wShape      → dw [KH,KW,Cin/g,Cout]
//     dw[ky,kx,ci,g·Cog+co] = Σ_{n,oy,ox} x[n, oy·sh − top + ky·dh, ox·sw − left + kx·dw, g·Cig+ci] · dy[n,oy,ox,g·Cog+co]
//   conv2d_grad_bias    inputs [dy]                                    → db [Cout] = Σ_{n,oy,ox} dy
//   `act` must be absent or 'none' (autodiff splits fused activations off before the rules run).
//
// conv2d_grad_input, two paths (ctx.prefer.conv2d_grad_input: 'conv' or 'gather'):
// - conv (the default at stride 1, except depthwise with a multiplier > 1): dx is a stride-1 forward conv of dy with the
//   weights flipped in space and transposed in channels, padded by (K−1)·d − pad per side. A small
//   dispatch (family `conv2d_flip_weight`) writes those weights to a scratch buffer and the
//   forward conv kernel (kernels/conv2d.ts, its own heuristic config: gemm, subgroup-shared
//   weights on SwiftShader; kernels/depthwise.ts for a depthwise conv) does the rest, so dx runs
//   as fast as the forward pass.
// - gather, family `conv2d_grad_input` (stride > 1, depthwise, or forced). An invocation owns tm
//   input pixels of one row that lie sw apart (ix = px + (b·tm + i)·sw for one phase px < sw) × tn
//   input channels of one group. Pixels of one phase agree on which kx taps hit a whole output
//   column, so the stride test is made once per (ky, kx) for the whole tile and a skipped tap
//   costs nothing; for a tap that hits, pixel i reads output column ox0 + i. The reduction runs
//   over the group's Cout channels, contiguous in both dy (NHWC) and w (HWIO): read as vec4 when
//   Cog % 4 == 0, each accumulator a vec4 folded at the end. Depthwise convs (groups = Cin) get
//   their own mapping: one group holds a single input channel, so the tile spans 4 neighbouring
//   channels (4 groups) instead, read as vec4 when the multiplier is 1 and Cin % 4 == 0, else
//   gathered lane by lane. `sg` (a tuner candidate, not a default) shares dy by subgroup
//   broadcasts (GradInputConfig.sg).
//
// conv2d_grad_weight, family `conv2d_grad_weight`. For one tap (ky, kx) the gradient is a GEMM
// dw_tap[Cig,Cog] = Xtap[M,Cig]ᵀ · dy[M,Cog] with M = N·OH·OW and Xtap the input pixels that tap
// reads. An invocation owns ta input channels × tb output channels of one tap and group, and
// walks M by output rows: a row whose input row is outside the image is skipped whole, and the
// columns whose input column is inside are computed once per invocation (oxLo..oxHi), so the
// inner loop has no bounds tests. `split` cuts the rows into that many contiguous chunks, one
// invocation each, written as partial sums to a scratch buffer [split, KH·KW·Cig·Cout] and added
// by a second dispatch (family `colsum`): more invocations for layers with few weights and many
// pixels. Depthwise convs get their own mapping: 4 neighbouring output channels per invocation
// (vec4 when the multiplier is 1 and Cout % 4 == 0) and a whole kernel row of KW taps, so each
// dy load feeds KW FMAs (a tap outside the image reads nothing: a select per tap, left out when
// the padding cannot reach the columns walked). With dilation 1 and stride < KW, neighbouring
// pixels share KW − sw input columns, kept in registers: sw new x loads per pixel.
//
// conv2d_grad_bias and the second pass share family `colsum`: column sums of a row-major [R, C]
// matrix, one invocation per (chunk of rows, 4 columns), vec4 when C % 4 == 0.
//
// No workgroup memory and no barriers anywhere: on SwiftShader register tiles and plain loads win
// (docs/swiftshader.md); what counts there is FMAs per load, which the tiles set.
//
// Choice: ctx.prefer.conv2d_grad_input ('conv', 'gather', 'gather,tile=<tm>x<tn>,sg'; a tile
// alone means gather) and ctx.prefer.conv2d_grad_weight ('tile=<ta>x<tb>,split=<s>,sg'),
// kernels/variant.ts syntax; the depthwise mappings have no tiles.

import {
  type BindingRef,
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type Lowering,
  type OpDef,
  type Shape,
  type TuneSpace,
  ceilDiv,
  expectRank,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
  temp,
} from '../kernel.js';
import { conv2dConfig, conv2dDispatchGrid, conv2dFamily, conv2dFlops } from '../conv2d.js';
import { type Conv2dAttrs, type Conv2dGeometry, conv2dGeometry } from '../conv-geometry.js';
import { lowerDepthwise } from '../depthwise.js';
import { defineVariant } from '../variant.js';
import { XYZW, flatMain, range, u, vecType, wgsl } from '../wgsl.js';

type Shape4 = [number, number, number, number];

export interface Conv2dGradInputAttrs extends Conv2dAttrs {
  /** The forward input's shape [N,H,W,Cin]: dy alone does not fix H and W when the stride is > 1. */
  xShape: Shape4;
}

export interface Conv2dGradWeightAttrs extends Conv2dAttrs {
  /** The forward weight's shape [KH,KW,Cin/groups,Cout]. */
  wShape: Shape4;
}

const WG = 64;

/** The forward geometry of a backward node, with dy checked against the forward output. */
function gradGeometry(op: string, a: Conv2dAttrs, x: Shape, w: Shape, dy: Shape): Conv2dGeometry {
  if (a.act !== undefined && a.act !== 'none') {
    throw new ShapeError(`${op} differentiates the linear conv only; got act '${a.act}' (split it off first)`);
  }
  const g = conv2dGeometry(a, [x, w]);
  const want = [g.n, g.oh, g.ow, g.cout];
  if (dy.length !== 4 || dy.some((d, i) => d !== want[i])) {
    throw new ShapeError(
      `${op}: dy ${fmtShape(dy)} must be the conv output's shape ${fmtShape(want)} (x ${fmtShape(x)}, w ${fmtShape(w)})`,
    );
  }
  return g;
}

function shape4(what: string, s: unknown): Shape4 {
  if (!Array.isArray(s) || s.length !== 4 || !s.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ShapeError(`${what} must be 4 positive integers, got ${JSON.stringify(s)}`);
  }
  return [s[0], s[1], s[2], s[3]];
}

const isDepthwise = (g: Conv2dGeometry): boolean => g.groups > 1 && g.groups === g.cin;

// ---- conv2d_grad_input ---------------------------------------------------------------------------

export interface GradInputConfig extends Conv2dGeometry {
  /** Lanes over 4 neighbouring channels (groups = Cin) instead of a tile within one group. */
  depthwise: boolean;
  /** Pixels per invocation (sw apart along one row) and input channels per invocation (general mapping). */
  tm: number;
  tn: number;
  /** General: dy and w read as vec4 along Cout (Cog % 4 == 0). Depthwise: dy, w, dx as vec4 along C (m = 1, C % 4 == 0). */
  vec4: boolean;
  /**
   * Subgroup sharing of dy (0 = off, else the device's fixed subgroup size 4 = tm; general
   * mapping, vec4): the lanes of a subgroup own 4 neighbouring channel blocks of the same group
   * and pixels, so they read the same dy; lane l loads pixel l's and subgroupBroadcast hands it
   * round. Channel blocks are padded to whole subgroups (the extra lanes store nothing); the lanes
   * agree on every branch by construction, which the static analysis cannot see.
   */
  sg: number;
  wg: number;
  gridX: number;
}

function gradInputCounts(c: GradInputConfig) {
  const xb = ceilDiv(ceilDiv(c.w, c.sw), c.tm); // pixel blocks per phase of a row
  const mb = c.n * c.h * c.sw * xb;
  const cb = c.sg ? ceilDiv(ceilDiv(c.cig, c.tn), c.sg) * c.sg : ceilDiv(c.cig, c.tn);
  const nb = c.depthwise ? ceilDiv(c.cin, 4) : c.groups * cb;
  return { xb, mb, cb, nb, total: mb * nb };
}

function gradInputWgsl(c: GradInputConfig): string {
  const { xb, cb, nb, total } = gradInputCounts(c);
  const dwise = c.depthwise;
  const V = !dwise && c.vec4 ? 4 : 1;
  const T = dwise ? 'vec4<f32>' : vecType(c.vec4);
  const ST = vecType(c.vec4); // storage type of dy and w
  const OT = dwise ? vecType(c.vec4) : 'f32'; // storage type of dx
  const m = c.cog; // depthwise channel multiplier
  const I = range(c.tm);
  const J = range(dwise ? 1 : c.tn);
  const L4 = range(4);
  const L: string[] = [];
  L.push(
    `  if (t >= ${u(total)}) { return; }`,
    `  let nbi = t % ${u(nb)};`,
    `  let mbi = t / ${u(nb)};`,
    `  let xb = mbi % ${u(xb)};`,
    `  var r = mbi / ${u(xb)};`,
    `  let px = r % ${u(c.sw)};`,
    `  r = r / ${u(c.sw)};`,
    `  let iy = r % ${u(c.h)};`,
    `  let img = r / ${u(c.h)};`,
    `  let ix0 = px + xb * ${u(c.tm * c.sw)};`,
    `  if (ix0 >= ${u(c.w)}) { return; }`,
  );
  if (dwise) {
    L.push(`  let c0 = nbi * 4u;`);
    if (!c.vec4) for (const l of L4) L.push(`  let ch${l} = min(c0 + ${u(l)}, ${u(c.cin - 1)}) * ${u(m)};`);
  } else {
    L.push(`  let g = nbi / ${u(cb)};`, `  let c0 = (nbi % ${u(cb)}) * ${u(c.tn)};`);
    for (const j of J) L.push(`  let wr${j} = min(c0 + ${u(j)}, ${u(c.cig - 1)});`);
  }
  for (const i of I) for (const j of J) L.push(`  var acc${i}_${j} = ${T}(0.0);`);
  L.push(`  for (var ky = 0u; ky < ${u(c.kh)}; ky++) {`);
  L.push(`    let ty = i32(iy) + ${c.pad[0]} - i32(ky * ${u(c.dh)});`);
  L.push(`    if (ty < 0) { break; }  // ty falls as ky grows`);
  if (c.sh > 1) L.push(`    if (ty % ${c.sh} != 0) { continue; }`);
  L.push(`    let oy = u32(ty) / ${u(c.sh)};`, `    if (oy >= ${u(c.oh)}) { continue; }`);
  L.push(`    let rowb = (img * ${u(c.oh)} + oy) * ${u(c.ow)};`);
  L.push(`    for (var kx = 0u; kx < ${u(c.kw)}; kx++) {`);
  L.push(`      let tx0 = i32(ix0) + ${c.pad[1]} - i32(kx * ${u(c.dw)});`);
  L.push(
    `      if (tx0 + ${(c.tm - 1) * c.sw} < 0) { break; }  // every pixel left of the output, for this and later kx`,
  );
  if (c.sw > 1) L.push(`      if (tx0 % ${c.sw} != 0) { continue; }  // the tile's pixels share their phase`);
  L.push(`      let ox0 = tx0 / ${c.sw};`);
  if (c.sg) {
    // Lane sl reads the dy of pixel sl for everyone.
    L.push(
      `      let oks = ox0 + i32(sl) >= 0 && ox0 + i32(sl) < ${c.ow};`,
      `      let ds = select(0u, (rowb + u32(ox0 + i32(sl))) * ${u(c.cout)}, oks) + g * ${u(c.cog)};`,
    );
  } else {
    for (const i of I) {
      L.push(
        `      let ok${i} = ox0 + ${i} >= 0 && ox0 + ${i} < ${c.ow};`,
        `      let a${i} = select(0u, (rowb + u32(ox0 + ${i})) * ${u(c.cout)}, ok${i});`,
      );
    }
  }
  L.push(`      let tap = (ky * ${u(c.kw)} + kx) * ${u(c.cig)};`);
  if (dwise) {
    // Channel c's taps are dy and w at channels c·m + k, k < m.
    if (c.vec4) {
      L.push(`      let wv = w[(tap * ${u(c.cout)} + c0) / 4u];`);
      for (const i of I) L.push(`      acc${i}_0 += select(${T}(0.0), dy[(a${i} + c0) / 4u], ok${i}) * wv;`);
    } else {
      L.push(`      for (var k = 0u; k < ${u(m)}; k++) {`);
      const lanes = (f: (l: number) => string) => `vec4<f32>(${L4.map(f).join(', ')})`;
      L.push(`        let wv = ${lanes((l) => `w[tap * ${u(c.cout)} + ch${l} + k]`)};`);
      for (const i of I) {
        L.push(`        acc${i}_0 += select(vec4<f32>(0.0), ${lanes((l) => `dy[a${i} + ch${l} + k]`)}, ok${i}) * wv;`);
      }
      L.push('      }');
    }
  } else {
    for (const j of J) L.push(`      let wb${j} = (tap + wr${j}) * ${u(c.cout)} + g * ${u(c.cog)};`);
    if (!c.sg) for (const i of I) L.push(`      let d${i}b = a${i} + g * ${u(c.cog)};`);
    const div = V > 1 ? ' / 4u' : '';
    L.push(`      for (var co = 0u; co < ${u(c.cog)}; co += ${u(V)}) {`);
    if (c.sg) {
      L.push(`        let dl = select(${T}(0.0), dy[(ds + co)${div}], oks);`);
      for (const i of I) L.push(`        let d${i} = subgroupBroadcast(dl, ${u(i)});`);
    } else {
      for (const i of I) L.push(`        let d${i} = select(${T}(0.0), dy[(d${i}b + co)${div}], ok${i});`);
    }
    for (const j of J) L.push(`        let w${j} = w[(wb${j} + co)${div}];`);
    for (const i of I) for (const j of J) L.push(`        acc${i}_${j} += d${i} * w${j};`);
    L.push('      }');
  }
  L.push('    }', '  }');
  // Store: pixels past the row's end and channels past the group's are skipped.
  for (const i of I) {
    L.push(`  if (ix0 + ${u(i * c.sw)} < ${u(c.w)}) {`);
    L.push(`    let ob = ((img * ${u(c.h)} + iy) * ${u(c.w)} + ix0 + ${u(i * c.sw)}) * ${u(c.cin)};`);
    if (dwise && c.vec4) L.push(`    dx[(ob + c0) / 4u] = acc${i}_0;`);
    else if (dwise) {
      for (const l of L4) {
        const st = `dx[ob + c0 + ${u(l)}] = acc${i}_0.${XYZW[l]};`;
        L.push(c.cin % 4 === 0 ? `    ${st}` : `    if (c0 + ${u(l)} < ${u(c.cin)}) { ${st} }`);
      }
    } else {
      const fold = (s: string) => (V > 1 ? `(${s}.x + ${s}.y) + (${s}.z + ${s}.w)` : s);
      for (const j of J) {
        const st = `dx[ob + g * ${u(c.cig)} + c0 + ${u(j)}] = ${fold(`acc${i}_${j}`)};`;
        L.push(cb * c.tn > c.cig ? `    if (c0 + ${u(j)} < ${u(c.cig)}) { ${st} }` : `    ${st}`);
      }
    }
    L.push('  }');
  }
  const main = flatMain(c.wg, c.gridX).replace(
    '@builtin(local_invocation_index) lid: u32)',
    `@builtin(local_invocation_index) lid: u32${c.sg ? ', @builtin(subgroup_invocation_id) sl: u32' : ''})`,
  );
  return wgsl`// conv2d_grad_input ${dwise ? 'depthwise' : 'general'}: ${c.tm} pixels (stride ${c.sw} apart) x ${dwise ? 4 : c.tn} channels per invocation${c.sg ? ', dy shared by subgroup broadcasts' : ''}
#if ${c.sg > 0}
enable subgroups;
diagnostic(off, subgroup_uniformity);  // uniform by construction, see GradInputConfig.sg
#endif
@group(0) @binding(0) var<storage, read> dy: array<${ST}>;  // output gradient [${c.n},${c.oh},${c.ow},${c.cout}] NHWC
@group(0) @binding(1) var<storage, read> w: array<${ST}>;  // weights [${c.kh},${c.kw},${c.cig},${c.cout}] HWIO
@group(0) @binding(2) var<storage, read_write> dx: array<${OT}>;  // input gradient [${c.n},${c.h},${c.w},${c.cin}] NHWC

${main}
${L.join('\n')}
}
`;
}

export const conv2dGradInputFamily: KernelFamily<GradInputConfig> = { name: 'conv2d_grad_input', wgsl: gradInputWgsl };

export type GradInputPath = 'conv' | 'gather';

/**
 * ctx.prefer.conv2d_grad_input: the path, and for 'gather' the register tile, tm pixels × tn input
 * channels (general mapping).
 */
export interface Conv2dGradInputVariant {
  path?: GradInputPath;
  tm?: number;
  tn?: number;
  /** Share dy across a subgroup (GradInputConfig.sg; needs tm = 4); the size comes from the device. */
  sg?: boolean;
}

export const conv2dGradInputVariant = defineVariant<Conv2dGradInputVariant>('conv2d_grad_input', [
  { kind: 'enum', key: 'path', values: ['conv', 'gather'], bare: true },
  { kind: 'pair', name: 'tile', keys: ['tm', 'tn'], min: [1, 1] },
  { kind: 'flag', key: 'sg' },
]);

/**
 * Gather path heuristic: a 4 × 4 tile, no subgroup sharing. Sharing dy ('sg': one dy and four w
 * loads per Cout step for 16 vec4 FMAs, against four and four) measured 1.5–1.8× slower on
 * SwiftShader (N = 2, 28×28, 64 → 64, 3×3 stride 2, side by side): the plain tile's four lanes
 * read the same dy addresses, which evidently costs little there. It stays a tuner candidate.
 */
export function gradInputConfig(
  geo: Conv2dGeometry,
  v0: Conv2dGradInputVariant,
  maxPerDim: number,
  subgroupSize = 0,
): GradInputConfig {
  const depthwise = isDepthwise(geo);
  const v = v0;
  const pixels = ceilDiv(geo.w, geo.sw);
  const tm = v.tm ?? Math.min(4, pixels);
  const tn = depthwise ? 4 : (v.tn ?? Math.min(4, geo.cig));
  const vec4 = depthwise ? geo.cog === 1 && geo.cin % 4 === 0 : geo.cog % 4 === 0;
  if (v.sg && !(subgroupSize === 4 && !depthwise && vec4 && tm === 4)) {
    throw new Error(
      `conv2d_grad_input 'sg' needs a device subgroup size of 4 (this one: ${subgroupSize || 'none'}), groups < Cin, ` +
        `Cout/groups a multiple of 4 and tm = 4; got Cout/groups ${geo.cog}, tm ${tm}`,
    );
  }
  const sg = v.sg ? subgroupSize : 0;
  const cfg: GradInputConfig = { ...geo, pad: [...geo.pad], depthwise, tm, tn, vec4, sg, wg: WG, gridX: 1 };
  cfg.gridX = grid(ceilDiv(gradInputCounts(cfg).total, WG), maxPerDim)[0];
  return cfg;
}

function gradInputInfer(a: Conv2dGradInputAttrs, [dy, w]: Shape[]): Shape[] {
  const xs = shape4('conv2d_grad_input attr xShape', a.xShape);
  expectRank('conv2d_grad_input dy', dy, 4);
  gradGeometry('conv2d_grad_input', a, xs, w, dy);
  return [xs];
}

/**
 * The forward conv that computes dx at stride 1: over dy with the flipped, transposed weights
 * w'[ky,kx,co,g·Cig+ci] = w[KH−1−ky, KW−1−kx, ci, g·Cog+co] and padding (K−1)·d − pad per side
 * (docs/backward-conv.md). Undefined where that is not a conv: stride > 1, or a side padded by
 * more than (K−1)·d (the forward window then never reaches some padding, so the mirror pad is < 0).
 */
export function gradInputAsConv(geo: Conv2dGeometry): Conv2dGeometry | undefined {
  if (geo.sh !== 1 || geo.sw !== 1) return undefined;
  const [t, l, b, r] = geo.pad;
  const ey = geo.dh * (geo.kh - 1);
  const ex = geo.dw * (geo.kw - 1);
  const pad: [number, number, number, number] = [ey - t, ex - l, ey - b, ex - r];
  if (pad.some((p) => p < 0)) return undefined;
  const g = conv2dGeometry({ pad, dilation: [geo.dh, geo.dw], groups: geo.groups }, [
    [geo.n, geo.oh, geo.ow, geo.cout],
    [geo.kh, geo.kw, geo.cog, geo.cin],
  ]);
  if (g.oh !== geo.h || g.ow !== geo.w)
    throw new Error(`conv2d_grad_input: mirrored conv gives ${g.oh}x${g.ow}, want ${geo.h}x${geo.w}`);
  return g;
}

interface FlipConfig {
  kh: number;
  kw: number;
  cig: number;
  cog: number;
  groups: number;
  wg: number;
  gridX: number;
}

/** w [KH,KW,Cig,Cout] → w' [KH,KW,Cog,Cin]: the weights of gradInputAsConv, one element per invocation. */
const flipFamily: KernelFamily<FlipConfig> = {
  name: 'conv2d_flip_weight',
  wgsl(c) {
    const cin = c.cig * c.groups;
    const cout = c.cog * c.groups;
    const total = c.kh * c.kw * c.cog * cin;
    return `// conv2d_flip_weight: w'[ky,kx,co,g·Cig+ci] = w[KH−1−ky,KW−1−kx,ci,g·Cog+co]
@group(0) @binding(0) var<storage, read> w: array<f32>;  // weights [${c.kh},${c.kw},${c.cig},${cout}] HWIO
@group(0) @binding(1) var<storage, read_write> wf: array<f32>;  // flipped [${c.kh},${c.kw},${c.cog},${cin}] HWIO

${flatMain(c.wg, c.gridX)}
  if (t >= ${u(total)}) { return; }
  let cj = t % ${u(cin)};
  var r = t / ${u(cin)};
  let co = r % ${u(c.cog)};
  r = r / ${u(c.cog)};
  let kx = r % ${u(c.kw)};
  let ky = r / ${u(c.kw)};
  let g = cj / ${u(c.cig)};
  let src = ((${u(c.kh - 1)} - ky) * ${u(c.kw)} + ${u(c.kw - 1)} - kx) * ${u(c.cig)} + cj % ${u(c.cig)};
  wf[t] = w[src * ${u(cout)} + g * ${u(c.cog)} + co];
}
`;
  },
};

/** The conv path takes dense and grouped convs, and depthwise ones with multiplier 1 (the mirror is depthwise too). */
const convPathFits = (g: Conv2dGeometry): boolean => !isDepthwise(g) || g.cog === 1;

function lowerGradInput(a: Conv2dGradInputAttrs, [dy, w]: Shape[], _o: Shape[], ctx: LowerContext): Lowering {
  const geo = gradGeometry('conv2d_grad_input', a, a.xShape, w, dy);
  const maxPerDim = ctx.limits.maxComputeWorkgroupsPerDimension;
  const v = conv2dGradInputVariant.of(ctx.prefer) ?? {};
  const mirror = convPathFits(geo) ? gradInputAsConv(geo) : undefined;
  if (v.path === 'conv' && !mirror) {
    throw new Error(
      `conv2d_grad_input path 'conv' needs stride 1, pad ≤ (K−1)·dilation per side, and a depthwise multiplier of 1; ` +
        `got stride [${geo.sh},${geo.sw}], pad [${geo.pad}], groups ${geo.groups}, Cin ${geo.cin}, Cout ${geo.cout}`,
    );
  }
  // A tile alone means the gather path (the conv path takes the forward kernels' heuristic configs).
  if (mirror && (v.path === 'conv' || (v.path === undefined && v.tm === undefined))) {
    const elems = numel(w);
    const fgr = grid(ceilDiv(elems, WG), maxPerDim);
    const flip: FlipConfig = {
      kh: geo.kh,
      kw: geo.kw,
      cig: geo.cig,
      cog: geo.cog,
      groups: geo.groups,
      wg: WG,
      gridX: fgr[0],
    };
    const flipped = makeDispatch(flipFamily, flip, fgr, [input(1), temp(0)], { bytes: 8 * elems });
    if (isDepthwise(mirror)) {
      // Multiplier 1: the mirror is depthwise too, run by the forward depthwise kernel (with its
      // heuristic, not the forward pass's preferences), its weights rebound to the scratch buffer.
      const attrs = { pad: mirror.pad, dilation: [geo.dh, geo.dw] as [number, number], groups: mirror.groups };
      const low = lowerDepthwise(attrs, [dy, [geo.kh, geo.kw, 1, geo.cin]], [a.xShape], { ...ctx, prefer: undefined });
      if (low.temps?.length || low.constLayouts?.length) {
        throw new Error('conv2d_grad_input: the depthwise lowering grew scratch buffers or layouts; rebind them here');
      }
      const rebind = (b: BindingRef) => (b.kind === 'input' && b.index === 1 ? temp(0) : b);
      return {
        temps: [elems],
        dispatches: [flipped, ...low.dispatches.map((d) => ({ ...d, bindings: d.bindings.map(rebind) }))],
      };
    }
    const cfg = conv2dConfig(mirror, {}, maxPerDim, ctx.subgroupSize ?? 0);
    return {
      temps: [elems],
      dispatches: [
        flipped,
        makeDispatch(conv2dFamily, cfg, conv2dDispatchGrid(cfg, maxPerDim), [input(0), temp(0), output(0)], {
          flops: conv2dFlops(geo),
          bytes: 4 * (numel(dy) + elems + numel(a.xShape)),
        }),
      ],
    };
  }
  const cfg = gradInputConfig(geo, v, maxPerDim, ctx.subgroupSize ?? 0);
  const gr = grid(ceilDiv(gradInputCounts(cfg).total, WG), maxPerDim);
  const bytes = 4 * (numel(dy) + numel(w) + numel(a.xShape));
  return {
    dispatches: [
      makeDispatch(conv2dGradInputFamily, cfg, gr, [input(0), input(1), output(0)], {
        flops: conv2dFlops(geo),
        bytes,
      }),
    ],
  };
}

/**
 * Every (dy, x, w) index triple the conv's sum pairs up, in the forward's loop order: the one
 * loop both gradient references walk (dx gathers dy·w, dW gathers dy·x over the same triples).
 */
function forEachTap(g: Conv2dGeometry, visit: (dyi: number, xi: number, wi: number) => void): void {
  for (let n = 0; n < g.n; n++)
    for (let oy = 0; oy < g.oh; oy++)
      for (let ox = 0; ox < g.ow; ox++)
        for (let co = 0; co < g.cout; co++) {
          const dyi = ((n * g.oh + oy) * g.ow + ox) * g.cout + co;
          const grp = Math.floor(co / g.cog);
          for (let ky = 0; ky < g.kh; ky++) {
            const iy = oy * g.sh - g.pad[0] + ky * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            for (let kx = 0; kx < g.kw; kx++) {
              const ix = ox * g.sw - g.pad[1] + kx * g.dw;
              if (ix < 0 || ix >= g.w) continue;
              const xb = ((n * g.h + iy) * g.w + ix) * g.cin + grp * g.cig;
              for (let ci = 0; ci < g.cig; ci++) visit(dyi, xb + ci, ((ky * g.kw + kx) * g.cig + ci) * g.cout + co);
            }
          }
        }
}

/** Scatter form (every output tap adds dy·w into the input pixel it read), f64 sums. */
export function conv2dGradInputRef(a: Conv2dGradInputAttrs, dy: HostTensor, w: HostTensor): HostTensor {
  const g = gradGeometry('conv2d_grad_input', a, a.xShape, w.shape, dy.shape);
  const dx = new Float64Array(numel(a.xShape));
  forEachTap(g, (dyi, xi, wi) => {
    dx[xi] += dy.data[dyi] * w.data[wi];
  });
  return { shape: [...a.xShape], data: Float32Array.from(dx) };
}

export const conv2dGradInputOp: OpDef<Conv2dGradInputAttrs> = {
  op: 'conv2d_grad_input',
  arity: [2, 2],
  infer: gradInputInfer,
  lower: lowerGradInput,
  ref: (a, [dy, w]) => [conv2dGradInputRef(a, dy, w)],
  tuneSpace(a, [dy, w], ctx): TuneSpace | undefined {
    const geo = gradGeometry('conv2d_grad_input', a, a.xShape, w, dy);
    const conv = convPathFits(geo) && gradInputAsConv(geo) !== undefined;
    if (isDepthwise(geo)) return conv ? { family: 'conv2d_grad_input', candidates: ['gather'] } : undefined;
    const gather = ['gather', 'gather,tile=2x4', 'gather,tile=4x8', 'gather,tile=8x4'];
    if (ctx.subgroupSize === 4 && geo.cog % 4 === 0) gather.push('gather,tile=4x4,sg', 'gather,tile=4x8,sg');
    return { family: 'conv2d_grad_input', candidates: conv ? gather : gather.slice(1) };
  },
};

// ---- colsum: column sums of [R, C] (bias gradient, second pass of the weight gradient) ---------

interface ColsumConfig {
  rows: number;
  cols: number;
  /** Chunks of rows, each summed by its own invocations into row `s` of the output [split, C]. */
  split: number;
  vec4: boolean;
  wg: number;
  gridX: number;
}

const colsumFamily: KernelFamily<ColsumConfig> = {
  name: 'colsum',
  wgsl(c) {
    const c4 = ceilDiv(c.cols, 4);
    const rps = ceilDiv(c.rows, c.split);
    const T = vecType(c.vec4);
    const lanes = range(4);
    const load = c.vec4
      ? `acc += a[r * ${u(c4)} + c4];`
      : lanes.map((l) => `acc.${XYZW[l]} += a[r * ${u(c.cols)} + min(c4 * 4u + ${u(l)}, ${u(c.cols - 1)})];`).join(' ');
    const store = c.vec4
      ? `  y[s * ${u(c4)} + c4] = acc;`
      : lanes
          .map(
            (l) =>
              `  if (c4 * 4u + ${u(l)} < ${u(c.cols)}) { y[s * ${u(c.cols)} + c4 * 4u + ${u(l)}] = acc.${XYZW[l]}; }`,
          )
          .join('\n');
    return `// colsum: [${c.rows}, ${c.cols}] summed over rows in ${c.split} chunk(s) of ${rps}
@group(0) @binding(0) var<storage, read> a: array<${T}>;  // input  [${c.rows}, ${c.cols}]
@group(0) @binding(1) var<storage, read_write> y: array<${T}>;  // output [${c.split}, ${c.cols}]

${flatMain(c.wg, c.gridX)}
  if (t >= ${u(c.split * c4)}) { return; }
  let c4 = t % ${u(c4)};
  let s = t / ${u(c4)};
  let r1 = min(s * ${u(rps)} + ${u(rps)}, ${u(c.rows)});
  var acc = vec4<f32>(0.0);
  for (var r = s * ${u(rps)}; r < r1; r++) { ${load} }
${store}
}
`;
  },
};

function colsumDispatch(
  rows: number,
  cols: number,
  split: number,
  from: 'input' | 'temp',
  to: 'output' | 'temp',
  maxPerDim: number,
) {
  const count = split * ceilDiv(cols, 4);
  const gr = grid(ceilDiv(count, WG), maxPerDim);
  const cfg: ColsumConfig = { rows, cols, split, vec4: cols % 4 === 0, wg: WG, gridX: gr[0] };
  const src = from === 'input' ? input(0) : temp(0);
  const dst = to === 'output' ? output(0) : temp(0);
  return makeDispatch(colsumFamily, cfg, gr, [src, dst], { flops: rows * cols, bytes: 4 * (rows + split) * cols });
}

export function conv2dGradBiasRef(dy: HostTensor): HostTensor {
  expectRank('conv2d_grad_bias dy', dy.shape, 4);
  const c = dy.shape[3];
  const s = new Float64Array(c);
  for (let i = 0; i < dy.data.length; i++) s[i % c] += dy.data[i];
  return { shape: [c], data: Float32Array.from(s) };
}

export const conv2dGradBiasOp: OpDef<Record<string, never>> = {
  op: 'conv2d_grad_bias',
  arity: [1, 1],
  infer(_a, [dy]) {
    expectRank('conv2d_grad_bias dy (NHWC)', dy, 4);
    return [[dy[3]]];
  },
  lower(_a, [dy], _o, ctx) {
    const c = dy[3];
    const rows = dy[0] * dy[1] * dy[2];
    const maxPerDim = ctx.limits.maxComputeWorkgroupsPerDimension;
    // Enough chunks for ~1024 invocations, each at least 64 rows long.
    const split = Math.max(1, Math.min(ceilDiv(1024, ceilDiv(c, 4)), Math.floor(rows / 64)));
    if (split === 1) return { dispatches: [colsumDispatch(rows, c, 1, 'input', 'output', maxPerDim)] };
    return {
      temps: [split * c],
      dispatches: [
        colsumDispatch(rows, c, split, 'input', 'temp', maxPerDim),
        colsumDispatch(split, c, 1, 'temp', 'output', maxPerDim),
      ],
    };
  },
  ref: (_a, [dy]) => [conv2dGradBiasRef(dy)],
};

// ---- conv2d_grad_weight --------------------------------------------------------------------------

export interface GradWeightConfig extends Conv2dGeometry {
  /** Lanes over 4 neighbouring output channels (groups = Cin), one tap per invocation. */
  depthwise: boolean;
  /** Input channels × output channels per invocation (general mapping). */
  ta: number;
  tb: number;
  /** Chunks of the N·OH output rows; > 1 writes partial sums to the scratch buffer. */
  split: number;
  /** x read as vec4 along Cin (Cig % 4 == 0, ta % 4 == 0; depthwise: m = 1 and C % 4 == 0). */
  xVec4: boolean;
  /** dy read and dw written as vec4 along Cout (Cog % 4 == 0, tb % 4 == 0; depthwise: Cout % 4 == 0). */
  vec4: boolean;
  /**
   * Subgroup sharing of dy (0 = off, else the device's fixed subgroup size 4; general mapping, vec4,
   * tb % 16 == 0): the 4 lanes of a subgroup own 4 neighbouring input-channel blocks of the same
   * output-channel block, so they need the same dy row; each lane loads a quarter of it and
   * subgroupBroadcast hands it to the others (as kernels/conv2d.ts `sg` shares w). The lanes agree
   * on every branch and loop bound (they differ only in input channels, and the launch is a whole
   * number of subgroups), which WGSL's static analysis cannot see through the flat index, so the
   * shader turns its subgroup_uniformity diagnostic off.
   */
  sg: number;
  wg: number;
  gridX: number;
}

function gradWeightCounts(c: GradWeightConfig) {
  // With sg the input-channel blocks are padded to a multiple of the subgroup (the extra lanes
  // read clamped channels and store nothing), so every subgroup is whole.
  const cib = c.sg ? ceilDiv(ceilDiv(c.cig, c.ta), c.sg) * c.sg : ceilDiv(c.cig, c.ta);
  const cob = c.depthwise ? ceilDiv(c.cout, 4) : ceilDiv(c.cog, c.tb);
  const gb = c.depthwise ? 1 : c.groups;
  // Depthwise: one kernel row (KW taps) per invocation.
  const perSplit = c.depthwise ? c.kh * cob : c.kh * c.kw * gb * cib * cob;
  return { cib, cob, gb, total: c.split * perSplit };
}

function gradWeightWgsl(c: GradWeightConfig): string {
  const { cib, cob, gb, total } = gradWeightCounts(c);
  const dwise = c.depthwise;
  const rows = c.n * c.oh;
  const rps = ceilDiv(rows, c.split);
  const wsize = c.kh * c.kw * c.cig * c.cout;
  const V = c.vec4 ? 4 : 1;
  const XV = c.xVec4 ? 4 : 1;
  const m = c.cog;
  const A = range(dwise ? 1 : c.ta);
  const B = range(dwise ? 1 : c.tb / V);
  const L4 = range(4);
  const T = dwise ? 'vec4<f32>' : vecType(c.vec4);
  const L: string[] = [];
  L.push(`  if (t >= ${u(total)}) { return; }  // whole subgroups: total is a multiple of 4 with sg`);
  if (c.sg) {
    // Input-channel blocks fastest: a subgroup's lanes share tap, group, output channels and rows.
    L.push(
      `  let cib = t % ${u(cib)};`,
      `  var r = t / ${u(cib)};`,
      `  let cob = r % ${u(cob)};`,
      `  r = r / ${u(cob)};`,
    );
  } else {
    L.push(`  let cob = t % ${u(cob)};`, `  var r = t / ${u(cob)};`);
    if (!dwise) L.push(`  let cib = r % ${u(cib)};`, `  r = r / ${u(cib)};`);
  }
  // Output columns ox whose input column ox·sw + o lies in [0, W), for a tap column offset o.
  const colRange = (o: number): [number, number] => [
    o < 0 ? Math.ceil(-o / c.sw) : 0,
    c.w - 1 - o < 0 ? 0 : Math.min(c.ow, Math.floor((c.w - 1 - o) / c.sw) + 1),
  ];
  // Depthwise: the columns where any tap of the row is inside, and whether all of them are.
  const left = c.pad[1];
  const [dLo] = colRange((c.kw - 1) * c.dw - left);
  const [, dHi] = colRange(-left);
  const [aLo, aHi] = [colRange(-left)[0], colRange((c.kw - 1) * c.dw - left)[1]];
  const colsInside = aLo <= dLo && aHi >= dHi;
  if (dwise) {
    L.push(`  let ky = r % ${u(c.kh)};`, `  let s = r / ${u(c.kh)};`);
  } else {
    L.push(
      `  let g = r % ${u(gb)};`,
      `  r = r / ${u(gb)};`,
      `  let tap = r % ${u(c.kh * c.kw)};`,
      `  let s = r / ${u(c.kh * c.kw)};`,
      `  let ky = tap / ${u(c.kw)};`,
      `  let kx = tap % ${u(c.kw)};`,
      `  let kxo = i32(kx * ${u(c.dw)}) - ${left};`,
      `  let oxLo = select(0u, u32((-kxo + ${c.sw - 1}) / ${c.sw}), kxo < 0);`,
      `  let hiNum = ${c.w - 1} - kxo;`,
      `  let oxHi = select(0u, min(${u(c.ow)}, u32(hiNum / ${c.sw}) + 1u), hiNum >= 0);`,
    );
  }
  L.push(`  let kyo = i32(ky * ${u(c.dh)}) - ${c.pad[0]};`);
  if (dwise) {
    L.push(`  let co0 = cob * 4u;`);
    if (!c.vec4) for (const l of L4) L.push(`  let dc${l} = min(co0 + ${u(l)}, ${u(c.cout - 1)});`);
    if (!c.xVec4) {
      for (const l of L4) L.push(`  let xc${l} = min(co0 + ${u(l)}, ${u(c.cout - 1)}) / ${u(m)};`);
    }
  } else {
    L.push(`  let ci0 = cib * ${u(c.ta)};`, `  let co0 = cob * ${u(c.tb)};`);
    for (const k of range(c.ta / XV)) {
      L.push(`  let xc${k} = g * ${u(c.cig)} + min(ci0 + ${u(k * XV)}, ${u(c.cig - XV)});`);
    }
    if (c.sg) {
      // Lane sl loads vec4 number 4k + sl of the tile's dy row (k < tb/16).
      for (const k of range(c.tb / 16)) {
        L.push(`  let dcs${k} = g * ${u(c.cog)} + min(co0 + ${u(16 * k)} + sl * 4u, ${u(c.cog - 4)});`);
      }
    } else {
      for (const b of B) L.push(`  let dc${b} = g * ${u(c.cog)} + min(co0 + ${u(b * V)}, ${u(c.cog - V)});`);
    }
  }
  if (dwise) for (const kx of range(c.kw)) L.push(`  var acc${kx} = vec4<f32>(0.0);`);
  else for (const a of A) for (const b of B) L.push(`  var acc${a}_${b} = ${T}(0.0);`);
  L.push(
    `  let r1 = min(s * ${u(rps)} + ${u(rps)}, ${u(rows)});`,
    `  for (var rr = s * ${u(rps)}; rr < r1; rr++) {`,
    `    let iy = i32((rr % ${u(c.oh)}) * ${u(c.sh)}) + kyo;`,
    `    if (iy < 0 || iy >= ${c.h}) { continue; }`,
    `    let xrow = (rr / ${u(c.oh)} * ${u(c.h)} + u32(iy)) * ${u(c.w)};`,
    `    let drow = rr * ${u(c.ow)};`,
  );
  const lanes = (f: (l: number) => string) => `vec4<f32>(${L4.map(f).join(', ')})`;
  // Depthwise: column ix of the input row as a vec4 of the 4 channels (0 outside the image).
  const xcol = (ind: string, name: string, ix: string): string[] => {
    const load = (xp: string) => (c.xVec4 ? `x[(${xp} + co0) / 4u]` : lanes((l) => `x[${xp} + xc${l}]`));
    if (colsInside) return [`${ind}let ${name} = ${load(`(xrow + u32(${ix})) * ${u(c.cin)}`)};`];
    return [
      `${ind}let ${name}ok = ${ix} >= 0 && ${ix} < ${c.w};`,
      `${ind}let ${name} = select(vec4<f32>(0.0), ${load(`(xrow + u32(select(0, ${ix}, ${name}ok))) * ${u(c.cin)}`)}, ${name}ok);`,
    ];
  };
  // With dilation 1 and stride < KW neighbouring pixels share KW − sw input columns: they stay
  // in registers (col0..col{KW−1} = columns ixb..ixb+KW−1) and each pixel loads only sw new ones.
  const slide = dwise && c.dw === 1 && c.sw < c.kw;
  if (slide) {
    for (const j of range(c.kw)) L.push(`    var col${j} = vec4<f32>(0.0);`);
    for (const j of range(c.kw - c.sw)) {
      L.push(...xcol('    ', `p${j}`, `${dLo * c.sw - left + j}`), `    col${j} = p${j};`);
    }
  }
  L.push(dwise ? `    for (var ox = ${u(dLo)}; ox < ${u(dHi)}; ox++) {` : `    for (var ox = oxLo; ox < oxHi; ox++) {`);
  L.push(`      let dp = (drow + ox) * ${u(c.cout)};`);
  if (!dwise) L.push(`      let xp = (xrow + u32(i32(ox * ${u(c.sw)}) + kxo)) * ${u(c.cin)};`);
  if (dwise) {
    // dy once per pixel, then the row's KW taps.
    L.push(`      let dv = ${c.vec4 ? `dy[(dp + co0) / 4u]` : lanes((l) => `dy[dp + dc${l}]`)};`);
    L.push(`      let ixb = i32(ox * ${u(c.sw)}) - ${left};`);
    if (slide) {
      for (const j of range(c.sw).map((q) => c.kw - c.sw + q))
        L.push(...xcol('      ', `n${j}`, `ixb + ${j}`), `      col${j} = n${j};`);
      for (const kx of range(c.kw)) L.push(`      acc${kx} += col${kx} * dv;`);
      for (const j of range(c.kw - c.sw)) L.push(`      col${j} = col${j + c.sw};`);
    } else {
      for (const kx of range(c.kw)) {
        L.push(...xcol('      ', `c${kx}`, `ixb + ${kx * c.dw}`), `      acc${kx} += c${kx} * dv;`);
      }
    }
  } else {
    for (const k of range(c.ta / XV)) L.push(`      let xa${k} = x[(xp + xc${k})${XV > 1 ? ' / 4u' : ''}];`);
    if (c.sg) {
      for (const k of range(c.tb / 16)) L.push(`      let dl${k} = dy[(dp + dcs${k}) / 4u];`);
      for (const b of B) L.push(`      let d${b} = subgroupBroadcast(dl${b >> 2}, ${u(b & 3)});`);
    } else {
      for (const b of B) L.push(`      let d${b} = dy[(dp + dc${b})${V > 1 ? ' / 4u' : ''}];`);
    }
    for (const a of A) {
      const xs = XV > 1 ? `xa${Math.floor(a / 4)}.${XYZW[a % 4]}` : `xa${a}`;
      for (const b of B) L.push(`      acc${a}_${b} += ${xs} * d${b};`);
    }
  }
  L.push('    }', '  }');
  // Store into dw [KH,KW,Cig,Cout] (split 1) or row s of the scratch [split, KH·KW·Cig·Cout].
  const base = c.split > 1 ? `s * ${u(wsize)} + ` : '';
  if (dwise) {
    for (const kx of range(c.kw)) {
      const at = `${base}(ky * ${u(c.kw)} + ${u(kx)}) * ${u(c.cout)} + co0`;
      if (c.vec4) L.push(`  out[(${at}) / 4u] = acc${kx};`);
      else {
        for (const l of L4) {
          L.push(`  if (co0 + ${u(l)} < ${u(c.cout)}) { out[${at} + ${u(l)}] = acc${kx}.${XYZW[l]}; }`);
        }
      }
    }
  } else {
    for (const a of A) {
      const aLive = cib * c.ta > c.cig ? `ci0 + ${u(a)} < ${u(c.cig)}` : '';
      for (const b of B) {
        const bLive = c.cog % c.tb !== 0 ? `co0 + ${u(b * V)} < ${u(c.cog)}` : '';
        const idx = `${base}(tap * ${u(c.cig)} + ci0 + ${u(a)}) * ${u(c.cout)} + g * ${u(c.cog)} + co0 + ${u(b * V)}`;
        const st = `out[(${idx})${V > 1 ? ' / 4u' : ''}] = acc${a}_${b};`;
        const cond = [aLive, bLive].filter((x) => x).join(' && ');
        L.push(cond ? `  if (${cond}) { ${st} }` : `  ${st}`);
      }
    }
  }
  const XT = vecType(c.xVec4);
  const DT = vecType(c.vec4);
  const main = flatMain(c.wg, c.gridX).replace(
    '@builtin(local_invocation_index) lid: u32)',
    `@builtin(local_invocation_index) lid: u32${c.sg ? ', @builtin(subgroup_invocation_id) sl: u32' : ''})`,
  );
  return `// conv2d_grad_weight ${dwise ? `depthwise: 4 channels x ${c.kw} taps of one kernel row` : `general: ${c.ta} x ${c.tb} channels of one tap`} per invocation, rows in ${c.split} chunk(s)${c.sg ? ', dy shared by subgroup broadcasts' : ''}
${c.sg ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);  // uniform by construction, see GradWeightConfig.sg\n' : ''}@group(0) @binding(0) var<storage, read> x: array<${XT}>;  // input [${c.n},${c.h},${c.w},${c.cin}] NHWC
@group(0) @binding(1) var<storage, read> dy: array<${DT}>;  // output gradient [${c.n},${c.oh},${c.ow},${c.cout}] NHWC
@group(0) @binding(2) var<storage, read_write> out: array<${DT}>;  // ${c.split > 1 ? `partial sums [${c.split}, ${wsize}]` : `weight gradient [${c.kh},${c.kw},${c.cig},${c.cout}] HWIO`}

${main}
${L.join('\n')}
}
`;
}

export const conv2dGradWeightFamily: KernelFamily<GradWeightConfig> = {
  name: 'conv2d_grad_weight',
  wgsl: gradWeightWgsl,
};

/** ctx.prefer.conv2d_grad_weight: the register tile ta × tb and the number of row chunks. */
export interface Conv2dGradWeightVariant {
  ta?: number;
  tb?: number;
  split?: number;
  /** Share dy across a subgroup (GradWeightConfig.sg); the size comes from the device. */
  sg?: boolean;
}

export const conv2dGradWeightVariant = defineVariant<Conv2dGradWeightVariant>('conv2d_grad_weight', [
  { kind: 'pair', name: 'tile', keys: ['ta', 'tb'], min: [1, 1] },
  { kind: 'int', key: 'split', min: 1 },
  { kind: 'flag', key: 'sg' },
]);

/**
 * Heuristic: with a fixed subgroup size of 4 and Cin/groups, Cout/groups multiples of 16, a 4 × 32 (or 4 × 16)
 * tile with dy shared by subgroup broadcasts (32 vec4 FMAs per lane for one x and two dy loads);
 * otherwise a 4 × 8 tile (8 vec4 FMAs per three vec4 loads) where the channels allow. Enough row
 * chunks for about 2048 invocations, each chunk at least 4 output rows long.
 */
export function gradWeightConfig(
  geo: Conv2dGeometry,
  v0: Conv2dGradWeightVariant,
  maxPerDim: number,
  subgroupSize = 0,
): GradWeightConfig {
  const depthwise = isDepthwise(geo);
  const untouched = v0.ta === undefined && v0.tb === undefined && v0.sg === undefined;
  // Cin/groups ≥ 16 in whole vec4s: at least 4 input-channel blocks, so no lane of a subgroup idles.
  const sgFits = subgroupSize === 4 && !depthwise && geo.cog % 16 === 0 && geo.cig % 16 === 0;
  const v: Conv2dGradWeightVariant =
    untouched && sgFits ? { ta: 4, tb: geo.cog % 32 === 0 ? 32 : 16, sg: true, ...v0 } : v0;
  const ta = depthwise ? 1 : (v.ta ?? Math.min(4, geo.cig));
  const tb = depthwise ? 4 : (v.tb ?? (geo.cog % 8 === 0 ? 8 : geo.cog % 4 === 0 ? 4 : Math.min(4, geo.cog)));
  const xVec4 = depthwise ? geo.cog === 1 && geo.cin % 4 === 0 : geo.cig % 4 === 0 && ta % 4 === 0;
  const vec4 = depthwise ? geo.cout % 4 === 0 : geo.cog % 4 === 0 && tb % 4 === 0;
  const cfg: GradWeightConfig = {
    ...geo,
    pad: [...geo.pad],
    depthwise,
    ta,
    tb,
    split: 1,
    xVec4,
    vec4,
    sg: v.sg ? subgroupSize : 0,
    wg: WG,
    gridX: 1,
  };
  if (v.sg && !(subgroupSize === 4 && !depthwise && vec4 && tb % 16 === 0)) {
    throw new Error(
      `conv2d_grad_weight 'sg' needs a device subgroup size of 4 (this one: ${subgroupSize || 'none'}), groups < Cin, ` +
        `and Cout/groups and the tile's tb multiples of 16; got Cout/groups ${geo.cog}, tb ${tb}`,
    );
  }
  const rows = geo.n * geo.oh;
  const one = gradWeightCounts(cfg).total;
  // A forced split past the row count is honoured (the extra chunks add zeros), not clamped.
  cfg.split = v.split ?? Math.max(1, Math.min(ceilDiv(2048, one), Math.floor(rows / 4)));
  cfg.gridX = grid(ceilDiv(gradWeightCounts(cfg).total, WG), maxPerDim)[0];
  return cfg;
}

function gradWeightInfer(a: Conv2dGradWeightAttrs, [x, dy]: Shape[]): Shape[] {
  const ws = shape4('conv2d_grad_weight attr wShape', a.wShape);
  expectRank('conv2d_grad_weight x', x, 4);
  gradGeometry('conv2d_grad_weight', a, x, ws, dy);
  return [ws];
}

function lowerGradWeight(a: Conv2dGradWeightAttrs, [x, dy]: Shape[], _o: Shape[], ctx: LowerContext): Lowering {
  const geo = gradGeometry('conv2d_grad_weight', a, x, a.wShape, dy);
  const maxPerDim = ctx.limits.maxComputeWorkgroupsPerDimension;
  const cfg = gradWeightConfig(geo, conv2dGradWeightVariant.of(ctx.prefer) ?? {}, maxPerDim, ctx.subgroupSize ?? 0);
  const gr = grid(ceilDiv(gradWeightCounts(cfg).total, WG), maxPerDim);
  const wsize = numel(a.wShape);
  const cost = { flops: conv2dFlops(geo), bytes: 4 * (numel(x) + numel(dy) + wsize) };
  if (cfg.split === 1) {
    return { dispatches: [makeDispatch(conv2dGradWeightFamily, cfg, gr, [input(0), input(1), output(0)], cost)] };
  }
  return {
    temps: [cfg.split * wsize],
    dispatches: [
      makeDispatch(conv2dGradWeightFamily, cfg, gr, [input(0), input(1), temp(0)], cost),
      colsumDispatch(cfg.split, wsize, 1, 'temp', 'output', maxPerDim),
    ],
  };
}

/** Every output tap adds x·dy into the weight it used, f64 sums. */
export function conv2dGradWeightRef(a: Conv2dGradWeightAttrs, x: HostTensor, dy: HostTensor): HostTensor {
  const g = gradGeometry('conv2d_grad_weight', a, x.shape, a.wShape, dy.shape);
  const dw = new Float64Array(numel(a.wShape));
  forEachTap(g, (dyi, xi, wi) => {
    dw[wi] += dy.data[dyi] * x.data[xi];
  });
  return { shape: [...a.wShape], data: Float32Array.from(dw) };
}

export const conv2dGradWeightOp: OpDef<Conv2dGradWeightAttrs> = {
  op: 'conv2d_grad_weight',
  arity: [2, 2],
  infer: gradWeightInfer,
  lower: lowerGradWeight,
  ref: (a, [x, dy]) => [conv2dGradWeightRef(a, x, dy)],
  tuneSpace(a, [x, dy], ctx): TuneSpace | undefined {
    const geo = gradGeometry('conv2d_grad_weight', a, x, a.wShape, dy);
    const c = ['split=1', 'split=4', 'split=16'];
    if (!isDepthwise(geo)) c.push('tile=4x4', 'tile=4x8', 'tile=8x8', 'tile=4x16', 'tile=8x4,split=4');
    if (ctx.subgroupSize === 4 && !isDepthwise(geo) && geo.cog % 16 === 0) {
      c.push('tile=4x16,sg', 'tile=8x16,sg', ...(geo.cog % 32 === 0 ? ['tile=4x32,sg', 'tile=4x32,split=1,sg'] : []));
    }
    return { family: 'conv2d_grad_weight', candidates: c };
  },
};

export const convGradOps: OpDef[] = [conv2dGradInputOp, conv2dGradWeightOp, conv2dGradBiasOp];
