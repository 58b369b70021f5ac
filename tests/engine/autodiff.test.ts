// Reverse-mode differentiation against central finite differences of runReference: the backward
// graph that grad() appends, run with the ops' references, must give the loss's derivatives.

import { describe, expect, it } from 'vitest';
import { grad, unfuseActivations } from '../../engine/autodiff.js';
import { Graph, runReference } from '../../engine/graph.js';
import { VJP_RULES } from '../../engine/grad/index.js';
import { registerOp } from '../../kernels/index.js';
import { type Activation, numel } from '../../kernels/kernel.js';
import { rand } from '../helpers.js';

interface Case {
  g: Graph;
  loss: string;
  wrt: string[];
  feeds: Record<string, Float32Array>;
}

/** loss = Σ y·r for a fixed random r: a scalar that weighs every element of y differently. */
function project(g: Graph, y: string, seed: number): string {
  const n = numel(g.shape(y));
  const flat = g.op('reshape', [y], { shape: [1, n] }, `${y}.flat`);
  const r = g.constant(`${y}.proj`, [n, 1], rand(n, seed));
  const s = g.op('matmul', [flat, r], {}, `${y}.dot`);
  return g.op('reshape', [s], { shape: [1] }, `${y}.loss`);
}

/** The loss of `c` with value `name` (constant or input) replaced by `data`. */
function lossWith(c: Case, name: string, data: Float32Array): number {
  const v = c.g.value(name);
  if (v.kind === 'input') return runReference(c.g, { ...c.feeds, [name]: data }, [c.loss])[c.loss].data[0];
  const g = c.g.clone();
  g.values.get(name)!.data = data;
  return runReference(g, c.feeds, [c.loss])[c.loss].data[0];
}

/**
 * Every gradient element against (L(x + h) − L(x − h)) / 2h on the forward graph. f32 rounding of
 * the loss over 2h bounds the difference quotient's error near 1e-4 relative, hence the tolerance.
 */
function checkGradients(c: Case, h = 1e-2, tol = { atol: 2e-3, rtol: 2e-2 }): void {
  const g = c.g.clone();
  const grads = grad(g, c.loss, c.wrt);
  const got = runReference(g, c.feeds, grads);
  c.wrt.forEach((w, k) => {
    const v = c.g.value(w);
    const base = v.kind === 'input' ? c.feeds[w] : v.data!;
    const d = got[grads[k]];
    expect(d.shape, `shape of d${w}`).toEqual(v.shape);
    for (let i = 0; i < base.length; i++) {
      const plus = base.slice();
      plus[i] += h;
      const minus = base.slice();
      minus[i] -= h;
      const fd = (lossWith(c, w, plus) - lossWith(c, w, minus)) / (2 * h);
      const err = Math.abs(d.data[i] - fd);
      if (!(err <= tol.atol + tol.rtol * Math.abs(fd)))
        throw new Error(`d${w}[${i}] = ${d.data[i]}, finite difference ${fd} (|d| = ${err.toExponential(2)})`);
    }
  });
}

