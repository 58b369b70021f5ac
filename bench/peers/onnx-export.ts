// Export a cnnlab Graph (usually the optimised one, with its constants) as an ONNX model, so ONNX
// Runtime Web can run the same network with the same weights.
//
// Layout. cnnlab is NHWC; ONNX's Conv, pooling and BatchNormalization are NCHW. Every non-constant
// value is "held" in ONNX either 'plain' (the cnnlab tensor as is) or, for 4-D values, 'nchw'
// (the cnnlab tensor permuted by [0,3,1,2]). Conv, norms and pooling produce nchw; elementwise
// ops, softmax, slice and pad work in whichever layout their input is held (axes remapped);
// reshape, matmul and attention need plain. A value is converted at most once per layout, and
// by a Reshape instead of a Transpose when the two layouts have the same memory order (a size-1
// H·W, say). cnnlab transposes compose with the holding: the model input `image` [N,3,S,S]
// followed by `to_nhwc` (perm [0,2,3,1]) just becomes an nchw-held value, no node emitted, so a
// model's ONNX input stays NCHW and a conv → bn → relu → conv chain has no transposes at all.
// Graph inputs keep their declared shapes; graph outputs are plain (the cnnlab shapes).
//
// Constants: weights become initialisers in the form their consumer needs (conv HWIO → OIHW,
// linear [K,N] with transB undone, [C] vectors as [C,1,1] next to nchw values). A node whose
// inputs are all constants (weight_standardize on a weight) is folded here with its reference.
//
// Op choices follow what torch.onnx emits at opset 13: GroupNorm as Reshape → InstanceNormalization
// → Reshape → Mul → Add, LayerNorm decomposed (LayerNormalization from opset 17), exact GELU
// as Div → Erf → Add → Mul → Mul, HardSwish from opset 14 (Add → Clip → Mul → Div before).

import type { Graph, Node } from '../../engine/graph.js';
import { getOp } from '../../kernels/index.js';
import { type Activation, type HostTensor, numel } from '../../kernels/kernel.js';
import {
  type Attr,
  DataType,
  encodeModel,
  f,
  i,
  ints,
  OnnxBuilder,
  type OnnxModel,
  type OnnxValueInfo,
} from '../../models/onnx/proto.js';

export interface OnnxExportOptions {
  /** ONNX opset, default 13. 14+ uses HardSwish, 17 uses LayerNormalization. */
  opset?: 13 | 14 | 15 | 16 | 17;
  /** Graph name, default 'cnnlab'. */
  name?: string;
}

/** A node the exporter cannot express in ONNX; the message names the node and its op. */
export class OnnxExportError extends Error {
  override name = 'OnnxExportError';
}

type Layout = 'plain' | 'nchw';
/** ONNX tensor of an nchw-held value = cnnlab tensor permuted by TO_NCHW. */
const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

const permuteShape = (s: readonly number[], p: readonly number[]) => p.map((d) => s[d]);
const invert = (p: readonly number[]) =>
  p.reduce<number[]>((inv, d, k) => {
    inv[d] = k;
    return inv;
  }, []);
const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, k) => v === b[k]);
const isIdentity = (p: readonly number[]) => p.every((d, k) => d === k);

/** Permuting by `p` keeps row-major memory order when the dims that move are all size 1. */
function memoryOrderKept(shape: readonly number[], p: readonly number[]): boolean {
  const big = p.filter((d) => shape[d] !== 1);
  return big.every((d, k) => k === 0 || d > big[k - 1]);
}

function permuteHost(t: HostTensor, perm: number[]): HostTensor {
  if (isIdentity(perm)) return t;
  return getOp('transpose').ref({ perm }, [t])[0];
}

// ---- the cnnlab side: values, layouts, ops ---------------------------------------------------------

interface Held {
  onnx: string;
  layout: Layout;
}

class Exporter {
  readonly b: OnnxBuilder;
  /** cnnlab constants, including the outputs of folded nodes. */
  private readonly consts = new Map<string, HostTensor>();
  /** Non-constant cnnlab values: the ONNX tensor and how it is laid out. */
  private readonly held = new Map<string, Held>();
  /** Converted forms of values and constants, by `${value}|${form}`. */
  private readonly forms = new Map<string, string>();

