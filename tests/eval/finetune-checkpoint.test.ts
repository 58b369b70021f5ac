// Fine-tuned checkpoints load back through the loader infer/robustness/transfer use (loadModel
// with --weights FILE), with the new head's class count, the same tensors, and nothing else.

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSafetensorsPath } from '../../engine/safetensors.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { getModel, loadModel } from '../../models/registry.js';
import { REPO_ROOT } from '../../cli/common.js';
import { checkpointTensors, encodeWeights, writeAtomic } from '../../eval/finetune/checkpoint.js';
import { buildFinetuneModel } from '../../eval/finetune/model.js';
import { cropBox, cropBoxes, flipOf, mixupLambda, mixupPairs, roundHalfEven } from '../../eval/finetune/augment.js';
import { RRC_RATIO, RRC_SCALE } from '../../eval/finetune/schedule.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cnnlab-ftck-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Pretend training: every trainable parameter moved by a seeded amount. */
function trained(m: { trainable: string[]; graph: { value(n: string): { shape: number[]; data?: Float32Array } } }) {
  const out = new Map<string, HostTensor>();
  m.trainable.forEach((n, k) => {
    const v = m.graph.value(n);
    out.set(n, { shape: [...v.shape], data: v.data!.map((x, i) => x + 0.001 * (((i * 7 + k) % 13) - 6)) });
  });
  return out;
}

describe('fine-tuned checkpoints', () => {
  it('MobileNetV2 (built-in weights → 4-class head): write, load with loadModel, same tensors', async () => {
    const def = getModel('mobilenet_v2_synth');
    const file = await openSafetensorsPath(path.join(REPO_ROOT, def.builtinWeights!));
    const m = await buildFinetuneModel(def, { weights: file, classes: 4, batch: 2, zeroHead: true });
    // The new head is zero, the body is the checkpoint's (as loadModel reads it), BN stats frozen.
    expect(m.head.map((n) => def.mapping.fileName?.(n) ?? n)).toEqual(['classifier.1.weight', 'classifier.1.bias']);
    for (const n of m.head) expect(m.initial.get(n)!.every((v) => v === 0)).toBe(true);
    const orig = await loadModel(def, { weights: file, batch: 2 });
    const body = m.trainable.find((n) => n.endsWith('.weight') && !m.head.includes(n))!;
    expect(Array.from(m.initial.get(body)!)).toEqual(Array.from(orig.graph.value(body).data!));
    expect(m.trainable.some((n) => n.includes('running'))).toBe(false);

    const state = trained(m);
    // What the trainer updates must come from its state: never the starting value, never another shape.
    const required = new Set([...m.trainable, 'features.0.1.running_mean']);
    expect(() => checkpointTensors(m.requests, def.mapping, m.initial, state, required)).toThrow(
      /state has no "features.0.1.running_mean", which it trains/,
    );
    const bad = new Map(state);
    bad.set(body, { shape: [1], data: new Float32Array(1) });
    expect(() => checkpointTensors(m.requests, def.mapping, m.initial, bad)).toThrow(
      new RegExp(`the trainer's "${body.replace(/\./g, '\\.')}" is \\[1\\]`),
    );
    const out = path.join(dir, 'final.safetensors');
    await writeAtomic(
      out,
      encodeWeights(checkpointTensors(m.requests, def.mapping, m.initial, state), {
        model: def.name,
        step: 10,
        classes: 4,
      }),
    );
    expect(readdirSync(dir)).toEqual(['final.safetensors']);
    const back = await loadModel(def, { weights: await openSafetensorsPath(out), batch: 2 });
    expect(back.classes).toBe(4);
    for (const r of m.requests) {
      const want = state.get(r.name)?.data ?? m.initial.get(r.name)!;
      expect(Array.from(back.graph.value(r.name).data!), r.name).toEqual(Array.from(want));
    }
  });

  it('ViT at another size: the resampled position embedding stays frozen and loads back the same', async () => {
    const def = getModel('vit_tiny_patch16_224');
    const m = await buildFinetuneModel(def, {
      weights: 'random',
      seed: 3,
      classes: 3,
      batch: 1,
      size: 48,
      zeroHead: false,
    });
    expect(m.trainable).not.toContain('pos_embed');
    expect(m.trainable).toContain('cls_token');
    const state = trained(m);
    const out = path.join(dir, 'vit.safetensors');
    await writeAtomic(
      out,
      encodeWeights(checkpointTensors(m.requests, def.mapping, m.initial, state), {
        model: def.name,
        step: 1,
        classes: 3,
      }),
    );
    const back = await loadModel(def, { weights: await openSafetensorsPath(out), batch: 1, size: 48 });
    expect(back.classes).toBe(3);
    expect(Array.from(back.graph.value('pos_embed').data!)).toEqual(Array.from(m.graph.value('pos_embed').data!));
    expect(Array.from(back.graph.value('head.weight').data!)).toEqual(Array.from(state.get('head.weight')!.data));
  }, 60_000);
});

