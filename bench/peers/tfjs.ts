// The TensorFlow.js peer: a cnnlab Graph rebuilt from tf ops with the graph's own weights, as a
// TF.js user would write the network by hand, so the benchmark can check that it gives cnnlab's
// logits before it times it.
//
// The `tf` namespace is a parameter: the page passes @tensorflow/tfjs with the WebGPU backend
// set, tests in Node pass the same package on its 'cpu' backend. Nothing here imports tfjs at
// run time.
//
// Layouts need no conversion: TF.js convs take NHWC input and HWIO filters, as cnnlab does.
// A depthwise weight [KH,KW,1,C·m] is [KH,KW,C,m] for tf.depthwiseConv2d (cnnlab's output
// channel c reads input channel ⌊c/m⌋, TF's output channel ci·m + q reads ci: the same order).
// Grouped convs (1 < groups < Cin) run one conv per group and concatenate. Where TF.js can fuse
// bias + activation (relu, relu6) it uses tf.fused.*; GELU, hardswish and SiLU follow as ops.
//
// TF.js refuses stride > 1 together with dilation > 1: such convs run at stride 1 and keep
// every s-th output. Pooling follows PyTorch: the padding a ceil-mode window hangs past is added
// to the bottom/right pad; tf.avgPool with explicit padding divides by the taps inside the
// input (countIncludePad false), and a constant [1,OH,OW,1] map rescales to the padded-extent
// count when countIncludePad is true. Dilated pooling sums / maxes strided slices, one per tap.
//
// Nodes whose inputs are all constants (weight_standardize of a stored weight) run once at
// build time with the same code. Each run() is one tf.tidy; the outputs are read with data().
//
// For training (bench/peers/tfjs-train.ts) the options hold chosen constants as tf.variable
// (never folded at build time, never baked into split copies), `forward` gives the output tensors
// without reading them back (for tf.variableGrads), and batchNorm 'train' normalises with the
// batch's statistics (mean and biased variance over N·H·W, as PyTorch's training mode) and hands
// them to onBatchStats for the running-statistics update.

import type * as TF from '@tensorflow/tfjs';
import type { Graph, Node } from '../../engine/graph.js';
import { ACTIVATIONS, type Activation, numel } from '../../kernels/kernel.js';

type Tf = typeof TF;
type T = TF.Tensor;
type T4 = TF.Tensor4D;
type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

export interface TfjsModel {
  /** One run; every graph output (or those named in `outputs`) is read back. */
  run(
    inputs: Record<string, Float32Array>,
    outputs?: readonly string[],
  ): Promise<Record<string, { shape: number[]; data: Float32Array }>>;
  dispose(): void;
  /** Bytes of the constant tensors the model holds (weights after build-time folding and derived maps). */
  weightBytes: number;
  /** The graph's outputs (or those named) as tensors, untidied and not read back: the caller disposes them. */
  forward(inputs: Record<string, T>, outputs?: readonly string[]): T[];
  /** The constants held as variables (TfjsBuildOptions.variables), by graph value name. */
  variables: Map<string, TF.Variable>;
}

/** How to build the model for training (all optional: the default is the inference peer). */
export interface TfjsBuildOptions {
  /** Constants to hold as tf.variable, by name → trainable. */
  variables?: ReadonlyMap<string, boolean>;
  /** 'train': batchnorm uses the batch's statistics; 'running' (default): the stored ones. */
  batchNorm?: 'running' | 'train';
  /** batchNorm 'train': the batch mean and biased variance of each batchnorm node, as traced. */
  onBatchStats?: (node: Node, mean: T, variance: T) => void;
}

/** One node rebuilt: its output from its input tensors. */
type Lowered = (xs: T[]) => T;

