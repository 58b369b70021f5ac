// The autotuner: for every heavy layer of the given models (bench/kernels.ts collects them, one
// one-node graph per distinct op + attrs + shapes), time each variant the op's tuneSpace offers
// against the heuristic's choice on this adapter, check each against the CPU reference, and
// keep the fastest in a TuningTable (engine/tuning.ts) that compile() then reads.
//
// Per layer:
//   1. the heuristic (no preference) and every candidate are compiled and run once; candidates
//      that build the same pipelines as one already seen are dropped, and so are those that fail
//      to build, take longer than `maxCompileMs` to compile (cold start matters too), or whose
//      output differs from the reference (RTOL/ATOL of bench/kernels.ts);
//   2. every survivor is timed (`reps` profiled runs, the fastest counts);
//   3. the heuristic and the best few are timed again, interleaved, so one noisy moment cannot
//      pick a winner;
//   4. a candidate replaces the heuristic only if its score (run ms + compile ms / amortizeRuns)
//      is at least `minGain` better.
// Timestamps come from the executor's profiler, so only GPU time counts.
//
// Runs in Node and in the page: no Node-only imports.

import { type Device, kernelContext } from '../engine/device.js';
import { type Plan, compile } from '../engine/executor.js';
import { runReference } from '../engine/graph.js';
import {
  type TuningFile,
  type TuningTable,
  adapterKey,
  emptyTuningFile,
  layerKey,
  mergeTable,
  tableFor,
} from '../engine/tuning.js';
import { getOp } from '../kernels/index.js';
import type { HostTensor } from '../kernels/kernel.js';
import { VARIANT_FAMILIES } from '../kernels/variant-families.js';
import { type Layer, collectLayers, compareOutputs, randomFeeds, timeLayer } from './kernels.js';
import { rooflineGraph } from './roofline.js';
import type { CandidateResult, ModelCheck, TuneRow } from './schema.js';

export type { CandidateResult, ModelCheck, TuneRow };
import { optimize } from '../engine/passes.js';
import { Rng } from '../models/init.js';
import { loadModel } from '../models/index.js';

export interface TuneOptions {
  /** Profiled runs per candidate in the first round (default 2). */
  reps?: number;
  /** Candidates whose pipelines take longer than this to build are dropped (default 3000 ms). */
  maxCompileMs?: number;
  /** Relative improvement in score a candidate needs over the heuristic to replace it (default 0.03). */
  minGain?: number;
  /**
   * Compile time counts as this many runs' share: a candidate is scored run ms + compile ms /
   * amortizeRuns (default 100), so on a tiny layer a variant that saves 0.1 ms a run but takes
   * 500 ms longer to build loses (cold start is a target too).
   */
  amortizeRuns?: number;
  /** Retune layers the table already has (default false: they are skipped). */
  force?: boolean;
  /**
   * Evict caches before every timed run (default true): inside a model every layer streams
   * weights nobody touched since the last image, so a layer timed over and over with its
   * weights cache-resident favours variants that only win there (on SwiftShader, a CPU, the
   * caches are the CPU's). The eviction is a copy of 2 × 32 MiB, not timed.
   */
  coldCache?: boolean;
  /** Layers above this many flops are checked against the heuristic's output, not the CPU reference (default 3e9). */
  maxReferenceFlops?: number;
  log?: (s: string) => void;
  /** Called after each layer with the table so far (to save progress). */
  onLayer?: (row: TuneRow) => void;
}

interface Live {
  prefer: string;
  plan: Plan;
  compileMs: number;
  reads: number[];
}

/** The tuning-table key of a layer's one node. */
function keyOf(layer: Layer): string {
  const n = layer.graph.nodes[0];
  return layerKey(n.op, n.attrs, shapesOf(layer));
}

function shapesOf(layer: Layer): number[][] {
  const n = layer.graph.nodes[0];
  return n.inputs.map((x) => [...layer.graph.shape(x)]);
}

