// Shape-generic k×k convolution: one pipeline for every conv of a model that is not a plain 1×1
// (3×3, 7×7, strided 1×1 …) with the same epilogue (conv2d variant 'gemm,generic' on a conv that
// is not pointwise), to cut the pipelines a cold start must build (docs/kernels-gpu.md, "Cold
// start"). Pointwise convs have their own, faster generic kernel (kernels/pointwise-generic.ts).
//
// Computes what conv2d computes for groups 1 (kernels/conv2d.ts conv2dRef):
//   y[n,oh,ow,co] = act(b[co] + r[n,oh,ow,co] + Σ_{kh,kw,ci} x[n, oh·sh − top + kh·dh, ow·sw − left + kw·dw, ci] · w[kh,kw,ci,co])
// with zero padding; x [N,H,W,Cin] NHWC, w [KH,KW,Cin,Cout] HWIO, y [N,OH,OW,Cout], Cin and Cout
// multiples of 4.
//
// No shape is baked into the WGSL, not even the window: N, H, W, Cin/4, OH, OW, Cout/4, the
// output pixel count, the window (KH, KW, stride, dilation, top/left padding) and the grid's x
// extent come from a 64-byte header the lowering puts in front of the weights at load (a
// Lowering.constLayouts entry: w' = [header | w]). The pipeline key holds only the register tile,
// the bias, the residual and the activation. The price is run time: the tap loop and the channel
// loop have run-time bounds and no index arithmetic is folded.
//
// Mapping: implicit GEMM as conv2d's gemm path: an invocation owns tm consecutive output pixels
// × tn channels (vec4 accumulators along Cout); for each tap it computes each pixel's input
// position once (clamped, with a validity flag for the padding), then walks Cin in vec4 steps:
// one vec4 of x per pixel, four weight rows of tn/4 vec4s, 4·tm·tn/4 vec4 FMAs.

import {
  type Activation,
  type KernelFamily,
  activationWgsl,
  ceilDiv,
  grid,
  input,
  type Lowering,
  makeDispatch,
  output,
} from './kernel.js';
import type { Conv2dGeometry } from './conv-geometry.js';
import { genericHeaderLayout } from './pointwise-generic.js';
import { XYZW, actTWgsl, range, u, wgsl } from './wgsl.js';

export interface ConvGenericConfig {
  tm: number;
  tn: number;
  /** Workgroup shape: [channel blocks, pixel blocks]. */
  wg: [number, number];
  bias: boolean;
  residual: boolean;
  act: Activation;
}

/** vec4s of header in front of the weights. */
export const CONV_HEADER_VEC4 = 4;

