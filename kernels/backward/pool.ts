// Backward kernels of windowed pooling (kernels/pool.ts), NHWC:
//
//   maxpool_grad  inputs [x, dy], attrs = maxpool's             → dx [N,H,W,C]
//     every window routes its dy to the tap that won its max: the first tap in scan order (ky,
//     then kx) holding the window's maximum (ties go to the earliest, as PyTorch's kernels do);
//     padded taps never win, as in the forward op.
//   avgpool_grad  inputs [dy], attrs = avgpool's + xShape        → dx [N,H,W,C]
//     every window spreads dy / divisor over its taps inside the input, the divisor being the
//     forward op's (taps inside the padded extent with countIncludePad, else inside the input).
//
// Family `pool2d_grad`, one invocation per input pixel and 4 channels (vec4 when C % 4 == 0,
// else lane by lane), in gather form: no two invocations write the same element, so no atomics.
// The windows that read pixel (iy, ix) through tap (ky, kx) are those with
// oy = (iy + top − ky·dh)/sh and ox = (ix + left − kx·dw)/sw whole and inside the output (the
// transposed-convolution arithmetic of docs/backward-conv.md). For max, the invocation rescans
// each such window to find its winner (recomputing instead of storing argmax indices in the
// forward pass keeps the forward op unchanged; a 3×3 stride-2 window is read ~2.25 times).

import {
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type Lowering,
  type OpDef,
  type Shape,
  ceilDiv,
  expectRank,
  fmtShape,
  grid,
  input,
  makeDispatch,
  output,
  ShapeError,
} from '../kernel.js';
import { type AvgPoolAttrs, type PoolAttrs, avgpoolOp, maxpoolOp } from '../pool.js';
import { flatMain, u, vecType, wgsl } from '../wgsl.js';

const WG = 64;

export interface AvgpoolGradAttrs extends AvgPoolAttrs {
  /** The forward input's shape [N,H,W,C]. */
  xShape: [number, number, number, number];
}

interface PoolGradGeom {
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
  /** [top, left, bottom, right] */
  pad: [number, number, number, number];
  dh: number;
  dw: number;
}

/** Checks the forward attrs on x (the forward op's own checks) and dy against its output. */
function geometry(op: string, a: PoolAttrs, x: Shape, dy: Shape): PoolGradGeom {
  const [out] = maxpoolOp.infer(a, [x]);
  if (dy.length !== 4 || dy.some((d, i) => d !== out[i])) {
    throw new ShapeError(
      `${op}: dy ${fmtShape(dy)} must be the pooling output's shape ${fmtShape(out)} (x ${fmtShape(x)})`,
    );
  }
  const [sh, sw] = a.stride ?? a.kernel;
  const pad = a.pad ?? [0, 0, 0, 0];
  const [dh, dw] = a.dilation ?? [1, 1];
  return {
    n: x[0],
    h: x[1],
    w: x[2],
    c: x[3],
    oh: out[1],
    ow: out[2],
    kh: a.kernel[0],
    kw: a.kernel[1],
    sh,
    sw,
    pad: [pad[0], pad[1], pad[2], pad[3]],
    dh,
    dw,
  };
}

interface PoolGradConfig extends PoolGradGeom {
  mode: 'max' | 'avg';
  countIncludePad: boolean;
  vec4: boolean;
  wg: number;
  gridX: number;
}

/** WGSL loadDy/loadX/store4 of channels c4·4 … c4·4+3 of pixel `pix`; lanes past C read 0 and are not written. */
function channelIo(c: number, vec4: boolean, readsX: boolean): string {
  const c4 = ceilDiv(c, 4);
  const load = (name: string, buf: string) =>
    vec4
      ? `fn ${name}(pix: u32, c4: u32) -> vec4<f32> { return ${buf}[pix * ${u(c4)} + c4]; }`
      : `fn ${name}(pix: u32, c4: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var k = 0u; k < 4u; k++) { if (c4 * 4u + k < ${u(c)}) { v[k] = ${buf}[pix * ${u(c)} + c4 * 4u + k]; } }
  return v;
}`;
  const store = vec4
    ? `fn store4(pix: u32, c4: u32, v: vec4<f32>) { dx[pix * ${u(c4)} + c4] = v; }`
    : `fn store4(pix: u32, c4: u32, v: vec4<f32>) {
  for (var k = 0u; k < 4u; k++) { if (c4 * 4u + k < ${u(c)}) { dx[pix * ${u(c)} + c4 * 4u + k] = v[k]; } }
}`;
  return [load('loadDy', 'dy'), ...(readsX ? [load('loadX', 'x')] : []), store].join('\n');
}

