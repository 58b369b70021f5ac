import { describe, expect, it } from 'vitest';
import { uniforms } from '../helpers.js';
import {
  ALEXNET_CLEAN_ERR,
  ALEXNET_ERR,
  ECE_ADAPTIVE_100,
  ECE_EQUAL_WIDTH_15,
  IMAGENET_C_CORRUPTIONS,
  type ImageResult,
  accuracyByKey,
  brier,
  ce,
  ece,
  groupBy,
  mce,
  nll,
  relativeCe,
  relativeMce,
  reliability,
  siScoreSweep,
  summarize,
  summarizeLogits,
  summarizeProbs,
  summarizeResults,
  top1,
  top5,
} from '../../eval/metrics.js';

const f32 = (a: number[]): Float32Array => new Float32Array(a);

/** A record with a given confidence and correctness (top5 [label] if correct, else [label+1]). */
const rec = (conf: number, correct: boolean, label = 0): ImageResult => ({
  label,
  top5: correct ? [label] : [label + 1],
  conf,
  p_label: correct ? conf : 0,
  sq: 0,
});

/** Seeded uniforms in [0,1) (tests/helpers.ts), so the synthetic sets are the same on every run. */
const rng = uniforms;

describe('summarizeLogits', () => {
  it('matches a hand-computed softmax', () => {
    const r = summarizeLogits(f32([0, Math.log(2), Math.log(5), 0]), 1); // p = [1,2,5,1]/9
    expect(r.top5).toEqual([2, 1, 0, 3]);
    expect(r.conf).toBeCloseTo(5 / 9, 7);
    expect(r.p_label).toBeCloseTo(2 / 9, 7);
    // (1/9)² + (2/9 − 1)² + (5/9)² + (1/9)²
    expect(r.sq).toBeCloseTo((1 + 49 + 25 + 1) / 81, 7);
  });

  it('ties go to the lower class index (top-1 wrong, top-5 right)', () => {
    const r = summarizeLogits(f32([1, 3, 3, 0, -1, -2]), 2);
    expect(r.top5).toEqual([1, 2, 0, 3, 4]);
    expect(top1([r])).toBe(0);
    expect(top5([r])).toBe(1);
  });

  it('is stable for large logits', () => {
    const r = summarizeLogits(f32([1000, 999, -1000, 3e38]), 1);
    expect(r.top5[0]).toBe(3);
    expect(r.conf).toBe(1);
    expect(r.p_label).toBe(0);
    expect(r.sq).toBeCloseTo(2, 12);
    const s = summarizeLogits(f32([1000, 999, 0]), 1);
    const e = Math.exp(-1);
    expect(s.conf).toBeCloseTo(1 / (1 + e), 12);
    expect(s.p_label).toBeCloseTo(e / (1 + e), 12);
    expect(Number.isFinite(s.sq)).toBe(true);
    const t = summarizeLogits(f32([-1e4, -1e4 + 2, -1e4 + 1]), 0);
    expect(t.top5).toEqual([1, 2, 0]);
    expect(t.conf + t.p_label).toBeLessThan(1);
    expect(t.conf).toBeCloseTo(1 / (1 + Math.exp(-1) + Math.exp(-2)), 6);
  });

  it('rejects non-finite logits and bad labels', () => {
    expect(() => summarizeLogits(f32([0, NaN]), 0)).toThrow(/not finite/);
    expect(() => summarizeLogits(f32([0, 1]), 2)).toThrow(/label/);
  });

  it('restricts to a label set (ImageNet-A/-R style) and keeps model class ids', () => {
    const logits = f32([9, 0, Math.log(3), 8, 0]);
    const r = summarizeLogits(logits, 4, [1, 2, 4]); // p over {1,2,4} = [1,3,1]/5
    expect(r.top5).toEqual([2, 1, 4]);
    expect(r.conf).toBeCloseTo(0.6, 7);
    expect(r.p_label).toBeCloseTo(0.2, 7);
    const q = summarizeProbs(f32([0.5, 0.1, 0.3, 0, 0.1]), 4, [1, 2, 4]);
    expect(q.conf).toBeCloseTo(0.6, 7);
    expect(() => summarizeLogits(logits, 0, [1, 2, 4])).toThrow(/label/);
  });

  it('summarize takes logits or probs', () => {
    const a = summarize({ label: 0, logits: f32([0, 0]) });
    const b = summarize({ label: 0, probs: f32([0.5, 0.5]) });
    expect(a).toEqual(b);
  });
});

