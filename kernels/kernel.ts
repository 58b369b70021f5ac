// The contract between the engine and every kernel family.
//
// An op (a node kind in the graph IR) is described by an OpDef: shape inference, a lowering
// to GPU dispatches, and a plain-TS reference. A dispatch names a kernel family and a typed
// config; the family turns the config into WGSL. The pipeline cache key is derived from the
// (family, config) pair mechanically, so WGSL and dispatch arithmetic share one source of truth.
//
// Layout: activations are NHWC ([N,H,W,C]) and conv weights HWIO ([KH,KW,Cin/groups,Cout]);
// see the README's "Layout: NHWC" section for why.
//
// Variants: a family's tunable choices are a typed object with one string syntax for all
// families (kernels/variant.ts), passed in LowerContext.prefer.
//
// Shapes are baked into the WGSL as constants (no uniforms): every layer gets its own
// pipeline, which lets the shader compiler fold index arithmetic.

import type { Prefer } from './variant.js';

/** The device limits kernels read (engine/device.ts requests the adapter's maximum of each). */
export interface Limits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupsPerDimension: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupStorageSize: number;
  maxStorageBuffersPerShaderStage: number;
}

export type Shape = readonly number[];

/** A tensor on the host: row-major f32 data with its shape. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** A kernel config: a plain object of numbers, strings, booleans and number arrays. */
export type ConfigValue = number | string | boolean | readonly number[];

/** A kernel family: one WGSL generator parameterised by a config. */
export interface KernelFamily<C extends object> {
  name: string;
  wgsl(config: C): string;
}

/** What a binding of a dispatch points at: the node's inputs, outputs, or its scratch buffers. */
export interface BindingRef {
  kind: 'input' | 'output' | 'temp';
  index: number;
}
export const input = (index: number): BindingRef => ({ kind: 'input', index });
export const output = (index: number): BindingRef => ({ kind: 'output', index });
export const temp = (index: number): BindingRef => ({ kind: 'temp', index });

export interface Dispatch {
  family: string;
  /** Pipeline cache key: family name + canonical JSON of the config. */
  key: string;
  config: object;
  wgsl: () => string;
  workgroups: [number, number, number];
  /** @binding(i) of @group(0) is bindings[i]. */
  bindings: BindingRef[];
  /** Useful floating-point operations (an FMA counts 2), for GFLOP/s in profiles. */
  flops?: number;
  /** Minimum bytes read + written, for GB/s in profiles. */
  bytes?: number;
}

/** Canonical JSON: object keys sorted, so equal configs give equal keys. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function pipelineKey(family: string, config: object): string {
  return `${family}${canonicalJson(config)}`;
}

export function makeDispatch<C extends object>(
  family: KernelFamily<C>,
  config: C,
  workgroups: [number, number, number],
  bindings: BindingRef[],
  cost: { flops?: number; bytes?: number } = {},
): Dispatch {
  return {
    family: family.name,
    key: pipelineKey(family.name, config),
    config,
    wgsl: () => family.wgsl(config),
    workgroups,
    bindings,
    ...cost,
  };
}

export interface LowerContext {
  limits: Limits;
  /** The device's fixed subgroup size, 0 when subgroups are unavailable (see engine/device.ts DeviceInfo). */
  subgroupSize?: number;
  /**
   * The adapter's range of subgroup sizes (0 when subgroups are unavailable): a subgroup variant
   * offered where min < max must be right for every size in the range. Unset: subgroupSize.
   */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  /** The device has 'shader-f16': WGSL may `enable f16;` (full-f16 variants). */
  shaderF16?: boolean;
  /**
   * The adapter is a CPU implementation of the GPU (SwiftShader): workgroup memory and barriers
   * are about ten times slower there than register blocking (docs/swiftshader.md), so tune
   * spaces leave their workgroup-memory tilings out (they can still be forced through prefer).
   */
  cpuAdapter?: boolean;
  /** Per input of the node being lowered: whether it is a graph constant (a weight), which a lowering may relayout (Lowering.constLayouts). */
  constInputs?: readonly boolean[];
  /**
   * Variant choices by family, typed objects or their strings, e.g. { conv2d: 'gemm,tile=4x16' } or
   * { conv2d: { path: 'direct' } } (kernels/variant.ts); unset fields fall back to the heuristic.
   */
  prefer?: Prefer;
  /**
   * Lower the in-place form of an op with OpDef.inPlace: each listed output is written into its
   * input's buffer (that input bound read_write, the output not bound). The executor sets it per
   * node when nothing after the node reads those inputs' old values.
   */
  inPlace?: boolean;
}

export interface Lowering {
  dispatches: Dispatch[];
  /** Scratch buffers this op needs, in f32 elements; bound with temp(i). */
  temps?: number[];
  /**
   * Constant inputs this lowering wants in another layout, made once at compile time (weights
   * are transformed at load, not per run). input(i) then binds the transformed copy; a constant
   * no node reads in its own layout is not uploaded at all.
   */
  constLayouts?: ConstLayout[];
}

export interface ConstLayout {
  /** Which input of the node (it must be a graph constant: see LowerContext.constInputs). */
  input: number;
  /** Names the layout: nodes asking for the same layout of the same constant share one copy. */
  layout: string;
  /** f32 elements of the transformed data. */
  elements: number;
  apply(data: Float32Array): Float32Array;
}

export class ShapeError extends Error {
  override name = 'ShapeError';
}

/**
 * What a tuner may try for one node: values of ctx.prefer[family], each a variant in its
 * canonical string form (kernels/variant.ts). The heuristic (no preference) is always tried
 * besides these, so a space lists only alternatives.
 */
