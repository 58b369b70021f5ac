// Reverse-mode differentiation over the graph IR (docs/autodiff.md). grad() appends the backward
// graph to the forward one: for every node between the differentiated values and the loss, in
// reverse topological order, its VJP rule (engine/grad/) adds ordinary nodes computing the
// gradients of its inputs from those of its outputs. The result is one graph, so the passes,
// the memory plan, the pipeline cache and the tuner treat backward like forward, and a training
// step (forward, backward, update) compiles into one plan and one command buffer.
//
// Before that, fused epilogues are split (unfuseActivations): rules then only see nodes without
// an activation, and the activation's own rule reads the pre-activation value it needs.
// Gradients of a value read by several nodes are summed with `add` nodes, in the order the
// readers' rules produce them.

import { ShapeError, fmtShape, numel } from '../kernels/kernel.js';
import type { Graph, Node } from './graph.js';
import { VJP_RULES } from './grad/index.js';

/**
 * Split every fused activation (attr `act` other than 'none') into the node with act 'none'
 * followed by an `activation` node that keeps the original output name, so readers are
 * unchanged. The node itself is renamed `<name>.pre` (its output too). Mutates `g`.
 */
export function unfuseActivations(g: Graph): void {
  for (const n of [...g.nodes]) {
    const act = n.attrs.act;
    if (act === undefined || act === 'none') continue;
    if (n.op === 'activation') continue;
    if (n.outputs.length !== 1)
      throw new Error(`node "${n.name}" (${n.op}): cannot split the activation of a multi-output node`);
    const out = n.outputs[0];
    if (out !== n.name) throw new Error(`node "${n.name}": its output "${out}" is not named after it`);
    const pre = g.freshName(`${n.name}.pre`);
    g.define({ name: pre, shape: [...g.shape(out)], kind: 'node' });
    g.values.delete(out);
    const oldName = n.name;
    n.name = pre;
    n.outputs = [pre];
    n.attrs = { ...n.attrs, act: 'none' };
    g.addAt(g.nodes.indexOf(n) + 1, 'activation', [pre], { act }, oldName);
  }
}

/**
 * Append to `g` the backward graph of scalar `loss` ([1]) with respect to `wrt` (constants,
 * parameters, inputs or node values); returns the gradient value of each, in order. Fused
 * activations are split first (unfuseActivations). Mutates `g`; nothing is marked as output.
 * `seed` is dLoss itself (a [1] value), default a constant 1.
 */
export function grad(g: Graph, loss: string, wrt: readonly string[], seed?: string): string[] {
  if (numel(g.shape(loss)) !== 1)
    throw new ShapeError(`grad: the loss "${loss}" must have one element, got ${fmtShape(g.shape(loss))}`);
  for (const w of wrt) g.value(w);
  unfuseActivations(g);

  // Values that depend on wrt (forward), and nodes that lead to the loss (backward).
  const depends = new Set(wrt);
  for (const n of g.nodes) if (n.inputs.some((x) => depends.has(x))) n.outputs.forEach((o) => depends.add(o));
  if (!depends.has(loss)) throw new Error(`grad: the loss "${loss}" does not depend on any of ${wrt.join(', ')}`);
  const leads = new Set([loss]);
  const path: Node[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!n.outputs.some((o) => leads.has(o)) || !n.outputs.some((o) => depends.has(o))) continue;
    path.push(n);
    n.inputs.forEach((x) => leads.add(x));
  }

  const grads = new Map<string, string>();
  let sums = 0;
  const accumulate = (value: string, d: string) => {
    const have = grads.get(value);
    if (fmtShape(g.shape(d)) !== fmtShape(g.shape(value)))
      throw new ShapeError(`grad: gradient "${d}" ${fmtShape(g.shape(d))} of "${value}" ${fmtShape(g.shape(value))}`);
    grads.set(value, have === undefined ? d : g.op('add', [have, d], {}, g.freshName(`${value}.grad.sum${sums++}`)));
  };
  grads.set(loss, seed ?? g.constant(g.freshName(`${loss}.grad.seed`), g.shape(loss), new Float32Array([1])));

  for (const node of path) {
    const dOut = node.outputs.map((o) => grads.get(o));
    if (dOut.every((d) => d === undefined)) continue;
    const rule = VJP_RULES.get(node.op);
    if (!rule)
      throw new Error(
        `grad: no VJP rule for op "${node.op}" (node "${node.name}"); rules exist for ${[...VJP_RULES.keys()].sort().join(', ')}`,
      );
    const need = node.inputs.map((x) => depends.has(x));
    const dIn = rule({ g, node, dOut, need, name: (suffix) => g.freshName(`${node.name}.grad.${suffix}`) });
    node.inputs.forEach((x, i) => {
      if (need[i] && dIn[i] === undefined)
        throw new Error(
          `grad: the rule of op "${node.op}" gave no gradient for input ${i} ("${x}") of node "${node.name}"`,
        );
      if (need[i]) accumulate(x, dIn[i]!);
    });
  }
  return wrt.map((w) => {
    const d = grads.get(w);
    if (!d) throw new Error(`grad: "${w}" does not reach the loss "${loss}"`);
    return d;
  });
}
