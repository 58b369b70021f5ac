// The benchmark report's page for one bench.json: adapter, roofline, tuning and settings; the
// model table, the performance targets, charts, the kernel and tuning tables, notes, and how to
// read them. bench/report.ts shapes the data (engine order, speed-ups, target checks) into a
// BenchView; the inlined bench.json is what the chart module (report/charts/bench.ts) draws
// from. Every string from the JSON is rendered through escapeHtml, so the tables read even with
// scripts off.

import type { BenchJson, EngineName, EngineResult, KernelBench } from '../bench/schema.js';
import type { TuneRow } from '../bench/tune.js';
import { BENCH_DATA_ID, ENGINES_ATTR, KERNEL_CHART_MAX } from './charts/bench.js';
import { DASH, fmtBytes, fmtDiff, fmtMs, fmtNum, tick } from './format.js';
import { escapeHtml } from './html.js';
import { type ChartScripts, dl, figure, headRow, htmlPage } from './page.js';
import { ENGINE_COLORS } from './palette.js';

/** One performance goal checked on a run (bench/report.ts's targetChecks). */
export interface TargetCheck {
  what: string;
  value: string;
  target: string;
  met: boolean;
}

export interface BenchView {
  bench: BenchJson;
  /** The engines that ran, in report order (cnnlab first, then the peers, then any others). */
  engines: EngineName[];
  /** cnnlab's speed-up over each peer, per model (in bench.models order). */
  speedups: Partial<Record<EngineName, number>>[];
  /** Every kernel, slowest first. */
  kernels: KernelBench[];
  targets: TargetCheck[];
  /** How many vec4 FMAs take as long as one lane-divergent vec4 load (NaN without that measurement). */
  loadCostInFmas: number;
  /** The adapter is SwiftShader (a CPU implementation of Vulkan). */
  swiftShader: boolean;
  /** The training bench's rows (bench/report.ts trainView), when the run has one. */
  train?: TrainView;
}

/** The training bench's table: cells already formatted, one row per model, batch and engine. */
export interface TrainView {
  head: string[];
  rows: {
    /** On a model's first row: the model, its batch and size, and how many rows it spans. */
    group?: { label: string; sub: string; span: number };
    engine: string;
    ok: boolean;
    cells: string[];
    /** What the memory number counts, and any error. */
    title: string;
  }[];
  notes: string[];
}

/** The training bench as a report section. */
export function trainTableHtml(t: TrainView): string {
  const rows = t.rows.map((r) => {
    const cells = r.cells.map((c, k) => `<td class="${k === 0 ? (r.ok ? 'ok' : 'err') : 'num'}">${escapeHtml(c)}</td>`);
    const head = r.group
      ? `<th scope="rowgroup" rowspan="${r.group.span}" class="model">${escapeHtml(r.group.label)}<span>${escapeHtml(r.group.sub)}</span></th>`
      : '';
    return `<tr${r.title ? ` title="${escapeHtml(r.title)}"` : ''}>${head}<td class="engine">${escapeHtml(r.engine)}</td>${cells.join('')}</tr>`;
  });
  return `<section><h2>Training step</h2><table class="kernels"><caption>One step = forward, loss, backward and optimiser update, ended by reading the loss to the host (same clocks as above). ✓/✗: the loss agrees with cnnlab's within 1e-3 relative; step 2 comes after one update, so its agreement checks the gradients and the optimiser. ×N: TF.js median ÷ cnnlab median.</caption>
<thead><tr>${t.head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>
<ul class="notes">
${t.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('\n')}
</ul></section>`;
}

// ---- static sections -------------------------------------------------------------------------

function targetsHtml(checks: TargetCheck[]): string {
  return `<section><h2>Targets</h2><table class="kernels"><caption>cnnlab's performance goals, checked on this run's batch-1 measurements.</caption>
<thead><tr><th></th><th>what</th><th>measured</th><th>target</th></tr></thead><tbody>
${checks.map((c) => `<tr><td class="${c.met ? 'ok' : 'err'}">${c.met ? '✓ met' : '✗ missed'}</td><td>${escapeHtml(c.what)}</td><td class="num">${escapeHtml(c.value)}</td><td>${escapeHtml(c.target)}</td></tr>`).join('\n')}
</tbody></table></section>`;
}

