// The contract between reverse-mode differentiation (engine/autodiff.ts) and the per-op rules.
//
// A rule receives one forward node and the names of the gradients flowing into its outputs, and
// appends backward nodes to the same graph (ordinary ops from kernels/, so the same passes,
// memory plan, pipeline cache and tuner apply). It returns, per input, the name of a value of
// that input's shape holding dLoss/dInput, or undefined where the input needs no gradient.
// Rules may read any forward value (node.inputs, node.outputs): what backward reads stays
// alive in the memory plan by construction. Summing gradients of a value read by several nodes
// is autodiff's job, not the rule's.

import type { Graph, Node } from '../graph.js';

export interface VjpArgs {
  g: Graph;
  node: Node;
  /** dLoss/d(output i), or undefined where no gradient flows into that output. */
  dOut: (string | undefined)[];
  /** Per input: whether a gradient is wanted (frozen constants and graph inputs are false). */
  need: boolean[];
  /** A fresh node name derived from the forward node's, e.g. name('dx') → "conv1.grad.dx". */
  name(suffix: string): string;
}

export type VjpRule = (a: VjpArgs) => (string | undefined)[];

/** Rules by forward op name; each rule file exports one such table. */
export type VjpTable = readonly (readonly [op: string, rule: VjpRule])[];
