// `cnnlab finetune` end to end on tiny ImageFolders, with a plain-TS trainer that really trains
// (softmax regression on each image's channel means, SGD with momentum) in place of the WebGPU
// one: the images go through the GPU feed, the schedule, checkpoints, resume, summary and report.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../cli/common.js';
import { demoSummaryLines } from '../../cli/demo.js';
import { finetuneCmd, type MakeTrainer, makeTrainer } from '../../cli/finetune.js';
import { itemLocation } from '../../eval/data.js';
import type { FinetuneSummary } from '../../eval/finetune/summary.js';
import { synthClassDataset, synthClassSource } from '../../eval/sources.js';
import { renderSynthImage, SYNTH_CLASSES, SYNTH_HELDOUT_CLASSES } from '../../eval/synth.js';
import { openSafetensorsPath } from '../../engine/safetensors.js';
import { FINETUNE_DATA_ID } from '../../report/finetune.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { getModel, loadModel } from '../../models/registry.js';
import { rand } from '../helpers.js';

const root = mkdtempSync(path.join(tmpdir(), 'cnnlab-ftcli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Class c's images are bright in channel c, with noise; sizes vary a little. */
async function writeFolder(dir: string, perClass: number, seed: number) {
  for (let c = 0; c < 3; c++) {
    mkdirSync(path.join(dir, `class${c}`), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const w = 20 + ((i * 3) % 7),
        h = 18 + ((i * 5) % 6);
      const noise = rand(w * h * 3, seed + 10 * c + i, 0, 120);
      const px = Uint8Array.from(noise, (v, k) => Math.round(v + (k % 3 === c ? 120 : 0)));
      await sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 3 } })
        .png()
        .toFile(path.join(dir, `class${c}`, `${i}.png`));
    }
  }
}

/** Softmax regression on the per-channel means of x [N,S,S,3]. */
function meanColourTrainer(batch: number, classes: number, o: { failAt?: number } = {}) {
  const D = 3;
  const w = new Float32Array(D * classes),
    b = new Float32Array(classes),
    mw = new Float32Array(D * classes),
    mb = new Float32Array(classes);
  let steps = 0;
  const feats = (x: Float32Array) => {
    const per = x.length / batch,
      f = new Float64Array(batch * D);
    for (let n = 0; n < batch; n++) for (let i = 0; i < per; i++) f[n * D + (i % 3)] += x[n * per + i] / (per / 3);
    return f;
  };
  const logits = (f: Float64Array) => {
    const z = new Float32Array(batch * classes);
    for (let n = 0; n < batch; n++)
      for (let c = 0; c < classes; c++) {
        let s = b[c];
        for (let i = 0; i < D; i++) s += f[n * D + i] * w[i * classes + c];
        z[n * classes + c] = s;
      }
    return z;
  };
  return {
    batch,
    classes,
    async step(x: Float32Array, t: Float32Array, lr: number) {
      if (o.failAt !== undefined && steps === o.failAt) throw new Error(`killed at step ${steps}`);
      const f = feats(x),
        z = logits(f);
      const gw = new Float32Array(D * classes),
        gb = new Float32Array(classes);
      let loss = 0;
      for (let n = 0; n < batch; n++) {
        const row = z.subarray(n * classes, (n + 1) * classes);
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
        for (let c = 0; c < classes; c++) {
          const g = (Math.exp(row[c] - lse) - t[n * classes + c]) / batch;
          loss -= t[n * classes + c] * (row[c] - lse);
          gb[c] += g;
          for (let i = 0; i < D; i++) gw[i * classes + c] += g * f[n * D + i];
        }
      }
      for (let i = 0; i < w.length; i++) w[i] -= lr * (mw[i] = 0.9 * mw[i] + gw[i]);
      for (let i = 0; i < b.length; i++) b[i] -= lr * (mb[i] = 0.9 * mb[i] + gb[i]);
      steps++;
      return { loss: loss / batch };
    },
    async accumulate(): Promise<{ loss: number }> {
      throw new Error('this test trainer does not accumulate (the loop runs one batch per step)');
    },
    async apply(): Promise<void> {
      throw new Error('this test trainer does not accumulate (the loop runs one batch per step)');
    },
    async predict(x: Float32Array) {
      return logits(feats(x));
    },
    async readState() {
      const t = (shape: number[], d: Float32Array): HostTensor => ({ shape, data: d.slice() });
      return new Map([
        ['probe.weight', t([D, classes], w)],
        ['probe.bias', t([classes], b)],
        ['probe.weight#momentum', t([D, classes], mw)],
        ['probe.bias#momentum', t([classes], mb)],
        ['step', t([1], Float32Array.of(steps))],
      ]);
    },
    async writeState(s: Map<string, HostTensor>) {
      w.set(s.get('probe.weight')!.data);
      b.set(s.get('probe.bias')!.data);
      mw.set(s.get('probe.weight#momentum')!.data);
      mb.set(s.get('probe.bias#momentum')!.data);
      steps = s.get('step')!.data[0];
    },
    dispose() {},
  };
}