/** What lowering a node may use: its shapes, and a way to keep a build-time tensor. */
interface Ctx {
  tf: Tf;
  node: Node;
  inShapes: number[][];
  outShape: number[];
  /** Keep a tensor made at build time for the model's lifetime (disposed with it). */
  hold: <X extends T>(t: X) => X;
  /** Input i as a tensor when it is a constant (known at build time), else undefined. */
  constant: (i: number) => T | undefined;
  /** Inputs the lowering baked into tensors of its own at build time: run() need not keep them. */
  baked: Set<number>;
  opts: TfjsBuildOptions;
}

class TfjsPeerError extends Error {
  override name = 'TfjsPeerError';
}

const fail = (n: Node, why: string): never => {
  throw new TfjsPeerError(`tfjs peer: node "${n.name}" (op "${n.op}"): ${why}`);
};

export function buildTfjsModel(tf: Tf, graph: Graph, opts: TfjsBuildOptions = {}): TfjsModel {
  const held: T[] = [];
  const hold = <X extends T>(t: X): X => {
    held.push(tf.keep(t));
    return t;
  };
  // Constants, then build-time folding of all-constant nodes, then the nodes left for run().
  const consts = new Map<string, T>();
  const variables = new Map<string, TF.Variable>();
  for (const [name, trainable] of opts.variables ?? []) {
    const v = graph.values.get(name);
    if (v?.kind !== 'const') throw new TfjsPeerError(`tfjs peer: variable "${name}" is not a constant of the graph`);
    const init = tf.tensor(v.data!, v.shape, 'float32');
    variables.set(name, hold(tf.variable(init, trainable)));
    init.dispose();
  }
  for (const v of graph.values.values()) {
    if (v.kind === 'const') consts.set(v.name, variables.get(v.name) ?? hold(tf.tensor(v.data!, v.shape, 'float32')));
  }
  const steps: { node: Node; f: Lowered; baked: Set<number> }[] = [];
  for (const node of graph.nodes) {
    if (node.outputs.length !== 1) fail(node, `has ${node.outputs.length} outputs; the peer handles single-output ops`);
    const ctx: Ctx = {
      tf,
      node,
      hold,
      inShapes: node.inputs.map((x) => graph.shape(x)),
      outShape: graph.shape(node.outputs[0]),
      constant: (i) => (variables.has(node.inputs[i]) ? undefined : consts.get(node.inputs[i])),
      baked: new Set(),
      opts,
    };
    const f = lowerNode(ctx);
    if (node.inputs.every((x) => consts.has(x) && !variables.has(x))) {
      const y = tf.tidy(() => f(node.inputs.map((x) => consts.get(x)!)));
      consts.set(node.outputs[0], hold(y));
    } else {
      steps.push({ node, f, baked: ctx.baked });
    }
  }
  // Drop constants that run() never reads (they only fed folded nodes or baked tensors).
  const used = new Set([...steps.flatMap((s) => s.node.inputs.filter((_, i) => !s.baked.has(i))), ...graph.outputs]);
  for (const [name, t] of consts) {
    if (!used.has(name) && !variables.has(name)) {
      consts.delete(name);
      held.splice(held.indexOf(t), 1);
      t.dispose();
    }
  }
  const weightBytes = held.reduce((s, t) => s + 4 * t.size, 0);

  let disposed = false;
  const graphInputs = [...graph.values.values()].filter((v) => v.kind === 'input');
  const forward = (inputs: Record<string, T>, wanted: readonly string[] = graph.outputs): T[] => {
    if (disposed) throw new TfjsPeerError('tfjs peer: run() after dispose()');
    for (const o of wanted)
      if (!graph.outputs.includes(o)) throw new TfjsPeerError(`tfjs peer: "${o}" is not a graph output`);
    const env = new Map<string, T>(consts);
    for (const v of graphInputs) {
      const t = inputs[v.name];
      if (!t) throw new TfjsPeerError(`tfjs peer: missing input "${v.name}"`);
      if (t.shape.join() !== v.shape.join())
        throw new TfjsPeerError(
          `tfjs peer: input "${v.name}" is [${t.shape.join(',')}], expected [${v.shape.join(',')}]`,
        );
      env.set(v.name, t);
    }
    for (const { node, f } of steps) env.set(node.outputs[0], f(node.inputs.map((x) => env.get(x)!)));
    // A constant output is cloned so that disposing the result leaves the weight alone.
    return wanted.map((o) => (consts.has(o) ? tf.clone(env.get(o)!) : env.get(o)!));
  };
  return {
    weightBytes,
    forward,
    variables,
    async run(inputs, wanted = graph.outputs) {
      if (disposed) throw new TfjsPeerError('tfjs peer: run() after dispose()');
      for (const v of graphInputs) {
        const d = inputs[v.name];
        if (!d) throw new TfjsPeerError(`tfjs peer: missing input "${v.name}"`);
        if (d.length !== numel(v.shape)) {
          throw new TfjsPeerError(
            `tfjs peer: input "${v.name}" needs ${numel(v.shape)} values for [${v.shape.join(',')}], got ${d.length}`,
          );
        }
      }
      const outs = tf.tidy(() =>
        forward(
          Object.fromEntries(graphInputs.map((v) => [v.name, tf.tensor(inputs[v.name], v.shape, 'float32')])),
          wanted,
        ),
      );
      try {
        const data = await Promise.all(outs.map((t) => t.data<'float32'>()));
        return Object.fromEntries(
          wanted.map((o, i) => [o, { shape: [...outs[i].shape], data: new Float32Array(data[i]) }]),
        );
      } finally {
        outs.forEach((t) => t.dispose());
      }
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      held.forEach((t) => t.dispose());
      held.length = 0;
    },
  };
}

