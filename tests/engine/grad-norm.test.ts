// The VJP rules of engine/grad/norm.ts on small graphs: the backward graph they build, run by
// runReference and on the GPU, against central finite differences of the forward graph.
//
// A small local driver stands in for engine/autodiff.ts here (reverse order, gradients of a
// value read several times summed with `add`), so the rules are tested on their own; the loss is
// L = Σ w ⊙ y with dL/dy = w fed as a graph input.

import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { normRules } from '../../engine/grad/norm.js';
import { Graph, runReference } from '../../engine/graph.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { expectClose, randTensor, testDevice } from '../helpers.js';
import { fdTol, numericGrad, weightedSum } from '../kernels/backward-norm-fd.js';

const RULES = new Map(normRules);

/** Appends the backward of `out` (gradient `dy`) to g; returns the gradient of each of `wrt`. */
function backprop(g: Graph, out: string, dy: string, wrt: string[]): (string | undefined)[] {
  const depends = new Set(wrt);
  for (const n of g.nodes) if (n.inputs.some((x) => depends.has(x))) n.outputs.forEach((o) => depends.add(o));
  const grads = new Map([[out, dy]]);
  let k = 0;
  for (const node of [...g.nodes].reverse()) {
    const dOut = node.outputs.map((o) => grads.get(o));
    if (dOut.every((d) => d === undefined)) continue;
    const rule = RULES.get(node.op);
    if (!rule) throw new Error(`test driver: no rule for ${node.op}`);
    const need = node.inputs.map((x) => depends.has(x));
    const dIn = rule({ g, node, dOut, need, name: (s) => `${node.name}.grad.${s}` });
    node.inputs.forEach((x, i) => {
      if (!need[i]) return;
      const d = dIn[i];
      if (d === undefined) throw new Error(`rule ${node.op} gave no gradient for input ${i}`);
      expect(g.shape(d), `gradient of ${x}`).toEqual(g.shape(x));
      const have = grads.get(x);
      grads.set(x, have === undefined ? d : g.op('add', [have, d], {}, `sum${k++}`));
    });
  }
  return wrt.map((w) => grads.get(w));
}

interface Built {
  g: Graph;
  out: string;
  inputs: Record<string, HostTensor>;
}

/** Checks every wrt gradient of the rules' backward graph against finite differences (and the GPU). */
async function check(build: () => Built, wrt: string[], gpu = true) {
  const fwd = build();
  const w = randTensor(fwd.g.shape(fwd.out), 99);
  const feed = (ins: Record<string, HostTensor>) =>
    Object.fromEntries(Object.entries(ins).map(([k, t]) => [k, t.data]));
  const loss = (ins: Record<string, HostTensor>) =>
    weightedSum(runReference(fwd.g, feed(ins), [fwd.out])[fwd.out].data, w.data);

  const b = build();
  const dy = b.g.input('dy', w.shape);
  const grads = backprop(b.g, b.out, dy, wrt) as string[];
  b.g.markOutputs(...grads);
  const got = runReference(b.g, { ...feed(b.inputs), dy: w.data }, grads);
  const names = Object.keys(fwd.inputs);
  const list = names.map((n) => fwd.inputs[n]);
  wrt.forEach((name, i) => {
    const want = numericGrad(
      (ts) => loss(Object.fromEntries(names.map((n, j) => [n, ts[j]]))),
      list,
      names.indexOf(name),
    );
    expectClose(got[grads[i]], want, fdTol(want), `dL/d${name} vs finite differences`);
  });
  if (!gpu) return;
  const plan = await compile(await testDevice(), b.g);
  try {
    const { outputs } = await plan.run({ ...feed(b.inputs), dy: w.data });
    grads.forEach((d) => {
      expectClose(outputs[d], got[d], { atol: 1e-4, rtol: 1e-3 }, `GPU ${d}`);
    });
  } finally {
    plan.dispose();
  }
}

const inputsOf = (g: Graph, t: Record<string, HostTensor>) => {
  for (const [k, v] of Object.entries(t)) g.input(k, v.shape);
  return t;
};

