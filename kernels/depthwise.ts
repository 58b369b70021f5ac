// Depthwise convolution: the groups === Cin case of conv2d (MobileNet's 3×3 / 5×5 blocks).
// kernels/conv2d.ts owns the op and calls lowerDepthwise / depthwiseRef; this file owns no op.
//
// Computes  y[n,oh,ow,co] = act(b[co] + Σ_{kh,kw} x[n, oh·sh − top + kh·dh, ow·sw − left + kw·dw, ⌊co/m⌋] · w[kh,kw,0,co])
// with zero padding, where m = Cout/Cin is the channel multiplier.
//
// Layout: x [N,H,W,Cin] NHWC, w [KH,KW,1,Cout] HWIO, bias [Cout], y [N,OH,OW,Cout].
//
// Mapping: one invocation computes a ph×pw block of output pixels (ph rows, pw columns) for 4
// consecutive output channels, held as ph·pw vec4 accumulators in registers. The flat
// invocation index runs channel block fastest, then W block, H block, batch. In the unrolled
// variant the invocation loads each input row of its block's window once, and in it each input
// column once (pixel p and tap k read column p·sw + k·dw, so neighbouring pixels share
// columns; likewise rows), and feeds every (output pixel, tap) pair that reads it. Padding is
// a bounds check per input row and a clamped load + select per column.
// No workgroup memory and no barriers: on SwiftShader those are slow and register blocking is
// cheap (docs/swiftshader.md). There every load is a per-lane gather, so what counts is FMAs per
// load, which the block raises: 3×3 stride 1 with 4×4 pixels is 36 column loads for 144 vec4
// FMAs, against 9 per pixel unblocked.
//
// Channel access (config xVec4 / yVec4, picked from the shapes, not variants):
// - xVec4: m = 1 and Cin % 4 == 0, x is read as vec4; otherwise 4 scalar gathers at channels
//   ⌊co/m⌋ (clamped to the last channel), so any Cin and multiplier works.
// - yVec4: Cout % 4 == 0, weights, bias and output are vec4; otherwise scalar loads at clamped
//   channels and a masked scalar store.
//
// Variants (ctx.prefer.depthwise, a DepthwiseVariant: config field `variant`, optionally with the
// pixel block ph×pw and the workgroup size, e.g. 'unrolled,block=2x4' in the kernels/variant.ts syntax):
// - 'unrolled': every tap is unrolled at generation time (shapes are baked in): the fast path for
//   3×3 / 5×5 at stride 1 or 2, and the default up to 7×7 taps.
// - 'loop': runtime loops over kh and kw (the block still in registers, but no column reuse):
//   the generic path for larger kernels, and with pw = ph = 1 the naive GPU oracle.
// - 'wgmem' (for real GPUs; depthwiseWgmemWgsl): a workgroup of tx × ty invocations owns a
//   (ty·ph) × (tx·pw) tile of output pixels for 4 channels; it stages the tile's input window
//   (the halo: (ty·ph − 1)·sh + (kh − 1)·dh + 1 rows, likewise columns, one vec4 per pixel) in
//   workgroup memory, zeros in the padding, then one barrier, and every invocation reads its
//   taps from there. tx = 8 and ty = wg / 8 at most, fewer where the output is smaller; the
//   halo must fit maxComputeWorkgroupStorageSize (depthwiseWgmemFits).
//
// Default blocks (lowerDepthwise), from a side-by-side run on SwiftShader (2 shared cores, so
// ±30% noise), MobileNetV2 layers with relu6: 4×4 gave ~0.8–1.3 GFLOP/s on 3×3 s1/s2 and
// 5×5 s1 against ~0.4–0.8 for 4×1 and ~0.2–0.4 for 'loop'; compile time grows with the
// block (~0.3–2 s for 4×4), hence 4×2 for 7×7 and the loop beyond.

import {
  type Activation,
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type Lowering,
  type Shape,
  activationRef,
  activationWgsl,
  ceilDiv,
  expectRank,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
} from './kernel.js';
import { XYZW, actTWgsl, ceilPow2, flatMain, range, vecType, wgsl, workgroupIndex } from './wgsl.js';
import { lowerDepthwiseGeneric } from './depthwise-generic.js';
import { defineVariant } from './variant.js';

