// CompileOptions.streamPipelines: pipelines requested in node order, compile() returning before
// they are built, the first run submitting chunks as its pipelines resolve, with the same results.
import { describe, expect, it } from 'vitest';
import { createDevice, kernelContext } from '../../engine/device.js';
import { KernelError } from '../../engine/errors.js';
import { GENERIC_MAX_FLOPS, compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import { registerOp } from '../../kernels/index.js';
import { makeDispatch, type OpDef } from '../../kernels/kernel.js';
import { expectClose, rand, testDevice } from '../helpers.js';

/** x → conv 3×3 (stride 2, pad 1) → relu → add c → silu → conv 1×1, with a compile-time node (c = w0 + w1). */
function net(): Graph {
  const g = new Graph();
  g.input('x', [1, 9, 7, 5]);
  const w = g.constant('w', [3, 3, 5, 6], rand(3 * 3 * 5 * 6, 1));
  const c0 = g.constant('c0', [6], rand(6, 2));
  const c1 = g.constant('c1', [6], rand(6, 3));
  const c = g.op('add', [c0, c1]);
  const y1 = g.op('conv2d', ['x', w], { stride: [2, 2], pad: [1, 1, 1, 1] });
  const y2 = g.op('activation', [y1], { act: 'relu' });
  const y3 = g.op('add', [y2, c]);
  const y4 = g.op('activation', [y3], { act: 'silu' });
  const w2 = g.constant('w2', [1, 1, 6, 3], rand(6 * 3, 4));
  g.markOutputs(g.op('conv2d', [y4, w2], {}));
  return g;
}

/** Wraps the device's pipeline creation: records the order of requests and holds back those whose key matches `hold`. */
function instrument(gpu: GPUDevice, hold: RegExp) {
  const requested: string[] = [];
  const held: (() => void)[] = [];
  let submits = 0;
  const create = gpu.createComputePipelineAsync.bind(gpu);
  gpu.createComputePipelineAsync = (desc: GPUComputePipelineDescriptor) => {
    const key = desc.compute.module.label;
    requested.push(key);
    const p = create(desc);
    if (!hold.test(key)) return p;
    return new Promise((resolve, reject) => held.push(() => p.then(resolve, reject)));
  };
  const submit = gpu.queue.submit.bind(gpu.queue);
  gpu.queue.submit = (cbs: Iterable<GPUCommandBuffer>) => {
    submits++;
    submit(cbs);
  };
  return { requested, release: () => held.splice(0).forEach((f) => f()), submits: () => submits, held };
}

describe('streamed pipelines (cold start)', () => {
  it('requests pipelines in node order, runs before the last is built, and gives the same bits', async () => {
    const g = net();
    const x = rand(9 * 7 * 5, 5);
    const ref = await compile(await testDevice(), g);
    const want = (await ref.run({ x })).outputs[g.outputs[0]].data;
    ref.dispose();

    const dev = await createDevice();
    const spy = instrument(dev.gpu, /silu/);
    const plan = await compile(dev, g, { streamPipelines: true });
    // Node order, each key once, where it is first used (the compile-time add is the first node).
    expect(new Set(spy.requested).size).toBe(spy.requested.length);
    const firstUse = [...new Set(plan.steps.map((s) => s.dispatch.key))];
    expect(spy.requested.filter((k) => firstUse.includes(k))).toEqual(firstUse);
    expect(spy.held.length).toBe(1);

    const before = spy.submits();
    const run = plan.run({ x });
    // The steps before the held silu kernel are submitted while it is still being "built".
    for (let i = 0; i < 200 && spy.submits() === before; i++) await new Promise((r) => setTimeout(r, 5));
    expect(spy.submits()).toBeGreaterThan(before);
    expect(spy.held.length).toBe(1);
    spy.release();
    const got = (await run).outputs[g.outputs[0]].data;
    expect(Array.from(got)).toEqual(Array.from(want));
    // Later runs use the ordinary one-submit path, same bits.
    const again = (await plan.run({ x })).outputs[g.outputs[0]].data;
    expect(Array.from(again)).toEqual(Array.from(want));
    // Profiling a streamed plan waits for its pipelines and times every step.
    const plan2 = await compile(dev, g, { streamPipelines: true });
    const p = await plan2.run({ x }, { profile: true });
    expect(p.profile!.entries.length).toBe(plan2.steps.length);
    expect(Array.from(p.outputs[g.outputs[0]].data)).toEqual(Array.from(want));
    plan.dispose();
    plan2.dispose();
    dev.destroy();
  });

  const badWgsl: OpDef = {
    op: 'test_stream_bad_wgsl',
    arity: [1, 1],
    infer: (_a, [x]) => [x],
    ref: (_a, [x]) => [x],
    lower: () => ({
      dispatches: [
        makeDispatch(
          { name: 'broken_stream_family', wgsl: () => '@compute @workgroup_size(1) fn main() { let x: f32 = nope; }' },
          {},
          [1, 1, 1],
          [],
        ),
      ],
    }),
  };
  registerOp(badWgsl);

  it('a kernel that fails to build is a KernelError naming it and its node at the first run', async () => {
    const g = new Graph();
    g.input('x', [4]);
    const a = g.op('activation', ['x'], { act: 'relu' });
    g.markOutputs(g.op('test_stream_bad_wgsl', [a], {}, 'bad_node'));
    const plan = await compile(await testDevice(), g, { streamPipelines: true });
    const run = plan.run({ x: rand(4, 1) });
    await expect(run).rejects.toThrow(KernelError);
    await expect(run).rejects.toThrow(/broken_stream_family.*bad_node[\s\S]*nope/);
    plan.dispose();
  });
});

describe('generic kernels on a CPU adapter (genericMaxFlops)', () => {
  it('uses the shape-generic variant on untuned layers up to the limit, the heuristic above it, when told or when off', async () => {
    const g = new Graph();
    g.input('x', [1, 6, 5, 8]);
    const c = (name: string, shape: number[], seed: number) =>
      g.constant(
        name,
        shape,
        rand(
          shape.reduce((a, b) => a * b),
          seed,
        ),
      );
    const p = g.op('conv2d', ['x', c('pw', [1, 1, 8, 16], 1), c('pb', [16], 2)], {}); // 7 680 FLOPs
    const k = g.op('conv2d', [p, c('kw', [3, 3, 16, 16], 3)], { pad: [1, 1, 1, 1] }); // 138 240
    const d = g.op('conv2d', [k, c('dw', [3, 3, 1, 16], 4), c('db', [16], 5)], { groups: 16, pad: [1, 1, 1, 1] }); // 8 640
    g.markOutputs(d);
    const dev = await testDevice();
    const cpu = kernelContext(dev.info).cpuAdapter === true;
    const x = rand(6 * 5 * 8, 6);
    const want = runReference(g, { x })[d];
    const plan = await compile(dev, g, { genericMaxFlops: 10_000 });
    const fam = plan.kernels.map((key) => key.slice(0, key.indexOf('{')));
    expect(fam).toEqual(
      cpu ? ['conv2d-pointwise-generic', 'conv2d', 'depthwise-generic'] : ['conv2d', 'conv2d', 'depthwise'],
    );
    expectClose((await plan.run({ x })).outputs[d], want, { atol: 1e-5, rtol: 1e-5 });
    plan.dispose();
    // A preference for the family wins.
    const told = await compile(dev, g, { genericMaxFlops: 10_000, prefer: { depthwise: 'unrolled' } });
    expect(told.kernels[2]).toMatch(/^depthwise\{/);
    told.dispose();
    // Limits by family: only the depthwise conv here.
    const byFamily = await compile(dev, g, { genericMaxFlops: { depthwise: 1e9 } });
    expect(byFamily.kernels.map((key) => key.includes('generic'))).toEqual([false, false, cpu]);
    byFamily.dispose();
    // Off.
    const off = await compile(dev, g, { genericMaxFlops: {} });
    expect(off.kernels.map((key) => key.slice(0, key.indexOf('{')))).toEqual(['conv2d', 'conv2d', 'depthwise']);
    off.dispose();
    // The default (GENERIC_MAX_FLOPS: every conv) takes all three on a CPU adapter, none elsewhere.
    expect(GENERIC_MAX_FLOPS.conv2d).toBe(Number.POSITIVE_INFINITY);
    const all = await compile(dev, g);
    expect(all.kernels.every((key) => key.includes('generic'))).toBe(cpu);
    expectClose((await all.run({ x })).outputs[d], want, { atol: 1e-5, rtol: 1e-5 });
    // Bad limits are named, on every adapter.
    await expect(compile(dev, g, { genericMaxFlops: { conv: 1e9 } })).rejects.toThrow(
      /genericMaxFlops: unknown kernel family "conv" \(families: conv2d, depthwise, matmul/,
    );
    await expect(compile(dev, g, { genericMaxFlops: { depthwise: Number.NaN } })).rejects.toThrow(
      /genericMaxFlops\.depthwise: a FLOP count >= 0 \(or Infinity\), got NaN/,
    );
    await expect(compile(dev, g, { genericMaxFlops: -1 })).rejects.toThrow(/genericMaxFlops: .* got -1/);
    all.dispose();
  });
});
