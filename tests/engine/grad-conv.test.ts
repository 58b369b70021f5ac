// VJP rules of engine/grad/conv.ts on small hand-built graphs: the backward graph each rule
// appends, run by runReference, against central finite differences of the forward graph's
// runReference, and the same backward graph compiled and run on SwiftShader.
//
// A local driver applies the rules in reverse node order (each value here has one reader, so no
// gradient sums are needed); engine/autodiff.ts does this for real graphs.

import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { VJP_RULES } from '../../engine/grad/index.js';
import { Graph, runReference } from '../../engine/graph.js';
import { Rng } from '../../models/init.js';
import { expectClose, rand, testDevice } from '../helpers.js';

/** Appends the backward graph of g (seeded with dLoss/d(output 0) = the graph input `seed`); returns gradient names by value. */
function backward(g: Graph, seed: string): Map<string, string> {
  const grads = new Map<string, string>([[g.outputs[0], seed]]);
  for (const node of [...g.nodes].reverse()) {
    const dOut = node.outputs.map((o) => grads.get(o));
    if (dOut.every((d) => d === undefined)) continue;
    const rule = VJP_RULES.get(node.op);
    if (!rule) throw new Error(`no VJP rule for ${node.op}`);
    const need = node.inputs.map((v) => g.value(v).kind !== 'input' || v === 'x');
    const res = rule({ g, node, dOut, need, name: (s) => `${node.name}.grad.${s}` });
    expect(res).toHaveLength(node.inputs.length);
    res.forEach((d, i) => {
      if (d === undefined) return;
      if (grads.has(node.inputs[i])) throw new Error(`${node.inputs[i]} has two readers; the driver does not sum`);
      expect(g.shape(d), `gradient of ${node.inputs[i]}`).toEqual(g.shape(node.inputs[i]));
      grads.set(node.inputs[i], d);
    });
  }
  return grads;
}

/** x values (i − n/2)·step, shuffled: distinct, so no max changes under a finite-difference step < step/2. */
function distinct(n: number, step: number, seed: number): Float32Array {
  const v = Float32Array.from({ length: n }, (_, i) => (i - n / 2) * step);
  const r = new Rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r.uniform() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
}

interface Built {
  g: Graph;
  feed: Record<string, Float32Array>;
  /** Values to check: graph input x and constants. */
  params: string[];
}

/**
 * Central differences of L = Σ out·r (f64 sum) at up to 40 spread indices of each parameter,
 * against the backward graph's gradient: |Δ| ≤ tol.atol + tol.rtol·|ref|.
 */
function checkRules(b: Built, eps: number, tol: { atol: number; rtol: number }) {
  const { g, feed } = b;
  const out = g.outputs[0];
  const r = rand(
    g.shape(out).reduce((a, c) => a * c, 1),
    99,
  );
  const fwd = g.clone(); // shares the constants' data, so perturbing them reaches both graphs
  const loss = () => {
    const y = runReference(fwd, feed, [out])[out].data;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * r[i];
    return s;
  };
  g.input('dy', g.shape(out));
  const grads = backward(g, 'dy');
  const names = b.params.map((p) => grads.get(p)!);
  const analytic = runReference(g, { ...feed, dy: r }, names);
  b.params.forEach((p, k) => {
    const data = fwd.value(p).kind === 'input' ? feed[p] : g.value(p).data!;
    const an = analytic[names[k]].data;
    const n = data.length;
    const count = Math.min(n, 40);
    for (let j = 0; j < count; j++) {
      const i = Math.floor((j * n) / count);
      const v = data[i];
      data[i] = v + eps;
      const up = loss();
      data[i] = v - eps;
      const down = loss();
      data[i] = v;
      const fd = (up - down) / (2 * eps);
      if (!(Math.abs(fd - an[i]) <= tol.atol + tol.rtol * Math.abs(an[i]))) {
        throw new Error(`d${p}[${i}]: backward graph ${an[i]}, finite difference ${fd}`);
      }
    }
  });
  return { grads, names, dy: r };
}

