import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import { type Conv2dAttrs, conv2dConfig, conv2dDispatchGrid, conv2dFamily, conv2dGeometry, conv2dOp, conv2dRef } from '../../kernels/conv2d.js';
import { type HostTensor, ShapeError } from '../../kernels/kernel.js';
import { expectClose, randTensor, testDevice } from '../helpers.js';

/** Like runOp, with ctx.prefer; w and bias are graph constants. Returns the output and kernel keys. */
async function runConv(attrs: Conv2dAttrs, inputs: HostTensor[], prefer?: Record<string, string>): Promise<{ y: HostTensor; kernels: string[] }> {
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
  { name: '9x5 input, 3x3 valid, Cin 5 -> Cout 7, bias, relu', x: [1, 9, 5, 5], w: [3, 3, 5, 7], attrs: { act: 'relu' }, bias: true },
  { name: 'stem: Cin 3, 7x7 stride 2 pad 3, bias, relu', x: [1, 17, 15, 3], w: [7, 7, 3, 8], attrs: { stride: [2, 2], pad: [3, 3, 3, 3], act: 'relu' }, bias: true },
  { name: 'stride 2, 3x3 pad 1, Cin 8 -> Cout 8, batch 2', x: [2, 9, 9, 8], w: [3, 3, 8, 8], attrs: { stride: [2, 2], pad: [1, 1, 1, 1] } },
  { name: 'stride [1,2], even input, pad [0,1,1,0]', x: [1, 6, 8, 4], w: [3, 3, 4, 4], attrs: { stride: [1, 2], pad: [0, 1, 1, 0] }, bias: true },
  { name: 'asymmetric pad [0,1,2,1], Cin 4 -> Cout 6', x: [1, 5, 6, 4], w: [3, 2, 4, 6], attrs: { pad: [0, 1, 2, 1] }, bias: true },
  { name: 'dilation 2, pad 2, Cin 4 -> Cout 8, relu6', x: [1, 7, 9, 4], w: [3, 3, 4, 8], attrs: { dilation: [2, 2], pad: [2, 2, 2, 2], act: 'relu6' } },
  { name: 'dilation [2,1], stride 2, Cin 7 -> Cout 3', x: [2, 9, 7, 7], w: [3, 3, 7, 3], attrs: { dilation: [2, 1], stride: [2, 2], pad: [1, 0, 1, 2] }, bias: true },
  { name: 'groups 2, Cin 6 -> Cout 4 (3 and 2 per group)', x: [1, 6, 5, 6], w: [3, 3, 3, 4], attrs: { groups: 2, pad: [1, 1, 1, 1] }, bias: true },
  { name: 'groups 2, Cin 8 -> Cout 16 (vec4 per group), relu', x: [2, 5, 5, 8], w: [3, 3, 4, 16], attrs: { groups: 2, pad: [1, 1, 1, 1], act: 'relu' }, bias: true },
  { name: 'groups 4, Cin 16 -> Cout 16, stride 2', x: [1, 7, 7, 16], w: [3, 3, 4, 16], attrs: { groups: 4, stride: [2, 2], pad: [1, 1, 1, 1] } },
  { name: 'groups 4, Cin 8 -> Cout 12 (2 and 3 per group)', x: [1, 5, 4, 8], w: [1, 3, 2, 12], attrs: { groups: 4, pad: [0, 1, 0, 1] }, bias: true },
  { name: 'depthwise groups = Cin = Cout = 8, 3x3 pad 1, relu6', x: [2, 6, 5, 8], w: [3, 3, 1, 8], attrs: { groups: 8, pad: [1, 1, 1, 1], act: 'relu6' }, bias: true },
  { name: 'depthwise with multiplier 2, groups = Cin = 3, stride 2', x: [1, 7, 7, 3], w: [3, 3, 1, 6], attrs: { groups: 3, stride: [2, 2], pad: [1, 1, 1, 1] } },
  { name: 'batch 2, Cin 5 -> Cout 6, no bias', x: [2, 5, 7, 5], w: [3, 3, 5, 6], attrs: { pad: [1, 1, 1, 1] } },
  { name: '1x1 spatial input, 3x3 pad 1', x: [2, 1, 1, 5], w: [3, 3, 5, 8], attrs: { pad: [1, 1, 1, 1] }, bias: true },
  { name: '1x1 spatial input, 1x1 conv (classifier-like)', x: [2, 1, 1, 12], w: [1, 1, 12, 10], attrs: {}, bias: true, pointwise: true },
  { name: '1x1 conv, Cin 8 -> Cout 12, bias, relu', x: [2, 5, 3, 8], w: [1, 1, 8, 12], attrs: { act: 'relu' }, bias: true, pointwise: true },
  { name: '1x1 conv, Cin 5 -> Cout 7', x: [1, 7, 7, 5], w: [1, 1, 5, 7], attrs: {}, pointwise: true },
  { name: '1x1 conv, Cin 12 -> Cout 3, relu6', x: [1, 3, 5, 12], w: [1, 1, 12, 3], attrs: { act: 'relu6' }, bias: true, pointwise: true },
  { name: '1x1 conv, stride 2 (not the plain GEMM)', x: [1, 7, 9, 4], w: [1, 1, 4, 8], attrs: { stride: [2, 2] }, bias: true },
  { name: 'Cout 6 not a multiple of the 4-wide tile', x: [1, 5, 5, 4], w: [3, 3, 4, 6], attrs: { pad: [1, 1, 1, 1] }, bias: true },
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
    ['gemm:3x8', cases[3]], // Cout 8, vec4 ×2, M = 2·5·5 = 50 not a multiple of 3
    ['gemm:5x8', { name: 'Cout 12 with an 8-wide vec4 tile', x: [1, 5, 5, 4], w: [3, 3, 4, 12], attrs: { pad: [1, 1, 1, 1], act: 'relu' }, bias: true }],
    ['gemm:8x8', cases[17]], // pointwise, Cout 12 with 8-wide tile
    ['gemm:2x3', cases[1]], // scalar Cout 7 with 3-wide tile
    ['direct:3x8', cases[9]], // groups 2, 8 channels per group
    ['direct:4x8', { name: 'groups 2, Cout/group 12 with an 8-wide tile', x: [1, 5, 7, 4], w: [3, 3, 2, 24], attrs: { groups: 2, pad: [1, 1, 1, 1] }, bias: true }],
    ['direct:2x2', cases[12]], // depthwise, 1 channel per group
    ['direct:1x1', cases[2]], // stem, one output per invocation
  ];
  for (const [pref, c] of tiles) {
    it(`tile ${pref}: ${c.name}`, async () => {
      const ins = inputsFor(c, 77);
      const { y, kernels } = await runConv(c.attrs, ins, { conv2d: pref });
      const [, tm, tn] = /:(\d+)x(\d+)/.exec(pref)!;
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
      const geo = conv2dGeometry(attrs, ins.map((t) => t.shape));
      const cfg = conv2dConfig(geo, { path, tm: 2, tn: 4, wg: [1, 2] }, 8);
      const workgroups = conv2dDispatchGrid(cfg, 8);
      expect(workgroups[1]).toBeGreaterThan(1);
      const outShape = [geo.n, geo.oh, geo.ow, geo.cout];
      const buf = (data: Float32Array) => {
        const b = gpu.createBuffer({ size: Math.ceil((data.length * 4) / 16) * 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
        gpu.queue.writeBuffer(b, 0, data as Float32Array<ArrayBuffer>);
        return b;
      };
      const outLen = outShape.reduce((a, b) => a * b);
      const bufs = [...ins.map((t) => buf(t.data)), buf(new Float32Array(outLen).fill(NaN))];
      const pipeline = gpu.createComputePipeline({ layout: 'auto', compute: { module: gpu.createShaderModule({ code: conv2dFamily.wgsl(cfg) }), entryPoint: 'main' } });
      const bind = gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: bufs.map((buffer, binding) => ({ binding, resource: { buffer } })) });
      const read = gpu.createBuffer({ size: bufs[bufs.length - 1].size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
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
    const [d] = conv2dOp.lower({ groups: 2, stride: [2, 2], pad: [1, 1, 1, 1] }, [[2, 8, 8, 6], [3, 3, 3, 4], [4]], [[2, 4, 4, 4]], { limits }).dispatches;
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
    expect([...y.data]).toEqual([0.5 + 1 * 4, 0.5 + 2 * 3 + 3 * 4, 0.5 + 4 * 2 + 7 * 4, 0.5 + 5 * 1 + 6 * 2 + 8 * 3 + 9 * 4]);
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
    expect(build([1, 5, 5, 6], [3, 3, 3, 8], { groups: 4 })).toThrow(/\[1,5,5,6\].*Cin = 6 is not divisible by groups = 4/);
    expect(build([1, 5, 5, 4], [3, 3, 2, 6], { groups: 2 }, [8])).toThrow(/bias \[8\] must be \[6\]/);
    expect(build([1, 2, 2, 4], [3, 3, 4, 8])).toThrow(/output would be 0x0.*\[1,2,2,4\].*\[3,3,4,8\]/);
    expect(build([1, 5, 5, 4], [3, 3, 4, 8], { stride: [0, 1] })).toThrow(/stride/);
    expect(build([5, 5, 4], [3, 3, 4, 8])).toThrow(/rank 4.*\[5,5,4\]/);
    expect(build([1, 5, 0, 4], [3, 3, 4, 8])).toThrow(/positive dims.*\[1,5,0,4\]/);
  });
});