/** The conv2d attrs, as conv2d passes them (groups, when given, must equal Cin). */
export interface DepthwiseAttrs {
  stride?: readonly [number, number];
  /** [top, left, bottom, right] */
  pad?: readonly [number, number, number, number];
  dilation?: readonly [number, number];
  groups?: number;
  act?: Activation;
}

export type DepthwiseMode = 'unrolled' | 'loop' | 'wgmem';
export const DEPTHWISE_MODES: readonly DepthwiseMode[] = ['unrolled', 'loop', 'wgmem'];

export interface DepthwiseConfig {
  // Shapes (baked into the WGSL).
  n: number;
  h: number;
  w: number;
  c: number;
  cout: number;
  kh: number;
  kw: number;
  oh: number;
  ow: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  padTop: number;
  padLeft: number;
  bias: boolean;
  act: Activation;
  // Channel access, from the shapes.
  xVec4: boolean;
  yVec4: boolean;
  // Mapping.
  variant: DepthwiseMode;
  /** Output pixels per invocation along W and H (register block of pw·ph vec4 accumulators). */
  pw: number;
  ph: number;
  /** Invocations per workgroup. */
  wg: number;
  /** 'wgmem': the workgroup's invocations along W and H (tx·ty = wg); 0 otherwise. */
  tx: number;
  ty: number;
  /** Workgroups along x of the 2-D grid (see grid()). */
  gridX: number;
}

/** ctx.prefer.depthwise; unset fields are the heuristic's (lowerDepthwise). */
export interface DepthwiseVariant {
  variant?: DepthwiseMode;
  /** Pixel block: output rows × columns per invocation. */
  ph?: number;
  pw?: number;
  /** Invocations per workgroup. */
  wg?: number;
  /** The shape-generic kernel (kernels/depthwise-generic.ts): one pipeline per window for all layers. */
  generic?: boolean;
}

export const depthwiseVariant = defineVariant<DepthwiseVariant>('depthwise', [
  { kind: 'enum', key: 'variant', values: DEPTHWISE_MODES, bare: true },
  { kind: 'pair', name: 'block', keys: ['ph', 'pw'], min: [1, 1] },
  { kind: 'int', key: 'wg', min: 1 },
  { kind: 'flag', key: 'generic' },
]);

interface Geometry {
  n: number;
  h: number;
  w: number;
  c: number;
  cout: number;
  kh: number;
  kw: number;
  oh: number;
  ow: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pad: readonly [number, number, number, number];
}

/** Validates shapes and attrs (ShapeError naming the shapes) and returns the geometry. */
function geometry(a: DepthwiseAttrs, inputs: Shape[]): Geometry {
  const [x, wt, b] = inputs;
  const shapes = inputs.map(fmtShape).join(', ');
  expectRank('depthwise input x [N,H,W,C]', x, 4);
  expectRank('depthwise weight w [KH,KW,1,Cout]', wt, 4);
  const [n, h, w, c] = x;
  const [kh, kw, one, cout] = wt;
  if (one !== 1 || cout % c !== 0 || cout < c) {
    throw new ShapeError(`depthwise weight ${fmtShape(wt)} must be [KH,KW,1,m·C] for input ${fmtShape(x)} (C = ${c})`);
  }
  if (a.groups !== undefined && a.groups !== c) {
    throw new ShapeError(`depthwise needs groups = C = ${c}, got groups = ${a.groups} (shapes ${shapes})`);
  }
  if (b && (b.length !== 1 || b[0] !== cout)) {
    throw new ShapeError(`depthwise bias ${fmtShape(b)} must be [${cout}] for weight ${fmtShape(wt)}`);
  }
  const [sh, sw] = a.stride ?? [1, 1];
  const [dh, dw] = a.dilation ?? [1, 1];
  const pad = a.pad ?? [0, 0, 0, 0];
  const posInt = (v: number) => Number.isInteger(v) && v >= 1;
  if (![sh, sw, dh, dw].every(posInt) || pad.length !== 4 || !pad.every((p) => Number.isInteger(p) && p >= 0)) {
    throw new ShapeError(
      `depthwise: bad stride [${sh},${sw}], dilation [${dh},${dw}] or pad [${pad.join(',')}] (shapes ${shapes})`,
    );
  }
  const oh = Math.floor((h + pad[0] + pad[2] - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pad[1] + pad[3] - dw * (kw - 1) - 1) / sw) + 1;
  if (oh < 1 || ow < 1 || n < 1 || c < 1 || kh < 1 || kw < 1) {
    throw new ShapeError(
      `depthwise: kernel ${fmtShape(wt)} with dilation [${dh},${dw}] does not fit input ${fmtShape(x)} padded by [${pad.join(',')}] (output ${oh}×${ow})`,
    );
  }
  return { n, h, w, c, cout, kh, kw, oh, ow, sh, sw, dh, dw, pad };
}

