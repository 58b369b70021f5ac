// Optimiser kernels against PyTorch's update formulas (torch.optim.SGD and AdamW, transcribed
// here in double precision as torch writes them, first momentum step by cloning included), over
// several steps on the GPU with the parameters and slots persisting between runs; clipping and
// the running-statistics update against their references.

import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import { HYPER, hyperFor } from '../../kernels/backward/optim.js';
import { getOp } from '../../kernels/index.js';
import { expectClose, rand, randTensor, runOp, testDevice } from '../helpers.js';

const N = 37;
const STEPS = 4;
const lrs = [0.1, 0.05, 0.2, 0.01];
const grads = [0, 1, 2, 3].map((k) => rand(N, 100 + k, -2, 2));

/** torch.optim.SGD's step for one tensor (dampening 0). */
function torchSgd(p: number[], gs: Float32Array[], o: { momentum: number; nesterov: boolean; wd: number }) {
  let buf: number[] | undefined;
  for (let s = 0; s < gs.length; s++) {
    let d = p.map((x, i) => gs[s][i] + o.wd * x);
    if (o.momentum !== 0) {
      buf = buf === undefined ? [...d] : buf.map((b, i) => o.momentum * b + d[i]);
      d = o.nesterov ? d.map((x, i) => x + o.momentum * buf![i]) : buf;
    }
    p = p.map((x, i) => x - lrs[s] * d[i]);
  }
  return { p, buf: buf! };
}

/** torch.optim.AdamW's step for one tensor (amsgrad off). */
function torchAdamw(p: number[], gs: Float32Array[], o: { b1: number; b2: number; eps: number; wd: number }) {
  let m = p.map(() => 0);
  let v = p.map(() => 0);
  for (let s = 0; s < gs.length; s++) {
    const lr = lrs[s];
    const step = s + 1;
    p = p.map((x) => x * (1 - lr * o.wd));
    m = m.map((x, i) => x + (gs[s][i] - x) * (1 - o.b1)); // lerp
    v = v.map((x, i) => x * o.b2 + (1 - o.b2) * gs[s][i] * gs[s][i]);
    const bc1 = 1 - o.b1 ** step;
    const bc2sqrt = Math.sqrt(1 - o.b2 ** step);
    p = p.map((x, i) => x - (lr / bc1) * (m[i] / (Math.sqrt(v[i]) / bc2sqrt + o.eps)));
  }
  return { p, m, v };
}

/** STEPS runs of one optimiser node whose outputs update its parameter and slots; the final values. */
async function runSteps(
  op: string,
  attrs: Record<string, unknown>,
  p0: Float32Array,
  slots: string[],
  betas?: [number, number],
) {
  const g = new Graph();
  g.param('p', [N], p0);
  for (const s of slots) g.param(s, [N], new Float32Array(N));
  g.input('g', [N]);
  g.input('hyper', [HYPER.length]);
  const outs = g.add(op, ['p', 'g', ...slots, 'hyper'], attrs, 'opt');
  ['p', ...slots].forEach((t, i) => {
    g.update(t, outs[i]);
  });
  g.markOutputs(outs[0]);
  const plan = await compile(await testDevice(), g);
  try {
    for (let s = 0; s < STEPS; s++) {
      await plan.run({ g: grads[s], hyper: hyperFor(lrs[s], 1, s + 1, betas) });
    }
    return await plan.readParams();
  } finally {
    plan.dispose();
  }
}

const vec = (a: number[]) => ({ shape: [N], data: new Float32Array(a) });
const tol = { atol: 1e-6, rtol: 2e-5 };

