// The benchmark report: the HTML page (escaping, the inlined JSON and Chart.js, the tables) and
// the terminal table, on a hand-built bench.json; then the page with the real Chart.js UMD
// build opened from file:// in headless Chromium, where the charts must be drawn without errors.

import { describe, expect, it } from 'vitest';
import { escapeHtml, formatBenchTable, formatTargets, renderReport, targetChecks } from '../../bench/report.js';
import type { BenchJson, EngineResult } from '../../bench/schema.js';
import { chartJsSource, haveChromium, openReport } from '../report-harness.js';

const EVIL = 'session failed: <script>alert("pwned")</script> & "quotes" \'single\'';
const EVIL_NOTE = 'ort-wasm: threads off </script><img src=x onerror="window.__hacked=1"> & more';

function ok(median: number, extra: Partial<EngineResult> = {}): EngineResult {
  return {
    status: 'ok',
    cold_ms: median * 12,
    min_ms: median * 0.95,
    median_ms: median,
    p90_ms: median * 1.1,
    throughput_ips: 1000 / median,
    runs_ms: [median * 0.95, median, median * 1.1],
    logits_match: true,
    max_abs_diff: 2.5e-6,
    ...extra,
  };
}

function bench(): BenchJson {
  const models = (['resnet18', 'vit_tiny'] as const).flatMap((model, mi) =>
    [1, 8].map((batch) => {
      const c = (mi + 1) * batch * 3.1;
      return {
        model,
        batch,
        size: 64,
        flops: batch * (mi + 1) * 1.8e9,
        engines: {
          cnnlab: ok(c, {
            logits_match: null,
            max_abs_diff: undefined,
            peak_memory_bytes: 96 << 20,
            weight_bytes: 44 << 20,
          }),
          'ort-webgpu': ok(c * 3.2),
          'tfjs-webgpu': { status: 'error', error: EVIL, logits_match: null } as EngineResult,
          'ort-wasm': { status: 'skipped', error: 'not with --quick', logits_match: null } as EngineResult,
        },
        speedup: { 'ort-webgpu': 3.2 },
        profile: {
          mode: 'timestamp',
          total_ms: c,
          families: [
            { family: mi ? 'matmul' : 'conv2d', calls: 20, ms: c * 0.7, share: 0.7, gflops: 80 },
            { family: 'add', calls: 8, ms: c * 0.2, share: 0.2, gbps: 9 },
            { family: 'softmax', calls: 4, ms: c * 0.1, share: 0.1, gbps: 5 },
          ],
        },
      };
    }),
  );
  return {
    version: 1,
    created: '2025-11-25T13:25:00.000Z',
    command: 'cnnlab bench --models resnet18,vit_tiny --batches 1,8',
    adapter: {
      runtime: 'browser',
      vendor: 'google',
      architecture: 'swiftshader',
      description: 'SwiftShader Device (Subzero)',
      features: ['timestamp-query'],
      subgroupSize: 4,
      limits: {
        maxStorageBufferBindingSize: 1 << 27,
        maxBufferSize: 1 << 28,
        maxComputeWorkgroupsPerDimension: 65535,
        maxComputeInvocationsPerWorkgroup: 256,
        maxComputeWorkgroupStorageSize: 16384,
        maxStorageBuffersPerShaderStage: 8,
      },
      summary: 'google swiftshader (SwiftShader Device (Subzero))',
    },
    roofline: { fmaGflops: 123.4, copyGBps: 15.6, timing: 'timestamp', fmaMs: 1.2, copyMs: 2.1, copyBytes: 33554432 },
    settings: {
      models: ['resnet18', 'vit_tiny'],
      batches: [1, 8],
      peers: ['ort-webgpu', 'tfjs-webgpu', 'ort-wasm'],
      iters: 10,
      warmup: 3,
      quick: true,
      size: 64,
    },
    models,
    kernels: [
      {
        model: 'resnet18',
        node: 'layer3.0.conv2',
        op: 'conv2d',
        family: 'conv2d',
        shape: '[1,8,8,256] 3×3/1 → 256',
        count: 3,
        ms: 1.9,
        gflops: 61.7,
        fraction_of_peak: 0.5,
        bound: 'compute',
        validated: { max_abs_diff: 3e-6, max_abs_ref: 4.1, ok: true },
      },
      {
        model: 'resnet18',
        node: 'layer1.0.add',
        op: 'add',
        family: 'add',
        shape: '[1,16,16,64] + [1,16,16,64]',
        count: 4,
        ms: 0.05,
        gbps: 7.8,
        fraction_of_peak: 0.5,
        bound: 'memory',
        validated: { max_abs_diff: 0, max_abs_ref: 2, ok: true },
      },
      {
        model: 'vit_tiny',
        node: 'blocks.0.attn.qkv',
        op: 'matmul',
        family: 'matmul',
        shape: '[1,65,192] × [192,576]',
        count: 12,
        ms: 0.4,
        gflops: 36.1,
        fraction_of_peak: 0.29,
        bound: 'compute',
        validated: { max_abs_diff: 1e-5, max_abs_ref: 3, ok: true },
      },
      {
        model: 'vit_tiny',
        node: 'blocks.0.norm1',
        op: 'layernorm',
        family: 'layernorm',
        shape: '[1,65,192]',
        count: 25,
        ms: 0.02,
        gflops: 0.8,
        gbps: 5.1,
        fraction_of_peak: 0.33,
        bound: 'memory',
        validated: { max_abs_diff: 2e-3, max_abs_ref: 3, ok: false },
      },
    ],
    notes: [EVIL_NOTE, 'tfjs-webgpu failed on every model'],
  };
}

