// Kernel benchmarks on the real layer shapes of whole models. Each heavy node of a model's
// optimised graph (convs, matmuls, attention, norms, softmax, pooling) becomes a one-node graph;
// identical nodes (same op, attrs and input shapes) are timed once and counted. Every layer is
// validated against its op's CPU reference before it is timed (llm.c's rule), then timed by
// the executor's profiler (timestamp queries where the adapter has them) and placed on the
// adapter's measured roofline.
//
// A layer's graph keeps the weights of conv2d/matmul as constants, as the model does, so
// whatever the executor does to constants at compile time (weight standardisation, say) is not
// timed; every other input becomes a graph input, fed with the model's own constant data where
// it had some (norm scales, say) and seeded uniforms otherwise (activations).
//
// Runs in Node and in the page: no Node-only imports.

import type { Device } from '../engine/device.js';
import { type Plan, compile } from '../engine/executor.js';
import { type Node, Graph, runReference } from '../engine/graph.js';
import { optimize } from '../engine/passes.js';
import { layerKey } from '../engine/tuning.js';
import { getOp } from '../kernels/index.js';
import { type HostTensor, fmtShape, numel } from '../kernels/kernel.js';
import type { Prefer } from '../kernels/variant.js';
import { Rng } from '../models/init.js';
import { loadModel } from '../models/index.js';
import type { Roofline } from './roofline.js';
import type { KernelBench } from './schema.js';

/** Ops worth timing on their own: where a model's time goes. */
export const HEAVY_OPS = new Set([
  'conv2d',
  'matmul',
  'attention',
  'batchnorm',
  'group_norm',
  'layernorm',
  'softmax',
  'maxpool',
  'avgpool',
  'global_avgpool',
]);

/** Inputs (by index) that are weights when the model holds them as constants or static values. */
const WEIGHT_INPUTS: Record<string, number[]> = { conv2d: [1, 2], matmul: [1, 2] };

export interface Layer {
  /** The first model the layer was seen in, and its node name there. */
  model: string;
  node: string;
  op: string;
  /** Every model that has it. */
  models: string[];
  /** How many nodes, across all models collected, have this op, attrs and input shapes. */
  count: number;
  /** Input shapes and the attrs that matter, for tables. */
  shape: string;
  /** The one-node graph: weights as constants, every other input a graph input. */
  graph: Graph;
  /** Data for graph inputs that were constants in the model (the rest are fed seeded uniforms). */
  feeds: Record<string, Float32Array>;
}

export interface CollectOptions {
  batch?: number;
  size?: number;
  /** Seed of the random weights (default 0). */
  seed?: number;
}

/** Build each model, optimise it, and gather its heavy nodes, deduplicated within and across models. */
export async function collectLayers(models: string[], o: CollectOptions = {}): Promise<Layer[]> {
  const byKey = new Map<string, Layer>();
  for (const name of models) {
    const m = await loadModel(name, { weights: 'random', batch: o.batch ?? 1, size: o.size, seed: o.seed });
    const { graph } = optimize(m.graph);
    const statics = new StaticValues(graph);
    for (const n of graph.nodes) {
      if (!HEAVY_OPS.has(n.op)) continue;
      // One layer per tuning-table key (engine/tuning.ts): the table holds one choice per key.
      const key = layerKey(
        n.op,
        n.attrs,
        n.inputs.map((x) => graph.shape(x)),
      );
      const seen = byKey.get(key);
      if (seen) {
        seen.count++;
        if (!seen.models.includes(name)) seen.models.push(name);
        continue;
      }
      byKey.set(key, {
        model: name,
        node: n.name,
        op: n.op,
        models: [name],
        count: 1,
        shape: describeLayer(graph, n),
        ...isolate(graph, n, statics),
      });
    }
  }
  return [...byKey.values()];
}

/** Values computable from constants alone (what the executor runs at compile time), evaluated on the CPU on demand. */
class StaticValues {
  private cache = new Map<string, Float32Array | null>();
  constructor(private readonly g: Graph) {}