  constructor(
    private readonly g: Graph,
    opset: number,
  ) {
    this.b = new OnnxBuilder(opset);
    for (const v of g.values.values()) {
      if (v.kind === 'const') this.consts.set(v.name, { shape: v.shape, data: v.data! });
      if (v.kind === 'input') {
        this.b.reserve(v.name);
        this.held.set(v.name, { onnx: v.name, layout: 'plain' });
      }
    }
    for (const o of g.outputs) this.b.reserve(o);
  }

  shape(v: string): number[] {
    return this.g.shape(v);
  }

  consumers(v: string): Node[] {
    return this.g.consumers(v);
  }

  isConst(v: string): boolean {
    return this.consts.has(v);
  }

  constant(v: string): HostTensor {
    const t = this.consts.get(v);
    if (!t) throw new OnnxExportError(`value "${v}" must be a constant here`);
    return t;
  }

  layoutOf(v: string): Layout {
    return this.held.get(v)?.layout ?? 'plain';
  }

  /** Whether `v` is available in `layout` without a new node (constants always are). */
  has(v: string, layout: Layout): boolean {
    return this.isConst(v) || this.layoutOf(v) === layout || this.forms.has(`${v}|${layout}`);
  }

  /**
   * Layout for an op whose 4-D inputs may come either way (add, concat): NCHW when some input is
   * held NCHW and every other non-constant 4-D input already has an NCHW form, else plain.
   */
  common(inputs: string[], rank: number): Layout {
    const live = inputs.filter((v) => !this.isConst(v) && this.shape(v).length === 4);
    const nchw = rank === 4 && live.some((v) => this.layoutOf(v) === 'nchw') && live.every((v) => this.has(v, 'nchw'));
    return nchw ? 'nchw' : 'plain';
  }

  /** The ONNX axis holding cnnlab axis `a` of a value held in `layout`. */
  axis(a: number, rank: number, layout: Layout): number {
    const ax = a < 0 ? a + rank : a;
    return layout === 'nchw' ? TO_NCHW.indexOf(ax) : ax;
  }

  set(v: string, onnx: string, layout: Layout): void {
    this.held.set(v, { onnx, layout });
  }

  /** A constant as an initialiser, transformed once per form. */
  constForm(v: string, form: string, make: (t: HostTensor) => HostTensor): string {
    const key = `${v}|${form}`;
    let name = this.forms.get(key);
    if (!name) {
      const t = make(this.constant(v));
      name = this.b.floats(form === 'plain' ? v : `${v}/${form}`, t.shape, t.data);
      this.forms.set(key, name);
    }
    return name;
  }

  /** Value `v` as an ONNX tensor in `layout` (converting once, Reshape when memory order allows). */
  get(v: string, layout: Layout): string {
    const s = this.shape(v);
    if (layout === 'nchw' && s.length !== 4)
      throw new Error(`internal: "${v}" ${JSON.stringify(s)} cannot be held as NCHW`);
    if (this.isConst(v)) {
      return this.constForm(v, layout, (t) => (layout === 'nchw' ? permuteHost(t, TO_NCHW) : t));
    }
    const h = this.held.get(v);
    if (!h) throw new Error(`internal: value "${v}" is used before it is exported`);
    if (h.layout === layout) return h.onnx;
    const key = `${v}|${layout}`;
    let name = this.forms.get(key);
    if (!name) {
      const perm = layout === 'nchw' ? TO_NCHW : TO_NHWC;
      const from = h.layout === 'nchw' ? permuteShape(s, TO_NCHW) : s;
      const base = `${v}/${layout === 'nchw' ? 'nchw' : 'nhwc'}`;
      name = memoryOrderKept(from, perm)
        ? this.b.one('Reshape', [h.onnx, this.b.int64(permuteShape(from, perm))], {}, base)
        : this.b.one('Transpose', [h.onnx], { perm: ints(perm) }, base);
      this.forms.set(key, name);
    }
    return name;
  }