export interface TuneSpace {
  family: string;
  candidates: string[];
}

// biome-ignore lint/suspicious/noExplicitAny: the registry holds ops with different attrs; each op types its own
export interface OpDef<A = any> {
  op: string;
  /** Allowed number of inputs, inclusive. */
  arity: [number, number];
  /** Output shapes from input shapes; throws ShapeError naming both shapes on a mismatch. */
  infer(attrs: A, inputs: Shape[]): Shape[];
  lower(attrs: A, inputs: Shape[], outputs: Shape[], ctx: LowerContext): Lowering;
  ref(attrs: A, inputs: HostTensor[]): HostTensor[];
  /** Output 0 is a view of input 0's buffer (reshape): no dispatch, no copy. */
  alias?: boolean;
  /**
   * [output, input] pairs the op can write in place (LowerContext.inPlace): element i of the output
   * depends on element i of the inputs only, and the invocation that writes it has read them first.
   */
  inPlace?: readonly (readonly [output: number, input: number])[];
  /** The variants worth timing for this node on this device (see engine/tuning.ts); none if absent. */
  tuneSpace?(attrs: A, inputs: Shape[], ctx: LowerContext): TuneSpace | undefined;
}

// ---------------------------------------------------------------------------------------------
// Small helpers shared by kernel files.

export const numel = (s: Shape): number => s.reduce((a, b) => a * b, 1);
export const fmtShape = (s: Shape): string => `[${s.join(',')}]`;
export const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);

/**
 * Spread `count` workgroups over x and y so no dimension passes the device limit.
 * The shader recovers the flat index as `wid.x + wid.y * gridX` (gridX = result[0]).
 */
export function grid(count: number, maxPerDim: number): [number, number, number] {
  if (count <= maxPerDim) return [Math.max(1, count), 1, 1];
  const y = Math.ceil(count / maxPerDim);
  if (y > maxPerDim)
    throw new ShapeError(`dispatch of ${count} workgroups exceeds ${maxPerDim}² (maxComputeWorkgroupsPerDimension)`);
  return [Math.ceil(count / y), y, 1];
}

export function expectRank(what: string, s: Shape, rank: number): void {
  if (s.length !== rank) throw new ShapeError(`${what} must have rank ${rank}, got ${fmtShape(s)}`);
}

/** Numpy broadcasting of two shapes; throws ShapeError naming both. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast (dim ${i}: ${da} vs ${db})`);
    }
    out.push(Math.max(da, db));
  }
  return out;
}

/** Throws a ShapeError unless `s` is [len]; names the data shape `x` it belongs to. */
export function expectVector(what: string, s: Shape, len: number, x: Shape): void {
  if (s.length !== 1 || s[0] !== len) {
    throw new ShapeError(`${what} must be [${len}] to match input ${fmtShape(x)}, got ${fmtShape(s)}`);
  }
}

/** WGSL float literal that round-trips the f32 value. */
export function f32Lit(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`non-finite constant ${x} in WGSL`);
  const s = Math.fround(x).toString();
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

// ---------------------------------------------------------------------------------------------
// Activations: shared by elementwise, conv2d, matmul, add (fused epilogues).

export type Activation = 'none' | 'relu' | 'relu6' | 'gelu' | 'hardswish' | 'silu';
export const ACTIVATIONS: readonly Activation[] = ['none', 'relu', 'relu6', 'gelu', 'hardswish', 'silu'];

/**
 * erf, Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7, below f32 resolution near 1).
 * The TS reference uses a more accurate series, so tests see the GPU approximation's real error.
 */
const ERF_WGSL = /* wgsl */ `
fn erf_approx(x: f32) -> f32 {
  let s = sign(x);
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return s * y;
}`;

/** WGSL for `fn act(x: f32) -> f32` implementing `a` (plus helpers it needs). */
export function activationWgsl(a: Activation): string {
  switch (a) {
    case 'none':
      return 'fn act(x: f32) -> f32 { return x; }';
    case 'relu':
      return 'fn act(x: f32) -> f32 { return max(x, 0.0); }';
    case 'relu6':
      return 'fn act(x: f32) -> f32 { return clamp(x, 0.0, 6.0); }';
    case 'gelu':
      return `${ERF_WGSL}\nfn act(x: f32) -> f32 { return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752)); }`;
    case 'hardswish':
      return 'fn act(x: f32) -> f32 { return x * clamp(x + 3.0, 0.0, 6.0) / 6.0; }';
    case 'silu':
      return 'fn act(x: f32) -> f32 { return x / (1.0 + exp(-x)); }';
  }
}

/** erf by its Maclaurin series for |x| < 3 and the asymptotic 1 beyond (error < 1e-12). */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a >= 6) return Math.sign(x);
  if (a < 3) {
    // erf x = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
    let sum = 0;
    let term = a;
    for (let n = 0; n < 200; n++) {
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
      term *= (-a * a) / (n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc by continued fraction for a ≥ 3.
  let f = 0;
  for (let k = 60; k >= 1; k--) f = k / 2 / (a + f);
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
  return Math.sign(x) * (1 - erfc);
}

export function activationRef(a: Activation): (x: number) => number {
  switch (a) {
    case 'none':
      return (x) => x;
    case 'relu':
      return (x) => Math.max(x, 0);
    case 'relu6':
      return (x) => Math.min(Math.max(x, 0), 6);
    case 'gelu':
      return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'hardswish':
      return (x) => (x * Math.min(Math.max(x + 3, 0), 6)) / 6;
    case 'silu':
      return (x) => x / (1 + Math.exp(-x));
  }
}
