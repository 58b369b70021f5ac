// The fine-tuning loop driven by a plain-TS trainer that really trains (a linear softmax head on
// host features, SGD with momentum as PyTorch's), through the same data order, MixUp, targets,
// schedule and checkpoint code a GPU run uses.

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mixupRef } from '../../kernels/augment.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { rngNormal } from '../../eval/rng.js';
import { mixupPairs } from '../../eval/finetune/augment.js';
import { mixTargets, oneHotTargets, protocolPhases, stepItems } from '../../eval/finetune/data.js';
import { type EvalFeed, finetuneLoop, type TrainFeed } from '../../eval/finetune/run.js';
import { bitHyperRuleSchedule } from '../../eval/finetune/schedule.js';
import type { TrainerLike } from '../../eval/finetune/types.js';

/** Softmax regression y = xW + b trained by SGD with momentum (buf = m·buf + g; p −= lr·buf). */
class LinearSoftmaxTrainer implements TrainerLike {
  w: Float32Array;
  b: Float32Array;
  mw: Float32Array;
  mb: Float32Array;
  steps = 0;
  constructor(
    readonly d: number,
    readonly classes: number,
    readonly batch: number,
    readonly momentum = 0.9,
  ) {
    this.w = new Float32Array(d * classes);
    this.b = new Float32Array(classes);
    this.mw = new Float32Array(d * classes);
    this.mb = new Float32Array(classes);
  }
  private logits(x: Float32Array): Float32Array {
    const { d, classes: k } = this;
    const out = new Float32Array(this.batch * k);
    for (let n = 0; n < this.batch; n++)
      for (let c = 0; c < k; c++) {
        let s = this.b[c];
        for (let i = 0; i < d; i++) s += x[n * d + i] * this.w[i * k + c];
        out[n * k + c] = s;
      }
    return out;
  }
  /** Gradients of the mean loss over this batch, and the loss. */
  private grads(x: Float32Array, t: Float32Array) {
    const { d, classes: k, batch: N } = this;
    const z = this.logits(x);
    const gw = new Float32Array(d * k),
      gb = new Float32Array(k);
    let loss = 0;
    for (let n = 0; n < N; n++) {
      const row = z.subarray(n * k, (n + 1) * k);
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
      for (let c = 0; c < k; c++) {
        const p = Math.exp(row[c] - lse);
        loss -= t[n * k + c] * (row[c] - lse);
        const g = (p - t[n * k + c]) / N;
        gb[c] += g;
        for (let i = 0; i < d; i++) gw[i * k + c] += g * x[n * d + i];
      }
    }
    return { gw, gb, loss: loss / N };
  }
  private update(gw: Float32Array, gb: Float32Array, lr: number) {
    for (const [p, buf, g] of [
      [this.w, this.mw, gw],
      [this.b, this.mb, gb],
    ] as const)
      for (let i = 0; i < p.length; i++) {
        buf[i] = this.momentum * buf[i] + g[i];
        p[i] -= lr * buf[i];
      }
    this.steps++;
  }
  async step(x: Float32Array, t: Float32Array, lr: number) {
    const { gw, gb, loss } = this.grads(x, t);
    this.update(gw, gb, lr);
    return { loss };
  }
  accW = new Float32Array(0);
  accB = new Float32Array(0);
  async accumulate(x: Float32Array, t: Float32Array) {
    const { gw, gb, loss } = this.grads(x, t);
    if (!this.accW.length) {
      this.accW = new Float32Array(gw.length);
      this.accB = new Float32Array(gb.length);
    }
    gw.forEach((g, i) => (this.accW[i] += g));
    gb.forEach((g, i) => (this.accB[i] += g));
    return { loss };
  }
  async apply(lr: number, microBatches: number) {
    this.update(
      this.accW.map((g) => g / microBatches),
      this.accB.map((g) => g / microBatches),
      lr,
    );
    this.accW = new Float32Array(0);
    this.accB = new Float32Array(0);
  }
  async predict(x: Float32Array) {
    return this.logits(x);
  }
  async readState() {
    const t = (shape: number[], data: Float32Array): HostTensor => ({ shape, data: data.slice() });
    return new Map([
      ['head.weight', t([this.d, this.classes], this.w)],
      ['head.bias', t([this.classes], this.b)],
      ['head.weight#momentum', t([this.d, this.classes], this.mw)],
      ['head.bias#momentum', t([this.classes], this.mb)],
      ['step', t([1], Float32Array.of(this.steps))],
    ]);
  }
  async writeState(s: Map<string, HostTensor>) {
    const get = (n: string) => {
      const v = s.get(n);
      if (!v) throw new Error(`state has no ${n}`);
      return v.data;
    };
    this.w.set(get('head.weight'));
    this.b.set(get('head.bias'));
    this.mw.set(get('head.weight#momentum'));
    this.mb.set(get('head.bias#momentum'));
    this.steps = get('step')[0];
  }
  dispose() {}
}