  /**
   * Operand `v` of a broadcasting op whose cnnlab output has rank `rank` and is held in `layout`:
   * numpy broadcasting works as is for plain; for nchw the operand is lifted to rank 4 and
   * permuted (a [C] bias becomes [C,1,1]).
   */
  operand(v: string, rank: number, layout: Layout): string {
    const s = this.shape(v);
    if (layout === 'plain' || s.length === 4) return this.get(v, layout);
    const s4 = [...new Array<number>(rank - s.length).fill(1), ...s];
    const t4 = permuteShape(s4, TO_NCHW);
    const lead = t4.findIndex((d) => d !== 1);
    const dims = lead < 0 ? [] : t4.slice(lead);
    if (this.isConst(v)) {
      return this.constForm(v, 'nchw', (t) => ({
        shape: dims,
        data: permuteHost({ shape: s4, data: t.data }, TO_NCHW).data,
      }));
    }
    const key = `${v}|bcast-nchw`;
    let name = this.forms.get(key);
    if (!name) {
      const x = this.get(v, 'plain');
      name = memoryOrderKept(s4, TO_NCHW)
        ? this.b.one('Reshape', [x, this.b.int64(t4)], {}, `${v}/nchw`)
        : this.b.one(
            'Transpose',
            [this.b.one('Reshape', [x, this.b.int64(s4)], {}, `${v}/4d`)],
            { perm: ints(TO_NCHW) },
            `${v}/nchw`,
          );
      this.forms.set(key, name);
    }
    return name;
  }

  /** Apply a fused activation; the last node's output is named `out`. */
  act(x: string, a: Activation | undefined, out: string): string {
    const b = this.b,
      one = b.one.bind(b);
    switch (a ?? 'none') {
      case 'none':
        return x;
      case 'relu':
        return one('Relu', [x], {}, out);
      case 'relu6':
        return one('Clip', [x, b.scalar(0), b.scalar(6)], {}, out);
      case 'gelu': {
        const e = one('Erf', [one('Div', [x, b.scalar(Math.SQRT2)], {}, `${out}/gelu_div`)], {}, `${out}/gelu_erf`);
        const m = one('Mul', [x, one('Add', [e, b.scalar(1)], {}, `${out}/gelu_add`)], {}, `${out}/gelu_mul`);
        return one('Mul', [m, b.scalar(0.5)], {}, out);
      }
      case 'hardswish': {
        if (b.opset >= 14) return one('HardSwish', [x], {}, out);
        const c = one(
          'Clip',
          [one('Add', [x, b.scalar(3)], {}, `${out}/hs_add`), b.scalar(0), b.scalar(6)],
          {},
          `${out}/hs_clip`,
        );
        return one('Div', [one('Mul', [x, c], {}, `${out}/hs_mul`), b.scalar(6)], {}, out);
      }
      case 'silu':
        return one('Mul', [x, one('Sigmoid', [x], {}, `${out}/silu_sigmoid`)], {}, out);
      default:
        throw new OnnxExportError(`activation "${String(a)}" has no ONNX mapping`);
    }
  }

  /** Base name of an op's result before its fused activation. */
  pre(out: string, a: Activation | undefined, what: string): string {
    return !a || a === 'none' ? out : `${out}/${what}`;
  }

  run(): void {
    for (const n of this.g.nodes) {
      if (n.inputs.every((v) => this.isConst(v))) {
        const res = getOp(n.op).ref(
          n.attrs,
          n.inputs.map((v) => this.constant(v)),
        );
        res.forEach((t, k) => this.consts.set(n.outputs[k], t));
        continue;
      }
      const emit = OPS[n.op];
      if (!emit) {
        throw new OnnxExportError(
          `cannot export node "${n.name}": op "${n.op}" has no ONNX mapping (exportable: ${EXPORTABLE_OPS.join(', ')})`,
        );
      }
      emit(this, n);
    }
  }

  /** Graph inputs and outputs; outputs are plain and carry their cnnlab names. */
  finish(): { input: OnnxValueInfo[]; output: OnnxValueInfo[] } {
    const named = new Set<string>();
    for (const o of this.g.outputs) {
      const t = this.get(o, 'plain');
      const isInput = this.g.values.get(t)?.kind === 'input';
      if (t === o) {
        named.add(o);
        continue;
      }
      if (!named.has(t) && !isInput && this.b.rename(t, o)) {
        // t is gone: whatever pointed at it now reads o.
        for (const [k, h] of this.held) if (h.onnx === t) this.held.set(k, { ...h, onnx: o });
        for (const [k, f] of this.forms) if (f === t) this.forms.set(k, o);
      } else {
        this.b.identity(t, o);
      }
      named.add(o);
    }
    const info = (name: string, shape: number[]): OnnxValueInfo => ({
      name,
      type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: shape.map((d) => ({ dim_value: d })) } } },
    });
    const inputs = [...this.g.values.values()].filter((v) => v.kind === 'input');
    return {
      input: inputs.map((v) => info(v.name, v.shape)),
      output: this.g.outputs.map((o) => info(o, this.shape(o))),
    };
  }
}

