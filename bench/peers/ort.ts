// ONNX Runtime Web as a benchmark peer: a session on an exported model (see onnx-export.ts) and
// one run of it, for the WebGPU EP (browser) or the WASM EP (browser, and Node for tests).
//
// onnxruntime-web 1.30 ships several builds; each EP loads the one meant for it:
//   'webgpu' → `onnxruntime-web/webgpu` (the documented WebGPU import; its wasm is
//              ort-wasm-simd-threaded.asyncify.{mjs,wasm}); needs a page with navigator.gpu
//   'wasm'   → `onnxruntime-web/wasm` (CPU only, the plain ort-wasm-simd-threaded.{mjs,wasm});
//              the same build runs in Node, reading the wasm from node_modules
// In the browser the wasm files must be served under `wasmPaths` (a URL prefix ending in '/'; the
// page mounts node_modules/onnxruntime-web/dist/ at /vendor/ort/). The WASM EP runs 1 thread by
// default: more need cross-origin isolation (SharedArrayBuffer), which cnnlab's page has (the
// bench runs 'ort-wasm' at navigator.hardwareConcurrency threads, 'ort-wasm-1t' at one).
// ort.env is per build and is read when that build's wasm starts, so the first session of a build
// fixes its threads and paths.

import type * as Ort from 'onnxruntime-web';

export type OrtEp = 'webgpu' | 'wasm';

export interface OrtOptions {
  /** URL prefix of onnxruntime-web's dist/ files (browser), e.g. '/vendor/ort/'. */
  wasmPaths?: string;
  /** WASM EP threads, default 1 (more need a cross-origin isolated page). */
  threads?: number;
  /** WebGPU EP: the layout its kernels work in ('NHWC' or 'NCHW'); left to ORT when absent. */
  preferredLayout?: 'NHWC' | 'NCHW';
  /** WebGPU EP: record the first run's dispatches and replay them (needs inputs and outputs on the GPU). */
  graphCapture?: boolean;
}

export interface OrtSession {
  ep: OrtEp;
  session: Ort.InferenceSession;
  inputNames: readonly string[];
  outputNames: readonly string[];
  /** The ort module (build) the session came from. */
  ort: typeof Ort;
}

export interface OrtTensor {
  shape: number[];
  data: Float32Array;
}

async function loadOrt(ep: OrtEp): Promise<typeof Ort> {
  if (ep === 'wasm') return import('onnxruntime-web/wasm');
  if (typeof navigator === 'undefined' || !('gpu' in navigator)) {
    throw new Error(
      'ORT execution provider "webgpu" needs navigator.gpu (a WebGPU browser page served from localhost or https)',
    );
  }
  return import('onnxruntime-web/webgpu');
}

export async function createOrtSession(model: Uint8Array, ep: OrtEp, o: OrtOptions = {}): Promise<OrtSession> {
  const ort = await loadOrt(ep);
  ort.env.wasm.numThreads = o.threads ?? 1;
  ort.env.wasm.proxy = false;
  if (o.wasmPaths !== undefined) ort.env.wasm.wasmPaths = o.wasmPaths;
  let session: Ort.InferenceSession;
  try {
    const provider =
      ep === 'webgpu' && o.preferredLayout ? { name: 'webgpu' as const, preferredLayout: o.preferredLayout } : ep;
    session = await ort.InferenceSession.create(model, {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      ...(o.graphCapture ? { enableGraphCapture: true } : {}),
    });
  } catch (e) {
    throw new Error(
      `ONNX Runtime Web (${ep} EP) could not create a session: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  return { ep, session, inputNames: session.inputNames, outputNames: session.outputNames, ort };
}

/** Run once; every output (or those named in `fetches`) comes back to the CPU as f32. */
export async function runOrt(
  s: OrtSession,
  inputs: Record<string, OrtTensor>,
  fetches?: readonly string[],
): Promise<Record<string, OrtTensor>> {
  const feeds: Record<string, Ort.Tensor> = {};
  for (const name of s.inputNames) {
    const t = inputs[name];
    if (!t) throw new Error(`ORT session needs input "${name}" (given: ${Object.keys(inputs).join(', ') || 'none'})`);
    feeds[name] = new s.ort.Tensor('float32', t.data, t.shape);
  }
  for (const name of fetches ?? []) {
    if (!s.outputNames.includes(name))
      throw new Error(`ORT session has no output "${name}" (it has ${s.outputNames.join(', ')})`);
  }
  const res = fetches ? await s.session.run(feeds, [...fetches]) : await s.session.run(feeds);
  const out: Record<string, OrtTensor> = {};
  for (const name of fetches ?? s.outputNames) {
    const t = res[name];
    const data = (await t.getData()) as Float32Array;
    out[name] = {
      shape: [...t.dims],
      data: data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>),
    };
    t.dispose();
  }
  return out;
}

export async function releaseOrtSession(s: OrtSession): Promise<void> {
  await s.session.release();
}

/**
 * A WebGPU-EP session run with its input and one output in GPU buffers of ORT's own device, the
 * same buffers every run, as graph capture needs (the session was made with graphCapture): the
 * input is written with queue.writeBuffer, the output copied to a mappable buffer and read back.
 */
export interface OrtGpuRunner {
  run(x: Float32Array): Promise<Float32Array>;
  dispose(): void;
}

export async function ortGpuRunner(
  s: OrtSession,
  input: OrtTensor['shape'],
  output: string,
  outputShape: number[],
): Promise<OrtGpuRunner> {
  if (s.ep !== 'webgpu') throw new Error('ortGpuRunner needs a WebGPU-EP session');
  const device = (await s.ort.env.webgpu.device) as GPUDevice;
  const bytes = (shape: number[]) => 4 * shape.reduce((a, b) => a * b, 1);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const inBuf = device.createBuffer({ size: bytes(input), usage });
  const outBuf = device.createBuffer({ size: bytes(outputShape), usage });
  const readBuf = device.createBuffer({
    size: bytes(outputShape),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const feed = s.ort.Tensor.fromGpuBuffer(inBuf, { dataType: 'float32', dims: input });
  const fetch = s.ort.Tensor.fromGpuBuffer(outBuf, { dataType: 'float32', dims: outputShape });
  return {
    async run(x) {
      device.queue.writeBuffer(inBuf, 0, x.buffer, x.byteOffset, x.byteLength);
      await s.session.run({ [s.inputNames[0]]: feed }, { [output]: fetch });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(outBuf, 0, readBuf, 0, readBuf.size);
      device.queue.submit([enc.finish()]);
      await readBuf.mapAsync(GPUMapMode.READ);
      const out = new Float32Array(readBuf.getMappedRange().slice(0));
      readBuf.unmap();
      return out;
    },
    dispose() {
      for (const b of [inBuf, outBuf, readBuf]) b.destroy();
    },
  };
}