// ---- ops ----------------------------------------------------------------------------------------

function lowerNode(c: Ctx): Lowered {
  const { tf, node: n } = c;
  // biome-ignore lint/suspicious/noExplicitAny: a node's attrs depend on its op; each case below reads its own fields
  const a = n.attrs as Record<string, any>;
  if ('act' in a) checkAct(c, a.act);
  switch (n.op) {
    case 'conv2d':
      return lowerConv(c);
    case 'activation':
      return ([x]) => act(c, x, a.act);
    case 'add':
      return ([x, y]) => act(c, tf.add(x, y), a.act);
    case 'binary':
      return ([x, y]) => (a.op === 'sub' ? tf.sub(x, y) : a.op === 'mul' ? tf.mul(x, y) : tf.div(x, y));
    case 'unary': {
      const alpha = a.alpha ?? 0.2,
        beta = a.beta ?? 0.5;
      return ([x]) =>
        a.fn === 'sigmoid'
          ? tf.sigmoid(x)
          : a.fn === 'tanh'
            ? tf.tanh(x)
            : tf.clipByValue(x.mul(alpha).add(beta), 0, 1);
    }
    case 'batchnorm': {
      const eps = a.eps ?? 1e-5;
      if (c.opts.batchNorm === 'train') {
        const axes = c.inShapes[0].slice(0, -1).map((_, i) => i);
        return ([x, gamma, beta]) => {
          const { mean, variance } = tf.moments(x, axes);
          c.opts.onBatchStats?.(n, mean, variance);
          const y =
            x.rank <= 4
              ? tf.batchNorm(x, mean, variance, beta, gamma, eps)
              : x
                  .sub(mean)
                  .mul(gamma.mul(tf.rsqrt(variance.add(eps))))
                  .add(beta);
          return act(c, y, a.act);
        };
      }
      return ([x, gamma, beta, mean, variance]) =>
        act(
          c,
          x.rank <= 4
            ? tf.batchNorm(x, mean, variance, beta, gamma, eps)
            : x
                .sub(mean)
                .mul(gamma.mul(tf.rsqrt(variance.add(eps))))
                .add(beta),
          a.act,
        );
    }
    case 'group_norm': {
      const [N, H, W, C] = c.inShapes[0];
      const G = a.groups as number,
        eps = a.eps ?? 1e-5;
      return ([x, gamma, beta]) => {
        const x5 = x.reshape([N, H, W, G, C / G]);
        const { mean, variance } = tf.moments(x5, [1, 2, 4], true);
        const y = x5
          .sub(mean)
          .mul(tf.rsqrt(variance.add(eps)))
          .reshape([N, H, W, C]);
        return act(c, y.mul(gamma).add(beta), a.act);
      };
    }
    case 'weight_standardize': {
      const eps = a.eps ?? 1e-8;
      return ([w]) => {
        const { mean, variance } = tf.moments(w, [0, 1, 2], true);
        return w.sub(mean).mul(tf.rsqrt(variance.add(eps)));
      };
    }
    case 'layernorm': {
      const eps = a.eps ?? 1e-6;
      return ([x, gamma, beta]) => {
        const { mean, variance } = tf.moments(x, -1, true);
        return act(
          c,
          x
            .sub(mean)
            .mul(tf.rsqrt(variance.add(eps)))
            .mul(gamma)
            .add(beta),
          a.act,
        );
      };
    }
    case 'softmax':
      return ([x]) => tf.softmax(x);
    case 'matmul':
      return lowerMatmul(c);
    case 'attention':
      return lowerAttention(c);
    case 'maxpool':
      return lowerPool(c, 'max');
    case 'avgpool':
      return lowerPool(c, 'avg');
    case 'global_avgpool':
      return ([x]) => tf.mean(x, [1, 2]);
    case 'reshape':
      return ([x]) => x.reshape(c.outShape);
    case 'transpose':
      return ([x]) => tf.transpose(x, a.perm);
    case 'concat': {
      const rank = c.outShape.length;
      const axis = a.axis < 0 ? a.axis + rank : a.axis;
      return (xs) =>
        tf.concat(
          xs.map((x, i) => {
            const want = c.outShape.map((d, k) => (k === axis ? c.inShapes[i][k] : d));
            return want.every((d, k) => d === x.shape[k]) ? x : tf.broadcastTo(x, want);
          }),
          axis,
        );
    }
    case 'slice': {
      const x = c.inShapes[0];
      const axis = a.axis < 0 ? a.axis + x.length : a.axis;
      const L = x[axis];
      const start = Math.min(Math.max(a.start < 0 ? a.start + L : a.start, 0), L);
      const begin = x.map((_, k) => (k === axis ? start : 0));
      return ([t]) => tf.slice(t, begin, c.outShape);
    }
    case 'pad': {
      const [t, l, b, r] = a.pad as number[];
      return ([x]) =>
        tf.pad(
          x,
          [
            [0, 0],
            [t, b],
            [l, r],
            [0, 0],
          ],
          a.value ?? 0,
        );
    }
    default:
      return fail(n, 'is not supported by the TF.js peer');
  }
}