describe('augmentation draws', () => {
  const rrc = { kind: 'rrc' as const, base: 40, size: 24, scale: RRC_SCALE, ratio: RRC_RATIO };

  it('random crops lie inside the image and cover every offset', () => {
    const tops = new Set<number>();
    for (let s = 0; s < 400; s++) {
      const [t, l, h, w] = cropBox({ kind: 'crop', precrop: 13, size: 9 }, 13, 11, 1, s, 5);
      expect([h, w]).toEqual([9, 9]);
      expect(t >= 0 && t <= 4 && l >= 0 && l <= 2).toBe(true);
      tops.add(t);
    }
    expect([...tops].sort()).toEqual([0, 1, 2, 3, 4]);
    expect(() => cropBox({ kind: 'crop', precrop: 8, size: 9 }, 8, 8, 1, 0, 0)).toThrow(/does not fit/);
  });

  it('random-resized crops: inside, area fraction in [0.08, 1], aspect in [3/4, 4/3] up to rounding', () => {
    let areaSum = 0;
    for (let s = 0; s < 500; s++) {
      const [t, l, h, w] = cropBox(rrc, 40, 40, 2, s, 17);
      expect(t >= 0 && l >= 0 && t + h <= 40 && l + w <= 40).toBe(true);
      expect((h * w) / 1600).toBeGreaterThanOrEqual(0.06);
      expect(w / h).toBeGreaterThan(0.7);
      expect(w / h).toBeLessThan(1.43);
      areaSum += (h * w) / 1600;
    }
    // E[area fraction] is 0.487 for a 40×40 image (0.54 for U(0.08, 1), less after the rejections
    // of boxes wider or taller than the image; a Monte Carlo of torchvision's get_params with
    // 200k draws); 500 draws have a standard error of about 0.012.
    expect(areaSum / 500).toBeGreaterThan(0.45);
    expect(areaSum / 500).toBeLessThan(0.53);
    // A very wide image falls back to the centre crop with the ratio clamped when 10 tries fail.
    expect(cropBox({ ...rrc, scale: [1, 1] }, 10, 100, 0, 0, 0)).toEqual([0, 43, 10, 13]);
    expect(roundHalfEven(2.5)).toBe(2);
    expect(roundHalfEven(3.5)).toBe(4);
  });

  it('draws depend on (seed, step, image) only', () => {
    const a = cropBoxes(rrc, true, 40, 40, 4, 9, [3, 8, 100]);
    const b = cropBoxes(rrc, true, 40, 40, 4, 9, [100, 3]);
    expect(Array.from(a.subarray(10, 15))).toEqual(Array.from(b.subarray(0, 5)));
    expect(Array.from(a.subarray(0, 5))).toEqual(Array.from(b.subarray(5, 10)));
    expect(Array.from(cropBoxes(rrc, true, 40, 40, 4, 10, [3]))).not.toEqual(Array.from(a.subarray(0, 5)));
    let flips = 0;
    for (let s = 0; s < 1000; s++) flips += flipOf(1, s, 2) ? 1 : 0;
    expect(flips).toBeGreaterThan(450);
    expect(flips).toBeLessThan(550);
  });

  it('MixUp λ ~ Beta(α, α): mean ½, mass near 0 and 1 for α = 0.1; pairs are a permutation', () => {
    const draws = Array.from({ length: 2000 }, (_, s) => mixupLambda(0.1, 7, s));
    expect(draws.every((l) => l >= 0 && l <= 1)).toBe(true);
    const mean = draws.reduce((a, b) => a + b) / draws.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    // Beta(0.1, 0.1) puts ~74% of its mass within 0.05 of 0 or 1; Beta(2, 2) about 1.4%.
    const edge = (xs: number[]) => xs.filter((l) => l < 0.05 || l > 0.95).length / xs.length;
    expect(edge(draws)).toBeGreaterThan(0.65);
    expect(edge(Array.from({ length: 2000 }, (_, s) => mixupLambda(2, 7, s)))).toBeLessThan(0.05);
    const p = mixupPairs(0.1, 7, 7, 3);
    expect(Array.from({ length: 7 }, (_, i) => p[2 * i]).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(new Set(Array.from({ length: 7 }, (_, i) => p[2 * i + 1])).size).toBe(1);
  });
});
