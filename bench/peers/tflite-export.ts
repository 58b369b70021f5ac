// Export a cnnlab Graph (the optimised one: BN folded, bias, activation and residual fused) as a
// TFLite FlatBuffer, so LiteRT.js runs the same network with the same weights. The file is
// written with the schema subset of bench/peers/tflite-schema.ts; docs/peers.md lists the op
// mapping and why each choice was made.
//
// Layout. cnnlab and TFLite are both NHWC, so every value keeps its cnnlab shape and no layout
// bookkeeping is needed: the model input `image` [N,3,S,S] and its `to_nhwc` transpose export
// as they are (a TRANSPOSE), and the outputs carry their cnnlab names and shapes.
//
// Op mapping (as the TFLite converter emits for a Keras/PyTorch model of the same structure):
//   conv2d            CONV_2D (weights HWIO → OHWI) or, for groups = C_in with one input channel
//                     per group, DEPTHWISE_CONV_2D (weights [1,kh,kw,C_out], depth multiplier
//                     C_out / C_in); bias always present (zeros when the node has none); relu and
//                     relu6 fused into the op, other activations as ops after it. Padding: VALID
//                     when zero, SAME when cnnlab's pads are TF's SAME split for this size, else
//                     an explicit PAD before a VALID conv. A fused residual is ADD(conv, r) with
//                     the activation fused into the ADD.
//   maxpool, avgpool  MAX_POOL_2D / AVERAGE_POOL_2D, padding as conv (max pads with the lowest
//                     float via PADV2 unless its input is ≥ 0, where PAD's zeros give the same
//                     max); avgpool with excluded pads only where SAME expresses them; avgpool
//                     counting its pads as DEPTHWISE_CONV_2D with weights 1/(kh·kw), because
//                     LiteRT's WebGPU delegate merges a PAD before AVERAGE_POOL_2D into SAME's
//                     exclusion (tests/bench/litert.test.ts caught it)
//   global_avgpool    MEAN over H, W
//   matmul            FULLY_CONNECTED (weights [N,K], keep_num_dims for rank > 2) for one constant
//                     weight matrix; BATCH_MATMUL (adj_y for transB) otherwise, bias as an ADD
//   attention         STRIDED_SLICE q, k, v out of the packed projection, RESHAPE/TRANSPOSE to
//                     heads, BATCH_MATMUL, MUL by the scale, SOFTMAX, BATCH_MATMUL, TRANSPOSE,
//                     RESHAPE (every tensor rank ≤ 4, as the GPU delegate wants)
//   layernorm         MEAN, SUB, MUL, MEAN, ADD ε, RSQRT, MUL, MUL γ, ADD β
//   group_norm        the same on a RESHAPE to [N, H·W, G, C/G] (MEAN over axes 1 and 3), RESHAPE back
//   batchnorm         MUL scale, ADD shift (the folded affine map, where BN did not fold)
//   activation        RELU, RELU6, GELU (exact), HARD_SWISH, LOGISTIC + MUL (silu)
//   add, softmax, reshape, transpose, concat, slice, pad
//                     ADD, SOFTMAX, RESHAPE, TRANSPOSE, CONCATENATION, STRIDED_SLICE, PAD/PADV2
// A node whose inputs are all constants is folded here with its reference. Any other op is an
// error naming the node and its op.

import type { Graph, Node } from '../../engine/graph.js';
import { foldBatchNormParams } from '../../kernels/batchnorm.js';
import { getOp } from '../../kernels/index.js';
import { type Activation, type HostTensor, numel } from '../../kernels/kernel.js';
import {
  type BuiltinOperatorName,
  type BuiltinOptions,
  encodeTflite,
  FusedActivation,
  type FusedActivationValue,
  Padding,
  type PaddingValue,
  type TfliteModel,
  type TfliteOperator,
  type TfliteTensor,
  TensorType,
  type TensorTypeValue,
} from './tflite-schema.js';

export interface TfliteExportOptions {
  /** The graph outputs to keep (default: all); the rest of the graph is pruned. */
  outputs?: string[];
  /** Signature key, default 'serving_default' (the TFLite converter's). */
  signatureKey?: string;
}

/** A node the exporter cannot express in TFLite; the message names the node and its op. */
export class TfliteExportError extends Error {
  override name = 'TfliteExportError';
}

/** The most negative f32: max-pool padding that never wins. */
const LOWEST_F32 = -3.4028234663852886e38;

const bytesOf = (a: Float32Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * [rows, cols] → [cols, rows] in 32×32 blocks. Both weight layouts TFLite wants are this
 * transpose: HWIO → OHWI is [H·W·I, O] → [O, H·W·I], and FC's [K,N] → [N,K].
 */
function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B)
    for (let c0 = 0; c0 < cols; c0 += B) {
      const r1 = Math.min(r0 + B, rows),
        c1 = Math.min(c0 + B, cols);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = src[r * cols + c];
    }
  return out;
}

