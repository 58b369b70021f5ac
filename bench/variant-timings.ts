// Side-by-side GPU times of chosen variants of one layer on the current adapter: each variant is
// compiled, checked against the heuristic's output (bench/kernels.ts tolerance) and then timed
// by GPU timestamps, fastest of `reps`. Used to show that the real-GPU variants (workgroup
// memory, f16 storage) are right but slow on SwiftShader (docs/kernels-gpu.md); the runner is
// scripts/variant-timings.ts.

import type { Device } from '../engine/device.js';
import { compile } from '../engine/executor.js';
import { Graph } from '../engine/graph.js';
import { compareOutputs, randomFeeds, timeLayer } from './kernels.js';

export interface VariantCase {
  name: string;
  op: string;
  attrs: Record<string, unknown>;
  /** Input shapes; inputs from index 1 on are constants (weights), seeded uniforms. */
  inputs: number[][];
  /** The kernel family whose choice `variants` sets; '' in variants is the heuristic. */
  family: string;
  variants: string[];
}

export interface VariantTiming {
  layer: string;
  variant: string;
  compile_ms: number;
  ms: number;
  gflops: number;
  ok: boolean;
  max_abs_diff: number;
}

export async function timeVariants(device: Device, cases: VariantCase[], reps = 2): Promise<VariantTiming[]> {
  const rows: VariantTiming[] = [];
  for (const c of cases) {
    const g = new Graph();
    const names = c.inputs.map((s, i) => {
      if (i === 0) return g.input('x', s);
      const n = s.reduce((a, b) => a * b, 1);
      const data = Float32Array.from({ length: n }, (_, k) => Math.sin(k * 12.9898 + i) * 0.5);
      return g.constant(`c${i}`, s, data);
    });
    g.markOutputs(g.op(c.op, names, c.attrs, 'layer'));
    const feeds = randomFeeds(g, {}, 1);
    let want: ReturnType<typeof compareOutputs> | undefined;
    let ref: { shape: number[]; data: Float32Array }[] = [];
    for (const v of c.variants) {
      const t0 = performance.now();
      // '' is the specialised heuristic (not the shape-generic default of a CPU adapter).
      const plan = await compile(device, g, { prefer: v ? { [c.family]: v } : {}, genericMaxFlops: {} });
      const compileMs = performance.now() - t0;
      try {
        const first = await plan.run(feeds);
        const got = g.outputs.map((o) => first.outputs[o]);
        if (!v) ref = got;
        want = compareOutputs(got, ref);
        const ms = await timeLayer(plan, feeds, reps);
        const flops = plan.steps.reduce((a, s) => a + (s.dispatch.flops ?? 0), 0);
        rows.push({
          layer: c.name,
          variant: v || '(heuristic)',
          compile_ms: compileMs,
          ms,
          gflops: flops / ms / 1e6,
          ok: want.ok,
          max_abs_diff: want.max_abs_diff,
        });
      } finally {
        plan.dispose();
      }
    }
  }
  return rows;
}

export function formatVariantTimings(rows: VariantTiming[]): string {
  const head = '| layer | variant | compile ms | GPU ms | GFLOP/s | matches heuristic (max abs diff) |';
  const lines = rows.map(
    (r) =>
      `| ${r.layer} | \`${r.variant}\` | ${r.compile_ms.toFixed(0)} | ${r.ms.toFixed(1)} | ${r.gflops.toFixed(2)} | ${r.ok ? 'yes' : 'NO'} (${r.max_abs_diff.toExponential(1)}) |`,
  );
  return [head, '|---|---|---|---|---|---|', ...lines].join('\n');
}