/** Output shape [N,OH,OW,Cout]; throws ShapeError naming the shapes on a mismatch. */
export function depthwiseInfer(a: DepthwiseAttrs, inputs: Shape[]): Shape[] {
  const g = geometry(a, inputs);
  return [[g.n, g.oh, g.ow, g.cout]];
}

// ---- WGSL ------------------------------------------------------------------------------------

/** Distinct offsets s·i + d·k for i < block, k < taps: the input rows/columns a block of outputs reads. */
function offsets(block: number, s: number, taps: number, d: number): number[] {
  const set = new Set<number>();
  for (let i = 0; i < block; i++) for (let k = 0; k < taps; k++) set.add(i * s + k * d);
  return [...set].sort((a, b) => a - b);
}

/** Rows × columns of input pixels a 'wgmem' workgroup stages (its tile's window). */
function halo(c: Pick<DepthwiseConfig, 'tx' | 'ty' | 'ph' | 'pw' | 'sh' | 'sw' | 'dh' | 'dw' | 'kh' | 'kw'>) {
  return {
    hh: (c.ty * c.ph - 1) * c.sh + (c.kh - 1) * c.dh + 1,
    hw: (c.tx * c.pw - 1) * c.sw + (c.kw - 1) * c.dw + 1,
  };
}