// ---- activations ---------------------------------------------------------------------------------

/** tf.fused.* activation names for the ones TF.js fuses; others are applied after. */
const FUSED: Partial<Record<Activation, 'linear' | 'relu' | 'relu6'>> = {
  none: 'linear',
  relu: 'relu',
  relu6: 'relu6',
};

function checkAct(c: Ctx, name: unknown): Activation {
  const a = (name ?? 'none') as Activation;
  if (!ACTIVATIONS.includes(a))
    fail(c.node, `activation "${String(name)}" is not supported (known: ${ACTIVATIONS.join(', ')})`);
  return a;
}

function act(c: Ctx, x: T, name: unknown): T {
  const { tf } = c;
  switch (checkAct(c, name)) {
    case 'none':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'relu6':
      return tf.relu6(x);
    case 'gelu':
      return x.mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)).mul(0.5); // exact (erf) GELU
    case 'hardswish':
      return x.mul(tf.relu6(x.add(3))).div(6);
    case 'silu':
      return x.mul(tf.sigmoid(x));
  }
}

// ---- convolution ---------------------------------------------------------------------------------

function lowerConv(c: Ctx): Lowered {
  const { tf, node: n } = c;
  const a = n.attrs as {
    stride?: [number, number];
    pad?: number[];
    dilation?: [number, number];
    groups?: number;
    act?: string;
  };
  const [, , , cin] = c.inShapes[0];
  const [kh, kw, wcin, cout] = c.inShapes[1];
  const [sh, sw] = a.stride ?? [1, 1];
  const [dh, dw] = a.dilation ?? [1, 1];
  const [pt, pl, pb, pr] = a.pad ?? [0, 0, 0, 0];
  const groups = a.groups ?? 1;
  const actName = checkAct(c, a.act);
  // A residual (4th input, engine/passes.ts fuseResidual) is added before the activation.
  const residual = n.inputs.length > 3;
  const fused = residual ? undefined : FUSED[actName];
  const activation = fused ?? 'linear';
  const after = (y: T, r?: T) => {
    const s = r ? y.add(r) : y;
    return fused ? s : act(c, s, actName);
  };
  // TF.js takes stride or dilation > 1, not both: run at stride 1, then keep every s-th output.
  const both = (sh > 1 || sw > 1) && (dh > 1 || dw > 1);
  const strides: [number, number] = both ? [1, 1] : [sh, sw];
  const [, oh, ow, oc] = c.outShape;
  const subsample = (y: T) =>
    both ? tf.stridedSlice(y, [0, 0, 0, 0], [y.shape[0], (oh - 1) * sh + 1, (ow - 1) * sw + 1, oc], [1, sh, sw, 1]) : y;
  const explicit: Pad4 = [
    [0, 0],
    [pt, pb],
    [pl, pr],
    [0, 0],
  ];
  const dilations: [number, number] = [dh, dw];

  if (groups > 1 && groups === cin && wcin === 1) {
    // Depthwise, channel multiplier m = Cout/Cin.
    const m = cout / cin;
    const symmetric = pt === pb && pl === pr && pt === pl;
    return ([x, w, bias, r]) => {
      const filter = w.reshape([kh, kw, cin, m]) as T4;
      // tf.fused.depthwiseConv2d takes a number pad only; asymmetric pads go through tf.pad.
      const xin = (symmetric ? x : tf.pad(x, explicit)) as T4;
      const y = tf.fused.depthwiseConv2d({
        x: xin,
        filter,
        strides,
        pad: symmetric ? pt : 'valid',
        dilations,
        bias,
        activation,
      });
      return after(subsample(y), r);
    };
  }
  if (groups === 1) {
    return ([x, w, bias, r]) =>
      after(
        subsample(
          tf.fused.conv2d({
            x: x as T4,
            filter: w as T4,
            strides,
            pad: explicit,
            dilations,
            bias,
            activation,
          }),
        ),
        r,
      );
  }
  // Grouped: one conv per group, concatenated along channels. Constant weights and bias are
  // split once, here.
  const splitW = (w: T) => tf.split(w, groups, 3);
  const splitB = (b: T | undefined) => (b ? tf.split(b, groups, 0) : undefined);
  const cw = c.constant(1),
    cb = c.constant(2);
  const ws0 = cw && splitW(cw).map(c.hold);
  const bs0 = cb && splitB(cb)!.map(c.hold);
  if (ws0) c.baked.add(1);
  if (bs0) c.baked.add(2);
  return ([x, w, bias, r]) => {
    const ws = ws0 ?? splitW(w),
      bs = bs0 ?? splitB(bias);
    const ys = tf.split(x, groups, 3).map((xg, g) =>
      tf.fused.conv2d({
        x: xg as T4,
        filter: ws[g] as T4,
        strides,
        pad: explicit,
        dilations,
        bias: bs?.[g],
        activation,
      }),
    );
    return after(subsample(tf.concat(ys, 3)), r);
  };
}

