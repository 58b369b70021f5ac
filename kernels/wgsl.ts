// Shader-building helpers shared by every kernel family: small TS helpers that spell out
// unrolled WGSL, WGSL snippets every family declares the same way, and the row reductions of
// layernorm, softmax and group_norm.
//
// How a family writes conditional WGSL (one way throughout kernels/):
// - whole lines or blocks that a config switches on or off (an optional binding, a vec4 or a
//   scalar body, a fused epilogue): `#if ${cond}` / `#elif ${cond}` / `#else` / `#endif` inside
//   the `wgsl` tagged template re-exported here (wgsl-preprocessor), each directive on a line
//   of its own. A dropped block leaves at most an empty line behind.
// - a choice inside one line (a type, an index expression): a `${c ? a : b}` interpolation.
// - code unrolled over tile sizes and taps: TS loops over range(), lines joined with '\n'.
// The package's entry point is its file (its package.json names no `main`), imported here only.

import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';

export { wgsl };

// ---- unrolling -------------------------------------------------------------------------------

/** [0, 1, …, n − 1]: the indices of an unrolled loop. */
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Vector component names, by index: XYZW[k] is lane k of a vec4. */
export const XYZW = ['x', 'y', 'z', 'w'] as const;

/** A u32 literal. */
export const u = (v: number): string => `${v}u`;

/** The storage element type: vec4<f32> when the data is read four lanes at a time, else f32. */
export const vecType = (vec4: boolean): string => (vec4 ? 'vec4<f32>' : 'f32');

/** Smallest power of two ≥ n (1 for n ≤ 1). */
export const ceilPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** Largest power of two ≤ n (1 for n ≤ 1). */
export const floorPow2 = (n: number): number => 2 ** Math.floor(Math.log2(Math.max(1, n)));

// ---- snippets --------------------------------------------------------------------------------

/**
 * WGSL expression of this workgroup's flat index in a launch spread over a 2-D grid by grid()
 * (kernel.ts), whose x extent is `gridX`: needs `wid` (workgroup_id) in scope.
 */
export const workgroupIndex = (gridX: number): string => `wid.x + wid.y * ${gridX}u`;

/**
 * WGSL expression of this invocation's flat index when workgroups of `wg` invocations are spread
 * over a 2-D grid by grid(): needs `wid` and `lid` (local_invocation_index) in scope.
 */
export const flatIndex = (wg: number, gridX: number): string => `(${workgroupIndex(gridX)}) * ${wg}u + lid`;

/** WGSL: the entry point of a launch of 1-D workgroups of `wg`, up to its `{`; `wid` and `lid` in scope. */
export const mainWgsl = (wg: number): string => `@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {`;

/** WGSL: mainWgsl(wg) and its first line, `let t = …;`, this invocation's flat index (flatIndex). */
export const flatMain = (wg: number, gridX: number): string => `${mainWgsl(wg)}\n  let t = ${flatIndex(wg, gridX)};`;

/**
 * WGSL `fn actT(v: T) -> T`: the activation `act` (activationWgsl in kernel.ts, declared before
 * it) applied to every lane of a vec4 (vec4) or to an f32.
 */
export function actTWgsl(vec4: boolean): string {
  return vec4
    ? 'fn actT(v: vec4<f32>) -> vec4<f32> { return vec4<f32>(act(v.x), act(v.y), act(v.z), act(v.w)); }'
    : 'fn actT(v: f32) -> f32 { return act(v); }';
}

// ---- row reductions (layernorm, softmax, group_norm) -----------------------------------------

/** WGSL: `hsum`/`hmax` fold a loaded value (vec4 when `vec4`, else f32) to f32. */
export function foldWgsl(vec4: boolean): string {
  return vec4
    ? `fn hsum(v: vec4<f32>) -> f32 { return (v.x + v.y) + (v.z + v.w); }
fn hmax(v: vec4<f32>) -> f32 { return max(max(v.x, v.y), max(v.z, v.w)); }`
    : `fn hsum(v: f32) -> f32 { return v; }
fn hmax(v: f32) -> f32 { return v; }`;
}

/**
 * WGSL: `wg_sum(v, lid)` and `wg_max(v, lid)` combine one f32 per lane across a workgroup of
 * `lanes` (a power of two) by a tree in workgroup memory; every lane gets the result. With one
 * lane they are the identity and no workgroup memory or barrier is emitted. Call them from
 * uniform control flow only.
 */
export function workgroupReduceWgsl(lanes: number): string {
  if (!Number.isInteger(lanes) || lanes < 1 || lanes & (lanes - 1)) {
    throw new Error(`reduction width ${lanes} is not a power of two`);
  }
  if (lanes === 1) {
    return `fn wg_sum(v: f32, lid: u32) -> f32 { return v; }
fn wg_max(v: f32, lid: u32) -> f32 { return v; }`;
  }
  const tree = (name: string, combine: string) => `
fn ${name}(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${lanes / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = ${combine}; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();  // everyone has read red[0] before a later reduction overwrites it
  return r;
}`;
  const sum = tree('wg_sum', 'red[lid] + red[lid + s]');
  const max = tree('wg_max', 'max(red[lid], red[lid + s])');
  return `var<workgroup> red: array<f32, ${lanes}>;${sum}${max}`;
}

/** How a row kernel maps rows to invocations (layernorm and softmax; see layernorm.ts). */
export interface RowMapping {
  /** 'thread': one invocation per row, `wg` rows per workgroup; 'workgroup': `wg` lanes per row. */
  mode: 'thread' | 'workgroup';
  wg: number;
  /** Rows, and loads per row (row length / 4 when read as vec4). */
  rows: number;
  loads: number;
  gridX: number;
}

/** Lanes that stride over one row: 1 in thread mode, the workgroup in workgroup mode. */
export const rowLanes = (m: RowMapping): number => (m.mode === 'thread' ? 1 : m.wg);

/**
 * WGSL: a row kernel's `main` up to its row loops: `row`, `lane`, the early exit for rows past
 * the end (uniform per workgroup in workgroup mode) and `base`, the row's first load. The kernel
 * declares foldWgsl and workgroupReduceWgsl(rowLanes(m)) and its bindings before it, loops over
 * the row with rowLoop(m) and closes `main`.
 */
export function rowMain(m: RowMapping): string {
  const thread = m.mode === 'thread';
  return `${mainWgsl(m.wg)}
  let row = ${thread ? flatIndex(m.wg, m.gridX) : workgroupIndex(m.gridX)};
  let lane = ${thread ? '0u' : 'lid'};
  if (row >= ${m.rows}u) { return; }  // uniform per workgroup in workgroup mode
  let base = row * ${m.loads}u;`;
}

/** WGSL loop header over this invocation's share of the row: `k` runs over load indices. */
export const rowLoop = (m: RowMapping): string => `for (var k = lane; k < ${m.loads}u; k += ${rowLanes(m)}u)`;