// ---- op mappings -----------------------------------------------------------------------------------

type Emit = (x: Exporter, n: Node) => void;

const actOf = (n: Node) => n.attrs.act as Activation | undefined;

const OPS: Record<string, Emit> = {
  conv2d(x, n) {
    const [inp, w, bias, residual] = n.inputs;
    const a = n.attrs as { stride?: number[]; pad?: number[]; dilation?: number[]; groups?: number; act?: Activation };
    const [kh, kw] = x.shape(w);
    const W = x.isConst(w)
      ? x.constForm(w, 'oihw', (t) => permuteHost(t, [3, 2, 0, 1]))
      : x.b.one('Transpose', [x.get(w, 'plain')], { perm: ints([3, 2, 0, 1]) }, `${n.name}/w_oihw`);
    const inputs = [x.get(inp, 'nchw'), W];
    if (bias) inputs.push(x.get(bias, 'plain'));
    const out = n.outputs[0];
    const attrs = {
      kernel_shape: ints([kh, kw]),
      strides: ints(a.stride ?? [1, 1]),
      pads: ints(a.pad ?? [0, 0, 0, 0]),
      dilations: ints(a.dilation ?? [1, 1]),
      group: i(a.groups ?? 1),
    };
    // A fused residual (engine/passes.ts fuseResidual) is an Add before the activation.
    const y = residual
      ? x.b.one(
          'Add',
          [x.b.one('Conv', inputs, attrs, `${out}/conv`), x.get(residual, 'nchw')],
          {},
          x.pre(out, a.act, 'res'),
        )
      : x.b.one('Conv', inputs, attrs, x.pre(out, a.act, 'conv'));
    x.set(out, x.act(y, a.act, out), 'nchw');
  },

  batchnorm(x, n) {
    const [inp, gamma, beta, mean, variance] = n.inputs;
    const eps = (n.attrs.eps as number | undefined) ?? 1e-5;
    const rank = x.shape(inp).length,
      out = n.outputs[0];
    if (rank === 4 || rank === 2) {
      const layout: Layout = rank === 4 ? 'nchw' : 'plain';
      const params = [gamma, beta, mean, variance].map((v) => x.get(v, 'plain'));
      const y = x.b.one(
        'BatchNormalization',
        [x.get(inp, layout), ...params],
        { epsilon: f(eps) },
        x.pre(out, actOf(n), 'bn'),
      );
      x.set(out, x.act(y, actOf(n), out), layout);
      return;
    }
    // Channels last of another rank: (x - mean) / sqrt(var + eps) * gamma + beta, broadcasting.
    const b = x.b,
      X = x.get(inp, 'plain'),
      p = (v: string) => x.get(v, 'plain');
    const d = b.one('Sub', [X, p(mean)], {}, `${out}/bn_sub`);
    const s = b.one('Sqrt', [b.one('Add', [p(variance), b.scalar(eps)], {}, `${out}/bn_var_eps`)], {}, `${out}/bn_std`);
    const m = b.one('Mul', [b.one('Div', [d, s], {}, `${out}/bn_norm`), p(gamma)], {}, `${out}/bn_scale`);
    const y = b.one('Add', [m, p(beta)], {}, x.pre(out, actOf(n), 'bn'));
    x.set(out, x.act(y, actOf(n), out), 'plain');
  },

  group_norm(x, n) {
    const [inp, gamma, beta] = n.inputs;
    const G = n.attrs.groups as number,
      eps = (n.attrs.eps as number | undefined) ?? 1e-5;
    const [N, H, W, C] = x.shape(inp),
      out = n.outputs[0],
      b = x.b;
    const ones = b.floats(`${n.name}/in_scale`, [G], new Float32Array(G).fill(1), `ones:${G}`);
    const zeros = b.floats(`${n.name}/in_bias`, [G], new Float32Array(G), `zeros:${G}`);
    const r = b.one('Reshape', [x.get(inp, 'nchw'), b.int64([N, G, (C / G) * H * W])], {}, `${out}/groups`);
    const nrm = b.one('InstanceNormalization', [r, ones, zeros], { epsilon: f(eps) }, `${out}/norm`);
    const back = b.one('Reshape', [nrm, b.int64([N, C, H, W])], {}, `${out}/ungroup`);
    const m = b.one('Mul', [back, x.operand(gamma, 4, 'nchw')], {}, `${out}/scale`);
    const y = b.one('Add', [m, x.operand(beta, 4, 'nchw')], {}, x.pre(out, actOf(n), 'shift'));
    x.set(out, x.act(y, actOf(n), out), 'nchw');
  },

  layernorm(x, n) {
    const [inp, gamma, beta] = n.inputs;
    const eps = (n.attrs.eps as number | undefined) ?? 1e-6;
    const rank = x.shape(inp).length,
      out = n.outputs[0],
      b = x.b;
    if (b.opset >= 17) {
      const y = b.one(
        'LayerNormalization',
        [x.get(inp, 'plain'), x.get(gamma, 'plain'), x.get(beta, 'plain')],
        { axis: i(-1), epsilon: f(eps) },
        x.pre(out, actOf(n), 'ln'),
      );
      x.set(out, x.act(y, actOf(n), out), 'plain');
      return;
    }
    const layout = x.layoutOf(inp),
      X = x.get(inp, layout);
    const axes = ints([x.axis(-1, rank, layout)]);
    const mean = b.one('ReduceMean', [X], { axes, keepdims: i(1) }, `${out}/ln_mean`);
    const d = b.one('Sub', [X, mean], {}, `${out}/ln_centered`);
    const v = b.one(
      'ReduceMean',
      [b.one('Mul', [d, d], {}, `${out}/ln_sq`)],
      { axes, keepdims: i(1) },
      `${out}/ln_var`,
    );
    const s = b.one('Sqrt', [b.one('Add', [v, b.scalar(eps)], {}, `${out}/ln_var_eps`)], {}, `${out}/ln_std`);
    const m = b.one(
      'Mul',
      [b.one('Div', [d, s], {}, `${out}/ln_norm`), x.operand(gamma, rank, layout)],
      {},
      `${out}/ln_scale`,
    );
    const y = b.one('Add', [m, x.operand(beta, rank, layout)], {}, x.pre(out, actOf(n), 'ln'));
    x.set(out, x.act(y, actOf(n), out), layout);
  },

  weight_standardize(x, n) {
    // Only reached for a non-constant weight (constants are folded): HWIO, statistics over H, W, I.
    const [w] = n.inputs,
      out = n.outputs[0],
      b = x.b;
    const eps = (n.attrs.eps as number | undefined) ?? 1e-8;
    const W = x.get(w, 'plain'),
      axes = ints([0, 1, 2]);
    const d = b.one(
      'Sub',
      [W, b.one('ReduceMean', [W], { axes, keepdims: i(1) }, `${out}/mean`)],
      {},
      `${out}/centered`,
    );
    const v = b.one('ReduceMean', [b.one('Mul', [d, d], {}, `${out}/sq`)], { axes, keepdims: i(1) }, `${out}/var`);
    const s = b.one('Sqrt', [b.one('Add', [v, b.scalar(eps)], {}, `${out}/var_eps`)], {}, `${out}/std`);
    x.set(out, b.one('Div', [d, s], {}, out), 'plain');
  },

  activation(x, n) {
    const [inp] = n.inputs,
      layout = x.layoutOf(inp);
    x.set(n.outputs[0], x.act(x.get(inp, layout), actOf(n) ?? 'none', n.outputs[0]), layout);
  },

  add(x, n) {
    const out = n.outputs[0],
      rank = x.shape(out).length;
    const layout = x.common(n.inputs, rank);
    const y = x.b.one(
      'Add',
      n.inputs.map((v) => x.operand(v, rank, layout)),
      {},
      x.pre(out, actOf(n), 'add'),
    );
    x.set(out, x.act(y, actOf(n), out), layout);
  },

  binary(x, n) {
    const out = n.outputs[0],
      rank = x.shape(out).length;
    const layout = x.common(n.inputs, rank);
    const op = { sub: 'Sub', mul: 'Mul', div: 'Div' }[n.attrs.op as 'sub' | 'mul' | 'div'];
    x.set(
      out,
      x.b.one(
        op,
        n.inputs.map((v) => x.operand(v, rank, layout)),
        {},
        out,
      ),
      layout,
    );
  },

  unary(x, n) {
    const [inp] = n.inputs,
      out = n.outputs[0],
      layout = x.layoutOf(inp),
      X = x.get(inp, layout);
    const a = n.attrs as { fn: 'sigmoid' | 'tanh' | 'hardsigmoid'; alpha?: number; beta?: number };
    const y =
      a.fn === 'sigmoid'
        ? x.b.one('Sigmoid', [X], {}, out)
        : a.fn === 'tanh'
          ? x.b.one('Tanh', [X], {}, out)
          : x.b.one('HardSigmoid', [X], { alpha: f(a.alpha ?? 0.2), beta: f(a.beta ?? 0.5) }, out);
    x.set(out, y, layout);
  },

  softmax(x, n) {
    const [inp] = n.inputs,
      layout = x.layoutOf(inp),
      rank = x.shape(inp).length;
    x.set(
      n.outputs[0],
      x.b.one('Softmax', [x.get(inp, layout)], { axis: i(x.axis(-1, rank, layout)) }, n.outputs[0]),
      layout,
    );
  },

  maxpool: (x, n) => pool(x, n, 'MaxPool'),
  avgpool: (x, n) => pool(x, n, 'AveragePool'),

  global_avgpool(x, n) {
    const [inp] = n.inputs,
      out = n.outputs[0],
      b = x.b;
    if (x.layoutOf(inp) === 'nchw') {
      const g = b.one('GlobalAveragePool', [x.get(inp, 'nchw')], {}, `${out}/gap`);
      x.set(out, b.one('Flatten', [g], { axis: i(1) }, out), 'plain');
    } else {
      x.set(out, b.one('ReduceMean', [x.get(inp, 'plain')], { axes: ints([1, 2]), keepdims: i(0) }, out), 'plain');
    }
  },

  reshape(x, n) {
    const [inp] = n.inputs,
      out = n.outputs[0],
      s = x.shape(inp);
    // An nchw-held value whose memory order is the NHWC order (H = W = 1, say) reshapes as is.
    const layout: Layout = x.layoutOf(inp) === 'nchw' && memoryOrderKept(s, TO_NCHW) ? 'nchw' : 'plain';
    x.set(out, x.b.one('Reshape', [x.get(inp, layout), x.b.int64(x.shape(out))], {}, out), 'plain');
  },

  transpose(x, n) {
    const [inp] = n.inputs,
      out = n.outputs[0];
    const p = n.attrs.perm as number[];
    const layout = x.layoutOf(inp),
      X = x.get(inp, layout);
    // cnnlab value = ONNX tensor permuted by r; r = identity or NCHW→NHWC needs no node.
    const r = layout === 'nchw' ? p.map((d) => invert(TO_NCHW)[d]) : [...p];
    if (isIdentity(r)) return x.set(out, X, 'plain');
    if (r.length === 4 && same(r, TO_NHWC)) return x.set(out, X, 'nchw');
    x.set(out, x.b.one('Transpose', [X], { perm: ints(r) }, out), 'plain');
  },

  concat(x, n) {
    const out = n.outputs[0],
      os = x.shape(out),
      rank = os.length;
    const ax = (n.attrs.axis as number) < 0 ? (n.attrs.axis as number) + rank : (n.attrs.axis as number);
    const layout = x.common(n.inputs, rank);
    const hold = (s: number[]) => (layout === 'nchw' ? permuteShape(s, TO_NCHW) : s);
    const parts = n.inputs.map((v) => {
      const s = x.shape(v),
        want = os.map((d, k) => (k === ax ? s[k] : d));
      const t = x.get(v, layout);
      // Size-1 dims broadcast (a class token [1,1,D] against a batch): Expand, which ORT folds for constants.
      return same(s, want) ? t : x.b.one('Expand', [t, x.b.int64(hold(want))], {}, `${out}/expand_${v}`);
    });
    x.set(out, x.b.one('Concat', parts, { axis: i(x.axis(ax, rank, layout)) }, out), layout);
  },

  slice(x, n) {
    const [inp] = n.inputs,
      out = n.outputs[0],
      s = x.shape(inp),
      layout = x.layoutOf(inp);
    const a = n.attrs as { axis: number; start: number; end: number };
    const ax = a.axis < 0 ? a.axis + s.length : a.axis,
      L = s[ax];
    const norm = (k: number) => Math.min(Math.max(k < 0 ? k + L : k, 0), L);
    const b = x.b;
    const y = b.one(
      'Slice',
      [x.get(inp, layout), b.int64([norm(a.start)]), b.int64([norm(a.end)]), b.int64([x.axis(ax, s.length, layout)])],
      {},
      out,
    );
    x.set(out, y, layout);
  },

  pad(x, n) {
    const [inp] = n.inputs,
      out = n.outputs[0],
      layout = x.layoutOf(inp),
      b = x.b;
    const [t, l, bo, r] = n.attrs.pad as number[];
    const pads = layout === 'nchw' ? [0, 0, t, l, 0, 0, bo, r] : [0, t, l, 0, 0, bo, r, 0];
    let value = (n.attrs.value as number | undefined) ?? 0;
    // ORT's PadFusion (level 1) folds a zero Pad into a following pool's pads, which is wrong for
    // MaxPool (its padding is -inf: BiT's stem pad → maxpool) and for AveragePool excluding pads.
    // It only fires on a pad value whose bytes are all 0, so write 0 as -0.0 (same result) there.
    if (value === 0 && x.consumers(out).some((c) => c.op === 'maxpool' || c.op === 'avgpool')) value = -0;
    x.set(
      out,
      b.one('Pad', [x.get(inp, layout), b.int64(pads), b.scalar(value)], { mode: { s: 'constant' } }, out),
      layout,
    );
  },

  matmul(x, n) {
    const [a, w, bias] = n.inputs,
      out = n.outputs[0],
      b = x.b;
    const transB = !!n.attrs.transB,
      act = actOf(n);
    const as = x.shape(a),
      ws = x.shape(w);
    const A = x.get(a, 'plain');
    const shared = numel(ws.slice(0, -2)) === 1 && ws.length <= as.length;
    let W: string;
    if (x.isConst(w) && shared) {
      // One weight matrix: stored [K, N] (transB undone here), leading 1s dropped.
      const [r, c] = ws.slice(-2);
      W = x.constForm(w, 'kn', (t) =>
        transB ? permuteHost({ shape: [r, c], data: t.data }, [1, 0]) : { shape: [r, c], data: t.data },
      );
      if (as.length === 2) {
        const inputs = bias ? [A, W, x.get(bias, 'plain')] : [A, W];
        x.set(out, x.act(b.one('Gemm', inputs, {}, x.pre(out, act, 'gemm')), act, out), 'plain');
        return;
      }
    } else {
      W = x.get(w, 'plain');
      if (transB) {
        const perm = ws.map((_, k) => (k < ws.length - 2 ? k : 2 * ws.length - 3 - k));
        W = b.one('Transpose', [W], { perm: ints(perm) }, `${out}/b_t`);
      }
    }
    let y = b.one('MatMul', [A, W], {}, bias || (act && act !== 'none') ? `${out}/matmul` : out);
    if (bias) y = b.one('Add', [y, x.get(bias, 'plain')], {}, x.pre(out, act, 'bias'));
    x.set(out, x.act(y, act, out), 'plain');
  },

  attention(x, n) {
    const out = n.outputs[0],
      b = x.b;
    const H = n.attrs.heads as number;
    let q: string, kT: string, v: string;
    if (n.inputs.length === 1) {
      // timm: qkv.reshape(B, T, 3, H, dh).permute(2, 0, 3, 1, 4), then q, k, v = unbind(0).
      const [B, T, D3] = x.shape(n.inputs[0]),
        dh = D3 / 3 / H;
      const r = b.one('Reshape', [x.get(n.inputs[0], 'plain'), b.int64([B, T, 3, H, dh])], {}, `${out}/qkv_heads`);
      const t = b.one('Transpose', [r], { perm: ints([2, 0, 3, 1, 4]) }, `${out}/qkv_t`);
      const parts = b.node('Split', [t], { axis: i(0) }, [`${out}/q5`, `${out}/k5`, `${out}/v5`]);
      const [q4, k4, v4] = parts.map((p, k) => b.one('Reshape', [p, b.int64([B, H, T, dh])], {}, `${out}/${'qkv'[k]}`));
      [q, v] = [q4, v4];
      kT = b.one('Transpose', [k4], { perm: ints([0, 1, 3, 2]) }, `${out}/k_t`);
    } else {
      const split = (val: string, perm: number[], what: string) => {
        const [B, T, D] = x.shape(val);
        const r = b.one('Reshape', [x.get(val, 'plain'), b.int64([B, T, H, D / H])], {}, `${out}/${what}_heads`);
        return b.one('Transpose', [r], { perm: ints(perm) }, `${out}/${what}`);
      };
      q = split(n.inputs[0], [0, 2, 1, 3], 'q');
      kT = split(n.inputs[1], [0, 2, 3, 1], 'k_t');
      v = split(n.inputs[2], [0, 2, 1, 3], 'v');
    }
    const [B, Tq] = x.shape(n.inputs[0]),
      D = x.shape(out)[2],
      dh = D / H;
    const scale = (n.attrs.scale as number | undefined) ?? 1 / Math.sqrt(dh);
    const s = b.one('Mul', [b.one('MatMul', [q, kT], {}, `${out}/scores`), b.scalar(scale)], {}, `${out}/scaled`);
    const p = b.one('Softmax', [s], { axis: i(-1) }, `${out}/probs`);
    const o = b.one(
      'Transpose',
      [b.one('MatMul', [p, v], {}, `${out}/heads_out`)],
      { perm: ints([0, 2, 1, 3]) },
      `${out}/merge`,
    );
    x.set(out, b.one('Reshape', [o, b.int64([B, Tq, D])], {}, out), 'plain');
  },
};

