// LiteRT.js in headless Chromium, on the page as `npx cnnlab bench` serves it (LiteRT's wasm at
// /vendor/litert/): every op mapping of bench/peers/tflite-export.ts run by LiteRT on both of its
// accelerators against runReference, then the two bench engines (bench/models.ts) end to end on
// small models, each in a fresh page, and LiteRT's fallback to wasm detected and reported.
// About 75 s on 2 cores, most of it SwiftShader compiling LiteRT's WebGPU shaders.
// LiteRT's WebGPU accelerator runs on SwiftShader (Chromium 156, @litertjs/core 2.5.3), so its
// rows are expected to be ok here. Tolerance |d| ≤ 1e-4 + 1e-4·|ref| unless a case says otherwise.

import { execFileSync } from 'node:child_process';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compare, type EngineJob } from '../../bench/harness.js';
import { demoNetwork } from '../../bench/demo.js';
import { exportTflite } from '../../bench/peers/tflite-export.js';
import { encodeTflite, type TfliteModel, TensorType } from '../../bench/peers/tflite-schema.js';
import { type BrowserSession, resolveDist, startBrowser, WEB_ROOT } from '../../cli/common.js';
import { Graph, runReference } from '../../engine/graph.js';
import { optimize } from '../../engine/passes.js';
import { Rng } from '../../models/init.js';
import { loadModel } from '../../models/registry.js';
import { type Activation, numel } from '../../kernels/kernel.js';
import { expectClose, rand, type Tol } from '../helpers.js';

const TOL: Tol = { atol: 1e-4, rtol: 1e-4 };
const WASM_DIR = '/vendor/litert/';

let session: BrowserSession;
let page: Page;
const pageLog: string[] = [];

beforeAll(async () => {
  execFileSync(process.execPath, ['build.mjs']);
  session = await startBrowser({ '/': WEB_ROOT, '/vendor/litert/': resolveDist('@litertjs/core', '../wasm') }, (s) =>
    pageLog.push(s),
  );
  page = await session.newPage();
}, 120_000);

afterAll(async () => {
  await session?.close();
});

let seed = 1;
const konst = (g: Graph, name: string, shape: number[], lo = -1, hi = 1) =>
  g.constant(name, shape, rand(numel(shape), seed++, lo, hi));

interface Case {
  name: string;
  /** Builds the graph on input 'x' of `x`; returns its one output. */
  build(g: Graph): string;
  x: number[];
  range?: [number, number];
  tol?: Tol;
}

const conv = (
  g: Graph,
  x: string,
  k: number[],
  attrs: Record<string, unknown>,
  o: { bias?: boolean; residual?: string } = {},
) => {
  const inputs = [x, konst(g, `${x}.w${seed}`, k)];
  if (o.bias || o.residual) inputs.push(konst(g, `${x}.b${seed}`, [k[3]]));
  if (o.residual) inputs.push(o.residual);
  return g.op('conv2d', inputs, attrs);
};

