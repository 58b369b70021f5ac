// LiteRT.js (npm @litertjs/core, Google's runtime for .tflite models on the web) as a benchmark
// peer: its wasm runtime loaded once per page, a model compiled for an accelerator, one run.
// The model is cnnlab's graph exported by tflite-export.ts; docs/peers.md records the version,
// the settings and what was measured about it.
//
// Loading. loadLiteRt(dir, {threads, jspi}) picks one of four wasm builds in `dir` (the page
// mounts node_modules/@litertjs/core/wasm/ at /vendor/litert/): relaxed-SIMD plain, threaded
// (needs SharedArrayBuffer: a cross-origin isolated page), JSPI (LiteRT's README asks for it to
// split a model between WebGPU and wasm), or a compat build without relaxed SIMD. threads and
// jspi exclude each other. It also creates the default Environment, which requests its own
// GPUDevice; when that fails it only warns, and a later WebGPU compile throws. LiteRT is one
// global per page.
//
// Fallback. loadAndCompile(bytes, {accelerator: 'webgpu'}) compiles what the WebGPU delegate
// takes; CompiledModel.isFullyAccelerated says whether every op went to it. In a browser with
// JSPI (WebAssembly.Suspending; Chromium has it, and then even the plain build splits) the rest
// runs on wasm (partial delegation); without, LiteRT silently recompiles the whole model for
// wasm and returns that (options.accelerator becomes 'wasm'). Both are reported here (`actual`,
// `fullyAccelerated`, and the warnings LiteRT printed while loading and compiling), so a
// WebGPU row is never wasm under another name.

import type * as LiteRtJs from '@litertjs/core';
import litertPackage from '@litertjs/core/package.json';

/** The @litertjs/core release bundled (its package.json, read at build time). */
export const LITERT_VERSION: string = litertPackage.version;

export type LiteRtAccelerator = 'webgpu' | 'wasm';

export interface LiteRtLoadOptions {
  /** URL of the folder with LiteRT's wasm builds, e.g. '/vendor/litert/'. */
  wasmDir: string;
  /** The threaded build (XNNPack with a worker pool; needs a cross-origin isolated page); 'auto': where the page allows it. */
  threads?: boolean | 'auto';
  /** The JSPI build (WebGPU with per-op fallback to wasm); 'auto': where the browser has JSPI. */
  jspi?: boolean | 'auto';
}

export interface LiteRtRuntime {
  lib: typeof LiteRtJs;
  /** Which wasm build loaded: 'threaded', 'jspi' or 'plain' (relaxed SIMD or compat, LiteRT's choice). */
  build: 'threaded' | 'jspi' | 'plain';
  /** Threads LiteRT's wasm reports (its worker pool; 1 without the threaded build). */
  threadCount: number;
  /** The default environment's GPUDevice (null: LiteRT could not create one). */
  webGpu: boolean;
  /** What LiteRT printed with console.warn while loading. */
  warnings: string[];
  /** Loaded earlier in this page (by another engine or model): its build is that load's. */
  reused: boolean;
}

export interface LiteRtModel {
  requested: LiteRtAccelerator;
  /** The accelerator LiteRT compiled for (differs from `requested` after a whole-model fallback). */
  actual: string;
  /** Every op on the requested accelerator (for 'wasm', always true). */
  fullyAccelerated: boolean;
  /** What LiteRT printed with console.warn while compiling. */
  warnings: string[];
  inputShape: number[];
  outputShape: number[];
  /** One run on `x`; the first output comes back to the CPU. */
  run(x: Float32Array): Promise<Float32Array>;
  dispose(): void;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Run `fn`, collecting what it prints with console.warn (still printed). */
async function withWarnings<T>(fn: () => Promise<T>): Promise<{ value: T; warnings: string[] }> {
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    // LiteRT styles its warnings with %c: drop the style arguments.
    const [first, ...rest] = args;
    const text = typeof first === 'string' && first.includes('%c') ? first.replaceAll('%c', '') : first;
    const shown =
      typeof first === 'string' && first.includes('%c') ? rest.filter((a) => !/^[a-z-]+:/.test(String(a))) : rest;
    warnings.push([text, ...shown].map((a) => (a instanceof Error ? a.message : String(a))).join(' '));
    warn.apply(console, args);
  };
  try {
    return { value: await fn(), warnings };
  } finally {
    console.warn = warn;
  }
}