/** The 'wgmem' variant (see the header): halo in workgroup memory, one barrier, taps unrolled. */
function depthwiseWgmemWgsl(c: DepthwiseConfig): string {
  const cb = ceilDiv(c.cout, 4);
  const TW = c.tx * c.pw,
    TH = c.ty * c.ph;
  const owt = ceilDiv(c.ow, TW),
    oht = ceilDiv(c.oh, TH);
  const total = c.n * oht * owt * cb;
  const { hh, hw } = halo(c);
  const m = c.cout / c.c;
  const X = vecType(c.xVec4);
  const Y = vecType(c.yVec4);
  const gather = (arr: string, base: string, lanes: string) =>
    `vec4<f32>(${XYZW.map((l) => `${arr}[${base} + ${lanes}.${l}]`).join(', ')})`;
  const ldx = (pix: string) => (c.xVec4 ? `x[${pix} * ${c.c / 4}u + cb]` : gather('x', `${pix} * ${c.c}u`, 'ci'));
  const ldw = (tap: number) => (c.yVec4 ? `w[${tap}u * ${cb}u + cb]` : gather('w', `${tap * c.cout}u`, 'cc'));
  const blk = range(c.ph).flatMap((q) => range(c.pw).map((p) => [q, p] as const));
  const taps = range(c.kh).flatMap((kh) => range(c.kw).map((kw) => [kh, kw] as const));
  const body = taps
    .map(([kh, kw]) => {
      const t = kh * c.kw + kw;
      const lines = [`  { let wt = ${ldw(t)};`];
      for (const [q, p] of blk)
        lines.push(
          `    acc${q}_${p} += tile[(hy0 + ${q * c.sh + kh * c.dh}u) * ${hw}u + hx0 + ${p * c.sw + kw * c.dw}u] * wt;`,
        );
      lines.push('  }');
      return lines.join('\n');
    })
    .join('\n');
  const store = ([q, p]: readonly [number, number]) => {
    const oh = `oh0 + ${q}u`,
      ow = `ow0 + ${p}u`;
    const pix = `(n * ${c.oh}u + ${oh}) * ${c.ow}u + ${ow}`;
    const v = `actT(acc${q}_${p})`;
    const st = c.yVec4
      ? `y[(${pix}) * ${cb}u + cb] = ${v};`
      : `let v = ${v};\n${XYZW.map((l, k) => `    if (co0 + ${k}u < ${c.cout}u) { y[(${pix}) * ${c.cout}u + co0 + ${k}u] = v.${l}; }`).join('\n')}`;
    return `  if (${oh} < ${c.oh}u && ${ow} < ${c.ow}u) { ${st} }`;
  };
  return wgsl`// depthwise through workgroup memory: ${TH}x${TW} output pixels x 4 channels per workgroup, ${c.ph}x${c.pw} per invocation
${activationWgsl(c.act)}
${actTWgsl(true)}

@group(0) @binding(0) var<storage, read> x: array<${X}>;        // input  [${c.n},${c.h},${c.w},${c.c}]
@group(0) @binding(1) var<storage, read> w: array<${Y}>;        // weight [${c.kh},${c.kw},1,${c.cout}]
#if ${c.bias}
@group(0) @binding(2) var<storage, read> b: array<${Y}>;        // bias   [${c.cout}]
#endif
@group(0) @binding(${c.bias ? 3 : 2}) var<storage, read_write> y: array<${Y}>;  // output [${c.n},${c.oh},${c.ow},${c.cout}]
var<workgroup> tile: array<vec4<f32>, ${hh * hw}>;  // input window [${hh}, ${hw}] of this tile, 4 channels

@compute @workgroup_size(${c.tx}, ${c.ty})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let f = ${workgroupIndex(c.gridX)};
  if (f >= ${total}u) { return; }  // whole workgroups only
  let cb = f % ${cb}u;
  var r = f / ${cb}u;
  let tw0 = (r % ${owt}u) * ${TW}u;
  r = r / ${owt}u;
  let th0 = (r % ${oht}u) * ${TH}u;
  let n = r / ${oht}u;
  let co0 = cb * 4u;
  let cc = min(vec4<u32>(co0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(${c.cout - 1}u)); // output channels, clamped
  let ci = cc / ${m}u; // their input channels
  let ih0 = i32(th0 * ${c.sh}u) - ${c.padTop};
  let iw0 = i32(tw0 * ${c.sw}u) - ${c.padLeft};
  for (var e = li; e < ${hh * hw}u; e += ${c.wg}u) {
    let ih = ih0 + i32(e / ${hw}u);
    let iw = iw0 + i32(e % ${hw}u);
    let inside = u32(ih) < ${c.h}u && u32(iw) < ${c.w}u;
    let pix = (n * ${c.h}u + u32(clamp(ih, 0, ${c.h - 1}))) * ${c.w}u + u32(clamp(iw, 0, ${c.w - 1}));
    tile[e] = select(vec4<f32>(0.0), ${ldx('pix')}, inside);
  }
  workgroupBarrier();
  let oh0 = th0 + lid.y * ${c.ph}u;
  let ow0 = tw0 + lid.x * ${c.pw}u;
  let hy0 = lid.y * ${c.ph * c.sh}u;
  let hx0 = lid.x * ${c.pw * c.sw}u;
${c.bias ? `  let bias = ${c.yVec4 ? 'b[cb]' : gather('b', '0u', 'cc')};` : ''}
${blk.map(([q, p]) => `  var acc${q}_${p} = ${c.bias ? 'bias' : 'vec4<f32>(0.0)'};`).join('\n')}
${body}
${blk.map(store).join('\n')}
}
`;
}

