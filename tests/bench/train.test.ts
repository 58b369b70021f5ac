// The training bench: TF.js's training step (bench/peers/tfjs-train.ts, @tensorflow/tfjs on its
// 'cpu' backend in Node) against cnnlab's Trainer (SwiftShader) on a small awkward CNN, step by
// step; the bench's bookkeeping around the pages (order, reference losses, records, speed-ups,
// tables) with a fake page runner; and the CLI's argument checks. The run in headless Chromium
// takes minutes on SwiftShader (every pipeline of a registry model's training step compiles), so
// it is a command in docs/peers.md, not a test.
//
// Tolerance: |Δ| ≤ 1e-4 + 1e-4·|ref| on the losses of three steps and on every weight and BN
// running statistic after them: both engines compute in f32 on a network of a few hundred weights,
// so their differences are rounding (≈1e-6); a wrong gradient, momentum or BN update is off by far
// more (a BN momentum of 0.2 instead of 0.1 fails it).

import * as tf from '@tensorflow/tfjs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { buildTfjsTrainer } from '../../bench/peers/tfjs-train.js';
import { trainView } from '../../bench/report.js';
import { trainTableHtml } from '../../report/bench.js';
import type { TrainEngineResult } from '../../bench/schema.js';
import {
  type TrainJob,
  type TrainRunner,
  formatTrainTable,
  runTrainBench,
  trainTargets,
  trainableOf,
} from '../../bench/train.js';
import { Graph } from '../../engine/graph.js';
import { Trainer } from '../../engine/train.js';
import { useTfjsCpu } from '../tfjs-cpu.js';
import { expectClose, rand, testDevice } from '../helpers.js';

const TOL = { atol: 1e-4, rtol: 1e-4 };

useTfjsCpu();

/**
 * stem conv 3×3 stride 2 (asymmetric pad) → BN(relu6) → depthwise 3×3 → BN → 1×1 conv with bias
 * + residual → maxpool 3×3 s2 pad 1 → global pool → linear; odd sizes, 5 and 7 channels.
 */
function smallCnn(N: number, K: number): { g: Graph; logits: string } {
  const g = new Graph();
  let seed = 1;
  const c = (name: string, shape: number[], lo = -0.5, hi = 0.5) =>
    g.constant(
      name,
      shape,
      rand(
        shape.reduce((a, b) => a * b, 1),
        seed++,
        lo,
        hi,
      ),
    );
  const x = g.input('image', [N, 9, 11, 3]);
  const C = 5;
  c('stem.w', [3, 3, 3, C]);
  c('bn1.g', [C], 0.5, 1.5);
  c('bn1.b', [C]);
  c('bn1.rm', [C], -0.1, 0.1);
  c('bn1.rv', [C], 0.8, 1.2);
  c('dw.w', [3, 3, 1, C]);
  c('bn2.g', [C], 0.5, 1.5);
  c('bn2.b', [C]);
  c('bn2.rm', [C], -0.1, 0.1);
  c('bn2.rv', [C], 0.8, 1.2);
  c('pw.w', [1, 1, C, C]);
  c('pw.b', [C]);
  c('fc.w', [C, K]);
  c('fc.b', [K]);
  const s = g.op('conv2d', [x, 'stem.w'], { stride: [2, 2], pad: [0, 1, 1, 0] }, 'stem');
  const a = g.op('batchnorm', [s, 'bn1.g', 'bn1.b', 'bn1.rm', 'bn1.rv'], { act: 'relu6' }, 'bn1');
  const d = g.op('conv2d', [a, 'dw.w'], { pad: [1, 1, 1, 1], groups: C }, 'dw');
  const b = g.op('batchnorm', [d, 'bn2.g', 'bn2.b', 'bn2.rm', 'bn2.rv'], {}, 'bn2');
  const p = g.op('conv2d', [b, 'pw.w', 'pw.b'], {}, 'pw');
  const r = g.op('add', [p, a], { act: 'relu' }, 'res');
  const m = g.op('maxpool', [r], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }, 'pool');
  const f = g.op('reshape', [g.op('global_avgpool', [m], {}, 'gap')], { shape: [N, C] }, 'flat');
  const logits = g.op('matmul', [f, 'fc.w', 'fc.b'], {}, 'fc');
  g.markOutputs(logits);
  return { g, logits };
}

describe('tfjs training step against cnnlab Trainer', () => {
  it('losses over three steps, then every weight, momentum buffer effect and BN running statistic agree', async () => {
    const [N, K, lr] = [3, 4, 0.1];
    const { g, logits } = smallCnn(N, K);
    const trainable = trainableOf(g);
    expect(trainable).not.toContain('bn1.rm');
    expect(trainable).toContain('fc.b');
    const targets = trainTargets(N, K);
    const x = rand(N * 9 * 11 * 3, 99, -2, 2);
    const device = await testDevice();
    const ours = await Trainer.create(device, g, {
      logits,
      trainable,
      optimizer: { kind: 'sgd', momentum: 0.9, weightDecay: 0 },
      batchNorm: 'train',
    });
    const theirs = buildTfjsTrainer(tf, g, { logits, trainable, lr, momentum: 0.9 });
    try {
      const a: number[] = [],
        b: number[] = [];
      for (let i = 0; i < 3; i++) {
        a.push((await ours.step(x, targets, lr)).loss);
        b.push(await theirs.step(x, targets));
      }
      // The loss must move, or the later steps would not test the update.
      expect(Math.abs(a[2] - a[0])).toBeGreaterThan(1e-2);
      expectClose(
        { shape: [3], data: Float32Array.from(b) },
        { shape: [3], data: Float32Array.from(a) },
        TOL,
        'losses',
      );
      const state = await ours.readState();
      for (const name of [...trainable, 'bn1.rm', 'bn1.rv', 'bn2.rm', 'bn2.rv']) {
        const v = theirs.variables.get(name)!;
        expectClose({ shape: [...v.shape], data: v.dataSync() as Float32Array }, state.get(name)!, TOL, name);
      }
    } finally {
      theirs.dispose();
      ours.dispose();
    }
  });
});