/** TF's SAME padding for one spatial dim: [before, after], and the output size. */
function samePads(size: number, k: number, s: number, d: number): { pads: [number, number]; out: number } {
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + (k - 1) * d + 1 - size, 0);
  return { pads: [Math.floor(total / 2), total - Math.floor(total / 2)], out };
}

class Exporter {
  readonly tensors: TfliteTensor[] = [];
  readonly buffers: Uint8Array[] = [new Uint8Array(0)];
  readonly operators: TfliteOperator[] = [];
  private readonly names = new Set<string>();
  /** Non-constant cnnlab values → tensor index. */
  private readonly held = new Map<string, number>();
  /** cnnlab constants, including folded nodes' outputs. */
  private readonly consts = new Map<string, HostTensor>();
  /** Constant tensors already written, by `${value}|${form}`. */
  private readonly constTensors = new Map<string, number>();

  constructor(readonly g: Graph) {
    for (const v of g.values.values()) {
      if (v.kind === 'const') this.consts.set(v.name, { shape: v.shape, data: v.data! });
      if (v.kind === 'input') this.held.set(v.name, this.tensor(v.name, v.shape));
    }
  }

  shape(v: string): number[] {
    return this.g.shape(v);
  }

  isConst(v: string): boolean {
    return this.consts.has(v);
  }

  constant(v: string, node: Node): HostTensor {
    const t = this.consts.get(v);
    if (!t)
      throw new TfliteExportError(`cannot export node "${node.name}" (${node.op}): input "${v}" must be a constant`);
    return t;
  }

  /** A new tensor (unique name); data makes it a constant with a buffer of its own. */
  tensor(name: string, shape: number[], type: TensorTypeValue = TensorType.FLOAT32, data?: Uint8Array): number {
    let n = name;
    for (let k = 1; this.names.has(n); k++) n = `${name}_${k}`;
    this.names.add(n);
    let buffer = 0;
    if (data) buffer = this.buffers.push(data) - 1;
    return this.tensors.push({ name: n, shape: [...shape], type, buffer }) - 1;
  }

  f32(name: string, shape: number[], data: Float32Array): number {
    return this.tensor(name, shape, TensorType.FLOAT32, bytesOf(data));
  }

  i32(name: string, values: number[], shape = [values.length]): number {
    return this.tensor(name, shape, TensorType.INT32, bytesOf(Int32Array.from(values)));
  }

  /** Constant `v` in a form its consumer needs (OHWI weights, say), written once per form. */
  constForm(v: string, form: string, node: Node, make: (t: HostTensor) => HostTensor = (t) => t): number {
    const key = `${v}|${form}`;
    let k = this.constTensors.get(key);
    if (k === undefined) {
      const t = make(this.constant(v, node));
      k = this.f32(form === 'plain' ? v : `${v}/${form}`, t.shape, t.data);
      this.constTensors.set(key, k);
    }
    return k;
  }

  /** The tensor holding value `v` (a constant is written on first use). */
  get(v: string, node: Node): number {
    if (this.isConst(v)) return this.constForm(v, 'plain', node);
    const k = this.held.get(v);
    if (k === undefined) throw new Error(`internal: value "${v}" is used before it is exported`);
    return k;
  }

  set(v: string, k: number): void {
    this.held.set(v, k);
  }

  /** One operator with one output tensor named `name` of `shape`; returns that tensor. */
  op(op: BuiltinOperatorName, inputs: number[], name: string, shape: number[], options?: BuiltinOptions): number {
    const out = this.tensor(name, shape);
    this.operators.push({ op, inputs, outputs: [out], ...(options ? { options } : {}) });
    return out;
  }

  /**
   * An op with a fused-activation field: relu and relu6 go into it; any other activation follows
   * as ops of its own. The last op's output is named `name`.
   */
  fusedOp(
    op: BuiltinOperatorName,
    inputs: number[],
    name: string,
    shape: number[],
    act: Activation | undefined,
    options: (a: FusedActivationValue) => BuiltinOptions,
  ): number {
    const fused = act === 'relu' ? FusedActivation.RELU : act === 'relu6' ? FusedActivation.RELU6 : undefined;
    if (fused !== undefined || !act || act === 'none') {
      return this.op(op, inputs, name, shape, options(fused ?? FusedActivation.NONE));
    }
    const y = this.op(op, inputs, `${name}/pre_${act}`, shape, options(FusedActivation.NONE));
    return this.activation(y, act, name, shape);
  }