  get(name: string): Float32Array | null {
    const hit = this.cache.get(name);
    if (hit !== undefined) return hit;
    const v = this.g.value(name);
    let out: Float32Array | null = null;
    if (v.kind === 'const') out = v.data!;
    else if (v.kind === 'node') {
      const p = this.g.producer(name)!;
      const ins = p.inputs.map((x) => this.get(x));
      if (ins.length > 0 && ins.every((d) => d !== null)) {
        const res = getOp(p.op).ref(
          p.attrs,
          ins.map((d, i) => ({ shape: this.g.shape(p.inputs[i]), data: d! })),
        );
        res.forEach((t, i) => this.cache.set(p.outputs[i], t.data));
        out = res[p.outputs.indexOf(name)].data;
      }
    }
    this.cache.set(name, out);
    return out;
  }
}

function isolate(g: Graph, n: Node, statics: StaticValues): { graph: Graph; feeds: Record<string, Float32Array> } {
  const one = new Graph();
  const feeds: Record<string, Float32Array> = {};
  const weights = WEIGHT_INPUTS[n.op] ?? [];
  const names = n.inputs.map((x, i) => {
    const shape = g.shape(x);
    const data = statics.get(x);
    const local = `in${i}`;
    if (data && weights.includes(i)) return one.constant(local, shape, data);
    if (data) feeds[local] = data;
    return one.input(local, shape);
  });
  const outs = one.add(n.op, names, n.attrs, n.name);
  one.markOutputs(...outs);
  return { graph: one, feeds };
}

const pairs = (a: unknown, def: number): string => {
  const v = (a as number[] | undefined) ?? [def, def];
  return v[0] === v[1] ? String(v[0]) : v.join('x');
};

/** A compact description: input shapes plus the attrs that change the kernel. */
export function describeLayer(g: Graph, n: Node): string {
  const s = (i: number) => fmtShape(g.shape(n.inputs[i]));
  const a = n.attrs;
  const act = a.act && a.act !== 'none' ? ` ${a.act}` : '';
  switch (n.op) {
    case 'conv2d': {
      const [kh, kw, , cout] = g.shape(n.inputs[1]);
      const groups = (a.groups as number | undefined) ?? 1;
      const pad = (a.pad as number[] | undefined) ?? [0, 0, 0, 0];
      const dil = pairs(a.dilation, 1);
      return (
        `${s(0)} ${kh}x${kw}→${cout} /${pairs(a.stride, 1)}` +
        (pad.some((p) => p) ? ` p${new Set(pad).size === 1 ? pad[0] : pad.join(',')}` : '') +
        (dil !== '1' ? ` d${dil}` : '') +
        (groups > 1 ? ` g${groups}` : '') +
        (n.inputs.length > 3 ? ' +res' : '') +
        act
      );
    }
    case 'matmul':
      return `${s(0)}·${s(1)}${a.transB ? 'ᵀ' : ''}${n.inputs.length > 2 ? '+b' : ''}${act}`;
    case 'attention':
      return `${n.inputs.map((_, i) => s(i)).join(',')} h${a.heads}`;
    case 'maxpool':
    case 'avgpool':
      return `${s(0)} k${pairs(a.kernel, 1)} /${pairs(a.stride, 1)}`;
    case 'group_norm':
      return `${s(0)} g${a.groups}${act}`;
    default:
      return `${s(0)}${act}`;
  }
}

// ---------------------------------------------------------------------------------------------

export interface BenchKernelOptions {
  roofline: Roofline;
  /** Profiled runs per layer; the fastest counts (default 3; more for layers shorter than a timer tick). */
  reps?: number;
  /** Kernel variant choices, passed to compile (kernels/variant.ts). */
  prefer?: Prefer;
  /** Check each layer against its CPU reference before timing it (default true). */
  validate?: boolean;
  /** Skip validation for layers above this many flops (default 2e9): the JS reference is slow. */
  maxValidateFlops?: number;
  seed?: number;
  log?: (s: string) => void;
}