const made =
  (o: { failAt?: number } = {}): MakeTrainer =>
  async (_d, model) =>
    meanColourTrainer(model.batch, model.classes, o);

const quiet = async <T>(f: () => Promise<T>): Promise<T> => {
  const log = console.log;
  console.log = () => {};
  try {
    return await f();
  } finally {
    console.log = log;
  }
};

describe('cnnlab finetune', () => {
  const train = path.join(root, 'train'),
    test = path.join(root, 'test');
  beforeAll(async () => {
    await writeFolder(train, 6, 0);
    await writeFolder(test, 4, 500);
  });
  const args = (out: string, more: string[] = []) => [
    '--model',
    'mobilenet_v2_synth',
    '--weights',
    'builtin',
    '--train',
    train,
    '--test',
    test,
    '--steps',
    '12',
    '--batch',
    '4',
    '--lr',
    '32',
    '--size',
    '32',
    '--checkpoint-every',
    '5',
    '--eval-every',
    '6',
    '--out',
    out,
    ...more,
  ];

  it('trains, checkpoints, writes summary.json and the report; the weights load back with 3 classes', async () => {
    const out = path.join(root, 'run');
    expect(await quiet(() => finetuneCmd(args(out), { makeTrainer: made() }))).toBe(0);
    const s = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8'));
    const f = s.finetune;
    expect(f).toMatchObject({ model: 'mobilenet_v2_synth', protocol: 'standard', steps: 12, batch: 4, seed: 0 });
    expect(f.classes).toEqual(['class0', 'class1', 'class2']);
    expect(f.recipe.crop).toEqual({ kind: 'crop', precrop: 40, size: 32 });
    expect(f.schedule).toMatchObject({ kind: 'bit-hyperrule', steps: 12, warmup: 2, decays: [5, 7, 10] });
    expect(f.loss).toHaveLength(12);
    expect(f.phases).toHaveLength(1);
    expect(f.phases[0].evals.map((e: { step: number; split: string }) => `${e.split}@${e.step}`)).toEqual(['test@12']);
    // Colour-coded classes: the mean-colour softmax separates them well past chance (33%).
    expect(f.final.test).toBeGreaterThan(0.6);
    expect(f.best).toMatchObject({ split: 'test', step: 12 });
    for (const ck of ['step-000005', 'step-000010', 'final'])
      expect(existsSync(path.join(out, 'checkpoints', 'train', `${ck}.safetensors`))).toBe(true);
    const back = await loadModel('mobilenet_v2_synth', {
      weights: await openSafetensorsPath(path.join(out, f.phases[0].checkpoint)),
    });
    expect(back.classes).toBe(3);
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain('<h2>Fine-tuning</h2>');
    expect(html).toContain(`id="${FINETUNE_DATA_ID}"`);
    expect(html).toContain('id="chart-ft-loss"');
    expect(html).toContain('id="chart-ft-acc"');
  }, 300_000);

  it('a run killed at step 7 and resumed ends as an uninterrupted one', async () => {
    const whole = path.join(root, 'whole'),
      cut = path.join(root, 'cut');
    await quiet(() => finetuneCmd(args(whole), { makeTrainer: made() }));
    await expect(quiet(() => finetuneCmd(args(cut), { makeTrainer: made({ failAt: 7 }) }))).rejects.toThrow(
      /killed at step 7/,
    );
    expect(await quiet(() => finetuneCmd(args(cut, ['--resume']), { makeTrainer: made() }))).toBe(0);
    const a = JSON.parse(readFileSync(path.join(whole, 'summary.json'), 'utf8')).finetune;
    const b = JSON.parse(readFileSync(path.join(cut, 'summary.json'), 'utf8')).finetune;
    expect(b.loss).toEqual(a.loss);
    expect(b.phases[0].evals).toEqual(a.phases[0].evals);
    expect(b.notes).toContain('train: resumed at step 5');
  }, 300_000);

  it('--protocol vtab1k: a check phase scored on its val split, then a refit scored on test', async () => {
    const out = path.join(root, 'vtab');
    await expect(quiet(() => finetuneCmd(args(out, ['--protocol', 'vtab1k'])))).rejects.toThrow(/1000 examples/);
    const run = () =>
      quiet(() => finetuneCmd(args(out, ['--protocol', 'vtab1k', '--allow-fewer']), { makeTrainer: made() }));
    expect(await run()).toBe(0);
    const f = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')).finetune;
    expect(f.protocol).toBe('vtab1k');
    expect(f.phases.map((p: { name: string; examples: number }) => [p.name, p.examples])).toEqual([
      ['check', 14],
      ['refit', 18],
    ]);
    const splits = (i: number) =>
      f.phases[i].evals.map((e: { step: number; split: string; n: number }) => `${e.split}@${e.step}/${e.n}`);
    expect(splits(0)).toEqual(['val@6/4', 'val@12/4']);
    expect(splits(1)).toEqual(['test@12/12']);
    expect(f.final).toEqual({ test: f.phases[1].final.test });
    expect(f.notes[0]).toMatch(/pool of 18 < 1000/);
    for (const ph of ['check', 'refit'])
      expect(existsSync(path.join(out, 'checkpoints', ph, 'final.safetensors'))).toBe(true);
    // Resuming a finished run trains nothing and reports the same.
    expect(
      await quiet(() =>
        finetuneCmd(args(out, ['--protocol', 'vtab1k', '--allow-fewer', '--resume']), {
          makeTrainer: made({ failAt: 0 }),
        }),
      ),
    ).toBe(0);
    const g = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')).finetune;
    expect(g.phases.map((p: { evals: unknown }) => p.evals)).toEqual(f.phases.map((p: { evals: unknown }) => p.evals));
  }, 300_000);

  it('the WebGPU trainer: MobileNetV2 fine-tunes (BN in train mode), a kill + resume ends bit for bit as one run', async () => {
    // The real engine/train.ts Trainer behind the default makeTrainer; the kill wraps it.
    const killedAt =
      (k: number): MakeTrainer =>
      async (d, m, r) => {
        const t = await makeTrainer(d, m, r);
        let steps = 0;
        return {
          batch: t.batch,
          classes: t.classes,
          stateNames: t.stateNames,
          step: async (x, y, lr) => {
            if (steps++ === k) throw new Error(`killed at step ${k}`);
            return t.step(x, y, lr);
          },
          accumulate: (x, y) => t.accumulate(x, y),
          apply: (lr, n) => t.apply(lr, n),
          predict: (x) => t.predict(x),
          readState: () => t.readState(),
          writeState: (st) => t.writeState(st),
          dispose: () => t.dispose(),
        };
      };
    const gpuArgs = (out: string, more: string[] = []) => [
      ...args(out, ['--steps', '6', '--checkpoint-every', '2', '--eval-every', '0', '--lr', '4', ...more]),
    ];
    const whole = path.join(root, 'gpu-whole'),
      cut = path.join(root, 'gpu-cut');
    expect(await quiet(() => finetuneCmd(gpuArgs(whole)))).toBe(0);
    await expect(quiet(() => finetuneCmd(gpuArgs(cut), { makeTrainer: killedAt(3) }))).rejects.toThrow(
      /killed at step 3/,
    );
    expect(await quiet(() => finetuneCmd(gpuArgs(cut, ['--resume'])))).toBe(0);
    const a = JSON.parse(readFileSync(path.join(whole, 'summary.json'), 'utf8')).finetune;
    const b = JSON.parse(readFileSync(path.join(cut, 'summary.json'), 'utf8')).finetune;
    expect(a.loss.every((l: number) => Number.isFinite(l) && l > 0)).toBe(true);
    expect(b.loss).toEqual(a.loss);
    expect(b.notes).toContain('train: resumed at step 2');
    const tensors = async (dir: string) => {
      const f = await openSafetensorsPath(path.join(dir, 'checkpoints', 'train', 'final.safetensors'));
      return new Map(await Promise.all([...f.tensors.keys()].map(async (n) => [n, (await f.read(n)).data] as const)));
    };
    const [wa, wb] = [await tensors(whole), await tensors(cut)];
    const builtin = await openSafetensorsPath(path.join(REPO_ROOT, getModel('mobilenet_v2_synth').builtinWeights!));
    let moved = 0;
    for (const [n, t] of wa) {
      expect(Array.from(wb.get(n)!), n).toEqual(Array.from(t));
      if (n.includes('classifier')) continue;
      const before = (await builtin.read(n)).data;
      if (t.some((v, i) => v !== before[i])) moved++;
    }
    // Trained: conv weights and BN running statistics moved from the built-in checkpoint; the head left zero.
    expect(moved).toBeGreaterThan(wa.size / 2);
    expect(wa.get('classifier.1.weight')!.some((v) => v !== 0)).toBe(true);
    const back = await loadModel('mobilenet_v2_synth', {
      weights: await openSafetensorsPath(path.join(whole, a.phases[0].checkpoint)),
    });
    expect(back.classes).toBe(3);
  }, 900_000);

  it("without --train: the held-out synthetic classes, tested on transfer's test images", async () => {
    const out = path.join(root, 'synth');
    const argv = ['--per-class', '2', '--steps', '2', '--batch', '4', '--size', '24', '--lr', '32', '--out', out];
    expect(await quiet(() => finetuneCmd(argv, { makeTrainer: made() }))).toBe(0);
    const f = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')).finetune;
    expect(f.classes).toEqual(SYNTH_HELDOUT_CLASSES.map((c) => SYNTH_CLASSES[c].name));
    expect(f.train).toMatch(/synthetic held-out classes \(8, .*2 train images per class, seed 0/);
    expect(f.test).toMatch(/20 test images per class, seed 0/);
    expect(f.phases[0].examples).toBe(16);
    expect(f.phases[0].evals).toEqual([{ step: 2, split: 'test', accuracy: f.final.test, n: 160 }]);
    // The same items, labels and pixels as transfer's synthClassSource.
    const cls = [...SYNTH_HELDOUT_CLASSES];
    const d = synthClassDataset(cls, { perClass: 2, seed: 0, split: 'train', keep: true });
    const src = synthClassSource(cls, { perClass: 2, seed: 0, split: 'train' });
    expect(d.ds.items.map((it) => [it.path, it.label])).toEqual(src.items.map((it) => [it.id, it.label]));
    const img = await d.decode(itemLocation(d.ds, d.ds.items[5].path));
    expect(img).toBe(await d.decode(itemLocation(d.ds, d.ds.items[5].path)));
    expect(img.data).toEqual(renderSynthImage(cls[2], 1, { size: 224, seed: 0, split: 'train' }).data);
    await expect(d.decode('synthetic:train-seed0/nothing')).rejects.toThrow(/not an image of the synthetic set/);
    await expect(finetuneCmd(['--test', train, '--out', out])).rejects.toThrow(/--val\/--test need --train DIR/);
    await expect(finetuneCmd(['--train', train, '--per-class', '3', '--out', out])).rejects.toThrow(
      /--per-class sets the synthetic training images/,
    );
  }, 120_000);

  it("the demo's closing lines put fine-tuned accuracy beside k-shot transfer", () => {
    const lines = demoSummaryLines(
      {
        fewshot: {
          '10': { mean: 0.8, std: 0.01, per_seed: [0.79, 0.81] },
          '5': { mean: 0.7, std: 0.02, per_seed: [0.68, 0.72] },
        },
      },
      {
        final: { test: 0.85 },
        steps: 64,
        recipe: { crop: { size: 64 } },
        phases: [{ examples: 240 }],
      } as unknown as FinetuneSummary,
    );
    expect(lines[0]).toBe('held-out synthetic classes (8), the same 160 test images:');
    expect(lines.slice(1).map((l) => l.replace(/ +/g, ' ').trim())).toEqual([
      '5-shot linear (frozen features) 70.0% ± 2.0 over 2 draws',
      '10-shot linear (frozen features) 80.0% ± 1.0 over 2 draws',
      'fine-tuned (whole network) 85.0% (240 images, 64 steps, 64 px)',
    ]);
  });

  it('bad options are named', async () => {
    await expect(finetuneCmd(args(path.join(root, 'y'), ['--schedule', 'linear']))).rejects.toThrow(
      /--schedule must be bit-hyperrule or cosine/,
    );
    await expect(finetuneCmd(['--train', train, '--out', root, '--schedule', 'cosine'])).rejects.toThrow(
      /cosine needs --steps/,
    );
  }, 120_000);
});
