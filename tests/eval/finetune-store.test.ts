// finetuneLoop with an injected CheckpointStore (what a run without files, e.g. the page, or
// another storage would pass): saves go to the store by file name, a resume reads them back and
// ends exactly as an uninterrupted run; without a dir or a store nothing is written at all.

import { describe, expect, it } from 'vitest';
import { bufferSource, openSafetensors } from '../../engine/safetensors.js';
import type { CheckpointStore } from '../../eval/finetune/checkpoint.js';
import { oneHotTargets } from '../../eval/finetune/data.js';
import { FINAL_WEIGHTS, finetuneLoop, STATE_FILE, type TrainFeed } from '../../eval/finetune/run.js';
import { bitHyperRuleSchedule } from '../../eval/finetune/schedule.js';
import type { TrainerLike } from '../../eval/finetune/types.js';
import type { HostTensor } from '../../kernels/kernel.js';

const K = 3,
  N = 2;

/** Logits = b for every example: plain SGD on the mean cross-entropy (gradient softmax(b) − mean target). */
function biasTrainer(): TrainerLike & { b: Float32Array } {
  const b = new Float32Array(K);
  const grad = (t: Float32Array) => {
    const m = Math.max(...b);
    const z = b.reduce((a, v) => a + Math.exp(v - m), 0);
    const p = Array.from(b, (v) => Math.exp(v - m) / z);
    let loss = 0;
    const g = new Float32Array(K);
    for (let n = 0; n < N; n++)
      for (let c = 0; c < K; c++) {
        loss -= (t[n * K + c] * Math.log(p[c])) / N;
        g[c] += (p[c] - t[n * K + c]) / N;
      }
    return { g, loss };
  };
  return {
    b,
    batch: N,
    classes: K,
    stateNames: ['head.bias'],
    async step(_x, t, lr) {
      const { g, loss } = grad(t);
      g.forEach((v, c) => (b[c] -= lr * v));
      return { loss };
    },
    async accumulate() {
      throw new Error('not used');
    },
    async apply() {
      throw new Error('not used');
    },
    async predict() {
      return Float32Array.from({ length: N * K }, (_, i) => b[i % K]);
    },
    async readState() {
      return new Map<string, HostTensor>([['head.bias', { shape: [K], data: b.slice() }]]);
    },
    async writeState(s) {
      b.set(s.get('head.bias')!.data);
    },
    dispose() {},
  };
}

/** Labels 0, 0, 1, 2 … (class 0 twice as often): the bias learns the class frequencies. */
const labels = Array.from({ length: 12 }, (_, i) => [0, 0, 1, 2][i % 4]);
const feed: TrainFeed = {
  async batch(_step, items) {
    return {
      x: new Float32Array(items.length),
      targets: oneHotTargets(
        items.map((p) => labels[p]),
        K,
      ),
    };
  },
};
const test = {
  split: 'test' as const,
  async *batches() {
    yield { x: new Float32Array(N), labels: [0, 1] };
  },
};

function memoryStore(): CheckpointStore & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    where: (name) => `memory:${name}`,
    exists: async (name) => files.has(name),
    open: async (name) => openSafetensors(bufferSource(files.get(name)!, name)),
    write: async (name, bytes) => void files.set(name, bytes.slice()),
  };
}

const run = (o: { store?: CheckpointStore; stopAfter?: number; resume?: boolean }, trainer = biasTrainer()) =>
  finetuneLoop({
    trainer,
    schedule: bitHyperRuleSchedule(12, { batch: 256, steps: 12, baseLr: 2 }),
    feed,
    train: labels.map((_, i) => i),
    seed: 4,
    dataKey: 'labels-12',
    evals: [test],
    checkpointEvery: 4,
    weights: {
      model: 'bias',
      requests: [{ name: 'head.bias', shape: [K], kind: 'bias' }],
      mapping: {},
      initial: new Map([['head.bias', new Float32Array(K)]]),
    },
    ...o,
  }).then((r) => ({ r, trainer }));

describe('finetuneLoop with a CheckpointStore', () => {
  it('saves to the store, resumes from it exactly, and writes nothing without one', async () => {
    const whole = await run({});
    expect(whole.r.finalWeights).toBeUndefined();
    expect(whole.r.progress.loss).toHaveLength(12);
    expect(whole.trainer.b[0]).toBeGreaterThan(whole.trainer.b[2]); // class 0 is the most frequent

    const store = memoryStore();
    const cut = await run({ store, stopAfter: 6 });
    expect(cut.r.complete).toBe(false);
    expect([...store.files.keys()].sort()).toEqual(['state.safetensors', 'step-000004.safetensors']);
    const resumed = await run({ store, resume: true });
    expect(resumed.r.resumedFrom).toBe(4);
    expect(resumed.r.progress.loss).toEqual(whole.r.progress.loss);
    expect(resumed.r.progress.evals).toEqual(whole.r.progress.evals);
    expect(Array.from(resumed.trainer.b)).toEqual(Array.from(whole.trainer.b));
    expect(resumed.r.finalWeights).toBe(`memory:${FINAL_WEIGHTS}`);
    const final = await store.open(FINAL_WEIGHTS);
    expect(Array.from((await final.read('head.bias')).data)).toEqual(Array.from(whole.trainer.b));
    expect(store.files.has(STATE_FILE)).toBe(true);
  });
});
