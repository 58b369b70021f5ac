import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import {
  ATTENTION_VARIANTS,
  type AttentionAttrs,
  attentionOp,
  attentionRef,
  attentionVariant,
} from '../../kernels/attention.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { expectClose, randTensor, testDevice } from '../helpers.js';

/** One attention node through the executor with prefer.attention; returns y and the kernel keys. */
async function run(
  attrs: AttentionAttrs,
  inputs: HostTensor[],
  prefer?: string,
): Promise<{ y: HostTensor; kernels: string[] }> {
  const dev = await testDevice();
  const g = new Graph();
  const names = inputs.map((t, i) => g.input(`x${i}`, t.shape));
  const y = g.op('attention', names, attrs as unknown as Record<string, unknown>, 'op');
  g.markOutputs(y);
  const plan = await compile(dev, g, { prefer: prefer ? { attention: prefer } : undefined });
  try {
    const feed: Record<string, Float32Array> = {};
    inputs.forEach((t, i) => {
      feed[`x${i}`] = t.data;
    });
    const { outputs } = await plan.run(feed);
    return { y: outputs[y], kernels: plan.kernels };
  } finally {
    plan.dispose();
  }
}

// Softmax weights sum to 1, so outputs are convex combinations of v ∈ [-1, 1]; f32 rounding of
// dh-term dot products and exp gives ~1e-6 relative error in the weights.
const tol = { atol: 2e-5, rtol: 1e-4 };

describe('attentionRef', () => {
  it('hand-computed: T = 2, one head, dh = 1, and heads = 2 concatenated', () => {
    // q = k = [1, 0], v = [1, 3], scale 1. Row 0: scores [1, 0] → (e·1 + 1·3)/(e + 1); row 1: [0, 0] → 2.
    const qkv = { shape: [1, 2, 3], data: new Float32Array([1, 1, 1, 0, 0, 3]) };
    const y = attentionRef({ heads: 1, scale: 1 }, [qkv]);
    expect(y.shape).toEqual([1, 2, 1]);
    expect(y.data[0]).toBeCloseTo((Math.E + 3) / (Math.E + 1), 6);
    expect(y.data[1]).toBeCloseTo(2, 6);
    // Two heads of dh = 1 via separate q, k, v: head 0 as above, head 1 has v = [10, 20] and q = 0,
    // so uniform weights → 15. Output interleaves heads per token: [h0, h1].
    const q = { shape: [1, 2, 2], data: new Float32Array([1, 0, 0, 0]) };
    const k = { shape: [1, 2, 2], data: new Float32Array([1, 5, 0, 7]) };
    const v = { shape: [1, 2, 2], data: new Float32Array([1, 10, 3, 20]) };
    const y2 = attentionRef({ heads: 2, scale: 1 }, [q, k, v]);
    expect([...y2.data].map((x) => +x.toFixed(5))).toEqual([+((Math.E + 3) / (Math.E + 1)).toFixed(5), 15, 2, 15]);
    // Default scale is 1/sqrt(dh): dh = 4, q·k = 4 → score 2.
    const q4 = { shape: [1, 1, 4], data: new Float32Array([1, 1, 1, 1]) };
    const k4 = { shape: [1, 2, 4], data: new Float32Array([1, 1, 1, 1, 0, 0, 0, 0]) };
    const v4 = { shape: [1, 2, 4], data: new Float32Array([1, 1, 1, 1, 0, 0, 0, 0]) };
    expect(attentionRef({ heads: 1 }, [q4, k4, v4]).data[0]).toBeCloseTo(Math.exp(2) / (Math.exp(2) + 1), 6);
  });
});