export const depthwise: KernelFamily<DepthwiseConfig> = {
  name: 'depthwise',
  wgsl(c) {
    if (c.variant === 'wgmem') return depthwiseWgmemWgsl(c);
    const cb = ceilDiv(c.cout, 4); // channel blocks
    const owb = ceilDiv(c.ow, c.pw); // W blocks
    const ohb = ceilDiv(c.oh, c.ph); // H blocks
    const total = c.n * ohb * owb * cb;
    const m = c.cout / c.c;
    const X = vecType(c.xVec4);
    const Y = vecType(c.yVec4);
    const gather = (arr: string, base: string, lanes: string) =>
      `vec4<f32>(${XYZW.map((l) => `${arr}[${base} + ${lanes}.${l}]`).join(', ')})`;
    // This invocation's 4 channels of input pixel `pix` (lane: channel block or input channels),
    // of weight tap `tap`, of the bias.
    const ldx = (pix: string, lane: string) =>
      c.xVec4 ? `x[${pix} * ${c.c / 4}u + ${lane}]` : gather('x', `${pix} * ${c.c}u`, lane);
    const ldw = (tap: string) => (c.yVec4 ? `w[${tap} * ${cb}u + cb]` : gather('w', `${tap} * ${c.cout}u`, 'cc'));
    const ldb = c.yVec4 ? 'b[cb]' : gather('b', '0u', 'cc');
    const lane = c.xVec4 ? 'cb' : 'ci';
    const laneT = c.xVec4 ? 'u32' : 'vec4<u32>';
    // Accumulator acc{q}_{p}: output pixel (oh0 + q, ow0 + p).
    const blk = range(c.ph).flatMap((q) => range(c.pw).map((p) => [q, p] as const));
    const rowOf = (ih: string) => `(n * ${c.h}u + u32(${ih})) * ${c.w}u`;

    let body = '';
    if (c.variant === 'unrolled') {
      // All taps' weights once, then each input row of the block once: its columns are loaded
      // once and feed every (output row, kernel row) pair that reads that input row.
      body += range(c.kh * c.kw)
        .map((t) => `  let w${t} = ${ldw(`${t}u`)};\n`)
        .join('');
      const cols = offsets(c.pw, c.sw, c.kw, c.dw);
      for (const ro of offsets(c.ph, c.sh, c.kh, c.dh)) {
        body += `  {
    let ih = ih0 + ${ro};
    if (u32(ih) < ${c.h}u) {
      let row = ${rowOf('ih')};
${cols.map((o) => `      let c${o} = col(row, iw0 + ${o}, ${lane});`).join('\n')}
`;
        for (const q of range(c.ph)) {
          const kh = (ro - q * c.sh) / c.dh;
          if (!Number.isInteger(kh) || kh < 0 || kh >= c.kh) continue;
          for (const kw of range(c.kw)) {
            body += range(c.pw)
              .map((p) => `      acc${q}_${p} += c${p * c.sw + kw * c.dw} * w${kh * c.kw + kw};\n`)
              .join('');
          }
        }
        body += '    }\n  }\n';
      }
    } else {
      body = `  for (var kh = 0u; kh < ${c.kh}u; kh++) {
    for (var kw = 0u; kw < ${c.kw}u; kw++) {
      let wk = ${ldw(`(kh * ${c.kw}u + kw)`)};
      let iwk = iw0 + i32(kw * ${c.dw}u);
${range(c.ph)
  .map(
    (q) => `      {
        let ih = ih0 + ${q * c.sh} + i32(kh * ${c.dh}u);
        if (u32(ih) < ${c.h}u) {
          let row = ${rowOf('ih')};
${range(c.pw)
  .map((p) => `          acc${q}_${p} += col(row, iwk + ${p * c.sw}, ${lane}) * wk;`)
  .join('\n')}
        }
      }`,
  )
  .join('\n')}
    }
  }
`;
    }

    const store = ([q, p]: readonly [number, number]) => {
      const pix = `obase + ${q * c.ow + p}u`;
      const v = `actT(acc${q}_${p})`;
      const st = c.yVec4
        ? `y[(${pix}) * ${cb}u + cb] = ${v};`
        : `let v = ${v};\n${XYZW.map((l, k) => `    if (co0 + ${k}u < ${c.cout}u) { y[(${pix}) * ${c.cout}u + co0 + ${k}u] = v.${l}; }`).join('\n')}`;
      const conds = [q > 0 ? `oh0 + ${q}u < ${c.oh}u` : '', p > 0 ? `ow0 + ${p}u < ${c.ow}u` : ''].filter(Boolean);
      return conds.length ? `  if (${conds.join(' && ')}) { ${st} }` : `  { ${st} }`;
    };

    return wgsl`
${activationWgsl(c.act)}
${actTWgsl(true)}

@group(0) @binding(0) var<storage, read> x: array<${X}>;        // input  [${c.n},${c.h},${c.w},${c.c}]
@group(0) @binding(1) var<storage, read> w: array<${Y}>;        // weight [${c.kh},${c.kw},1,${c.cout}]
#if ${c.bias}
@group(0) @binding(2) var<storage, read> b: array<${Y}>;        // bias   [${c.cout}]
#endif
@group(0) @binding(${c.bias ? 3 : 2}) var<storage, read_write> y: array<${Y}>;  // output [${c.n},${c.oh},${c.ow},${c.cout}]

// Input column iw of row \`row\` (flat (n,ih) pixel index · W) for this invocation's channels; 0 in the padding.
fn col(row: u32, iw: i32, lane: ${laneT}) -> vec4<f32> {
  let pix = row + u32(clamp(iw, 0, ${c.w - 1}));
  let v = ${ldx('pix', 'lane')};
  return select(vec4<f32>(0.0), v, u32(iw) < ${c.w}u);
}

${flatMain(c.wg, c.gridX)}
  if (t >= ${total}u) { return; }
  let cb = t % ${cb}u;
  var r = t / ${cb}u;
  let ow0 = (r % ${owb}u) * ${c.pw}u;
  r = r / ${owb}u;
  let oh0 = (r % ${ohb}u) * ${c.ph}u;
  let n = r / ${ohb}u;
  let co0 = cb * 4u;
#if ${!(c.xVec4 && c.yVec4)}
  let cc = min(vec4<u32>(co0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(${c.cout - 1}u)); // output channels, clamped
  let ci = cc / ${m}u; // their input channels
#endif
  let ih0 = i32(oh0 * ${c.sh}u) - ${c.padTop};
  let iw0 = i32(ow0 * ${c.sw}u) - ${c.padLeft};
#if ${c.bias}
  let bias = ${ldb};
#endif
${blk.map(([q, p]) => `  var acc${q}_${p} = ${c.bias ? 'bias' : 'vec4<f32>(0.0)'};`).join('\n')}
${body}
  let obase = (n * ${c.oh}u + oh0) * ${c.ow}u + ow0;
${blk.map(store).join('\n')}
}
`;
  },
};