/** The page's runtime: LiteRT is a global, loaded once; later loads get it as it is. */
let pageRuntime: Promise<LiteRtRuntime> | undefined;

/**
 * Load LiteRT.js and its wasm. LiteRT is one global per page: a second call (the interactive
 * page runs every engine in one page) returns the runtime already loaded, `reused` and with the
 * build it was loaded with, which may not be the one asked for.
 */
export async function loadLiteRtRuntime(o: LiteRtLoadOptions): Promise<LiteRtRuntime> {
  if (pageRuntime) return { ...(await pageRuntime), reused: true };
  const load = async (): Promise<LiteRtRuntime> => {
    const lib = await import('@litertjs/core');
    const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
    const threads =
      o.threads === 'auto'
        ? isolated && (await lib.supportsFeature('threads')) && (await lib.supportsFeature('relaxedSimd'))
        : !!o.threads;
    const jspi = o.jspi === 'auto' ? await lib.supportsFeature('jspi') : !!o.jspi;
    if (threads && jspi) throw new Error('LiteRT.js: the threaded and JSPI wasm builds exclude each other');
    const { value: rt, warnings } = await withWarnings(() => lib.loadLiteRt(o.wasmDir, { threads, jspi }));
    return {
      lib,
      build: threads ? 'threaded' : jspi ? 'jspi' : 'plain',
      threadCount: rt.liteRtWasm.getThreadCount(),
      webGpu: !!lib.getWebGpuDevice(),
      warnings,
      reused: false,
    };
  };
  pageRuntime = load();
  pageRuntime.catch(() => {
    pageRuntime = undefined;
  });
  return pageRuntime;
}

/** Load and compile a .tflite file for `accelerator`; wasm runs at `threads` when given. */
export async function compileLiteRt(
  rt: LiteRtRuntime,
  bytes: Uint8Array,
  accelerator: LiteRtAccelerator,
  o: { threads?: number } = {},
): Promise<LiteRtModel> {
  if (accelerator === 'webgpu' && !rt.webGpu) {
    const why = rt.warnings.length ? `: ${rt.warnings.join('; ')}` : '';
    throw new Error(`LiteRT.js has no WebGPU device${why}`);
  }
  let compiled: LiteRtJs.CompiledModel;
  let warnings: string[];
  try {
    ({ value: compiled, warnings } = await withWarnings(() =>
      rt.lib.loadAndCompile(bytes, {
        accelerator,
        // fp32 as every engine here (LiteRT's GPU default may be fp16 where the adapter has shader-f16).
        gpuOptions: { precision: 'fp32' },
        ...(o.threads ? { cpuOptions: { numThreads: o.threads } } : {}),
      }),
    ));
  } catch (e) {
    throw new Error(`LiteRT.js could not compile the model for ${accelerator}: ${message(e)}`);
  }
  const [input] = compiled.getInputDetails();
  const [output] = compiled.getOutputDetails();
  const inputShape = [...input.shape];
  return {
    requested: accelerator,
    actual: compiled.options.accelerator,
    fullyAccelerated: accelerator === 'wasm' || compiled.isFullyAccelerated,
    warnings,
    inputShape,
    outputShape: [...output.shape],
    async run(x) {
      const t = new rt.lib.Tensor(x, inputShape);
      let outs: LiteRtJs.Tensor[] = [];
      try {
        outs = await compiled.run(t);
        const y = await outs[0].data();
        if (!(y instanceof Float32Array))
          throw new Error(`LiteRT.js output is ${y.constructor.name}, not Float32Array`);
        return Float32Array.from(y);
      } finally {
        t.delete();
        for (const o of outs) o.delete();
      }
    },
    dispose: () => compiled.delete(),
  };
}

/**
 * What a WebGPU row may say about `m`: every op on WebGPU, or partly on wasm (per-op fallback).
 * A model LiteRT recompiled for wasm whole is an error: it is not a WebGPU row.
 */
export function webGpuDelegation(m: LiteRtModel): string {
  if (m.actual !== 'webgpu') {
    throw new Error(
      `LiteRT.js compiled the whole model for ${m.actual}, not WebGPU (${m.warnings.join('; ') || 'no reason given'}): not a WebGPU row`,
    );
  }
  return m.fullyAccelerated ? 'every op on WebGPU' : 'partial: ops the WebGPU delegate refused run on wasm';
}