function headerHtml(v: BenchView): string {
  const b = v.bench,
    a = b.adapter,
    r = b.roofline,
    s = b.settings;
  return `<header>
<h1>cnnlab benchmark</h1>
<p class="sub">${escapeHtml(b.created)} · <code>${escapeHtml(b.command)}</code></p>
<div class="cards">
<section><h2>Adapter</h2>${dl([
    ['summary', escapeHtml(a.summary)],
    ['vendor', escapeHtml(a.vendor || DASH)],
    ['architecture', escapeHtml(a.architecture || DASH)],
    ['description', escapeHtml(a.description || DASH)],
    ['runtime', escapeHtml(a.runtime)],
  ])}</section>
<section><h2>Roofline</h2>${dl([
    ['FMA', `${fmtNum(r.fmaGflops)} GFLOP/s`],
    ['copy', `${fmtNum(r.copyGBps)} GB/s`],
    ...(r.loadGBps
      ? [
          [
            'divergent loads',
            `${fmtNum(r.loadGBps)} GB/s: one vec4 load per invocation costs ≈ ${fmtNum(v.loadCostInFmas, 1)} vec4 FMAs`,
          ] as [string, string],
        ]
      : []),
    ['timing', escapeHtml(r.timing === 'timestamp' ? 'timestamp queries' : 'CPU wall time per dispatch')],
  ])}</section>
${
  b.tuning
    ? `<section><h2>Tuning</h2>${dl([
        [
          'table',
          b.tuning.layers
            ? `${escapeHtml(b.tuning.layers)} layers for this adapter`
            : 'none for this adapter: cnnlab ran on its heuristics',
        ],
        ['tuned in this run', escapeHtml(b.tuning.tuned_now)],
        ['adapter key', `<code>${escapeHtml(b.tuning.adapter)}</code>`],
      ])}</section>`
    : ''
}
<section><h2>Settings</h2>${dl([
    ['models', escapeHtml(s.models.join(', '))],
    ['batches', escapeHtml(s.batches.join(', '))],
    ['peers', escapeHtml(s.peers.join(', ') || DASH)],
    ['runs', `${escapeHtml(s.iters)} timed after ${escapeHtml(s.warmup)} warm-up`],
    ['input', `${escapeHtml(s.size)}×${escapeHtml(s.size)}${s.quick ? ' (quick)' : ''}`],
    ['isolation', escapeHtml(s.isolation ?? 'one page (before the fresh-page rule)')],
  ])}</section>
</div>
</header>`;
}

/** cold ms, or a warning where the cold start was taken on a page or device that had compiled before. */
function coldCell(r: EngineResult): string {
  if (!r.cold_invalid) return `<td class="num">${fmtMs(r.cold_ms)}</td>`;
  return `<td class="num bad" title="${escapeHtml(r.cold_invalid)}">${fmtMs(r.cold_ms)}<span>not cold</span></td>`;
}