const CASES: Case[] = [
  {
    name: 'conv 3x3 SAME pads, bias, relu',
    x: [1, 7, 6, 5],
    build: (g) => conv(g, 'x', [3, 3, 5, 6], { pad: [1, 1, 1, 1], act: 'relu' }, { bias: true }),
  },
  {
    name: 'conv 3x3 stride 2, asymmetric pads (explicit PAD), relu6',
    x: [2, 9, 8, 3],
    build: (g) => conv(g, 'x', [3, 3, 3, 7], { stride: [2, 2], pad: [1, 0, 2, 1], act: 'relu6' }, { bias: true }),
  },
  {
    name: 'conv 7x7 stride 2 pad 3 (ResNet stem), no bias',
    x: [1, 11, 10, 3],
    build: (g) => conv(g, 'x', [7, 7, 3, 5], { stride: [2, 2], pad: [3, 3, 3, 3] }),
  },
  {
    name: 'conv dilation 2, pad 2, gelu after',
    x: [1, 9, 9, 4],
    build: (g) => conv(g, 'x', [3, 3, 4, 4], { dilation: [2, 2], pad: [2, 2, 2, 2], act: 'gelu' }, { bias: true }),
  },
  {
    name: 'conv 1x1 with a fused residual, relu',
    x: [1, 5, 6, 6],
    build: (g) => conv(g, 'x', [1, 1, 6, 6], { act: 'relu' }, { residual: 'x' }),
  },
  {
    name: 'conv 16x16 stride 16 (ViT patch embedding)',
    x: [1, 32, 32, 3],
    build: (g) => conv(g, 'x', [16, 16, 3, 8], { stride: [16, 16] }, { bias: true }),
  },
  {
    name: 'depthwise 3x3 stride 2, relu6',
    x: [1, 9, 7, 6],
    build: (g) =>
      conv(g, 'x', [3, 3, 1, 6], { groups: 6, stride: [2, 2], pad: [1, 1, 1, 1], act: 'relu6' }, { bias: true }),
  },
  {
    name: 'depthwise, multiplier 2, SAME pads, hardswish',
    x: [1, 6, 5, 3],
    build: (g) => conv(g, 'x', [3, 3, 1, 6], { groups: 3, pad: [1, 1, 1, 1], act: 'hardswish' }, { bias: true }),
  },
  {
    name: 'maxpool 3x3 stride 2 pad 1 after a relu (zero PAD)',
    x: [1, 9, 8, 5],
    build: (g) =>
      g.op('maxpool', [g.op('activation', ['x'], { act: 'relu' })], {
        kernel: [3, 3],
        stride: [2, 2],
        pad: [1, 1, 1, 1],
      }),
  },
  {
    name: 'maxpool 3x3 stride 2 pad 1 on negative values (PADV2 with the lowest float)',
    x: [1, 8, 6, 3],
    range: [-3, -1],
    build: (g) => g.op('maxpool', ['x'], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }),
  },
  {
    name: 'maxpool 3x3 stride 2 pad 1, odd size (SAME)',
    x: [1, 7, 7, 3],
    range: [-3, -1],
    build: (g) => g.op('maxpool', ['x'], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }),
  },
  {
    name: 'avgpool 2x2 stride 2, no pads',
    x: [2, 6, 8, 3],
    build: (g) => g.op('avgpool', ['x'], { kernel: [2, 2], stride: [2, 2] }),
  },
  {
    name: 'avgpool 3x3 stride 1 pad 1 counting pads',
    x: [1, 5, 4, 3],
    build: (g) => g.op('avgpool', ['x'], { kernel: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], countIncludePad: true }),
  },
  {
    name: 'avgpool 3x3 stride 1 pad 1 excluding pads (SAME)',
    x: [1, 5, 4, 3],
    build: (g) => g.op('avgpool', ['x'], { kernel: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], countIncludePad: false }),
  },
  { name: 'global_avgpool', x: [2, 3, 5, 7], build: (g) => g.op('global_avgpool', ['x'], {}) },
  {
    name: 'matmul [N,K]·[K,N] (FULLY_CONNECTED), bias, relu',
    x: [3, 10],
    build: (g) => g.op('matmul', ['x', konst(g, 'w', [10, 7]), konst(g, 'b', [7])], { act: 'relu' }),
  },
  {
    name: 'matmul rank 3, transB weight, gelu (FULLY_CONNECTED keep_num_dims)',
    x: [2, 5, 12],
    build: (g) => g.op('matmul', ['x', konst(g, 'w', [9, 12]), konst(g, 'b', [9])], { transB: true, act: 'gelu' }),
  },
  {
    name: 'matmul without bias, silu',
    x: [4, 6],
    build: (g) => g.op('matmul', ['x', konst(g, 'w', [6, 5])], { act: 'silu' }),
  },
  {
    name: 'batched matmul of two values (BATCH_MATMUL adj_y), bias',
    x: [2, 3, 4, 6],
    build: (g) =>
      g.op('matmul', ['x', g.op('activation', ['x'], { act: 'relu' }), konst(g, 'b', [4])], { transB: true }),
  },
  {
    name: 'attention, packed qkv, 3 heads',
    x: [2, 5, 3 * 12],
    range: [-2, 2],
    build: (g) => g.op('attention', ['x'], { heads: 3 }),
  },
  {
    name: 'attention, separate q, k, v with Tq ≠ Tk and a scale',
    x: [1, 7, 8],
    build: (g) => {
      const kv = g.op('slice', ['x'], { axis: 1, start: 2, end: 7 });
      return g.op('attention', ['x', kv, g.op('activation', [kv], { act: 'relu' })], { heads: 2, scale: 0.3 });
    },
  },
  {
    name: 'layernorm over the last axis',
    x: [2, 5, 12],
    range: [-3, 3],
    build: (g) => g.op('layernorm', ['x', konst(g, 'gamma', [12]), konst(g, 'beta', [12])], { eps: 1e-6 }),
  },
  {
    name: 'group_norm, 3 groups, relu',
    x: [2, 3, 5, 6],
    range: [-3, 3],
    build: (g) =>
      g.op('group_norm', ['x', konst(g, 'gamma', [6]), konst(g, 'beta', [6])], { groups: 3, eps: 1e-5, act: 'relu' }),
  },
  {
    name: 'batchnorm where it did not fold (MUL, ADD), relu',
    x: [1, 4, 5, 6],
    build: (g) =>
      g.op('batchnorm', ['x', konst(g, 'g', [6]), konst(g, 'b', [6]), konst(g, 'm', [6]), konst(g, 'v', [6], 0.5, 2)], {
        eps: 1e-5,
        act: 'relu',
      }),
  },
  ...(['relu', 'relu6', 'gelu', 'hardswish', 'silu'] as Activation[]).map(
    (act): Case => ({
      name: `activation ${act}`,
      x: [2, 3, 4, 5],
      range: [-8, 8],
      build: (g) => g.op('activation', ['x'], { act }),
    }),
  ),
  {
    name: 'add with a broadcast constant, relu6',
    x: [2, 3, 4, 5],
    range: [-8, 8],
    build: (g) => g.op('add', ['x', konst(g, 'c', [5], -4, 4)], { act: 'relu6' }),
  },
  { name: 'softmax over the last axis', x: [2, 3, 9], range: [-4, 4], build: (g) => g.op('softmax', ['x'], {}) },
  {
    name: 'reshape and transpose',
    x: [2, 3, 4, 5],
    build: (g) => g.op('transpose', [g.op('reshape', ['x'], { shape: [2, 12, 5] })], { perm: [0, 2, 1] }),
  },
  {
    name: 'concat of a class token (tiled for batch 2) and slice of the first token',
    x: [2, 4, 6],
    build: (g) =>
      g.op('slice', [g.op('concat', [konst(g, 'cls', [1, 1, 6]), 'x'], { axis: 1 })], { axis: 1, start: 0, end: 1 }),
  },
  {
    name: 'slice with a negative start and a clamped end',
    x: [2, 7, 3],
    build: (g) => g.op('slice', ['x'], { axis: 1, start: -4, end: 100 }),
  },
  {
    name: 'pad with a value (PADV2)',
    x: [1, 3, 4, 2],
    build: (g) => g.op('pad', ['x'], { pad: [1, 0, 2, 3], value: -0.5 }),
  },
];

