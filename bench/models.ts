// Model benchmarks, side by side: cnnlab and its peers in the same page, on the same adapter,
// with the same weights and input. Every peer's logits are checked against cnnlab's before it
// is timed. Runs in the browser (the peers are browser libraries); cnnlab alone also in Node.
//
// cold   : from having the weights in memory to the first result (cnnlab: optimise + compile
//          pipelines + first run; ORT: session creation + first run; TF.js: weight upload +
//          first run, whose shader compiles happen there).
// steady : `iters` timed runs after `warmup` untimed ones: min, median, p90.

import type { Device } from '../engine/device.js';
import { type Plan, compile } from '../engine/executor.js';
import type { Graph } from '../engine/graph.js';
import { optimize } from '../engine/passes.js';
import { byFamily } from '../engine/profiler.js';
import type { HostTensor } from '../kernels/kernel.js';
import { Rng } from '../models/init.js';
import { loadModel } from '../models/registry.js';
import type { TuningTable } from '../engine/tuning.js';
import type { Roofline } from './roofline.js';
import type { EngineName, EngineResult, ModelBench } from './schema.js';

export type PeerName = Exclude<EngineName, 'cnnlab' | 'cnnlab-untuned'>;
export const PEERS: PeerName[] = ['ort-webgpu', 'tfjs-webgpu', 'ort-wasm'];

export interface ModelBenchOptions {
  iters: number;
  warmup: number;
  size: number;
  seed?: number;
  peers: PeerName[];
  roofline?: Roofline;
  /** Tuned kernel choices for this adapter; with layers in it, cnnlab also runs untuned ('cnnlab-untuned'). */
  tuning?: TuningTable;
  /** URL prefix of onnxruntime-web's dist/ (the CLI serves it at /vendor/ort/). */
  ortWasmPaths?: string;
  log?: (s: string) => void;
}

/** A peer: built from the graph (cold start begins here), then run on the same input. */
interface Peer {
  run(x: Float32Array): Promise<Float32Array>;
  dispose(): Promise<void> | void;
}

function stats(runs: number[], batch: number): Pick<EngineResult, 'min_ms' | 'median_ms' | 'p90_ms' | 'throughput_ips' | 'runs_ms'> {
  const s = [...runs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { min_ms: s[0], median_ms: median, p90_ms: q(0.9), throughput_ips: (1000 * batch) / median, runs_ms: runs };
}

function compare(got: Float32Array, want: Float32Array): { logits_match: boolean; max_abs_diff: number } {
  let d = 0, ref = 0;
  if (got.length !== want.length) return { logits_match: false, max_abs_diff: Infinity };
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    ref = Math.max(ref, Math.abs(want[i]));
  }
  return { logits_match: d <= 1e-3 * ref, max_abs_diff: d };
}

async function makePeer(name: PeerName, graph: Graph, logits: string, o: ModelBenchOptions): Promise<Peer> {
  const input = graph.values.get('image')!;
  if (name === 'ort-webgpu' || name === 'ort-wasm') {
    const [{ exportOnnx }, ort] = await Promise.all([import('./peers/onnx-export.js'), import('./peers/ort.js')]);
    const bytes = exportOnnx(graph);
    const s = await ort.createOrtSession(bytes, name === 'ort-webgpu' ? 'webgpu' : 'wasm', { wasmPaths: o.ortWasmPaths, threads: 1 });
    return {
      async run(x) {
        const out = await ort.runOrt(s, { image: { shape: input.shape, data: x } });
        return out[logits]?.data ?? Object.values(out)[0].data;
      },
      dispose: () => ort.releaseOrtSession(s),
    };
  }
  const [tf, { buildTfjsModel }] = await Promise.all([import('@tensorflow/tfjs'), import('./peers/tfjs.js')]);
  await import('@tensorflow/tfjs-backend-webgpu');
  if (tf.getBackend() !== 'webgpu') {
    const ok = await tf.setBackend('webgpu');
    if (!ok) throw new Error('TF.js could not start its WebGPU backend');
    await tf.ready();
  }
  const m = buildTfjsModel(tf, graph);
  return {
    async run(x) {
      return (await m.run({ image: x }))[logits].data;
    },
    dispose: () => m.dispose(),
  };
}

async function timePeer(name: PeerName, graph: Graph, logits: string, x: Float32Array, want: Float32Array, batch: number, o: ModelBenchOptions): Promise<EngineResult> {
  const log = o.log ?? (() => {});
  let peer: Peer | undefined;
  try {
    const t0 = performance.now();
    peer = await makePeer(name, graph, logits, o);
    const first = await peer.run(x);
    const cold = performance.now() - t0;
    const check = compare(first, want);
    log(`  ${name}: cold ${cold.toFixed(0)} ms, logits ${check.logits_match ? 'match' : 'DIFFER'} (max|Δ| ${check.max_abs_diff.toExponential(2)})`);
    if (!check.logits_match) {
      return { status: 'error', error: `logits differ from cnnlab's (max|Δ| ${check.max_abs_diff.toExponential(2)}): not timed`, cold_ms: cold, ...check };
    }
    for (let i = 0; i < o.warmup; i++) await peer.run(x);
    const runs: number[] = [];
    for (let i = 0; i < o.iters; i++) {
      const t = performance.now();
      await peer.run(x);
      runs.push(performance.now() - t);
    }
    const r: EngineResult = { status: 'ok', cold_ms: cold, ...stats(runs, batch), ...check };
    log(`  ${name}: median ${r.median_ms!.toFixed(1)} ms`);
    return r;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    log(`  ${name}: failed: ${msg}`);
    return { status: 'error', error: msg, logits_match: null };
  } finally {
    await peer?.dispose();
  }
}

