import { describe, expect, it } from 'vitest';
import {
  bitHyperRule,
  bitHyperRuleSchedule,
  bitResolution,
  cosineSchedule,
  learningRate,
} from '../../eval/finetune/schedule.js';

describe('BiT-HyperRule', () => {
  it('picks 500 / 10k / 20k steps at the 20k and 500k boundaries', () => {
    expect(bitHyperRuleSchedule(19_999, { batch: 512 }).steps).toBe(500);
    expect(bitHyperRuleSchedule(20_000, { batch: 512 }).steps).toBe(10_000);
    expect(bitHyperRuleSchedule(499_999, { batch: 512 }).steps).toBe(10_000);
    expect(bitHyperRuleSchedule(500_000, { batch: 512 }).steps).toBe(20_000);
  });

  it('warms up linearly from 0 and divides by 10 after each decay point (medium: 500, 3000, 6000, 9000)', () => {
    const sc = bitHyperRuleSchedule(50_000, { batch: 512 });
    expect(sc.warmup).toBe(500);
    expect(sc.decays).toEqual([3000, 6000, 9000]);
    expect(learningRate(sc, 0)).toBe(0);
    expect(learningRate(sc, 250)).toBeCloseTo(0.0015, 15);
    expect(learningRate(sc, 499)).toBeCloseTo((0.003 * 499) / 500, 15);
    expect(learningRate(sc, 500)).toBe(0.003);
    // 30/60/90% of 10k: the decay applies to the steps after the point (bit_hyperrule's `s < step`).
    expect(learningRate(sc, 3000)).toBe(0.003);
    expect(learningRate(sc, 3001)).toBeCloseTo(0.0003, 15);
    expect(learningRate(sc, 6000)).toBeCloseTo(0.0003, 15);
    expect(learningRate(sc, 6001)).toBeCloseTo(0.00003, 15);
    expect(learningRate(sc, 9001)).toBeCloseTo(0.000003, 15);
    expect(learningRate(sc, 9999)).toBeCloseTo(0.000003, 15);
    expect(() => learningRate(sc, 10_000)).toThrow(/step 10000 of a 10000-step/);
    expect(() => learningRate(sc, -1)).toThrow(RangeError);
  });

  it('scales the lr linearly with the batch and the support points with --steps', () => {
    const sc = bitHyperRuleSchedule(1000, { batch: 64, steps: 50 });
    expect(sc.lr).toBeCloseTo(0.003 / 8, 15);
    expect(sc).toMatchObject({ steps: 50, warmup: 10, decays: [20, 30, 40] });
    expect(learningRate(sc, 5)).toBeCloseTo(0.003 / 16, 15);
    expect(learningRate(sc, 21)).toBeCloseTo(0.003 / 80, 15);
  });

  it('resolution, MixUp and the head follow the rule', () => {
    expect(bitResolution(95, 96)).toEqual({ precrop: 160, size: 128 });
    expect(bitResolution(96, 96)).toEqual({ precrop: 448, size: 384 });
    const small = bitHyperRule(19_999, { height: 32, width: 32 }, { batch: 512 });
    expect(small.mixupAlpha).toBe(0);
    expect(small.crop).toEqual({ kind: 'crop', precrop: 160, size: 128 });
    expect(small.optimizer).toEqual({ kind: 'sgd', momentum: 0.9, weightDecay: 0 });
    expect(small.flip && small.zeroHead).toBe(true);
    expect(bitHyperRule(20_000, { height: 500, width: 400 }, { batch: 512 }).mixupAlpha).toBe(0.1);
  });
});

describe('cosine with warm-up', () => {
  it('rises linearly, peaks after the warm-up, halves at the middle of the decay, ends near 0', () => {
    const sc = cosineSchedule({ steps: 110, batch: 256, baseLr: 0.02, warmup: 10 });
    const peak = 0.01;
    expect(learningRate(sc, 0)).toBe(0);
    expect(learningRate(sc, 5)).toBeCloseTo(peak / 2, 15);
    expect(learningRate(sc, 10)).toBeCloseTo(peak, 15);
    expect(learningRate(sc, 60)).toBeCloseTo(peak / 2, 15);
    expect(learningRate(sc, 109)).toBeCloseTo(0.5 * peak * (1 + Math.cos((Math.PI * 99) / 100)), 15);
    for (let s = 11; s < 110; s++) expect(learningRate(sc, s)).toBeLessThan(learningRate(sc, s - 1));
  });

  it('defaults to 5% warm-up and rejects a warm-up as long as the run', () => {
    expect(cosineSchedule({ steps: 1000, batch: 512, baseLr: 0.01 }).warmup).toBe(50);
    expect(() => cosineSchedule({ steps: 10, batch: 512, baseLr: 0.01, warmup: 10 })).toThrow(/warm-up/);
  });
});
