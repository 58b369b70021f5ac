// ONNX nodes → cnnlab graph nodes, with the layout decided value by value (docs/onnx-import.md).
//
// Every non-constant ONNX value is *held* as a cnnlab value plus a permutation `perm`: the cnnlab
// tensor is the ONNX tensor with its axes permuted, cnnlab.shape[k] = onnx.shape[perm[k]]. Conv,
// BatchNormalization and pooling read and write 4-D values held NHWC (perm [0,2,3,1]), so a
// network's NCHW activations are NHWC on our side without a transpose:
//
//   elementwise ops, activations      keep the holding; constants are permuted to it at import
//   Transpose                         composes permutations: free
//   Reshape/Flatten/Squeeze/Unsqueeze free when the dims that merge or split stay contiguous and in
//                                     order in the held layout (NCHW [N,D,h,w] → [N,D,h·w] held NHWC
//                                     is [N,h·w,D]: a ViT's patch tokens); the rest of the dims
//                                     keep their order. A 4-D → 2-D flatten after global pooling
//                                     (H = W = 1) only drops size-1 dims, so PyTorch's C·H·W order is
//                                     kept.
//   Concat/Slice/Gather/Softmax/      axes remapped through the holding
//   LayerNormalization
//   MatMul                            [..., M, K] operands in ONNX order; a right operand held with
//                                     its last two axes swapped becomes transB (attention's Kᵀ)
//
// Only where a value must change holding and the memory order differs does a `transpose` node
// run (counted in `transposes`); in the six torchvision families that is only attention's head
// split and merge, which the ONNX graph itself transposes. A holding that only moves size-1 dims
// is normalised to the plain one (an alias reshape).
//
// Permutation arithmetic is in layout.ts. Constants (initialisers, Constant nodes, shape
// arithmetic on known shapes) are values here; an op whose inputs are all constant is evaluated
// by fold.ts instead of becoming a node.

import type { Graph } from '../../engine/graph.js';
import { numel } from '../../kernels/kernel.js';
import { attrInt, attrInts, attrNum, clampSlice, constantAttr, foldNode, shapeOf } from './fold.js';
import { ident, invert, isIdent, keepsOrder, NHWC, reshapedPerm, sameList } from './layout.js';
import type { INode } from './patterns.js';
import {
  type ConstTensor,
  OnnxImportError,
  axisOf,
  elementwise,
  intList,
  reshapeConst,
  reshapeTarget,
  sliceConst,
  transposeConst,
} from './tensor.js';

export interface Act {
  kind: 'act';
  /** The cnnlab value. */
  v: string;
  /** The ONNX shape. */
  shape: number[];
  /** cnnlab.shape[k] = shape[perm[k]]. */
  perm: number[];
}
export interface Const {
  kind: 'const';
  t: ConstTensor;
}
export type Val = Act | Const;

/** The op types the converter handles (after patterns.ts has run). */
export const SUPPORTED_OPS = new Set([
  'Conv',
  'Gemm',
  'MatMul',
  'BatchNormalization',
  'LayerNormalization',
  'Relu',
  'Clip',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Gelu',
  'cnnlab.Silu',
  'Tanh',
  'Softmax',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'ReduceMean',
  'Reshape',
  'Flatten',
  'Transpose',
  'Concat',
  'Slice',
  'Split',
  'Squeeze',
  'Unsqueeze',
  'Gather',
  'Shape',
  'Constant',
  'ConstantOfShape',
  'Identity',
  'Dropout',
  'Cast',
  'Pad',
  'Expand',
  'Equal',
  'Where',
]);

/** Ops that only ever compute on constants here (shape arithmetic); on a non-constant they are refused by name. */
const CONST_ONLY = new Set(['ConstantOfShape', 'Expand', 'Equal', 'Where', 'Shape']);

export class Converter {
  readonly env = new Map<string, Val>();
  /** Transposes the layout needed (see the header). */
  transposes = 0;
  /** For each value made by a linear layer (Gemm, MatMul with a constant right side), its input: the pre-logit features. */
  readonly linearInput = new Map<string, string>();
  private readonly held = new Map<string, string>();
  private readonly constForms = new Map<string, string>();
  private names = new Set<string>();
  private where = '';