// ---- matmul and attention ------------------------------------------------------------------------

function lowerMatmul(c: Ctx): Lowered {
  const { tf, node: n } = c;
  const a = n.attrs as { act?: string; transB?: boolean };
  const transB = !!a.transB;
  const [aS, bS] = c.inShapes;
  const out = c.outShape;
  const M = aS[aS.length - 2],
    K = aS[aS.length - 1],
    N = out[out.length - 1];
  const aBatch = aS.slice(0, -2),
    bBatch = bS.slice(0, -2);
  const actName = checkAct(c, a.act);
  const fused = FUSED[actName];
  const after = (y: T) => (fused ? y : act(c, y, actName));
  const activation = fused ?? 'linear';
  const shared = numel(bBatch) === 1 && bBatch.length <= aBatch.length;
  if (shared) {
    // One weight matrix: a's batch folds into M.
    return ([x, w, bias]) => {
      const y = tf.fused.matMul({
        a: x.reshape([-1, K]) as TF.Tensor2D,
        b: w.reshape(transB ? [N, K] : [K, N]) as TF.Tensor2D,
        transposeB: transB,
        bias,
        activation,
      });
      return after(y).reshape(out);
    };
  }
  const outBatch = out.slice(0, -2);
  const nb = numel(outBatch);
  const bMat = bS.slice(-2);
  const to3 = (t: T, mat: number[]) => {
    const full = [...outBatch, ...mat];
    const bt = full.length === t.rank && full.every((d, k) => d === t.shape[k]) ? t : tf.broadcastTo(t, full);
    return bt.reshape([nb, ...mat]) as TF.Tensor3D;
  };
  return ([x, y, bias]) => {
    const r = tf.fused.matMul({ a: to3(x, [M, K]), b: to3(y, bMat), transposeB: transB, bias, activation });
    return after(r).reshape(out);
  };
}

