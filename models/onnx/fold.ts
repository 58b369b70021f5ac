// Evaluating ONNX nodes whose inputs are all constants, at import (docs/onnx-import.md,
// "Constants and shape arithmetic"): the shape arithmetic torch.onnx.export writes around dynamic
// axes, Constant nodes, and any op on weights. Also the attribute readers the converter shares.

import { numel } from '../../kernels/kernel.js';
import type { INode } from './patterns.js';
import {
  type ConstTensor,
  OnnxImportError,
  axisOf,
  concatConst,
  elementwise,
  expandConst,
  floats,
  gatherConst,
  intList,
  ints,
  reshapeConst,
  reshapeTarget,
  sliceConst,
  transposeConst,
} from './tensor.js';
import { ident } from './layout.js';

export function attrInt(n: INode, k: string, dflt: number): number {
  const v = n.attrs[k];
  return typeof v === 'number' ? v : dflt;
}

export function attrInts(n: INode, k: string): number[] | undefined {
  const v = n.attrs[k];
  return Array.isArray(v) ? (v as number[]) : undefined;
}

export function attrNum(n: INode, k: string, dflt: number): number {
  const v = n.attrs[k];
  return typeof v === 'number' ? v : dflt;
}

/** ONNX Shape (with opset 15's start/end) of a value of shape `shape`: known at import. */
export function shapeOf(n: INode, shape: number[]): ConstTensor {
  const r = shape.length;
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
  const start = clamp(attrInt(n, 'start', 0));
  const end = clamp(attrInt(n, 'end', r));
  return ints([Math.max(end - start, 0)], shape.slice(start, end));
}