/** How each engine ran (its settings as recorded in bench.json), one row per engine. */
function engineSettingsHtml(v: BenchView): string {
  const rows = v.engines.flatMap((e) => {
    const r = v.bench.models.map((m) => m.engines[e]).find((x) => x?.settings);
    if (!r?.settings) return [];
    const items = Object.entries(r.settings)
      .map(([k, x]) => `<code>${escapeHtml(k)}</code>: ${escapeHtml(x)}`)
      .join('<br>');
    return [
      `<tr><td class="engine"><i style="background:var(--${escapeHtml(e)}, #888)"></i>${escapeHtml(e)}</td><td>${items}</td></tr>`,
    ];
  });
  if (!rows.length) return '';
  return `<section><h2>Engines</h2><table class="kernels"><caption>How each engine ran, as recorded in bench.json.</caption>
${headRow(['engine', 'settings'])}
<tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

function modelTableHtml(v: BenchView): string {
  const b = v.bench,
    engines = v.engines;
  const head = [
    'model',
    'engine',
    'status',
    'load ms',
    'export ms',
    'cold ms',
    'min ms',
    'median ms',
    'p90 ms',
    'img/s',
    'logits',
    'max|Δ|',
    'cnnlab speed-up',
    'peak memory',
  ];
  const body = b.models.map((m, mi) => {
    const present = engines.filter((e) => m.engines[e]);
    const first = `<th scope="rowgroup" rowspan="${present.length}" class="model">${escapeHtml(m.model)}<span>batch ${escapeHtml(m.batch)} · ${escapeHtml(m.size)}px · ${fmtNum(m.flops / 1e9, 2)} GFLOP</span></th>`;
    return present
      .map((e, i) => {
        const r = m.engines[e]!;
        const cells = [
          `<td class="engine"><i style="background:var(--${escapeHtml(e)}, #888)"></i>${escapeHtml(e)}</td>`,
        ];
        if (r.status === 'ok') {
          const s = e === 'cnnlab' ? undefined : v.speedups[mi][e];
          cells.push(
            '<td class="ok">ok</td>',
            ...[r.load_ms, r.export_ms].map((x) => `<td class="num">${fmtMs(x)}</td>`),
            coldCell(r),
            ...[r.min_ms, r.median_ms, r.p90_ms].map((x) => `<td class="num">${fmtMs(x)}</td>`),
            `<td class="num">${fmtNum(r.throughput_ips)}</td>`,
            `<td class="tick ${r.logits_match === false ? 'bad' : ''}">${tick(r.logits_match)}</td>`,
            `<td class="num">${fmtDiff(r.max_abs_diff)}</td>`,
            `<td class="num ${s === undefined ? '' : s >= 1 ? 'faster' : 'slower'}">${s === undefined ? DASH : `×${s.toFixed(2)}`}</td>`,
          );
        } else {
          cells.push(
            `<td class="${r.status === 'error' ? 'err' : 'skip'}">${escapeHtml(r.status)}</td>`,
            `<td class="msg" colspan="10">${r.error ? `<pre>${escapeHtml(r.error)}</pre>` : ''}</td>`,
          );
        }
        const target =
          r.weight_bytes !== undefined && r.largest_activation_bytes !== undefined
            ? `<span class="${r.memory_within_target ? 'ok' : 'err'}">${r.memory_within_target ? '≤' : '&gt;'} weights + 3 × ${fmtBytes(r.largest_activation_bytes)}</span>`
            : '';
        const mem =
          r.peak_memory_bytes === undefined
            ? DASH
            : `${fmtBytes(r.peak_memory_bytes)}${r.weight_bytes === undefined ? '' : `<span>weights ${fmtBytes(r.weight_bytes)}</span>`}${target}`;
        cells.push(`<td class="num mem">${mem}</td>`);
        return `<tr class="${i === 0 ? 'first' : ''}">${i === 0 ? first : ''}${cells.join('')}</tr>`;
      })
      .join('\n');
  });
  return `<section><h2>Models</h2>
<table class="models">${headRow(head)}
<tbody>
${body.join('\n')}
</tbody></table></section>`;
}

function kernelTableHtml(b: BenchJson, kernels: KernelBench[]): string {
  const head = [
    'model',
    'node',
    'op / family',
    'shape',
    'count',
    'ms',
    'GFLOP/s',
    'GB/s',
    'bound',
    '% of peak',
    'validation',
  ];
  const rows = kernels.map((k) => {
    const v = k.validated;
    return (
      `<tr><td>${escapeHtml(k.model)}</td><td class="mono">${escapeHtml(k.node)}</td>` +
      `<td>${escapeHtml(k.op)}${k.family === k.op ? '' : `<span>${escapeHtml(k.family)}</span>`}</td><td class="mono shape">${escapeHtml(k.shape)}</td>` +
      `<td class="num">${escapeHtml(k.count)}</td><td class="num">${fmtMs(k.ms)}</td>` +
      `<td class="num">${fmtNum(k.gflops)}</td><td class="num">${fmtNum(k.gbps)}</td><td>${escapeHtml(k.bound)}</td>` +
      `<td class="num"><div class="bar"><b style="width:${Math.min(100, Math.max(0, 100 * k.fraction_of_peak)).toFixed(1)}%"></b></div>${(100 * k.fraction_of_peak).toFixed(1)}%</td>` +
      `<td class="${v.ok ? 'ok' : 'err'}" title="max|Δ| ${escapeHtml(v.max_abs_diff)} of max|ref| ${escapeHtml(v.max_abs_ref)}">${v.ok ? '✓' : '✗'} ${fmtDiff(v.max_abs_diff)}</td></tr>`
    );
  });
  const r = b.roofline;
  return `<table class="kernels"><caption>Every timed kernel, slowest first. % of peak: GFLOP/s ÷ FMA peak (${fmtNum(r.fmaGflops)}) for compute-bound kernels, GB/s ÷ copy peak (${fmtNum(r.copyGBps)}) for memory-bound ones. Validation: max|Δ| against the CPU reference.</caption>
${headRow(head)}
<tbody>
${rows.join('\n')}
</tbody></table>`;
}

function tuneTableHtml(rows: TuneRow[]): string {
  const head = [
    'model',
    'op',
    'shape',
    'count',
    'heuristic ms',
    'tuned ms',
    'gain',
    'build ms',
    'choice',
    'candidates',
  ];
  const body = rows.map((r) => {
    const ran = r.candidates.filter((c) => c.status === 'ok').length;
    const dropped = r.candidates
      .filter((c) => c.status !== 'ok' && c.status !== 'duplicate')
      .map((c) => `${c.prefer}: ${c.status}${c.error ? ` (${c.error})` : ''}`)
      .join('\n');
    return (
      `<tr><td>${escapeHtml(r.model)}</td><td>${escapeHtml(r.op)}</td><td class="mono shape">${escapeHtml(r.shape)}</td>` +
      `<td class="num">${escapeHtml(r.count)}</td><td class="num">${fmtMs(r.heuristic_ms)}</td><td class="num">${fmtMs(r.best_ms)}</td>` +
      `<td class="num ${r.best_ms < r.heuristic_ms ? 'faster' : ''}">×${(r.heuristic_ms / r.best_ms).toFixed(2)}</td>` +
      `<td class="num">${r.heuristic_compile_ms === undefined ? DASH : `${fmtNum(r.heuristic_compile_ms, 0)} → ${fmtNum(r.best_compile_ms, 0)}`}</td>` +
      `<td class="mono">${escapeHtml(r.best ? `${r.family}=${r.best}` : 'heuristic')}${r.status === 'cached' ? '<span>from the table</span>' : ''}</td>` +
      `<td class="num" title="${escapeHtml(dropped)}">${r.status === 'cached' ? DASH : `${ran}/${r.candidates.length} ran`}</td></tr>`
    );
  });
  return `<section><h2>Tuning</h2><table class="kernels"><caption>Each layer's kernel variants timed on this adapter (GPU time, fastest of several runs; every candidate checked against the CPU reference first). A candidate replaces the heuristic only when its score, run ms + build ms / 100 runs, is at least 3% better: a slower choice builds faster. Hover the last column for dropped candidates.</caption>
${headRow(head)}
<tbody>
${body.join('\n')}
</tbody></table></section>`;
}

function howToReadHtml(v: BenchView): string {
  const b = v.bench,
    s = b.settings;
  const swift = v.swiftShader
    ? ' <strong>This adapter is SwiftShader, a CPU implementation of Vulkan:</strong> the numbers measure WebGPU on the CPU, not a GPU, and rank engines by how well their dispatches suit it.'
    : '';
  return `<section class="read"><h2>How to read this</h2>
<p>One definition of each clock, applied to every engine alike (bench/harness.ts):
<b>load</b> makes the runtime ready (library import, wasm fetch and compile, backend start, GPU device creation);
<b>export</b> converts our graph to the engine's own format before the cold clock (ORT: the ONNX file; TF.js: the graph after cnnlab's optimize() passes, BN folded, bias, activation and residual add carried by tf.fused ops), a one-off a user does offline;
<b>cold</b> runs from weights in memory and a ready runtime to the first result: the engine's own graph preparation (cnnlab: optimise + compile pipelines; ORT: session creation; TF.js: model build and weight upload) and its first run.
${escapeHtml(
  s.isolation === 'page per engine and model'
    ? 'Every engine ran on every model and batch in a browser page (context, GPU device) opened for it alone, so nothing an earlier engine, tuning, the untuned variant or another batch compiled could warm its cold start;'
    : `Engines shared a page (${s.isolation ?? 'one page'}), so only the first cold start in it is a real one;`,
)}
a cold start taken on a page that had already run one, or on a device that already held compiled pipelines, is marked "not cold" and left out of the cold chart and the targets.
<b>Min, median and p90</b> are the steady state over ${escapeHtml(s.iters)} timed runs after ${escapeHtml(s.warmup)} warm-up runs; img/s is the batch divided by the median.
Every engine reads back the logits only. All ran on the same WebGPU adapter (the WASM lines on the CPU) with the same weights and input, and each peer's logits were checked against cnnlab's
(max|Δ| ≤ 10⁻³·max|cnnlab|) <em>before</em> it was timed; cnnlab's own logits are checked against PyTorch by the model tests and scripts/validate-full-size.sh, and its kernels against their CPU references.
The speed-up is the peer's median divided by cnnlab's: above 1, cnnlab is faster. Kernel times come from ${b.roofline.timing === 'timestamp' ? 'GPU timestamp queries' : 'CPU wall time around each dispatch (no timestamp queries: submit and sync overhead included)'},
and % of peak compares them with the roofline measured on this adapter in this run.${swift}</p>
</section>`;
}

// ---- charts (drawn in the page by report/charts/bench.ts) ---------------------------------

function chartsHtml(v: BenchView): string {
  const b = v.bench,
    kernelCount = v.kernels.filter((k) => typeof k.gflops === 'number').length;
  const has = (f: 'median_ms' | 'cold_ms' | 'load_ms') =>
    b.models.some((m) => Object.values(m.engines).some((r) => r?.status === 'ok' && typeof r[f] === 'number'));
  const prof = b.models.filter((m) => m.profile?.families.length).length;
  const figs: string[] = [];
  const fig = (id: string, caption: string, height: number) => figs.push(figure(id, caption, height));
  if (has('median_ms')) fig('chart-median', 'Median latency per model and batch', 320);
  if (has('cold_ms')) fig('chart-cold', 'Cold start: ready runtime → first result, graph preparation included', 320);
  if (has('load_ms')) fig('chart-load', 'Load: runtime ready (library, wasm, backend, device)', 320);
  if (prof) fig('chart-profile', "cnnlab's GPU time by kernel family", 90 + 34 * prof);
  if (kernelCount) {
    const n = Math.min(kernelCount, KERNEL_CHART_MAX);
    fig(
      'chart-kernels',
      `Kernels: achieved GFLOP/s against the FMA peak${kernelCount > n ? ` (the ${n} slowest of ${kernelCount})` : ''}`,
      80 + 20 * n,
    );
  }
  if (!figs.length) return '';
  return `<section><h2>Charts</h2><div class="charts" ${ENGINES_ATTR}="${escapeHtml(v.engines.join(' '))}">\n${figs.join('\n')}\n</div></section>`;
}

// ---- the page --------------------------------------------------------------------------------

/** Rules beyond the shell's BASE_CSS: engine colours, the model table's row groups, bars and verdicts. */
const CSS = `
:root { ${Object.entries(ENGINE_COLORS)
  .map(([e, c]) => `--${e}: ${c};`)
  .join(' ')} }