/** A compiled cnnlab plan with its cold start (compile + first run) and first output. */
interface Prepared {
  name: string;
  tuning: TuningTable | undefined;
  plan: Plan;
  first: HostTensor;
  cold: number;
  runs: number[];
}

async function prepareCnnlab(device: Device, graph: Graph, logits: string, x: Float32Array, tuning: TuningTable | undefined, name: string): Promise<Prepared> {
  const t0 = performance.now();
  const plan = await compile(device, graph, { tuning });
  try {
    const first = (await plan.run({ image: x }, { outputs: [logits] })).outputs[logits];
    return { name, tuning, plan, first, cold: performance.now() - t0, runs: [] };
  } catch (e) {
    plan.dispose();
    throw e;
  }
}

/**
 * cnnlab tuned and (with a table) untuned: both compiled first (the tuned one first, so its
 * cold start is a real one; pipelines are cached per device afterwards), then warm-up and
 * timed runs alternate between them, so drift on a shared machine hits both alike.
 */
async function timeCnnlab(device: Device, graph: Graph, logits: string, x: Float32Array, batch: number, o: ModelBenchOptions) {
  const log = o.log ?? (() => {});
  const variants: Prepared[] = [];
  try {
    variants.push(await prepareCnnlab(device, graph, logits, x, o.tuning, 'cnnlab'));
    if (o.tuning && o.tuning.size > 0) variants.push(await prepareCnnlab(device, graph, logits, x, undefined, 'cnnlab-untuned'));
    for (let i = 0; i < o.warmup; i++) for (const v of variants) await v.plan.run({ image: x }, { outputs: [logits] });
    for (let i = 0; i < o.iters; i++) for (const v of variants) v.runs.push((await v.plan.run({ image: x }, { outputs: [logits] })).ms);
    const flops = variants[0].plan.steps.reduce((a, s) => a + (s.dispatch.flops ?? 0), 0);
    const results: Partial<Record<'cnnlab' | 'cnnlab-untuned', EngineResult>> = {};
    for (const v of variants) {
      const { plan } = v;
      const mem = plan.memory;
      const r: EngineResult = {
        status: 'ok', cold_ms: v.cold, ...stats(v.runs, batch), logits_match: v === variants[0] ? null : compare(v.first.data, variants[0].first.data).logits_match,
        peak_memory_bytes: mem.peakBytes, weight_bytes: mem.weightBytes, largest_activation_bytes: mem.largestActivationBytes,
        memory_within_target: mem.peakBytes <= mem.weightBytes + 3 * mem.largestActivationBytes,
        tuned_nodes: plan.tuning.used,
      };
      results[v.name as 'cnnlab'] = r;
      for (const n of plan.tuning.notes) log(`  ${v.name}: ${n}`);
      log(`  ${v.name}: cold ${v.cold.toFixed(0)} ms, median ${r.median_ms!.toFixed(1)} ms, ${(flops / r.median_ms! / 1e6).toFixed(2)} GFLOP/s, ` +
        `peak ${(mem.peakBytes / 2 ** 20).toFixed(1)} MiB (weights ${(mem.weightBytes / 2 ** 20).toFixed(1)} + 3 × ${(mem.largestActivationBytes / 2 ** 20).toFixed(2)} = ` +
        `${((mem.weightBytes + 3 * mem.largestActivationBytes) / 2 ** 20).toFixed(1)} MiB allowed)${v.tuning ? `, ${plan.tuning.used} nodes tuned` : ''}`);
    }
    const p = (await variants[0].plan.run({ image: x }, { profile: true, outputs: [] })).profile!;
    const profile: ModelBench['profile'] = {
      mode: p.mode, total_ms: p.totalMs,
      families: byFamily(p).map((r) => ({
        ...r,
        fraction_of_peak: o.roofline && r.gflops !== undefined ? r.gflops / o.roofline.fmaGflops : undefined,
      })),
    };
    return { results, first: variants[0].first, flops, profile };
  } finally {
    for (const v of variants) v.plan.dispose();
  }
}

/** One model at one batch size: cnnlab (tuned, then untuned when a table exists), then each peer. */
export async function benchModel(device: Device, model: string, batch: number, o: ModelBenchOptions): Promise<ModelBench> {
  const log = o.log ?? (() => {});
  log(`${model}, batch ${batch}, ${o.size}×${o.size}`);
  const m = await loadModel(model, { weights: 'random', seed: o.seed ?? 0, batch, size: o.size });
  const x = new Rng(1234 + batch).uniforms(batch * 3 * o.size * o.size, -2, 2);

  const { graph } = optimize(m.graph);
  const engines: ModelBench['engines'] = {};
  const ours = await timeCnnlab(device, graph, m.logits, x, batch, o);
  Object.assign(engines, ours.results);
  const { first, flops, profile } = ours;

  for (const peer of o.peers) engines[peer] = await timePeer(peer, m.graph, m.logits, x, first.data, batch, o);

  const speedup: ModelBench['speedup'] = {};
  const oursMs = engines.cnnlab?.median_ms;
  for (const other of [...o.peers, 'cnnlab-untuned'] as const) {
    const theirs = engines[other]?.median_ms;
    if (oursMs && theirs && engines[other]?.status === 'ok') speedup[other] = theirs / oursMs;
  }
  return { model, batch, size: o.size, flops, engines, speedup, profile };
}
