// Depthwise convolution (kernels/depthwise.ts). The file owns no op (conv2d calls it), so the
// lowering runs through a small local harness: the dispatches' WGSL, bindings and workgroup
// counts are used exactly as the executor would use them.

import { describe, expect, it } from 'vitest';
import {
  DEPTHWISE_MODES,
  depthwiseTuneCandidates,
  type DepthwiseAttrs,
  type DepthwiseMode,
  type DepthwiseVariant,
  depthwiseInfer,
  depthwiseRef,
  planDepthwise,
} from '../../kernels/depthwise.js';
import type { Conv2dAttrs } from '../../kernels/conv-geometry.js';
import { conv2dOp, conv2dRef } from '../../kernels/conv2d.js';
import { type HostTensor, type Lowering, numel, ShapeError } from '../../kernels/kernel.js';
import { Graph } from '../../engine/graph.js';
import { expectClose, randTensor, runOp, testDevice } from '../helpers.js';

const Usage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, STORAGE: 0x80 } as const;
const round16 = (bytes: number) => Math.max(16, Math.ceil(bytes / 16) * 16);

/** Runs a one-output lowering on the test device; the output starts as NaN so unwritten elements fail. */
async function runLowering(low: Lowering, inputs: HostTensor[], outShape: number[]): Promise<HostTensor> {
  const { gpu } = await testDevice();
  const make = (data: Float32Array, usage: number) => {
    const b = gpu.createBuffer({ size: round16(data.byteLength), usage: usage | Usage.STORAGE | Usage.COPY_DST });
    gpu.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    return b;
  };
  const ins = inputs.map((t) => make(t.data, 0));
  const outBytes = round16(numel(outShape) * 4);
  const out = make(new Float32Array(outBytes / 4).fill(NaN), Usage.COPY_SRC);
  const temps = (low.temps ?? []).map((n) => make(new Float32Array(Math.ceil(n / 4) * 4), 0));
  const read = gpu.createBuffer({ size: outBytes, usage: Usage.MAP_READ | Usage.COPY_DST });
  try {
    gpu.pushErrorScope('validation');
    const enc = gpu.createCommandEncoder();
    for (const d of low.dispatches) {
      const module = gpu.createShaderModule({ code: d.wgsl() });
      const pipeline = await gpu.createComputePipelineAsync({
        layout: 'auto',
        compute: { module, entryPoint: 'main' },
      });
      const entries = d.bindings.map((r, binding) => ({
        binding,
        resource: { buffer: r.kind === 'input' ? ins[r.index] : r.kind === 'output' ? out : temps[r.index] },
      }));
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
      pass.dispatchWorkgroups(...d.workgroups);
      pass.end();
    }
    enc.copyBufferToBuffer(out, 0, read, 0, outBytes);
    gpu.queue.submit([enc.finish()]);
    const err = await gpu.popErrorScope();
    if (err) throw new Error(`WebGPU validation error: ${err.message}`);
    await read.mapAsync(Usage.MAP_READ);
    const data = new Float32Array(read.getMappedRange().slice(0, numel(outShape) * 4));
    read.unmap();
    return { shape: [...outShape], data };
  } finally {
    for (const b of [...ins, out, ...temps, read]) b.destroy();
  }
}

async function runDepthwise(
  attrs: DepthwiseAttrs,
  inputs: HostTensor[],
  tune: DepthwiseVariant = {},
): Promise<HostTensor> {
  const { info } = await testDevice();
  const shapes = inputs.map((t) => t.shape);
  const [outShape] = depthwiseInfer(attrs, shapes);
  const low = planDepthwise(attrs, shapes, [outShape], { limits: info.limits }, tune);
  return runLowering(low, inputs, [...outShape]);
}

/** x [N,H,W,C], weight [K,K,1,C·mult], optional bias. */
function tensors(x: number[], kh: number, kw: number, mult: number, bias: boolean, seed: number): HostTensor[] {
  const cout = x[3] * mult;
  const t = [randTensor(x, seed), randTensor([kh, kw, 1, cout], seed + 1)];
  if (bias) t.push(randTensor([cout], seed + 2));
  return t;
}