function convGenericWgsl(c: ConvGenericConfig): string {
  const I = range(c.tm),
    J = range(c.tn / 4);
  const L: string[] = [];
  for (const i of I) {
    L.push(
      `  let o${i} = mb * ${u(c.tm)} + ${u(i)};`,
      `  let p${i} = min(o${i}, M - 1u);`,
      `  let ow${i} = p${i} % OW;`,
      `  let oh${i} = (p${i} / OW) % OH;`,
      `  let row${i} = (p${i} / OW / OH) * H;  // n · H`,
      `  let ih${i} = i32(oh${i} * SH) - TOP;`,
      `  let iw${i} = i32(ow${i} * SW) - LEFT;`,
    );
  }
  L.push(`  let c0 = nb * ${u(c.tn / 4)};  // first vec4 of channels`);
  for (const j of J) L.push(`  let col${j} = min(c0 + ${u(j)}, N4 - 1u);`);
  for (const i of I) for (const j of J) L.push(`  var acc${i}_${j} = vec4<f32>(0.0);`);
  L.push('  for (var tap = 0u; tap < KH * KW; tap++) {', '    let kh = tap / KW;', '    let kw = tap % KW;');
  for (const i of I) {
    L.push(
      `    let y${i} = ih${i} + i32(kh * DH);`,
      `    let x${i} = iw${i} + i32(kw * DW);`,
      `    let ok${i} = u32(y${i}) < H && u32(x${i}) < W;`,
      `    let xb${i} = ((row${i} + u32(clamp(y${i}, 0, i32(H) - 1))) * W + u32(clamp(x${i}, 0, i32(W) - 1))) * K4;`,
    );
  }
  L.push(`    let wt = ${u(CONV_HEADER_VEC4)} + tap * K4 * 4u * N4;`, '    for (var k = 0u; k < K4; k++) {');
  for (const i of I) L.push(`      let xa${i} = select(vec4<f32>(0.0), x[xb${i} + k], ok${i});`);
  for (const s of range(4)) {
    L.push(`      let wr${s} = wt + (k * 4u + ${u(s)}) * N4;`);
    for (const j of J) L.push(`      let b${s}_${j} = w[wr${s} + col${j}];`);
    for (const i of I) for (const j of J) L.push(`      acc${i}_${j} += xa${i}.${XYZW[s]} * b${s}_${j};`);
  }
  L.push('    }', '  }');
  for (const j of J) if (c.bias) L.push(`  let bias${j} = bias[col${j}];`);
  for (const i of I) {
    L.push(`  if (o${i} < M) {`);
    for (const j of J) {
      const yi = `o${i} * N4 + col${j}`;
      const store = c.residual
        ? `let yi = ${yi}; y[yi] = actT(acc${i}_${j} + bias${j} + residual[yi]);`
        : `y[${yi}] = actT(acc${i}_${j}${c.bias ? ` + bias${j}` : ''});`;
      L.push(`    if (c0 + ${u(j)} < N4) { ${store} }`);
    }
    L.push('  }');
  }
  return wgsl`// conv, shapes and window from the header in w[0..3]: ${c.tm} pixels x ${c.tn} channels per invocation
${activationWgsl(c.act)}
${actTWgsl(true)}
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;  // input [N,H,W,Cin]
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;  // header (H,W,Cin/4,Cout/4 | OH,OW,M,grid x | KH,KW,SH,SW | DH,DW,top,left) as u32 bits, then weights [KH,KW,Cin,Cout]
#if ${c.bias}
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;  // bias [Cout]
#endif
#if ${c.residual}
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;  // residual [N,OH,OW,Cout]
#endif
@group(0) @binding(${2 + Number(c.bias) + Number(c.residual)}) var<storage, read_write> y: array<vec4<f32>>;  // output [N,OH,OW,Cout]

@compute @workgroup_size(${c.wg[0]}, ${c.wg[1]})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let h0 = bitcast<vec4<u32>>(w[0]);
  let h1 = bitcast<vec4<u32>>(w[1]);
  let h2 = bitcast<vec4<u32>>(w[2]);
  let h3 = bitcast<vec4<u32>>(w[3]);
  let H = h0.x;
  let W = h0.y;
  let K4 = h0.z;
  let N4 = h0.w;
  let OH = h1.x;
  let OW = h1.y;
  let M = h1.z;
  let KH = h2.x;
  let KW = h2.y;
  let SH = h2.z;
  let SW = h2.w;
  let DH = h3.x;
  let DW = h3.y;
  let TOP = i32(h3.z);
  let LEFT = i32(h3.w);
  let nbCount = (N4 + ${u(c.tn / 4 - 1)}) / ${u(c.tn / 4)};
  let wgx = (nbCount + ${u(c.wg[0] - 1)}) / ${u(c.wg[0])};
  let f = wid.x + wid.y * h1.w;
  let nb = (f % wgx) * ${u(c.wg[0])} + lid.x;  // channel block
  let mb = (f / wgx) * ${u(c.wg[1])} + lid.y;  // pixel block
  if (nb >= nbCount || mb * ${u(c.tm)} >= M) { return; }
${L.join('\n')}
}
`;
}

export const convGenericFamily: KernelFamily<ConvGenericConfig> = {
  name: 'conv2d-generic',
  wgsl: convGenericWgsl,
};

/** The geometry of a conv with groups 1 (kernels/conv2d.ts checks that): all of it but the groups. */
export type ConvGenericShape = Omit<Conv2dGeometry, 'groups' | 'cig' | 'cog'>;

/**
 * The lowering of a conv (groups 1, Cin and Cout multiples of 4, constant weights) on the generic
 * kernel: the dispatch, and the weights' layout with the header in front.
 */
export function lowerConvGeneric(
  g: ConvGenericShape,
  tile: { tm: number; tn: number },
  maxPerDim: number,
  cost: { flops: number; bytes: number },
): Lowering {
  const m = g.n * g.oh * g.ow;
  const nbCount = ceilDiv(g.cout, tile.tn);
  // A fixed workgroup shape (4 channel blocks × 16 pixel blocks), so that it too is the same for every layer.
  const wgX = 4;
  const cfg: ConvGenericConfig = {
    tm: tile.tm,
    tn: tile.tn,
    wg: [wgX, 64 / wgX],
    bias: g.bias,
    residual: g.residual,
    act: g.act,
  };
  const groups = grid(ceilDiv(nbCount, wgX) * ceilDiv(ceilDiv(m, tile.tm), cfg.wg[1]), maxPerDim);
  const header = new Uint32Array([
    g.h,
    g.w,
    g.cin / 4,
    g.cout / 4,
    g.oh,
    g.ow,
    m,
    groups[0],
    g.kh,
    g.kw,
    g.sh,
    g.sw,
    g.dh,
    g.dw,
    g.pad[0],
    g.pad[1],
  ]);
  const wElems = g.kh * g.kw * g.cin * g.cout;
  const bindings = [input(0), input(1), ...(g.bias ? [input(2)] : []), ...(g.residual ? [input(3)] : []), output(0)];
  return {
    dispatches: [makeDispatch(convGenericFamily, cfg, groups, bindings, cost)],
    constLayouts: [genericHeaderLayout(header, CONV_HEADER_VEC4, wElems)],
  };
}
