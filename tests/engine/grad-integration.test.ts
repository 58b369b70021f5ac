// End-to-end autodiff over mixed graphs: the basic rules (autodiff) and the norm/attention rules together,
// checked by central finite differences of runReference and by the same backward graph on the GPU.

import { expect, it } from 'vitest';
import { grad } from '../../engine/autodiff.js';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import { expectClose, rand, testDevice } from '../helpers.js';

interface Case {
  g: Graph;
  loss: string;
  wrt: string[];
  feeds: Record<string, Float32Array>;
}
function lossWith(c: Case, name: string, data: Float32Array): number {
  const v = c.g.value(name);
  if (v.kind === 'input') return runReference(c.g, { ...c.feeds, [name]: data }, [c.loss])[c.loss].data[0];
  const g = c.g.clone();
  g.values.get(name)!.data = data;
  return runReference(g, c.feeds, [c.loss])[c.loss].data[0];
}
async function check(c: Case, h = 1e-2, tol = { atol: 2e-3, rtol: 2e-2 }) {
  const g = c.g.clone();
  const grads = grad(g, c.loss, c.wrt);
  const got = runReference(g, c.feeds, grads);
  c.wrt.forEach((w, k) => {
    const v = c.g.value(w);
    const base = v.kind === 'input' ? c.feeds[w] : v.data!;
    const d = got[grads[k]];
    expect(d.shape).toEqual(v.shape);
    for (let i = 0; i < base.length; i++) {
      const plus = base.slice();
      plus[i] += h;
      const minus = base.slice();
      minus[i] -= h;
      const fd = (lossWith(c, w, plus) - lossWith(c, w, minus)) / (2 * h);
      const err = Math.abs(d.data[i] - fd);
      if (!(err <= tol.atol + tol.rtol * Math.abs(fd))) throw new Error(`d${w}[${i}] = ${d.data[i]}, fd ${fd}`);
    }
  });
  g.markOutputs(...grads);
  const plan = await compile(await testDevice(), g);
  const { outputs } = await plan.run(c.feeds);
  grads.forEach((d) => expectClose(outputs[d], got[d], { atol: 1e-4, rtol: 1e-3 }, d));
  plan.dispose();
}
const onehot = (n: number, k: number) => {
  const t = new Float32Array(n * k);
  for (let i = 0; i < n; i++) t[i * k + (i % k)] = 1;
  return t;
};

it('ViT block through grad()', async () => {
  const g = new Graph();
  const B = 2,
    T = 5,
    D = 21,
    K = 3;
  g.input('x', [B, T, D]);
  g.input('t', [B, K]);
  const c = (n: string, s: number[], seed: number, lo = -0.5, hi = 0.5) =>
    g.constant(
      n,
      s,
      rand(
        s.reduce((a, b) => a * b, 1),
        seed,
        lo,
        hi,
      ),
    );
  c('g1', [D], 1, 0.5, 1.5);
  c('b1', [D], 2);
  c('wqkv', [D, 3 * D], 3);
  c('bqkv', [3 * D], 4);
  c('wp', [D, D], 5);
  c('g2', [D], 6, 0.5, 1.5);
  c('b2', [D], 7);
  c('wh', [D, K], 8);
  const h = g.op('layernorm', ['x', 'g1', 'b1'], { eps: 1e-6 }, 'norm1');
  const qkv = g.op('matmul', [h, 'wqkv', 'bqkv'], {}, 'qkv');
  const a = g.op('attention', [qkv], { heads: 3 }, 'attn');
  const p = g.op('matmul', [a, 'wp'], {}, 'proj');
  const r = g.op('add', ['x', p], {}, 'res');
  const n2 = g.op('layernorm', [r, 'g2', 'b2'], { eps: 1e-6, act: 'gelu' }, 'norm2');
  const cls = g.op('slice', [n2], { axis: 1, start: 0, end: 1 }, 'cls');
  const f = g.op('reshape', [cls], { shape: [B, D] }, 'flat');
  const logits = g.op('matmul', [f, 'wh'], {}, 'head');
  const loss = g.op('softmax_xent', [logits, 't'], {}, 'loss');
  await check({
    g,
    loss,
    wrt: ['g1', 'b1', 'wqkv', 'bqkv', 'wp', 'g2', 'b2', 'x'],
    feeds: { x: rand(B * T * D, 9, -1, 1), t: onehot(B, K) },
  });
});

it('CNN head: batchnorm_train -> group_norm(relu) -> batchnorm(frozen) -> pool -> fc', async () => {
  const g = new Graph();
  const C = 6,
    K = 3;
  g.input('x', [2, 3, 4, C]);
  g.input('t', [2, K]);
  const c = (n: string, s: number[], seed: number, lo = -0.5, hi = 0.5) =>
    g.constant(
      n,
      s,
      rand(
        s.reduce((a, b) => a * b, 1),
        seed,
        lo,
        hi,
      ),
    );
  c('g1', [C], 1, 0.5, 1.5);
  c('b1', [C], 2);
  c('g2', [C], 3, 0.5, 1.5);
  c('b2', [C], 4);
  c('g3', [C], 5, 0.5, 1.5);
  c('b3', [C], 6);
  c('rm', [C], 7);
  c('rv', [C], 8, 0.5, 1.5);
  c('w', [C, K], 9);
  const [y] = g.add('batchnorm_train', ['x', 'g1', 'b1'], { eps: 1e-3 }, 'bn1');
  const z = g.op('group_norm', [y, 'g2', 'b2'], { groups: 3, act: 'relu' }, 'gn');
  const u = g.op('batchnorm', [z, 'g3', 'b3', 'rm', 'rv'], {}, 'bn2');
  const pooled = g.op('global_avgpool', [u], {}, 'pool');
  const f = g.op('reshape', [pooled], { shape: [2, C] }, 'flat');
  const logits = g.op('matmul', [f, 'w'], {}, 'fc');
  const loss = g.op('softmax_xent', [logits, 't'], {}, 'loss');
  await check({
    g,
    loss,
    wrt: ['g1', 'b1', 'g2', 'b2', 'g3', 'b3', 'w', 'x'],
    feeds: { x: rand(144, 10, -2, 2), t: onehot(2, K) },
  });
});