describe('accuracy, NLL, Brier', () => {
  const rs: ImageResult[] = [
    { label: 3, top5: [3, 1, 2, 0, 4], conf: 0.5, p_label: 0.5, sq: 0 },
    { label: 2, top5: [1, 2, 0, 3, 4], conf: 0.6, p_label: 0.25, sq: 0 },
    { label: 9, top5: [1, 2, 0, 3, 4], conf: 0.9, p_label: 0, sq: 0 },
    { label: 4, top5: [0, 1, 2, 3, 4], conf: 0.3, p_label: 0.1, sq: 0 },
  ];
  it('top-1 and top-5', () => {
    expect(top1(rs)).toBe(0.25);
    expect(top5(rs)).toBe(0.75);
  });
  it('NLL clamps p_label at 1e-12', () => {
    expect(nll(rs)).toBeCloseTo((Math.log(2) + Math.log(4) + 12 * Math.log(10) + Math.log(10)) / 4, 12);
  });
  it('Brier: 0 for a perfect one-hot, 1 − 1/K for uniform, 2 for confidently wrong', () => {
    expect(brier([summarizeProbs(f32([0, 1, 0]), 1)])).toBe(0);
    expect(brier([summarizeLogits(f32([0, 0, 0, 0]), 2)])).toBeCloseTo(0.75, 12);
    expect(brier([summarizeProbs(f32([1, 0, 0]), 1)])).toBe(2);
    expect(brier([summarizeProbs(f32([0, 1, 0]), 1), summarizeLogits(f32([0, 0, 0, 0]), 2)])).toBeCloseTo(0.375, 12);
  });
  it('means over no images are NaN', () => {
    for (const f of [top1, top5, nll, brier, (r: ImageResult[]) => ece(r)]) expect(f([])).toBeNaN();
  });
});

