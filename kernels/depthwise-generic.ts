// Shape-generic depthwise convolution: one pipeline for every depthwise conv of a model with the
// same window (depthwise variant 'generic'), to cut the pipelines a cold start must build
// (docs/kernels-gpu.md, "Cold start").
//
// Computes what kernels/depthwise.ts computes for a channel multiplier of 1:
//   y[n,oh,ow,c] = act(b[c] + Σ_{kh,kw} x[n, oh·sh − top + kh·dh, ow·sw − left + kw·dw, c] · w[kh,kw,0,c])
// with zero padding; x [N,H,W,C] NHWC, w [KH,KW,1,C], y [N,OH,OW,C], C a multiple of 4.
//
// What the WGSL depends on is the window (kh, kw, stride, dilation), the pixel block, the
// workgroup size, the bias and the activation: MobileNetV2's 17 depthwise convs need two pipelines
// (3×3 stride 1 and 3×3 stride 2). The shapes (N, H, W, C/4, OH, OW, the padding, the grid's
// x extent, the invocation count and the block counts) come from a 48-byte header the lowering
// puts in front of the weights at load (a Lowering.constLayouts entry: w' = [header | w]), as
// kernels/pointwise-generic.ts does for 1×1 convs. The price is run time: index arithmetic is no
// longer folded by the shader compiler.
//
// Mapping: as depthwise.ts's 'unrolled' variant: an invocation owns a ph×pw block of output
// pixels for 4 channels (vec4 accumulators), loads every tap's weights once, then each input row
// its block reads once and in it each column once, feeding every (pixel, tap) pair that reads it.
// The row and column offsets depend only on the window and the block, so they are unrolled at
// generation time; padding is a bounds check per row and a clamped load + select per column.
// The block is not clamped to the output (that would split the pipeline by layer size): pixels
// past the edge are computed from clamped loads and not stored.

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
import { genericHeaderLayout } from './pointwise-generic.js';
import { actTWgsl, mainWgsl, range, u, wgsl } from './wgsl.js';

export interface DepthwiseGenericConfig {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  /** Output pixels per invocation along H and W. */
  ph: number;
  pw: number;
  /** Invocations per workgroup. */
  wg: number;
  bias: boolean;
  act: Activation;
}

/** vec4s of header in front of the weights. */
export const DEPTHWISE_HEADER_VEC4 = 3;

/** Distinct offsets s·i + d·k for i < block, k < taps: the input rows/columns a block of outputs reads. */
function offsets(block: number, s: number, taps: number, d: number): number[] {
  const set = new Set<number>();
  for (let i = 0; i < block; i++) for (let k = 0; k < taps; k++) set.add(i * s + k * d);
  return [...set].sort((a, b) => a - b);
}