const FAKE_CHART = 'window.FAKE_CHART_JS_7f3a = 1;';

function jsonOf(html: string): unknown {
  const m = /<script type="application\/json" id="bench-data">([\s\S]*?)<\/script>/.exec(html);
  expect(m).not.toBeNull();
  return JSON.parse(m![1]);
}

describe('targets, tuning and untuned rows', () => {
  // resnet50 at batch 1: cnnlab 100 ms tuned, 130 untuned; ORT-WebGPU 600 (cold 3000), TF.js 450
  // (cold 2000, the faster peer both ways); ORT-WASM 12 ms; memory 110 MiB against 100 + 3 × 3.
  function tuned(): BenchJson {
    const b = bench();
    b.models = [
      {
        model: 'resnet50',
        batch: 1,
        size: 224,
        flops: 8.2e9,
        engines: {
          cnnlab: ok(100, {
            cold_ms: 900,
            logits_match: null,
            peak_memory_bytes: 110 << 20,
            weight_bytes: 100 << 20,
            largest_activation_bytes: 3 << 20,
            memory_within_target: false,
            tuned_nodes: 53,
          }),
          'cnnlab-untuned': ok(130, { cold_ms: 400 }),
          'ort-webgpu': ok(600, { cold_ms: 3000 }),
          'tfjs-webgpu': ok(450, { cold_ms: 2000 }),
          'ort-wasm': ok(12),
        },
        speedup: { 'ort-webgpu': 6, 'tfjs-webgpu': 4.5, 'ort-wasm': 0.12, 'cnnlab-untuned': 1.3 },
      },
    ];
    b.tuning = { adapter: 'browser/google/swiftshader/SwiftShader Device (Subzero)', layers: 60, tuned_now: 2 };
    b.tune = [
      {
        model: 'resnet50',
        node: 'layer1.0.conv2',
        op: 'conv2d',
        shape: '[1,56,56,64] 3x3→64 /1 p1 relu',
        count: 3,
        key: 'k1',
        family: 'conv2d',
        heuristic_ms: 90,
        best: 'gemm,tile=4x32,sg',
        best_ms: 60,
        status: 'tuned',
        candidates: [
          { prefer: '', status: 'ok', ms: 90 },
          { prefer: 'gemm,tile=4x32,sg', status: 'ok', ms: 60 },
          { prefer: 'gemm,tile=8x8', status: 'slow-compile' },
        ],
      },
      {
        model: 'resnet50',
        node: 'fc',
        op: 'matmul',
        shape: '[1,2048]·[2048,1000]+b',
        count: 1,
        key: 'k2',
        family: 'matmul',
        heuristic_ms: 5,
        best: '',
        best_ms: 5,
        status: 'cached',
        candidates: [],
      },
    ];
    return b;
  }
  it('checks each target on the batch-1 rows against the faster peer', () => {
    const c = targetChecks(tuned());
    expect(c.map((x) => [x.value, x.met])).toEqual([
      ['×4.50', false], // steady state vs TF.js (the faster): 450 / 100
      ['×2.22', false], // cold start vs TF.js: 2000 / 900
      ['8.33', true], // 100 / 12 ≤ 10
      ['110.0 MiB', false], // > 100 + 9
    ]);
    expect(c[0].what).toContain('tfjs-webgpu');
    expect(formatTargets(c)).toMatch(/^MISSED {2}resnet50 224px: steady state/);
  });
  it('the report shows the tuning table, the untuned row and the memory target', () => {
    const html = renderReport(tuned(), { chartJs: FAKE_CHART });
    expect(html).toContain('<h2>Targets</h2>');
    expect(html).toContain('60 layers for this adapter');
    expect(html).toContain('conv2d=gemm,tile=4x32,sg');
    expect(html).toContain('×1.50');
    expect(html).toContain('from the table');
    expect(html).toContain('gemm,tile=8x8: slow-compile');
    expect(html).toContain('cnnlab-untuned');
    expect(html).toContain('&gt; weights + 3 × 3.0 MiB');
    expect(formatBenchTable(tuned())).toContain('vs cnnlab-untuned');
  });
});

