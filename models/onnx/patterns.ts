// Subgraphs that torch.onnx.export writes for one PyTorch module, recognised and replaced by the
// one op they compute before the graph is converted (docs/onnx-import.md, "Patterns"):
//
//   LayerNorm below opset 17   ReduceMean(x,-1) → Sub → Pow 2 | Mul(d,d) → ReduceMean(-1) → Add eps → Sqrt → Div
//                              [→ Mul γ → Add β]                               ⇒ LayerNormalization
//   exact GELU                 Div(x,√2) | Mul(x,1/√2) → Erf → Add 1 → Mul x → Mul 0.5 (either order
//                              of the two Muls)                                 ⇒ Gelu
//   SiLU (nn.SiLU, Swish)      Mul(x, Sigmoid(x))                              ⇒ cnnlab.Silu
//
// A match needs every intermediate to have exactly the consumers the pattern has and not to be a
// graph output, so nothing else could read a value that disappears. The replacement node sits
// where the pattern's last node was, so the node list stays topologically sorted.

import type { ConstTensor } from './tensor.js';

export type AttrValue = number | number[] | string | string[] | ConstTensor;

/** An ONNX node with decoded attributes. */
export interface INode {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

interface Ctx {
  nodes: INode[];
  consts: Map<string, ConstTensor>;
  outputs: Set<string>;
  producer: Map<string, INode>;
  consumers: Map<string, INode[]>;
}

function index(nodes: INode[], consts: Map<string, ConstTensor>, outputs: Set<string>): Ctx {
  const producer = new Map<string, INode>();
  const consumers = new Map<string, INode[]>();
  for (const n of nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of n.inputs) {
      if (!consumers.has(i)) consumers.set(i, []);
      const cs = consumers.get(i)!;
      if (!cs.includes(n)) cs.push(n); // Mul(d, d) reads d once as far as matching goes
    }
  }
  return { nodes, consts, outputs, producer, consumers };
}

/** The scalar value of constant `v`, if it is a one-element constant. */
function scalar(c: Ctx, v: string | undefined): number | undefined {
  const t = v === undefined ? undefined : c.consts.get(v);
  return t && t.data.length === 1 ? Number(t.data[0]) : undefined;
}

const near = (a: number | undefined, b: number, tol = 1e-6) => a !== undefined && Math.abs(a - b) <= tol * Math.abs(b);

/** The only consumer of `v` (which is no graph output), of op `op`. */
function only(c: Ctx, v: string, op: string): INode | undefined {
  const cs = c.consumers.get(v) ?? [];
  return !c.outputs.has(v) && cs.length === 1 && cs[0].op === op ? cs[0] : undefined;
}

/** The input of binary node `n` that is not `v` (v may be either operand). */
const other = (n: INode, v: string) => (n.inputs[0] === v ? n.inputs[1] : n.inputs[0]);

/** The one axis a ReduceMean reduces, from its attribute or (opset 18) its constant second input;
 *  its rank is not known yet: the converter checks that it is the last. */
const oneAxis = (c: Ctx, n: INode): number | undefined => {
  const t = n.inputs[1] ? c.consts.get(n.inputs[1]) : undefined;
  const axes = t ? Array.from(t.data, Number) : n.attrs.axes;
  return Array.isArray(axes) && axes.length === 1 ? (axes[0] as number) : undefined;
};

interface Match {
  remove: INode[];
  node: INode;
}

