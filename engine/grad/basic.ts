// VJP rules for elementwise, matmul, layout ops, pooling to a vector, softmax and the loss.
// Each appends ordinary backward ops (kernels/backward/) or forward ops used as their own adjoints
// (a transpose's adjoint is a transpose); formulas in docs/autodiff.md.

import type { Activation } from '../../kernels/kernel.js';
import { fmtShape, numel } from '../../kernels/kernel.js';
import type { Graph, Node } from '../graph.js';
import type { VjpArgs, VjpRule, VjpTable } from './types.js';

/** `dy` summed down to `shape` (the adjoint of broadcasting `shape` up to dy's shape). */
export function reduceTo(g: Graph, dy: string, shape: readonly number[], name: string): string {
  const have = g.shape(dy);
  if (fmtShape(have) === fmtShape(shape)) return dy;
  if (numel(have) === numel(shape)) return g.op('reshape', [dy], { shape: [...shape] }, name);
  return g.op('reduce_sum', [dy], { shape: [...shape] }, name);
}

/** Rules see fused epilogues already split off by autodiff (engine/autodiff.ts). */
function assertNoAct(n: Node): void {
  const act = n.attrs.act as Activation | undefined;
  if (act && act !== 'none')
    throw new Error(`node "${n.name}" (${n.op}) still has act '${act}': autodiff unfuses epilogues first`);
}

const activation: VjpRule = ({ g, node, dOut: [dy], name }) => [
  g.op('activation_grad', [node.inputs[0], dy!], { act: node.attrs.act }, name('dx')),
];

const add: VjpRule = ({ g, node, dOut: [dy], need, name }) => {
  assertNoAct(node);
  return node.inputs.map((x, i) => (need[i] ? reduceTo(g, dy!, g.shape(x), name(`d${i}`)) : undefined));
};

/** Swap the last two axes. */
function transposeLast2(g: Graph, x: string, name: string): string {
  const r = g.shape(x).length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return g.op('transpose', [x], { perm }, name);
}

/**
 * Y = A·B (+ bias), A [..., M, K], B [K, N] or with transB [N, K], or batched [..., K, N]:
 * dA = dY·Bᵀ, dB = Aᵀ·dY (transB: dB = dYᵀ·A), summed over broadcast batch axes; dbias = Σ dY.
 * A shared weight folds A's batch into rows, so dB is one product over all rows.
 */
const matmul: VjpRule = ({ g, node, dOut: [dy], need, name }) => {
  assertNoAct(node);
  const [a, b, bias] = node.inputs;
  const transB = !!node.attrs.transB;
  const [aS, bS] = [g.shape(a), g.shape(b)];
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (need[0]) {
    const da = g.op('matmul', [dy!, b], { transB: !transB }, name('da'));
    out[0] = reduceTo(g, da, aS, name('da.sum'));
  }
  if (need[1]) {
    const shared = numel(bS.slice(0, -2)) === 1 && bS.length <= aS.length;
    const K = aS.at(-1)!;
    const N = g.shape(dy!).at(-1)!;
    if (shared) {
      const rows = numel(aS) / K;
      const a2 = g.op('reshape', [a], { shape: [rows, K] }, name('a2'));
      const dy2 = g.op('reshape', [dy!], { shape: [rows, N] }, name('dy2'));
      const db = transB
        ? g.op('matmul', [g.op('transpose', [dy2], { perm: [1, 0] }, name('dyT')), a2], {}, name('db.mm'))
        : g.op('matmul', [g.op('transpose', [a2], { perm: [1, 0] }, name('aT')), dy2], {}, name('db.mm'));
      out[1] = reduceTo(g, db, bS, name('db'));
    } else {
      const db = transB
        ? g.op('matmul', [transposeLast2(g, dy!, name('dyT')), a], {}, name('db.mm'))
        : g.op('matmul', [transposeLast2(g, a, name('aT')), dy!], {}, name('db.mm'));
      out[1] = reduceTo(g, db, bS, name('db'));
    }
  }
  if (bias !== undefined && need[2]) out[2] = reduceTo(g, dy!, g.shape(bias), name('dbias'));
  return out;
};

const reshape: VjpRule = ({ g, node, dOut: [dy], name }) => [
  g.op('reshape', [dy!], { shape: [...g.shape(node.inputs[0])] }, name('dx')),
];

const transpose: VjpRule = ({ g, node, dOut: [dy], name }) => {
  const perm = node.attrs.perm as number[];
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inv[p] = i;
  });
  return [g.op('transpose', [dy!], { perm: inv }, name('dx'))];
};

/** Python-style slice bounds as the forward op reads them (kernels/layout.ts). */
function sliceBounds(node: Node, x: readonly number[]): { axis: number; start: number } {
  const r = x.length;
  const ax = node.attrs.axis as number;
  const axis = ax < 0 ? ax + r : ax;
  const L = x[axis];
  const s = node.attrs.start as number;
  return { axis, start: Math.min(Math.max(s < 0 ? s + L : s, 0), L) };
}

const slice: VjpRule = ({ g, node, dOut: [dy], name }) => {
  const x = g.shape(node.inputs[0]);
  const { axis, start } = sliceBounds(node, x);
  return [g.op('slice_grad', [dy!], { axis, start, size: x[axis] }, name('dx'))];
};

/** Each input's slab of dY, summed over the axes it was broadcast along (a ViT class token). */
const concat: VjpRule = ({ g, node, dOut: [dy], need, name }) => {
  const out = g.shape(dy!);
  const ax = node.attrs.axis as number;
  const axis = ax < 0 ? ax + out.length : ax;
  let offset = 0;
  return node.inputs.map((x, i) => {
    const s = g.shape(x);
    const start = offset;
    offset += s[axis];
    if (!need[i]) return undefined;
    const part =
      s[axis] === out[axis] ? dy! : g.op('slice', [dy!], { axis, start, end: start + s[axis] }, name(`slab${i}`));
    return reduceTo(g, part, s, name(`d${i}`));
  });
};

/** The pad's adjoint crops: the inner H × W window of dY. */
const pad: VjpRule = ({ g, node, dOut: [dy], name }) => {
  const [top, left] = node.attrs.pad as number[];
  const [, h, w] = g.shape(node.inputs[0]);
  const rows = g.op('slice', [dy!], { axis: 1, start: top, end: top + h }, name('rows'));
  return [g.op('slice', [rows], { axis: 2, start: left, end: left + w }, name('dx'))];
};

const globalAvgpool: VjpRule = ({ g, node, dOut: [dy], name }) => {
  const [, h, w] = g.shape(node.inputs[0]);
  return [g.op('global_avgpool_grad', [dy!], { h, w }, name('dx'))];
};

const softmax: VjpRule = ({ g, node, dOut: [dy], name }) => [
  g.op('softmax_grad', [node.outputs[0], dy!], {}, name('dx')),
];

const softmaxXent: VjpRule = ({ g, node, dOut: [dloss], need, name }: VjpArgs) => {
  if (need[1]) throw new Error(`node "${node.name}" (softmax_xent): no gradient with respect to the targets`);
  return [g.op('softmax_xent_grad', [node.inputs[0], node.inputs[1], dloss!], {}, name('dlogits')), undefined];
};

export const basicRules: VjpTable = [
  ['activation', activation],
  ['add', add],
  ['matmul', matmul],
  ['reshape', reshape],
  ['transpose', transpose],
  ['slice', slice],
  ['concat', concat],
  ['pad', pad],
  ['global_avgpool', globalAvgpool],
  ['softmax', softmax],
  ['softmax_xent', softmaxXent],
];