const poolGradFamily: KernelFamily<PoolGradConfig> = {
  name: 'pool2d_grad',
  wgsl(c) {
    const T = vecType(c.vec4);
    const c4 = ceilDiv(c.c, 4);
    const total = c.n * c.h * c.w * c4;
    const isMax = c.mode === 'max';
    const [pt, pl, pb, pr] = c.pad;
    const [ylo, yhi, xlo, xhi] = c.countIncludePad ? [-pt, c.h + pb, -pl, c.w + pr] : [0, c.h, 0, c.w];
    return wgsl`// pool2d_grad ${c.mode}: one input pixel x 4 channels per invocation, gathering from the windows that read it
#if ${isMax}
@group(0) @binding(0) var<storage, read> x: array<${T}>;  // forward input [${c.n},${c.h},${c.w},${c.c}]
@group(0) @binding(1) var<storage, read> dy: array<${T}>;  // output gradient [${c.n},${c.oh},${c.ow},${c.c}]
@group(0) @binding(2) var<storage, read_write> dx: array<${T}>;  // input gradient [${c.n},${c.h},${c.w},${c.c}]
#else
@group(0) @binding(0) var<storage, read> dy: array<${T}>;  // output gradient [${c.n},${c.oh},${c.ow},${c.c}]
@group(0) @binding(1) var<storage, read_write> dx: array<${T}>;  // input gradient [${c.n},${c.h},${c.w},${c.c}]
#endif
${channelIo(c.c, c.vec4, isMax)}

${flatMain(c.wg, c.gridX)}
  if (t >= ${u(total)}) { return; }
  let c4 = t % ${u(c4)};
  var r = t / ${u(c4)};
  let ix = r % ${u(c.w)};
  r = r / ${u(c.w)};
  let iy = r % ${u(c.h)};
  let n = r / ${u(c.h)};
  var acc = vec4<f32>(0.0);
  for (var ky = 0u; ky < ${u(c.kh)}; ky++) {
    let ty = i32(iy) + ${pt} - i32(ky * ${u(c.dh)});
    if (ty < 0) { break; }
    if (ty % ${c.sh} != 0) { continue; }
    let oy = u32(ty) / ${u(c.sh)};
    if (oy >= ${u(c.oh)}) { continue; }
    let y0 = i32(oy * ${u(c.sh)}) - ${pt};
    for (var kx = 0u; kx < ${u(c.kw)}; kx++) {
      let tx = i32(ix) + ${pl} - i32(kx * ${u(c.dw)});
      if (tx < 0) { break; }
      if (tx % ${c.sw} != 0) { continue; }
      let ox = u32(tx) / ${u(c.sw)};
      if (ox >= ${u(c.ow)}) { continue; }
      let x0 = i32(ox * ${u(c.sw)}) - ${pl};
      let d = loadDy((n * ${u(c.oh)} + oy) * ${u(c.ow)} + ox, c4);
#if ${isMax}
      // Rescan the window: the first strictly greater tap wins, padded taps are skipped.
      var best = vec4<f32>(0.0);
      var arg = vec4<u32>(0u);
      var seeded = false;
      for (var wy = 0u; wy < ${u(c.kh)}; wy++) {
        let sy = y0 + i32(wy * ${u(c.dh)});
        if (sy < 0 || sy >= ${c.h}) { continue; }
        for (var wx = 0u; wx < ${u(c.kw)}; wx++) {
          let sx = x0 + i32(wx * ${u(c.dw)});
          if (sx < 0 || sx >= ${c.w}) { continue; }
          let v = loadX((n * ${u(c.h)} + u32(sy)) * ${u(c.w)} + u32(sx), c4);
          let take = (v > best) | vec4<bool>(!seeded);
          best = select(best, v, take);
          arg = select(arg, vec4<u32>(wy * ${u(c.kw)} + wx), take);
          seeded = true;
        }
      }
      acc += select(vec4<f32>(0.0), d, arg == vec4<u32>(ky * ${u(c.kw)} + kx));
#else
      var rows = 0.0;
      for (var wy = 0; wy < ${c.kh}; wy++) {
        let sy = y0 + wy * ${c.dh};
        if (sy >= ${ylo} && sy < ${yhi}) { rows += 1.0; }
      }
      var cols = 0.0;
      for (var wx = 0; wx < ${c.kw}; wx++) {
        let sx = x0 + wx * ${c.dw};
        if (sx >= ${xlo} && sx < ${xhi}) { cols += 1.0; }
      }
      acc += d / (rows * cols);
#endif
    }
  }
  store4((n * ${u(c.h)} + iy) * ${u(c.w)} + ix, c4, acc);
}
`;
  },
};

