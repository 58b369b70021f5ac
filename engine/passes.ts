// Graph passes for inference. Each takes a graph and returns a rewritten copy; `optimize` runs
// them in the order that lets later ones see the results of earlier ones:
//
//   conv2d → batchnorm            ⇒ conv2d with scaled weights and a bias      (foldBatchNorm)
//   conv2d|matmul → add(bias[C])  ⇒ conv2d|matmul with that bias input         (fuseBias)
//   X → activation                ⇒ X with act attr, for X in FUSABLE         (fuseActivation)
//     (add → relu is the residual add + ReLU of a ResNet block)
//   conv2d → add(·, r)            ⇒ conv2d with r as its residual input       (fuseResidual)
//     (the add's act moves onto the conv: y = act(conv(x) + bias + r), one pass over y instead of
//     two, and conv's own output never exists: in a ResNet bottleneck, conv3's output, the
//     shortcut and the sum are no longer live at once)
//
// A rewrite only fires when the intermediate value has a single consumer and is not a graph
// output, so nothing anyone could read changes. fuseResidual also needs r to exist when the conv
// runs (a graph input or constant, or made by an earlier node), so the node order stays
// topological; it leaves grouped convs (depthwise in particular) alone.

import { foldBatchNormParams } from '../kernels/batchnorm.js';
import type { Activation } from '../kernels/kernel.js';
import { type Graph, type Node, validateGraph } from './graph.js';

/** Ops whose kernels apply a fused activation in their epilogue (attr `act`). */
export const FUSABLE = new Set(['conv2d', 'matmul', 'add', 'batchnorm', 'group_norm', 'layernorm']);

function soleConsumer(g: Graph, value: string): Node | undefined {
  if (g.outputs.includes(value)) return undefined;
  const c = g.consumers(value);
  return c.length === 1 ? c[0] : undefined;
}

/** `producer` takes over `fused`'s outputs; `fused` and the value between them disappear. */
function absorb(g: Graph, producer: Node, fused: Node): void {
  g.values.delete(producer.outputs[0]);
  producer.outputs = fused.outputs;
  g.nodes = g.nodes.filter((n) => n !== fused);
}

const isConst = (g: Graph, v: string) => g.values.get(v)?.kind === 'const';
const noAct = (n: Node) => !n.attrs.act || n.attrs.act === 'none';
/** A conv2d that already adds a residual (4th input): BN cannot fold through it. */
const hasResidual = (n: Node) => n.op === 'conv2d' && n.inputs.length > 3;

export function foldBatchNorm(input: Graph): Graph {
  const g = input.clone();
  for (const bn of [...g.nodes]) {
    if (bn.op !== 'batchnorm') continue;
    const conv = g.producer(bn.inputs[0]);
    if (conv?.op !== 'conv2d' || !noAct(conv) || hasResidual(conv) || soleConsumer(g, conv.outputs[0]) !== bn) continue;
    if (![conv.inputs[1], conv.inputs[2], ...bn.inputs.slice(1)].every((v) => v === undefined || isConst(g, v)))
      continue;
    const [gamma, beta, mean, variance] = bn.inputs.slice(1).map((v) => g.value(v).data!);
    const { scale, shift } = foldBatchNormParams(
      gamma,
      beta,
      mean,
      variance,
      (bn.attrs.eps as number | undefined) ?? 1e-5,
    );
    const w = g.value(conv.inputs[1]);
    const cout = w.shape[w.shape.length - 1];
    const wf = w.data!.map((x, i) => x * scale[i % cout]); // HWIO: Cout is the fastest axis
    const b = conv.inputs[2] ? g.value(conv.inputs[2]).data! : new Float32Array(cout);
    const bf = shift.map((s, c) => b[c] * scale[c] + s);
    const wName = g.constant(`${bn.name}.folded_weight`, w.shape, wf);
    const bName = g.constant(`${bn.name}.folded_bias`, [cout], bf);
    conv.inputs = [conv.inputs[0], wName, bName];
    conv.attrs = { ...conv.attrs, act: bn.attrs.act ?? 'none' };
    absorb(g, conv, bn);
  }
  return g.prune();
}