/** A finished engine row as the page would return it (losses, clocks, memory). */
function row(losses: number[], median: number, extra: Partial<TrainEngineResult> = {}): TrainEngineResult {
  return {
    status: 'ok',
    load_ms: 5,
    cold_ms: 10 * median,
    median_ms: median,
    min_ms: median,
    p90_ms: median,
    runs_ms: [median],
    losses,
    loss_match: null,
    peak_memory_bytes: 3 << 20,
    memory_what: 'what the number counts',
    ...extra,
  };
}

describe('the training bench around the pages', () => {
  it('runs cnnlab first and hands its losses to TF.js as the reference; records, speed-ups, table and report', async () => {
    const jobs: TrainJob[] = [];
    const run: TrainRunner = async (job) => {
      jobs.push(job);
      return job.engine === 'cnnlab'
        ? { result: row([6.9, 5.1], 40, { optimizer_bytes: 1 << 20 }) }
        : {
            result: row([6.9001, 5.1002], 100, { loss_match: true, update_match: true, gpu_allocated_bytes: 9 << 20 }),
          };
    };
    const t = await runTrainBench(run, {
      models: ['mobilenet_v2'],
      batches: [2, 8],
      engines: ['cnnlab', 'tfjs-webgpu'],
      size: 32,
      iters: 1,
      warmup: 0,
      lr: 0.05,
    });
    expect(jobs.map((j) => [j.engine, j.batch, j.reference])).toEqual([
      ['cnnlab', 2, undefined],
      ['tfjs-webgpu', 2, [6.9, 5.1]],
      ['cnnlab', 8, undefined],
      ['tfjs-webgpu', 8, [6.9, 5.1]],
    ]);
    expect(jobs.every((j) => j.lr === 0.05 && j.size === 32 && j.iters === 1)).toBe(true);
    expect(t.settings).toMatchObject({ lr: 0.05, momentum: 0.9 });
    expect(t.models).toHaveLength(2);
    expect(t.models[0].speedup).toBeCloseTo(2.5);
    expect(t.models[0].cold_speedup).toBeCloseTo(2.5);
    const table = formatTrainTable(t);
    expect(table).toMatch(/mobilenet_v2\s+2\s+tfjs-webgpu\s+ok/);
    expect(table).toMatch(/6\.9001 ✓\s+5\.1002 ✓\s+×2\.50 \(cold ×2\.50\)/);
    const html = trainTableHtml(trainView(t));
    expect(html).toMatch(/<h2>Training step<\/h2>/);
    expect(html.match(/<tr title=/g)).toHaveLength(4);
    expect(html).toContain('what the number counts');
  });

  it('does not time TF.js when cnnlab failed, and says why', async () => {
    const engines: string[] = [];
    const t = await runTrainBench(
      async (job) => {
        engines.push(job.engine);
        return { result: { status: 'error', error: 'cold start: boom', loss_match: null } };
      },
      {
        models: ['resnet50'],
        batches: [1],
        engines: ['cnnlab', 'tfjs-webgpu'],
        size: 32,
        iters: 1,
        warmup: 0,
        lr: 0.01,
      },
    );
    expect(engines).toEqual(['cnnlab']);
    expect(t.models[0].engines['tfjs-webgpu']).toMatchObject({ status: 'skipped' });
    expect(t.models[0].speedup).toBeUndefined();
    expect(formatTrainTable(t)).toMatch(/cnnlab on resnet50 b=1: error: cold start: boom/);
  });

  it('fixed targets: one-hot, image n has class n mod K; BN statistics are not trainable', () => {
    expect([...trainTargets(3, 2)]).toEqual([1, 0, 0, 1, 1, 0]);
    const { g } = smallCnn(2, 3);
    expect(trainableOf(g).sort()).toEqual(
      ['bn1.b', 'bn1.g', 'bn2.b', 'bn2.g', 'dw.w', 'fc.b', 'fc.w', 'pw.b', 'pw.w', 'stem.w'].sort(),
    );
  });
});

describe('npx cnnlab bench --train: arguments (checked before any browser starts)', () => {
  const bad = async (args: string[]) => {
    const err: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...a) => {
      err.push(a.join(' '));
    });
    try {
      const { main } = await import('../../cli/main.js');
      return {
        code: await main(['bench', '--out', path.join(tmpdir(), 'cnnlab-never'), ...args]),
        err: err.join('\n'),
      };
    } finally {
      spy.mockRestore();
    }
  };
  it('names a peer the training bench does not have, --kernels/--tune with --train, and a bad --lr', async () => {
    expect((await bad(['--train', '--peers', 'ort-webgpu'])).err).toMatch(
      /unknown training peer "ort-webgpu"; known: tfjs-webgpu/,
    );
    expect((await bad(['--train', '--kernels'])).err).toMatch(/--train runs the training bench alone/);
    expect((await bad(['--train', '--lr=-1'])).err).toMatch(/--lr must be a positive number, got -1/);
    expect((await bad(['--lr', '0.1'])).err).toMatch(/--lr is for --train/);
  });
});