  activation(x: number, act: Activation, name: string, shape: number[]): number {
    switch (act) {
      case 'none':
        return x;
      case 'relu':
        return this.op('RELU', [x], name, shape);
      case 'relu6':
        return this.op('RELU6', [x], name, shape);
      case 'gelu':
        return this.op('GELU', [x], name, shape, { table: 'GeluOptions', approximate: false });
      case 'hardswish':
        return this.op('HARD_SWISH', [x], name, shape, { table: 'HardSwishOptions' });
      case 'silu': {
        const s = this.op('LOGISTIC', [x], `${name}/sigmoid`, shape);
        return this.op('MUL', [x, s], name, shape, { table: 'MulOptions', act: FusedActivation.NONE });
      }
      default:
        throw new TfliteExportError(`activation "${String(act)}" has no TFLite mapping`);
    }
  }

  /** A [1]-shaped f32 constant (scalars broadcast from rank 1, which every delegate takes). */
  scalar(name: string, value: number): number {
    const key = `scalar|${value}`;
    let k = this.constTensors.get(key);
    if (k === undefined) {
      k = this.f32(name, [1], Float32Array.of(value));
      this.constTensors.set(key, k);
    }
    return k;
  }

  /** PAD (zeros) or PADV2 (`value`) of a 4-D NHWC tensor by [top, left, bottom, right]. */
  pad(x: number, xs: number[], p: number[], value: number, name: string): { t: number; shape: number[] } {
    const [t, l, b, r] = p;
    const shape = [xs[0], xs[1] + t + b, xs[2] + l + r, xs[3]];
    const paddings = this.i32(`${name}/paddings`, [0, 0, t, b, l, r, 0, 0], [4, 2]);
    const out =
      value === 0
        ? this.op('PAD', [x, paddings], name, shape, { table: 'PadOptions' })
        : this.op('PADV2', [x, paddings, this.scalar(`${name}/value`, value)], name, shape, { table: 'PadV2Options' });
    return { t: out, shape };
  }

  run(): void {
    for (const n of this.g.nodes) {
      if (n.inputs.every((v) => this.isConst(v))) {
        const res = getOp(n.op).ref(
          n.attrs,
          n.inputs.map((v) => this.constant(v, n)),
        );
        res.forEach((t, k) => this.consts.set(n.outputs[k], t));
        continue;
      }
      const emit = OPS[n.op];
      if (!emit) {
        throw new TfliteExportError(
          `cannot export node "${n.name}": op "${n.op}" has no TFLite mapping (exportable: ${TFLITE_EXPORTABLE_OPS.join(', ')})`,
        );
      }
      emit(this, n);
    }
  }
}

// ---- op mappings -----------------------------------------------------------------------------------

type Emit = (x: Exporter, n: Node) => void;

const actOf = (n: Node) => n.attrs.act as Activation | undefined;

interface Window {
  kernel: number[];
  stride: number[];
  dilation: number[];
  pad: number[];
}

/**
 * How a window op over input [N,H,W,C] expresses cnnlab's pads [top, left, bottom, right]:
 * VALID (no pads), SAME (TF's split for this size, and the same output size), or explicit pads
 * before a VALID op.
 */
function padding(xs: number[], w: Window, outShape: number[]): { mode: PaddingValue; explicit?: number[] } {
  const [t, l, b, r] = w.pad;
  if (t === 0 && l === 0 && b === 0 && r === 0) return { mode: Padding.VALID };
  const sh = samePads(xs[1], w.kernel[0], w.stride[0], w.dilation[0]);
  const sw = samePads(xs[2], w.kernel[1], w.stride[1], w.dilation[1]);
  const same = sh.pads[0] === t && sh.pads[1] === b && sw.pads[0] === l && sw.pads[1] === r && sh.out === outShape[1];
  return same && sw.out === outShape[2] ? { mode: Padding.SAME } : { mode: Padding.VALID, explicit: w.pad };
}

/** The output H, W of a VALID window op, checked against cnnlab's (ceil mode can differ). */
function checkValid(n: Node, hw: number[], w: Window, outShape: number[]): void {
  const o = [0, 1].map((k) => Math.floor((hw[k] - w.dilation[k] * (w.kernel[k] - 1) - 1) / w.stride[k]) + 1);
  if (o[0] !== outShape[1] || o[1] !== outShape[2]) {
    throw new TfliteExportError(
      `cannot export node "${n.name}" (${n.op}): TFLite's window gives ${o.join('×')}, cnnlab's ${outShape[1]}×${outShape[2]} (ceil mode?)`,
    );
  }
}

/** Values a producer guarantees ≥ 0 (a ReLU before a max pool lets zero padding stand in for -inf). */
function nonNegative(x: Exporter, v: string): boolean {
  const p = x.g.producer(v);
  const a = p && (p.op === 'activation' || p.attrs.act !== undefined) ? (p.attrs.act as string) : undefined;
  return a === 'relu' || a === 'relu6';
}

