import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import { foldBatchNorm, fuseActivation, fuseBias, fuseResidual, optimize } from '../../engine/passes.js';
import { NetBuilder, RandomWeights } from '../../models/layers.js';
import { expectClose, rand, testDevice } from '../helpers.js';

const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;
const node = (g: Graph, name: string) => g.nodes.find((n) => n.name === name)!;

/**
 * A ResNet bottleneck with a projection shortcut, built in torchvision's order (downsample
 * first): conv1/BN/ReLU, conv2/BN/ReLU (stride 2), conv3/BN, down/BN, add, ReLU, then a 1×1
 * conv. Odd sizes, Cout 6 (not a multiple of 4). `relu` as a separate activation node, so
 * fuseActivation has to put it on the add before fuseResidual moves it onto conv3.
 */
function bottleneck(): Graph {
  const g = new Graph();
  const b = new NetBuilder(g, new RandomWeights(7));
  const x = g.input('x', [2, 9, 7, 5]);
  const sc = b.batchnorm('down.bn', b.conv('down', x, 6, 1, { stride: 2 }));
  let y = b.batchnorm('bn1', b.conv('conv1', x, 4, 1), 'relu');
  y = b.batchnorm('bn2', b.conv('conv2', y, 4, 3, { stride: 2 }), 'relu');
  y = b.batchnorm('bn3', b.conv('conv3', y, 6, 1), 'none', 1e-5, true);
  y = b.act(b.add(y, sc, 'none', 'add'), 'relu', 'relu');
  g.markOutputs(b.conv('head', y, 3, 1, { bias: true }));
  return g;
}

async function runGpu(graph: Graph, feed: Record<string, Float32Array>) {
  const plan = await compile(await testDevice(), graph);
  try {
    return (await plan.run(feed)).outputs;
  } finally {
    plan.dispose();
  }
}

// Folding and fusing change rounding only: |d| ≤ 1e-5 + 1e-4·|ref|.
const tol = { atol: 1e-5, rtol: 1e-4 };

