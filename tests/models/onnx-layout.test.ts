// The importer's layout decisions (models/onnx/convert.ts) on their own: when an ONNX reshape of
// a value held in another axis order is a free alias, and which holding its result gets.

import { describe, expect, it } from 'vitest';
import { Graph, runReference } from '../../engine/graph.js';
import { Converter } from '../../models/onnx/convert.js';
import { keepsOrder, reshapedPerm } from '../../models/onnx/layout.js';
import { rand } from '../helpers.js';

describe('reshapedPerm', () => {
  it('ViT patch tokens: NCHW [N,D,h,w] held NHWC → [N,D,h·w] is [N,h·w,D] on our side', () => {
    expect(reshapedPerm([2, 32, 4, 4], [0, 2, 3, 1], [2, 32, 16])).toEqual([0, 2, 1]);
    expect(reshapedPerm([1, 32, 4, 4], [0, 2, 3, 1], [1, 32, 16])).toEqual([0, 2, 1]);
  });
  it('flatten after global pooling keeps PyTorch order (only size-1 dims move)', () => {
    expect(reshapedPerm([2, 24, 1, 1], [0, 2, 3, 1], [2, 24])).toEqual([0, 1]);
    expect(keepsOrder([2, 24, 1, 1], [0, 2, 3, 1])).toBe(true);
    expect(keepsOrder([2, 24, 3, 1], [0, 2, 3, 1])).toBe(false);
  });
  it('refuses a flatten of C·H·W held NHWC (the memory order is H·W·C)', () => {
    expect(reshapedPerm([2, 5, 3, 3], [0, 2, 3, 1], [2, 45])).toBeUndefined();
  });
  it('splits a held dim in place', () => {
    // [N,C,H,W] held NHWC, C = 6 → [N,2,3,H,W]: on our side [N,H,W,2,3]
    expect(reshapedPerm([2, 6, 5, 7], [0, 2, 3, 1], [2, 2, 3, 5, 7])).toEqual([0, 3, 4, 1, 2]);
  });
});

describe('Converter.reshape', () => {
  it('matches a plain reshape of the ONNX tensor, free or through a transpose', () => {
    for (const [shape, target] of [
      [
        [2, 6, 5, 7],
        [2, 2, 3, 5, 7],
      ],
      [
        [2, 5, 3, 3],
        [2, 45],
      ],
      [
        [2, 4, 3, 3],
        [2, 4, 9],
      ],
    ] as [number[], number[]][]) {
      const g = new Graph();
      const [n, c, h, w] = shape;
      const x = g.input('x', [n, h, w, c]);
      const cv = new Converter(g, 13);
      const before = g.nodes.length;
      const r = cv.reshape(cv.act(x, shape, [0, 2, 3, 1]), target);
      const out = cv.plain(r);
      g.markOutputs(out);
      const data = rand(n * c * h * w, 9);
      const got = runReference(g, { x: data })[out];
      // Expected: the NHWC data viewed as NCHW, then reshaped (row-major) to target.
      const nchw = new Float32Array(data.length);
      for (let b = 0; b < n; b++)
        for (let y = 0; y < h; y++)
          for (let z = 0; z < w; z++)
            for (let k = 0; k < c; k++) nchw[((b * c + k) * h + y) * w + z] = data[((b * h + y) * w + z) * c + k];
      expect(got.shape).toEqual(target);
      expect([...got.data]).toEqual([...nchw]);
      expect(g.nodes.length).toBeGreaterThanOrEqual(before);
    }
  });
});