interface TfliteRun {
  output: number[];
  actual: string;
  fullyAccelerated: boolean;
  warnings: string[];
  outputShape: number[];
  build: string;
}

async function runInPage(p: Page, bytes: Uint8Array, x: Float32Array, accelerator: 'webgpu' | 'wasm') {
  return (await p.evaluate((o) => window.cnnlab.runTflite(o), {
    bytes: [...bytes],
    input: [...x],
    accelerator,
    wasmDir: WASM_DIR,
  })) as TfliteRun;
}

function buildCase(c: Case): { g: Graph; out: string; x: Float32Array } {
  const g = new Graph();
  g.input('x', c.x);
  const out = c.build(g);
  g.markOutputs(out);
  return { g, out, x: rand(numel(c.x), seed++, ...(c.range ?? [-1, 1])) };
}

describe.each(['wasm', 'webgpu'] as const)('LiteRT.js %s runs every op mapping', (accelerator) => {
  it.each(CASES)('$name', async (c) => {
    const { g, out, x } = buildCase(c);
    const want = runReference(g, { x })[out];
    const r = await runInPage(page, exportTflite(g), x, accelerator);
    expect(r.actual, `${c.name}: compiled for`).toBe(accelerator);
    // Every mapping is one the WebGPU delegate takes whole (none falls back to wasm).
    expect(r.fullyAccelerated, `${c.name}: fully accelerated`).toBe(true);
    expect(r.outputShape).toEqual(want.shape);
    expectClose({ shape: want.shape, data: Float32Array.from(r.output) }, want, c.tol ?? TOL, c.name);
  });
});