describe('attention shapes', () => {
  it('infers [B, Tq, D]', () => {
    expect(attentionOp.infer({ heads: 3 }, [[2, 7, 3 * 15]])).toEqual([[2, 7, 15]]);
    expect(
      attentionOp.infer({ heads: 2 }, [
        [2, 5, 16],
        [2, 9, 16],
        [2, 9, 16],
      ]),
    ).toEqual([[2, 5, 16]]);
  });
  it('throws ShapeErrors naming the shapes', () => {
    const g = new Graph();
    const qkv = g.input('qkv', [2, 7, 3 * 10]);
    expect(() => g.op('attention', [qkv], { heads: 3 }, 'attn')).toThrow(
      /node "attn" \(attention\).*D = 10.*\[2,7,30\].*heads = 3/,
    );
    const bad = g.input('bad', [2, 7, 31]);
    expect(() => g.op('attention', [bad], { heads: 1 })).toThrow(/\[2,7,31\].*3·D/);
    const q = g.input('q', [2, 5, 16]),
      k = g.input('k', [2, 9, 16]),
      v = g.input('v', [2, 8, 16]);
    expect(() => g.op('attention', [q, k, v], { heads: 2 })).toThrow(/q \[2,5,16\], k \[2,9,16\], v \[2,8,16\]/);
    expect(() => g.op('attention', [q, k], { heads: 2 })).toThrow(/ShapeError|got 2 inputs/);
    try {
      g.op('attention', [q, k, v], { heads: 2 });
    } catch (e) {
      expect((e as Error).name).toBe('ShapeError');
    }
  });
  it('prefer parsing, default path, fallback, flops', async () => {
    expect(attentionVariant.parse('fused,ktile=16,rows=2,wg=32,head=loop')).toEqual({
      path: 'fused',
      ktile: 16,
      rows: 2,
      wg: 32,
      head: 'loop',
    });
    expect(() => attentionVariant.parse('flash')).toThrow(/attention variant "flash": unknown token "flash"/);
    const { info } = await testDevice();
    const ctx = { limits: info.limits };
    const fused = attentionOp.lower({ heads: 12 }, [[1, 197, 3 * 768]], [[1, 197, 768]], ctx);
    expect(fused.dispatches.map((d) => d.family)).toEqual(['attention']);
    expect(fused.dispatches[0].flops).toBe(4 * 12 * 197 * 197 * 64);
    const naive = attentionOp.lower({ heads: 12 }, [[1, 197, 3 * 768]], [[1, 197, 768]], {
      ...ctx,
      prefer: { attention: 'naive' },
    });
    expect(naive.dispatches.map((d) => d.family)).toEqual(['attention-naive', 'attention-naive', 'attention-naive']);
    expect(naive.temps).toEqual([12 * 197 * 197]);
    expect(naive.dispatches.reduce((s, d) => s + (d.flops ?? 0), 0)).toBeGreaterThanOrEqual(4 * 12 * 197 * 197 * 64);
    // dh beyond the fused path's register budget falls back to naive.
    expect(attentionOp.lower({ heads: 1 }, [[1, 3, 3 * 512]], [[1, 3, 512]], ctx).dispatches[0].family).toBe(
      'attention-naive',
    );
  });
});

interface Case {
  B: number;
  Tq: number;
  Tk?: number;
  heads: number;
  dh: number;
  qScale?: number;
}
const label = (c: Case) =>
  `B=${c.B} Tq=${c.Tq}${c.Tk !== undefined ? ` Tk=${c.Tk}` : ''} heads=${c.heads} dh=${c.dh}${c.qScale ? ` q×${c.qScale}` : ''}`;

/** Packed qkv when Tk is undefined, else separate q, k, v. qScale blows up the scores. */
function inputsFor(c: Case, seed: number): HostTensor[] {
  const D = c.heads * c.dh;
  if (c.Tk === undefined) {
    const qkv = randTensor([c.B, c.Tq, 3 * D], seed);
    if (c.qScale) for (let i = 0; i < qkv.data.length; i++) if (i % (3 * D) < D) qkv.data[i] *= c.qScale;
    return [qkv];
  }
  const q = randTensor([c.B, c.Tq, D], seed);
  if (c.qScale)
    q.data.forEach((x, i) => {
      q.data[i] = x * c.qScale!;
    });
  return [q, randTensor([c.B, c.Tk, D], seed + 1), randTensor([c.B, c.Tk, D], seed + 2)];
}

describe('attention vs ref, fused vs naive', () => {
  const cases: Case[] = [
    { B: 1, Tq: 197, heads: 1, dh: 64 },
    { B: 2, Tq: 50, heads: 2, dh: 16 },
    { B: 2, Tq: 7, heads: 3, dh: 5 },
    { B: 1, Tq: 1, heads: 2, dh: 8 },
    { B: 2, Tq: 5, Tk: 9, heads: 2, dh: 8 },
    { B: 2, Tq: 17, Tk: 1, heads: 3, dh: 5 },
    { B: 1, Tq: 3, Tk: 50, heads: 1, dh: 64 },
    // Scores of magnitude ~50 (max > 88): exp would overflow f32 without the max subtraction.
    { B: 2, Tq: 33, heads: 2, dh: 8, qScale: 150 },
    { B: 1, Tq: 6, Tk: 19, heads: 3, dh: 16, qScale: 150 },
  ];
  for (const prefer of ATTENTION_VARIANTS) {
    it(`${prefer}: ${cases.length} shapes`, async () => {
      let seed = 40;
      for (const c of cases) {
        const ins = inputsFor(c, (seed += 3));
        const attrs = { heads: c.heads };
        const { y, kernels } = await run(attrs, ins, prefer);
        expect(kernels[0]).toMatch(prefer === 'naive' ? /^attention-naive/ : /^attention\{/);
        expectClose(y, attentionRef(attrs, ins), tol, `${prefer} ${label(c)}`);
      }
    });
  }
  it('fused and naive agree on the GPU (default path, explicit scale, large scores)', async () => {
    const cs: Case[] = [
      { B: 2, Tq: 50, heads: 2, dh: 16, qScale: 30 },
      { B: 1, Tq: 7, Tk: 13, heads: 3, dh: 5 },
    ];
    let seed = 900;
    for (const c of cs) {
      const ins = inputsFor(c, (seed += 3));
      const attrs = { heads: c.heads, scale: 0.37 };
      const fused = await run(attrs, ins);
      const naive = await run(attrs, ins, 'naive');
      expect(fused.kernels).toHaveLength(1);
      expectClose(fused.y, naive.y, tol, `fused vs naive ${label(c)}`);
      expectClose(fused.y, attentionRef(attrs, ins), tol, `fused vs ref ${label(c)}`);
    }
  });
});
