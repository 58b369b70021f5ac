// The engines of the model benchmark, each as bench/harness.ts times them (load, export, cold =
// prepare + first run, steady runs), run as a competent user of each runs it:
//
//   cnnlab        load: engine modules + a fresh GPUDevice; prepare: optimize() + compile (pipelines; the
//                 shape-generic kernels for small layers on a CPU adapter)
//   ort-webgpu    load: onnxruntime-web/webgpu + its wasm + the EP's device (a one-node session);
//                 export: our ONNX file; prepare: session (graphOptimizationLevel 'all',
//                 preferredLayout NHWC, graph capture where ORT takes it for the model)
//   ort-wasm      as ort-webgpu on the WASM EP at navigator.hardwareConcurrency threads (the page
//                 is cross-origin isolated); ort-wasm-1t at one thread
//   tfjs-webgpu   load: @tensorflow/tfjs + its WebGPU backend started; export: optimize() (BN
//                 folded; tf.fused.conv2d / tf.fused.matMul carry bias, activation and residual
//                 add); prepare: the model built from tf ops (weights uploaded)
//   litert-webgpu load: @litertjs/core + its wasm (the JSPI build where the browser has JSPI: ops
//                 its WebGPU delegate refuses fall back to wasm one by one) + its GPUDevice;
//                 export: a .tflite file of the optimised graph (bench/peers/tflite-export.ts);
//                 prepare: loadAndCompile for WebGPU. A model LiteRT moved to wasm whole is an
//                 error, a partly delegated one says so in its settings (bench/peers/litert.ts)
//   litert-wasm   as litert-webgpu, compiled for wasm (XNNPack): the threaded build at
//                 navigator.hardwareConcurrency threads where the page is cross-origin isolated
//
// Every engine reads back the logits only. The weights are random, loaded before any clock.
// benchEngine runs one engine on one model; the CLI calls it in a fresh page each time.

import type { Device } from '../engine/device.js';
import type { Plan } from '../engine/executor.js';
import { Graph } from '../engine/graph.js';
import type { TuningFile } from '../engine/tuning.js';
import { Rng } from '../models/init.js';
import { loadModel } from '../models/registry.js';
import { type BenchEngine, ColdGuard, type EngineJob, type EngineOutcome, timeEngine } from './harness.js';
import type { EngineName, EngineSettings } from './schema.js';

export type PeerName = Exclude<EngineName, 'cnnlab' | 'cnnlab-untuned'>;
export const PEERS: PeerName[] = [
  'ort-webgpu',
  'tfjs-webgpu',
  'litert-webgpu',
  'litert-wasm',
  'ort-wasm',
  'ort-wasm-1t',
];

/** What the page needs besides the job: the tuning table, the roofline (for the profile), ORT's files. */
export interface EngineContext {
  tuningFile?: TuningFile;
  fmaGflops?: number;
  /** URL prefix of onnxruntime-web's dist/ (the CLI serves it at /vendor/ort/). */
  ortWasmPaths?: string;
  /** URL of @litertjs/core's wasm/ folder (the CLI serves it at /vendor/litert/). */
  litertWasmDir?: string;
  log?: (s: string) => void;
}

export interface Loaded {
  graph: Graph;
  logits: string;
}