/** conv2d (bias, stride 2, asymmetric pad) → avgpool → depthwise conv2d (dilation 2): linear throughout. */
function linearChain(): Built {
  const g = new Graph();
  g.input('x', [2, 9, 7, 6]);
  g.constant('w1', [3, 3, 6, 8], rand(432, 1));
  g.constant('b1', [8], rand(8, 2));
  g.constant('w2', [3, 3, 1, 8], rand(72, 3));
  g.constant('b2', [8], rand(8, 4));
  const c1 = g.op('conv2d', ['x', 'w1', 'b1'], { stride: [2, 2], pad: [1, 0, 1, 1] }, 'conv1');
  const p = g.op(
    'avgpool',
    [c1],
    { kernel: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], countIncludePad: false },
    'pool',
  );
  const c2 = g.op('conv2d', [p, 'w2', 'b2'], { groups: 8, dilation: [2, 2], pad: [2, 2, 2, 2], act: 'none' }, 'dw');
  g.markOutputs(c2);
  return { g, feed: { x: rand(2 * 9 * 7 * 6, 5) }, params: ['x', 'w1', 'b1', 'w2', 'b2'] };
}

/** maxpool (3×3/2, pad 1) on distinct inputs → grouped conv2d without bias. */
function maxpoolChain(): Built {
  const g = new Graph();
  g.input('x', [2, 7, 9, 6]);
  g.constant('w', [3, 1, 3, 10], rand(90, 6));
  const p = g.op('maxpool', ['x'], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }, 'pool');
  const c = g.op('conv2d', [p, 'w'], { groups: 2, pad: [1, 0, 1, 0] }, 'conv');
  g.markOutputs(c);
  return { g, feed: { x: distinct(2 * 7 * 9 * 6, 0.05, 7) }, params: ['x', 'w'] };
}

describe('conv2d / pooling VJP rules vs finite differences', () => {
  // Linear in every parameter: ε = 0.25 meets only f32 rounding of the forward values (~1e-6).
  it('conv2d + avgpool + depthwise conv2d, every parameter and the input', () => {
    checkRules(linearChain(), 0.25, { atol: 1e-4, rtol: 1e-4 });
  });

  // Inputs 0.05 apart and ε = 0.02 keep every window's winner; the f32 rounding of the forward
  // values over 2ε costs up to ~1e-5 here.
  it('maxpool + grouped conv2d, input and weights', () => {
    checkRules(maxpoolChain(), 0.02, { atol: 2e-4, rtol: 1e-4 });
  });

  it('the backward graphs run on the GPU as in runReference', async () => {
    for (const b of [linearChain(), maxpoolChain()]) {
      const { g, feed } = b;
      const out = g.outputs[0];
      g.input('dy', g.shape(out));
      const grads = backward(g, 'dy');
      const names = b.params.map((p) => grads.get(p)!);
      const dy = rand(
        g.shape(out).reduce((a, c) => a * c, 1),
        11,
      );
      const want = runReference(g, { ...feed, dy }, names);
      g.outputs = names;
      const plan = await compile(await testDevice(), g);
      try {
        const { outputs } = await plan.run({ ...feed, dy });
        for (const n of names) expectClose(outputs[n], want[n], { atol: 2e-5, rtol: 1e-4 }, n);
      } finally {
        plan.dispose();
      }
    }
  });
});

describe('conv2d VJP rule contract', () => {
  const rule = VJP_RULES.get('conv2d')!;
  const build = (attrs: Record<string, unknown>, residual = false) => {
    const g = new Graph();
    g.input('x', [1, 5, 5, 3]);
    g.constant('w', [3, 3, 3, 4], rand(108, 1));
    g.constant('b', [4], rand(4, 2));
    if (residual) g.input('r', [1, 5, 5, 4]);
    g.op('conv2d', ['x', 'w', 'b', ...(residual ? ['r'] : [])], { pad: [1, 1, 1, 1], ...attrs }, 'c');
    g.input('dy', [1, 5, 5, 4]);
    return g;
  };
  const args = (g: Graph, need: boolean[]) => ({
    g,
    node: g.nodes[0],
    dOut: ['dy'],
    need,
    name: (s: string) => `c.grad.${s}`,
  });

  it('refuses a fused activation and a fused residual, naming the node', () => {
    const g = build({ act: 'relu' });
    expect(() => rule(args(g, [true, true, true]))).toThrow(/conv2d "c".*act 'relu'/);
    const h = build({}, true);
    expect(() => rule(args(h, [true, true, true, true]))).toThrow(/conv2d "c".*4 inputs/);
  });

  it('adds only the gradients wanted', () => {
    const g = build({});
    const before = g.nodes.length;
    const res = rule(args(g, [false, true, false]));
    expect(res[0]).toBeUndefined();
    expect(res[2]).toBeUndefined();
    expect(g.nodes.length - before).toBe(1);
    expect(g.producer(res[1]!)?.op).toBe('conv2d_grad_weight');
  });
});
