// What the page exposes as `window.cnnlab`: the engine for interactive use in the console and
// for the CLI, which drives this same page in headless Chromium.

import { demoNetwork, formatDemo, runDemo } from '../bench/demo.js';
import { createDevice, describeDevice, type Device } from '../engine/device.js';
import { compile } from '../engine/executor.js';
import { Graph, type GraphJSON, graphFromJSON, runReference } from '../engine/graph.js';
import { optimize } from '../engine/passes.js';
import { formatProfile } from '../engine/profiler.js';
import { decodeNpy } from '../engine/npy.js';
import { blobSource, openSafetensors } from '../engine/safetensors.js';
import { OnnxNet, onnxModelDef } from '../models/onnx-import.js';
import { getModel, listModels, type Preprocess, registerModel } from '../models/registry.js';
import { makeResNet, type ResNetConfig } from '../models/resnet.js';
import { infer } from '../models/run.js';

let device: Promise<Device> | undefined;

/** The functions the CLI exposes to the page (progress, partial results, the tuning file). */
const pageHooks = () =>
  window as unknown as {
    cnnlabLog?: (s: string) => void;
    cnnlabResult?: (json: string) => void;
    cnnlabTuning?: (json: string) => void;
  };

/** The page's one device, created on first use. */
export function getDevice(): Promise<Device> {
  return (device ??= createDevice());
}

/** Run a graph built by `build` on the GPU and return its outputs as plain arrays (for automation). */
export async function runGraph(
  build: () => Graph,
  inputs: Record<string, number[]>,
): Promise<Record<string, { shape: number[]; data: number[] }>> {
  const g = build();
  const plan = await compile(await getDevice(), g);
  try {
    const feed = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Float32Array(v)]));
    const { outputs } = await plan.run(feed);
    return Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, { shape: t.shape, data: [...t.data] }]));
  } finally {
    plan.dispose();
  }
}

/** Fetch a URL's bytes as a Blob, with an error naming the URL. */
async function fetchBlob(url: string): Promise<Blob> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.blob();
}

/** Bytes as base64 (how a file crosses page.evaluate to the CLI), in chunks to keep argument lists short. */
function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** An .npy file served by the CLI, decoded. */
const fetchNpy = async (url: string) => decodeNpy(new Uint8Array(await (await fetchBlob(url)).arrayBuffer()), url);

/** A weights file served by the CLI, or 'random' without one. */
const fetchWeights = async (url: string | undefined) =>
  url
    ? openSafetensors(blobSource(await fetchBlob(url), decodeURIComponent(url.split('/').pop()!)))
    : ('random' as const);