describe('norm VJP rules vs finite differences', () => {
  it('CNN block: batchnorm_train -> group_norm -> batchnorm (frozen), every parameter', async () => {
    const build = (): Built => {
      const g = new Graph();
      const ins = inputsOf(g, {
        x: randTensor([2, 3, 4, 6], 1, -2, 2),
        g1: randTensor([6], 2, 0.5, 2),
        b1: randTensor([6], 3),
        g2: randTensor([6], 4, 0.5, 2),
        b2: randTensor([6], 5),
        g3: randTensor([6], 6, 0.5, 2),
        b3: randTensor([6], 7),
      });
      g.constant('rm', [6], randTensor([6], 8).data);
      g.constant('rv', [6], randTensor([6], 9, 0.3, 2).data);
      const [h] = g.add('batchnorm_train', ['x', 'g1', 'b1'], { eps: 1e-3 }, 'bn1');
      const h2 = g.op('group_norm', [h, 'g2', 'b2'], { groups: 3, eps: 1e-3 }, 'gn');
      const out = g.op('batchnorm', [h2, 'g3', 'b3', 'rm', 'rv'], { eps: 1e-3 }, 'bn2');
      return { g, out, inputs: ins };
    };
    await check(build, ['x', 'g1', 'b1', 'g2', 'b2', 'g3', 'b3']);
  });

  it('ViT block: layernorm -> attention(h, h, h) -> layernorm; h read three times', async () => {
    const build = (): Built => {
      const g = new Graph();
      const ins = inputsOf(g, {
        x: randTensor([2, 5, 21], 11, -1.5, 1.5),
        g1: randTensor([21], 12, 0.5, 1.5),
        b1: randTensor([21], 13),
        g2: randTensor([21], 14, 0.5, 1.5),
        b2: randTensor([21], 15),
      });
      const h = g.op('layernorm', ['x', 'g1', 'b1'], { eps: 1e-5 }, 'ln1');
      const a = g.op('attention', [h, h, h], { heads: 3 }, 'attn');
      const out = g.op('layernorm', [a, 'g2', 'b2'], { eps: 1e-5 }, 'ln2');
      return { g, out, inputs: ins };
    };
    await check(build, ['x', 'g1', 'b1', 'g2', 'b2']);
  });

  it('packed attention (T=5, heads=3, dh=7) after a layernorm', async () => {
    const build = (): Built => {
      const g = new Graph();
      const ins = inputsOf(g, {
        x: randTensor([2, 5, 63], 21, -1.5, 1.5),
        g1: randTensor([63], 22, 0.5, 1.5),
        b1: randTensor([63], 23),
      });
      const h = g.op('layernorm', ['x', 'g1', 'b1'], {}, 'ln');
      const out = g.op('attention', [h], { heads: 3, scale: 0.3 }, 'attn');
      return { g, out, inputs: ins };
    };
    await check(build, ['x', 'g1', 'b1']);
  });

  it('weight_standardize (BiT StdConv)', async () => {
    const build = (): Built => {
      const g = new Graph();
      const ins = inputsOf(g, { w: randTensor([3, 3, 2, 5], 31) });
      return { g, out: g.op('weight_standardize', ['w'], { eps: 1e-6 }, 'std'), inputs: ins };
    };
    await check(build, ['w']);
  });

  it('frozen gamma/beta: only the wanted gradients are returned', () => {
    const g = new Graph();
    g.input('x', [3, 4]);
    g.constant('gamma', [4], randTensor([4], 1).data);
    g.constant('beta', [4], randTensor([4], 2).data);
    const y = g.op('layernorm', ['x', 'gamma', 'beta'], {}, 'ln');
    g.input('dy', [3, 4]);
    const [node] = g.nodes;
    const d = RULES.get('layernorm')!({
      g,
      node,
      dOut: ['dy'],
      need: [true, false, false],
      name: (s) => `ln.grad.${s}`,
    });
    expect(d[0]).toBeDefined();
    expect(d.slice(1)).toEqual([undefined, undefined]);
    expect(y).toBe('ln');
  });
});

describe('norm VJP rules refuse what they cannot differentiate', () => {
  const args = (g: Graph, dOut: (string | undefined)[], need: boolean[]) => ({
    g,
    node: g.nodes[0],
    dOut,
    need,
    name: (s: string) => `n.grad.${s}`,
  });
  it('a fused activation', () => {
    const g = new Graph();
    g.input('x', [3, 4]);
    g.input('gamma', [4]);
    g.input('beta', [4]);
    g.op('layernorm', ['x', 'gamma', 'beta'], { act: 'gelu' }, 'ln');
    g.input('dy', [3, 4]);
    expect(() => RULES.get('layernorm')!(args(g, ['dy'], [true, true, true]))).toThrow(
      /node "ln" \(layernorm\): fused activation "gelu" must be split off/,
    );
  });
  it('a gradient for running statistics or into batch statistics', () => {
    const g = new Graph();
    for (const [n, s] of [
      ['x', [2, 3]],
      ['gamma', [3]],
      ['beta', [3]],
      ['rm', [3]],
      ['rv', [3]],
      ['dy', [2, 3]],
      ['dm', [3]],
    ] as const)
      g.input(n, s);
    g.op('batchnorm', ['x', 'gamma', 'beta', 'rm', 'rv'], {}, 'bn');
    expect(() => RULES.get('batchnorm')!(args(g, ['dy'], [true, true, true, true, false]))).toThrow(
      /input 3 \("rm"\) is a running statistic/,
    );
    const h = new Graph();
    for (const n of ['x', 'gamma', 'beta', 'dy', 'dm']) h.input(n, g.shape(n));
    h.add('batchnorm_train', ['x', 'gamma', 'beta'], {}, 'bnt');
    expect(() => RULES.get('batchnorm_train')!(args(h, ['dy', 'dm', undefined], [true, true, true]))).toThrow(
      /gradient flows into its batch mean or variance/,
    );
  });
});
