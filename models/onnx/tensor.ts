// Constant tensors of an ONNX graph and the operators the importer evaluates on them at import
// time: initialisers, Constant nodes, and the shape arithmetic torch.onnx.export writes around
// dynamic axes (Shape → Gather → Unsqueeze → Concat → Reshape, Div/Cast for head sizes,
// ConstantOfShape/Equal/Where/Expand for a class token). Once the input's shape is fixed every
// such chain is a constant, so none of it reaches the GPU.
//
// Values are plain numbers (int64 shape values fit a double exactly); floats are Float32Array,
// integers and booleans number arrays. Semantics follow the ONNX operator specs (onnx/onnx
// docs/Operators.md), numpy broadcasting for the binary ops.

import { type HostTensor, numel } from '../../kernels/kernel.js';
import { DataType, type OnnxTensor } from './proto.js';

export type Dtype = 'float' | 'int' | 'bool';

export interface ConstTensor {
  dtype: Dtype;
  shape: number[];
  data: Float32Array | number[];
}

/** An error in the ONNX file itself or in what the importer can do with it; the message names the node. */
export class OnnxImportError extends Error {
  override name = 'OnnxImportError';
}

const half = (h: number): number => {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + m / 1024);
};

/** A TensorProto (raw_data or the typed fields) as a ConstTensor. */
export function fromProto(t: OnnxTensor, where: string): ConstTensor {
  if ((t.external_data?.length ?? 0) > 0 || t.data_location === 1)
    throw new OnnxImportError(
      `${where}: tensor "${t.name}" keeps its data in an external file, which is not supported`,
    );
  const shape = t.dims.map(Number);
  const n = numel(shape);
  const raw = t.raw_data && t.raw_data.length > 0 ? t.raw_data : undefined;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
  const read = (size: number, get: (v: DataView, o: number) => number, typed: number[] | undefined): number[] => {
    if (view) {
      if (view.byteLength !== n * size)
        throw new OnnxImportError(`${where}: tensor "${t.name}" has ${view.byteLength} bytes for ${n} values`);
      return Array.from({ length: n }, (_, k) => get(view, k * size));
    }
    const vals = (typed ?? []).map(Number);
    if (vals.length !== n)
      throw new OnnxImportError(
        `${where}: tensor "${t.name}" has ${vals.length} values for shape [${shape.join(',')}]`,
      );
    return vals;
  };
  switch (t.data_type) {
    case DataType.FLOAT: {
      if (view) {
        if (view.byteLength !== 4 * n)
          throw new OnnxImportError(`${where}: tensor "${t.name}" has ${view.byteLength} bytes for ${n} floats`);
        const out = new Float32Array(n);
        for (let k = 0; k < n; k++) out[k] = view.getFloat32(4 * k, true);
        return { dtype: 'float', shape, data: out };
      }
      return { dtype: 'float', shape, data: Float32Array.from(read(4, () => 0, t.float_data)) };
    }
    case DataType.DOUBLE:
      return { dtype: 'float', shape, data: Float32Array.from(read(8, (v, o) => v.getFloat64(o, true), undefined)) };
    case DataType.FLOAT16:
      return {
        dtype: 'float',
        shape,
        data: Float32Array.from(read(2, (v, o) => half(v.getUint16(o, true)), t.int32_data)),
      };
    case DataType.INT64:
      return { dtype: 'int', shape, data: read(8, (v, o) => Number(v.getBigInt64(o, true)), t.int64_data) };
    case DataType.INT32:
      return { dtype: 'int', shape, data: read(4, (v, o) => v.getInt32(o, true), t.int32_data) };
    case DataType.INT8:
      return { dtype: 'int', shape, data: read(1, (v, o) => v.getInt8(o), t.int32_data) };
    case DataType.UINT8:
      return { dtype: 'int', shape, data: read(1, (v, o) => v.getUint8(o), t.int32_data) };
    case DataType.BOOL:
      return { dtype: 'bool', shape, data: read(1, (v, o) => v.getUint8(o), t.int32_data) };
    default:
      throw new OnnxImportError(`${where}: tensor "${t.name}" has data type ${t.data_type}, which is not supported`);
  }
}

export const ints = (shape: number[], data: number[]): ConstTensor => ({ dtype: 'int', shape, data });
export const floats = (shape: number[], data: Float32Array): ConstTensor => ({ dtype: 'float', shape, data });

/** The values of a 1-D (or scalar) integer constant, e.g. a shape or axes. */
export const intList = (t: ConstTensor): number[] => Array.from(t.data, Number);

export const asHost = (t: ConstTensor): HostTensor => ({
  shape: [...t.shape],
  data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data),
});

const make = (dtype: Dtype, shape: number[], data: number[]): ConstTensor =>
  dtype === 'float' ? { dtype, shape, data: Float32Array.from(data) } : { dtype, shape, data };