const OPS: Record<string, Emit> = {
  conv2d(x, n) {
    const [inp, w, bias, residual] = n.inputs;
    const a = n.attrs as { stride?: number[]; pad?: number[]; dilation?: number[]; groups?: number; act?: Activation };
    const xs = x.shape(inp),
      ws = x.shape(w),
      out = n.outputs[0],
      os = x.shape(out);
    const [kh, kw, cinG, cout] = ws;
    const groups = a.groups ?? 1;
    const depthwise = groups > 1 && groups === xs[3] && cinG === 1;
    if (groups > 1 && !depthwise) {
      throw new TfliteExportError(
        `cannot export node "${n.name}" (conv2d): groups ${groups} with ${cinG} input channels per group (TFLite has plain and depthwise convolutions only)`,
      );
    }
    const win: Window = {
      kernel: [kh, kw],
      stride: a.stride ?? [1, 1],
      dilation: a.dilation ?? [1, 1],
      pad: a.pad ?? [0, 0, 0, 0],
    };
    const p = padding(xs, win, os);
    let X = x.get(inp, n),
      hw = [xs[1], xs[2]];
    if (p.explicit) {
      const padded = x.pad(X, xs, p.explicit, 0, `${out}/pad`);
      X = padded.t;
      hw = [padded.shape[1], padded.shape[2]];
    }
    if (p.mode === Padding.VALID) checkValid(n, hw, win, os);
    const W = depthwise
      ? x.constForm(w, '1hwo', n, (t) => ({ shape: [1, kh, kw, cout], data: t.data }))
      : x.constForm(w, 'ohwi', n, (t) => ({
          shape: [cout, kh, kw, cinG],
          data: transpose2d(t.data, kh * kw * cinG, cout),
        }));
    const B = bias ? x.constForm(bias, 'plain', n) : x.f32(`${out}/zero_bias`, [cout], new Float32Array(cout));
    const conv = (act: FusedActivationValue): BuiltinOptions =>
      depthwise
        ? {
            table: 'DepthwiseConv2DOptions',
            padding: p.mode,
            strideW: win.stride[1],
            strideH: win.stride[0],
            depthMultiplier: cout / xs[3],
            act,
            dilationW: win.dilation[1],
            dilationH: win.dilation[0],
          }
        : {
            table: 'Conv2DOptions',
            padding: p.mode,
            strideW: win.stride[1],
            strideH: win.stride[0],
            act,
            dilationW: win.dilation[1],
            dilationH: win.dilation[0],
          };
    const code = depthwise ? 'DEPTHWISE_CONV_2D' : 'CONV_2D';
    if (!residual) {
      x.set(out, x.fusedOp(code, [X, W, B], out, os, a.act, conv));
      return;
    }
    // A fused residual (engine/passes.ts fuseResidual): the add carries the activation.
    const y = x.op(code, [X, W, B], `${out}/conv`, os, conv(FusedActivation.NONE));
    const R = x.get(residual, n);
    x.set(
      out,
      x.fusedOp('ADD', [y, R], out, os, a.act, (act) => ({ table: 'AddOptions', act })),
    );
  },

  maxpool: (x, n) => pool(x, n, 'MAX_POOL_2D'),
  avgpool: (x, n) => pool(x, n, 'AVERAGE_POOL_2D'),

  global_avgpool(x, n) {
    const out = n.outputs[0];
    const axes = x.i32(`${out}/axes`, [1, 2]);
    x.set(
      out,
      x.op('MEAN', [x.get(n.inputs[0], n), axes], out, x.shape(out), { table: 'ReducerOptions', keepDims: false }),
    );
  },

  matmul(x, n) {
    const [a, w, bias] = n.inputs,
      out = n.outputs[0],
      os = x.shape(out);
    const transB = !!n.attrs.transB,
      act = actOf(n);
    const as = x.shape(a),
      ws = x.shape(w);
    const A = x.get(a, n);
    if (x.isConst(w) && numel(ws.slice(0, -2)) === 1 && as.length >= 2) {
      // One weight matrix: FULLY_CONNECTED wants it [N, K].
      const [r, c] = ws.slice(-2);
      const W = x.constForm(w, 'nk', n, (t) =>
        transB ? { shape: [r, c], data: t.data } : { shape: [c, r], data: transpose2d(t.data, r, c) },
      );
      const N = os[os.length - 1];
      const fc = (f: FusedActivationValue): BuiltinOptions => ({
        table: 'FullyConnectedOptions',
        act: f,
        keepNumDims: as.length > 2,
      });
      if (!bias || x.isConst(bias)) {
        const B = bias ? x.constForm(bias, 'plain', n) : x.f32(`${out}/zero_bias`, [N], new Float32Array(N));
        x.set(out, x.fusedOp('FULLY_CONNECTED', [A, W, B], out, os, act, fc));
        return;
      }
      const y = x.op('FULLY_CONNECTED', [A, W, -1], `${out}/fc`, os, fc(FusedActivation.NONE));
      x.set(
        out,
        x.fusedOp('ADD', [y, x.get(bias, n)], out, os, act, (f) => ({ table: 'AddOptions', act: f })),
      );
      return;
    }
    const mm: BuiltinOptions = { table: 'BatchMatMulOptions', adjX: false, adjY: transB };
    if (!bias) {
      x.set(
        out,
        x.fusedOp('BATCH_MATMUL', [A, x.get(w, n)], out, os, act, () => mm),
      );
      return;
    }
    const y = x.op('BATCH_MATMUL', [A, x.get(w, n)], `${out}/matmul`, os, mm);
    x.set(
      out,
      x.fusedOp('ADD', [y, x.get(bias, n)], out, os, act, (f) => ({ table: 'AddOptions', act: f })),
    );
  },

  attention(x, n) {
    const out = n.outputs[0],
      H = n.attrs.heads as number;
    const [B, Tq] = x.shape(n.inputs[0]),
      D = x.shape(out)[2],
      dh = D / H;
    const scale = (n.attrs.scale as number | undefined) ?? 1 / Math.sqrt(dh);
    /** [B,T,D] → [B,H,T,dh] (perm [0,2,1,3]) or, for k, [B,H,dh,T] (perm [0,2,3,1]). */
    const heads = (t: number, T: number, what: string, perm: number[]) => {
      const s4 = [B, T, H, dh];
      const r = x.op('RESHAPE', [t, x.i32(`${out}/${what}_shape`, s4)], `${out}/${what}_heads`, s4, {
        table: 'ReshapeOptions',
        newShape: s4,
      });
      return x.op(
        'TRANSPOSE',
        [r, x.i32(`${out}/${what}_perm`, perm)],
        `${out}/${what}`,
        perm.map((d) => s4[d]),
        {
          table: 'TransposeOptions',
        },
      );
    };
    let q: number, kT: number, v: number, Tk: number;
    if (n.inputs.length === 1) {
      // timm's packed projection: the last axis is [3][H][dh], q first.
      const qkv = x.get(n.inputs[0], n);
      const part = (k: number, what: string) =>
        x.op(
          'STRIDED_SLICE',
          [
            qkv,
            x.i32(`${out}/${what}_begin`, [0, 0, k * D]),
            x.i32(`${out}/${what}_end`, [B, Tq, (k + 1) * D]),
            x.i32(`${out}/${what}_strides`, [1, 1, 1]),
          ],
          `${out}/${what}_proj`,
          [B, Tq, D],
          { table: 'StridedSliceOptions' },
        );
      Tk = Tq;
      q = heads(part(0, 'q'), Tq, 'q', [0, 2, 1, 3]);
      kT = heads(part(1, 'k'), Tk, 'k_t', [0, 2, 3, 1]);
      v = heads(part(2, 'v'), Tk, 'v', [0, 2, 1, 3]);
    } else {
      Tk = x.shape(n.inputs[1])[1];
      q = heads(x.get(n.inputs[0], n), Tq, 'q', [0, 2, 1, 3]);
      kT = heads(x.get(n.inputs[1], n), Tk, 'k_t', [0, 2, 3, 1]);
      v = heads(x.get(n.inputs[2], n), Tk, 'v', [0, 2, 1, 3]);
    }
    const none = FusedActivation.NONE;
    const sShape = [B, H, Tq, Tk];
    const s = x.op('BATCH_MATMUL', [q, kT], `${out}/scores`, sShape, {
      table: 'BatchMatMulOptions',
      adjX: false,
      adjY: false,
    });
    const scaled = x.op('MUL', [s, x.scalar(`${out}/scale`, scale)], `${out}/scaled`, sShape, {
      table: 'MulOptions',
      act: none,
    });
    const p = x.op('SOFTMAX', [scaled], `${out}/probs`, sShape, { table: 'SoftmaxOptions', beta: 1 });
    const o = x.op('BATCH_MATMUL', [p, v], `${out}/heads_out`, [B, H, Tq, dh], {
      table: 'BatchMatMulOptions',
      adjX: false,
      adjY: false,
    });
    const m = x.op('TRANSPOSE', [o, x.i32(`${out}/merge_perm`, [0, 2, 1, 3])], `${out}/merge`, [B, Tq, H, dh], {
      table: 'TransposeOptions',
    });
    x.set(
      out,
      x.op('RESHAPE', [m, x.i32(`${out}/shape`, [B, Tq, D])], out, [B, Tq, D], {
        table: 'ReshapeOptions',
        newShape: [B, Tq, D],
      }),
    );
  },

  layernorm(x, n) {
    const [inp, gamma, beta] = n.inputs;
    const eps = (n.attrs.eps as number | undefined) ?? 1e-6;
    const out = n.outputs[0],
      s = x.shape(inp),
      rank = s.length;
    const X = x.get(inp, n);
    const none = FusedActivation.NONE;
    const axes = x.i32(`${out}/ln_axes`, [rank - 1]);
    const red = [...s.slice(0, -1), 1];
    const mean = x.op('MEAN', [X, axes], `${out}/ln_mean`, red, { table: 'ReducerOptions', keepDims: true });
    const d = x.op('SUB', [X, mean], `${out}/ln_centered`, s, { table: 'SubOptions', act: none });
    const sq = x.op('MUL', [d, d], `${out}/ln_sq`, s, { table: 'MulOptions', act: none });
    const v = x.op('MEAN', [sq, axes], `${out}/ln_var`, red, { table: 'ReducerOptions', keepDims: true });
    const ve = x.op('ADD', [v, x.scalar(`${out}/ln_eps`, eps)], `${out}/ln_var_eps`, red, {
      table: 'AddOptions',
      act: none,
    });
    const rs = x.op('RSQRT', [ve], `${out}/ln_rstd`, red);
    const nrm = x.op('MUL', [d, rs], `${out}/ln_norm`, s, { table: 'MulOptions', act: none });
    const sc = x.op('MUL', [nrm, x.get(gamma, n)], `${out}/ln_scale`, s, { table: 'MulOptions', act: none });
    x.set(
      out,
      x.fusedOp('ADD', [sc, x.get(beta, n)], out, s, actOf(n), (act) => ({ table: 'AddOptions', act })),
    );
  },

  group_norm(x, n) {
    // Statistics per (sample, group) over H, W and the group's channels: [N,H·W,G,C/G], MEAN over axes 1 and 3.
    const [inp, gamma, beta] = n.inputs;
    const G = n.attrs.groups as number,
      eps = (n.attrs.eps as number | undefined) ?? 1e-5;
    const out = n.outputs[0],
      s = x.shape(inp),
      [N, H, W, C] = s;
    const none = FusedActivation.NONE;
    const gs = [N, H * W, G, C / G],
      red = [N, 1, G, 1];
    const r = x.op('RESHAPE', [x.get(inp, n), x.i32(`${out}/gn_shape`, gs)], `${out}/gn_groups`, gs, {
      table: 'ReshapeOptions',
      newShape: gs,
    });
    const axes = x.i32(`${out}/gn_axes`, [1, 3]);
    const mean = x.op('MEAN', [r, axes], `${out}/gn_mean`, red, { table: 'ReducerOptions', keepDims: true });
    const d = x.op('SUB', [r, mean], `${out}/gn_centered`, gs, { table: 'SubOptions', act: none });
    const sq = x.op('MUL', [d, d], `${out}/gn_sq`, gs, { table: 'MulOptions', act: none });
    const v = x.op('MEAN', [sq, axes], `${out}/gn_var`, red, { table: 'ReducerOptions', keepDims: true });
    const ve = x.op('ADD', [v, x.scalar(`${out}/gn_eps`, eps)], `${out}/gn_var_eps`, red, {
      table: 'AddOptions',
      act: none,
    });
    const rs = x.op('RSQRT', [ve], `${out}/gn_rstd`, red);
    const nrm = x.op('MUL', [d, rs], `${out}/gn_norm`, gs, { table: 'MulOptions', act: none });
    const back = x.op('RESHAPE', [nrm, x.i32(`${out}/gn_back_shape`, s)], `${out}/gn_ungroup`, s, {
      table: 'ReshapeOptions',
      newShape: s,
    });
    const sc = x.op('MUL', [back, x.get(gamma, n)], `${out}/gn_scale`, s, { table: 'MulOptions', act: none });
    x.set(
      out,
      x.fusedOp('ADD', [sc, x.get(beta, n)], out, s, actOf(n), (act) => ({ table: 'AddOptions', act })),
    );
  },

  batchnorm(x, n) {
    const [inp, gamma, beta, mean, variance] = n.inputs;
    const eps = (n.attrs.eps as number | undefined) ?? 1e-5;
    const out = n.outputs[0],
      s = x.shape(inp);
    const [g, b, m, v] = [gamma, beta, mean, variance].map((k) => x.constant(k, n).data);
    const { scale, shift } = foldBatchNormParams(g, b, m, v, eps);
    const C = scale.length;
    const y = x.op('MUL', [x.get(inp, n), x.f32(`${out}/bn_scale`, [C], scale)], `${out}/bn_mul`, s, {
      table: 'MulOptions',
      act: FusedActivation.NONE,
    });
    x.set(
      out,
      x.fusedOp('ADD', [y, x.f32(`${out}/bn_shift`, [C], shift)], out, s, actOf(n), (act) => ({
        table: 'AddOptions',
        act,
      })),
    );
  },

  activation(x, n) {
    const out = n.outputs[0];
    x.set(out, x.activation(x.get(n.inputs[0], n), actOf(n) ?? 'none', out, x.shape(out)));
  },

  add(x, n) {
    if (n.inputs.length !== 2) {
      throw new TfliteExportError(`cannot export node "${n.name}" (add): ${n.inputs.length} inputs (ADD takes 2)`);
    }
    const out = n.outputs[0];
    const ins = n.inputs.map((v) => x.get(v, n));
    x.set(
      out,
      x.fusedOp('ADD', ins, out, x.shape(out), actOf(n), (act) => ({ table: 'AddOptions', act })),
    );
  },

  softmax(x, n) {
    const out = n.outputs[0];
    x.set(out, x.op('SOFTMAX', [x.get(n.inputs[0], n)], out, x.shape(out), { table: 'SoftmaxOptions', beta: 1 }));
  },

  reshape(x, n) {
    const out = n.outputs[0],
      s = x.shape(out);
    x.set(
      out,
      x.op('RESHAPE', [x.get(n.inputs[0], n), x.i32(`${out}/shape`, s)], out, s, {
        table: 'ReshapeOptions',
        newShape: s,
      }),
    );
  },

  transpose(x, n) {
    const out = n.outputs[0];
    const perm = x.i32(`${out}/perm`, n.attrs.perm as number[]);
    x.set(out, x.op('TRANSPOSE', [x.get(n.inputs[0], n), perm], out, x.shape(out), { table: 'TransposeOptions' }));
  },

  concat(x, n) {
    const out = n.outputs[0],
      os = x.shape(out),
      rank = os.length;
    const ax = (n.attrs.axis as number) < 0 ? (n.attrs.axis as number) + rank : (n.attrs.axis as number);
    const parts = n.inputs.map((v) => {
      const s = x.shape(v),
        want = os.map((d, k) => (k === ax ? s[k] : d));
      if (s.every((d, k) => d === want[k])) return x.get(v, n);
      // Size-1 dims broadcast (a class token [1,1,D] against a batch): tiled here for a constant.
      if (!x.isConst(v)) {
        throw new TfliteExportError(
          `cannot export node "${n.name}" (concat): input "${v}" [${s}] broadcasts to [${want}] at run time`,
        );
      }
      return x.constForm(v, `tiled_${want.join('x')}`, n, (t) => {
        const data = new Float32Array(numel(want));
        const strides = s.map((_, k) => numel(s.slice(k + 1)));
        for (let i = 0; i < data.length; i++) {
          let rest = i,
            src = 0;
          for (let k = rank - 1; k >= 0; k--) {
            const c = rest % want[k];
            rest = Math.floor(rest / want[k]);
            if (s[k] !== 1) src += c * strides[k];
          }
          data[i] = t.data[src];
        }
        return { shape: want, data };
      });
    });
    x.set(
      out,
      x.op('CONCATENATION', parts, out, os, { table: 'ConcatenationOptions', axis: ax, act: FusedActivation.NONE }),
    );
  },

  slice(x, n) {
    const [inp] = n.inputs,
      out = n.outputs[0],
      s = x.shape(inp);
    const a = n.attrs as { axis: number; start: number; end: number };
    const ax = a.axis < 0 ? a.axis + s.length : a.axis,
      L = s[ax];
    const norm = (k: number) => Math.min(Math.max(k < 0 ? k + L : k, 0), L);
    const begin = s.map((_, k) => (k === ax ? norm(a.start) : 0));
    const end = s.map((d, k) => (k === ax ? norm(a.end) : d));
    x.set(
      out,
      x.op(
        'STRIDED_SLICE',
        [
          x.get(inp, n),
          x.i32(`${out}/begin`, begin),
          x.i32(`${out}/end`, end),
          x.i32(
            `${out}/strides`,
            s.map(() => 1),
          ),
        ],
        out,
        x.shape(out),
        { table: 'StridedSliceOptions' },
      ),
    );
  },

  pad(x, n) {
    const [inp] = n.inputs,
      out = n.outputs[0];
    const value = (n.attrs.value as number | undefined) ?? 0;
    x.set(out, x.pad(x.get(inp, n), x.shape(inp), n.attrs.pad as number[], value, out).t);
  },
};

