import { describe, expect, it } from 'vitest';
import { poolFor } from '../../engine/buffer-pool.js';
import { createDevice, DeviceLostError } from '../../engine/device.js';
import { InputError, KernelError, TensorTooLargeError } from '../../engine/errors.js';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import { planMemory } from '../../engine/memory-plan.js';
import { formatProfile } from '../../engine/profiler.js';
import { registerOp } from '../../kernels/index.js';
import { type OpDef, input, makeDispatch, output, ShapeError } from '../../kernels/kernel.js';
import { expectClose, rand, testDevice } from '../helpers.js';

/** x → relu → +x → silu → +c: a chain whose intermediates can share buffers. */
function chain(n = 4): Graph {
  const g = new Graph();
  g.input('x', [2, 3, 5, n]);
  const c = g.constant('c', [n], rand(n, 9));
  const a = g.op('activation', ['x'], { act: 'relu' });
  const b = g.op('add', [a, 'x']);
  const s = g.op('activation', [b], { act: 'silu' });
  const d = g.op('add', [s, c], { act: 'relu' });
  g.markOutputs(d);
  return g;
}

describe('memory plan', () => {
  it('shares buffers between tensors whose lifetimes do not overlap', () => {
    const p = planMemory([
      { id: 'a', bytes: 100, first: 0, last: 1 },
      { id: 'b', bytes: 80, first: 1, last: 2 },
      { id: 'c', bytes: 90, first: 2, last: 3 },
      { id: 'd', bytes: 100, first: 3, last: 4 },
    ]);
    expect(p.slotOf.get('a')).toBe(p.slotOf.get('c'));
    expect(p.slotOf.get('a')).not.toBe(p.slotOf.get('b'));
    expect(p.slotBytes.length).toBe(2);
    expect(p.totalBytes).toBe(200);
    expect(p.naiveBytes).toBe(370);
  });

  it('reports peak bytes of a compiled plan below the unplanned total', async () => {
    const plan = await compile(await testDevice(), chain(64));
    const m = plan.memory;
    expect(m.activationBytes).toBeLessThan(m.activationBytesUnplanned);
    expect(m.peakBytes).toBe(m.weightBytes + m.ioBytes + m.activationBytes);
    expect(m.weightBytes).toBe(64 * 4);
    plan.dispose();
  });
});

describe('executor', () => {
  it('matches the CPU reference and records one dispatch per node', async () => {
    const g = chain(7);
    const plan = await compile(await testDevice(), g);
    const x = rand(2 * 3 * 5 * 7, 1);
    const { outputs } = await plan.run({ x });
    expectClose(outputs[g.outputs[0]], runReference(g, { x })[g.outputs[0]], { atol: 1e-6, rtol: 1e-5 });
    expect(plan.dispatchCount).toBe(4);
    plan.dispose();
  });

  it('runs nodes that depend only on constants once, at compile time', async () => {
    const g = new Graph();
    g.input('x', [8]);
    const w = g.constant('w', [8], rand(8, 2));
    const wr = g.op('activation', [w], { act: 'relu' });
    g.markOutputs(g.op('add', ['x', wr]));
    const plan = await compile(await testDevice(), g);
    expect(plan.dispatchCount).toBe(1);
    const x = rand(8, 3);
    const { outputs } = await plan.run({ x });
    expectClose(outputs[g.outputs[0]], runReference(g, { x })[g.outputs[0]], { atol: 0, rtol: 0 });
    plan.dispose();
  });

  it('gives bit-identical outputs on the same inputs, and new results on new inputs', async () => {
    const g = chain(5);
    const plan = await compile(await testDevice(), g);
    const x1 = rand(150, 4),
      x2 = rand(150, 5);
    const a = await plan.run({ x: x1 });
    const b = await plan.run({ x: x2 });
    const c = await plan.run({ x: x1 });
    const o = g.outputs[0];
    expect(Buffer.from(c.outputs[o].data.buffer).equals(Buffer.from(a.outputs[o].data.buffer))).toBe(true);
    expectClose(b.outputs[o], runReference(g, { x: x2 })[o], { atol: 1e-6, rtol: 1e-5 });
    plan.dispose();
  });

  it('keeps the live buffer count flat over 1000 runs and releases everything on dispose', async () => {
    const dev = await testDevice();
    const pool = poolFor(dev.gpu);
    pool.trim();
    const base = pool.stats();
    const plan = await compile(dev, chain(4));
    const x = rand(120, 6);
    await plan.run({ x });
    const after1 = pool.stats().live;
    for (let i = 0; i < 1000; i++) await plan.run({ x });
    expect(pool.stats().live).toBe(after1);
    plan.dispose();
    expect(pool.stats().inUse).toBe(base.inUse);
    pool.trim();
    expect(pool.stats().live).toBe(base.live);
  });

  it('reads back only the requested outputs', async () => {
    const g = new Graph();
    g.input('x', [16]);
    const a = g.op('activation', ['x'], { act: 'relu' });
    const b = g.op('activation', ['x'], { act: 'silu' });
    g.markOutputs(a, b);
    const plan = await compile(await testDevice(), g);
    const { outputs } = await plan.run({ x: rand(16, 7) }, { outputs: [b] });
    expect(Object.keys(outputs)).toEqual([b]);
    plan.dispose();
  });

  it('profiles per dispatch and prints a table of kernels by time', async () => {
    const dev = await testDevice();
    const plan = await compile(dev, chain(16));
    const { profile } = await plan.run({ x: rand(2 * 3 * 5 * 16, 8) }, { profile: true });
    expect(profile!.mode).toBe(dev.hasTimestamps ? 'timestamp' : 'cpu-wall');
    expect(profile!.entries.map((e) => e.family)).toEqual(['activation', 'add', 'activation', 'add']);
    for (const e of profile!.entries) expect(e.ms).toBeGreaterThanOrEqual(0);
    const table = formatProfile(profile!);
    expect(table).toMatch(/activation/);
    expect(table).toMatch(/add/);
    plan.dispose();
  });
});