function lowerPoolGrad(mode: 'max' | 'avg', g: PoolGradGeom, countIncludePad: boolean, ctx: LowerContext): Lowering {
  const count = g.n * g.h * g.w * ceilDiv(g.c, 4);
  const gr = grid(ceilDiv(count, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
  const cfg: PoolGradConfig = { ...g, mode, countIncludePad, vec4: g.c % 4 === 0, wg: WG, gridX: gr[0] };
  const xs = g.n * g.h * g.w * g.c;
  const ys = g.n * g.oh * g.ow * g.c;
  const taps = ys * g.kh * g.kw;
  const bindings = mode === 'max' ? [input(0), input(1), output(0)] : [input(0), output(0)];
  const cost = { flops: mode === 'max' ? 2 * taps : taps, bytes: 4 * (xs + ys + (mode === 'max' ? xs : 0)) };
  return { dispatches: [makeDispatch(poolGradFamily, cfg, gr, bindings, cost)] };
}

/** Scatter form: each window adds its dy into its winning tap (max) or its inside taps (avg); f64 sums. */
function poolGradRef(
  mode: 'max' | 'avg',
  a: AvgPoolAttrs,
  g: PoolGradGeom,
  dy: HostTensor,
  x?: HostTensor,
): HostTensor {
  const includePad = a.countIncludePad ?? true;
  const [pt, pl, pb, pr] = g.pad;
  const dx = new Float64Array(g.n * g.h * g.w * g.c);
  const at = (b: number, iy: number, ix: number, ch: number) => ((b * g.h + iy) * g.w + ix) * g.c + ch;
  for (let b = 0; b < g.n; b++)
    for (let oy = 0; oy < g.oh; oy++)
      for (let ox = 0; ox < g.ow; ox++)
        for (let ch = 0; ch < g.c; ch++) {
          const d = dy.data[((b * g.oh + oy) * g.ow + ox) * g.c + ch];
          const inside: number[] = [];
          let padded = 0;
          for (let ky = 0; ky < g.kh; ky++)
            for (let kx = 0; kx < g.kw; kx++) {
              const iy = oy * g.sh - pt + ky * g.dh;
              const ix = ox * g.sw - pl + kx * g.dw;
              if (iy >= -pt && iy < g.h + pb && ix >= -pl && ix < g.w + pr) padded++;
              if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) inside.push(at(b, iy, ix, ch));
            }
          if (mode === 'max') {
            let win = inside[0];
            for (const i of inside) if (x!.data[i] > x!.data[win]) win = i;
            dx[win] += d;
          } else {
            const div = includePad ? padded : inside.length;
            for (const i of inside) dx[i] += d / div;
          }
        }
  return { shape: [g.n, g.h, g.w, g.c], data: Float32Array.from(dx) };
}

export function maxpoolGradRef(a: PoolAttrs, x: HostTensor, dy: HostTensor): HostTensor {
  return poolGradRef('max', a, geometry('maxpool_grad', a, x.shape, dy.shape), dy, x);
}

export function avgpoolGradRef(a: AvgpoolGradAttrs, dy: HostTensor): HostTensor {
  return poolGradRef('avg', a, geometry('avgpool_grad', a, xShapeOf(a), dy.shape), dy);
}

function xShapeOf(a: AvgpoolGradAttrs): Shape {
  const s = a.xShape;
  if (!Array.isArray(s) || s.length !== 4 || !s.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ShapeError(`avgpool_grad attr xShape must be 4 positive integers, got ${JSON.stringify(s)}`);
  }
  return s;
}

export const maxpoolGradOp: OpDef<PoolAttrs> = {
  op: 'maxpool_grad',
  arity: [2, 2],
  infer(a, [x, dy]) {
    expectRank('maxpool_grad x (NHWC)', x, 4);
    geometry('maxpool_grad', a, x, dy);
    return [x];
  },
  lower: (a, [x, dy], _o, ctx) => lowerPoolGrad('max', geometry('maxpool_grad', a, x, dy), false, ctx),
  ref: (a, [x, dy]) => [maxpoolGradRef(a, x, dy)],
};

export const avgpoolGradOp: OpDef<AvgpoolGradAttrs> = {
  op: 'avgpool_grad',
  arity: [1, 1],
  infer(a, [dy]) {
    const xs = xShapeOf(a);
    avgpoolOp.infer(a, [xs]);
    geometry('avgpool_grad', a, xs, dy);
    return [xs];
  },
  lower: (a, [dy], _o, ctx) =>
    lowerPoolGrad('avg', geometry('avgpool_grad', a, xShapeOf(a), dy), a.countIncludePad ?? true, ctx),
  ref: (a, [dy]) => [avgpoolGradRef(a, dy)],
};

export const poolGradOps: OpDef[] = [maxpoolGradOp, avgpoolGradOp];