function pool(x: Exporter, n: Node, op: 'MaxPool' | 'AveragePool'): void {
  const a = n.attrs as {
    kernel: number[];
    stride?: number[];
    pad?: number[];
    dilation?: number[];
    ceilMode?: boolean;
    countIncludePad?: boolean;
  };
  const dilation = a.dilation ?? [1, 1];
  const pads = a.pad ?? [0, 0, 0, 0];
  const attrs: Record<string, Attr> = {
    kernel_shape: ints(a.kernel),
    strides: ints(a.stride ?? a.kernel),
    ceil_mode: i(a.ceilMode ? 1 : 0),
  };
  if (pads.some((p) => p !== 0)) attrs.pads = ints(pads);
  if (op === 'MaxPool') attrs.dilations = ints(dilation);
  else {
    if (dilation.some((d) => d !== 1)) {
      throw new OnnxExportError(
        `cannot export node "${n.name}": avgpool with dilation ${JSON.stringify(dilation)} (AveragePool has dilations only from opset 19)`,
      );
    }
    attrs.count_include_pad = i((a.countIncludePad ?? true) ? 1 : 0);
  }
  const out = n.outputs[0];
  x.set(out, x.b.one(op, [x.get(n.inputs[0], 'nchw')], attrs, out), 'nchw');
}

/** The cnnlab ops the exporter maps to ONNX (any op also folds when all its inputs are constants). */
export const EXPORTABLE_OPS: readonly string[] = Object.keys(OPS).sort();

/** Export `graph` as an ONNX ModelProto (ir_version 8, default opset 13). */
export function exportOnnx(graph: Graph, o: OnnxExportOptions = {}): Uint8Array {
  const opset = o.opset ?? 13;
  const g = graph.clone().prune();
  const x = new Exporter(g, opset);
  x.run();
  const { input, output } = x.finish();
  const model: OnnxModel = {
    ir_version: 8,
    opset_import: [{ domain: '', version: opset }],
    producer_name: 'cnnlab',
    producer_version: '0.1.0',
    graph: { name: o.name ?? 'cnnlab', node: x.b.nodes, initializer: x.b.initializers, input, output },
    metadata_props: [
      { key: 'cnnlab.layout', value: 'inputs as declared in the cnnlab graph; 4-D activations NCHW inside' },
    ],
  };
  return encodeModel(model);
}
