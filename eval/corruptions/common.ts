// ImageNet-C corruptions as GPU ops. Every corruption is one graph op, `corrupt`, so a
// corruption, the model's normalisation and the model itself run in one command buffer.
//
//   inputs : x   [N,H,W,3] RGB in [0,1] (NHWC, the 224×224 crop as ImageNet-C corrupts it)
//            ids [N]       global image indices (f32, exact below 2^24): per-image randomness
//                          depends on (seed, id), so batching and sharding do not change it
//            assets…       constant textures the corruption made on the CPU (optional)
//   output : y   [N,H,W,3] in [0,1]
//   attrs  : { name, severity (1-5), seed }
//
// A corruption file exports CorruptionDefs; eval/corruptions/index.ts lists them.
// Parameters per severity are REFERENCE.md §4's, from hendrycks/robustness corruptions.py.

import type { Graph } from '../../engine/graph.js';
import {
  type HostTensor, type LowerContext, type Lowering, type OpDef, type Shape, fmtShape, ShapeError,
} from '../../kernels/kernel.js';

export interface CorruptionDef<P = unknown> {
  name: string;
  /** One of the 4 extra corruptions (not in mCE). */
  extra?: boolean;
  /** Parameters for severities 1..5. */
  params: readonly [P, P, P, P, P];
  /**
   * Constant textures made on the CPU (a frost texture, a plasma fractal…), deterministic in
   * (params, seed, shape). They become graph constants bound as inputs 2, 3, …
   */
  assets?(p: P, seed: number, shape: Shape): HostTensor[];
  /** Dispatches: input(0) = x, input(1) = ids, input(2+) = assets, output(0) = y; temps allowed. */
  lower(p: P, seed: number, shape: Shape, ctx: LowerContext): Lowering;
  /** The same maths in plain TS (the test oracle): y from x, ids and assets. */
  ref(p: P, seed: number, x: HostTensor, ids: Float32Array, assets: HostTensor[]): HostTensor;
}

export interface CorruptAttrs {
  name: string;
  severity: number;
  seed: number;
}

const defs = new Map<string, CorruptionDef>();

export function registerCorruptions(list: CorruptionDef<any>[]): void {
  for (const d of list) {
    if (defs.has(d.name)) throw new Error(`corruption "${d.name}" registered twice`);
    defs.set(d.name, d as CorruptionDef);
  }
}

export function getCorruption(name: string): CorruptionDef {
  const d = defs.get(name);
  if (!d) throw new Error(`unknown corruption "${name}"; known: ${[...defs.keys()].join(', ')}`);
  return d;
}

export function corruptionNames(o: { extras?: boolean } = {}): string[] {
  return [...defs.values()].filter((d) => o.extras !== false || !d.extra).map((d) => d.name);
}

function paramsOf(a: CorruptAttrs): unknown {
  const d = getCorruption(a.name);
  if (!Number.isInteger(a.severity) || a.severity < 1 || a.severity > 5) throw new ShapeError(`corruption severity must be 1..5, got ${a.severity}`);
  return d.params[a.severity - 1];
}

export const corruptOp: OpDef<CorruptAttrs> = {
  op: 'corrupt',
  arity: [2, 8],
  infer(a, [x, ids]) {
    if (x.length !== 4 || x[3] !== 3) throw new ShapeError(`corrupt needs RGB images [N,H,W,3], got ${fmtShape(x)}`);
    if (ids.length !== 1 || ids[0] !== x[0]) throw new ShapeError(`corrupt needs ids [N] = [${x[0]}], got ${fmtShape(ids)}`);
    paramsOf(a);
    return [x];
  },
  lower(a, [x], _o, ctx) {
    return getCorruption(a.name).lower(paramsOf(a), a.seed, x, ctx);
  },
  ref(a, [x, ids, ...assets]) {
    return [getCorruption(a.name).ref(paramsOf(a), a.seed, x, ids.data, assets)];
  },
};