// Three Gaussian clusters in 5-D, 40 per class, with a held-out set from the same clusters.
const D = 5,
  K = 3,
  B = 8;
function cluster(n: number, id0: number) {
  const x = new Float32Array(n * D),
    y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % K;
    for (let j = 0; j < D; j++) x[i * D + j] = (j === y[i] ? 2 : 0) + 1.2 * rngNormal(3, id0 + i, 0, j);
  }
  return { x, y, n };
}
const pool = cluster(120, 0);
const test = cluster(60, 10_000);

/** Host features, MixUp on the features (mixupRef, as the GPU op) and mixed one-hot targets. */
function featureFeed(alpha: number, smoothing: number, seed: number): TrainFeed {
  return {
    async batch(step, items) {
      const x = new Float32Array(items.length * D);
      items.forEach((p, i) => x.set(pool.x.subarray(p * D, (p + 1) * D), i * D));
      let t = oneHotTargets(
        items.map((p) => pool.y[p]),
        K,
        smoothing,
      );
      if (alpha === 0) return { x, targets: t };
      const pairs = mixupPairs(alpha, items.length, seed, step);
      t = mixTargets(t, K, pairs);
      return { x: mixupRef({ shape: [items.length, D], data: x }, pairs).data, targets: t };
    },
  };
}

function setFeed(split: 'val' | 'test', s: { x: Float32Array; y: Int32Array; n: number }): EvalFeed {
  return {
    split,
    async *batches(batch) {
      for (let i = 0; i < s.n; i += batch) {
        const x = new Float32Array(batch * D);
        const m = Math.min(batch, s.n - i);
        x.set(s.x.subarray(i * D, (i + m) * D));
        yield { x, labels: s.y.subarray(i, i + m) };
      }
    },
  };
}

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'cnnlab-ft-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('data order', () => {
  it('each epoch visits the pool once in a seeded order that depends on (seed, step) only', () => {
    const n = 13,
      seen = [] as number[];
    for (let s = 0; s < 13; s++) seen.push(...stepItems(n, 3, s, 5)); // 39 = 3 epochs
    for (let e = 0; e < 3; e++)
      expect([...seen.slice(e * n, (e + 1) * n)].sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
    expect(seen.slice(0, n)).not.toEqual(seen.slice(n, 2 * n));
    expect(stepItems(n, 3, 7, 5)).toEqual(seen.slice(21, 24));
    expect(stepItems(n, 3, 7, 6)).not.toEqual(seen.slice(21, 24));
  });

  it('targets: one-hot, smoothed, MixUp-mixed rows sum to 1', () => {
    const t = oneHotTargets([2, 0], 4, 0.1);
    expect(Array.from(t)).toEqual([0.025, 0.025, 0.925, 0.025, 0.925, 0.025, 0.025, 0.025].map(Math.fround));
    const m = mixTargets(t, 4, Float32Array.from([1, 0.75, 0, 0.75]));
    expect(m[0] + m[1] + m[2] + m[3]).toBeCloseTo(1, 6);
    expect(m[2]).toBeCloseTo(0.75 * 0.925 + 0.25 * 0.025, 6);
    expect(() => oneHotTargets([4], 4)).toThrow(/label 4/);
  });

  it('vtab1k: an 800/200 check on the chosen 1000, then a refit on them', () => {
    const labels = Array.from({ length: 1100 }, (_, i) => i % 7);
    const { phases } = protocolPhases('vtab1k', labels, 0);
    expect(phases.map((p) => [p.name, p.train.length, p.val.length])).toEqual([
      ['check', 800, 200],
      ['refit', 1000, 0],
    ]);
    expect(new Set([...phases[0].train, ...phases[0].val])).toEqual(new Set(phases[1].train));
    expect(() => protocolPhases('vtab1k', labels.slice(0, 500), 0)).toThrow(/1000/);
    expect(protocolPhases('vtab1k', labels.slice(0, 500), 0, { allowFewer: true }).note).toMatch(/500/);
  });
});