describe('fuseResidual', () => {
  it("fuses a bottleneck's residual add + ReLU into conv3; the downsample conv is untouched", async () => {
    const g = bottleneck();
    const { graph: opt, report } = optimize(g);
    expect(report.counts.fuseResidual).toBe(1);
    expect(count(opt, 'add')).toBe(0);
    expect(count(opt, 'activation')).toBe(0);
    expect(count(opt, 'batchnorm')).toBe(0);
    expect(opt.nodes.map((n) => n.name)).toEqual(['down', 'conv1', 'conv2', 'conv3', 'head']);
    const conv3 = node(opt, 'conv3');
    expect(conv3.attrs.act).toBe('relu');
    expect(conv3.inputs).toHaveLength(4);
    expect(conv3.inputs[3]).toBe(node(opt, 'down').outputs[0]);
    expect(conv3.outputs).toEqual(['relu']); // the activation's value, read by head
    expect(node(opt, 'head').inputs[0]).toBe('relu');
    const down = node(opt, 'down');
    expect(down.inputs).toHaveLength(3);
    expect(down.attrs.act).toBe('none');
    expect(opt.outputs).toEqual(g.outputs);

    const x = rand(2 * 9 * 7 * 5, 11);
    const want = runReference(g, { x })[g.outputs[0]];
    expectClose(runReference(opt, { x })[opt.outputs[0]], want, tol, 'optimised, CPU');
    expectClose((await runGpu(opt, { x }))[opt.outputs[0]], want, tol, 'optimised, GPU');
    const fused = await compile(await testDevice(), opt);
    expect(fused.kernels.filter((k) => k.includes('"residual":true'))).toHaveLength(1);
    fused.dispose();
  });

  it("gives a conv without a bias a zero one; the add's act moves over; the later conv wins", async () => {
    // Two convs of the same input added: both operands are ready before the later conv (c2).
    const g = new Graph();
    const b = new NetBuilder(g, new RandomWeights(3));
    const x = g.input('x', [1, 5, 7, 3]);
    const c1 = b.conv('c1', x, 5, 3);
    const c2 = b.conv('c2', x, 5, 1);
    g.markOutputs(b.add(c1, c2, 'relu6', 'add'));
    const f = fuseResidual(g);
    expect(f.nodes.map((n) => n.name)).toEqual(['c1', 'c2']);
    const fc2 = node(f, 'c2');
    expect(fc2.inputs[3]).toBe(c1);
    expect(fc2.attrs.act).toBe('relu6');
    expect([...f.value(fc2.inputs[2]).data!]).toEqual([0, 0, 0, 0, 0]);
    expect(f.value(fc2.inputs[2]).kind).toBe('const');
    expect(node(f, 'c1').inputs).toHaveLength(2);
    const xd = rand(5 * 7 * 3, 12);
    const want = runReference(g, { x: xd })[g.outputs[0]];
    expectClose(runReference(f, { x: xd })[f.outputs[0]], want, tol, 'CPU');
    expectClose((await runGpu(f, { x: xd }))[f.outputs[0]], want, tol, 'GPU');
  });

  it('an identity shortcut (MobileNetV2-like): the residual is the graph input', () => {
    const g = new Graph();
    const b = new NetBuilder(g, new RandomWeights(4));
    const x = g.input('x', [1, 5, 5, 4]);
    const e = b.conv('expand', x, 8, 1, { act: 'relu6' });
    const d = b.conv('dw', e, 8, 3, { groups: 8, act: 'relu6' });
    g.markOutputs(b.add(x, b.batchnorm('bn', b.conv('project', d, 4, 1)), 'none', 'add'));
    const { graph: opt } = optimize(g);
    expect(opt.nodes.map((n) => n.name)).toEqual(['expand', 'dw', 'project']);
    expect(node(opt, 'project').inputs[3]).toBe('x');
    const xd = rand(5 * 5 * 4, 13);
    expectClose(runReference(opt, { x: xd })[opt.outputs[0]], runReference(g, { x: xd })[g.outputs[0]], tol, 'CPU');
  });

  it("does not fuse when the conv's output has another reader or is a graph output", () => {
    const make = () => {
      const g = new Graph();
      const b = new NetBuilder(g, new RandomWeights(5));
      const x = g.input('x', [1, 6, 5, 4]);
      const sc = b.conv('down', x, 4, 1, { bias: true });
      const c = b.conv('conv3', x, 4, 3, { bias: true });
      return { g, b, sc, c, add: b.add(c, sc, 'relu', 'add') };
    };
    {
      // conv3's output also read by a pooling node: no rewrite, and down's output is not
      // ready before down itself, so down is not a candidate either.
      const { g, c, add } = make();
      g.markOutputs(add, g.op('global_avgpool', [c], {}, 'pool'));
      const f = fuseResidual(g);
      expect(count(f, 'add')).toBe(1);
      expect(node(f, 'conv3').inputs).toHaveLength(3);
    }
    {
      const { g, c, add } = make();
      g.markOutputs(add, c);
      const f = fuseResidual(g);
      expect(count(f, 'add')).toBe(1);
      expect(f.nodes.every((n) => n.inputs.length <= 3)).toBe(true);
    }
  });

  it('leaves alone: convs with an act, grouped convs, broadcasting adds, operands made after the conv', () => {
    const g = new Graph();
    const b = new NetBuilder(g, new RandomWeights(6));
    const x = g.input('x', [1, 5, 5, 4]);
    const withAct = b.add(b.conv('relu_conv', x, 4, 3, { act: 'relu' }), x);
    const grouped = b.add(b.conv('grouped', withAct, 4, 3, { groups: 2 }), withAct);
    const bias = b.param('chan', [4], 'bias');
    const row = g.input('row', [1, 1, 5, 4]);
    const broadcast = b.add(b.conv('bcast', grouped, 4, 1), row);
    // add(b, a) of two convs: a runs first, so only b can take a as its residual (a has two
    // readers anyway); the bias add of a is a broadcast, not a residual.
    const a1 = b.conv('a', broadcast, 4, 1);
    const b1 = b.conv('b', broadcast, 4, 1);
    g.markOutputs(b.add(a1, bias), b.add(b1, a1, 'none', 'ab'));
    // An operand computed after the conv (here by an activation node) is not there when it runs.
    const late = b.conv('late', x, 4, 1);
    g.markOutputs(b.add(late, b.act(x, 'silu'), 'none', 'late_add'));
    const f = fuseResidual(g);
    expect(node(f, 'late').inputs).toHaveLength(2);
    expect(node(f, 'relu_conv').inputs).toHaveLength(2);
    expect(node(f, 'grouped').inputs).toHaveLength(2);
    expect(node(f, 'bcast').inputs).toHaveLength(2);
    expect(node(f, 'a').inputs).toHaveLength(2);
    expect(node(f, 'b').inputs[3]).toBe(a1);
    expect(count(f, 'add')).toBe(5);
  });

  it('keeps the residual through later passes: no BN fold through it, fuseBias keeps it', () => {
    const g = new Graph();
    const b = new NetBuilder(g, new RandomWeights(8));
    const x = g.input('x', [1, 4, 4, 4]);
    g.markOutputs(b.add(b.conv('c', x, 4, 1), x, 'none', 'add'));
    const f = fuseResidual(g);
    expect(node(f, 'c').inputs).toHaveLength(4);
    // BN after a conv with a residual cannot fold into it.
    const bn = f.clone();
    const bnOut = new NetBuilder(bn, new RandomWeights(9)).batchnorm('bn', bn.outputs[0]);
    bn.outputs = [bnOut];
    expect(count(foldBatchNorm(bn), 'batchnorm')).toBe(1);
    // A bias add after it merges into the bias and keeps the residual.
    const ba = f.clone();
    const nb = new NetBuilder(ba, new RandomWeights(10));
    ba.outputs = [nb.add(ba.outputs[0], nb.param('extra', [4], 'bias'), 'none', 'bias_add')];
    const fb = fuseBias(ba);
    expect(count(fb, 'add')).toBe(0);
    expect(node(fb, 'c').inputs).toHaveLength(4);
    expect(node(fb, 'c').inputs[3]).toBe('x');
    const xd = rand(64, 14);
    expectClose(
      runReference(fb, { x: xd })[fb.outputs[0]],
      runReference(ba, { x: xd })[ba.outputs[0]],
      tol,
      'bias merged',
    );
    // optimize is idempotent on its own output.
    const once = optimize(g).graph;
    expect(optimize(once).report.after).toBe(once.nodes.length);
    expect(fuseActivation(once).nodes.length).toBe(once.nodes.length);
  });
});