// ---- lowering --------------------------------------------------------------------------------

/** Tuner candidates (besides the heuristic): smaller unrolled blocks trade run time for compile time. */
export const DEPTHWISE_TUNE_CANDIDATES = [
  'unrolled',
  'unrolled,block=2x4',
  'unrolled,block=2x2',
  'loop',
  'loop,block=2x4',
];

/** A 'wgmem' workgroup: up to 8 invocations along W, the rest of `wg` along H, no more of either than the output needs. */
function wgmemShape(g: Geometry, ph: number, pw: number, wg: number): { tx: number; ty: number } {
  const tx = Math.min(8, wg, ceilPow2(ceilDiv(g.ow, pw)));
  return { tx, ty: Math.max(1, Math.min(Math.floor(wg / tx), ceilPow2(ceilDiv(g.oh, ph)))) };
}

/**
 * Whether a 'wgmem' tiling fits the device: tx·ty invocations and the halo, 16 bytes per
 * staged pixel, within the limits; otherwise the reason.
 */
export function depthwiseWgmemFits(
  c: Pick<DepthwiseConfig, 'tx' | 'ty' | 'ph' | 'pw' | 'sh' | 'sw' | 'dh' | 'dw' | 'kh' | 'kw'>,
  limits: LowerContext['limits'],
): true | string {
  const { hh, hw } = halo(c);
  const bytes = 16 * hh * hw;
  if (c.tx * c.ty > limits.maxComputeInvocationsPerWorkgroup)
    return `${c.tx * c.ty} invocations, over maxComputeInvocationsPerWorkgroup ${limits.maxComputeInvocationsPerWorkgroup}`;
  if (bytes > limits.maxComputeWorkgroupStorageSize)
    return `its ${hh}x${hw} input window needs ${bytes} bytes of workgroup memory, over maxComputeWorkgroupStorageSize ${limits.maxComputeWorkgroupStorageSize}`;
  return true;
}