describe('sgd_update', () => {
  for (const o of [
    { momentum: 0.9, nesterov: false, wd: 1e-4 },
    { momentum: 0.9, nesterov: true, wd: 0.01 },
    { momentum: 0, nesterov: false, wd: 0 },
  ]) {
    it(`matches torch.optim.SGD over ${STEPS} steps (momentum ${o.momentum}, nesterov ${o.nesterov}, wd ${o.wd})`, async () => {
      const p0 = rand(N, 7);
      const want = torchSgd([...p0], grads, o);
      const got = await runSteps('sgd_update', { momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.wd }, p0, [
        'p#momentum',
      ]);
      expectClose(got.get('p')!, vec(want.p), tol, 'parameter');
      expectClose(got.get('p#momentum')!, vec(want.buf), tol, 'momentum buffer');
    });
  }

  it('gradScale multiplies the gradient (accumulated micro-batches, clipping)', () => {
    const p = randTensor([N], 8);
    const g = randTensor([N], 9);
    const hyper = { shape: [4], data: new Float32Array([0.1, 0.25, 1, 0]) };
    const attrs = { momentum: 0.5, weightDecay: 0 };
    const [a] = getOp('sgd_update').ref(attrs, [p, g, { shape: [N], data: new Float32Array(N) }, hyper]);
    const scaled = { shape: [N], data: g.data.map((x) => x * 0.25) };
    const [b] = getOp('sgd_update').ref(attrs, [
      p,
      scaled,
      { shape: [N], data: new Float32Array(N) },
      { ...hyper, data: new Float32Array([0.1, 1, 1, 0]) },
    ]);
    expectClose(a, b, { atol: 1e-7, rtol: 1e-6 });
  });
});

describe('adamw_update', () => {
  for (const o of [
    { b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01 },
    { b1: 0.8, b2: 0.95, eps: 1e-6, wd: 0.1 },
  ]) {
    it(`matches torch.optim.AdamW over ${STEPS} steps (betas ${o.b1}, ${o.b2}, wd ${o.wd})`, async () => {
      const p0 = rand(N, 10);
      const want = torchAdamw([...p0], grads, o);
      const attrs = { beta1: o.b1, beta2: o.b2, eps: o.eps, weightDecay: o.wd };
      const got = await runSteps('adamw_update', attrs, p0, ['p#m', 'p#v'], [o.b1, o.b2]);
      expectClose(got.get('p')!, vec(want.p), { atol: 2e-6, rtol: 2e-5 }, 'parameter');
      expectClose(got.get('p#m')!, vec(want.m), tol, 'first moment');
      expectClose(got.get('p#v')!, vec(want.v), tol, 'second moment');
    });
  }
});

describe('sum_squares, grad_clip_scale, ema_update', () => {
  it('sum of squares of 1031 elements, with and without a running sum', async () => {
    const x = randTensor([1031], 11);
    const acc = { shape: [1], data: new Float32Array([2.5]) };
    const [a] = await runOp('sum_squares', {}, [x]);
    const [b] = await runOp('sum_squares', {}, [x, acc]);
    const want = getOp('sum_squares').ref({}, [x])[0];
    expectClose(a, want, { atol: 1e-5, rtol: 1e-5 });
    expectClose(b, { shape: [1], data: new Float32Array([want.data[0] + 2.5]) }, { atol: 1e-5, rtol: 1e-5 });
  });

  it('hyper holds AdamW bias corrections computed in double precision', () => {
    const h = hyperFor(0.1, 1, 3, [0.9, 0.999]);
    expect(h[HYPER.bc1]).toBe(Math.fround(1 - 0.9 ** 3));
    expect(h[HYPER.bc2]).toBe(Math.fround(1 - 0.999 ** 3));
  });

  it('clips as clip_grad_norm_ does: coefficient maxNorm / (‖g‖ + 1e-6), at most 1', async () => {
    const hyper = { shape: [4], data: new Float32Array([0.3, 0.5, 7, 0]) };
    // ‖g‖ = √16 · 0.5 = 2 > maxNorm 1: gradScale 0.5 · 1/(2 + 1e-6).
    const [y] = await runOp('grad_clip_scale', { maxNorm: 1 }, [{ shape: [1], data: new Float32Array([16]) }, hyper]);
    expect(y.data[0]).toBeCloseTo(0.3, 7);
    expect(y.data[1]).toBeCloseTo(0.5 / (2 + 1e-6), 7);
    expect(y.data[2]).toBe(7);
    const [z] = await runOp('grad_clip_scale', { maxNorm: 5 }, [{ shape: [1], data: new Float32Array([16]) }, hyper]);
    expect(z.data[1]).toBe(0.5);
  });

  it('running statistics: (1 − m)·r + m·scale·b', async () => {
    const r = randTensor([13], 12);
    const b = randTensor([13], 13, 0, 2);
    const attrs = { momentum: 0.1, scale: 16 / 15 };
    const [y] = await runOp('ema_update', attrs, [r, b]);
    const want = { shape: [13], data: r.data.map((v, i) => 0.9 * v + 0.1 * (16 / 15) * b.data[i]) };
    expectClose(y, want, { atol: 1e-6, rtol: 1e-6 });
  });
});
