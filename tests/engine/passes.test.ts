import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import { foldBatchNorm, fuseActivation, fuseBias, optimize } from '../../engine/passes.js';
import { NetBuilder, RandomWeights } from '../../models/layers.js';
import { expectClose, rand, testDevice } from '../helpers.js';

/** conv→BN→ReLU, conv→BN, residual add→ReLU, conv→add(bias)→relu6, linear→GELU. */
function block(): Graph {
  const g = new Graph();
  const b = new NetBuilder(g, new RandomWeights(3));
  const x = g.input('x', [2, 9, 7, 5]);
  let y = b.act(b.batchnorm('bn1', b.conv('conv1', x, 6, 3, { stride: 2 })), 'relu');
  y = b.batchnorm('bn2', b.conv('conv2', y, 5, 3));
  const sc = b.batchnorm('bnd', b.conv('down', x, 5, 1, { stride: 2 }));
  y = b.act(b.add(y, sc), 'relu');
  const bias = b.param('extra.bias', [5], 'bias');
  y = b.act(g.op('add', [b.conv('conv3', y, 5, 1), bias]), 'relu6');
  const t = g.op('reshape', [y], { shape: [2, 20, 5] });
  g.markOutputs(b.act(b.linear('fc', t, 7, { bias: false }), 'gelu'));
  return g;
}

const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;

describe('passes', () => {
  it('fold BN into convs, merge bias adds, fuse activations (incl. residual add + ReLU)', () => {
    const g = block();
    expect(count(g, 'batchnorm')).toBe(3);
    const folded = foldBatchNorm(g);
    expect(count(folded, 'batchnorm')).toBe(0);
    const biased = fuseBias(folded);
    expect(count(biased, 'add')).toBe(1); // the residual add stays
    const fused = fuseActivation(biased);
    expect(count(fused, 'activation')).toBe(0);
    const add = fused.nodes.find((n) => n.op === 'add')!;
    expect(add.attrs.act).toBe('relu');
    const conv3 = fused.nodes.find((n) => n.name === 'conv3')!;
    expect(conv3.inputs.length).toBe(3);
    expect(conv3.attrs.act).toBe('relu6');
    expect(fused.nodes.find((n) => n.name === 'fc')!.attrs.act).toBe('gelu');
    expect(fused.nodes.find((n) => n.name === 'conv1')!.attrs.act).toBe('relu');
  });

  it('the optimised graph computes what the original does (CPU reference and GPU)', async () => {
    const g = block();
    const { graph: opt, report } = optimize(g);
    expect(report.after).toBeLessThan(report.before);
    expect(opt.outputs).toEqual(g.outputs);
    const x = rand(2 * 9 * 7 * 5, 5);
    const want = runReference(g, { x })[g.outputs[0]];
    // Folding changes rounding only: |d| ≤ 1e-5 + 1e-4·|ref|.
    const tol = { atol: 1e-5, rtol: 1e-4 };
    expectClose(runReference(opt, { x })[opt.outputs[0]], want, tol, 'optimised, CPU');
    const dev = await testDevice();
    for (const graph of [g, opt]) {
      const plan = await compile(dev, graph);
      const { outputs } = await plan.run({ x });
      expectClose(outputs[graph.outputs[0]], want, tol, graph === g ? 'unfused, GPU' : 'optimised, GPU');
      plan.dispose();
    }
  });

  it('does not fuse through a value that is a graph output or has two readers', () => {
    const g = new Graph();
    const b = new NetBuilder(g, new RandomWeights(1));
    const x = g.input('x', [1, 4, 4, 3]);
    const c = b.conv('c', x, 4, 3);
    const r = b.act(c, 'relu');
    g.markOutputs(c, r);
    expect(fuseActivation(g).nodes.length).toBe(2);
    const g2 = new Graph();
    const b2 = new NetBuilder(g2, new RandomWeights(1));
    const x2 = g2.input('x', [1, 4, 4, 3]);
    const c2 = b2.conv('c', x2, 4, 3);
    g2.markOutputs(b2.act(c2, 'relu'), b2.act(c2, 'silu'));
    expect(fuseActivation(g2).nodes.length).toBe(3);
  });
});