// f32 sums of ≤ 25 products of values in [-1, 1], against a double-precision reference.
const tol = { atol: 2e-6, rtol: 1e-5 };

interface Case {
  name: string;
  x: number[];
  k: [number, number];
  mult?: number;
  bias?: boolean;
  attrs: DepthwiseAttrs;
  /** Variants to run (default: all). */
  variants?: readonly DepthwiseMode[];
}
const cases: Case[] = [
  { name: '3x3 s1 p1 C8 7x9 bias', x: [1, 7, 9, 8], k: [3, 3], bias: true, attrs: { pad: [1, 1, 1, 1] } },
  {
    name: '3x3 s2 p1 C32 relu6',
    x: [1, 8, 8, 32],
    k: [3, 3],
    bias: true,
    attrs: { stride: [2, 2], pad: [1, 1, 1, 1], act: 'relu6' },
  },
  { name: '3x3 s1 p1 C3 batch 2', x: [2, 7, 9, 3], k: [3, 3], bias: true, attrs: { pad: [1, 1, 1, 1] } },
  { name: '3x3 s2 p1 C5 7x9 no bias', x: [1, 7, 9, 5], k: [3, 3], attrs: { stride: [2, 2], pad: [1, 1, 1, 1] } },
  { name: '5x5 s1 p2 C5 relu6', x: [1, 7, 9, 5], k: [5, 5], bias: true, attrs: { pad: [2, 2, 2, 2], act: 'relu6' } },
  {
    name: '5x5 s2 p2 C8 batch 2',
    x: [2, 7, 9, 8],
    k: [5, 5],
    bias: true,
    attrs: { stride: [2, 2], pad: [2, 2, 2, 2] },
  },
  { name: '5x5 s1 no pad C8', x: [1, 7, 9, 8], k: [5, 5], attrs: {} },
  {
    name: '3x3 s2 asymmetric pad [0,0,1,1] C8',
    x: [1, 8, 8, 8],
    k: [3, 3],
    bias: true,
    attrs: { stride: [2, 2], pad: [0, 0, 1, 1] },
  },
  { name: '3x3 asymmetric pad [2,0,0,1] C3', x: [1, 7, 9, 3], k: [3, 3], attrs: { pad: [2, 0, 0, 1] } },
  {
    name: '3x3 dilation 2 pad 2 C8',
    x: [1, 7, 9, 8],
    k: [3, 3],
    bias: true,
    attrs: { pad: [2, 2, 2, 2], dilation: [2, 2] },
  },
  {
    name: '3x3 dilation [2,1] stride [1,2] C5',
    x: [1, 9, 7, 5],
    k: [3, 3],
    attrs: { pad: [1, 0, 1, 1], dilation: [2, 1], stride: [1, 2] },
  },
  {
    name: 'multiplier 2, C3',
    x: [1, 7, 9, 3],
    k: [3, 3],
    mult: 2,
    bias: true,
    attrs: { pad: [1, 1, 1, 1], groups: 3 },
  },
  {
    name: 'multiplier 2, C4 (vec4 out)',
    x: [2, 5, 6, 4],
    k: [3, 3],
    mult: 2,
    bias: true,
    attrs: { stride: [2, 2], pad: [1, 1, 1, 1], act: 'relu6' },
  },
  { name: '1x1 output, 3x3 no pad', x: [2, 3, 3, 8], k: [3, 3], bias: true, attrs: {} },
  { name: '1x1 output, 1x1 input pad 1', x: [1, 1, 1, 5], k: [3, 3], bias: true, attrs: { pad: [1, 1, 1, 1] } },
  { name: '1x3 kernel', x: [1, 4, 9, 8], k: [1, 3], attrs: { pad: [0, 1, 0, 1] } },
  { name: '7x7 kernel C32', x: [1, 9, 9, 32], k: [7, 7], bias: true, attrs: { pad: [3, 3, 3, 3] } },
  // Unrolling 81 taps only costs compile time; 9x9 runs the loop variant by default.
  { name: '9x9 kernel', x: [1, 10, 10, 4], k: [9, 9], attrs: { pad: [4, 4, 4, 4] }, variants: ['loop'] },
];

