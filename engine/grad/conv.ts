// VJP rules for conv2d (dense, grouped, depthwise) and pooling. The backward ops are in
// kernels/backward/conv2d.ts and kernels/backward/pool.ts; their arithmetic in docs/backward-conv.md.
//
//   conv2d [x, w, bias?]  dx = conv2d_grad_input(dy, w), dw = conv2d_grad_weight(x, dy),
//                         dbias = conv2d_grad_bias(dy) (Σ of dy over N, H, W)
//   maxpool [x]           dx = maxpool_grad(x, dy) (dy routed to each window's first maximum)
//   avgpool [x]           dx = avgpool_grad(dy) (dy / divisor spread over each window)
//
// A conv2d reaching a rule must be linear: autodiff splits fused activations into their own
// node first, and the residual input (4th) is added by engine/passes.ts fuseResidual, which
// does not run on graphs being differentiated. Either one here is a bug upstream, named as such.

import type { Conv2dAttrs } from '../../kernels/conv-geometry.js';
import type { Graph, Node } from '../graph.js';
import type { VjpArgs, VjpTable } from './types.js';

type Shape4 = [number, number, number, number];

function shape4(g: Graph, v: string): Shape4 {
  const s = g.shape(v);
  return [s[0], s[1], s[2], s[3]];
}

/** The geometry attrs of a conv2d node, without `act` (checked to be absent or 'none'). */
function linearConvAttrs(node: Node): Conv2dAttrs {
  const { act, ...rest } = node.attrs as Conv2dAttrs;
  if (act !== undefined && act !== 'none') {
    throw new Error(
      `conv2d "${node.name}": the VJP rule takes a linear conv, got act '${act}' (autodiff splits fused activations off first)`,
    );
  }
  if (node.inputs.length > 3) {
    throw new Error(
      `conv2d "${node.name}": the VJP rule takes [x, w, bias?], got ${node.inputs.length} inputs (a fused residual; ` +
        'differentiate the graph before engine/passes.ts fuses it)',
    );
  }
  return rest;
}

function conv2dVjp({ g, node, dOut, need, name }: VjpArgs): (string | undefined)[] {
  const attrs = linearConvAttrs(node);
  const dy = dOut[0];
  if (dy === undefined) return node.inputs.map(() => undefined);
  const [x, w] = node.inputs;
  const dx = need[0] ? g.op('conv2d_grad_input', [dy, w], { ...attrs, xShape: shape4(g, x) }, name('dx')) : undefined;
  const dw = need[1] ? g.op('conv2d_grad_weight', [x, dy], { ...attrs, wShape: shape4(g, w) }, name('dw')) : undefined;
  const db = node.inputs.length > 2 && need[2] ? g.op('conv2d_grad_bias', [dy], {}, name('dbias')) : undefined;
  return node.inputs.length > 2 ? [dx, dw, db] : [dx, dw];
}

function maxpoolVjp({ g, node, dOut, need, name }: VjpArgs): (string | undefined)[] {
  const dy = dOut[0];
  if (dy === undefined || !need[0]) return [undefined];
  return [g.op('maxpool_grad', [node.inputs[0], dy], { ...node.attrs }, name('dx'))];
}

function avgpoolVjp({ g, node, dOut, need, name }: VjpArgs): (string | undefined)[] {
  const dy = dOut[0];
  if (dy === undefined || !need[0]) return [undefined];
  return [g.op('avgpool_grad', [dy], { ...node.attrs, xShape: shape4(g, node.inputs[0]) }, name('dx'))];
}

export const convRules: VjpTable = [
  ['conv2d', conv2dVjp],
  ['maxpool', maxpoolVjp],
  ['avgpool', avgpoolVjp],
];