describe('ECE', () => {
  it('equal-width, 15 bins, by hand', () => {
    // bins: 0.1 → ⌊1.5⌋ = 1; 0.5 → 7; 0.95 → 14; 1.0 → 15, clamped to 14.
    const rs = [rec(0.1, true), rec(0.1, false), rec(0.5, true), rec(0.95, true), rec(1, false)];
    // |0.5 − 0.1|·2/5 + |1 − 0.5|·1/5 + |0.5 − 0.975|·2/5 = 0.16 + 0.1 + 0.19
    expect(ece(rs, ECE_EQUAL_WIDTH_15)).toBeCloseTo(0.45, 12);
    const bins = reliability(rs, 15, 'equal-width');
    expect(bins).toHaveLength(15);
    expect(bins.map((b) => b.count)).toEqual([0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2]);
    expect(bins[14].conf).toBeCloseTo(0.975, 12);
    expect(bins[14].acc).toBe(0.5);
    expect(bins[0].conf).toBeNaN();
  });

  it('adaptive, N = 10 not divisible by 4 bins: sizes 2, 3, 3, 2 (numpy half-to-even)', () => {
    const confs = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];
    const ok = [0, 1, 0, 0, 1, 1, 1, 0, 1, 1];
    // Shuffled input: the result must not depend on order.
    const rs = [3, 7, 0, 9, 5, 1, 8, 2, 6, 4].map((i) => rec(confs[i], ok[i] === 1));
    const bins = reliability(rs, 4, 'adaptive');
    expect(bins.map((b) => b.count)).toEqual([2, 3, 3, 2]);
    expect(bins.map((b) => b.hi)).toEqual([0.3, 0.6, 0.9, 1]);
    // |0.5 − 0.15|·0.2 + |1/3 − 0.4|·0.3 + |2/3 − 0.7|·0.3 + |1 − 0.925|·0.2
    expect(ece(rs, { bins: 4, scheme: 'adaptive' })).toBeCloseTo(0.07 + 0.02 + 0.01 + 0.015, 12);
  });

  it('adaptive: a tie at an edge moves up as a whole; confidence 1 gets its own bin', () => {
    const rs = [rec(0.2, true), rec(0.5, true), rec(0.5, false), rec(0.5, true), rec(0.5, false), rec(0.9, true)];
    // edge positions 0, 2, 4 → upper bounds [0.5, 0.5, 1]: 0.2 → bin 0, all 0.5s and 0.9 → bin 2.
    expect(reliability(rs, 3, 'adaptive').map((b) => b.count)).toEqual([1, 0, 5]);
    // |1 − 0.2|/6 + 5/6·|0.6 − 2.9/5|
    expect(ece(rs, { bins: 3, scheme: 'adaptive' })).toBeCloseTo(0.8 / 6 + (5 / 6) * 0.02, 12);

    const ones = [rec(0.3, false), rec(1, true), rec(1, true), rec(1, false)];
    const b = reliability(ones, 2, 'adaptive');
    expect(b.map((x) => x.count)).toEqual([1, 0, 3]);
    expect(b[2]).toMatchObject({ lo: 1, hi: 1, conf: 1 });
    expect(ece(ones, { bins: 2, scheme: 'adaptive' })).toBeCloseTo(0.3 / 4 + (3 / 4) * (1 / 3), 12);
  });

  it('more bins than images: empty bins, still sums to N', () => {
    const rs = [rec(0.6, true), rec(0.7, false), rec(0.8, true)];
    const bins = reliability(rs, 100, 'adaptive');
    expect(bins.reduce((s, x) => s + x.count, 0)).toBe(3);
    expect(ece(rs)).toBeCloseTo((0.4 + 0.7 + 0.2) / 3, 12);
  });

  it('a perfectly calibrated set gives ECE 0', () => {
    // Groups of equal confidence whose accuracy equals the confidence; ties keep groups whole, so
    // any union of groups in a bin is calibrated too, for both schemes and any bin count.
    const groups: [number, number, number][] = [
      [0.2, 5, 1],
      [0.5, 2, 1],
      [0.75, 4, 3],
      [0.9, 10, 9],
      [1, 3, 3],
    ];
    const rs = groups.flatMap(([c, n, k]) => Array.from({ length: n }, (_, i) => rec(c, i < k)));
    for (const opts of [ECE_EQUAL_WIDTH_15, ECE_ADAPTIVE_100, { bins: 3, scheme: 'adaptive' as const }]) {
      expect(ece(rs, opts)).toBeCloseTo(0, 12);
    }
  });

  it('matches robustness_metrics binning (numpy transcription) on a set with ties and 1.0s', () => {
    // Expected values from numpy 2.4: _get_adaptive_bins + np.digitize/np.bincount as in
    // robustness_metrics' _GeneralCalibrationErrorMetric, and clip(floor(conf·15)) as its "ece".
    const r = rng(11);
    const rs: ImageResult[] = [];
    for (let i = 0; i < 1037; i++) {
      const c = i % 7 === 0 ? 1 : Math.round(r() * 200) / 200;
      rs.push(rec(c, r() < c));
    }
    expect(ece(rs, { bins: 100, scheme: 'adaptive' })).toBeCloseTo(0.09078109932497588, 12);
    expect(ece(rs, { bins: 30, scheme: 'adaptive' })).toBeCloseTo(0.052102217936354875, 12);
    expect(ece(rs, { bins: 15, scheme: 'equal-width' })).toBeCloseTo(0.01991321118611376, 12);
  });

  it('a large sample drawn calibrated has small ECE; an overconfident one does not', () => {
    const r = rng(7);
    const cal: ImageResult[] = [];
    const over: ImageResult[] = [];
    for (let i = 0; i < 100_000; i++) {
      const c = 0.3 + 0.7 * r();
      const hit = r() < c;
      cal.push(rec(c, hit));
      over.push(rec(Math.min(1, c + 0.1), hit));
    }
    expect(ece(cal, ECE_EQUAL_WIDTH_15)).toBeLessThan(0.01);
    expect(ece(cal, ECE_ADAPTIVE_100)).toBeLessThan(0.02);
    expect(ece(over, ECE_EQUAL_WIDTH_15)).toBeGreaterThan(0.08);
    expect(ece(over, ECE_ADAPTIVE_100)).toBeGreaterThan(0.08);
  });
});

describe('ImageNet-C', () => {
  const alex = Object.fromEntries(IMAGENET_C_CORRUPTIONS.map((c) => [c, Array(5).fill(ALEXNET_ERR[c])]));

  it('errors equal to AlexNet give CE = 1 and mCE = 1 (100%)', () => {
    for (const c of IMAGENET_C_CORRUPTIONS) expect(ce(alex[c], c)).toBeCloseTo(1, 12);
    // Per-severity errors that average to AlexNet's also give 1 (the table is a mean).
    const a = ALEXNET_ERR.fog;
    expect(ce([a - 0.1, a - 0.05, a, a + 0.05, a + 0.1], 'fog')).toBeCloseTo(1, 12);
    const m = mce(alex);
    expect(m.mce).toBeCloseTo(1, 12);
    expect(m).toMatchObject({ complete: true, missing: [], incomplete: [], ignored: [] });
  });

  it('CE by hand', () => {
    expect(ce([0.1, 0.2, 0.3, 0.4, 0.5], 'brightness')).toBeCloseTo(0.3 / 0.564592, 12);
  });

  it('relative CE/mCE: equal clean and corrupted errors give 0; AlexNet itself gives 1', () => {
    const flat = Object.fromEntries(IMAGENET_C_CORRUPTIONS.map((c) => [c, Array(5).fill(0.25)]));
    expect(relativeMce(flat, 0.25).mce).toBeCloseTo(0, 12);
    expect(relativeMce(alex, ALEXNET_CLEAN_ERR).mce).toBeCloseTo(1, 12);
    // (0.5 − 0.2) / (0.886428 − 0.4348)
    expect(relativeCe([0.5, 0.5, 0.5, 0.5, 0.5], 0.2, 'gaussian_noise')).toBeCloseTo(0.3 / 0.451628, 12);
  });

  it('partial runs report over what is present, flagged', () => {
    const part: Record<string, number[]> = { ...alex, speckle_noise: [0.5, 0.5, 0.5, 0.5, 0.5] };
    delete part.fog;
    part.snow = [0.9, 0.9];
    part.contrast = Array(5).fill(ALEXNET_ERR.contrast / 2);
    const m = mce(part);
    expect(m.complete).toBe(false);
    expect(m.missing).toEqual(['fog']);
    expect(m.incomplete).toEqual(['snow']);
    expect(m.ignored).toEqual(['speckle_noise']);
    expect(Object.keys(m.ce)).toHaveLength(13);
    expect(m.mce).toBeCloseTo(12.5 / 13, 12);
    expect(mce({}).mce).toBeNaN();
  });

  it('rejects bad input', () => {
    expect(() => ce([0.5, 0.5, 0.5], 'fog')).toThrow(/severities/);
    expect(() => ce([0.5, 0.5, 0.5, 0.5, 1.5], 'fog')).toThrow(/outside/);
    expect(() => ce([0.5, 0.5, 0.5, 0.5, 0.5], 'speckle_noise')).toThrow(/15 mCE/);
  });
});