function lowerAttention(c: Ctx): Lowered {
  const { tf, node: n } = c;
  const H = (n.attrs as { heads: number }).heads;
  const packed = c.inShapes.length === 1;
  const [B, Tq, D] = c.outShape;
  const Tk = packed ? Tq : c.inShapes[1][1];
  const dh = D / H;
  const scale = (n.attrs as { scale?: number }).scale ?? 1 / Math.sqrt(dh);
  // [B, T, D] -> [B, H, T, dh]
  const heads = (t: T, T_: number) => t.reshape([B, T_, H, dh]).transpose([0, 2, 1, 3]);
  return (xs) => {
    let q: T, k: T, v: T;
    if (packed) {
      // timm: qkv.reshape(B, T, 3, H, dh).permute(2, 0, 3, 1, 4)
      [q, k, v] = tf.unstack(xs[0].reshape([B, Tq, 3, H, dh]).transpose([2, 0, 3, 1, 4]));
    } else {
      [q, k, v] = [heads(xs[0], Tq), heads(xs[1], Tk), heads(xs[2], Tk)];
    }
    const p = tf.softmax(tf.matMul(q.mul(scale), k, false, true)); // [B, H, Tq, Tk]
    return tf.matMul(p, v).transpose([0, 2, 1, 3]).reshape([B, Tq, D]);
  };
}

// ---- pooling ---------------------------------------------------------------------------------------

/** Per output position along one axis: taps inside the input, and inside the padded extent. */
function axisCounts(out: number, inp: number, k: number, s: number, p0: number, p1: number, d: number) {
  const inside: number[] = [],
    padded: number[] = [];
  for (let o = 0; o < out; o++) {
    let i = 0,
      p = 0;
    for (let j = 0; j < k; j++) {
      const at = o * s - p0 + j * d;
      if (at >= 0 && at < inp) i++;
      if (at >= -p0 && at < inp + p1) p++;
    }
    inside.push(i);
    padded.push(p);
  }
  return { inside, padded };
}