describe.each(['wasm', 'webgpu'] as const)('LiteRT.js %s on a whole network', (accelerator) => {
  it('demoNetwork (every kernel family cnnlab has: BN, residuals, depthwise, GroupNorm, attention), optimised', async () => {
    const g = demoNetwork({ size: 16, batch: 1, seed: 2 });
    const x = rand(16 * 16 * 3, 21, -2, 2);
    const want = runReference(g, { image: x })[g.outputs[0]];
    const r = await runInPage(page, exportTflite(optimize(g).graph, { outputs: [g.outputs[0]] }), x, accelerator);
    expect(r.fullyAccelerated).toBe(true);
    expectClose({ shape: want.shape, data: Float32Array.from(r.output) }, want, { atol: 1e-4, rtol: 1e-3 }, 'logits');
  });
});

describe('LiteRT.js as bench engines (a fresh page each, as the CLI runs them)', () => {
  /** The bench's own input and cnnlab's CPU reference logits for one job. */
  async function reference(model: string, batch: number, size: number) {
    const m = await loadModel(model, { weights: 'random', seed: 0, batch, size });
    const x = new Rng(1234 + batch).uniforms(batch * 3 * size * size, -2, 2);
    return runReference(m.graph, { image: x })[m.logits].data;
  }

  // Both accelerators on a CNN; the ViT (attention, layernorm, GELU) on wasm only, to keep
  // SwiftShader's shader compiles out of the test time (the op sweep runs its ops on WebGPU).
  const jobs = [
    { model: 'mobilenet_v2_synth', batch: 2, size: 32, engines: ['litert-wasm', 'litert-webgpu'] as const },
    { model: 'vit_tiny_patch16_224', batch: 1, size: 32, engines: ['litert-wasm'] as const },
  ];
  for (const { engines, ...job } of jobs) {
    for (const engine of engines) {
      it(`${engine} on ${job.model} (batch ${job.batch}, ${job.size}×${job.size}): logits match, clocks and settings recorded`, async () => {
        const want = await reference(job.model, job.batch, job.size);
        const p = await session.newPage();
        try {
          const j: EngineJob = { ...job, engine, seed: 0, iters: 2, warmup: 0, reference: [...want] };
          const out = await p.evaluate(([jj, c]) => window.cnnlab.benchEngine(jj, c), [
            j,
            { litertWasmDir: WASM_DIR },
          ] as const);
          const r = out.result;
          expect(r.error).toBeUndefined();
          expect(r.status).toBe('ok');
          expect(r.logits_match).toBe(true);
          expect(compare(Float32Array.from(out.logits!), want).logits_match).toBe(true);
          for (const k of ['load_ms', 'export_ms', 'cold_ms', 'median_ms'] as const) expect(r[k]).toBeGreaterThan(0);
          expect(r.runs_ms).toHaveLength(2);
          expect(r.cold_starts_before).toBe(0);
          expect(r.settings).toMatchObject({ readback: 'logits', version: '2.5.3' });
          if (engine === 'litert-wasm') {
            // The bench page is cross-origin isolated: the threaded build at every core.
            expect(r.settings).toMatchObject({ accelerator: 'wasm', wasmBuild: 'threaded', crossOriginIsolated: true });
            expect(r.settings!.threads).toBe(await p.evaluate(() => navigator.hardwareConcurrency));
          } else {
            expect(r.settings).toMatchObject({
              accelerator: 'webgpu',
              compiledFor: 'webgpu',
              precision: 'fp32',
              wasmBuild: 'jspi',
              delegation: 'every op on WebGPU',
            });
          }
        } finally {
          await p.close();
        }
      }, 240_000);
    }
  }
});