describe('depthwise', () => {
  for (const cs of cases) {
    for (const variant of cs.variants ?? DEPTHWISE_MODES) {
      it(`${cs.name} (${variant})`, async () => {
        const inputs = tensors(cs.x, cs.k[0], cs.k[1], cs.mult ?? 1, cs.bias ?? false, 11 + cs.x[3]);
        const got = await runDepthwise(cs.attrs, inputs, { variant });
        expectClose(got, depthwiseRef(cs.attrs, inputs)[0], tol, cs.name);
      });
    }
  }

  // Register blocks that do not divide OH/OW, the one-pixel (naive) mapping, both variants.
  const blocks: [number, number][] = [
    [1, 1],
    [3, 2],
    [8, 1],
    [2, 3],
    [4, 4],
  ];
  for (const [pw, ph] of blocks) {
    for (const variant of DEPTHWISE_MODES) {
      it(`register block ${pw}x${ph} (${variant}): 3x3 s2 p1 OH=OW=5 and 3x3 dilation 2 C3`, async () => {
        const a1: DepthwiseAttrs = { stride: [2, 2], pad: [1, 1, 1, 1], act: 'relu6' };
        const in1 = tensors([1, 9, 9, 12], 3, 3, 1, true, 5);
        expectClose(
          await runDepthwise(a1, in1, { variant, pw, ph, wg: 32 }),
          depthwiseRef(a1, in1)[0],
          tol,
          `s2 ${pw}x${ph}`,
        );
        const a2: DepthwiseAttrs = { pad: [2, 1, 1, 2], dilation: [2, 2] };
        const in2 = tensors([2, 7, 9, 3], 3, 3, 1, false, 6);
        expectClose(
          await runDepthwise(a2, in2, { variant, pw, ph }),
          depthwiseRef(a2, in2)[0],
          tol,
          `dil2 ${pw}x${ph}`,
        );
      });
    }
  }

  it('default choices: unrolled 4x4 for 3x3, 4x2 for 7x7, loop for 9x9, prefer overrides, flops', async () => {
    const { info } = await testDevice();
    const ctx = { limits: info.limits };
    const s3 = [
      [1, 8, 8, 8],
      [3, 3, 1, 8],
    ];
    const low = planDepthwise({ pad: [1, 1, 1, 1] }, s3, [[1, 8, 8, 8]], ctx);
    expect(low.dispatches[0].config).toMatchObject({ variant: 'unrolled', pw: 4, ph: 4, xVec4: true, yVec4: true });
    expect(
      planDepthwise(
        {},
        [
          [1, 16, 16, 8],
          [7, 7, 1, 8],
        ],
        [[1, 10, 10, 8]],
        ctx,
      ).dispatches[0].config,
    ).toMatchObject({ variant: 'unrolled', pw: 4, ph: 2 });
    // Blocks never exceed the output: a 1×3 output gets a 3×1 block.
    expect(
      planDepthwise(
        {},
        [
          [1, 3, 5, 8],
          [3, 3, 1, 8],
        ],
        [[1, 1, 3, 8]],
        ctx,
      ).dispatches[0].config,
    ).toMatchObject({ pw: 3, ph: 1 });
    expect(low.dispatches[0].flops).toBe(2 * 8 * 8 * 8 * 9);
    expect(
      planDepthwise(
        {},
        [
          [1, 9, 9, 3],
          [9, 9, 1, 3],
        ],
        [[1, 1, 1, 3]],
        ctx,
      ).dispatches[0].config,
    ).toMatchObject({ variant: 'loop', xVec4: false });
    expect(
      planDepthwise({}, s3, [[1, 6, 6, 8]], { ...ctx, prefer: { depthwise: 'loop' } }).dispatches[0].config,
    ).toMatchObject({ variant: 'loop' });
  });

  it('ref: hand-computed cases', () => {
    // x 2×2 = [1 2; 3 4], one channel, multiplier 2: channel 0 sums a 3×3 window of ones
    // (pad 1 covers the whole image: 10), channel 1 is the identity (centre tap only).
    const x = { shape: [1, 2, 2, 1], data: new Float32Array([1, 2, 3, 4]) };
    const w = new Float32Array(18);
    for (let t = 0; t < 9; t++) w[2 * t] = 1;
    w[2 * 4 + 1] = 1;
    const b = { shape: [2], data: new Float32Array([0.5, -1]) };
    const [y] = depthwiseRef({ pad: [1, 1, 1, 1], act: 'relu6' }, [x, { shape: [3, 3, 1, 2], data: w }, b]);
    expect(y.shape).toEqual([1, 2, 2, 2]);
    // channel 0: relu6(10.5) = 6; channel 1: relu6(x − 1) = 0, 1, 2, 3.
    expect([...y.data]).toEqual([6, 0, 6, 1, 6, 2, 6, 3]);

    // 3×3 input 1..9, 2×2 kernel [1 2; 3 4] with dilation 2, no pad: one output
    // 1·1 + 2·3 + 3·7 + 4·9 = 64; with stride 2 and pad [0,0,1,1] the output is 2×2.
    const x9 = { shape: [1, 3, 3, 1], data: Float32Array.from({ length: 9 }, (_, i) => i + 1) };
    const k = { shape: [2, 2, 1, 1], data: new Float32Array([1, 2, 3, 4]) };
    expect([...depthwiseRef({ dilation: [2, 2] }, [x9, k])[0].data]).toEqual([64]);
    // Windows at (0,0): 1+4+12+20 = 37; (0,2): 3+0+18+0 = 21; (2,0): 7+16 = 23; (2,2): 9.
    const [y2] = depthwiseRef({ stride: [2, 2], pad: [0, 0, 1, 1] }, [x9, k]);
    expect(y2.shape).toEqual([1, 2, 2, 1]);
    expect([...y2.data]).toEqual([37, 21, 23, 9]);
  });

  it('bad shapes throw a ShapeError naming them', () => {
    expect(() =>
      depthwiseInfer({}, [
        [1, 8, 8, 4],
        [3, 3, 1, 6],
      ]),
    ).toThrow(ShapeError);
    expect(() =>
      depthwiseInfer({}, [
        [1, 8, 8, 4],
        [3, 3, 1, 6],
      ]),
    ).toThrow(/\[3,3,1,6\].*\[1,8,8,4\]/);
    expect(() => depthwiseInfer({}, [[1, 8, 8, 4], [3, 3, 1, 4], [5]])).toThrow(/\[5\].*\[3,3,1,4\]/);
    expect(() =>
      depthwiseInfer({ groups: 2 }, [
        [1, 8, 8, 4],
        [3, 3, 1, 4],
      ]),
    ).toThrow(/groups/);
    expect(() =>
      depthwiseInfer({}, [
        [1, 2, 2, 4],
        [3, 3, 1, 4],
      ]),
    ).toThrow(/\[1,2,2,4\]/);
  });
});