describe('renderReport', () => {
  const b = bench();
  const html = renderReport(b, { chartJs: FAKE_CHART });

  it('inlines Chart.js and the bench JSON, which round-trips', () => {
    expect(html).toContain(FAKE_CHART);
    expect(jsonOf(html)).toEqual(JSON.parse(JSON.stringify(b)));
    expect(html).not.toMatch(/src="https?:|href="https?:/);
  });

  it('escapes strings from the JSON everywhere', () => {
    expect(escapeHtml('<a href="x">&\'</a>')).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;');
    expect(html).toContain(escapeHtml(EVIL));
    expect(html).toContain(escapeHtml(EVIL_NOTE));
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    // Exactly three script tags: the data, Chart.js and the page's own script.
    expect(html.match(/<script\b/g)).toHaveLength(3);
    expect(html.match(/<\/script>/g)).toHaveLength(3);
    // The JSON carries the text unescaped apart from '<'.
    expect(html).toContain('\\u003cscript>alert(\\"pwned\\")\\u003c/script> & ');
  });

  it('has the header, model and kernel tables, notes and the how-to-read text', () => {
    for (const s of [
      'google',
      'swiftshader',
      'SwiftShader Device (Subzero)',
      '123.4 GFLOP/s',
      '15.6 GB/s',
      'timestamp queries',
      '2025-11-25T13:25:00.000Z',
      'cnnlab bench --models resnet18,vit_tiny --batches 1,8',
    ]) {
      expect(html).toContain(s);
    }
    // Model table: cnnlab resnet18 b=1 median 3.10 ms, ort-webgpu 9.92 ms, speed-up ×3.20, peak memory.
    expect(html).toContain('<td class="num">3.10</td>');
    expect(html).toContain('<td class="num">9.92</td>');
    expect(html).toContain('×3.20');
    expect(html).toContain('96.0 MiB');
    expect(html).toContain('<td class="err">error</td>');
    expect(html).toContain('<td class="skip">skipped</td>');
    expect(html).toContain('not with --quick');
    // Kernel table: every row, slowest first, % of peak and validation.
    const nodes = ['layer3.0.conv2', 'blocks.0.attn.qkv', 'layer1.0.add', 'blocks.0.norm1'];
    const at = nodes.map((n) => html.indexOf(`<td class="mono">${n}</td>`));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
    expect(html).toContain('29.0%');
    expect(html).toContain('[1,8,8,256] 3×3/1 → 256');
    expect(html).toContain('<td class="err" title="max|Δ| 0.002 of max|ref| 3">✗');
    for (const id of ['chart-median', 'chart-cold', 'chart-profile', 'chart-kernels'])
      expect(html).toContain(`id="${id}"`);
    expect(html).toContain('How to read this');
    expect(html).toContain('SwiftShader, a CPU implementation');
  });

  it('shows load, export and cold apart, flags a cold start that was not cold, lists each engine settings and states the protocol', () => {
    const c = bench();
    c.settings.isolation = 'page per engine and model';
    const e = c.models[0].engines;
    e.cnnlab = { ...e.cnnlab!, load_ms: 812, settings: { device: 'fresh GPUDevice', readback: 'logits' } };
    e['ort-webgpu'] = {
      ...e['ort-webgpu']!,
      load_ms: 1500,
      export_ms: 42.25,
      cold_invalid: 'not a cold start: <warm>',
      settings: { ep: 'webgpu', preferredLayout: 'NHWC' },
    };
    const page = renderReport(c, { chartJs: FAKE_CHART });
    for (const h of ['load ms', 'export ms', 'cold ms']) expect(page).toContain(`<th>${h}</th>`);
    expect(page).toContain('<td class="num">812</td>');
    expect(page).toContain('<td class="num">42.3</td>');
    expect(page).toContain(`title="${escapeHtml('not a cold start: <warm>')}"`);
    expect(page).toContain('<span>not cold</span>');
    expect(page).toContain('<h2>Engines</h2>');
    expect(page).toContain('<code>preferredLayout</code>: NHWC');
    expect(page).toContain('<code>device</code>: fresh GPUDevice');
    expect(page).toContain('opened for it alone');
    expect(page).toContain('id="chart-load"');
    expect(formatBenchTable(c)).toMatch(/load \/ export \/ cold ms/);
    expect(formatBenchTable(c)).toContain('1500 / 42.3 / 119!');
  });

  it('leaves out sections without data', () => {
    const bare: BenchJson = {
      ...bench(),
      kernels: [],
      notes: [],
      models: bench().models.map((m) => ({ ...m, profile: undefined })),
    };
    bare.adapter = {
      ...bare.adapter,
      vendor: 'nvidia',
      architecture: 'hopper',
      description: 'H100',
      summary: 'nvidia hopper',
    };
    const h = renderReport(bare, { chartJs: FAKE_CHART });
    expect(h).not.toContain('<h2>Kernels</h2>');
    expect(h).not.toContain('<h2>Notes</h2>');
    expect(h).not.toContain('id="chart-profile"');
    expect(h).not.toContain('id="chart-kernels"');
    expect(h).toContain('id="chart-median"');
    expect(h).not.toContain('SwiftShader, a CPU implementation');
    const empty = renderReport({ ...bare, models: [] }, { chartJs: FAKE_CHART });
    expect(empty).not.toContain(FAKE_CHART);
    expect(empty).not.toContain('<h2>Models</h2>');
  });
});