describe('errors', () => {
  it('a shape mismatch names the node and both shapes', () => {
    const g = new Graph();
    g.input('a', [2, 3]);
    g.input('b', [4, 3]);
    expect(() => g.op('add', ['a', 'b'], {}, 'residual')).toThrow(ShapeError);
    expect(() => g.op('add', ['a', 'b'], {}, 'residual')).toThrow(/node "residual" \(add\).*\[2,3\].*\[4,3\]/);
  });

  it('a tensor over maxStorageBufferBindingSize is refused naming the limit', async () => {
    const dev = await testDevice();
    const limit = dev.info.limits.maxStorageBufferBindingSize;
    const g = new Graph();
    g.input('x', [Math.ceil(limit / 4 / 1024) + 1, 1024]);
    g.markOutputs(g.op('activation', ['x'], { act: 'relu' }, 'big'));
    await expect(compile(dev, g)).rejects.toThrow(TensorTooLargeError);
    await expect(compile(dev, g)).rejects.toThrow(new RegExp(`maxStorageBufferBindingSize of ${limit} bytes`));
  });

  it('bad inputs name what is wrong', async () => {
    const plan = await compile(await testDevice(), chain(4));
    await expect(plan.run({})).rejects.toThrow(/missing input "x" \[2,3,5,4\]/);
    await expect(plan.run({ x: new Float32Array(3) })).rejects.toThrow(
      /input "x" has 3 values but the graph expects \[2,3,5,4\] = 120/,
    );
    await expect(plan.run({ x: new Float32Array(120), y: new Float32Array(1) })).rejects.toThrow(InputError);
    plan.dispose();
  });

  // Two deliberately broken kernels, registered only here.
  const badWgsl: OpDef = {
    op: 'test_bad_wgsl',
    arity: [1, 1],
    infer: (_a, [x]) => [x],
    ref: (_a, [x]) => [x],
    lower: () => ({
      dispatches: [
        makeDispatch(
          {
            name: 'broken_family',
            wgsl: () => '@compute @workgroup_size(1) fn main() { let x: f32 = undefined_thing; }',
          },
          {},
          [1, 1, 1],
          [],
        ),
      ],
    }),
  };
  const tooManyGroups: OpDef = {
    op: 'test_too_many_groups',
    arity: [1, 1],
    infer: (_a, [x]) => [x],
    ref: (_a, [x]) => [x],
    lower: (_a, _i, _o, ctx) => ({
      dispatches: [
        makeDispatch(
          {
            name: 'oversized_dispatch',
            wgsl: () => `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x < 4u) { y[g.x] = x[g.x]; } }`,
          },
          {},
          [ctx.limits.maxComputeWorkgroupsPerDimension + 1, 1, 1],
          [input(0), output(0)],
        ),
      ],
    }),
  };
  registerOp(badWgsl);
  registerOp(tooManyGroups);

  it('WGSL that does not compile is a KernelError naming the kernel and node', async () => {
    const g = new Graph();
    g.input('x', [4]);
    g.markOutputs(g.op('test_bad_wgsl', ['x'], {}, 'my_node'));
    const p = compile(await testDevice(), g);
    await expect(p).rejects.toThrow(KernelError);
    await expect(compile(await testDevice(), g)).rejects.toThrow(/broken_family.*my_node[\s\S]*undefined_thing/);
  });

  it('a WebGPU validation error at run time is a KernelError naming the kernel, not silent zeros', async () => {
    const g = new Graph();
    g.input('x', [4]);
    g.markOutputs(g.op('test_too_many_groups', ['x'], {}, 'huge'));
    const plan = await compile(await testDevice(), g);
    await expect(plan.run({ x: rand(4, 1) })).rejects.toThrow(/validation error[\s\S]*huge/);
    plan.dispose();
  });

  it('device loss surfaces as DeviceLostError', async () => {
    const dev = await createDevice();
    const plan = await compile(dev, chain(4));
    await plan.run({ x: rand(120, 1) });
    dev.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await expect(plan.run({ x: rand(120, 1) })).rejects.toThrow(DeviceLostError);
  });
});