  constructor(
    readonly g: Graph,
    readonly opset: number,
  ) {
    for (const n of g.nodes) this.names.add(n.name);
  }

  // ---- names, values, holdings -----------------------------------------------------------------

  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.g.values.has(name) || this.names.has(name); k++) name = `${base}_${k}`;
    this.names.add(name);
    return name;
  }

  private op(op: string, inputs: string[], attrs: Record<string, unknown>, what = ''): string {
    return this.g.op(op, inputs, attrs, this.fresh(`${this.where}${what}`));
  }

  private fail(msg: string): never {
    throw new OnnxImportError(`node "${this.where}": ${msg}`);
  }

  cshape(a: Act): number[] {
    return a.perm.map((p) => a.shape[p]);
  }

  /** An Act for cnnlab value `v` holding an ONNX tensor of `shape` by `perm`; size-1-only moves normalise to plain. */
  act(v: string, shape: number[], perm: number[]): Act {
    const a: Act = { kind: 'act', v, shape, perm };
    if (!isIdent(perm) && keepsOrder(shape, perm)) {
      return { kind: 'act', v: this.reshapeTo(v, shape), shape, perm: ident(shape.length) };
    }
    return a;
  }

  private reshapeTo(v: string, shape: number[]): string {
    const have = this.g.shape(v);
    if (sameList(have, shape)) return v;
    return this.op('reshape', [v], { shape: [...shape] }, '/reshape');
  }

  /** The cnnlab value holding `a`'s ONNX tensor by `perm`: an alias reshape when memory order allows, else a transpose. */
  holdAs(a: Act, perm: number[]): string {
    if (sameList(a.perm, perm)) return a.v;
    const key = `${a.v}|${perm.join(',')}`;
    const hit = this.held.get(key);
    if (hit) return hit;
    const t = perm.map((d) => a.perm.indexOf(d));
    const cur = this.cshape(a);
    const target = perm.map((p) => a.shape[p]);
    let out: string;
    if (keepsOrder(cur, t)) out = this.reshapeTo(a.v, target);
    else {
      out = this.op('transpose', [a.v], { perm: t }, '/transpose');
      this.transposes++;
    }
    this.held.set(key, out);
    return out;
  }

  plain(a: Act): string {
    return this.holdAs(a, ident(a.shape.length));
  }

  /** A constant as a graph value in holding `perm` after aligning it to `rank` (leading 1s). */
  constAs(name: string, t: ConstTensor, rank: number, perm: number[]): string {
    const key = `${name}|${rank}|${perm.join(',')}`;
    const hit = this.constForms.get(key);
    if (hit) return hit;
    if (t.dtype !== 'float') this.fail(`constant "${name}" is not float (${t.dtype}) where a float tensor is needed`);
    const aligned = reshapeConst(t, [...new Array(rank - t.shape.length).fill(1), ...t.shape]);
    const p = transposeConst(aligned, perm);
    const v = this.g.constant(this.fresh(isIdent(perm) ? name : `${name}|perm${perm.join('')}`), p.shape, asF32(p));
    this.constForms.set(key, v);
    return v;
  }

  /** A constant as a plain graph value of exactly `shape` (same element count). */
  constShaped(name: string, t: ConstTensor, shape: number[]): string {
    if (numel(t.shape) !== numel(shape)) this.fail(`constant "${name}" [${t.shape}] does not fit [${shape}]`);
    return this.constAs(name, reshapeConst(t, shape), shape.length, ident(shape.length));
  }

  /** Give `a` rank `r` by leading size-1 dims (an alias reshape). */
  private lift(a: Act, r: number): Act {
    const k = r - a.shape.length;
    if (k <= 0) return a;
    const shape = [...new Array(k).fill(1), ...a.shape];
    const perm = [...ident(k), ...a.perm.map((p) => p + k)];
    return {
      kind: 'act',
      v: this.reshapeTo(
        a.v,
        perm.map((p) => shape[p]),
      ),
      shape,
      perm,
    };
  }

  // ---- the node loop ----------------------------------------------------------------------------

  get(name: string): Val {
    const v = this.env.get(name);
    if (!v) this.fail(`input "${name}" is not defined before it is used`);
    return v;
  }

  private constOf(name: string | undefined, what: string): ConstTensor | undefined {
    if (!name) return undefined;
    const v = this.get(name);
    if (v.kind !== 'const') this.fail(`${what} ("${name}") must be a constant (known at import time)`);
    return v.t;
  }

  private actOf(name: string, what: string): Act {
    const v = this.get(name);
    if (v.kind !== 'act') this.fail(`${what} ("${name}") is a constant where a computed tensor is expected`);
    return v;
  }

  /** `axes`-like operand: input `i` (newer opsets) or attribute `k` (older ones). */
  private listArg(n: INode, i: number, k: string): number[] | undefined {
    if (n.inputs[i]) return intList(this.constOf(n.inputs[i], k)!);
    return attrInts(n, k);
  }

  convert(n: INode): void {
    this.where = n.name;
    const ins = n.inputs.map((x) => (x ? this.get(x) : undefined));
    if (n.op === 'Split') {
      this.split(n, ins[0]!).forEach((v, k) => this.env.set(n.outputs[k], v));
      return;
    }
    const outs = this.run(n, ins);
    outs.forEach((v, k) => {
      if (n.outputs[k]) this.env.set(n.outputs[k], v);
    });
  }

  private run(n: INode, ins: (Val | undefined)[]): Val[] {
    const allConst = ins.every((v) => v === undefined || v.kind === 'const');
    if (n.op === 'Shape') return [{ kind: 'const', t: shapeOf(n, valShape(ins[0]!)) }];
    if (allConst && n.op !== 'Constant')
      return [
        {
          kind: 'const',
          t: foldNode(
            n,
            ins.map((v) => (v as Const | undefined)?.t),
          ),
        },
      ];
    if (CONST_ONLY.has(n.op)) this.fail(`${n.op} is supported on constants only (shape arithmetic)`);
    switch (n.op) {
      case 'Constant':
        return [{ kind: 'const', t: constantAttr(n) }];
      case 'Identity':
      case 'Dropout':
        return [ins[0]!];
      case 'Cast': {
        if (attrInt(n, 'to', 1) !== 1) this.fail(`Cast of a computed tensor to type ${n.attrs.to} (only float)`);
        return [ins[0]!];
      }
      case 'Conv':
        return [this.conv(n)];
      case 'BatchNormalization':
        return [this.batchNorm(n)];
      case 'LayerNormalization':
        return [this.layerNorm(n)];
      case 'Gemm':
        return [this.gemm(n)];
      case 'MatMul':
        return [this.matmul(n)];
      case 'Relu':
        return [this.activation(n, 'relu')];
      case 'HardSwish':
        return [this.activation(n, 'hardswish')];
      case 'cnnlab.Silu':
        return [this.activation(n, 'silu')];
      case 'Gelu':
        if ((n.attrs.approximate ?? 'none') !== 'none')
          this.fail(`Gelu approximate="${n.attrs.approximate}" (only exact)`);
        return [this.activation(n, 'gelu')];
      case 'Clip':
        return [this.clip(n)];
      case 'Sigmoid':
        return [this.unary(n, { fn: 'sigmoid' })];
      case 'Tanh':
        return [this.unary(n, { fn: 'tanh' })];
      case 'HardSigmoid':
        return [this.unary(n, { fn: 'hardsigmoid', alpha: attrNum(n, 'alpha', 0.2), beta: attrNum(n, 'beta', 0.5) })];
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
        return [this.binary(n)];
      case 'Softmax':
        return [this.softmax(n)];
      case 'MaxPool':
      case 'AveragePool':
        if (n.outputs.length > 1 && n.outputs[1]) this.fail('MaxPool with an indices output');
        return [this.pool(n)];
      case 'GlobalAveragePool':
        return [this.globalPool(this.actOf(n.inputs[0], 'X'), true)];
      case 'ReduceMean':
        return [this.reduceMean(n)];
      case 'Reshape': {
        const a = this.actOf(n.inputs[0], 'data');
        return [this.reshape(a, reshapeTarget(a.shape, intList(this.constOf(n.inputs[1], 'shape')!), n.name))];
      }
      case 'Flatten': {
        const a = this.actOf(n.inputs[0], 'input');
        const axis = attrInt(n, 'axis', 1);
        const ax = axis < 0 ? axis + a.shape.length : axis;
        return [this.reshape(a, [numel(a.shape.slice(0, ax)), numel(a.shape.slice(ax))])];
      }
      case 'Squeeze': {
        const a = this.actOf(n.inputs[0], 'data');
        const axes = (this.listArg(n, 1, 'axes') ?? a.shape.flatMap((d, k) => (d === 1 ? [k] : []))).map((x) =>
          axisOf(x, a.shape.length, n.name),
        );
        return [
          this.reshape(
            a,
            a.shape.filter((_, k) => !axes.includes(k)),
          ),
        ];
      }
      case 'Unsqueeze': {
        const a = this.actOf(n.inputs[0], 'data');
        const r = a.shape.length + (this.listArg(n, 1, 'axes') ?? []).length;
        const axes = (this.listArg(n, 1, 'axes') ?? []).map((x) => axisOf(x, r, n.name));
        const shape: number[] = [];
        let k = 0;
        for (let d = 0; d < r; d++) shape.push(axes.includes(d) ? 1 : a.shape[k++]);
        return [this.reshape(a, shape)];
      }
      case 'Transpose': {
        const a = this.actOf(n.inputs[0], 'data');
        const p = attrInts(n, 'perm') ?? ident(a.shape.length).reverse();
        const pinv = invert(p);
        return [
          this.act(
            a.v,
            p.map((d) => a.shape[d]),
            a.perm.map((d) => pinv[d]),
          ),
        ];
      }
      case 'Concat':
        return [this.concat(n, ins as Val[])];
      case 'Slice':
        return [this.slice(n)];
      case 'Gather':
        return [this.gather(n)];
      case 'Pad':
        return [this.pad(n)];
      default:
        this.fail(`${n.op} is not supported`);
    }
  }

  // ---- ops on computed tensors ------------------------------------------------------------------

  private activation(n: INode, act: string): Act {
    const a = this.actOf(n.inputs[0], 'X');
    return this.act(this.op('activation', [a.v], { act }), a.shape, a.perm);
  }

  private unary(n: INode, attrs: Record<string, unknown>): Act {
    const a = this.actOf(n.inputs[0], 'X');
    return this.act(this.op('unary', [a.v], attrs), a.shape, a.perm);
  }

  private clip(n: INode): Act {
    const lo = n.inputs[1] ? Number(this.constOf(n.inputs[1], 'min')!.data[0]) : attrNum(n, 'min', -Infinity);
    const hi = n.inputs[2] ? Number(this.constOf(n.inputs[2], 'max')!.data[0]) : attrNum(n, 'max', Infinity);
    if (lo === 0 && hi === 6) return this.activation(n, 'relu6');
    if (lo === 0 && hi === Infinity) return this.activation(n, 'relu');
    this.fail(`Clip to [${lo}, ${hi}] (supported: [0, 6] as ReLU6 and [0, ∞) as ReLU)`);
  }

  private binary(n: INode): Act {
    const [x, y] = n.inputs.map((v) => this.get(v));
    const r = Math.max(valShape(x).length, valShape(y).length);
    const acts = [x, y].filter((v): v is Act => v.kind === 'act').map((a) => this.lift(a, r));
    // The holding of the larger computed operand wins; the other adapts (free unless its memory order differs).
    const lead = acts.reduce((a, b) => (numel(b.shape) > numel(a.shape) ? b : a));
    const perm = lead.perm;
    const operand = (v: Val, name: string): string => {
      if (v.kind === 'const') return this.constAs(name, v.t, r, perm);
      const a = this.lift(v, r);
      return this.holdAs(a, perm);
    };
    const a = operand(x, n.inputs[0]);
    const b = operand(y, n.inputs[1]);
    const shape = broadcastShape(
      [x, y].map((v) => [...new Array(r - valShape(v).length).fill(1), ...valShape(v)]),
      n.name,
    );
    const out =
      n.op === 'Add' ? this.op('add', [a, b], {}) : this.op('binary', [a, b], { op: n.op.toLowerCase() as 'sub' });
    return this.act(out, shape, perm);
  }

  private conv(n: INode): Act {
    const x = this.actOf(n.inputs[0], 'X');
    if (x.shape.length !== 4) this.fail(`Conv on a rank-${x.shape.length} input (only 2-D convolutions, rank 4)`);
    const w = this.constOf(n.inputs[1], 'W')!;
    const [cout, cinG, kh, kw] = w.shape;
    const group = attrInt(n, 'group', 1);
    const strides = attrInts(n, 'strides') ?? [1, 1];
    const dil = attrInts(n, 'dilations') ?? [1, 1];
    const pad = this.pads(n, [x.shape[2], x.shape[3]], [kh, kw], strides, dil);
    const hwio = transposeConst(w, [2, 3, 1, 0]);
    const wName = this.g.constant(this.fresh(`${n.inputs[1]}|hwio`), hwio.shape, asF32(hwio));
    const inputs = [this.holdAs(x, NHWC), wName];
    const b = this.constOf(n.inputs[2], 'B');
    if (b) inputs.push(this.constShaped(n.inputs[2], b, [cout]));
    if (x.shape[1] !== cinG * group)
      this.fail(
        `Conv input has ${x.shape[1]} channels, the weight [${w.shape}] with group ${group} wants ${cinG * group}`,
      );
    const out = this.op('conv2d', inputs, {
      stride: [strides[0], strides[1]],
      pad,
      dilation: [dil[0], dil[1]],
      groups: group,
      act: 'none',
    });
    const [on, oh, ow, oc] = this.g.shape(out);
    return this.act(out, [on, oc, oh, ow], NHWC);
  }

  /** [top, left, bottom, right] from `pads` or `auto_pad` (ONNX Conv/Pool semantics). */
  private pads(n: INode, size: number[], k: number[], s: number[], d: number[]): [number, number, number, number] {
    const auto = (n.attrs.auto_pad as string | undefined) ?? 'NOTSET';
    if (auto === 'NOTSET') {
      const p = attrInts(n, 'pads') ?? [0, 0, 0, 0];
      return [p[0], p[1], p[2], p[3]];
    }
    if (auto === 'VALID') return [0, 0, 0, 0];
    if (auto !== 'SAME_UPPER' && auto !== 'SAME_LOWER') this.fail(`auto_pad "${auto}"`);
    const begin: number[] = [];
    const end: number[] = [];
    for (let i = 0; i < 2; i++) {
      const out = Math.ceil(size[i] / s[i]);
      const total = Math.max((out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - size[i], 0);
      const small = Math.floor(total / 2);
      begin.push(auto === 'SAME_UPPER' ? small : total - small);
      end.push(total - begin[i]);
    }
    return [begin[0], begin[1], end[0], end[1]];
  }

  private batchNorm(n: INode): Act {
    const x = this.actOf(n.inputs[0], 'X');
    if (x.shape.length !== 4) this.fail(`BatchNormalization on rank ${x.shape.length} (only rank 4)`);
    const c = x.shape[1];
    const p = [1, 2, 3, 4].map((k) => this.constShaped(n.inputs[k], this.constOf(n.inputs[k], 'BN parameter')!, [c]));
    const out = this.op('batchnorm', [this.holdAs(x, NHWC), ...p], { eps: attrNum(n, 'epsilon', 1e-5) });
    return this.act(out, x.shape, NHWC);
  }

  private layerNorm(n: INode): Act {
    const x = this.actOf(n.inputs[0], 'X');
    const r = x.shape.length;
    if (axisOf(attrInt(n, 'axis', -1), r, n.name) !== r - 1)
      this.fail('LayerNormalization over more than the last axis');
    const d = x.shape[r - 1];
    // Normalise over the ONNX last axis: hold it last on our side (any holding that does is free here).
    const perm = x.perm[x.perm.length - 1] === r - 1 ? x.perm : ident(r);
    // γ and β broadcast against the normalised axis: [D], [1,…,D] or a scalar.
    const vec = (k: number, what: string) => {
      if (!n.inputs[k]) return undefined;
      const t = this.constOf(n.inputs[k], what)!;
      if (numel(t.shape) !== 1) return this.constShaped(n.inputs[k], t, [d]);
      const v = this.g.constant(this.fresh(`${n.inputs[k]}|x${d}`), [d], new Float32Array(d).fill(Number(t.data[0])));
      return v;
    };
    const gamma = vec(1, 'Scale');
    const beta = vec(2, 'B');
    const ones = gamma ?? this.g.constant(this.fresh(`${n.name}.ones`), [d], new Float32Array(d).fill(1));
    const zeros = beta ?? this.g.constant(this.fresh(`${n.name}.zeros`), [d], new Float32Array(d));
    const out = this.op('layernorm', [this.holdAs(x, perm), ones, zeros], { eps: attrNum(n, 'epsilon', 1e-5) });
    return this.act(out, x.shape, perm);
  }

  private gemm(n: INode): Act {
    const a = this.actOf(n.inputs[0], 'A');
    if (attrInt(n, 'transA', 0)) this.fail('Gemm with transA');
    if (a.shape.length !== 2) this.fail(`Gemm on rank ${a.shape.length}`);
    let b = this.constOf(n.inputs[1], 'B')!;
    if (attrInt(n, 'transB', 0)) b = transposeConst(b, [1, 0]);
    const alpha = attrNum(n, 'alpha', 1);
    const beta = attrNum(n, 'beta', 1);
    if (alpha !== 1) b = elementwise([b], 'float', (v) => v * alpha, n.name);
    const [, N] = b.shape;
    const inputs = [
      this.plain(a),
      this.constShaped(`${n.inputs[1]}${attrInt(n, 'transB', 0) ? '|T' : ''}`, b, b.shape),
    ];
    let c = this.constOf(n.inputs[2], 'C');
    if (c) {
      if (numel(c.shape) !== N) this.fail(`Gemm bias C [${c.shape}] is not one value per output (${N})`);
      if (beta !== 1) c = elementwise([c], 'float', (v) => v * beta, n.name);
      inputs.push(this.constShaped(n.inputs[2], c, [N]));
    }
    const out = this.op('matmul', inputs, {});
    this.linearInput.set(out, inputs[0]);
    return this.act(out, [a.shape[0], N], [0, 1]);
  }

  private matmul(n: INode): Act {
    const a = this.actOf(n.inputs[0], 'A');
    const bv = this.get(n.inputs[1]);
    if (a.shape.length < 2) this.fail('MatMul with a 1-D left operand');
    const M = a.shape[a.shape.length - 2];
    if (bv.kind === 'const') {
      if (bv.t.shape.length < 2) this.fail('MatMul with a 1-D right operand');
      // A shared [K,N] weight treats every row alike: any holding that keeps K last can stay.
      const r = a.shape.length;
      const keep = bv.t.shape.length === 2 && a.perm[r - 1] === r - 1;
      const inputs = [
        keep ? a.v : this.plain(a),
        this.constAs(n.inputs[1], bv.t, bv.t.shape.length, ident(bv.t.shape.length)),
      ];
      const out = this.op('matmul', inputs, {});
      this.linearInput.set(out, inputs[0]);
      const N = bv.t.shape[bv.t.shape.length - 1];
      return this.act(out, [...a.shape.slice(0, -2), M, N], keep ? a.perm : ident(r));
    }
    const r = bv.shape.length;
    const swapped = [...ident(r - 2), r - 1, r - 2];
    const transB = r >= 2 && sameList(bv.perm, swapped);
    const out = this.op('matmul', [this.plain(a), transB ? bv.v : this.plain(bv)], transB ? { transB: true } : {});
    const shape = this.g.shape(out);
    return this.act(out, shape, ident(shape.length));
  }

  private softmax(n: INode): Act {
    const a = this.actOf(n.inputs[0], 'input');
    const r = a.shape.length;
    const axis = axisOf(attrInt(n, 'axis', this.opset >= 13 ? -1 : 1), r, n.name);
    if (axis !== r - 1) this.fail(`Softmax over axis ${axis} of a rank-${r} tensor (only the last axis)`);
    const perm = a.perm[r - 1] === r - 1 ? a.perm : ident(r);
    return this.act(this.op('softmax', [this.holdAs(a, perm)], {}), a.shape, perm);
  }

  private pool(n: INode): Act {
    const x = this.actOf(n.inputs[0], 'X');
    if (x.shape.length !== 4) this.fail(`${n.op} on rank ${x.shape.length} (only rank 4)`);
    const k = attrInts(n, 'kernel_shape')!;
    const s = attrInts(n, 'strides') ?? [1, 1];
    const d = attrInts(n, 'dilations') ?? [1, 1];
    const attrs: Record<string, unknown> = {
      kernel: [k[0], k[1]],
      stride: [s[0], s[1]],
      pad: this.pads(n, [x.shape[2], x.shape[3]], k, s, d),
      dilation: [d[0], d[1]],
      ceilMode: attrInt(n, 'ceil_mode', 0) === 1,
    };
    if (n.op === 'AveragePool') attrs.countIncludePad = attrInt(n, 'count_include_pad', 0) === 1;
    const out = this.op(n.op === 'MaxPool' ? 'maxpool' : 'avgpool', [this.holdAs(x, NHWC)], attrs);
    const [on, oh, ow, oc] = this.g.shape(out);
    return this.act(out, [on, oc, oh, ow], NHWC);
  }

  private globalPool(x: Act, keepdims: boolean): Act {
    if (x.shape.length !== 4) this.fail(`global pooling on rank ${x.shape.length} (only rank 4)`);
    const [N, C] = x.shape;
    const out = this.op('global_avgpool', [this.holdAs(x, NHWC)], {});
    if (!keepdims) return this.act(out, [N, C], [0, 1]);
    return this.act(this.reshapeTo(out, [N, 1, 1, C]), [N, C, 1, 1], NHWC);
  }

  private reduceMean(n: INode): Act {
    const x = this.actOf(n.inputs[0], 'data');
    const axes = (this.listArg(n, 1, 'axes') ?? []).map((a) => axisOf(a, x.shape.length, n.name)).sort();
    if (x.shape.length === 4 && sameList(axes, [2, 3])) return this.globalPool(x, attrInt(n, 'keepdims', 1) === 1);
    this.fail(
      `ReduceMean over axes [${axes}] of a rank-${x.shape.length} tensor (supported: the spatial axes of an NCHW tensor, ` +
        'i.e. global average pooling, and the last axis inside a LayerNorm pattern)',
    );
  }

  /** ONNX Reshape of a held value: free when the layout allows (header), else via the plain holding. */
  reshape(a: Act, target: number[]): Act {
    if (numel(target) !== numel(a.shape)) this.fail(`cannot reshape [${a.shape}] to [${target}]`);
    const perm = isIdent(a.perm) ? ident(target.length) : reshapedPerm(a.shape, a.perm, target);
    if (perm)
      return this.act(
        this.reshapeTo(
          a.v,
          perm.map((p) => target[p]),
        ),
        target,
        perm,
      );
    return this.act(this.reshapeTo(this.plain(a), target), target, ident(target.length));
  }

  private concat(n: INode, ins: Val[]): Act {
    const acts = ins.filter((v): v is Act => v.kind === 'act');
    const r = acts[0].shape.length;
    const axis = axisOf(attrInt(n, 'axis', 0), r, n.name);
    const perm = acts.reduce((a, b) => (numel(b.shape) > numel(a.shape) ? b : a)).perm;
    const parts = ins.map((v, k) =>
      v.kind === 'const' ? this.constAs(n.inputs[k], v.t, r, perm) : this.holdAs(v, perm),
    );
    const caxis = perm.indexOf(axis);
    let out = parts[0];
    for (let k = 1; k < parts.length; k += 7) out = this.op('concat', [out, ...parts.slice(k, k + 7)], { axis: caxis });
    const shape = [...acts[0].shape];
    shape[axis] = ins.reduce((s, v) => s + valShape(v)[axis], 0);
    return this.act(out, shape, perm);
  }

  private sliceArgs(n: INode, shape: number[]) {
    const starts = this.listArg(n, 1, 'starts')!;
    const ends = this.listArg(n, 2, 'ends')!;
    const axes = (this.listArg(n, 3, 'axes') ?? starts.map((_, k) => k)).map((a) => axisOf(a, shape.length, n.name));
    const steps = this.listArg(n, 4, 'steps') ?? starts.map(() => 1);
    return { starts, ends, axes, steps };
  }

  private slice(n: INode): Act {
    let a = this.actOf(n.inputs[0], 'data');
    const { starts, ends, axes, steps } = this.sliceArgs(n, a.shape);
    axes.forEach((ax, k) => {
      if (steps[k] !== 1) this.fail(`Slice with step ${steps[k]} (only 1)`);
      const { start, end } = clampSlice(starts[k], ends[k], 1, a.shape[ax]);
      if (start === 0 && end === a.shape[ax]) return;
      const out = this.op('slice', [a.v], { axis: a.perm.indexOf(ax), start, end });
      const shape = [...a.shape];
      shape[ax] = end - start;
      a = this.act(out, shape, a.perm);
    });
    return a;
  }

  /** Split into n.outputs.length parts along an axis: sizes from `split` (input or attribute) or equal parts. */
  private split(n: INode, x: Val): Val[] {
    const shape = valShape(x);
    const axis = axisOf(attrInt(n, 'axis', 0), shape.length, n.name);
    const parts = n.outputs.length;
    const sizes = this.listArg(n, 1, 'split') ?? new Array<number>(parts).fill(Math.ceil(shape[axis] / parts));
    let start = 0;
    return sizes.map((len) => {
      const end = Math.min(start + len, shape[axis]);
      const s = start;
      start = end;
      if (x.kind === 'const') return { kind: 'const', t: sliceConst(x.t, axis, s, end, 1) } satisfies Const;
      const out = this.op('slice', [x.v], { axis: x.perm.indexOf(axis), start: s, end });
      const sub = [...shape];
      sub[axis] = end - s;
      return this.act(out, sub, x.perm);
    });
  }

  private gather(n: INode): Act {
    const a = this.actOf(n.inputs[0], 'data');
    const idx = this.constOf(n.inputs[1], 'indices')!;
    const axis = axisOf(attrInt(n, 'axis', 0), a.shape.length, n.name);
    const ix = intList(idx).map((i) => (i < 0 ? i + a.shape[axis] : i));
    if (!ix.every((i, k) => k === 0 || i === ix[k - 1] + 1))
      this.fail(`Gather of indices [${ix}] (only a scalar or a contiguous ascending range)`);
    const out = this.op('slice', [a.v], { axis: a.perm.indexOf(axis), start: ix[0], end: ix[ix.length - 1] + 1 });
    const shape = [...a.shape];
    shape[axis] = ix.length;
    const sliced = this.act(out, shape, a.perm);
    const target = [...a.shape.slice(0, axis), ...idx.shape, ...a.shape.slice(axis + 1)];
    return sameList(target, shape) ? sliced : this.reshape(sliced, target);
  }

  private pad(n: INode): Act {
    const x = this.actOf(n.inputs[0], 'data');
    const mode = (n.attrs.mode as string | undefined) ?? 'constant';
    if (mode !== 'constant') this.fail(`Pad mode "${mode}" (only constant)`);
    const pads = this.listArg(n, 1, 'pads')!;
    const value = n.inputs[2] ? Number(this.constOf(n.inputs[2], 'constant_value')!.data[0]) : attrNum(n, 'value', 0);
    if (x.shape.length !== 4 || pads[0] || pads[1] || pads[4] || pads[5])
      this.fail(`Pad [${pads}] of rank ${x.shape.length} (only H and W of an NCHW tensor)`);
    const out = this.op('pad', [this.holdAs(x, NHWC)], { pad: [pads[2], pads[3], pads[6], pads[7]], value });
    const [on, oh, ow, oc] = this.g.shape(out);
    return this.act(out, [on, oc, oh, ow], NHWC);
  }
}

// ---- helpers ----------------------------------------------------------------------------------------

function valShape(v: Val): number[] {
  return v.kind === 'act' ? v.shape : v.t.shape;
}

function asF32(t: ConstTensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}

function broadcastShape(shapes: number[][], where: string): number[] {
  return shapes[0].map((_, i) => {
    const ds = shapes.map((s) => s[i]);
    const big = Math.max(...ds);
    if (ds.some((d) => d !== 1 && d !== big))
      throw new OnnxImportError(
        `node "${where}": shapes ${shapes.map((s) => `[${s}]`).join(' and ')} do not broadcast`,
      );
    return big;
  });
}