/** cnnlab, tuned (the adapter's table) or untuned (heuristics), on a device of its own. */
function cnnlabEngine(
  name: 'cnnlab' | 'cnnlab-untuned',
  m: Loaded,
  x: Float32Array,
  c: EngineContext,
  out: EngineOutcome,
): BenchEngine {
  let device: Device | undefined;
  let plan: Plan | undefined;
  let ex: typeof import('../engine/executor.js') | undefined;
  let tuning: import('../engine/tuning.js').TuningTable | undefined;
  const settings: EngineSettings = {
    device: 'fresh GPUDevice',
    graph: 'optimize() passes, then compile',
    readback: 'logits',
  };
  return {
    name,
    settings,
    async load() {
      const [dev, executor, tun] = await Promise.all([
        import('../engine/device.js'),
        import('../engine/executor.js'),
        import('../engine/tuning.js'),
        import('../engine/passes.js'),
      ]);
      ex = executor;
      device = await dev.createDevice();
      const table =
        name === 'cnnlab' && c.tuningFile ? tun.tableFor(c.tuningFile, tun.adapterKey(device.info)) : undefined;
      tuning = table?.size ? table : undefined;
      settings.tuning = tuning ? `${tuning.size} tuned layers for this adapter` : 'heuristics';
    },
    cachedPipelines: () => (device && ex ? ex.cachedPipelineCount(device.gpu) : 0),
    async prepare() {
      const { optimize } = await import('../engine/passes.js');
      // The plan cnnlab's own commands compile (infer, robustness, transfer): the tuning table, else
      // the defaults (on a CPU adapter the shape-generic convs, CompileOptions.genericMaxFlops).
      plan = await ex!.compile(device!, optimize(m.graph).graph, { tuning });
      settings.pipelines = new Set(plan.kernels).size;
      settings.generic_dispatches = plan.steps.filter((s) => s.dispatch.family.endsWith('-generic')).length;
    },
    async run(input) {
      return (await plan!.run({ image: input }, { outputs: [m.logits] })).outputs[m.logits].data;
    },
    extras() {
      const mem = plan!.memory;
      out.flops = plan!.steps.reduce((a, s) => a + (s.dispatch.flops ?? 0), 0);
      return {
        peak_memory_bytes: mem.peakBytes,
        weight_bytes: mem.weightBytes,
        largest_activation_bytes: mem.largestActivationBytes,
        memory_within_target: mem.peakBytes <= mem.weightBytes + 3 * mem.largestActivationBytes,
        tuned_nodes: plan!.tuning.used,
      };
    },
    async afterRuns() {
      if (name !== 'cnnlab') return;
      const { byFamily } = await import('../engine/profiler.js');
      const p = (await plan!.run({ image: x }, { profile: true, outputs: [] })).profile!;
      out.profile = {
        mode: p.mode,
        total_ms: p.totalMs,
        families: byFamily(p).map((r) => ({
          ...r,
          fraction_of_peak: c.fmaGflops && r.gflops !== undefined ? r.gflops / c.fmaGflops : undefined,
        })),
      };
    },
    dispose() {
      plan?.dispose();
      device?.destroy();
    },
  };
}

/** A one-node ONNX model (a reshape, which compiles no shader) that starts ORT's wasm and EP. */
function tinyOnnx(exportOnnx: (g: Graph) => Uint8Array): Uint8Array {
  const g = new Graph();
  g.outputs = [g.op('reshape', [g.input('image', [1, 4])], { shape: [2, 2] })];
  return exportOnnx(g);
}