/**
 * Add a `corrupt` node to `g`: the corruption's textures become graph constants (inputs 2, 3, …).
 * Returns the corrupted images' value name.
 */
export function addCorruption(g: Graph, x: string, ids: string, a: CorruptAttrs, name = 'corrupt'): string {
  const def = getCorruption(a.name);
  const assets = def.assets?.(paramsOf(a), a.seed, g.shape(x)) ?? [];
  const names = assets.map((t, k) => g.constant(`${name}.asset${k}`, t.shape, t.data));
  return g.op('corrupt', [x, ids, ...names], { ...a }, name);
}

// ---------------------------------------------------------------------------------------------
// Randomness: a counter-based hash, identical in WGSL and TS, so GPU and reference draw the same
// numbers: u = hash(seed, id, stream, index) → uniform in [0,1).

/** WGSL: `fn rng_u32(a: u32, b: u32, c: u32, d: u32) -> u32`, `fn rng_uniform(...) -> f32` in [0,1), `fn rng_normal(...)`. */
export const RNG_WGSL = /* wgsl */ `
fn rng_mix(h: u32) -> u32 {
  var x = h;
  x ^= x >> 16u; x *= 0x7feb352du;
  x ^= x >> 15u; x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}
fn rng_u32(seed: u32, id: u32, stream: u32, i: u32) -> u32 {
  return rng_mix(rng_mix(rng_mix(rng_mix(seed) ^ id) ^ stream) ^ i);
}
fn rng_uniform(seed: u32, id: u32, stream: u32, i: u32) -> f32 {
  return f32(rng_u32(seed, id, stream, i) >> 8u) * (1.0 / 16777216.0);
}
// cos(2π·u) to ~1e-7 by exact range reduction on u and a Taylor polynomial on [0, π/4]: WGSL lets
// cos be off by 2^-11 and SwiftShader's is off by ~2e-4, which moves thresholded noise (snow,
// spatter) by whole blobs against the TS reference; with this, draws agree to ~1e-7 on any adapter.
fn cos_2pi(u: f32) -> f32 {
  let a = abs(u - round(u));                 // [0, 0.5], exact
  let flip = a > 0.25;
  let b = select(a, 0.5 - a, flip);          // [0, 0.25], exact (Sterbenz)
  let useSin = b > 0.125;
  let th = select(b, 0.25 - b, useSin) * 6.283185307179586;  // [0, π/4]
  let t2 = th * th;
  let c = 1.0 + t2 * (-0.5 + t2 * (0.041666666666666664 + t2 * (-0.001388888888888889 + t2 * 0.0000248015873015873)));
  let s = th * (1.0 + t2 * (-0.16666666666666666 + t2 * (0.008333333333333333 + t2 * (-0.0001984126984126984 + t2 * 0.0000027557319223985893))));
  let v = select(c, s, useSin);
  return select(v, -v, flip);
}
fn rng_normal(seed: u32, id: u32, stream: u32, i: u32) -> f32 {
  let u1 = max(rng_uniform(seed, id, stream, 2u * i), 1e-7);
  let u2 = rng_uniform(seed, id, stream, 2u * i + 1u);
  return sqrt(-2.0 * log(u1)) * cos_2pi(u2);
}`;

function mix(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16; x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15; x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

export function rngU32(seed: number, id: number, stream: number, i: number): number {
  return mix(mix(mix(mix(seed) ^ id) ^ stream) ^ i);
}

export function rngUniform(seed: number, id: number, stream: number, i: number): number {
  return Math.fround((rngU32(seed, id, stream, i) >>> 8) * (1 / 16777216));
}

/** Box–Muller, as the WGSL (results agree to f32 rounding of log/cos). */
export function rngNormal(seed: number, id: number, stream: number, i: number): number {
  const u1 = Math.max(rngUniform(seed, id, stream, 2 * i), 1e-7);
  const u2 = rngUniform(seed, id, stream, 2 * i + 1);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}
