// The benchmark harness without a GPU: fake engines whose phases take known times on a fake
// clock go through the same timeEngine / benchModel / runBench code as the real ones, so the
// clock boundaries, the logits check, the speed-up arithmetic and the fresh-page rule are
// checked here; then each real engine's recorded settings, ORT's WASM line run for real (in
// Node) through the harness on the demo network, and cnnlab on Dawn: cold on a fresh device,
// detected when its device had already compiled the model.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { demoNetwork } from '../../bench/demo.js';
import {
  type BenchEngine,
  ColdGuard,
  type EngineJob,
  type EngineOutcome,
  benchModel,
  compare,
  speedups,
  stats,
  timeEngine,
} from '../../bench/harness.js';
import { makeEngine } from '../../bench/models.js';
import { targetChecks } from '../../bench/report.js';
import { type BenchHost, enginesFor, runBench } from '../../bench/run.js';
import type { BenchJson, EngineName, EngineResult } from '../../bench/schema.js';
import { cachedPipelineCount, compile, type Plan } from '../../engine/executor.js';
import { runReference } from '../../engine/graph.js';
import { optimize } from '../../engine/passes.js';
import { emptyTuningFile } from '../../engine/tuning.js';
import { Rng } from '../../models/init.js';
import { testDevice } from '../helpers.js';