function ortEngine(name: 'ort-webgpu' | 'ort-wasm' | 'ort-wasm-1t', m: Loaded, c: EngineContext): BenchEngine {
  const ep = name === 'ort-webgpu' ? 'webgpu' : 'wasm';
  const threads = name === 'ort-wasm' ? Math.max(1, globalThis.navigator?.hardwareConcurrency || 1) : 1;
  const settings: EngineSettings = {
    ep,
    graphOptimizationLevel: 'all',
    graph: 'ONNX exported from the unoptimised graph (ORT fuses it itself)',
    readback: 'logits',
  };
  if (ep === 'wasm') {
    settings.threads = threads;
    settings.crossOriginIsolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ?? false;
  } else {
    settings.preferredLayout = 'NHWC';
  }
  let ort: typeof import('./peers/ort.js') | undefined;
  let exporter: typeof import('./peers/onnx-export.js') | undefined;
  let bytes: Uint8Array | undefined;
  let session: import('./peers/ort.js').OrtSession | undefined;
  const input = m.graph.values.get('image')!;
  const options = { wasmPaths: c.ortWasmPaths, threads, preferredLayout: 'NHWC' as const };
  let gpu: import('./peers/ort.js').OrtGpuRunner | undefined;
  let captured = false;
  /** Give up graph capture: record why and drop its session. */
  const dropCapture = async (why: string) => {
    settings.graphCapture = why;
    gpu?.dispose();
    gpu = undefined;
    if (session) await ort!.releaseOrtSession(session).catch(() => {});
    session = undefined;
  };
  return {
    name,
    settings,
    async load() {
      [ort, exporter] = await Promise.all([import('./peers/ort.js'), import('./peers/onnx-export.js')]);
      const s = await ort.createOrtSession(tinyOnnx(exporter.exportOnnx), ep, options);
      await ort.runOrt(s, { image: { shape: [1, 4], data: new Float32Array(4) } });
      await ort.releaseOrtSession(s);
      settings.version = s.ort.env.versions?.web ?? '?';
    },
    async export() {
      bytes = exporter!.exportOnnx(m.graph);
    },
    async prepare() {
      if (ep === 'webgpu') {
        // Graph capture, where ORT takes it for the model: input and logits in GPU buffers.
        try {
          session = await ort!.createOrtSession(bytes!, ep, { ...options, graphCapture: true });
          gpu = await ort!.ortGpuRunner(session, input.shape, m.logits, m.graph.values.get(m.logits)!.shape);
          settings.graphCapture = 'on (input and logits in GPU buffers)';
        } catch (e) {
          await dropCapture(`off: ORT refused it for this model: ${message(e)}`);
        }
      }
      session ??= await ort!.createOrtSession(bytes!, ep, options);
    },
    async run(x) {
      if (gpu) {
        try {
          const y = await gpu.run(x);
          captured = true;
          return y;
        } catch (e) {
          if (captured) throw e;
          await dropCapture(
            `off: the first captured run failed (${message(e)}); ran without, this cold_ms includes the attempt`,
          );
          session = await ort!.createOrtSession(bytes!, ep, options);
        }
      }
      const out = await ort!.runOrt(session!, { image: { shape: input.shape, data: x } }, [m.logits]);
      return out[m.logits].data;
    },
    dispose: async () => {
      gpu?.dispose();
      if (session) await ort!.releaseOrtSession(session);
    },
  };
}

function tfjsEngine(m: Loaded): BenchEngine {
  let tf: typeof import('@tensorflow/tfjs') | undefined;
  let build: typeof import('./peers/tfjs.js').buildTfjsModel | undefined;
  let graph: Graph | undefined;
  let model: import('./peers/tfjs.js').TfjsModel | undefined;
  const settings: EngineSettings = {
    backend: 'webgpu',
    readback: 'logits',
    graph:
      'optimize() passes: BN folded; tf.fused.conv2d / depthwiseConv2d / matMul carry bias, activation (relu, relu6) and residual add',
  };
  return {
    name: 'tfjs-webgpu',
    settings,
    async load() {
      const [t, p] = await Promise.all([startTfjsWebgpu(), import('./peers/tfjs.js')]);
      tf = t;
      build = p.buildTfjsModel;
      settings.version = tf.version.tfjs;
    },
    async export() {
      const { optimize } = await import('../engine/passes.js');
      graph = optimize(m.graph).graph;
    },
    async prepare() {
      model = build!(tf!, graph!);
    },
    async run(x) {
      return (await model!.run({ image: x }, [m.logits]))[m.logits].data;
    },
    dispose: () => model?.dispose(),
  };
}