/** Normalise a possibly negative axis against `rank`. */
export function axisOf(axis: number, rank: number, where: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank)
    throw new OnnxImportError(`${where}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

function broadcast(a: number[], b: number[], where: string): number[] {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new OnnxImportError(`${where}: shapes [${a}] and [${b}] do not broadcast`);
    return Math.max(x, y);
  });
}

/** Index into `t` (of shape s) for output multi-index `idx` under broadcasting. */
function broadcastIndex(s: number[], out: number[], idx: number[]): number {
  let off = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s[i];
    off = off * d + (d === 1 ? 0 : idx[out.length - s.length + i]);
  }
  return off;
}

function unravel(i: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

/** Elementwise over broadcast operands; the result has dtype `dtype`. */
export function elementwise(
  ts: ConstTensor[],
  dtype: Dtype,
  f: (...v: number[]) => number,
  where: string,
): ConstTensor {
  const shape = ts.map((t) => t.shape).reduce((a, b) => broadcast(a, b, where));
  const n = numel(shape);
  const out: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const idx = unravel(i, shape);
    out[i] = f(...ts.map((t) => Number(t.data[broadcastIndex(t.shape, shape, idx)])));
  }
  return make(dtype, shape, out);
}

/** numpy.transpose(t, perm). */
export function transposeConst(t: ConstTensor, perm: number[]): ConstTensor {
  const shape = perm.map((p) => t.shape[p]);
  const n = numel(shape);
  const strides = t.shape.map((_, d) => numel(t.shape.slice(d + 1)));
  const out: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const idx = unravel(i, shape);
    let off = 0;
    for (let k = 0; k < perm.length; k++) off += idx[k] * strides[perm[k]];
    out[i] = Number(t.data[off]);
  }
  return make(t.dtype, shape, out);
}

export const reshapeConst = (t: ConstTensor, shape: number[]): ConstTensor => ({ ...t, shape: [...shape] });

/** Slice one axis [start, end) with a step (already clamped). */
export function sliceConst(t: ConstTensor, axis: number, start: number, end: number, step: number): ConstTensor {
  const picks: number[] = [];
  for (let k = start; step > 0 ? k < end : k > end; k += step) picks.push(k);
  return gatherConst(t, axis, picks, [picks.length]);
}

/** numpy.take(t, indices, axis): `idxShape` replaces the axis in the output shape. */
export function gatherConst(t: ConstTensor, axis: number, indices: number[], idxShape: number[]): ConstTensor {
  const outer = numel(t.shape.slice(0, axis));
  const len = t.shape[axis];
  const inner = numel(t.shape.slice(axis + 1));
  const out: number[] = [];
  for (let o = 0; o < outer; o++)
    for (const raw of indices) {
      const k = raw < 0 ? raw + len : raw;
      for (let i = 0; i < inner; i++) out.push(Number(t.data[(o * len + k) * inner + i]));
    }
  return make(t.dtype, [...t.shape.slice(0, axis), ...idxShape, ...t.shape.slice(axis + 1)], out);
}

export function concatConst(ts: ConstTensor[], axis: number): ConstTensor {
  const base = ts[0].shape;
  const outer = numel(base.slice(0, axis));
  const out: number[] = [];
  for (let o = 0; o < outer; o++)
    for (const t of ts) {
      const chunk = numel(t.shape.slice(axis));
      for (let i = 0; i < chunk; i++) out.push(Number(t.data[o * chunk + i]));
    }
  const shape = [...base];
  shape[axis] = ts.reduce((s, t) => s + t.shape[axis], 0);
  return make(ts[0].dtype, shape, out);
}

/** ONNX Expand: broadcast `t` to `shape` (numpy-style, either side may be 1). */
export function expandConst(t: ConstTensor, shape: number[], where: string): ConstTensor {
  const ones = { dtype: t.dtype, shape, data: new Array<number>(numel(shape)).fill(0) };
  return elementwise([t, ones], t.dtype, (v) => v, where);
}

/** ONNX Reshape's target: 0 copies the input dim (allowzero = 0), one -1 is inferred. */
export function reshapeTarget(input: number[], spec: number[], where: string): number[] {
  const out = spec.map((d, k) => (d === 0 ? input[k] : d));
  const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const total = numel(input);
  const free = out.filter((d) => d === -1).length;
  if (free > 1) throw new OnnxImportError(`${where}: reshape target [${spec}] has more than one -1`);
  if (free === 1) {
    if (known === 0 || total % known !== 0)
      throw new OnnxImportError(`${where}: cannot reshape [${input}] to [${spec}]`);
    return out.map((d) => (d === -1 ? total / known : d));
  }
  if (known !== total) throw new OnnxImportError(`${where}: cannot reshape [${input}] (${total} values) to [${spec}]`);
  return out;
}