tr.first > * { border-top: 2px solid #dee2e6; }
th.model { background: #fff; } th span, td span { display: block; color: #6c757d; font-weight: normal; font-size: 12.5px; }
td.tick { text-align: center; }
td.engine { white-space: nowrap; } td.engine i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.ok { color: #2b8a3e; } .err, .bad { color: #c92a2a; font-weight: 600; } .skip { color: #868e96; }
.faster { color: #2b8a3e; font-weight: 600; } .slower { color: #c92a2a; }
td.shape { max-width: 340px; overflow-wrap: anywhere; }
.bar { display: inline-block; width: 60px; height: 8px; background: #e9ecef; margin-right: 6px; border-radius: 2px; vertical-align: middle; }
.bar b { display: block; height: 100%; background: #1971c2; border-radius: 2px; }
figure:has(#chart-kernels), figure:has(#chart-profile) { grid-column: 1 / -1; }
.read p { max-width: 900px; }
ul.notes li { margin: 4px 0; white-space: pre-wrap; }
`;

/** The report page: static tables and text, with charts drawn by the chart module. */
export function benchHtml(v: BenchView, scripts: ChartScripts): string {
  const b = v.bench;
  const charts = chartsHtml(v);
  return htmlPage({
    title: `cnnlab benchmark · ${b.adapter.summary} · ${b.created}`,
    css: CSS,
    sections: [
      headerHtml(v),
      b.models.length ? modelTableHtml(v) : '',
      v.train ? trainTableHtml(v.train) : '',
      engineSettingsHtml(v),
      v.targets.length ? targetsHtml(v.targets) : '',
      charts,
      v.kernels.length ? `<section><h2>Kernels</h2>${kernelTableHtml(b, v.kernels)}</section>` : '',
      b.tune?.length ? tuneTableHtml(b.tune) : '',
      b.notes.length
        ? `<section><h2>Notes</h2><ul class="notes">${b.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul></section>`
        : '',
      howToReadHtml(v),
    ],
    data: [{ id: BENCH_DATA_ID, value: b }],
    charts: charts ? scripts : undefined,
  });
}