/** Tune every layer that has a tune space; the table is updated in place. */
export async function tuneLayers(
  device: Device,
  layers: Layer[],
  table: TuningTable,
  o: TuneOptions = {},
): Promise<TuneRow[]> {
  const log = o.log ?? (() => {});
  const reps = Math.max(1, o.reps ?? 2);
  const maxCompileMs = o.maxCompileMs ?? 3000;
  const minGain = o.minGain ?? 0.03;
  const ctx = kernelContext(device.info);
  const rows: TuneRow[] = [];
  const evict = o.coldCache === false ? undefined : await cacheEvictor(device);
  try {
    for (const [li, layer] of layers.entries()) {
      const node = layer.graph.nodes[0];
      const shapes = shapesOf(layer);
      const constInputs = node.inputs.map((x) => layer.graph.value(x).kind === 'const');
      const space = getOp(node.op).tuneSpace?.(node.attrs, shapes, { ...ctx, constInputs });
      if (!space) continue;
      const key = keyOf(layer);
      const base = {
        model: layer.model,
        node: layer.node,
        op: layer.op,
        shape: layer.shape,
        count: layer.count,
        key,
        family: space.family,
      };
      const cached = table.get(key);
      if (cached && !o.force) {
        const row: TuneRow = {
          ...base,
          heuristic_ms: cached.heuristicMs,
          best: cached.prefer,
          best_ms: cached.ms,
          status: 'cached',
          candidates: [],
        };
        rows.push(row);
        o.onLayer?.(row);
        continue;
      }
      const row = await tuneLayer(
        device,
        layer,
        space.family,
        space.candidates.map((c) => canonical(space.family, c)),
        {
          reps,
          maxCompileMs,
          minGain,
          amortize: o.amortizeRuns ?? 100,
          maxReferenceFlops: o.maxReferenceFlops ?? 3e9,
          seed: li,
          evict: evict?.run,
        },
      );
      const full: TuneRow = { ...base, ...row, status: 'tuned' };
      table.set(key, { family: space.family, prefer: full.best, ms: full.best_ms, heuristicMs: full.heuristic_ms });
      rows.push(full);
      log(
        `[${li + 1}/${layers.length}] ${layer.op} ${layer.shape}: heuristic ${full.heuristic_ms.toFixed(2)} ms → ` +
          `${full.best ? `${space.family}=${full.best}` : 'heuristic'} ${full.best_ms.toFixed(2)} ms (×${(full.heuristic_ms / full.best_ms).toFixed(2)}; ` +
          `${full.candidates.filter((c) => c.status === 'ok').length}/${full.candidates.length} candidates ran)`,
      );
      o.onLayer?.(full);
    }
  } finally {
    evict?.dispose();
  }
  return rows;
}

/**
 * A candidate in its family's canonical form (kernels/variant.ts), which is how the tuning file
 * stores it; a malformed one throws (a bug in the op's tuneSpace). Families without a variant
 * schema (test ops) pass through.
 */
function canonical(family: string, candidate: string): string {
  const s = VARIANT_FAMILIES.get(family);
  return s ? s.format(s.parse(candidate)) : candidate;
}

/** A plan that copies 32 MiB (more than a CPU's last-level cache), run to evict caches. */
async function cacheEvictor(device: Device): Promise<{ run: () => Promise<unknown>; dispose: () => void }> {
  const n = 8 << 20;
  const plan = await compile(device, rooflineGraph('roofline_copy', {}, n));
  const x = new Float32Array(n);
  return { run: () => plan.run({ x }, { outputs: [] }), dispose: () => plan.dispose() };
}

async function tuneLayer(
  device: Device,
  layer: Layer,
  family: string,
  candidates: string[],
  o: {
    reps: number;
    maxCompileMs: number;
    minGain: number;
    amortize: number;
    maxReferenceFlops: number;
    seed: number;
    evict?: () => Promise<unknown>;
  },
): Promise<
  Pick<TuneRow, 'heuristic_ms' | 'heuristic_compile_ms' | 'best' | 'best_ms' | 'best_compile_ms' | 'candidates'>