function layerNorm(c: Ctx, mean: INode): Match | undefined {
  const axis = oneAxis(c, mean);
  if (mean.op !== 'ReduceMean' || axis === undefined || mean.attrs.keepdims === 0) return;
  const x = mean.inputs[0];
  const sub = only(c, mean.outputs[0], 'Sub');
  if (!sub || sub.inputs[0] !== x || sub.inputs[1] !== mean.outputs[0]) return;
  const d = sub.outputs[0];
  const dUsers = c.consumers.get(d) ?? [];
  if (c.outputs.has(d) || dUsers.length !== 2) return;
  // d² as Pow(d, 2) (torch) or Mul(d, d) (our exporter)
  const pow = dUsers.find(
    (n) =>
      (n.op === 'Pow' && n.inputs[0] === d && near(scalar(c, n.inputs[1]), 2)) ||
      (n.op === 'Mul' && n.inputs[0] === d && n.inputs[1] === d),
  );
  const div = dUsers.find((n) => n.op === 'Div' && n.inputs[0] === d);
  if (!pow || !div) return;
  const varMean = only(c, pow.outputs[0], 'ReduceMean');
  if (!varMean || oneAxis(c, varMean) !== axis || varMean.attrs.keepdims === 0) return;
  const addEps = only(c, varMean.outputs[0], 'Add');
  const eps = addEps && scalar(c, other(addEps, varMean.outputs[0]));
  if (!addEps || eps === undefined) return;
  const sqrt = only(c, addEps.outputs[0], 'Sqrt');
  if (!sqrt || div.inputs[1] !== sqrt.outputs[0] || !only(c, sqrt.outputs[0], 'Div')) return;
  const remove = [mean, sub, pow, varMean, addEps, sqrt, div];
  let out = div.outputs[0];
  let gamma: string | undefined;
  let beta: string | undefined;
  const mul = only(c, out, 'Mul');
  if (mul && c.consts.has(other(mul, out))) {
    gamma = other(mul, out);
    remove.push(mul);
    out = mul.outputs[0];
    const add = only(c, out, 'Add');
    if (add && c.consts.has(other(add, out))) {
      beta = other(add, out);
      remove.push(add);
      out = add.outputs[0];
    }
  }
  const inputs = [x, gamma ?? '', beta ?? ''];
  return {
    remove,
    node: {
      name: `${mean.name}|LayerNorm`,
      op: 'LayerNormalization',
      inputs,
      outputs: [out],
      attrs: { axis, epsilon: eps },
    },
  };
}

function gelu(c: Ctx, erf: INode): Match | undefined {
  if (erf.op !== 'Erf') return;
  const scale = c.producer.get(erf.inputs[0]);
  if (!scale || (scale.op !== 'Div' && scale.op !== 'Mul') || !only(c, scale.outputs[0], 'Erf')) return;
  const k = scalar(c, scale.inputs[1]);
  if (!(scale.op === 'Div' ? near(k, Math.SQRT2) : near(k, Math.SQRT1_2))) return;
  const x = scale.inputs[0];
  const add = only(c, erf.outputs[0], 'Add');
  if (!add || !near(scalar(c, other(add, erf.outputs[0])), 1)) return;
  const m1 = only(c, add.outputs[0], 'Mul');
  if (!m1) return;
  const partner = other(m1, add.outputs[0]);
  let remove: INode[];
  let out: string;
  if (partner === x) {
    // x · (1 + erf) → · 0.5
    const half = only(c, m1.outputs[0], 'Mul');
    if (!half || !near(scalar(c, other(half, m1.outputs[0])), 0.5)) return;
    remove = [scale, erf, add, m1, half];
    out = half.outputs[0];
  } else {
    // (x · 0.5) · (1 + erf)
    const half = c.producer.get(partner);
    if (half?.op !== 'Mul' || !only(c, partner, 'Mul')) return;
    if (!half.inputs.includes(x) || !near(scalar(c, other(half, x)), 0.5)) return;
    remove = [scale, erf, add, half, m1];
    out = m1.outputs[0];
  }
  return { remove, node: { name: `${erf.name}|Gelu`, op: 'Gelu', inputs: [x], outputs: [out], attrs: {} } };
}

function silu(c: Ctx, sig: INode): Match | undefined {
  if (sig.op !== 'Sigmoid') return;
  const mul = only(c, sig.outputs[0], 'Mul');
  if (!mul || other(mul, sig.outputs[0]) !== sig.inputs[0]) return;
  return {
    remove: [sig, mul],
    node: { name: `${sig.name}|Silu`, op: 'cnnlab.Silu', inputs: [sig.inputs[0]], outputs: mul.outputs, attrs: {} },
  };
}

/** Replace every pattern match; returns the new node list and how many of each it replaced. */
export function fusePatterns(
  nodes: INode[],
  consts: Map<string, ConstTensor>,
  graphOutputs: Set<string>,
): { nodes: INode[]; counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  let cur = nodes;
  for (const [name, match] of [
    ['LayerNormalization', layerNorm],
    ['Gelu', gelu],
    ['Silu', silu],
  ] as const) {
    const c = index(cur, consts, graphOutputs);
    const removed = new Set<INode>();
    const placeAt = new Map<INode, INode>(); // last removed node → replacement
    for (const n of cur) {
      if (removed.has(n)) continue;
      const m = match(c, n);
      if (!m || m.remove.some((r) => removed.has(r))) continue;
      for (const r of m.remove) removed.add(r);
      const last = m.remove.reduce((a, b) => (cur.indexOf(a) > cur.indexOf(b) ? a : b));
      placeAt.set(last, m.node);
      counts[name] = (counts[name] ?? 0) + 1;
    }
    cur = cur.flatMap((n) => (placeAt.has(n) ? [placeAt.get(n)!] : removed.has(n) ? [] : [n]));
  }
  return { nodes: cur, counts };
}