function depthwiseGenericWgsl(c: DepthwiseGenericConfig): string {
  const blk = range(c.ph).flatMap((q) => range(c.pw).map((p) => [q, p] as const));
  const L: string[] = [];
  for (const t of range(c.kh * c.kw)) L.push(`  let w${t} = w[${u(DEPTHWISE_HEADER_VEC4)} + ${u(t)} * C4 + cb];`);
  const cols = offsets(c.pw, c.sw, c.kw, c.dw);
  for (const ro of offsets(c.ph, c.sh, c.kh, c.dh)) {
    L.push('  {', `    let ih = ih0 + ${ro};`, '    if (u32(ih) < H) {', '      let row = (n * H + u32(ih)) * W;');
    for (const o of cols) L.push(`      let c${o} = col(row, iw0 + ${o}, cb, W, C4);`);
    for (const q of range(c.ph)) {
      const kh = (ro - q * c.sh) / c.dh;
      if (!Number.isInteger(kh) || kh < 0 || kh >= c.kh) continue;
      for (const kw of range(c.kw))
        for (const p of range(c.pw)) L.push(`      acc${q}_${p} += c${p * c.sw + kw * c.dw} * w${kh * c.kw + kw};`);
    }
    L.push('    }', '  }');
  }
  const store = ([q, p]: readonly [number, number]) => {
    const conds = [q > 0 ? `oh0 + ${u(q)} < OH` : '', p > 0 ? `ow0 + ${u(p)} < OW` : ''].filter(Boolean);
    const st = `y[(obase + ${u(q)} * OW + ${u(p)}) * C4 + cb] = actT(acc${q}_${p});`;
    return conds.length ? `  if (${conds.join(' && ')}) { ${st} }` : `  { ${st} }`;
  };
  return wgsl`// depthwise ${c.kh}x${c.kw} stride ${c.sh}x${c.sw} dilation ${c.dh}x${c.dw}, shapes from the header in w[0..2]; ${c.ph}x${c.pw} pixels per invocation
${activationWgsl(c.act)}
${actTWgsl(true)}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;  // input [N,H,W,C]
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;  // header (N,H,W,C/4 | OH,OW,top,left | grid x,invocations,W blocks,H blocks) as u32 bits, then weights [KH,KW,1,C]
#if ${c.bias}
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;  // bias [C]
#endif
@group(0) @binding(${c.bias ? 3 : 2}) var<storage, read_write> y: array<vec4<f32>>;  // output [N,OH,OW,C]

// Input column iw of row \`row\` (flat (n,ih) pixel index · W), channel block cb; 0 in the padding.
fn col(row: u32, iw: i32, cb: u32, W: u32, C4: u32) -> vec4<f32> {
  let v = x[(row + u32(clamp(iw, 0, i32(W) - 1))) * C4 + cb];
  return select(vec4<f32>(0.0), v, u32(iw) < W);
}

${mainWgsl(c.wg)}
  let h0 = bitcast<vec4<u32>>(w[0]);
  let h1 = bitcast<vec4<u32>>(w[1]);
  let h2 = bitcast<vec4<u32>>(w[2]);
  let H = h0.y;
  let W = h0.z;
  let C4 = h0.w;
  let OH = h1.x;
  let OW = h1.y;
  let t = (wid.x + wid.y * h2.x) * ${u(c.wg)} + lid;
  if (t >= h2.y) { return; }
  let cb = t % C4;
  var r = t / C4;
  let ow0 = (r % h2.z) * ${u(c.pw)};
  r = r / h2.z;
  let oh0 = (r % h2.w) * ${u(c.ph)};
  let n = r / h2.w;
  let ih0 = i32(oh0 * ${u(c.sh)}) - i32(h1.z);
  let iw0 = i32(ow0 * ${u(c.sw)}) - i32(h1.w);
#if ${c.bias}
  let bias = b[cb];
#endif
${blk.map(([q, p]) => `  var acc${q}_${p} = ${c.bias ? 'bias' : 'vec4<f32>(0.0)'};`).join('\n')}
${L.join('\n')}
  let obase = (n * OH + oh0) * OW + ow0;
${blk.map(store).join('\n')}
}
`;
}

export const depthwiseGenericFamily: KernelFamily<DepthwiseGenericConfig> = {
  name: 'depthwise-generic',
  wgsl: depthwiseGenericWgsl,
};

/** The geometry of a depthwise conv with multiplier 1 (kernels/depthwise.ts validates it). */
export interface DepthwiseGenericShape {
  n: number;
  h: number;
  w: number;
  c: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  padTop: number;
  padLeft: number;
  bias: boolean;
  act: Activation;
}

/**
 * The lowering of a depthwise conv (multiplier 1, C a multiple of 4, constant weights) on the
 * generic kernel: the dispatch, and the weights' layout with the header in front.
 */
export function lowerDepthwiseGeneric(
  g: DepthwiseGenericShape,
  block: { ph: number; pw: number; wg: number },
  maxPerDim: number,
  cost: { flops: number; bytes: number },
): Lowering {
  const cfg: DepthwiseGenericConfig = {
    kh: g.kh,
    kw: g.kw,
    sh: g.sh,
    sw: g.sw,
    dh: g.dh,
    dw: g.dw,
    ph: block.ph,
    pw: block.pw,
    wg: block.wg,
    bias: g.bias,
    act: g.act,
  };
  const owb = ceilDiv(g.ow, block.pw);
  const ohb = ceilDiv(g.oh, block.ph);
  const total = g.n * ohb * owb * (g.c / 4);
  const groups = grid(ceilDiv(total, block.wg), maxPerDim);
  const header = new Uint32Array([g.n, g.h, g.w, g.c / 4, g.oh, g.ow, g.padTop, g.padLeft, groups[0], total, owb, ohb]);
  const wElems = g.kh * g.kw * g.c;
  const bindings = g.bias ? [input(0), input(1), input(2), output(0)] : [input(0), input(1), output(0)];
  return {
    dispatches: [makeDispatch(depthwiseGenericFamily, cfg, groups, bindings, cost)],
    constLayouts: [genericHeaderLayout(header, DEPTHWISE_HEADER_VEC4, wElems)],
  };
}