/** Max |Δ| may be at most this fraction of max |ref| (plus ATOL). */
export const RTOL = 1e-3;
export const ATOL = 1e-4;

/** Compare every output; a NaN anywhere or a shape mismatch fails. */
export function compareOutputs(got: HostTensor[], want: HostTensor[]): KernelBench['validated'] {
  let diff = 0,
    ref = 0,
    sane = true;
  want.forEach((w, k) => {
    const gd = got[k].data;
    if (got[k].shape.join() !== w.shape.join()) sane = false;
    for (let i = 0; i < w.data.length; i++) {
      const d = Math.abs(gd[i] - w.data[i]);
      if (!(d <= diff)) {
        if (Number.isNaN(d)) sane = false;
        else diff = d;
      }
      ref = Math.max(ref, Math.abs(w.data[i]));
    }
  });
  return { max_abs_diff: diff, max_abs_ref: ref, ok: sane && diff <= RTOL * ref + ATOL };
}

export function randomFeeds(g: Graph, fixed: Record<string, Float32Array>, seed: number): Record<string, Float32Array> {
  const rng = new Rng(seed);
  const feeds: Record<string, Float32Array> = {};
  for (const v of g.values.values()) {
    if (v.kind !== 'input') continue;
    feeds[v.name] = fixed[v.name] ?? Float32Array.from({ length: numel(v.shape) }, () => 2 * rng.uniform() - 1);
  }
  // A batchnorm whose variance came from a node (not a constant) still needs a positive one.
  const bn = g.nodes.find((n) => n.op === 'batchnorm');
  const vname = bn?.inputs[4];
  if (vname && !fixed[vname] && feeds[vname]) feeds[vname] = feeds[vname].map((x) => 0.5 + Math.abs(x));
  return feeds;
}

/** Extra profiled runs for a layer that reads 0 ms, i.e. runs within one tick of the GPU clock. */
const SUB_TICK_REPS = 16;

/**
 * The layer's GPU time: the fastest of `reps` profiled runs, each the sum over its dispatches.
 * Timestamps are quantised (SwiftShader ticks every 65.5 µs), so a kernel shorter than a tick
 * reads 0 or one tick. When any read is 0 the minimum means nothing; then the mean over at
 * least SUB_TICK_REPS reads estimates the time instead (a read is one tick with probability
 * time/tick). Returns 0 only if every read was 0. `before` runs ahead of every read (the tuner
 * evicts caches there).
 */
export async function timeLayer(
  plan: Plan,
  feeds: Record<string, Float32Array>,
  reps: number,
  before?: () => Promise<unknown>,
): Promise<number> {
  const reads: number[] = [];
  const read = async () => {
    await before?.();
    const { profile } = await plan.run(feeds, { profile: true, outputs: [] });
    reads.push(profile!.entries.reduce((a, e) => a + e.ms, 0));
  };
  for (let r = 0; r < reps; r++) await read();
  if (reads.every((t) => t > 0)) return Math.min(...reads);
  while (reads.length < Math.max(reps, SUB_TICK_REPS)) await read();
  return reads.reduce((a, t) => a + t, 0) / reads.length;
}

