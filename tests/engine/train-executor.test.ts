// The executor's training support: parameters persist across runs, updates copy into them at the
// end of a run, a second plan binds the same parameter buffers, parameters read and write by name.

import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph, graphFromJSON, graphToJSON, runReference } from '../../engine/graph.js';
import { testDevice } from '../helpers.js';

/** p ← p + x after every run; y = p + x is also an output (read before the copy lands in p). */
function accumulator(): Graph {
  const g = new Graph();
  g.param('p', [5], new Float32Array([1, 2, 3, 4, 5]));
  g.input('x', [5]);
  const y = g.op('add', ['p', 'x'], {}, 'y');
  const r = g.op('reshape', [y], { shape: [5] }, 'r');
  g.markOutputs(y);
  g.update('p', r);
  return g;
}

describe('parameters and updates', () => {
  it('a parameter persists and is updated in place, run after run; another plan shares it', async () => {
    const dev = await testDevice();
    const plan = await compile(dev, accumulator());
    const x = new Float32Array([0.5, -1, 2, 0, 10]);
    const want = [1, 2, 3, 4, 5];
    for (let k = 0; k < 3; k++) {
      const { outputs } = await plan.run({ x });
      for (let i = 0; i < 5; i++) want[i] += x[i];
      expect([...outputs.y.data]).toEqual(want);
    }
    expect([...(await plan.readParams()).get('p')!.data]).toEqual(want);
    expect(plan.memory.paramBytes).toBe(32); // 5 floats rounded to the pool's 16-byte granule
    expect(plan.memory.peakBytes).toBe(
      plan.memory.weightBytes + plan.memory.paramBytes + plan.memory.ioBytes + plan.memory.activationBytes,
    );

    // A predict plan: q = p + p, binding the training plan's buffer for p.
    const g2 = new Graph();
    g2.param('p', [5], new Float32Array(5));
    g2.markOutputs(g2.op('add', ['p', 'p'], {}, 'q'));
    const pred = await compile(dev, g2, { shareParams: plan });
    expect(pred.memory.paramBytes).toBe(0);
    expect([...(await pred.run({})).outputs.q.data]).toEqual(want.map((v) => 2 * v));
    await plan.writeParam('p', new Float32Array([0, 0, 0, 0, 1]));
    expect([...(await pred.run({})).outputs.q.data]).toEqual([0, 0, 0, 0, 2]);
    await expect(plan.writeParam('p', new Float32Array(4))).rejects.toThrow(/needs 5 values, got 4/);
    await expect(plan.readParams(['x'])).rejects.toThrow(/"x" is not a parameter/);
    pred.dispose();
    plan.dispose();

    const bad = new Graph();
    bad.param('p', [4], new Float32Array(4));
    bad.markOutputs(bad.op('add', ['p', 'p']));
    const owner = await compile(dev, accumulator());
    await expect(compile(dev, bad, { shareParams: owner })).rejects.toThrow(/"p" \[4\] cannot share .* \[5\]/);
    owner.dispose();
  });

  it('copies right after the source is made, unless a later node reads the parameter (then at the end)', async () => {
    const dev = await testDevice();
    const x = new Float32Array([1, 2, 3, 4, 5]);
    // p ← p + x, then two more nodes: the source's slot is free again at once, so one slot serves all.
    const a = new Graph();
    a.param('p', [5], new Float32Array(5));
    a.input('x', [5]);
    const y = a.op('add', ['p', 'x'], {}, 'y');
    const q = a.op('add', ['x', 'x'], {}, 'q');
    a.markOutputs(a.op('add', [q, 'x'], {}, 'r'));
    a.update('p', y);
    const pa = await compile(dev, a);
    expect(pa.memory.activationBytes).toBe(32);
    await pa.run({ x });
    await pa.run({ x });
    expect([...(await pa.readParams()).get('p')!.data]).toEqual([2, 4, 6, 8, 10]);
    pa.dispose();
    // z reads p after y is made: z must see the old p, so the copy waits for the end.
    const b = new Graph();
    b.param('p', [5], new Float32Array([1, 1, 1, 1, 1]));
    b.input('x', [5]);
    const yb = b.op('add', ['p', 'x'], {}, 'y');
    const q2 = b.op('add', ['x', 'x'], {}, 'q');
    b.markOutputs(b.op('add', ['p', yb], {}, 'z'), q2);
    b.update('p', yb);
    const pb = await compile(dev, b);
    expect(pb.memory.activationBytes).toBe(32); // y alone (q is an output), kept to the end
    const z1 = (await pb.run({ x })).outputs.z.data;
    expect([...z1]).toEqual([3, 4, 5, 6, 7]); // 1 + (1 + x)
    const z2 = (await pb.run({ x })).outputs.z.data;
    expect([...z2]).toEqual([5, 8, 11, 14, 17]); // (1 + x) + (1 + 2x)
    pb.dispose();
    const c = new Graph();
    c.param('p', [5], new Float32Array(5));
    c.param('q', [5], new Float32Array(5));
    c.input('x', [5]);
    c.markOutputs(c.op('add', ['p', 'x'], {}, 'y'));
    c.update('p', 'y');
    c.update('q', 'p');
    await expect(compile(dev, c)).rejects.toThrow(/update of "q" reads "p", a parameter that is updated itself/);
  });

  it('parameters are not folded at compile time, survive JSON and prune, and runReference reads them', () => {
    const g = accumulator();
    const j = graphFromJSON(JSON.parse(JSON.stringify(graphToJSON(g))));
    expect(j.value('p').kind).toBe('param');
    expect(j.updates).toEqual([['p', 'r']]);
    j.outputs = [];
    j.prune();
    expect(j.nodes.map((n) => n.name)).toEqual(['y', 'r']); // kept alive by the update alone
    const out = runReference(g, { x: new Float32Array(5) }, ['y'], new Map([['p', new Float32Array([9, 9, 9, 9, 9])]]));
    expect([...out.y.data]).toEqual([9, 9, 9, 9, 9]);
    expect(() => g.update('y', 'x')).toThrow(/not a parameter/);
    expect(() => g.update('p', 'x')).toThrow(/already has an update/);
  });
});