function lowerPool(c: Ctx, mode: 'max' | 'avg'): Lowered {
  const { tf } = c;
  const a = c.node.attrs as {
    kernel: [number, number];
    stride?: [number, number];
    pad?: number[];
    dilation?: [number, number];
    ceilMode?: boolean;
    countIncludePad?: boolean;
  };
  const [kh, kw] = a.kernel;
  const [sh, sw] = a.stride ?? a.kernel;
  const [pt, pl, pb, pr] = a.pad ?? [0, 0, 0, 0];
  const [dh, dw] = a.dilation ?? [1, 1];
  const includePad = a.countIncludePad ?? true;
  const [N, h, w, C] = c.inShapes[0];
  const [, oh, ow] = c.outShape;
  const ys = axisCounts(oh, h, kh, sh, pt, pb, dh),
    xs = axisCounts(ow, w, kw, sw, pl, pr, dw);
  // Bottom/right padding reaching the last (ceil-mode) window; those cells never count.
  const pbx = Math.max(pb, (oh - 1) * sh + dh * (kh - 1) + 1 - h - pt);
  const prx = Math.max(pr, (ow - 1) * sw + dw * (kw - 1) + 1 - w - pl);
  const explicit: Pad4 = [
    [0, 0],
    [pt, pbx],
    [pl, prx],
    [0, 0],
  ];
  const crop = (y: T) => (y.shape[1] === oh && y.shape[2] === ow ? y : tf.slice(y, [0, 0, 0, 0], [N, oh, ow, C]));
  /** A [1,OH,OW,1] constant from a per-position value, or undefined when it is 1 everywhere. */
  const map = (f: (oy: number, ox: number) => number) => {
    const m = new Float32Array(oh * ow);
    for (let oy = 0; oy < oh; oy++) for (let ox = 0; ox < ow; ox++) m[oy * ow + ox] = f(oy, ox);
    return m.every((v) => v === 1) ? undefined : c.hold(tf.tensor4d(m, [1, oh, ow, 1]));
  };

  if (dh === 1 && dw === 1) {
    if (mode === 'max') return ([x]) => crop(tf.maxPool(x as T4, [kh, kw], [sh, sw], explicit));
    // tf.avgPool with explicit padding divides by the taps inside the input.
    const rescale = includePad
      ? map((oy, ox) => (ys.inside[oy] * xs.inside[ox]) / (ys.padded[oy] * xs.padded[ox]))
      : undefined;
    return ([x]) => {
      const y = crop(tf.avgPool(x as T4, [kh, kw], [sh, sw], explicit));
      return rescale ? y.mul(rescale) : y;
    };
  }
  // Dilated: one strided slice of the padded input per tap.
  const divisor =
    mode === 'avg'
      ? c.hold(
          tf.tensor4d(
            Float32Array.from({ length: oh * ow }, (_, i) => {
              const oy = Math.floor(i / ow),
                ox = i % ow;
              return includePad ? ys.padded[oy] * xs.padded[ox] : ys.inside[oy] * xs.inside[ox];
            }),
            [1, oh, ow, 1],
          ),
        )
      : undefined;
  return ([x]) => {
    const xp = tf.pad(x, explicit, mode === 'max' ? -Infinity : 0);
    const taps: T[] = [];
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const y0 = ky * dh,
          x0 = kx * dw;
        taps.push(
          tf.stridedSlice(xp, [0, y0, x0, 0], [N, y0 + (oh - 1) * sh + 1, x0 + (ow - 1) * sw + 1, C], [1, sh, sw, 1]),
        );
      }
    }
    return mode === 'max' ? taps.reduce((p, t) => tf.maximum(p, t)) : tf.addN(taps).div(divisor!);
  };
}
