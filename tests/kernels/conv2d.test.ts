import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import { type Conv2dAttrs, conv2dGeometry } from '../../kernels/conv-geometry.js';
import {
  conv2dConfig,
  conv2dDispatchGrid,
  conv2dFamily,
  conv2dOp,
  conv2dRef,
  conv2dWgmemTilings,
} from '../../kernels/conv2d.js';
import { f16Round } from '../../kernels/f16.js';
import { type HostTensor, ShapeError, input, output } from '../../kernels/kernel.js';
import { expectClose, randTensor, testDevice } from '../helpers.js';

/** Like runOp, with ctx.prefer; w and bias are graph constants. Returns the output and kernel keys. */
async function runConv(
  attrs: Conv2dAttrs,
  inputs: HostTensor[],
  prefer?: Record<string, string>,
): Promise<{ y: HostTensor; kernels: string[] }> {
  const dev = await testDevice();
  const g = new Graph();
  const x = g.input('x', inputs[0].shape);
  const rest = inputs.slice(1).map((t, i) => g.constant(`c${i}`, t.shape, t.data));
  const y = g.op('conv2d', [x, ...rest], attrs as Record<string, unknown>, 'conv');
  g.markOutputs(y);
  const plan = await compile(dev, g, { prefer });
  try {
    const { outputs } = await plan.run({ x: inputs[0].data });
    return { y: outputs[y], kernels: plan.kernels };
  } finally {
    plan.dispose();
  }
}

interface Case {
  name: string;
  x: number[];
  /** [KH, KW, Cin/groups, Cout] */
  w: number[];
  attrs: Conv2dAttrs;
  bias?: boolean;
  /** Expect the gemm path to take the 1×1 plain-GEMM specialisation. */
  pointwise?: boolean;
}

const cases: Case[] = [
  { name: '7x7 input, 3x3 pad 1, Cin 3 -> Cout 5', x: [1, 7, 7, 3], w: [3, 3, 3, 5], attrs: { pad: [1, 1, 1, 1] } },
  {
    name: '9x5 input, 3x3 valid, Cin 5 -> Cout 7, bias, relu',
    x: [1, 9, 5, 5],
    w: [3, 3, 5, 7],
    attrs: { act: 'relu' },
    bias: true,
  },
  {
    name: 'stem: Cin 3, 7x7 stride 2 pad 3, bias, relu',
    x: [1, 17, 15, 3],
    w: [7, 7, 3, 8],
    attrs: { stride: [2, 2], pad: [3, 3, 3, 3], act: 'relu' },
    bias: true,
  },
  {
    name: 'stride 2, 3x3 pad 1, Cin 8 -> Cout 8, batch 2',
    x: [2, 9, 9, 8],
    w: [3, 3, 8, 8],
    attrs: { stride: [2, 2], pad: [1, 1, 1, 1] },
  },
  {
    name: 'stride [1,2], even input, pad [0,1,1,0]',
    x: [1, 6, 8, 4],
    w: [3, 3, 4, 4],
    attrs: { stride: [1, 2], pad: [0, 1, 1, 0] },
    bias: true,
  },
  {
    name: 'asymmetric pad [0,1,2,1], Cin 4 -> Cout 6',
    x: [1, 5, 6, 4],
    w: [3, 2, 4, 6],
    attrs: { pad: [0, 1, 2, 1] },
    bias: true,
  },
  {
    name: 'dilation 2, pad 2, Cin 4 -> Cout 8, relu6',
    x: [1, 7, 9, 4],
    w: [3, 3, 4, 8],
    attrs: { dilation: [2, 2], pad: [2, 2, 2, 2], act: 'relu6' },
  },
  {
    name: 'dilation [2,1], stride 2, Cin 7 -> Cout 3',
    x: [2, 9, 7, 7],
    w: [3, 3, 7, 3],
    attrs: { dilation: [2, 1], stride: [2, 2], pad: [1, 0, 1, 2] },
    bias: true,
  },
  {
    name: 'groups 2, Cin 6 -> Cout 4 (3 and 2 per group)',
    x: [1, 6, 5, 6],
    w: [3, 3, 3, 4],
    attrs: { groups: 2, pad: [1, 1, 1, 1] },
    bias: true,
  },
  {
    name: 'groups 2, Cin 8 -> Cout 16 (vec4 per group), relu',
    x: [2, 5, 5, 8],
    w: [3, 3, 4, 16],
    attrs: { groups: 2, pad: [1, 1, 1, 1], act: 'relu' },
    bias: true,
  },
  {
    name: 'groups 4, Cin 16 -> Cout 16, stride 2',
    x: [1, 7, 7, 16],
    w: [3, 3, 4, 16],
    attrs: { groups: 4, stride: [2, 2], pad: [1, 1, 1, 1] },
  },
  {
    name: 'groups 4, Cin 8 -> Cout 12 (2 and 3 per group)',
    x: [1, 5, 4, 8],
    w: [1, 3, 2, 12],
    attrs: { groups: 4, pad: [0, 1, 0, 1] },
    bias: true,
  },
  {
    name: 'depthwise groups = Cin = Cout = 8, 3x3 pad 1, relu6',
    x: [2, 6, 5, 8],
    w: [3, 3, 1, 8],
    attrs: { groups: 8, pad: [1, 1, 1, 1], act: 'relu6' },
    bias: true,
  },
  {
    name: 'depthwise with multiplier 2, groups = Cin = 3, stride 2',
    x: [1, 7, 7, 3],
    w: [3, 3, 1, 6],
    attrs: { groups: 3, stride: [2, 2], pad: [1, 1, 1, 1] },
  },
  { name: 'batch 2, Cin 5 -> Cout 6, no bias', x: [2, 5, 7, 5], w: [3, 3, 5, 6], attrs: { pad: [1, 1, 1, 1] } },
  { name: '1x1 spatial input, 3x3 pad 1', x: [2, 1, 1, 5], w: [3, 3, 5, 8], attrs: { pad: [1, 1, 1, 1] }, bias: true },
  {
    name: '1x1 spatial input, 1x1 conv (classifier-like)',
    x: [2, 1, 1, 12],
    w: [1, 1, 12, 10],
    attrs: {},
    bias: true,
    pointwise: true,
  },
  {
    name: '1x1 conv, Cin 8 -> Cout 12, bias, relu',
    x: [2, 5, 3, 8],
    w: [1, 1, 8, 12],
    attrs: { act: 'relu' },
    bias: true,
    pointwise: true,
  },
  { name: '1x1 conv, Cin 5 -> Cout 7', x: [1, 7, 7, 5], w: [1, 1, 5, 7], attrs: {}, pointwise: true },
  {
    name: '1x1 conv, Cin 12 -> Cout 3, relu6',
    x: [1, 3, 5, 12],
    w: [1, 1, 12, 3],
    attrs: { act: 'relu6' },
    bias: true,
    pointwise: true,
  },
  {
    name: '1x1 conv, stride 2 (not the plain GEMM)',
    x: [1, 7, 9, 4],
    w: [1, 1, 4, 8],
    attrs: { stride: [2, 2] },
    bias: true,
  },
  {
    name: 'Cout 6 not a multiple of the 4-wide tile',
    x: [1, 5, 5, 4],
    w: [3, 3, 4, 6],
    attrs: { pad: [1, 1, 1, 1] },
    bias: true,
  },
];