/** Validate, then time, every layer; one KernelBench per layer. */
export async function benchKernels(device: Device, layers: Layer[], o: BenchKernelOptions): Promise<KernelBench[]> {
  const reps = Math.max(1, o.reps ?? 3);
  const log = o.log ?? (() => {});
  const ridge = o.roofline.fmaGflops / o.roofline.copyGBps;
  const rows: KernelBench[] = [];
  for (const [li, layer] of layers.entries()) {
    const feeds = randomFeeds(layer.graph, layer.feeds, (o.seed ?? 1) + li);
    const plan = await compile(device, layer.graph, { prefer: o.prefer });
    let row: KernelBench;
    try {
      const flops = plan.steps.reduce((a, s) => a + (s.dispatch.flops ?? 0), 0);
      const bytes = plan.steps.reduce((a, s) => a + (s.dispatch.bytes ?? 0), 0);
      const families = [...new Set(plan.steps.map((s) => s.dispatch.family))].join('+') || 'none';

      // One run warms the pipelines and gives the output to check.
      const first = await plan.run(feeds);
      let validated: KernelBench['validated'] = { max_abs_diff: 0, max_abs_ref: 0, ok: false, skipped: true };
      if (o.validate !== false && flops <= (o.maxValidateFlops ?? 2e9)) {
        const want = runReference(layer.graph, feeds);
        validated = compareOutputs(
          layer.graph.outputs.map((x) => first.outputs[x]),
          layer.graph.outputs.map((x) => want[x]),
        );
      }

      const ms = await timeLayer(plan, feeds, reps);

      const gflops = flops > 0 && ms > 0 ? flops / ms / 1e6 : undefined;
      const gbps = bytes > 0 && ms > 0 ? bytes / ms / 1e6 : undefined;
      const bound: KernelBench['bound'] = flops > 0 && (bytes === 0 || flops / bytes > ridge) ? 'compute' : 'memory';
      const fraction = bound === 'compute' ? (gflops ?? 0) / o.roofline.fmaGflops : (gbps ?? 0) / o.roofline.copyGBps;
      const ai = flops > 0 && bytes > 0 ? flops / bytes : undefined;
      const place = placeOnRoofline({ ms, flops, bytes }, o.roofline);
      row = {
        model: layer.model,
        node: layer.node,
        op: layer.op,
        family: families,
        shape: layer.shape,
        count: layer.count,
        ms,
        gflops,
        gbps,
        fraction_of_peak: fraction,
        bound,
        ai,
        ...place,
        validated,
      };
    } finally {
      plan.dispose();
    }
    rows.push(row);
    log(
      `[${li + 1}/${layers.length}] ${row.model} ${row.node} ${row.op} ${row.shape}: ${fmtMs(row.ms)} ms, ${rate(row)}, ` +
        `${pct(row.fraction_of_peak)} of ${row.bound} peak (${row.limit}), ${validText(row.validated)}`,
    );
  }
  return rows;
}

/** A layer shorter than this many near-empty dispatches (Roofline.launchUs) is launch-bound. */
export const LAUNCH_FACTOR = 2;

/**
 * Where a timed layer sits on the roofline, and what is in the way, in words:
 *   'launch overhead: …' — it ran in under LAUNCH_FACTOR near-empty dispatches (or under one
 *     timer tick): fixed per-dispatch cost, not its arithmetic or traffic, sets its time;
 *   'memory-bound at AI a flop/B …' — its arithmetic intensity is below the ridge point
 *     (FMA peak ÷ copy bandwidth), so bandwidth caps it; the share of copy bandwidth follows;
 *   'compute-bound at AI a flop/B: y% of FMA peak' — above the ridge, the FMA peak caps it.
 * fraction_of_fma_peak is GFLOP/s ÷ FMA peak for any layer with flops; fraction_of_roofline is
 * GFLOP/s ÷ min(FMA peak, AI × copy bandwidth), or GB/s ÷ copy bandwidth for a layer with no flops.
 */