> {
  const feeds = randomFeeds(layer.graph, layer.feeds, 100 + o.seed);
  const outs = layer.graph.outputs;
  const results: CandidateResult[] = [];
  const live: Live[] = [];
  const seen = new Set<string>();
  let want: HostTensor[] | undefined;
  let heuristicCompile = 0;
  try {
    for (const prefer of ['', ...candidates]) {
      const r: CandidateResult = { prefer, status: 'ok' };
      results.push(r);
      let plan: Plan | undefined;
      try {
        const t0 = performance.now();
        // '' is the specialised heuristic; the generic variant is a candidate of its own.
        plan = await compile(device, layer.graph, { prefer: prefer ? { [family]: prefer } : {}, genericMaxFlops: {} });
        r.compile_ms = performance.now() - t0;
        const first = await plan.run(feeds);
        const kernels = plan.kernels.join('|');
        if (seen.has(kernels)) {
          r.status = 'duplicate';
          plan.dispose();
          continue;
        }
        seen.add(kernels);
        const got = outs.map((x) => first.outputs[x]);
        if (prefer === '') {
          heuristicCompile = r.compile_ms;
          const flops = plan.steps.reduce((a, s) => a + (s.dispatch.flops ?? 0), 0);
          const ref = flops <= o.maxReferenceFlops ? runReference(layer.graph, feeds) : null;
          want = ref ? outs.map((x) => ref[x]) : got;
        }
        const v = compareOutputs(got, want!);
        if (!v.ok) {
          r.status = 'wrong';
          r.error = `max|Δ| ${v.max_abs_diff.toExponential(2)} of max|ref| ${v.max_abs_ref.toExponential(2)}`;
          if (prefer === '') throw new Error(`the heuristic's own output is wrong (${r.error})`);
          plan.dispose();
          continue;
        }
        if (prefer !== '' && r.compile_ms > Math.max(o.maxCompileMs, 2 * heuristicCompile)) {
          r.status = 'slow-compile';
          plan.dispose();
          continue;
        }
        live.push({ prefer, plan, compileMs: r.compile_ms, reads: [] });
      } catch (e) {
        plan?.dispose();
        if (prefer === '') throw e;
        r.status = 'failed';
        r.error = e instanceof Error ? e.message.split('\n')[0] : String(e);
      }
    }
    // Round 1: everyone; round 2, interleaved: the heuristic and the fastest three by run time
    // and two by score (so a quick-to-build candidate gets its second look too).
    for (const c of live) c.reads.push(await timeLayer(c.plan, feeds, o.reps, o.evict));
    const byTime = [...live].sort((a, b) => Math.min(...a.reads) - Math.min(...b.reads));
    const byScore = [...live].sort(
      (a, b) => Math.min(...a.reads) + a.compileMs / o.amortize - (Math.min(...b.reads) + b.compileMs / o.amortize),
    );
    const finalists = [...new Set([live[0], ...byTime.slice(0, 3), ...byScore.slice(0, 2)])];
    for (let r = 0; r < 2; r++) for (const c of finalists) c.reads.push(await timeLayer(c.plan, feeds, 1, o.evict));
    for (const c of live) results.find((r) => r.prefer === c.prefer)!.ms = Math.min(...c.reads);
    const score = (c: Live) => Math.min(...c.reads) + c.compileMs / o.amortize;
    let winner = live[0];
    for (const c of finalists) if (score(c) < score(winner)) winner = c;
    if (winner !== live[0] && score(winner) > score(live[0]) * (1 - o.minGain)) winner = live[0];
    return {
      heuristic_ms: Math.min(...live[0].reads),
      heuristic_compile_ms: live[0].compileMs,
      best: winner.prefer,
      best_ms: Math.min(...winner.reads),
      best_compile_ms: winner.compileMs,
      candidates: results,
    };
  } finally {
    for (const c of live) c.plan.dispose();
  }
}