/**
 * Tuner candidates for one depthwise layer: DEPTHWISE_TUNE_CANDIDATES, and the 'wgmem' tilings
 * (one pixel or a 2×2 block per invocation, 64 invocations) where they fit the device.
 */
export function depthwiseTuneCandidates(a: DepthwiseAttrs, inputs: Shape[], ctx: LowerContext): string[] {
  const out = [...DEPTHWISE_TUNE_CANDIDATES];
  const g = geometry(a, inputs);
  // One pipeline per window for every such layer: less to build at a cold start, some run time lost.
  if (genericOk(g, ctx)) out.push('generic');
  if (ctx.cpuAdapter) return out;
  for (const [v, b] of [
    ['wgmem', 1],
    ['wgmem,block=2x2', 2],
  ] as const) {
    const [ph, pw] = [Math.min(b, g.oh), Math.min(b, g.ow)];
    if (depthwiseWgmemFits({ ...g, ...wgmemShape(g, ph, pw, 64), ph, pw }, ctx.limits) === true) out.push(v);
  }
  return out;
}

/** Like lowerDepthwise, with variant fields forced over ctx.prefer's (benchmarks, tests). */
export function planDepthwise(
  a: DepthwiseAttrs,
  inputs: Shape[],
  outputs: Shape[],
  ctx: LowerContext,
  tune: DepthwiseVariant = {},
): Lowering {
  const g = geometry(a, inputs);
  const out = outputs[0];
  if (out && fmtShape(out) !== fmtShape([g.n, g.oh, g.ow, g.cout])) {
    throw new ShapeError(
      `depthwise output ${fmtShape(out)} does not match inputs ${inputs.map(fmtShape).join(', ')} (expected ${fmtShape([g.n, g.oh, g.ow, g.cout])})`,
    );
  }
  const bias = inputs.length > 2;
  const pref = depthwiseVariant.of(ctx.prefer) ?? {};
  const taps = g.kh * g.kw;
  const outN = g.n * g.oh * g.ow * g.cout;
  const cost = {
    flops: 2 * outN * g.kh * g.kw,
    bytes: 4 * (numel(inputs[0]) + numel(inputs[1]) + (bias ? g.cout : 0) + outN),
  };
  if (tune.generic ?? pref.generic) {
    const v = depthwiseVariant.format({ ...pref, ...tune });
    if ((tune.variant ?? pref.variant) !== undefined || !genericOk(g, ctx))
      throw new Error(
        `depthwise variant "${v}": 'generic' takes only block=<ph>x<pw> and wg=<n>, and a depthwise conv with multiplier 1, C a multiple of 4 and constant weights (got C ${g.c}, Cout ${g.cout})`,
      );
    const block = {
      ph: tune.ph ?? pref.ph ?? (taps <= 25 ? 4 : 2),
      pw: tune.pw ?? pref.pw ?? 4,
      wg: tune.wg ?? pref.wg ?? 64,
    };
    const shape = { ...g, padTop: g.pad[0], padLeft: g.pad[1], bias, act: a.act ?? 'none' };
    return lowerDepthwiseGeneric(shape, block, ctx.limits.maxComputeWorkgroupsPerDimension, cost);
  }
  const variant = tune.variant ?? pref.variant ?? (taps <= 49 ? 'unrolled' : 'loop');
  const wgmem = variant === 'wgmem';
  const pw = Math.max(1, Math.min(tune.pw ?? pref.pw ?? (wgmem ? 1 : 4), g.ow));
  const ph = Math.max(
    1,
    Math.min(tune.ph ?? pref.ph ?? (variant === 'unrolled' && taps <= 25 ? 4 : wgmem ? 1 : 2), g.oh),
  );
  let wg = tune.wg ?? pref.wg ?? 64;
  let tx = 0,
    ty = 0;
  if (wgmem) {
    ({ tx, ty } = wgmemShape(g, ph, pw, wg));
    wg = tx * ty;
    const fit = depthwiseWgmemFits({ ...g, tx, ty, ph, pw }, ctx.limits);
    if (fit !== true) throw new Error(`depthwise variant 'wgmem' (block ${ph}x${pw}, ${tx}x${ty} invocations): ${fit}`);
  }
  const count = wgmem
    ? g.n * ceilDiv(g.oh, ty * ph) * ceilDiv(g.ow, tx * pw) * ceilDiv(g.cout, 4)
    : ceilDiv(g.n * ceilDiv(g.oh, ph) * ceilDiv(g.ow, pw) * ceilDiv(g.cout, 4), wg);
  const groups = grid(count, ctx.limits.maxComputeWorkgroupsPerDimension);
  const cfg: DepthwiseConfig = {
    n: g.n,
    h: g.h,
    w: g.w,
    c: g.c,
    cout: g.cout,
    kh: g.kh,
    kw: g.kw,
    oh: g.oh,
    ow: g.ow,
    sh: g.sh,
    sw: g.sw,
    dh: g.dh,
    dw: g.dw,
    padTop: g.pad[0],
    padLeft: g.pad[1],
    bias,
    act: a.act ?? 'none',
    xVec4: g.cout === g.c && g.c % 4 === 0,
    yVec4: g.cout % 4 === 0,
    variant,
    pw,
    ph,
    wg,
    tx,
    ty,
    gridX: groups[0],
  };
  const bindings = bias ? [input(0), input(1), input(2), output(0)] : [input(0), input(1), output(0)];
  return { dispatches: [makeDispatch(depthwise, cfg, groups, bindings, cost)] };
}

