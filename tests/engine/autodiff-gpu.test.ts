// The backward graph compiled and run on the GPU (SwiftShader) equals the same graph run with
// the references: a ViT-like block (class token concat, position embedding, attention by batched
// matmuls, softmax, slices, residual add + ReLU) and a small CNN head (pad, activation, pooling).

import { describe, it } from 'vitest';
import { grad } from '../../engine/autodiff.js';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import { expectClose, rand, testDevice } from '../helpers.js';

function vitBlock(): { g: Graph; loss: string; wrt: string[]; feeds: Record<string, Float32Array> } {
  const g = new Graph();
  const [B, T, D, K] = [3, 5, 6, 7];
  g.input('x', [B, T, D]);
  g.input('t', [B, K]);
  g.constant('cls', [1, 1, D], rand(D, 1));
  g.constant('pos', [1, T + 1, D], rand((T + 1) * D, 2));
  g.constant('wqkv', [D, 3 * D], rand(D * 3 * D, 3, -0.5, 0.5));
  g.constant('bqkv', [3 * D], rand(3 * D, 4, -0.1, 0.1));
  g.constant('wo', [D, D], rand(D * D, 5, -0.5, 0.5));
  g.constant('head', [K, D], rand(K * D, 6, -0.5, 0.5)); // transB: [N, K] = [classes, D]
  let h = g.op('concat', ['cls', 'x'], { axis: 1 }, 'cat');
  h = g.op('add', [h, 'pos'], {}, 'pos_add');
  const qkv = g.op('matmul', [h, 'wqkv', 'bqkv'], {}, 'qkv');
  const q = g.op('slice', [qkv], { axis: 2, start: 0, end: D }, 'q');
  const k = g.op('slice', [qkv], { axis: 2, start: D, end: 2 * D }, 'k');
  const v = g.op('slice', [qkv], { axis: 2, start: 2 * D, end: 3 * D }, 'v');
  const a = g.op('softmax', [g.op('matmul', [q, k], { transB: true }, 'scores')], {}, 'attn');
  const o = g.op('transpose', [g.op('matmul', [a, v], {}, 'ctx')], { perm: [0, 2, 1] }, 'ctx_t');
  const back = g.op('transpose', [o], { perm: [0, 2, 1] }, 'ctx_tt');
  const res = g.op('add', [h, g.op('matmul', [back, 'wo'], { act: 'gelu' }, 'proj')], { act: 'relu' }, 'res');
  const pooled = g.op(
    'reshape',
    [g.op('slice', [res], { axis: 1, start: 0, end: 1 }, 'pool')],
    { shape: [B, D] },
    'flat',
  );
  const logits = g.op('matmul', [pooled, 'head'], { transB: true }, 'logits');
  const loss = g.op('softmax_xent', [logits, 't'], {}, 'loss');
  const t = new Float32Array(B * K);
  for (let i = 0; i < B; i++) t[i * K + ((2 * i) % K)] = 1;
  return { g, loss, wrt: ['cls', 'pos', 'wqkv', 'bqkv', 'wo', 'head', 'x'], feeds: { x: rand(B * T * D, 7), t } };
}

function cnnHead(): { g: Graph; loss: string; wrt: string[]; feeds: Record<string, Float32Array> } {
  const g = new Graph();
  g.input('x', [2, 5, 3, 6]);
  g.input('t', [2, 3]);
  g.constant('w', [6, 3], rand(18, 11));
  g.constant('b', [3], rand(3, 12));
  const p = g.op('pad', ['x'], { pad: [1, 2, 0, 1] }, 'pad');
  const y = g.op('activation', [p], { act: 'hardswish' }, 'act');
  const m = g.op('global_avgpool', [y], {}, 'gap');
  const logits = g.op('matmul', [m, 'w', 'b'], { act: 'silu' }, 'fc');
  const loss = g.op('softmax_xent', [logits, 't'], {}, 'loss');
  return {
    g,
    loss,
    wrt: ['x', 'w', 'b'],
    feeds: { x: rand(180, 13, -4, 4), t: new Float32Array([0.2, 0.8, 0, 0, 0, 1]) },
  };
}

describe('backward graph on the GPU', () => {
  for (const [name, make] of [
    ['ViT-like block', vitBlock],
    ['CNN head', cnnHead],
  ] as const) {
    it(`${name}: gradients on the GPU equal runReference's`, async () => {
      const { g, loss, wrt, feeds } = make();
      const grads = grad(g, loss, wrt);
      g.markOutputs(loss, ...grads);
      const want = runReference(g, feeds, [loss, ...grads]);
      const plan = await compile(await testDevice(), g);
      try {
        const { outputs } = await plan.run(feeds, { outputs: [loss, ...grads] });
        expectClose(outputs[loss], want[loss], { atol: 1e-5, rtol: 1e-5 }, 'loss');
        grads.forEach((d, i) => {
          expectClose(outputs[d], want[d], { atol: 1e-5, rtol: 1e-3 }, `d${wrt[i]}`);
        });
      } finally {
        plan.dispose();
      }
    });
  }
});