describe('LiteRT.js in one page (the interactive bench)', () => {
  it('a second engine reuses the runtime loaded first and says so (LiteRT is one global per page)', async () => {
    const { g, x } = buildCase(CASES[0]);
    await runInPage(page, exportTflite(g), x, 'wasm'); // loads the JSPI build, if this page had not yet
    const j: EngineJob = {
      engine: 'litert-wasm',
      model: 'mobilenet_v2_synth',
      batch: 1,
      size: 32,
      seed: 0,
      iters: 1,
      warmup: 0,
    };
    const out = await page.evaluate(([jj, c]) => window.cnnlab.benchEngine(jj, c), [
      j,
      { litertWasmDir: WASM_DIR },
    ] as const);
    expect(out.result.error).toBeUndefined();
    expect(out.result.settings).toMatchObject({
      wasmBuild: 'jspi',
      threads: 1,
      runtime: 'loaded earlier in this page (jspi build): LiteRT is one global per page',
    });
  });
});

describe('LiteRT.js fallback to wasm is detected, never labelled WebGPU', () => {
  // SOFTMAX with beta 2: an op LiteRT's WebGPU delegate refuses (found by trying; beta 1 is taken).
  const refused: TfliteModel = {
    description: 'softmax beta 2',
    tensors: [
      { name: 'x', shape: [2, 5], type: TensorType.FLOAT32, buffer: 0 },
      { name: 'y', shape: [2, 5], type: TensorType.FLOAT32, buffer: 0 },
    ],
    inputs: [0],
    outputs: [1],
    operators: [{ op: 'SOFTMAX', inputs: [0], outputs: [1], options: { table: 'SoftmaxOptions', beta: 2 } }],
    buffers: [new Uint8Array(0)],
    signatureKey: 'serving_default',
  };
  const x = rand(10, 5, -2, 2);
  const want = runReference(
    (() => {
      const g = new Graph();
      g.input('x', [2, 5]);
      g.markOutputs(g.op('softmax', [g.op('add', ['x', 'x'], {})], {}));
      return g;
    })(),
    { x },
  );
  const softmax2 = Object.values(want)[0];

  it('with JSPI: partial delegation, reported as such in the row', async () => {
    const r = (await runInPage(page, encodeTflite(refused), x, 'webgpu')) as TfliteRun & { delegation: string };
    expect(r.build).toBe('jspi');
    expect(r.actual).toBe('webgpu');
    expect(r.fullyAccelerated).toBe(false);
    expect(r.warnings.join(' ')).toContain('Model not fully compiled for webgpu');
    expect(r.delegation).toBe('partial: ops the WebGPU delegate refused run on wasm');
    expectClose({ shape: [2, 5], data: Float32Array.from(r.output) }, softmax2, TOL, 'softmax beta 2');
  });

  it('in a browser without JSPI: LiteRT recompiles the whole model for wasm, and the row is an error saying so', async () => {
    // Chromium has JSPI; without WebAssembly.Suspending the page is what Firefox or Safari give LiteRT.
    const p = await session.newPage();
    try {
      await p.evaluate(() => {
        delete (WebAssembly as { Suspending?: unknown }).Suspending;
      });
      const r = (await p.evaluate((o) => window.cnnlab.runTflite(o), {
        bytes: [...encodeTflite(refused)],
        input: [...x],
        accelerator: 'webgpu' as const,
        wasmDir: WASM_DIR,
        jspi: false,
      })) as TfliteRun & { delegation: string };
      expect(r.build).toBe('plain');
      expect(r.actual).toBe('wasm');
      expect(r.warnings.join(' ')).toContain('Falling back to WASM execution');
      expect(r.delegation).toMatch(/^error: LiteRT.js compiled the whole model for wasm, not WebGPU \(.*Falling back/);
    } finally {
      await p.close();
    }
  });
});