export const api = {
  getDevice,
  describeDevice,
  createDevice,
  Graph,
  compile,
  optimize,
  runReference,
  formatProfile,
  demoNetwork,
  runDemo,
  formatDemo,
  runGraph,
  /** Run a graph serialised with graphToJSON (how tests and the CLI hand graphs to the page). */
  runGraphJSON: (j: GraphJSON, inputs: Record<string, number[]>) => runGraph(() => graphFromJSON(j), inputs),
  listModels: () => listModels().map((m) => ({ name: m.name, family: m.family, preprocess: m.preprocess })),
  /**
   * Make an ONNX file known to this page under `name` (the CLI passes the path the user gave and
   * the preprocessing it resolved), so every call that takes a model name can use it.
   */
  async registerOnnx(o: { name: string; url: string; preprocess?: Preprocess }) {
    const bytes = new Uint8Array(await (await fetchBlob(o.url)).arrayBuffer());
    const net = OnnxNet.parse(bytes, o.name);
    registerModel(onnxModelDef(o.name, net, o.preprocess));
    return { name: o.name, opset: net.opset, input: net.inputShape };
  },
  /**
   * Make a ResNet of another configuration known to this page under `name` (models/resnet.ts): the
   * reduced-width checkpoints of the tests, registered in Node, are registered here the same way.
   */
  registerResNet(o: { name: string; config: ResNetConfig }) {
    registerModel(makeResNet(o.name, o.config));
    return { name: o.name };
  },
  /** `npx cnnlab infer --runtime chrome`: weights and input are fetched from the CLI's server. */
  async inferFromUrls(o: { model: string; weightsUrl?: string; seed?: number; inputUrl: string }) {
    const input = await fetchNpy(o.inputUrl);
    const weights = await fetchWeights(o.weightsUrl);
    const r = await infer(await getDevice(), {
      model: o.model,
      weights,
      seed: o.seed,
      input,
      log: (s) => window.cnnlabLog?.(s),
    });
    return { ...r, logits: { shape: r.logits.shape, data: [...r.logits.data] } };
  },
  /**
   * `npx cnnlab grad --runtime chrome` (eval/finetune/grad.ts): input, labels and weights fetched
   * from the CLI's server; the safetensors file comes back as base64.
   */
  async gradFromUrls(o: {
    model: string;
    weightsUrl?: string;
    seed: number;
    bn: 'train' | 'frozen';
    inputUrl: string;
    labelsUrl: string;
  }) {
    const { checkpointGradients, encodeGradients } = await import('../eval/finetune/grad.js');
    const [input, labels, weights] = await Promise.all([
      fetchNpy(o.inputUrl),
      fetchNpy(o.labelsUrl),
      fetchWeights(o.weightsUrl),
    ]);
    const def = getModel(o.model);
    const r = await checkpointGradients(await getDevice(), { def, weights, seed: o.seed, input, labels, bn: o.bn });
    return {
      file: toBase64(encodeGradients(r, { model: def.name, bn: o.bn })),
      loss: r.loss,
      count: Object.keys(r.gradients).length,
      weights: r.weights,
    };
  },
  /**
   * A benchmark run (bench/run.ts) in this one page: the engines share it, so every cold start
   * after the first is flagged (cold_invalid); the CLI gives each engine a page of its own.
   * Progress through window.cnnlabLog, partial results through window.cnnlabResult, the updated
   * tuning file through window.cnnlabTuning. Without a tuningFile the page's stored one
   * (IndexedDB) is used, and tuning results are stored there.
   */
  async bench(o: Omit<import('../bench/run.js').BenchOptions, 'log' | 'onPartial' | 'onTuning'>) {
    const [{ runBench, benchSetup }, { benchEngine }, store] = await Promise.all([
      import('../bench/run.js'),
      import('../bench/models.js'),
      import('./tune-store.js'),
    ]);
    const log = (s: string) => pageHooks().cnnlabLog?.(s);
    return runBench(
      {
        isolation: 'one page',
        setup: async (so) => benchSetup(await getDevice(), so),
        engine: (job, c) => benchEngine(job, { ...c, log }),
      },
      {
        ...o,
        tuningFile: o.tuningFile ?? (await store.loadStoredTuning()),
        log,
        onPartial: (b) => pageHooks().cnnlabResult?.(JSON.stringify(b)),
        onTuning: (f) => {
          pageHooks().cnnlabTuning?.(JSON.stringify(f));
          void store.storeTuning(f);
        },
      },
    );
  },
  /** `npx cnnlab bench`'s setup page: adapter, roofline, tuning (--tune), kernels (bench/run.ts benchSetup). */
  async benchSetup(o: Omit<import('../bench/run.js').SetupOptions, 'log' | 'onTuning'>) {
    const [{ benchSetup }, store] = await Promise.all([import('../bench/run.js'), import('./tune-store.js')]);
    return benchSetup(await getDevice(), {
      ...o,
      log: (s) => pageHooks().cnnlabLog?.(s),
      onTuning: (f) => {
        pageHooks().cnnlabTuning?.(JSON.stringify(f));
        void store.storeTuning(f);
      },
    });
  },
  /** `npx cnnlab bench`: one engine on one model, in a page opened for it alone (bench/models.ts). */
  async benchEngine(
    job: import('../bench/harness.js').EngineJob,
    c: Omit<import('../bench/models.js').EngineContext, 'log'>,
  ) {
    const { benchEngine } = await import('../bench/models.js');
    return benchEngine(job, { ...c, log: (s) => pageHooks().cnnlabLog?.(s) });
  },
  /** `npx cnnlab bench --train`: one engine's training step on one model, in a page opened for it alone (bench/train.ts). */
  async benchTrainEngine(job: import('../bench/train.js').TrainJob) {
    const { benchTrainEngine } = await import('../bench/train.js');
    return benchTrainEngine(job, { log: (s) => pageHooks().cnnlabLog?.(s) });
  },
  /**
   * Run a .tflite file with LiteRT.js in this page (tests of bench/peers/tflite-export.ts): the
   * runtime loads once per page (the JSPI build where there is JSPI, so both accelerators work).
   */
  async runTflite(o: {
    bytes: number[];
    input: number[];
    accelerator: 'webgpu' | 'wasm';
    wasmDir: string;
    /** The page's first call picks the build: JSPI where there is JSPI unless this is false. */
    jspi?: boolean;
  }) {
    const lite = await import('../bench/peers/litert.js');
    const rt = await lite.loadLiteRtRuntime({ wasmDir: o.wasmDir, jspi: o.jspi ?? 'auto' });
    const model = await lite.compileLiteRt(rt, Uint8Array.from(o.bytes), o.accelerator);
    try {
      const y = await model.run(Float32Array.from(o.input));
      const { run: _run, dispose: _dispose, ...info } = model;
      let delegation: string;
      try {
        delegation = lite.webGpuDelegation(model);
      } catch (e) {
        delegation = `error: ${(e as Error).message}`;
      }
      return { ...info, build: rt.build, delegation, output: [...y] };
    } finally {
      model.dispose();
    }
  },
  /** `npx cnnlab tune`: tune the models' layers on this adapter (bench/tune.ts); see bench() for the callbacks. */
  async tune(o: {
    models: string[];
    size: number;
    batch: number;
    reps?: number;
    force?: boolean;
    amortizeRuns?: number;
    coldCache?: boolean;
    checkRuns?: number;
    tuningFile?: import('../engine/tuning.js').TuningFile;
  }) {
    const [{ tuneModels }, store] = await Promise.all([import('../bench/tune.js'), import('./tune-store.js')]);
    const w = window as unknown as { cnnlabLog?: (s: string) => void; cnnlabTuning?: (json: string) => void };
    return tuneModels(await getDevice(), {
      ...o,
      tuningFile: o.tuningFile ?? (await store.loadStoredTuning()),
      log: (s) => w.cnnlabLog?.(s),
      onTuning: (f) => {
        w.cnnlabTuning?.(JSON.stringify(f));
        void store.storeTuning(f);
      },
    });
  },
  /** `npx cnnlab robustness --runtime chrome` (web/robustness-page.ts). */
  async robustness(o: Parameters<typeof import('./robustness-page.js').runRobustnessInPage>[1]) {
    const { runRobustnessInPage } = await import('./robustness-page.js');
    return runRobustnessInPage(await getDevice(), o);
  },
  /** The demo network's logits for a given input: used by the browser test against Node. */
  async demoLogits(o: { size: number; batch: number; seed: number }, image: number[]): Promise<number[]> {
    const out = await runGraph(() => optimize(demoNetwork(o)).graph, { image });
    return Object.values(out)[0].data;
  },
};

export type CnnlabApi = typeof api;