export function fuseBias(input: Graph): Graph {
  const g = input.clone();
  for (const add of [...g.nodes]) {
    if (add.op !== 'add' || !noAct(add)) continue;
    const ci = add.inputs.findIndex((v) => isConst(g, v) && g.shape(v).length === 1);
    if (ci < 0) continue;
    const bias = add.inputs[ci];
    const prod = g.producer(add.inputs[1 - ci]);
    if (
      !prod ||
      (prod.op !== 'conv2d' && prod.op !== 'matmul') ||
      !noAct(prod) ||
      soleConsumer(g, prod.outputs[0]) !== add
    )
      continue;
    const out = g.shape(prod.outputs[0]);
    if (g.shape(bias)[0] !== out[out.length - 1]) continue;
    if (prod.inputs.length >= 3) {
      if (!isConst(g, prod.inputs[2])) continue;
      const old = g.value(prod.inputs[2]).data!;
      const sum = g.value(bias).data!.map((x, i) => x + old[i]);
      // A conv's residual (4th input) stays: act is none, so (acc + b + r) + b2 = acc + (b + b2) + r.
      prod.inputs = [
        prod.inputs[0],
        prod.inputs[1],
        g.constant(`${add.name}.merged_bias`, [sum.length], sum),
        ...prod.inputs.slice(3),
      ];
    } else {
      prod.inputs = [...prod.inputs, bias];
    }
    absorb(g, prod, add);
  }
  return g.prune();
}

export function fuseActivation(input: Graph): Graph {
  const g = input.clone();
  for (const act of [...g.nodes]) {
    if (act.op !== 'activation') continue;
    const prod = g.producer(act.inputs[0]);
    if (!prod || !FUSABLE.has(prod.op) || !noAct(prod) || soleConsumer(g, prod.outputs[0]) !== act) continue;
    prod.attrs = { ...prod.attrs, act: act.attrs.act as Activation };
    absorb(g, prod, act);
  }
  return g.prune();
}

/** A value name not yet in `g`, from `base`. */
function freshName(g: Graph, base: string): string {
  let name = base;
  for (let k = 1; g.values.has(name); k++) name = `${base}_${k}`;
  return name;
}

export function fuseResidual(input: Graph): Graph {
  const g = input.clone();
  for (const add of [...g.nodes]) {
    if (add.op !== 'add') continue;
    const out = g.shape(add.outputs[0]);
    const same = (v: string) => g.shape(v).length === out.length && g.shape(v).every((d, i) => d === out[i]);
    if (!add.inputs.every(same)) continue; // no broadcasting
    const pos = (n: Node) => g.nodes.indexOf(n);
    // The conv that can take the other operand as its residual: one per side, the later one wins.
    let best: { conv: Node; other: string } | undefined;
    for (let k = 0; k < 2; k++) {
      const conv = g.producer(add.inputs[k]);
      const other = add.inputs[1 - k];
      if (
        conv?.op !== 'conv2d' ||
        !noAct(conv) ||
        hasResidual(conv) ||
        ((conv.attrs.groups as number | undefined) ?? 1) !== 1
      )
        continue;
      if (soleConsumer(g, conv.outputs[0]) !== add) continue;
      const kind = g.value(other).kind;
      const otherProd = kind === 'node' ? g.producer(other) : undefined;
      const ready = kind !== 'node' || (otherProd !== undefined && pos(otherProd) < pos(conv));
      if (!ready) continue;
      if (!best || pos(conv) > pos(best.conv)) best = { conv, other };
    }
    if (!best) continue;
    const { conv, other } = best;
    let bias = conv.inputs[2];
    if (bias === undefined) {
      const cout = g.shape(conv.inputs[1])[3];
      bias = g.constant(freshName(g, `${conv.name}.zero_bias`), [cout], new Float32Array(cout));
    }
    conv.inputs = [conv.inputs[0], conv.inputs[1], bias, other];
    conv.attrs = { ...conv.attrs, act: (add.attrs.act as Activation | undefined) ?? 'none' };
    absorb(g, conv, add);
  }
  return g.prune();
}

export interface PassReport {
  before: number;
  after: number;
  counts: Record<string, number>;
}

/** Run every inference pass; returns the new graph and how many nodes each removed. */
export function optimize(g: Graph): { graph: Graph; report: PassReport } {
  const counts: Record<string, number> = {};
  let cur = g;
  const passes = [
    ['foldBatchNorm', foldBatchNorm],
    ['fuseBias', fuseBias],
    ['fuseActivation', fuseActivation],
    ['fuseResidual', fuseResidual],
  ] as const;
  for (const [name, pass] of passes) {
    const next = pass(cur);
    counts[name] = cur.nodes.length - next.nodes.length;
    cur = next;
  }
  validateGraph(cur);
  return { graph: cur, report: { before: g.nodes.length, after: cur.nodes.length, counts } };
}