/** The generic kernel's domain: multiplier 1, channels in fours, constant weights (the header rides on them). */
function genericOk(g: Geometry, ctx: LowerContext): boolean {
  return g.cout === g.c && g.c % 4 === 0 && ctx.constInputs?.[1] === true;
}

/** Lowering for conv2d with groups === Cin: inputs x, w [, bias], output [N,OH,OW,Cout]. */
export function lowerDepthwise(a: DepthwiseAttrs, inputs: Shape[], outputs: Shape[], ctx: LowerContext): Lowering {
  return planDepthwise(a, inputs, outputs, ctx);
}

// ---- reference -------------------------------------------------------------------------------

export function depthwiseRef(a: DepthwiseAttrs, inputs: HostTensor[]): HostTensor[] {
  const [x, wt, b] = inputs;
  const g = geometry(
    a,
    inputs.map((t) => t.shape),
  );
  const { n, h, w, c, cout, kh, kw, oh, ow, sh, sw, dh, dw, pad } = g;
  const m = cout / c;
  const f = activationRef(a.act ?? 'none');
  const y = new Float32Array(n * oh * ow * cout);
  for (let bi = 0; bi < n; bi++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let co = 0; co < cout; co++) {
          const ci = Math.floor(co / m);
          let s = b ? b.data[co] : 0;
          for (let u = 0; u < kh; u++) {
            const ih = i * sh - pad[0] + u * dh;
            if (ih < 0 || ih >= h) continue;
            for (let v = 0; v < kw; v++) {
              const iw = j * sw - pad[1] + v * dw;
              if (iw < 0 || iw >= w) continue;
              s += x.data[((bi * h + ih) * w + iw) * c + ci] * wt.data[(u * kw + v) * cout + co];
            }
          }
          y[((bi * oh + i) * ow + j) * cout + co] = f(s);
        }
      }
    }
  }
  return [{ shape: [n, oh, ow, cout], data: y }];
}