/** Evaluate node `n` on constant inputs `t` (undefined for an omitted optional input). */
export function foldNode(n: INode, t: (ConstTensor | undefined)[]): ConstTensor {
  const w = n.name;
  const listArg = (i: number, k: string) => (n.inputs[i] ? intList(t[i]!) : attrInts(n, k));
  const arith = (f: (a: number, b: number) => number) => {
    const dtype = t[0]!.dtype === 'float' || t[1]!.dtype === 'float' ? 'float' : 'int';
    return elementwise([t[0]!, t[1]!], dtype, f, w);
  };
  switch (n.op) {
    case 'Identity':
    case 'Dropout':
      return t[0]!;
    case 'Add':
      return arith((a, b) => a + b);
    case 'Sub':
      return arith((a, b) => a - b);
    case 'Mul':
      return arith((a, b) => a * b);
    case 'Div':
      return t[0]!.dtype === 'int' && t[1]!.dtype === 'int'
        ? arith((a, b) => Math.trunc(a / b))
        : arith((a, b) => a / b);
    case 'Equal':
      return elementwise([t[0]!, t[1]!], 'bool', (a, b) => Number(a === b), w);
    case 'Where':
      return elementwise([t[0]!, t[1]!, t[2]!], t[1]!.dtype, (c, a, b) => (c ? a : b), w);
    case 'Sqrt':
      return elementwise([t[0]!], 'float', Math.sqrt, w);
    case 'Cast': {
      const to = attrInt(n, 'to', 1);
      const dtype = to === 1 || to === 10 || to === 11 ? 'float' : to === 9 ? 'bool' : 'int';
      return elementwise(
        [t[0]!],
        dtype,
        (v) => (dtype === 'int' ? Math.trunc(v) : dtype === 'bool' ? Number(v !== 0) : v),
        w,
      );
    }
    case 'ConstantOfShape': {
      const value = n.attrs.value as ConstTensor | undefined;
      const shape = intList(t[0]!);
      const fill = value ? Number(value.data[0]) : 0;
      const dtype = value?.dtype ?? 'float';
      return elementwise([{ dtype, shape, data: new Array(numel(shape)).fill(fill) }], dtype, (v) => v, w);
    }
    case 'Expand':
      return expandConst(t[0]!, intList(t[1]!), w);
    case 'Reshape':
      return reshapeConst(t[0]!, reshapeTarget(t[0]!.shape, intList(t[1]!), w));
    case 'Unsqueeze': {
      const axesIn = n.inputs[1] ? intList(t[1]!) : (attrInts(n, 'axes') ?? []);
      const r = t[0]!.shape.length + axesIn.length;
      const axes = axesIn.map((x) => axisOf(x, r, w));
      const shape: number[] = [];
      let k = 0;
      for (let d = 0; d < r; d++) shape.push(axes.includes(d) ? 1 : t[0]!.shape[k++]);
      return reshapeConst(t[0]!, shape);
    }
    case 'Squeeze': {
      const s = t[0]!.shape;
      const axes = (
        n.inputs[1] ? intList(t[1]!) : (attrInts(n, 'axes') ?? s.flatMap((d, k) => (d === 1 ? [k] : [])))
      ).map((x) => axisOf(x, s.length, w));
      return reshapeConst(
        t[0]!,
        s.filter((_, k) => !axes.includes(k)),
      );
    }
    case 'Flatten': {
      const s = t[0]!.shape;
      const ax = axisOf(attrInt(n, 'axis', 1), s.length + 1, w);
      return reshapeConst(t[0]!, [numel(s.slice(0, ax)), numel(s.slice(ax))]);
    }
    case 'Concat': {
      const xs = t.filter((x): x is ConstTensor => x !== undefined);
      return concatConst(xs, axisOf(attrInt(n, 'axis', 0), xs[0].shape.length, w));
    }
    case 'Gather': {
      const axis = axisOf(attrInt(n, 'axis', 0), t[0]!.shape.length, w);
      return gatherConst(t[0]!, axis, intList(t[1]!), t[1]!.shape);
    }
    case 'Transpose': {
      const p = attrInts(n, 'perm') ?? ident(t[0]!.shape.length).reverse();
      return transposeConst(t[0]!, p);
    }
    case 'Slice': {
      let cur = t[0]!;
      const starts = listArg(1, 'starts')!;
      const ends = listArg(2, 'ends')!;
      const axes = (listArg(3, 'axes') ?? starts.map((_, k) => k)).map((a) => axisOf(a, cur.shape.length, w));
      const steps = listArg(4, 'steps') ?? starts.map(() => 1);
      axes.forEach((ax, k) => {
        const { start, end } = clampSlice(starts[k], ends[k], steps[k], cur.shape[ax]);
        cur = sliceConst(cur, ax, start, end, steps[k]);
      });
      return cur;
    }
    default:
      throw new OnnxImportError(`node "${w}": ${n.op} on constant inputs is not supported`);
  }
}

/** ONNX Slice bounds for a positive step, clamped to [0, dim]. */
export function clampSlice(start: number, end: number, step: number, dim: number): { start: number; end: number } {
  if (step > 0) {
    const s = Math.min(Math.max(start < 0 ? start + dim : start, 0), dim);
    const e = Math.min(Math.max(end < 0 ? end + dim : end, 0), dim);
    return { start: s, end: Math.max(e, s) };
  }
  const s = Math.min(Math.max(start < 0 ? start + dim : start, -1), dim - 1);
  const e = Math.min(Math.max(end < 0 ? end + dim : end, -1), dim - 1);
  return { start: s, end: e };
}

/** The tensor of a Constant node (value, or value_float(s)/value_int(s)). */
export function constantAttr(n: INode): ConstTensor {
  const a = n.attrs;
  if (a.value && typeof a.value === 'object' && !Array.isArray(a.value)) return a.value as ConstTensor;
  if (typeof a.value_float === 'number') return floats([], new Float32Array([a.value_float]));
  if (typeof a.value_int === 'number') return ints([], [a.value_int]);
  if (Array.isArray(a.value_floats))
    return floats([a.value_floats.length], Float32Array.from(a.value_floats as number[]));
  if (Array.isArray(a.value_ints)) return ints([a.value_ints.length], a.value_ints as number[]);
  throw new OnnxImportError(`node "${n.name}": Constant without a value this importer reads`);
}