// |d| ≤ 2e-5 + 1e-4·|ref|: f32 sums of up to 147 products of values in [-1, 1].
const tol = { atol: 2e-5, rtol: 1e-4 };

function inputsFor(c: Case, seed: number): HostTensor[] {
  const t = [randTensor(c.x, seed), randTensor(c.w, seed + 1)];
  if (c.bias) t.push(randTensor([c.w[3]], seed + 2));
  return t;
}

describe('conv2d', () => {
  for (const path of ['direct', 'gemm'] as const) {
    describe(path, () => {
      cases.forEach((c, k) => {
        it(c.name, async () => {
          const ins = inputsFor(c, 10 * k + 1);
          const { y, kernels } = await runConv(c.attrs, ins, { conv2d: path });
          expect(kernels).toHaveLength(1);
          expect(kernels[0]).toContain(`"path":"${path}"`);
          expect(kernels[0]).toContain(`"pointwise":${path === 'gemm' && !!c.pointwise}`);
          expectClose(y, conv2dOp.ref(c.attrs, ins)[0], tol, c.name);
        });
      });
    });
  }

  // Register tiles other than the default, so vec4 and scalar tiles hang over both edges.
  const tiles: [string, Case][] = [
    ['gemm,tile=3x8', cases[3]], // Cout 8, vec4 ×2, M = 2·5·5 = 50 not a multiple of 3
    [
      'gemm,tile=5x8',
      {
        name: 'Cout 12 with an 8-wide vec4 tile',
        x: [1, 5, 5, 4],
        w: [3, 3, 4, 12],
        attrs: { pad: [1, 1, 1, 1], act: 'relu' },
        bias: true,
      },
    ],
    ['gemm,tile=8x8', cases[17]], // pointwise, Cout 12 with 8-wide tile
    ['gemm,tile=2x3', cases[1]], // scalar Cout 7 with 3-wide tile
    ['direct,tile=3x8', cases[9]], // groups 2, 8 channels per group
    [
      'direct,tile=4x8',
      {
        name: 'groups 2, Cout/group 12 with an 8-wide tile',
        x: [1, 5, 7, 4],
        w: [3, 3, 2, 24],
        attrs: { groups: 2, pad: [1, 1, 1, 1] },
        bias: true,
      },
    ],
    ['direct,tile=2x2', cases[12]], // depthwise, 1 channel per group
    ['direct,tile=1x1', cases[2]], // stem, one output per invocation
  ];
  for (const [pref, c] of tiles) {
    it(`tile ${pref}: ${c.name}`, async () => {
      const ins = inputsFor(c, 77);
      const { y, kernels } = await runConv(c.attrs, ins, { conv2d: pref });
      const [, tm, tn] = /tile=(\d+)x(\d+)/.exec(pref)!;
      expect(kernels[0]).toContain(`"tm":${tm}`);
      expect(kernels[0]).toContain(`"tn":${tn}`);
      expectClose(y, conv2dOp.ref(c.attrs, ins)[0], tol, pref);
    });
  }

  it('default path: gemm for groups 1, direct for grouped, depthwise kernel for groups == Cin', async () => {
    const plain = await runConv({ pad: [1, 1, 1, 1] }, inputsFor(cases[0], 5));
    expect(plain.kernels[0]).toContain('"path":"gemm"');
    const grouped = await runConv(cases[9].attrs, inputsFor(cases[9], 6));
    expect(grouped.kernels[0]).toContain('"path":"direct"');
    const dwIns = inputsFor(cases[12], 7);
    const dw = await runConv(cases[12].attrs, dwIns);
    expect(dw.kernels[0]).toMatch(/^depthwise/);
    expectClose(dw.y, conv2dRef(cases[12].attrs, dwIns[0], dwIns[1], dwIns[2]), tol, 'depthwise delegation');
  });

  it('a 2-D dispatch grid (tiny per-dimension limit) with workgroups past the end', async () => {
    // One or two invocations per workgroup and maxComputeWorkgroupsPerDimension = 8, run by
    // hand since compile() uses the device's real limit.
    // gemm: 2 channel blocks x 35 pixel blocks = 36 workgroups on an 8x5 grid (4 past the end).
    const c = cases[14]; // 2·5·7 pixels x 6 channels
    const attrs: Conv2dAttrs = { ...c.attrs, act: 'relu' };
    const ins = inputsFor(c, 99);
    const { gpu } = await testDevice();
    for (const path of ['direct', 'gemm'] as const) {
      const geo = conv2dGeometry(
        attrs,
        ins.map((t) => t.shape),
      );
      const cfg = conv2dConfig(geo, { path, tm: 2, tn: 4, wg: [1, 2] }, 8);
      const workgroups = conv2dDispatchGrid(cfg, 8);
      expect(workgroups[1]).toBeGreaterThan(1);
      const outShape = [geo.n, geo.oh, geo.ow, geo.cout];
      const buf = (data: Float32Array) => {
        const b = gpu.createBuffer({
          size: Math.ceil((data.length * 4) / 16) * 16,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
        });
        gpu.queue.writeBuffer(b, 0, data as Float32Array<ArrayBuffer>);
        return b;
      };
      const outLen = outShape.reduce((a, b) => a * b);
      const bufs = [...ins.map((t) => buf(t.data)), buf(new Float32Array(outLen).fill(NaN))];
      const pipeline = gpu.createComputePipeline({
        layout: 'auto',
        compute: { module: gpu.createShaderModule({ code: conv2dFamily.wgsl(cfg) }), entryPoint: 'main' },
      });
      const bind = gpu.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: bufs.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      const read = gpu.createBuffer({
        size: bufs[bufs.length - 1].size,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      const enc = gpu.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(...workgroups);
      pass.end();
      enc.copyBufferToBuffer(bufs[bufs.length - 1], 0, read, 0, read.size);
      gpu.queue.submit([enc.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const y = { shape: [...outShape], data: new Float32Array(read.getMappedRange().slice(0, outLen * 4)) };
      read.unmap();
      [...bufs, read].forEach((b) => b.destroy());
      expectClose(y, conv2dRef(attrs, ins[0], ins[1], ins[2]), tol, `${path} on a 2-D grid`);
    }
  });

  it('flops and bytes', () => {
    const limits = { maxComputeWorkgroupsPerDimension: 65535 } as Parameters<typeof conv2dOp.lower>[3]['limits'];
    const [d] = conv2dOp.lower(
      { groups: 2, stride: [2, 2], pad: [1, 1, 1, 1] },
      [[2, 8, 8, 6], [3, 3, 3, 4], [4]],
      [[2, 4, 4, 4]],
      { limits },
    ).dispatches;
    expect(d.flops).toBe(2 * 2 * 4 * 4 * 4 * 3 * 3 * 3);
    expect(d.bytes).toBe(4 * (2 * 8 * 8 * 6 + 3 * 3 * 3 * 4 + 4 + 2 * 4 * 4 * 4));
  });
});

describe('conv2dRef by hand', () => {
  it('stride 2, pad top/left only, bias', () => {
    const x = { shape: [1, 3, 3, 1], data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]) };
    const w = { shape: [2, 2, 1, 1], data: Float32Array.from([1, 2, 3, 4]) };
    const b = { shape: [1], data: Float32Array.from([0.5]) };
    // y[oy,ox] = 0.5 + Σ x[2oy−1+ky, 2ox−1+kx]·w[ky,kx]
    const y = conv2dRef({ stride: [2, 2], pad: [1, 1, 0, 0] }, x, w, b);
    expect(y.shape).toEqual([1, 2, 2, 1]);
    expect([...y.data]).toEqual([
      0.5 + 1 * 4,
      0.5 + 2 * 3 + 3 * 4,
      0.5 + 4 * 2 + 7 * 4,
      0.5 + 5 * 1 + 6 * 2 + 8 * 3 + 9 * 4,
    ]);
  });

  it('groups 2 read their own input channels; dilation skips columns; relu6 clamps', () => {
    const x = { shape: [1, 1, 1, 4], data: Float32Array.from([1, 2, 3, 4]) };
    // w[0,0,ci,co]: group 0 (co 0) sees x0, x1; group 1 (co 1) sees x2, x3.
    const w = { shape: [1, 1, 2, 2], data: Float32Array.from([1, 10, 100, 1000]) };
    expect([...conv2dRef({ groups: 2 }, x, w).data]).toEqual([1 * 1 + 2 * 100, 3 * 10 + 4 * 1000]);
    expect([...conv2dRef({ groups: 2, act: 'relu6' }, x, w).data]).toEqual([6, 6]);
    const row = { shape: [1, 1, 5, 1], data: Float32Array.from([1, 2, 3, 4, 5]) };
    const ones = { shape: [1, 3, 1, 1], data: Float32Array.from([1, 1, 1]) };
    const d = conv2dRef({ dilation: [1, 2] }, row, ones);
    expect(d.shape).toEqual([1, 1, 1, 1]);
    expect([...d.data]).toEqual([1 + 3 + 5]);
  });
});

describe('conv2d shape errors', () => {
  const build = (x: number[], w: number[], attrs: Conv2dAttrs = {}, b?: number[]) => {
    const g = new Graph();
    const ins = [g.input('x', x), g.input('w', w)];
    if (b) ins.push(g.input('b', b));
    return () => g.op('conv2d', ins, attrs as Record<string, unknown>, 'c1');
  };
  it('names the shapes', () => {
    expect(build([1, 5, 5, 4], [3, 3, 3, 8])).toThrow(ShapeError);
    expect(build([1, 5, 5, 4], [3, 3, 3, 8])).toThrow(/weights \[3,3,3,8\].*Cin\/groups = 4\/1 = 4.*\[1,5,5,4\]/);
    expect(build([1, 5, 5, 6], [3, 3, 3, 8], { groups: 4 })).toThrow(
      /\[1,5,5,6\].*Cin = 6 is not divisible by groups = 4/,
    );
    expect(build([1, 5, 5, 4], [3, 3, 2, 6], { groups: 2 }, [8])).toThrow(/bias \[8\] must be \[6\]/);
    expect(build([1, 2, 2, 4], [3, 3, 4, 8])).toThrow(/output would be 0x0.*\[1,2,2,4\].*\[3,3,4,8\]/);
    expect(build([1, 5, 5, 4], [3, 3, 4, 8], { stride: [0, 1] })).toThrow(/stride/);
    expect(build([5, 5, 4], [3, 3, 4, 8])).toThrow(/rank 4.*\[5,5,4\]/);
    expect(build([1, 5, 0, 4], [3, 3, 4, 8])).toThrow(/positive dims.*\[1,5,0,4\]/);
  });
});

// ---- residual (4th input): y = act(conv(x, w) + bias + residual) ----------------------------------

/** x and the residual are graph inputs (activations), w and bias constants. Returns y and the kernel keys. */
async function runConvResidual(
  attrs: Conv2dAttrs,
  ins: HostTensor[],
  prefer?: Record<string, string>,
): Promise<{ y: HostTensor; kernels: string[] }> {
  const dev = await testDevice();
  const g = new Graph();
  const x = g.input('x', ins[0].shape);
  const w = g.constant('w', ins[1].shape, ins[1].data);
  const b = g.constant('b', ins[2].shape, ins[2].data);
  const r = g.input('r', ins[3].shape);
  const y = g.op('conv2d', [x, w, b, r], attrs as Record<string, unknown>, 'conv');
  g.markOutputs(y);
  const plan = await compile(dev, g, { prefer });
  try {
    const { outputs } = await plan.run({ x: ins[0].data, r: ins[3].data });
    return { y: outputs[y], kernels: plan.kernels };
  } finally {
    plan.dispose();
  }
}

/** x, w, bias (zero when `zeroBias`) and a residual of the output's shape, in [-1, 1]. */
function residualInputs(c: Case, seed: number, zeroBias = false): HostTensor[] {
  const geo = conv2dGeometry(c.attrs, [c.x, c.w]);
  const cout = c.w[3];
  return [
    randTensor(c.x, seed),
    randTensor(c.w, seed + 1),
    zeroBias ? { shape: [cout], data: new Float32Array(cout) } : randTensor([cout], seed + 2),
    randTensor([geo.n, geo.oh, geo.ow, cout], seed + 3),
  ];
}

describe('conv2d with a residual', () => {
  const resCases: Case[] = [
    {
      name: '3x3 pad 1, odd 7x5, batch 2, Cin 5 -> Cout 7 (scalar), relu',
      x: [2, 7, 5, 5],
      w: [3, 3, 5, 7],
      attrs: { pad: [1, 1, 1, 1], act: 'relu' },
    },
    {
      name: '3x3 pad 1, 9x7, Cin 4 -> Cout 8 (vec4), none',
      x: [1, 9, 7, 4],
      w: [3, 3, 4, 8],
      attrs: { pad: [1, 1, 1, 1] },
    },
    {
      name: '3x3 stride 2, asymmetric pad, 9x11, Cin 3 -> Cout 12, relu',
      x: [1, 9, 11, 3],
      w: [3, 3, 3, 12],
      attrs: { stride: [2, 2], pad: [1, 0, 1, 2], act: 'relu' },
    },
    {
      name: '1x1 stride 2 (downsample-like), Cin 8 -> Cout 6',
      x: [2, 7, 5, 8],
      w: [1, 1, 8, 6],
      attrs: { stride: [2, 2] },
    },
    {
      name: 'pointwise 1x1, 7x5, Cin 6 -> Cout 7 (scalar), relu',
      x: [1, 7, 5, 6],
      w: [1, 1, 6, 7],
      attrs: { act: 'relu' },
      pointwise: true,
    },
    {
      name: 'pointwise 1x1, batch 2, 5x3, Cin 8 -> Cout 12 (vec4, 8-wide tile overhangs)',
      x: [2, 5, 3, 8],
      w: [1, 1, 8, 12],
      attrs: {},
      pointwise: true,
    },
    {
      name: 'pointwise 1x1, 3x3, Cin 5 -> Cout 16 (vec4, scalar x), relu6',
      x: [1, 3, 3, 5],
      w: [1, 1, 5, 16],
      attrs: { act: 'relu6' },
      pointwise: true,
    },
  ];
  for (const path of ['direct', 'gemm'] as const) {
    describe(path, () => {
      resCases.forEach((c, k) => {
        it(c.name, async () => {
          const ins = residualInputs(c, 300 + 10 * k);
          const { y, kernels } = await runConvResidual(c.attrs, ins, { conv2d: path });
          expect(kernels).toHaveLength(1);
          expect(kernels[0]).toContain(`"path":"${path}"`);
          expect(kernels[0]).toContain(`"pointwise":${path === 'gemm' && !!c.pointwise}`);
          expect(kernels[0]).toContain('"residual":true');
          const want = conv2dOp.ref(c.attrs, ins)[0];
          expectClose(y, want, tol, c.name);
          // The residual is really added: without it the reference differs.
          const without = conv2dOp.ref(c.attrs, ins.slice(0, 3))[0];
          expect(want.data.some((v, i) => Math.abs(v - without.data[i]) > 1e-3)).toBe(true);
        });
      });
    });
  }

  // Tiles hanging over both edges (rows past M or past the output row, channels past Cout).
  const tiles: [string, Case][] = [
    ['gemm,tile=3x8', resCases[1]], // M = 63 not a multiple of 3, Cout 8 vec4
    ['gemm,tile=5x8', resCases[2]], // Cout 12 with an 8-wide vec4 tile
    ['gemm,tile=2x3', resCases[0]], // scalar Cout 7 with a 3-wide tile
    ['gemm,tile=8x8', resCases[5]], // pointwise, Cout 12 with an 8-wide tile
    ['direct,tile=3x8', resCases[1]], // OW 7 not a multiple of 3
    ['direct,tile=4x3', resCases[0]], // OW 5, scalar Cout 7
  ];
  for (const [pref, c] of tiles) {
    it(`tile ${pref}: ${c.name}`, async () => {
      const ins = residualInputs(c, 401);
      const { y, kernels } = await runConvResidual(c.attrs, ins, { conv2d: pref });
      const [, tm, tn] = /tile=(\d+)x(\d+)/.exec(pref)!;
      expect(kernels[0]).toContain(`"tm":${tm}`);
      expect(kernels[0]).toContain(`"tn":${tn}`);
      expectClose(y, conv2dOp.ref(c.attrs, ins)[0], tol, pref);
    });
  }

  it('default paths: gemm for groups 1, direct for grouped, and direct (not the depthwise kernel) for depthwise', async () => {
    const plain = residualInputs(resCases[0], 501, true);
    const p = await runConvResidual(resCases[0].attrs, plain);
    expect(p.kernels[0]).toContain('"path":"gemm"');
    expectClose(p.y, conv2dOp.ref(resCases[0].attrs, plain)[0], tol, 'gemm, zero bias');
    const grouped: Case = {
      name: 'groups 2',
      x: [1, 6, 5, 6],
      w: [3, 3, 3, 4],
      attrs: { groups: 2, pad: [1, 1, 1, 1], act: 'relu' },
    };
    const gi = residualInputs(grouped, 502);
    const gr = await runConvResidual(grouped.attrs, gi);
    expect(gr.kernels[0]).toContain('"path":"direct"');
    expectClose(gr.y, conv2dOp.ref(grouped.attrs, gi)[0], tol, 'grouped');
    for (const dw of [cases[12], cases[13]]) {
      // depthwise 8 -> 8, relu6; multiplier 2, stride 2
      const di = residualInputs(dw, 503);
      const d = await runConvResidual(dw.attrs, di);
      expect(d.kernels).toHaveLength(1);
      expect(d.kernels[0]).toMatch(/^conv2d/);
      expect(d.kernels[0]).toContain('"path":"direct"');
      expectClose(d.y, conv2dOp.ref(dw.attrs, di)[0], tol, dw.name);
    }
  });

  it('conv2dRef adds the residual before the activation', () => {
    const x = { shape: [1, 1, 2, 1], data: Float32Array.from([1, 2]) };
    const w = { shape: [1, 1, 1, 1], data: Float32Array.from([3]) };
    const b = { shape: [1], data: Float32Array.from([0.5]) };
    const r = { shape: [1, 1, 2, 1], data: Float32Array.from([-5, 1]) };
    expect([...conv2dRef({}, x, w, b, r).data]).toEqual([3 + 0.5 - 5, 6 + 0.5 + 1]);
    expect([...conv2dRef({ act: 'relu' }, x, w, b, r).data]).toEqual([0, 7.5]);
    expect(() => conv2dRef({}, x, w, undefined, r)).toThrow(/residual \[1,1,2,1\] needs a bias/);
  });

  it('bytes count the residual read', () => {
    const limits = { maxComputeWorkgroupsPerDimension: 65535 } as Parameters<typeof conv2dOp.lower>[3]['limits'];
    const [d] = conv2dOp.lower(
      { stride: [2, 2], pad: [1, 1, 1, 1] },
      [[2, 8, 8, 6], [3, 3, 6, 4], [4], [2, 4, 4, 4]],
      [[2, 4, 4, 4]],
      { limits },
    ).dispatches;
    expect(d.flops).toBe(2 * 2 * 4 * 4 * 4 * 3 * 3 * 6);
    expect(d.bytes).toBe(4 * (2 * 8 * 8 * 6 + 3 * 3 * 6 * 4 + 4 + 2 * (2 * 4 * 4 * 4)));
    expect(d.bindings).toEqual([input(0), input(1), input(2), input(3), output(0)]);
  });

  it('a residual of the wrong shape is a ShapeError naming both shapes', () => {
    const build = (r: number[]) => {
      const g = new Graph();
      const ins = [g.input('x', [1, 5, 5, 4]), g.input('w', [3, 3, 4, 8]), g.input('b', [8]), g.input('r', r)];
      return () => g.op('conv2d', ins, { pad: [1, 1, 1, 1] }, 'c1');
    };
    expect(build([1, 5, 5, 8])).not.toThrow();
    for (const r of [
      [1, 5, 5, 4],
      [1, 3, 3, 8],
      [2, 5, 5, 8],
      [5, 5, 8],
      [1, 5, 5, 8, 1],
    ]) {
      expect(build(r)).toThrow(ShapeError);
      expect(build(r)).toThrow(new RegExp(`residual \\[${r.join(',')}\\] must have the output's shape \\[1,5,5,8\\]`));
    }
    // More than 4 inputs is an arity error.
    const g = new Graph();
    const ins = [
      g.input('x', [1, 5, 5, 4]),
      g.input('w', [3, 3, 4, 8]),
      g.input('b', [8]),
      g.input('r', [1, 5, 5, 8]),
      g.input('e', [1]),
    ];
    expect(() => g.op('conv2d', ins, { pad: [1, 1, 1, 1] }, 'c2')).toThrow(/takes 2\.\.4 inputs, got 5/);
  });
});

describe('conv2d gemm with subgroup-shared weights (sg)', () => {
  // Cin/groups and the channel tile multiples of 4; M not a multiple of the pixel tile or of
  // the 64-invocation workgroup, so clamped pixel blocks (mLive) are exercised.
  const sgCases: [string, Case][] = [
    [
      'gemm,tile=4x8,sg',
      {
        name: '3x3 pad 1, batch 2, 9x7, Cin 8 -> Cout 16, relu',
        x: [2, 9, 7, 8],
        w: [3, 3, 8, 16],
        attrs: { pad: [1, 1, 1, 1], act: 'relu' },
        bias: true,
      },
    ],
    [
      'gemm,tile=4x16,sg',
      {
        name: '3x3 stride 2, asymmetric pad, 11x9, Cin 4 -> Cout 32',
        x: [1, 11, 9, 4],
        w: [3, 3, 4, 32],
        attrs: { stride: [2, 2], pad: [1, 0, 1, 2] },
        bias: true,
      },
    ],
    [
      'gemm,tile=3x8,sg',
      {
        name: 'Cout 12 with an 8-wide tile, 7x7 pad 3 stem-like, Cin 4',
        x: [1, 13, 11, 4],
        w: [7, 7, 4, 12],
        attrs: { stride: [2, 2], pad: [3, 3, 3, 3], act: 'relu6' },
      },
    ],
    [
      'gemm,tile=8x16,sg',
      {
        name: 'pointwise 1x1, 15x13, Cin 12 -> Cout 48',
        x: [1, 15, 13, 12],
        w: [1, 1, 12, 48],
        attrs: {},
        bias: true,
        pointwise: true,
      },
    ],
    [
      'gemm,tile=8x32,sg',
      {
        name: 'pointwise 1x1, 9x11, Cin 8 -> Cout 40 (32-wide tile overhangs)',
        x: [1, 9, 11, 8],
        w: [1, 1, 8, 40],
        attrs: { act: 'relu' },
        bias: true,
        pointwise: true,
      },
    ],
  ];
  for (const [pref, c] of sgCases) {
    it(`${pref}: ${c.name}`, async () => {
      const dev = await testDevice();
      if (dev.info.subgroupSize !== 4) return; // needs SwiftShader's fixed subgroup size of 4
      const ins = inputsFor(c, 91);
      const { y, kernels } = await runConv(c.attrs, ins, { conv2d: pref });
      expect(kernels[0]).toContain('"sg":4');
      expect(kernels[0]).toContain(`"pointwise":${!!c.pointwise}`);
      expectClose(y, conv2dOp.ref(c.attrs, ins)[0], tol, pref);
    });
  }
  it('with a residual', async () => {
    const dev = await testDevice();
    if (dev.info.subgroupSize !== 4) return;
    const c: Case = { name: 'residual', x: [2, 5, 7, 8], w: [3, 3, 8, 16], attrs: { pad: [1, 1, 1, 1], act: 'relu' } };
    const ins = residualInputs(c, 93);
    const { y, kernels } = await runConvResidual(c.attrs, ins, { conv2d: 'gemm,tile=4x16,sg' });
    expect(kernels[0]).toContain('"residual":true');
    expectClose(y, conv2dOp.ref(c.attrs, ins)[0], tol, 'sg residual');
  });
  it('is refused with a reason where it cannot run', async () => {
    const ins = inputsFor(cases[0], 1); // Cin 3: no vec4 x
    await expect(runConv(cases[0].attrs, ins, { conv2d: 'gemm,tile=4x8,sg' })).rejects.toThrow(
      /'sg' needs the gemm path/,
    );
    await expect(runConv(cases[9].attrs, inputsFor(cases[9], 1), { conv2d: 'direct,tile=4x8,sg' })).rejects.toThrow(
      /'sg' needs the gemm path/,
    );
  });
});

describe('conv2d heuristic on a subgroup-4 device', () => {
  const limits = { maxComputeWorkgroupsPerDimension: 65535 } as never;
  const lower = (x: number[], w: number[], attrs: Conv2dAttrs, subgroupSize: number) =>
    conv2dOp.lower(attrs, [x, w, [w[3]]], [], { limits, subgroupSize }).dispatches[0].config as {
      path: string;
      sg: number;
      tm: number;
      tn: number;
    };
  it('shares weights by subgroup broadcasts on gemm convs over ≥ 28×28 pixels, not elsewhere', () => {
    expect(lower([1, 28, 28, 64], [3, 3, 64, 64], { pad: [1, 1, 1, 1] }, 4)).toMatchObject({
      path: 'gemm',
      sg: 4,
      tm: 4,
      tn: 32,
    });
    expect(lower([1, 56, 56, 64], [1, 1, 64, 256], {}, 4)).toMatchObject({ path: 'gemm', sg: 4, tm: 8, tn: 16 });
    expect(lower([1, 56, 56, 64], [1, 1, 64, 256], {}, 0)).toMatchObject({ sg: 0 }); // no subgroups
    expect(lower([1, 14, 14, 64], [3, 3, 64, 64], { pad: [1, 1, 1, 1] }, 4)).toMatchObject({ sg: 0 }); // small map
    expect(lower([1, 56, 56, 3], [7, 7, 3, 64], {}, 4)).toMatchObject({ sg: 0 }); // Cin 3: no vec4 x
    expect(lower([1, 56, 56, 64], [3, 3, 64, 24], { pad: [1, 1, 1, 1] }, 4)).toMatchObject({ sg: 0 }); // Cout 24
  });
});

describe('conv2d real-GPU variants on SwiftShader (correctness only)', () => {
  // Implicit GEMM through workgroup memory over every awkward case (stride, padding, dilation,
  // groups, depthwise forced through it, Cout not a multiple of 4, 1×1 spatial, batch 2).
  cases.forEach((c, k) => {
    it(`gemm,wgmem: ${c.name}`, async () => {
      const ins = inputsFor(c, 10 * k + 3);
      const { y, kernels } = await runConv(c.attrs, ins, { conv2d: 'gemm,wgmem' });
      expect(kernels[0]).toContain('"tk":16');
      expectClose(y, conv2dOp.ref(c.attrs, ins)[0], tol, c.name);
    });
  });
  const big: Case[] = [
    {
      name: '70 pixels × Cout 68, 3x3 pad 1 stride 2, Cin 8 (several 64×64 tiles, vec4 x)',
      x: [2, 9, 7, 8],
      w: [3, 3, 8, 68],
      attrs: { stride: [2, 2], pad: [1, 1, 1, 1], act: 'relu' },
      bias: true,
    },
    {
      name: 'dilation 2, groups 2, Cin 10 -> Cout 36 (scalar x, vec4 w)',
      x: [1, 11, 9, 10],
      w: [3, 3, 5, 36],
      attrs: { dilation: [2, 2], groups: 2, pad: [2, 1, 2, 1] },
    },
  ];
  for (const v of [
    'gemm,tile=4x4,wgmem,wg=16x16,tk=16',
    'gemm,tile=8x8,wgmem,wg=8x8,tk=8',
    'gemm,tile=3x5,wgmem,wg=4x8,tk=5',
  ]) {
    it(`${v}: ${big.length} shapes and a residual`, async () => {
      let seed = 120;
      for (const c of big) {
        const ins = inputsFor(c, (seed += 3));
        const { y } = await runConv(c.attrs, ins, { conv2d: v });
        expectClose(y, conv2dOp.ref(c.attrs, ins)[0], tol, `${v} ${c.name}`);
      }
      const c: Case = {
        name: 'residual',
        x: [2, 5, 7, 8],
        w: [3, 3, 8, 16],
        attrs: { pad: [1, 1, 1, 1], act: 'relu' },
      };
      const ins = residualInputs(c, 95);
      const { y, kernels } = await runConvResidual(c.attrs, ins, { conv2d: v });
      expect(kernels[0]).toContain('"residual":true');
      expectClose(y, conv2dOp.ref(c.attrs, ins)[0], tol, `${v} residual`);
    });
  }
  it('wgmem tilings are sized from the limits and refused past them', async () => {
    const { info } = await testDevice();
    expect(conv2dWgmemTilings({ ...info.limits, maxComputeInvocationsPerWorkgroup: 64 })).not.toContain(
      'gemm,tile=4x4,wgmem,wg=16x16,tk=16',
    );
    expect(conv2dWgmemTilings({ ...info.limits, maxComputeWorkgroupStorageSize: 4096 })).toEqual([
      'gemm,tile=8x8,wgmem,wg=8x8,tk=8',
    ]);
    const space = (limits: typeof info.limits) =>
      conv2dOp.tuneSpace!(
        { pad: [1, 1, 1, 1] },
        [
          [1, 14, 14, 64],
          [3, 3, 64, 64],
        ],
        { limits },
      )!.candidates;
    expect(space(info.limits)).toEqual(expect.arrayContaining(conv2dWgmemTilings(info.limits)));
    const lower = (prefer: string, limits = info.limits) =>
      conv2dOp.lower(
        {},
        [
          [1, 8, 8, 8],
          [3, 3, 8, 16],
        ],
        [],
        { limits, prefer: { conv2d: prefer } },
      );
    expect(() => lower('gemm,wgmem,wg=16x16,tk=32', { ...info.limits, maxComputeWorkgroupStorageSize: 4096 })).toThrow(
      /workgroup memory, over this device/,
    );
    expect(() => lower('direct,wgmem')).toThrow(/'wgmem' is a variant of the gemm path/);
    expect(() => lower('gemm,tk=8')).toThrow(/'tk' is the K step of 'wgmem'/);
  });

  // f16 storage: weights rounded to half once, f32 arithmetic. Against the reference with the
  // same rounded weights the f32 tolerance holds; against the f32 reference, the tuner's
  // (bench/kernels.ts: |Δ| ≤ 1e-3·max|ref| + 1e-4).
  const f16Cases = [cases[3], cases[9], cases[17], big[0]];
  const rounded = (t: HostTensor): HostTensor => ({ shape: t.shape, data: t.data.map(f16Round) });
  const maxAbs = (t: HostTensor) => t.data.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  for (const v of [
    'gemm,tile=4x8,f16=w',
    'direct,tile=4x8,f16=w',
    'gemm,tile=4x4,wgmem,wg=8x8,tk=16,f16=w',
    'gemm,tile=4x16,sg,f16=w',
  ]) {
    it(`${v} (f16 storage): ${f16Cases.length} shapes`, async () => {
      const dev = await testDevice();
      let seed = 140;
      for (const c of f16Cases) {
        if (v.includes('sg') && (dev.info.subgroupSize !== 4 || c.x[3] % 4 !== 0 || c.w[3] % 16 !== 0)) continue;
        if ((c.w[3] / (c.attrs.groups ?? 1)) % 4 !== 0) continue;
        const ins = inputsFor(c, (seed += 3));
        const { y, kernels } = await runConv(c.attrs, ins, { conv2d: v });
        expect(kernels[0]).toContain('"f16":"w"');
        const withHalves = conv2dOp.ref(c.attrs, [ins[0], rounded(ins[1]), ...ins.slice(2)])[0];
        expectClose(y, withHalves, tol, `${v} ${c.name} vs f16 weights`);
        const want = conv2dOp.ref(c.attrs, ins)[0];
        expectClose(y, want, { atol: 1e-3 * maxAbs(want) + 1e-4, rtol: 0 }, `${v} ${c.name} vs f32`);
      }
    });
  }
  it('full f16 (WGSL only: SwiftShader has no shader-f16), and where f16 is refused', async () => {
    const { info } = await testDevice();
    const ctx = { limits: info.limits, shaderF16: true, constInputs: [false, true, true] };
    for (const v of ['gemm,tile=4x8,f16=all', 'direct,tile=4x8,f16=all', 'gemm,tile=4x4,wgmem,wg=8x8,tk=16,f16=all']) {
      const low = conv2dOp.lower({ pad: [1, 1, 1, 1], act: 'relu' }, [[1, 7, 7, 8], [3, 3, 8, 16], [16]], [], {
        ...ctx,
        prefer: { conv2d: v },
      });
      const src = low.dispatches[0].wgsl();
      expect(src, v).toMatch(/^enable f16;/m);
      expect(src).toContain('var<storage, read> w: array<vec4<f16>>');
      expect(src).toContain('var acc0_0 = vec4<f16>(0.0);');
      expect(src).toMatch(/actT\(vec4<f32>\(acc0_0\)/);
      expect(low.constLayouts?.[0]).toMatchObject({ layout: 'hwio-f16', elements: (3 * 3 * 8 * 16) / 2 });
    }
    const lower = (prefer: string, extra = {}) =>
      conv2dOp.lower(
        {},
        [
          [1, 8, 8, 8],
          [3, 3, 8, 16],
        ],
        [],
        { ...ctx, ...extra, prefer: { conv2d: prefer } },
      );
    expect(() => lower('f16=all', { shaderF16: false })).toThrow(/shader-f16/);
    expect(() => lower('f16=w', { constInputs: [false, false] })).toThrow(/graph constant/);
    expect(() =>
      conv2dOp.lower(
        {},
        [
          [1, 8, 8, 8],
          [3, 3, 8, 6],
        ],
        [],
        { ...ctx, prefer: { conv2d: 'gemm,f16=w' } },
      ),
    ).toThrow(/multiples of 4/);
    const space = (shaderF16: boolean) =>
      conv2dOp.tuneSpace!(
        {},
        [
          [1, 14, 14, 64],
          [1, 1, 64, 64],
        ],
        { ...ctx, shaderF16 },
      )!.candidates;
    expect(space(true)).toEqual(expect.arrayContaining(['gemm,tile=4x8,f16=w', 'gemm,tile=4x8,f16=all']));
    expect(space(false).some((v) => v.includes('f16'))).toBe(false);
  });

  it("'sg' on subgroups of 4..16 lanes: (lane mod 4) loads, right on SwiftShader's 4", async () => {
    const dev = await testDevice();
    const { info } = dev;
    const cfg = (min: number, max: number) =>
      conv2dOp.lower(
        {},
        [
          [1, 8, 8, 8],
          [3, 3, 8, 16],
        ],
        [],
        {
          limits: info.limits,
          subgroupMinSize: min,
          subgroupMaxSize: max,
          prefer: { conv2d: 'gemm,tile=4x16,sg' },
        },
      ).dispatches[0];
    expect(cfg(4, 4).config).toMatchObject({ sg: 4, sgWide: false });
    expect(cfg(8, 32).config).toMatchObject({ sg: 4, sgWide: true });
    expect(cfg(8, 32).wgsl()).toContain('(sl % 4u)');
    expect(() => cfg(32, 128)).toThrow(/subgroups of 4 to 64 lanes \(this device: 32\.\.128\)/);
    if (info.subgroupSize !== 4) return;
    const wide = { ...dev, info: { ...info, subgroupMinSize: 4, subgroupMaxSize: 16 } };
    const c: Case = { name: 'sg wide', x: [1, 9, 7, 8], w: [3, 3, 8, 32], attrs: { pad: [1, 1, 1, 1] }, bias: true };
    const ins = inputsFor(c, 151);
    const g = new Graph();
    const x = g.input('x', c.x);
    const rest = ins.slice(1).map((t, i) => g.constant(`c${i}`, t.shape, t.data));
    const y = g.op('conv2d', [x, ...rest], c.attrs as Record<string, unknown>, 'conv');
    g.markOutputs(y);
    const plan = await compile(wide, g, { prefer: { conv2d: 'gemm,tile=4x16,sg' } });
    try {
      expect(plan.kernels[0]).toContain('"sgWide":true');
      const { outputs } = await plan.run({ x: ins[0].data });
      expectClose(outputs[y], conv2dOp.ref(c.attrs, ins)[0], tol, 'sg wide');
    } finally {
      plan.dispose();
    }
  });
});

describe('conv2d shape-generic pointwise kernel (generic)', () => {
  const pw: Case[] = [
    {
      name: '1x1 Cin 8 -> Cout 12, bias, relu, batch 2',
      x: [2, 5, 3, 8],
      w: [1, 1, 8, 12],
      attrs: { act: 'relu' },
      bias: true,
    },
    {
      name: '1x1 Cin 16 -> Cout 40, 7x9, relu6',
      x: [1, 7, 9, 16],
      w: [1, 1, 16, 40],
      attrs: { act: 'relu6' },
      bias: true,
    },
    { name: '1x1 Cin 4 -> Cout 8, no bias, 1x1 spatial', x: [3, 1, 1, 4], w: [1, 1, 4, 8], attrs: {} },
  ];
  for (const v of ['gemm,generic', 'gemm,tile=3x8,generic', 'gemm,tile=5x4,generic']) {
    it(`${v}: ${pw.length} shapes`, async () => {
      let seed = 160;
      for (const c of pw) {
        const ins = inputsFor(c, (seed += 3));
        const { y, kernels } = await runConv(c.attrs, ins, { conv2d: v });
        expect(kernels[0]).toMatch(/^conv2d-pointwise-generic\{/);
        expectClose(y, conv2dOp.ref(c.attrs, ins)[0], tol, `${v} ${c.name}`);
      }
    });
  }
  it('with a residual', async () => {
    const c: Case = { name: 'residual', x: [2, 5, 7, 8], w: [1, 1, 8, 16], attrs: { act: 'relu' } };
    const ins = residualInputs(c, 97);
    const { y, kernels } = await runConvResidual(c.attrs, ins, { conv2d: 'gemm,generic' });
    expect(kernels[0]).toContain('"residual":true');
    expectClose(y, conv2dOp.ref(c.attrs, ins)[0], tol, 'generic residual');
  });
  it('one pipeline serves pointwise convs of different shapes; the key holds no shape', async () => {
    const dev = await testDevice();
    const g = new Graph();
    const x = g.input('x', [1, 6, 5, 8]);
    const w1 = g.constant('w1', [1, 1, 8, 24], randTensor([1, 1, 8, 24], 1).data);
    const b1 = g.constant('b1', [24], randTensor([24], 2).data);
    const w2 = g.constant('w2', [1, 1, 24, 16], randTensor([1, 1, 24, 16], 3).data);
    const b2 = g.constant('b2', [16], randTensor([16], 4).data);
    const h = g.op('conv2d', [x, w1, b1], { act: 'relu' }, 'pw1');
    const y = g.op('conv2d', [h, w2, b2], { act: 'relu' }, 'pw2');
    g.markOutputs(y);
    const plan = await compile(dev, g, { prefer: { conv2d: 'gemm,generic' } });
    try {
      expect(plan.kernels).toHaveLength(2);
      expect(plan.kernels[0]).toBe(plan.kernels[1]);
      expect(plan.kernels[0]).not.toMatch(/24|"cin"|"m"/);
      const xin = randTensor([1, 6, 5, 8], 5);
      const { outputs } = await plan.run({ x: xin.data });
      const ref = runReference(g, { x: xin.data });
      expectClose(outputs[y], ref[y], tol, 'two generic layers');
    } finally {
      plan.dispose();
    }
  });
  it('is refused with a reason where it does not apply', async () => {
    const lower = (x: number[], w: number[], prefer: string, attrs: Conv2dAttrs = {}, constW = true) =>
      conv2dOp.lower(attrs, [x, w], [], {
        limits: { maxComputeWorkgroupsPerDimension: 65535 } as never,
        constInputs: [false, constW],
        prefer: { conv2d: prefer },
      });
    expect(() => lower([1, 5, 5, 8], [3, 3, 4, 8], 'gemm,generic', { pad: [1, 1, 1, 1], groups: 2 })).toThrow(
      /'generic' takes only gemm/,
    );
    expect(() => lower([1, 5, 5, 6], [1, 1, 6, 8], 'gemm,generic')).toThrow(/Cin and Cout multiples of 4/);
    expect(() => lower([1, 5, 5, 8], [1, 1, 8, 8], 'gemm,generic', {}, false)).toThrow(/constant weights/);
    expect(() => lower([1, 5, 5, 8], [1, 1, 8, 8], 'gemm,sg,generic')).toThrow(/'generic' takes only gemm/);
    expect(lower([1, 5, 5, 8], [1, 1, 8, 8], 'gemm,generic').constLayouts?.[0].elements).toBe(4 + 64);
  });
});