export function placeOnRoofline(
  t: { ms: number; flops: number; bytes: number },
  r: Roofline,
): Pick<KernelBench, 'fraction_of_fma_peak' | 'fraction_of_roofline' | 'limit'> {
  const ridge = r.fmaGflops / r.copyGBps;
  const ai = t.flops > 0 && t.bytes > 0 ? t.flops / t.bytes : undefined;
  const gflops = t.flops > 0 && t.ms > 0 ? t.flops / t.ms / 1e6 : undefined;
  const gbps = t.bytes > 0 && t.ms > 0 ? t.bytes / t.ms / 1e6 : undefined;
  const fma = gflops !== undefined ? gflops / r.fmaGflops : undefined;
  const roof =
    gflops !== undefined
      ? gflops / (ai !== undefined ? Math.min(r.fmaGflops, ai * r.copyGBps) : r.fmaGflops)
      : gbps !== undefined
        ? gbps / r.copyGBps
        : undefined;
  const us = 1000 * t.ms;
  const aiText = ai !== undefined ? `AI ${ai.toFixed(ai < 10 ? 2 : 1)} flop/B` : 'no flops';
  let limit: string;
  if (t.ms <= 0) limit = 'launch overhead: below one timer tick';
  else if (r.launchUs !== undefined && us < LAUNCH_FACTOR * r.launchUs)
    limit = `launch overhead: ${us.toFixed(0)} µs, below ${(LAUNCH_FACTOR * r.launchUs).toFixed(0)} µs (${LAUNCH_FACTOR}× an empty dispatch)`;
  else if (ai === undefined || ai <= ridge)
    limit = `memory-bound at ${aiText} (ridge ${ridge.toFixed(1)}): ${pct(gbps !== undefined ? gbps / r.copyGBps : 0)} of copy bandwidth`;
  else limit = `compute-bound at ${aiText}: ${pct(fma ?? 0)} of FMA peak`;
  return { fraction_of_fma_peak: fma, fraction_of_roofline: roof, limit };
}

// ---------------------------------------------------------------------------------------------

const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));
const pct = (f: number) => `${(100 * f).toFixed(1)}%`;
const rate = (r: KernelBench) =>
  r.bound === 'compute' ? `${r.gflops?.toFixed(2) ?? '-'} GFLOP/s` : `${r.gbps?.toFixed(2) ?? '-'} GB/s`;

function validText(v: KernelBench['validated']): string {
  if (v.skipped) return 'not validated';
  return `${v.ok ? 'ok' : 'FAIL'} (max|Δ| ${v.max_abs_diff.toExponential(1)} of ${v.max_abs_ref.toExponential(1)})`;
}

/** A plain-text table, in the order given, with a summary line. */
export function formatKernelTable(rows: KernelBench[]): string {
  const head = [
    'model',
    'node',
    'op/family',
    'shape',
    'count',
    'ms',
    'GFLOP/s',
    'GB/s',
    'AI',
    '% FMA',
    '% peak',
    'valid',
    'in the way',
  ];
  const cells = rows.map((r) => {
    const v = r.validated;
    return [
      r.model,
      r.node,
      r.op === r.family ? r.op : `${r.op}/${r.family}`,
      r.shape,
      String(r.count),
      fmtMs(r.ms),
      r.gflops?.toFixed(2) ?? '-',
      r.gbps?.toFixed(2) ?? '-',
      r.ai?.toFixed(1) ?? '-',
      r.fraction_of_fma_peak !== undefined ? pct(r.fraction_of_fma_peak) : '-',
      `${pct(r.fraction_of_peak)} ${r.bound === 'compute' ? 'C' : 'M'}`,
      v.skipped ? 'skip' : v.ok ? 'ok' : `FAIL ${v.max_abs_diff.toExponential(1)}`,
      r.limit ?? '',
    ];
  });
  const numeric = new Set([4, 5, 6, 7, 8, 9, 10]);
  const widths = head.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c].length)));
  const line = (row: string[]) =>
    row
      .map((x, c) => (numeric.has(c) ? x.padStart(widths[c]) : x.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  const ok = rows.filter((r) => r.validated.ok).length;
  const skipped = rows.filter((r) => r.validated.skipped).length;
  const total = rows.reduce((a, r) => a + r.ms * r.count, 0);
  return [
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map(line),
    `${rows.length} layers (${rows.reduce((a, r) => a + r.count, 0)} nodes): ${ok} validated ok, ${rows.length - ok - skipped} failed, ` +
      `${skipped} not validated; Σ ms × count = ${fmtMs(total)} ms. AI: flop/B. % FMA: of the FMA peak. ` +
      '% peak: C = of FMA peak (compute-bound), M = of copy bandwidth.',
  ].join('\n');
}