/** A plain-text table of tuning rows, with the total gain weighted by how often each layer occurs. */
export function formatTuneTable(rows: TuneRow[]): string {
  const head = ['model', 'op', 'shape', 'count', 'heuristic ms', 'tuned ms', 'gain', 'build ms', 'choice'];
  const build = (r: TuneRow) =>
    r.heuristic_compile_ms === undefined
      ? '-'
      : `${r.heuristic_compile_ms.toFixed(0)}→${r.best_compile_ms!.toFixed(0)}`;
  const cells = rows.map((r) => [
    r.model,
    r.op,
    r.shape,
    String(r.count),
    r.heuristic_ms.toFixed(2),
    r.best_ms.toFixed(2),
    `×${(r.heuristic_ms / r.best_ms).toFixed(2)}`,
    build(r),
    `${r.best ? `${r.family}=${r.best}` : 'heuristic'}${r.status === 'cached' ? ' (cached)' : ''}`,
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c].length)));
  const numeric = new Set([3, 4, 5, 6, 7]);
  const line = (row: string[]) =>
    row
      .map((x, c) => (numeric.has(c) ? x.padStart(widths[c]) : x.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  const h = rows.reduce((a, r) => a + r.count * r.heuristic_ms, 0);
  const t = rows.reduce((a, r) => a + r.count * r.best_ms, 0);
  return [
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map(line),
    `${rows.length} layers: Σ count × ms ${h.toFixed(1)} → ${t.toFixed(1)} (×${(h / Math.max(t, 1e-9)).toFixed(2)})`,
  ].join('\n');
}

export interface TuneModelsOptions extends Omit<TuneOptions, 'onLayer'> {
  models: string[];
  size: number;
  batch: number;
  tuningFile?: TuningFile;
  /**
   * After tuning, run each whole model with the table and with the heuristics, alternating
   * (default 3 runs each), and score both as the layers were scored (run ms + the build time
   * the table saves or costs / amortizeRuns): where the table is not better, its choices for
   * that model's layers go back to the heuristic. Layers timed alone do not always add up to the model (caches hold
   * other data there), and a tuner must not leave a model slower than it found it.
   */
  checkRuns?: number;
  /** The whole file, this adapter's table updated, after each layer (to save progress). */
  onTuning?: (f: TuningFile) => void;
}

export interface TuneModelsResult {
  adapter: string;
  rows: TuneRow[];
  checks: ModelCheck[];
  file: TuningFile;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor((v.length - 1) / 2)];

/** Whole-model A/B of `table` against the heuristics, runs alternating. */
async function checkModel(
  device: Device,
  model: string,
  o: TuneModelsOptions,
  table: TuningTable,
): Promise<ModelCheck> {
  const m = await loadModel(model, { weights: 'random', batch: o.batch, size: o.size });
  const { graph } = optimize(m.graph);
  const x = new Rng(7).uniforms(o.batch * 3 * o.size * o.size, -2, 2);
  const plans = [await compile(device, graph, { tuning: table }), await compile(device, graph, {})];
  try {
    const times: number[][] = [[], []];
    for (const p of plans) await p.run({ image: x }, { outputs: [m.logits] });
    for (let r = 0; r < Math.max(1, o.checkRuns ?? 3); r++) {
      for (const [i, p] of plans.entries()) times[i].push((await p.run({ image: x }, { outputs: [m.logits] })).ms);
    }
    const [t, h] = times.map(median);
    return { model, tuned_ms: t, heuristic_ms: h, kept: t < h };
  } finally {
    for (const p of plans) p.dispose();
  }
}

/** `npx cnnlab tune`: collect the models' layers, tune them into this adapter's table, then check each model whole. */
export async function tuneModels(device: Device, o: TuneModelsOptions): Promise<TuneModelsResult> {
  const log = o.log ?? (() => {});
  const adapter = adapterKey(device.info);
  const base = o.tuningFile ?? emptyTuningFile();
  const table = tableFor(base, adapter);
  const layers = await collectLayers(o.models, { batch: o.batch, size: o.size });
  log(
    `adapter ${adapter}: ${layers.length} distinct layers in ${o.models.join(', ')} (batch ${o.batch}, ${o.size}×${o.size}); ` +
      `${table.size} layers already in its table${o.force ? ' (retuning them)' : ''}`,
  );
  const rows = await tuneLayers(device, layers, table, { ...o, onLayer: () => o.onTuning?.(mergeTable(base, table)) });
  const checks: ModelCheck[] = [];
  if ((o.checkRuns ?? 3) > 0) {
    for (const model of o.models) {
      const c = await checkModel(device, model, o, table);
      // Scored as the layers were: run ms + build ms / amortizeRuns, with the build time the
      // table saves (or costs) over the heuristics summed over this model's tuned layers.
      const inModel = new Set(layers.filter((l) => l.models.includes(model)).map(keyOf));
      const buildDelta = rows
        .filter((r) => r.status === 'tuned' && r.best && inModel.has(r.key))
        .reduce((a, r) => a + (r.best_compile_ms! - r.heuristic_compile_ms!), 0);
      c.build_delta_ms = buildDelta;
      c.kept = c.tuned_ms + buildDelta / (o.amortizeRuns ?? 100) < c.heuristic_ms;
      checks.push(c);
      log(
        `${model} whole: tuned ${c.tuned_ms.toFixed(1)} ms (builds ${buildDelta >= 0 ? '+' : ''}${buildDelta.toFixed(0)} ms), heuristics ${c.heuristic_ms.toFixed(1)} ms: ` +
          (c.kept ? 'table kept' : "table not better: this model's layers go back to the heuristics"),
      );
      if (c.kept) continue;
      for (const key of inModel) {
        const e = table.get(key);
        if (e?.prefer) table.set(key, { ...e, prefer: '', ms: e.heuristicMs });
      }
      o.onTuning?.(mergeTable(base, table));
    }
  }
  return { adapter, rows, checks, file: mergeTable(base, table) };
}