describe('SI-Score and aggregation', () => {
  it('sweep: accuracy per factor value and the unweighted mean over values', () => {
    const rs = [
      { ...rec(0.9, true), area: 0.1 },
      { ...rec(0.9, false), area: 0.1 },
      { ...rec(0.9, true), area: 0.2 },
      { ...rec(0.9, false), area: 1 },
      { ...rec(0.9, false), area: 1 },
      { ...rec(0.9, true), area: 1 },
      { ...rec(0.9, true), area: 1 },
    ];
    const groups = groupBy(rs, (r) => r.area);
    expect([...groups.keys()]).toEqual(['0.1', '0.2', '1']);
    const s = siScoreSweep(groups);
    expect(s.byValue).toEqual({ '0.1': 0.5, '0.2': 1, '1': 0.5 });
    expect(s.counts).toEqual({ '0.1': 2, '0.2': 1, '1': 4 });
    expect(s.mean).toBeCloseTo(2 / 3, 12);
    expect(siScoreSweep(Object.fromEntries(groups)).mean).toBeCloseTo(2 / 3, 12);
  });

  it('accuracyByKey', () => {
    const rs = [
      { ...rec(0.9, true), sev: 1 },
      { ...rec(0.9, false), sev: 1 },
      { label: 0, top5: [1, 0], conf: 0.5, p_label: 0.4, sq: 0, sev: 2 },
    ];
    const a = accuracyByKey(rs, (r) => `fog/${r.sev}`);
    expect(Object.fromEntries(a)).toEqual({
      'fog/1': { n: 2, top1: 0.5, top5: 0.5 },
      'fog/2': { n: 1, top1: 0, top5: 1 },
    });
  });
});

describe('merge invariance', () => {
  it('metrics of concatenated shards equal metrics of the whole', () => {
    const r = rng(3);
    const all: ImageResult[] = [];
    for (let i = 0; i < 3000; i++) {
      const logits = f32(Array.from({ length: 10 }, () => 4 * r()));
      const label = Math.floor(r() * 10);
      logits[label] += 2 * r(); // some signal, so accuracy is neither 0 nor chance
      all.push(summarizeLogits(logits, label));
    }
    // Some exact ties in confidence, as float32 models produce.
    for (let i = 0; i < 200; i++) all[i] = { ...all[i], conf: 0.5 };
    const whole = summarizeResults(all);
    const shards = [all.slice(0, 1234), all.slice(1234, 2000), all.slice(2000)];
    expect(summarizeResults(shards.flat())).toEqual(whole);
    // Shards merged in another order: counts and ECE exactly equal, means to rounding.
    const merged = summarizeResults([...shards[2], ...shards[0].slice().reverse(), ...shards[1]]);
    expect(merged.top1).toBe(whole.top1);
    expect(merged.top5).toBe(whole.top5);
    expect(merged.eceAdaptive100).toBe(whole.eceAdaptive100);
    expect(merged.eceEqualWidth15).toBe(whole.eceEqualWidth15);
    expect(merged.nll).toBeCloseTo(whole.nll, 12);
    expect(merged.brier).toBeCloseTo(whole.brier, 12);
    expect(whole.top1).toBeGreaterThan(0.2);
    expect(whole.top1).toBeLessThan(0.9);
  });
});