function pool(x: Exporter, n: Node, op: 'MAX_POOL_2D' | 'AVERAGE_POOL_2D'): void {
  const a = n.attrs as {
    kernel: number[];
    stride?: number[];
    pad?: number[];
    dilation?: number[];
    countIncludePad?: boolean;
  };
  const [inp] = n.inputs,
    out = n.outputs[0],
    xs = x.shape(inp),
    os = x.shape(out);
  const win: Window = {
    kernel: a.kernel,
    stride: a.stride ?? a.kernel,
    dilation: a.dilation ?? [1, 1],
    pad: a.pad ?? [0, 0, 0, 0],
  };
  if (win.dilation.some((d) => d !== 1)) {
    throw new TfliteExportError(
      `cannot export node "${n.name}" (${n.op}): dilation ${JSON.stringify(win.dilation)} (TFLite pools have none)`,
    );
  }
  const padded = win.pad.some((v) => v !== 0);
  if (op === 'AVERAGE_POOL_2D' && padded && a.countIncludePad !== false) {
    // Padded taps count: a depthwise conv with weights 1/(kh·kw) (AVERAGE_POOL_2D excludes pads
    // under SAME, and LiteRT's WebGPU delegate merges a PAD before it into that same exclusion).
    const C = xs[3],
      taps = win.kernel[0] * win.kernel[1];
    const w = x.f32(`${out}/avg_weights`, [1, ...win.kernel, C], new Float32Array(taps * C).fill(1 / taps));
    const b = x.f32(`${out}/zero_bias`, [C], new Float32Array(C));
    const p = padding(xs, win, os);
    let X = x.get(inp, n),
      hw = [xs[1], xs[2]];
    if (p.explicit) {
      const t = x.pad(X, xs, p.explicit, 0, `${out}/pad`);
      X = t.t;
      hw = [t.shape[1], t.shape[2]];
    }
    if (p.mode === Padding.VALID) checkValid(n, hw, win, os);
    const dw: BuiltinOptions = {
      table: 'DepthwiseConv2DOptions',
      padding: p.mode,
      strideW: win.stride[1],
      strideH: win.stride[0],
      depthMultiplier: 1,
      act: FusedActivation.NONE,
      dilationW: 1,
      dilationH: 1,
    };
    x.set(out, x.op('DEPTHWISE_CONV_2D', [X, w, b], out, os, dw));
    return;
  }
  const p = padding(xs, win, os);
  let X = x.get(inp, n),
    hw = [xs[1], xs[2]];
  if (p.explicit) {
    // Max: padding must never win. Avg (pads excluded here): only TFLite's SAME split expresses it.
    let value = 0;
    if (op === 'MAX_POOL_2D') value = nonNegative(x, inp) ? 0 : LOWEST_F32;
    else {
      throw new TfliteExportError(
        `cannot export node "${n.name}" (avgpool): pads ${JSON.stringify(win.pad)} excluded from the average are not TFLite's SAME split`,
      );
    }
    const padded = x.pad(X, xs, p.explicit, value, `${out}/pad`);
    X = padded.t;
    hw = [padded.shape[1], padded.shape[2]];
  }
  if (p.mode === Padding.VALID) checkValid(n, hw, win, os);
  const opts: BuiltinOptions = {
    table: 'Pool2DOptions',
    padding: p.mode,
    strideW: win.stride[1],
    strideH: win.stride[0],
    filterW: win.kernel[1],
    filterH: win.kernel[0],
    act: FusedActivation.NONE,
  };
  x.set(out, x.op(op, [X], out, os, opts));
}