describe('formatBenchTable', () => {
  it('lists medians, logits checks, speed-ups and the error words', () => {
    const t = formatBenchTable(bench());
    const lines = t.split('\n');
    expect(lines[0]).toContain('google swiftshader');
    expect(lines[0]).toContain('FMA 123.4 GFLOP/s, copy 15.6 GB/s (timestamp)');
    expect(lines[1]).toMatch(
      /^model\s+batch\s+cnnlab\s+ort-webgpu\s+tfjs-webgpu\s+ort-wasm\s+vs ort-webgpu\s+vs tfjs-webgpu\s+vs ort-wasm$/,
    );
    expect(lines[2]).toMatch(/^resnet18\s+1\s+3\.10 ms —\s+9\.92 ms ✓\s+error\s+skipped\s+×3\.2\s+—\s+—$/);
    expect(lines[5]).toMatch(/^vit_tiny\s+8\s+/);
    expect(t).toContain('tfjs-webgpu on resnet18 b=1: error: session failed: <script>');
    expect(t).toContain('ort-wasm on vit_tiny b=8: skipped: not with --quick');
    // Columns line up: the last column is right-aligned, so header and rows end together.
    expect(new Set(lines.slice(1, 6).map((l) => l.length)).size).toBe(1);
  });

  it('computes a missing speed-up from the medians', () => {
    const b = bench();
    delete b.models[0].speedup;
    expect(formatBenchTable(b).split('\n')[2]).toContain('×3.2');
  });
});

describe.skipIf(!haveChromium)('report in headless Chromium', () => {
  it('draws every chart from file:// with the real Chart.js and no page errors', async () => {
    const html = renderReport(bench(), { chartJs: chartJsSource() });
    // No request may leave the page.
    const {
      errors,
      requests,
      result: r,
    } = await openReport(html, () => {
      const w = window as unknown as {
        __charts: { config: { type: string }; data: { datasets: unknown[] } }[];
        __hacked?: number;
      };
      return {
        charts: w.__charts.length,
        datasets: w.__charts.map((c) => c.data.datasets.length),
        canvases: Array.from(document.querySelectorAll('canvas')).map((c) => [c.id, c.width, c.height] as const),
        hacked: w.__hacked,
        errorText: document.querySelector('td.msg pre')?.textContent,
        scriptTags: document.querySelectorAll('script').length,
      };
    });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    expect(r.charts).toBe(4);
    // median and cold: the two engines that ran; profile: conv2d, matmul, add, softmax; kernels: one dataset.
    expect(r.datasets).toEqual([2, 2, 4, 1]);
    expect(r.canvases.map((c) => c[0])).toEqual(['chart-median', 'chart-cold', 'chart-profile', 'chart-kernels']);
    for (const [, w, h] of r.canvases) {
      expect(w).toBeGreaterThan(100);
      expect(h).toBeGreaterThan(100);
    }
    expect(r.hacked).toBeUndefined();
    expect(r.errorText).toBe(EVIL);
    expect(r.scriptTags).toBe(3);
  });
});