function litertEngine(name: 'litert-webgpu' | 'litert-wasm', m: Loaded, c: EngineContext): BenchEngine {
  const accelerator = name === 'litert-webgpu' ? 'webgpu' : 'wasm';
  let lite: typeof import('./peers/litert.js') | undefined;
  let rt: import('./peers/litert.js').LiteRtRuntime | undefined;
  let bytes: Uint8Array | undefined;
  let model: import('./peers/litert.js').LiteRtModel | undefined;
  const settings: EngineSettings = {
    accelerator,
    ...(accelerator === 'webgpu' ? { precision: 'fp32' } : {}),
    graph: 'TFLite exported from the optimised graph (BN folded; bias, relu/relu6 and residual add fused)',
    readback: 'logits',
  };
  return {
    name,
    settings,
    async load() {
      if (!c.litertWasmDir)
        throw new Error("LiteRT.js needs the URL of its wasm folder (litertWasmDir, e.g. '/vendor/litert/')");
      lite = await import('./peers/litert.js');
      rt = await lite.loadLiteRtRuntime({
        wasmDir: c.litertWasmDir,
        threads: accelerator === 'wasm' ? 'auto' : false,
        jspi: accelerator === 'webgpu' ? 'auto' : false,
      });
      settings.version = lite.LITERT_VERSION;
      settings.wasmBuild = rt.build;
      if (rt.reused)
        settings.runtime = `loaded earlier in this page (${rt.build} build): LiteRT is one global per page`;
      settings.crossOriginIsolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ?? false;
      if (accelerator === 'wasm') {
        settings.threads = rt.build === 'threaded' ? Math.max(1, globalThis.navigator?.hardwareConcurrency || 1) : 1;
      }
      if (rt.warnings.length) settings.loadWarnings = rt.warnings.join('; ');
    },
    async export() {
      const [{ optimize }, { exportTflite }] = await Promise.all([
        import('../engine/passes.js'),
        import('./peers/tflite-export.js'),
      ]);
      bytes = exportTflite(optimize(m.graph).graph, { outputs: [m.logits] });
      settings.tfliteBytes = bytes.length;
    },
    async prepare() {
      model = await lite!.compileLiteRt(rt!, bytes!, accelerator, {
        threads: typeof settings.threads === 'number' ? settings.threads : undefined,
      });
      settings.compiledFor = model.actual;
      if (model.warnings.length) settings.compileWarnings = model.warnings.join('; ');
      // A model LiteRT moved to wasm whole throws here: the row is an error, not wasm under WebGPU's name.
      if (accelerator === 'webgpu') settings.delegation = lite!.webGpuDelegation(model);
    },
    run: (x) => model!.run(x),
    dispose: () => model?.dispose(),
  };
}

/** The engine `name` on a loaded model (nothing runs until the harness calls its phases). */
export function makeEngine(
  name: EngineName,
  m: Loaded,
  x: Float32Array,
  c: EngineContext,
  out: EngineOutcome,
): BenchEngine {
  if (name === 'cnnlab' || name === 'cnnlab-untuned') return cnnlabEngine(name, m, x, c, out);
  if (name === 'tfjs-webgpu') return tfjsEngine(m);
  if (name === 'litert-webgpu' || name === 'litert-wasm') return litertEngine(name, m, c);
  return ortEngine(name, m, c);
}

/** Page-wide: one id and one record of cold starts per page (a page is one JS realm). */
let pageGuard: ColdGuard | undefined;
export function pageColdGuard(): ColdGuard {
  return (pageGuard ??= new ColdGuard(`page-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`));
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** One engine on one model and batch in this page (bench/harness.ts times it). */
export async function benchEngine(job: EngineJob, c: EngineContext = {}): Promise<EngineOutcome> {
  const m = await loadModel(job.model, { weights: 'random', seed: job.seed, batch: job.batch, size: job.size });
  const x = new Rng(1234 + job.batch).uniforms(job.batch * 3 * job.size * job.size, -2, 2);
  const out: EngineOutcome = { result: { status: 'ok', logits_match: null } };
  const e = makeEngine(job.engine, { graph: m.graph, logits: m.logits }, x, c, out);
  const t = await timeEngine(e, x, {
    iters: job.iters,
    warmup: job.warmup,
    batch: job.batch,
    model: job.model,
    guard: pageColdGuard(),
    log: c.log,
    reference: job.reference ? Float32Array.from(job.reference) : undefined,
  });
  out.result = t.result;
  if (t.first) out.logits = [...t.first];
  return out;
}

/** TF.js on its WebGPU backend, loaded on demand (the inference and the training bench's peer). */
export async function startTfjsWebgpu(): Promise<typeof import('@tensorflow/tfjs')> {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its WebGPU backend');
  await tf.ready();
  return tf;
}