/** The cnnlab ops the exporter maps to TFLite (any op also folds when all its inputs are constants). */
export const TFLITE_EXPORTABLE_OPS: readonly string[] = Object.keys(OPS).sort();

/** `graph` as a TfliteModel (before encoding); see exportTflite. */
export function tfliteModel(graph: Graph, o: TfliteExportOptions = {}): TfliteModel {
  const g = graph.clone();
  if (o.outputs) {
    for (const v of o.outputs) if (!g.outputs.includes(v)) throw new Error(`"${v}" is not an output of the graph`);
    g.outputs = [...o.outputs];
  }
  g.prune();
  const x = new Exporter(g);
  x.run();
  const outputs = g.outputs.map((v) => {
    const k = x.get(v, { name: 'outputs', op: 'output', attrs: {}, inputs: [v], outputs: [] });
    if (x.operators.every((op) => !op.outputs.includes(k))) {
      throw new TfliteExportError(`graph output "${v}" is not computed by any op (an input or a constant)`);
    }
    return k;
  });
  const inputs = [...g.values.values()].filter((v) => v.kind === 'input').map((v) => x.get(v.name, g.nodes[0]));
  return {
    description: 'cnnlab',
    tensors: x.tensors,
    inputs,
    outputs,
    operators: x.operators,
    buffers: x.buffers,
    signatureKey: o.signatureKey ?? 'serving_default',
  };
}

/** Export `graph` as a .tflite file (one subgraph, one signature, float32). */
export function exportTflite(graph: Graph, o: TfliteExportOptions = {}): Uint8Array {
  return encodeTflite(tfliteModel(graph, o));
}