describe('grad', () => {
  it('an MLP with a fused GELU epilogue and the softmax cross-entropy loss', () => {
    const g = new Graph();
    g.input('x', [5, 7]);
    g.input('t', [5, 3]);
    g.constant('w1', [7, 6], rand(42, 1));
    g.constant('b1', [6], rand(6, 2));
    g.constant('w2', [6, 3], rand(18, 3));
    g.constant('b2', [3], rand(3, 4));
    const h = g.op('matmul', ['x', 'w1', 'b1'], { act: 'gelu' }, 'fc1');
    const logits = g.op('matmul', [h, 'w2', 'b2'], {}, 'fc2');
    const loss = g.op('softmax_xent', [logits, 't'], {}, 'loss');
    // Targets: smoothed one-hot rows (sum 1) and one MixUp-like row.
    const t = new Float32Array(15).fill(0.05);
    [0, 2, 1, 1, 0].forEach((k, r) => {
      t[r * 3 + k] = 0.9;
    });
    checkGradients({ g, loss, wrt: ['w1', 'b1', 'w2', 'b2', 'x'], feeds: { x: rand(35, 5, -2, 2), t } });
  });

  it('a ViT-like block: class token concat, position embedding, attention by matmuls, softmax, slice', () => {
    const g = new Graph();
    const [B, T, D] = [2, 4, 6];
    g.input('x', [B, T, D]);
    g.constant('cls', [1, 1, D], rand(D, 11));
    g.constant('pos', [1, T + 1, D], rand((T + 1) * D, 12));
    g.constant('wqkv', [D, 3 * D], rand(D * 3 * D, 13, -0.5, 0.5));
    g.constant('wo', [D, D], rand(D * D, 14, -0.5, 0.5));
    let t = g.op('concat', ['cls', 'x'], { axis: 1 }, 'cat');
    t = g.op('add', [t, 'pos'], {}, 'pos_add');
    const qkv = g.op('matmul', [t, 'wqkv'], {}, 'qkv');
    const q = g.op('slice', [qkv], { axis: -1, start: 0, end: D }, 'q');
    const k = g.op('slice', [qkv], { axis: 2, start: D, end: 2 * D }, 'k');
    const v = g.op('slice', [qkv], { axis: 2, start: -D, end: 3 * D }, 'v');
    const s = g.op('matmul', [q, k], { transB: true }, 'scores');
    const a = g.op('softmax', [s], {}, 'attn');
    const o = g.op('matmul', [a, v], {}, 'ctx');
    const ot = g.op('transpose', [o], { perm: [0, 2, 1] }, 'ctx_t');
    const back = g.op('transpose', [ot], { perm: [0, 2, 1] }, 'ctx_tt');
    const proj = g.op('matmul', [back, 'wo'], {}, 'proj');
    const res = g.op('add', [t, proj], { act: 'relu' }, 'res');
    const pooled = g.op('slice', [res], { axis: 1, start: 0, end: 1 }, 'pool');
    const loss = project(g, pooled, 15);
    checkGradients({ g, loss, wrt: ['cls', 'pos', 'wqkv', 'wo', 'x'], feeds: { x: rand(B * T * D, 16) } });
  });

  it('batched matmul with broadcast batch dims (both operands) and transB, broadcast add', () => {
    const g = new Graph();
    g.input('a', [2, 1, 3, 4]);
    g.constant('b', [3, 4, 5], rand(60, 21));
    g.constant('c', [3, 4, 5], rand(60, 22)); // transB: [N, K] per batch
    g.constant('bias', [1, 5], rand(5, 23));
    const y = g.op('matmul', ['a', 'b'], {}, 'mm'); // [2,3,3,5]
    const z = g.op('add', [y, 'bias'], {}, 'badd');
    const w = g.op('matmul', [z, 'c'], { transB: true }, 'mmt'); // [2,3,3,4]
    const loss = project(g, w, 24);
    checkGradients({ g, loss, wrt: ['a', 'b', 'c', 'bias'], feeds: { a: rand(24, 25) } });
  });

  it('a shared transB weight, pad, global average pooling and every activation', () => {
    for (const act of ['relu', 'relu6', 'gelu', 'hardswish', 'silu'] as Activation[]) {
      const g = new Graph();
      g.input('x', [2, 3, 2, 5]);
      g.constant('w', [4, 5], rand(20, 31));
      const p = g.op('pad', ['x'], { pad: [1, 0, 2, 1] }, 'pad');
      const y = g.op('activation', [p], { act }, 'act');
      const m = g.op('global_avgpool', [y], {}, 'gap');
      const l = g.op('matmul', [m, 'w'], { transB: true }, 'head');
      const loss = project(g, l, 32);
      // Spread over the kinks of relu6 and hardswish (±3, 6), away from them by more than h.
      const x = rand(60, 33, -7.5, 7.5).map((v) => (Math.abs(v - Math.round(v)) < 0.05 ? v + 0.1 : v));
      checkGradients({ g, loss, wrt: ['x', 'w'], feeds: { x } });
    }
  });

  it('sums the gradients of a value read several times, and of x + x', () => {
    const g = new Graph();
    g.constant('w', [3], new Float32Array([1, -2, 0.5]));
    const a = g.op('add', ['w', 'w'], {}, 'twice');
    const b = g.op('add', [a, 'w'], {}, 'thrice');
    const loss = project(g, b, 41);
    const g2 = g.clone();
    const [dw] = grad(g2, loss, ['w']);
    const r = g.value(`${b}.proj`).data!;
    expect([...runReference(g2, {}, [dw])[dw].data].map((v) => +v.toFixed(5))).toEqual(
      [...r].map((v) => +(3 * v).toFixed(5)),
    );
    expect(g2.nodes.filter((n) => n.name.startsWith('w.grad.sum')).length).toBe(2);
  });

  it('unfuses epilogues (keeping the output names), names a missing rule, rejects unreachable values', () => {
    const g = new Graph();
    g.input('x', [2, 3]);
    g.constant('w', [3, 3], rand(9, 51));
    g.constant('u', [3], rand(3, 52));
    const y = g.op('matmul', ['x', 'w'], { act: 'silu' }, 'fc');
    unfuseActivations(g);
    expect(g.nodes.map((n) => [n.name, n.op, n.attrs.act])).toEqual([
      ['fc.pre', 'matmul', 'none'],
      ['fc', 'activation', 'silu'],
    ]);
    expect(y).toBe('fc');

    registerOp({
      op: 'test_identity_without_rule',
      arity: [1, 1],
      infer: (_a, [x]) => [x],
      lower: () => ({ dispatches: [] }),
      ref: (_a, [x]) => [x],
      alias: true,
    });
    expect(VJP_RULES.has('test_identity_without_rule')).toBe(false);
    const z = g.op('test_identity_without_rule', [y], {}, 'mystery');
    const loss = project(g, z, 53);
    expect(() => grad(g.clone(), loss, ['w'])).toThrow(
      /no VJP rule for op "test_identity_without_rule" \(node "mystery"\)/,
    );
    const l2 = project(g, y, 54);
    expect(() => grad(g.clone(), l2, ['w', 'u'])).toThrow(/"u" does not reach the loss/);
    expect(() => grad(g.clone(), y, ['w'])).toThrow(/must have one element/);
  });
});