// Through the real op: conv2d with groups = C delegates its lowering to lowerDepthwise.
describe('conv2d groups = C (depthwise through the executor)', () => {
  const conv: Case[] = [
    { name: '3x3 s1 p1 C8 relu6', x: [1, 7, 9, 8], k: [3, 3], bias: true, attrs: { pad: [1, 1, 1, 1], act: 'relu6' } },
    {
      name: '3x3 s2 p1 C5 batch 2',
      x: [2, 7, 9, 5],
      k: [3, 3],
      bias: true,
      attrs: { stride: [2, 2], pad: [1, 1, 1, 1] },
    },
    {
      name: '5x5 s2 asymmetric pad C32',
      x: [1, 8, 8, 32],
      k: [5, 5],
      bias: true,
      attrs: { stride: [2, 2], pad: [1, 1, 2, 2] },
    },
    {
      name: '3x3 dilation 2 multiplier 2 C3',
      x: [1, 7, 9, 3],
      k: [3, 3],
      mult: 2,
      bias: true,
      attrs: { pad: [2, 2, 2, 2], dilation: [2, 2] },
    },
  ];
  for (const cs of conv) {
    it(cs.name, async () => {
      const inputs = tensors(cs.x, cs.k[0], cs.k[1], cs.mult ?? 1, cs.bias ?? false, 31 + cs.x[3]);
      const attrs = { ...cs.attrs, groups: cs.x[3] } as Conv2dAttrs;
      const want = depthwiseRef(attrs, inputs)[0];
      // The two references are written independently; they must agree.
      expectClose(conv2dRef(attrs, inputs[0], inputs[1], inputs[2]), want, { atol: 1e-6, rtol: 1e-6 }, 'conv2dRef');
      const { info } = await testDevice();
      const low = conv2dOp.lower(
        attrs,
        inputs.map((t) => t.shape),
        [want.shape],
        { limits: info.limits },
      );
      expect(low.dispatches.map((d) => d.family)).toEqual(['depthwise']);
      const [got] = await runOp('conv2d', { ...attrs }, inputs, [1, 2]);
      expectClose(got, want, tol, cs.name);
    });
  }

  it('a bad depthwise weight shape throws a ShapeError naming the shapes', () => {
    const g = new Graph();
    const x = g.input('x', [1, 8, 8, 4]);
    const w = g.constant('w', [3, 3, 2, 4], new Float32Array(72));
    expect(() => g.op('conv2d', [x, w], { groups: 4, pad: [1, 1, 1, 1] }, 'dw')).toThrow(ShapeError);
    expect(() => g.op('conv2d', [x, w], { groups: 4, pad: [1, 1, 1, 1] }, 'dw2')).toThrow(/\[3,3,2,4\].*\[1,8,8,4\]/);
  });
});

