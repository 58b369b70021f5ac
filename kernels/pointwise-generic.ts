// Shape-generic pointwise convolution: one pipeline for every 1×1 conv of a model (conv2d
// variant 'generic'), to cut the number of pipelines a cold start must build.
//
// Computes what conv2d's pointwise gemm path computes (1×1, stride 1, no padding, groups 1):
//   y[m, co] = act(bias[co] + residual[m, co] + Σ_ci x[m, ci] · w[ci, co]),  m over N·H·W pixels,
// x [M, Cin] (NHWC viewed as rows), w [Cin, Cout] (HWIO with a 1×1 window), y [M, Cout].
//
// Unlike every other kernel here, no shape is baked into the WGSL: M, Cin/4, Cout/4 and the
// dispatch grid's x extent are read from a 16-byte header that the lowering puts in front of the
// weights (a Lowering.constLayouts entry, made once at load: w' = [header vec4 | w]). The
// pipeline key (kernels/kernel.ts pipelineKey) holds only what the WGSL depends on (register
// tile, workgroup shape, bias, residual, activation), so all pointwise convs of a model with the
// same epilogue share one pipeline. The price is run time: index arithmetic is no longer folded
// by the shader compiler and the K loop has a run-time bound.
//
// Mapping: as conv2d's gemm path: an invocation owns tm consecutive pixels × tn channels (tn a
// multiple of 4, accumulators vec4 along Cout), x and w read as vec4 (Cin and Cout multiples
// of 4); rows and channels past the edge are clamped on load and skipped on store.

import {
  type Activation,
  type KernelFamily,
  activationWgsl,
  ceilDiv,
  grid,
  input,
  type ConstLayout,
  type Lowering,
  makeDispatch,
  output,
} from './kernel.js';
import { XYZW, actTWgsl, range, u, wgsl } from './wgsl.js';

export interface PointwiseGenericConfig {
  tm: number;
  tn: number;
  /** Workgroup shape: [channel blocks, pixel blocks]. */
  wg: [number, number];
  bias: boolean;
  residual: boolean;
  act: Activation;
}

function pointwiseGenericWgsl(c: PointwiseGenericConfig): string {
  const I = range(c.tm),
    J = range(c.tn / 4);
  const L: string[] = [];
  for (const i of I) {
    L.push(`  let o${i} = mb * ${u(c.tm)} + ${u(i)};`, `  let a${i} = min(o${i}, M - 1u) * K4;`);
  }
  L.push(`  let c0 = nb * ${u(c.tn / 4)};  // first vec4 of channels`);
  for (const j of J) L.push(`  let col${j} = min(c0 + ${u(j)}, N4 - 1u);`);
  for (const i of I) for (const j of J) L.push(`  var acc${i}_${j} = vec4<f32>(0.0);`);
  L.push('  for (var k = 0u; k < K4; k++) {');
  for (const i of I) L.push(`    let xa${i} = x[a${i} + k];`);
  for (const s of range(4)) {
    L.push(`    let wr${s} = 1u + (k * 4u + ${u(s)}) * N4;`);
    for (const j of J) L.push(`    let b${s}_${j} = w[wr${s} + col${j}];`);
    for (const i of I) for (const j of J) L.push(`    acc${i}_${j} += xa${i}.${XYZW[s]} * b${s}_${j};`);
  }
  L.push('  }');
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
  return wgsl`// pointwise conv, shapes from the header in w[0]: ${c.tm} pixels x ${c.tn} channels per invocation
${activationWgsl(c.act)}
${actTWgsl(true)}
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;  // input   [M, Cin] (NHWC)
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;  // header (M, Cin/4, Cout/4, grid x) as u32 bits, then weights [Cin, Cout]
#if ${c.bias}
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;  // bias    [Cout]
#endif
#if ${c.residual}
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;  // residual [M, Cout]
#endif
@group(0) @binding(${2 + Number(c.bias) + Number(c.residual)}) var<storage, read_write> y: array<vec4<f32>>;  // output  [M, Cout]

@compute @workgroup_size(${c.wg[0]}, ${c.wg[1]})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let hdr = bitcast<vec4<u32>>(w[0]);
  let M = hdr.x;
  let K4 = hdr.y;
  let N4 = hdr.z;
  let nbCount = (N4 + ${u(c.tn / 4 - 1)}) / ${u(c.tn / 4)};
  let wgx = (nbCount + ${u(c.wg[0] - 1)}) / ${u(c.wg[0])};
  let f = wid.x + wid.y * hdr.w;
  let nb = (f % wgx) * ${u(c.wg[0])} + lid.x;  // channel block
  let mb = (f / wgx) * ${u(c.wg[1])} + lid.y;  // pixel block
  if (nb >= nbCount || mb * ${u(c.tm)} >= M) { return; }
${L.join('\n')}
}
`;
}

export const pointwiseGenericFamily: KernelFamily<PointwiseGenericConfig> = {
  name: 'conv2d-pointwise-generic',
  wgsl: pointwiseGenericWgsl,
};

/**
 * The lowering of a pointwise conv of M pixels, Cin → Cout (both multiples of 4) on the generic
 * kernel: the dispatch, and the weights' layout with the header in front.
 */
export function lowerPointwiseGeneric(
  shape: { m: number; cin: number; cout: number; bias: boolean; residual: boolean; act: Activation },
  tile: { tm: number; tn: number },
  maxPerDim: number,
  cost: { flops: number; bytes: number },
): Lowering {
  const { m, cin, cout } = shape;
  const nbCount = ceilDiv(cout, tile.tn);
  // A fixed workgroup shape (4 channel blocks × 16 pixel blocks), so that it too is the same for every layer.
  const wgX = 4;
  const cfg: PointwiseGenericConfig = {
    tm: tile.tm,
    tn: tile.tn,
    wg: [wgX, 64 / wgX],
    bias: shape.bias,
    residual: shape.residual,
    act: shape.act,
  };
  const groups = grid(ceilDiv(nbCount, wgX) * ceilDiv(ceilDiv(m, tile.tm), cfg.wg[1]), maxPerDim);
  const header = new Uint32Array([m, cin / 4, cout / 4, groups[0]]);
  const bindings = [
    input(0),
    input(1),
    ...(shape.bias ? [input(2)] : []),
    ...(shape.residual ? [input(3)] : []),
    output(0),
  ];
  return {
    dispatches: [makeDispatch(pointwiseGenericFamily, cfg, groups, bindings, cost)],
    constLayouts: [genericHeaderLayout(header, 1, cin * cout)],
  };
}

/**
 * The shape-generic kernels' weights: w' = [header | w], the header's u32 words in front of w,
 * padded to `headerVec4` vec4s (made once at load). The layout name carries the header, so two
 * layers with the same weights but other shapes get their own copies.
 */
export function genericHeaderLayout(header: Uint32Array, headerVec4: number, wElems: number): ConstLayout {
  const pad = 4 * headerVec4;
  return {
    input: 1,
    layout: `generic-header-${[...header].join('x')}`,
    elements: pad + wElems,
    apply: (w: Float32Array) => {
      const out = new Float32Array(pad + w.length);
      new Uint32Array(out.buffer, 0, header.length).set(header);
      out.set(w, pad);
      return out;
    },
  };
}