/** A clock that only moves when a fake phase says so. */
function fakeClock() {
  let t = 1000;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

interface FakePhases {
  load?: number;
  export?: number;
  prepare?: number;
  /** The first run's time, then each later run's. */
  first?: number;
  run?: number;
  logits?: Float32Array;
  cached?: number;
  failIn?: 'load' | 'export' | 'prepare' | 'run';
}

/** An engine whose phases take known times; records what was called. */
function fakeEngine(name: EngineName, clock: ReturnType<typeof fakeClock>, p: FakePhases = {}) {
  const calls: string[] = [];
  let runs = 0;
  const phase = async (what: NonNullable<FakePhases['failIn']>, ms: number) => {
    calls.push(what);
    clock.advance(ms);
    if (p.failIn === what) throw new Error(`${what} broke`);
  };
  const e: BenchEngine = {
    name,
    settings: { fake: true },
    load: () => phase('load', p.load ?? 100),
    ...(p.export === undefined ? {} : { export: () => phase('export', p.export!) }),
    prepare: () => phase('prepare', p.prepare ?? 300),
    async run() {
      await phase('run', runs++ === 0 ? (p.first ?? 50) : (p.run ?? 10));
      return p.logits ?? new Float32Array([1, 2, 3]);
    },
    ...(p.cached === undefined ? {} : { cachedPipelines: () => p.cached! }),
    dispose: () => {
      calls.push('dispose');
    },
  };
  return { e, calls };
}

const opts = (clock: ReturnType<typeof fakeClock>, guard = new ColdGuard('p1')) => ({
  iters: 5,
  warmup: 2,
  batch: 1,
  model: 'm',
  guard,
  now: clock.now,
});

/** A host whose every engine call gets a page (guard) of its own, as the CLI's does; the setup page is another. */
function fakeHost(medians: Partial<Record<EngineName, number>>, o: { tunedLayers?: number; onePage?: boolean } = {}) {
  const clock = fakeClock();
  const calls: string[] = [];
  const shared = new ColdGuard('one');
  let pages = 0;
  const host: BenchHost = {
    isolation: o.onePage ? 'one page' : 'page per engine and model',
    async setup() {
      calls.push('setup');
      return {
        adapter: { summary: 'fake' } as BenchJson['adapter'],
        roofline: { fmaGflops: 1, copyGBps: 1 } as BenchJson['roofline'],
        tuning: { adapter: 'k', layers: o.tunedLayers ?? 0, tuned_now: 0 },
        tuningFile: emptyTuningFile(),
      };
    },
    async engine(job: EngineJob): Promise<EngineOutcome> {
      calls.push(`${job.engine} ${job.model} b${job.batch}${job.reference ? ' ref' : ''}`);
      const guard = o.onePage ? shared : new ColdGuard(`page${++pages}`);
      const { e } = fakeEngine(job.engine, clock, { run: medians[job.engine] ?? 10 });
      const t = await timeEngine(e, new Float32Array(3), {
        ...opts(clock, guard),
        model: job.model,
        reference: job.reference ? Float32Array.from(job.reference) : undefined,
      });
      return { result: t.result, logits: t.first && [...t.first], flops: 7 };
    },
  };
  return { host, calls };
}

const benchOpts = { models: ['a', 'b'], batches: [1, 8], iters: 3, warmup: 0, size: 32, quick: true, kernels: false };

describe('bench harness: clocks', () => {
  it('load, export and cold are measured at their boundaries, and the steady state after warm-up', async () => {
    const clock = fakeClock();
    const { e, calls } = fakeEngine('ort-webgpu', clock, { load: 700, export: 40, prepare: 300, first: 50, run: 10 });
    const { result: r, first } = await timeEngine(e, new Float32Array(3), opts(clock));
    expect(r).toMatchObject({
      status: 'ok',
      load_ms: 700,
      export_ms: 40,
      cold_ms: 350,
      min_ms: 10,
      median_ms: 10,
      p90_ms: 10,
    });
    expect(r.runs_ms).toEqual([10, 10, 10, 10, 10]);
    expect(r.throughput_ips).toBe(100);
    expect(r.settings).toEqual({ fake: true });
    expect(r.page_id).toBe('p1');
    expect([...first!]).toEqual([1, 2, 3]);
    // load, export, prepare, first run, 2 warm-up, 5 timed, then dispose.
    expect(calls).toEqual(['load', 'export', 'prepare', ...Array(8).fill('run'), 'dispose']);
  });

  it('an engine without an export phase has no export_ms; load never counts into cold', async () => {
    const clock = fakeClock();
    const { e } = fakeEngine('cnnlab', clock, { load: 5000, prepare: 20, first: 5 });
    const { result: r } = await timeEngine(e, new Float32Array(3), opts(clock));
    expect(r.export_ms).toBeUndefined();
    expect(r.load_ms).toBe(5000);
    expect(r.cold_ms).toBe(25);
  });

  it.each(['load', 'export', 'prepare', 'run'] as const)(
    'a failure in %s is an error row naming the phase, and the engine is disposed',
    async (failIn) => {
      const clock = fakeClock();
      const { e, calls } = fakeEngine('tfjs-webgpu', clock, { export: 1, failIn });
      const { result: r } = await timeEngine(e, new Float32Array(3), opts(clock));
      expect(r.status).toBe('error');
      expect(r.error).toMatch(
        new RegExp(`^${failIn === 'prepare' || failIn === 'run' ? 'cold start' : failIn}: ${failIn} broke$`),
      );
      expect(calls.at(-1)).toBe('dispose');
      if (failIn !== 'load') expect(r.load_ms).toBe(100);
      expect(r.cold_ms).toBeUndefined();
    },
  );

  it('logits that differ from the reference are an error, and are not timed', async () => {
    const clock = fakeClock();
    const { e, calls } = fakeEngine('ort-wasm', clock, { logits: new Float32Array([1, 2, 3.1]) });
    const { result: r } = await timeEngine(e, new Float32Array(3), {
      ...opts(clock),
      reference: new Float32Array([1, 2, 3]),
    });
    expect(r).toMatchObject({ status: 'error', logits_match: false, cold_ms: 350 });
    expect(r.max_abs_diff).toBeCloseTo(0.1, 6);
    expect(r.median_ms).toBeUndefined();
    expect(calls.filter((c) => c === 'run')).toHaveLength(1);
  });

  it('compare and stats: the tolerance is relative to the reference, the median of an even count is the mean of the middle two', () => {
    expect(compare(new Float32Array([100.09, 1]), new Float32Array([100, 1]))).toEqual({
      logits_match: true,
      max_abs_diff: expect.closeTo(0.09, 5),
    });
    expect(compare(new Float32Array([100.2, 1]), new Float32Array([100, 1])).logits_match).toBe(false);
    expect(compare(new Float32Array(2), new Float32Array(3))).toEqual({ logits_match: false, max_abs_diff: Infinity });
    const s = stats([4, 1, 3, 2, 10, 5, 6, 7, 8, 9], 8);
    expect(s).toMatchObject({ min_ms: 1, median_ms: 5.5, p90_ms: 9, runs_ms: [4, 1, 3, 2, 10, 5, 6, 7, 8, 9] });
    expect(s.throughput_ips).toBeCloseTo(8000 / 5.5, 9);
  });
});

describe('bench harness: the fresh-page rule', () => {
  it('the first cold start on a page is valid; a second on the same page is flagged, naming the first', async () => {
    const clock = fakeClock();
    const guard = new ColdGuard('shared');
    const a = await timeEngine(fakeEngine('cnnlab', clock).e, new Float32Array(3), {
      ...opts(clock, guard),
      model: 'resnet50',
    });
    const b = await timeEngine(fakeEngine('cnnlab-untuned', clock).e, new Float32Array(3), {
      ...opts(clock, guard),
      model: 'resnet50',
    });
    expect(a.result.cold_invalid).toBeUndefined();
    expect(a.result.cold_starts_before).toBe(0);
    expect(b.result.cold_starts_before).toBe(1);
    expect(b.result.cold_invalid).toBe('not a cold start: this page already ran 1 cold start(s) (cnnlab resnet50)');
    expect(b.result.status).toBe('ok');
  });

  it('a device that already holds compiled pipelines is flagged even on a fresh page', async () => {
    const clock = fakeClock();
    const warm = await timeEngine(fakeEngine('cnnlab', clock, { cached: 12 }).e, new Float32Array(3), opts(clock));
    expect(warm.result.pipelines_before).toBe(12);
    expect(warm.result.cold_invalid).toMatch(/already held 12 compiled pipeline/);
    const cold = await timeEngine(fakeEngine('cnnlab', clock, { cached: 0 }).e, new Float32Array(3), opts(clock));
    expect(cold.result.pipelines_before).toBe(0);
    expect(cold.result.cold_invalid).toBeUndefined();
  });

  it('a flagged cold start is left out of the cold-start target', () => {
    const row = (e: Partial<EngineResult>): EngineResult => ({
      status: 'ok',
      logits_match: true,
      median_ms: 10,
      cold_ms: 100,
      ...e,
    });
    const b = {
      models: [
        {
          model: 'resnet50',
          batch: 1,
          size: 224,
          flops: 1,
          engines: { cnnlab: row({}), 'ort-webgpu': row({ cold_ms: 50, median_ms: 20 }) },
        },
      ],
    } as unknown as BenchJson;
    expect(targetChecks(b).map((c) => c.what)).toEqual([
      'resnet50 224px: steady state vs the faster WebGPU peer (ort-webgpu)',
      'resnet50 224px: cold start vs the faster WebGPU peer (ort-webgpu)',
    ]);
    b.models[0].engines.cnnlab!.cold_invalid = 'not a cold start: …';
    expect(targetChecks(b).map((c) => c.what)).toEqual([
      'resnet50 224px: steady state vs the faster WebGPU peer (ort-webgpu)',
    ]);
    // The CPU target is checked against the threaded ORT-WASM line, and says how many threads it had.
    b.models[0].engines['ort-wasm'] = row({ median_ms: 40, settings: { threads: 6 } });
    b.models[0].engines['ort-wasm-1t'] = row({ median_ms: 200, settings: { threads: 1 } });
    expect(targetChecks(b).at(-1)).toMatchObject({
      what: 'resnet50 224px: cnnlab time ÷ ORT-WASM (CPU, 6 threads) time',
      value: '0.25',
      met: true,
    });
  });

  it('runBench: setup first, then cnnlab and every other engine once per model and batch, each in a page of its own', async () => {
    const { host, calls } = fakeHost({}, { tunedLayers: 3 });
    const b = await runBench(host, { ...benchOpts, peers: ['ort-webgpu', 'ort-wasm'] });
    expect(calls[0]).toBe('setup');
    expect(calls.slice(1, 5)).toEqual([
      'cnnlab a b1',
      'cnnlab-untuned a b1 ref',
      'ort-webgpu a b1 ref',
      'ort-wasm a b1 ref',
    ]);
    expect(calls).toHaveLength(1 + 4 * 4);
    expect(b.settings.isolation).toBe('page per engine and model');
    const rows = b.models.flatMap((m) => Object.values(m.engines));
    expect(rows).toHaveLength(16);
    expect(new Set(rows.map((r) => r!.page_id)).size).toBe(16);
    expect(rows.every((r) => r!.cold_starts_before === 0 && !r!.cold_invalid)).toBe(true);
  });

  it('runBench in one page: every cold start after the first is flagged', async () => {
    const { host } = fakeHost({}, { onePage: true });
    const b = await runBench(host, { ...benchOpts, models: ['a'], batches: [1], peers: ['ort-webgpu', 'tfjs-webgpu'] });
    const e = b.models[0].engines;
    expect(e.cnnlab!.cold_invalid).toBeUndefined();
    expect(e['ort-webgpu']!.cold_invalid).toMatch(/already ran 1 cold start/);
    expect(e['tfjs-webgpu']!.cold_invalid).toMatch(/already ran 2 cold start/);
  });

  it('cnnlab-untuned runs only with a tuning table', () => {
    expect(enginesFor(['ort-wasm'], 0)).toEqual(['cnnlab', 'ort-wasm']);
    expect(enginesFor(['ort-wasm'], 5)).toEqual(['cnnlab', 'cnnlab-untuned', 'ort-wasm']);
  });
});

describe('bench harness: speed-ups', () => {
  it('each is the other engine median ÷ cnnlab median, for the engines that ran ok', async () => {
    const { host } = fakeHost(
      { cnnlab: 4, 'ort-webgpu': 10, 'tfjs-webgpu': 2, 'cnnlab-untuned': 5 },
      { tunedLayers: 1 },
    );
    const b = await runBench(host, { ...benchOpts, models: ['a'], batches: [1], peers: ['ort-webgpu', 'tfjs-webgpu'] });
    expect(b.models[0].speedup).toEqual({ 'cnnlab-untuned': 1.25, 'ort-webgpu': 2.5, 'tfjs-webgpu': 0.5 });
    expect(b.models[0].flops).toBe(7);
    const ok = (median_ms: number): EngineResult => ({ status: 'ok', logits_match: true, median_ms });
    expect(
      speedups({
        cnnlab: ok(2),
        'ort-wasm': ok(30),
        'ort-webgpu': { status: 'error', error: 'x', logits_match: null },
      }),
    ).toEqual({ 'ort-wasm': 15 });
    expect(speedups({ cnnlab: { status: 'error', logits_match: null }, 'ort-wasm': ok(30) })).toEqual({});
  });

  it('when cnnlab fails the others are skipped (no reference to check them against)', async () => {
    const run = vi.fn(
      async (job: EngineJob): Promise<EngineOutcome> => ({
        result:
          job.engine === 'cnnlab'
            ? { status: 'error', error: 'no adapter', logits_match: null }
            : { status: 'ok', logits_match: true },
      }),
    );
    const m = await benchModel('a', 1, ['cnnlab', 'ort-wasm'], run, { size: 8, seed: 0, iters: 1, warmup: 0 });
    expect(run).toHaveBeenCalledTimes(1);
    expect(m.engines['ort-wasm']).toMatchObject({ status: 'skipped' });
    expect(m.speedup).toEqual({});
  });
});

describe('bench engines: settings as recorded', () => {
  afterEach(() => vi.unstubAllGlobals());
  const g = demoNetwork({ size: 16, batch: 1, seed: 2 });
  const loaded = { graph: g, logits: g.outputs[0] };
  const make = (name: EngineName) =>
    makeEngine(name, loaded, new Float32Array(16 * 16 * 3), {}, { result: { status: 'ok', logits_match: null } });

  it('ORT: WASM at every hardware thread, the 1t line at one, WebGPU with NHWC; all read back the logits only', () => {
    vi.stubGlobal('navigator', { hardwareConcurrency: 6 });
    expect(make('ort-wasm').settings).toMatchObject({
      ep: 'wasm',
      threads: 6,
      graphOptimizationLevel: 'all',
      readback: 'logits',
    });
    expect(make('ort-wasm-1t').settings).toMatchObject({ ep: 'wasm', threads: 1, readback: 'logits' });
    expect(make('ort-webgpu').settings).toMatchObject({ ep: 'webgpu', preferredLayout: 'NHWC', readback: 'logits' });
    expect(make('ort-webgpu').settings.threads).toBeUndefined();
  });

  it('TF.js runs the optimised graph with fused ops; cnnlab a fresh device', () => {
    expect(make('tfjs-webgpu').settings).toMatchObject({ backend: 'webgpu', readback: 'logits' });
    expect(String(make('tfjs-webgpu').settings.graph)).toMatch(/optimize\(\).*BN folded.*tf\.fused\.conv2d/);
    expect(make('tfjs-webgpu').export).toBeTypeOf('function');
    expect(make('cnnlab').settings).toMatchObject({ device: 'fresh GPUDevice', readback: 'logits' });
    expect(make('cnnlab').export).toBeUndefined();
  });

  it('LiteRT.js: WebGPU at fp32 and wasm, the optimised graph as TFLite, logits only; no wasm URL is a load error', async () => {
    const gpu = make('litert-webgpu'),
      cpu = make('litert-wasm');
    expect(gpu.settings).toMatchObject({ accelerator: 'webgpu', precision: 'fp32', readback: 'logits' });
    expect(cpu.settings).toMatchObject({ accelerator: 'wasm', readback: 'logits' });
    expect(cpu.settings.precision).toBeUndefined();
    expect(String(gpu.settings.graph)).toMatch(/TFLite exported from the optimised graph/);
    await gpu.export!();
    expect(gpu.settings.tfliteBytes).toBeGreaterThan(4 * 16 * 3);
    const r = (
      await timeEngine(cpu, new Float32Array(16 * 16 * 3), {
        iters: 1,
        warmup: 0,
        batch: 1,
        model: 'demo',
        guard: new ColdGuard('l'),
      })
    ).result;
    expect(r).toMatchObject({
      status: 'error',
      error: expect.stringMatching(/^load: LiteRT\.js needs the URL of its wasm folder/),
    });
  });

  it('ort-wasm-1t runs through the harness for real (Node): every clock set, logits match the CPU reference', async () => {
    const x = new Rng(5).uniforms(16 * 16 * 3, -2, 2);
    const want = runReference(g, { image: x }, [loaded.logits])[loaded.logits].data;
    const e = make('ort-wasm-1t');
    const { result: r } = await timeEngine(e, x, {
      iters: 2,
      warmup: 1,
      batch: 1,
      model: 'demo',
      guard: new ColdGuard('node'),
      reference: want,
    });
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ status: 'ok', logits_match: true, cold_starts_before: 0 });
    for (const k of ['load_ms', 'export_ms', 'cold_ms', 'median_ms'] as const) expect(r[k]).toBeGreaterThan(0);
    expect(r.settings).toMatchObject({ threads: 1, version: expect.stringMatching(/^\d+\.\d+/) });
  });

  it('cnnlab (Node, Dawn): a fresh device starts cold; a cold start on a device that compiled the model is detected', async () => {
    const x = new Rng(6).uniforms(16 * 16 * 3, -2, 2);
    const want = runReference(g, { image: x }, [loaded.logits])[loaded.logits].data;
    const o = { iters: 1, warmup: 0, batch: 1, model: 'demo', reference: want };
    const fresh = await timeEngine(make('cnnlab'), x, { ...o, guard: new ColdGuard('fresh') });
    expect(fresh.result.error).toBeUndefined();
    expect(fresh.result).toMatchObject({
      status: 'ok',
      logits_match: true,
      pipelines_before: 0,
      cold_starts_before: 0,
    });
    expect(fresh.result.cold_invalid).toBeUndefined();
    // The same graph again on a device that has compiled it: a fresh page, but a warm device.
    const device = await testDevice();
    (await compile(device, optimize(g).graph)).dispose();
    let plan: Plan | undefined;
    const warm: BenchEngine = {
      name: 'cnnlab',
      settings: {},
      load: async () => {},
      cachedPipelines: () => cachedPipelineCount(device.gpu),
      async prepare() {
        plan = await compile(device, optimize(g).graph);
      },
      run: async (input) =>
        (await plan!.run({ image: input }, { outputs: [loaded.logits] })).outputs[loaded.logits].data,
      dispose: () => plan?.dispose(),
    };
    const r = (await timeEngine(warm, x, { ...o, guard: new ColdGuard('second') })).result;
    expect(r.pipelines_before).toBeGreaterThan(0);
    expect(r.cold_invalid).toMatch(/its device already held \d+ compiled pipeline\(s\)/);
  });
});