describe('depthwise wgmem (real-GPU variant) limits', () => {
  it('the halo must fit the workgroup memory; the tuner is offered only tilings that fit', async () => {
    const { info } = await testDevice();
    const a: DepthwiseAttrs = { stride: [2, 2], pad: [1, 1, 1, 1] };
    const shapes = [
      [1, 56, 56, 32],
      [3, 3, 1, 32],
    ];
    const low = planDepthwise(a, shapes, [], { limits: info.limits }, { variant: 'wgmem' });
    // 8×8 invocations of one pixel: a 17×17 input window of vec4s.
    expect(low.dispatches[0].config).toMatchObject({ tx: 8, ty: 8, wg: 64 });
    expect(low.dispatches[0].wgsl()).toContain('var<workgroup> tile: array<vec4<f32>, 289>');
    const small = { ...info.limits, maxComputeWorkgroupStorageSize: 4096 };
    expect(() => planDepthwise(a, shapes, [], { limits: small }, { variant: 'wgmem' })).toThrow(
      /17x17 input window needs 4624 bytes of workgroup memory, over maxComputeWorkgroupStorageSize 4096/,
    );
    expect(depthwiseTuneCandidates(a, shapes, { limits: info.limits })).toEqual(
      expect.arrayContaining(['wgmem', 'wgmem,block=2x2']),
    );
    expect(depthwiseTuneCandidates(a, shapes, { limits: small }).some((v) => v.startsWith('wgmem'))).toBe(false);
    // A small output shrinks the workgroup to what it needs.
    const tiny = planDepthwise(
      {},
      [
        [1, 4, 5, 8],
        [3, 3, 1, 8],
      ],
      [],
      { limits: info.limits },
      { variant: 'wgmem' },
    );
    expect(tiny.dispatches[0].config).toMatchObject({ tx: 4, ty: 2 });
  });
});