describe('finetuneLoop', () => {
  const sc = bitHyperRuleSchedule(pool.n, { batch: B, steps: 40, baseLr: 0.003 * 512 });
  const run = (dir: string | undefined, o: { stopAfter?: number; resume?: boolean } = {}) => {
    const trainer = new LinearSoftmaxTrainer(D, K, B);
    return finetuneLoop({
      trainer,
      schedule: sc,
      feed: featureFeed(0.2, 0.05, 9),
      train: [...pool.y.keys()],
      seed: 9,
      dataKey: 'clusters-120',
      evals: [setFeed('val', test), setFeed('test', test)],
      evalEvery: 10,
      checkpointEvery: 5,
      dir,
      ...o,
    }).then((r) => ({ r, trainer }));
  };

  it('trains: the loss falls and test accuracy beats chance by far', async () => {
    const { r } = await run(undefined);
    expect(r.complete).toBe(true);
    expect(r.progress.loss).toHaveLength(40);
    const first = r.progress.loss.slice(1, 6).reduce((a, b) => a + b) / 5;
    const last = r.progress.loss.slice(-5).reduce((a, b) => a + b) / 5;
    expect(last).toBeLessThan(0.8 * first);
    const fin = r.progress.evals.filter((e) => e.step === 40);
    expect(fin.map((e) => e.split)).toEqual(['val', 'test']);
    expect(fin[1].accuracy).toBeGreaterThan(0.7);
    expect(r.progress.evals.filter((e) => e.split === 'val').map((e) => e.step)).toEqual([10, 20, 30, 40]);
  });

  it('a run killed after k steps and resumed ends bit for bit as an uninterrupted one', async () => {
    const whole = await run(tmp());
    for (const k of [5, 7, 23]) {
      const dir = tmp();
      const cut = await run(dir, { stopAfter: k });
      expect(cut.r.complete).toBe(false);
      // A kill loses the steps after the last checkpoint: the resume repeats them.
      const resumed = await run(dir, { resume: true });
      expect(resumed.r.resumedFrom).toBe(Math.floor(k / 5) * 5);
      expect(resumed.r.complete).toBe(true);
      expect(resumed.r.progress.loss).toEqual(whole.r.progress.loss);
      expect(resumed.r.progress.lr).toEqual(whole.r.progress.lr);
      expect(resumed.r.progress.evals).toEqual(whole.r.progress.evals);
      expect(Array.from(resumed.trainer.w)).toEqual(Array.from(whole.trainer.w));
      expect(Array.from(resumed.trainer.b)).toEqual(Array.from(whole.trainer.b));
      expect(Array.from(resumed.trainer.mw)).toEqual(Array.from(whole.trainer.mw));
      expect(resumed.trainer.steps).toBe(40);
      expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    }
  });

  it('micro-batches: 2 × 4 accumulated equal one batch of 8 (to rounding), and resume stays exact', async () => {
    const go = (batch: number, micro: number, dir?: string, o: { stopAfter?: number; resume?: boolean } = {}) => {
      const trainer = new LinearSoftmaxTrainer(D, K, batch);
      return finetuneLoop({
        trainer,
        schedule: sc,
        feed: featureFeed(0, 0.05, 9),
        train: [...pool.y.keys()],
        microBatches: micro,
        seed: 9,
        dataKey: 'clusters-120',
        checkpointEvery: 5,
        dir,
        ...o,
      }).then((r) => ({ r, trainer }));
    };
    const one = await go(8, 1);
    const two = await go(4, 2);
    two.r.progress.loss.forEach((l, i) => expect(l).toBeCloseTo(one.r.progress.loss[i], 5));
    two.trainer.w.forEach((v, i) => expect(v).toBeCloseTo(one.trainer.w[i], 5));
    const dir = tmp();
    await go(4, 2, dir, { stopAfter: 12 });
    const resumed = await go(4, 2, dir, { resume: true });
    expect(resumed.r.resumedFrom).toBe(10);
    expect(resumed.r.progress.loss).toEqual(two.r.progress.loss);
    expect(Array.from(resumed.trainer.w)).toEqual(Array.from(two.trainer.w));
  });

  it('refuses to resume with another seed or other data', async () => {
    const dir = tmp();
    await run(dir, { stopAfter: 5 });
    const trainer = new LinearSoftmaxTrainer(D, K, B);
    const base = { trainer, schedule: sc, feed: featureFeed(0, 0, 1), train: [0, 1, 2], dir, resume: true };
    await expect(finetuneLoop({ ...base, seed: 1, dataKey: 'clusters-120' })).rejects.toThrow(/seed 9, not 1/);
    await expect(finetuneLoop({ ...base, seed: 9, dataKey: 'other' })).rejects.toThrow(/other data/);
  });
});
