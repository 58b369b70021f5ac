// bench.json → a self-contained HTML report and a terminal table.
//
// The HTML needs no network: the Chart.js UMD build is inlined (the CLI reads it from
// node_modules/chart.js/dist/chart.umd.js; the package's "exports" do not list that path, so
// resolve the package root and join it), and so is the BenchJson, in a
// <script type="application/json"> tag. Tables and text are rendered here as static HTML
// (every string from the JSON goes through escapeHtml), so they read even with scripts off;
// the page's own script draws the charts from the inlined JSON and leaves them in
// window.__charts.

export { escapeHtml, inlineJson } from '../web/html.js';

import { chartScriptPrelude, escapeHtml, inlineJs, inlineJson } from '../web/html.js';
import { ENGINES, type BenchJson, type EngineName, type EngineResult, type KernelBench, type ModelBench } from './schema.js';
import type { TuneRow } from './tune.js';

const DASH = '—';

function fmtMs(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return DASH;
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(3);
}

function fmtNum(x: number | undefined, digits = 1): string {
  if (x === undefined || !Number.isFinite(x)) return DASH;
  return x >= 1000 ? x.toFixed(0) : x.toFixed(digits);
}

function fmtBytes(x: number | undefined): string {
  if (x === undefined) return DASH;
  return x >= 1 << 30 ? `${(x / (1 << 30)).toFixed(2)} GiB` : `${(x / (1 << 20)).toFixed(1)} MiB`;
}

function fmtDiff(x: number | undefined): string {
  return x === undefined ? DASH : x === 0 ? '0' : x.toExponential(1);
}

const tick = (m: boolean | null | undefined) => (m === true ? '✓' : m === false ? '✗' : DASH);

// ---- shared helpers ------------------------------------------------------------------------

/** Engines that appear in any model, in ENGINES order (cnnlab first), then any others. */
function enginesOf(b: BenchJson): EngineName[] {
  const seen = new Set<string>();
  for (const m of b.models) for (const e of Object.keys(m.engines)) seen.add(e);
  const known = ENGINES.filter((e) => seen.has(e));
  return [...known, ...[...seen].filter((e) => !(ENGINES as readonly string[]).includes(e)).sort()] as EngineName[];
}

/** cnnlab's speed-up over `peer` (peer median / cnnlab median): from bench.json, else from the medians. */
export function speedupOf(m: ModelBench, peer: EngineName): number | undefined {
  const s = m.speedup?.[peer];
  if (s !== undefined) return s;
  const c = m.engines.cnnlab, p = m.engines[peer];
  if (c?.status !== 'ok' || p?.status !== 'ok' || !c.median_ms || p.median_ms === undefined) return undefined;
  return p.median_ms / c.median_ms;
}

const isSwiftShader = (b: BenchJson) =>
  /swiftshader/i.test([b.adapter.vendor, b.adapter.architecture, b.adapter.description, b.adapter.summary].join(' '));

const modelLabel = (m: ModelBench) => `${m.model} b=${m.batch}`;

// ---- terminal table ------------------------------------------------------------------------

function engineCell(r: EngineResult | undefined): string {
  if (!r) return DASH;
  if (r.status !== 'ok') return r.status;
  const t = r.median_ms === undefined ? DASH : `${fmtMs(r.median_ms)} ms`;
  return `${t} ${tick(r.logits_match)}`;
}

/** One row per model+batch: median per engine with its logits check, then cnnlab's speed-up over each peer. */
export function formatBenchTable(b: BenchJson): string {
  const engines = enginesOf(b);
  const peers = engines.filter((e) => e !== 'cnnlab');
  const head = ['model', 'batch', ...engines, ...peers.map((p) => `vs ${p}`)];
  const rows = b.models.map((m) => [
    m.model, String(m.batch),
    ...engines.map((e) => engineCell(m.engines[e])),
    ...peers.map((p) => { const s = speedupOf(m, p); return s === undefined ? DASH : `×${s.toFixed(s >= 10 ? 0 : 1)}`; }),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  const r = b.roofline;
  const out = [
    `adapter: ${b.adapter.summary}  ·  roofline: FMA ${fmtNum(r.fmaGflops)} GFLOP/s, copy ${fmtNum(r.copyGBps)} GB/s` +
      `${r.loadGBps ? `, divergent vec4 loads ${fmtNum(r.loadGBps)} GB/s (one ≈ ${fmtNum(loadCostInFmas(r), 1)} vec4 FMAs)` : ''} (${r.timing})`,
    line(head),
    ...rows.map(line),
  ];
  const problems = b.models.flatMap((m) => engines.flatMap((e) => {
    const x = m.engines[e];
    if (!x || x.status === 'ok' || !x.error) return [];
    const msg = x.error.split('\n')[0];
    return [`  ${e} on ${m.model} b=${m.batch}: ${x.status}: ${msg.length > 140 ? `${msg.slice(0, 137)}...` : msg}`];
  }));
  if (problems.length) out.push('', ...problems);
  out.push('', 'median ms (✓/✗: logits match cnnlab); ×N: cnnlab is N times faster than that peer (peer median / cnnlab median)');
  return out.join('\n');
}

// ---- performance targets ---------------------------------------------------------------------

export interface TargetCheck {
  what: string;
  value: string;
  target: string;
  met: boolean;
}

const WEBGPU_PEERS: EngineName[] = ['ort-webgpu', 'tfjs-webgpu'];

/**
 * cnnlab's performance goals, checked on what this run measured (batch 1 rows): steady state
 * ≥ 5× the faster WebGPU peer, cold start ≥ 3× the faster peer's, ResNet-50 within 10× of
 * ORT's WASM (CPU) line, peak memory ≤ weights + 3 × the largest activation.
 */
export function targetChecks(b: BenchJson): TargetCheck[] {
  const out: TargetCheck[] = [];
  for (const m of b.models.filter((x) => x.batch === 1)) {
    const ours = m.engines.cnnlab;
    if (ours?.status !== 'ok') continue;
    const peers = WEBGPU_PEERS.map((e) => [e, m.engines[e]] as const).filter(([, r]) => r?.status === 'ok');
    const label = `${m.model} ${m.size}px`;
    if (peers.length) {
      const [fe, fr] = peers.reduce((a, p) => (p[1]!.median_ms! < a[1]!.median_ms! ? p : a));
      const x = fr!.median_ms! / ours.median_ms!;
      out.push({ what: `${label}: steady state vs the faster WebGPU peer (${fe})`, value: `×${x.toFixed(2)}`, target: '≥ ×5', met: x >= 5 });
      const [ce, cr] = peers.reduce((a, p) => (p[1]!.cold_ms! < a[1]!.cold_ms! ? p : a));
      const c = cr!.cold_ms! / ours.cold_ms!;
      out.push({ what: `${label}: cold start vs the faster WebGPU peer (${ce})`, value: `×${c.toFixed(2)}`, target: '≥ ×3', met: c >= 3 });
    }
    const wasm = m.engines['ort-wasm'];
    if (m.model === 'resnet50' && wasm?.status === 'ok') {
      const r = ours.median_ms! / wasm.median_ms!;
      out.push({ what: `${label}: cnnlab time ÷ ORT-WASM (CPU) time`, value: `${r.toFixed(2)}`, target: '≤ 10', met: r <= 10 });
    }
    if (m.model === 'resnet50' && ours.peak_memory_bytes !== undefined && ours.weight_bytes !== undefined && ours.largest_activation_bytes !== undefined) {
      const limit = ours.weight_bytes + 3 * ours.largest_activation_bytes;
      out.push({ what: `${label}: peak GPU memory`, value: fmtBytes(ours.peak_memory_bytes), target: `≤ ${fmtBytes(limit)} (weights + 3 × ${fmtBytes(ours.largest_activation_bytes)})`, met: ours.peak_memory_bytes <= limit });
    }
  }
  return out;
}

export function formatTargets(checks: TargetCheck[]): string {
  const w = Math.max(...checks.map((c) => c.what.length), 4);
  return checks.map((c) => `${c.met ? 'met   ' : 'MISSED'}  ${c.what.padEnd(w)}  ${c.value.padStart(8)}  (${c.target})`).join('\n');
}

function targetsHtml(checks: TargetCheck[]): string {
  return `<section><h2>Targets</h2><table class="kernels"><caption>cnnlab's performance goals, checked on this run's batch-1 measurements.</caption>
<thead><tr><th></th><th>what</th><th>measured</th><th>target</th></tr></thead><tbody>
${checks.map((c) => `<tr><td class="${c.met ? 'ok' : 'err'}">${c.met ? '✓ met' : '✗ missed'}</td><td>${escapeHtml(c.what)}</td><td class="num">${escapeHtml(c.value)}</td><td>${escapeHtml(c.target)}</td></tr>`).join('\n')}
</tbody></table></section>`;
}

// ---- HTML: static sections -----------------------------------------------------------------

function headerHtml(b: BenchJson): string {
  const a = b.adapter, r = b.roofline, s = b.settings;
  const dl = (rows: [string, string][]) =>
    `<dl>${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
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
    ...(r.loadGBps ? [['divergent loads', `${fmtNum(r.loadGBps)} GB/s: one vec4 load per invocation costs ≈ ${fmtNum(loadCostInFmas(r), 1)} vec4 FMAs`] as [string, string]] : []),
    ['timing', escapeHtml(r.timing === 'timestamp' ? 'timestamp queries' : 'CPU wall time per dispatch')],
  ])}</section>
${b.tuning ? `<section><h2>Tuning</h2>${dl([
    ['table', b.tuning.layers ? `${escapeHtml(b.tuning.layers)} layers for this adapter` : 'none for this adapter: cnnlab ran on its heuristics'],
    ['tuned in this run', escapeHtml(b.tuning.tuned_now)],
    ['adapter key', `<code>${escapeHtml(b.tuning.adapter)}</code>`],
  ])}</section>` : ''}
<section><h2>Settings</h2>${dl([
    ['models', escapeHtml(s.models.join(', '))],
    ['batches', escapeHtml(s.batches.join(', '))],
    ['peers', escapeHtml(s.peers.join(', ') || DASH)],
    ['runs', `${escapeHtml(s.iters)} timed after ${escapeHtml(s.warmup)} warm-up`],
    ['input', `${escapeHtml(s.size)}×${escapeHtml(s.size)}${s.quick ? ' (quick)' : ''}`],
  ])}</section>
</div>
</header>`;
}

/** How many vec4 FMAs (8 flops) take as long as one lane-divergent vec4 load (16 bytes). */
export function loadCostInFmas(r: BenchJson['roofline']): number {
  return r.loadGBps ? (r.fmaGflops / 8) / (r.loadGBps / 16) : NaN;
}

function modelTableHtml(b: BenchJson): string {
  const engines = enginesOf(b);
  const head = ['model', 'engine', 'status', 'cold ms', 'min ms', 'median ms', 'p90 ms', 'img/s', 'logits', 'max|Δ|', 'cnnlab speed-up', 'peak memory'];
  const body = b.models.map((m) => {
    const present = engines.filter((e) => m.engines[e]);
    const first = `<th scope="rowgroup" rowspan="${present.length}" class="model">${escapeHtml(m.model)}<span>batch ${escapeHtml(m.batch)} · ${escapeHtml(m.size)}px · ${fmtNum(m.flops / 1e9, 2)} GFLOP</span></th>`;
    return present.map((e, i) => {
      const r = m.engines[e]!;
      const cells = [`<td class="engine"><i style="background:var(--${escapeHtml(e)}, #888)"></i>${escapeHtml(e)}</td>`];
      if (r.status === 'ok') {
        const s = e === 'cnnlab' ? undefined : speedupOf(m, e);
        cells.push(
          '<td class="ok">ok</td>',
          ...[r.cold_ms, r.min_ms, r.median_ms, r.p90_ms].map((x) => `<td class="num">${fmtMs(x)}</td>`),
          `<td class="num">${fmtNum(r.throughput_ips)}</td>`,
          `<td class="tick ${r.logits_match === false ? 'bad' : ''}">${tick(r.logits_match)}</td>`,
          `<td class="num">${fmtDiff(r.max_abs_diff)}</td>`,
          `<td class="num ${s === undefined ? '' : s >= 1 ? 'faster' : 'slower'}">${s === undefined ? DASH : `×${s.toFixed(2)}`}</td>`,
        );
      } else {
        cells.push(
          `<td class="${r.status === 'error' ? 'err' : 'skip'}">${escapeHtml(r.status)}</td>`,
          `<td class="msg" colspan="8">${r.error ? `<pre>${escapeHtml(r.error)}</pre>` : ''}</td>`,
        );
      }
      const target = r.weight_bytes !== undefined && r.largest_activation_bytes !== undefined
        ? `<span class="${r.memory_within_target ? 'ok' : 'err'}">${r.memory_within_target ? '≤' : '&gt;'} weights + 3 × ${fmtBytes(r.largest_activation_bytes)}</span>` : '';
      const mem = r.peak_memory_bytes === undefined ? DASH
        : `${fmtBytes(r.peak_memory_bytes)}${r.weight_bytes === undefined ? '' : `<span>weights ${fmtBytes(r.weight_bytes)}</span>`}${target}`;
      cells.push(`<td class="num mem">${mem}</td>`);
      return `<tr class="${i === 0 ? 'first' : ''}">${i === 0 ? first : ''}${cells.join('')}</tr>`;
    }).join('\n');
  });
  return `<section><h2>Models</h2>
<table class="models"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>
<tbody>
${body.join('\n')}
</tbody></table></section>`;
}

function kernelTableHtml(b: BenchJson, kernels: KernelBench[]): string {
  const head = ['model', 'node', 'op / family', 'shape', 'count', 'ms', 'GFLOP/s', 'GB/s', 'bound', '% of peak', 'validation'];
  const rows = kernels.map((k) => {
    const v = k.validated;
    return `<tr><td>${escapeHtml(k.model)}</td><td class="mono">${escapeHtml(k.node)}</td>` +
      `<td>${escapeHtml(k.op)}${k.family === k.op ? '' : `<span>${escapeHtml(k.family)}</span>`}</td><td class="mono shape">${escapeHtml(k.shape)}</td>` +
      `<td class="num">${escapeHtml(k.count)}</td><td class="num">${fmtMs(k.ms)}</td>` +
      `<td class="num">${fmtNum(k.gflops)}</td><td class="num">${fmtNum(k.gbps)}</td><td>${escapeHtml(k.bound)}</td>` +
      `<td class="num"><div class="bar"><b style="width:${Math.min(100, Math.max(0, 100 * k.fraction_of_peak)).toFixed(1)}%"></b></div>${(100 * k.fraction_of_peak).toFixed(1)}%</td>` +
      `<td class="${v.ok ? 'ok' : 'err'}" title="max|Δ| ${escapeHtml(v.max_abs_diff)} of max|ref| ${escapeHtml(v.max_abs_ref)}">${v.ok ? '✓' : '✗'} ${fmtDiff(v.max_abs_diff)}</td></tr>`;
  });
  const r = b.roofline;
  return `<table class="kernels"><caption>Every timed kernel, slowest first. % of peak: GFLOP/s ÷ FMA peak (${fmtNum(r.fmaGflops)}) for compute-bound kernels, GB/s ÷ copy peak (${fmtNum(r.copyGBps)}) for memory-bound ones. Validation: max|Δ| against the CPU reference.</caption>
<thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>`;
}

function tuneTableHtml(rows: TuneRow[]): string {
  const head = ['model', 'op', 'shape', 'count', 'heuristic ms', 'tuned ms', 'gain', 'build ms', 'choice', 'candidates'];
  const body = rows.map((r) => {
    const ran = r.candidates.filter((c) => c.status === 'ok').length;
    const dropped = r.candidates.filter((c) => c.status !== 'ok' && c.status !== 'duplicate')
      .map((c) => `${c.prefer}: ${c.status}${c.error ? ` (${c.error})` : ''}`).join('\n');
    return `<tr><td>${escapeHtml(r.model)}</td><td>${escapeHtml(r.op)}</td><td class="mono shape">${escapeHtml(r.shape)}</td>` +
      `<td class="num">${escapeHtml(r.count)}</td><td class="num">${fmtMs(r.heuristic_ms)}</td><td class="num">${fmtMs(r.best_ms)}</td>` +
      `<td class="num ${r.best_ms < r.heuristic_ms ? 'faster' : ''}">×${(r.heuristic_ms / r.best_ms).toFixed(2)}</td>` +
      `<td class="num">${r.heuristic_compile_ms === undefined ? DASH : `${fmtNum(r.heuristic_compile_ms, 0)} → ${fmtNum(r.best_compile_ms, 0)}`}</td>` +
      `<td class="mono">${escapeHtml(r.best ? `${r.family}=${r.best}` : 'heuristic')}${r.status === 'cached' ? '<span>from the table</span>' : ''}</td>` +
      `<td class="num" title="${escapeHtml(dropped)}">${r.status === 'cached' ? DASH : `${ran}/${r.candidates.length} ran`}</td></tr>`;
  });
  return `<section><h2>Tuning</h2><table class="kernels"><caption>Each layer's kernel variants timed on this adapter (GPU time, fastest of several runs; every candidate checked against the CPU reference first). A candidate replaces the heuristic only when its score, run ms + build ms / 100 runs, is at least 3% better: a slower choice builds faster. Hover the last column for dropped candidates.</caption>
<thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>
<tbody>
${body.join('\n')}
</tbody></table></section>`;
}

function howToReadHtml(b: BenchJson): string {
  const s = b.settings;
  const swift = isSwiftShader(b)
    ? ' <strong>This adapter is SwiftShader, a CPU implementation of Vulkan:</strong> the numbers measure WebGPU on the CPU, not a GPU, and rank engines by how well their dispatches suit it.'
    : '';
  return `<section class="read"><h2>How to read this</h2>
<p><b>Cold</b> is the first result of a fresh engine: model build, weight upload and pipeline or session creation included.
<b>Min, median and p90</b> are the steady state over ${escapeHtml(s.iters)} timed runs after ${escapeHtml(s.warmup)} warm-up runs; img/s is the batch divided by the median.
Every engine ran in the same page on the same WebGPU adapter with the same weights, and each peer's logits were checked against cnnlab's
(max|Δ| ≤ 10⁻³·max|cnnlab|) <em>before</em> it was timed; cnnlab's own logits are checked against PyTorch by the model tests and scripts/validate-full-size.sh, and its kernels against their CPU references.
The speed-up is the peer's median divided by cnnlab's: above 1, cnnlab is faster. Kernel times come from ${b.roofline.timing === 'timestamp' ? 'GPU timestamp queries' : 'CPU wall time around each dispatch (no timestamp queries: submit and sync overhead included)'},
and % of peak compares them with the roofline measured on this adapter in this run.${swift}</p>
</section>`;
}

// ---- HTML: charts (drawn in the page) ------------------------------------------------------

const ENGINE_COLORS: Record<string, string> = {
  cnnlab: '#d9480f', 'ort-webgpu': '#1971c2', 'tfjs-webgpu': '#2f9e44', 'ort-wasm': '#7048e8',
  'cnnlab-untuned': '#74c0fc',
};

/** At most this many kernels in the kernel chart (the table lists all). */
const KERNEL_CHART_MAX = 40;

// Plain ES5-ish JS without template literals, so it can sit inside this TS template string.
const PAGE_SCRIPT = `
(function () {
  ${chartScriptPrelude('data', 'bench-data')}
  var ORDER = __ORDER__, COLORS = __COLORS__, KMAX = __KMAX__;
  Chart.defaults.animation = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = '#343a40';

  function label(m) { return m.model + ' b=' + m.batch; }
  function fmt(x) { return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(3); }
  function engines() {
    var seen = {};
    data.models.forEach(function (m) { Object.keys(m.engines).forEach(function (e) { seen[e] = true; }); });
    var out = ORDER.filter(function (e) { return seen[e]; });
    Object.keys(seen).sort().forEach(function (e) { if (out.indexOf(e) < 0) out.push(e); });
    return out;
  }
  function add(id, config) {
    var el = document.getElementById(id);
    if (!el) return;
    try { window.__charts.push(new Chart(el, config)); }
    catch (err) { console.error('chart ' + id + ': ' + err); el.parentNode.textContent = 'Could not draw this chart: ' + err; }
  }
  // A log axis when the values span more than 20×, so the fast engines do not vanish.
  function yScale(values, title) {
    var pos = values.filter(function (v) { return v > 0; });
    var log = pos.length > 1 && Math.max.apply(null, pos) / Math.min.apply(null, pos) > 20;
    return { type: log ? 'logarithmic' : 'linear', beginAtZero: !log, title: { display: true, text: title + (log ? ' (log scale)' : '') } };
  }
  // Grouped bars: one group per model/batch, one bar per engine.
  function perEngine(id, field, title) {
    var all = [];
    var sets = engines().map(function (e) {
      var d = data.models.map(function (m) {
        var r = m.engines[e];
        var v = r && r.status === 'ok' && typeof r[field] === 'number' ? r[field] : null;
        if (v !== null) all.push(v);
        return v;
      });
      return { label: e, data: d, backgroundColor: COLORS[e] || '#868e96' };
    }).filter(function (s) { return s.data.some(function (v) { return v !== null; }); });
    add(id, {
      type: 'bar',
      data: { labels: data.models.map(label), datasets: sets },
      options: {
        responsive: true, maintainAspectRatio: false,
        scales: { y: yScale(all, title) },
        plugins: { tooltip: { callbacks: { label: function (c) { return c.dataset.label + ': ' + fmt(c.parsed.y) + ' ms'; } } } },
      },
    });
  }
  perEngine('chart-median', 'median_ms', 'median ms');
  perEngine('chart-cold', 'cold_ms', 'cold start ms');

  // cnnlab's GPU time by kernel family: one 100% stacked bar per model/batch.
  var prof = data.models.filter(function (m) { return m.profile && m.profile.families.length; });
  if (prof.length) {
    var total = {};
    prof.forEach(function (m) { m.profile.families.forEach(function (f) { total[f.family] = (total[f.family] || 0) + f.share; }); });
    var fams = Object.keys(total).sort(function (a, b) { return total[b] - total[a]; });
    add('chart-profile', {
      type: 'bar',
      data: {
        labels: prof.map(function (m) { return label(m) + ' (' + fmt(m.profile.total_ms) + ' ms)'; }),
        datasets: fams.map(function (f, i) {
          return {
            label: f, backgroundColor: PALETTE[i % PALETTE.length],
            data: prof.map(function (m) {
              var r = m.profile.families.filter(function (x) { return x.family === f; })[0];
              return r ? 100 * r.share : 0;
            }),
          };
        }),
      },
      options: {
        indexAxis: 'y', responsive: true, maintainAspectRatio: false,
        scales: { x: { stacked: true, max: 100, title: { display: true, text: '% of cnnlab GPU time' } }, y: { stacked: true } },
        plugins: { tooltip: { callbacks: { label: function (c) {
          var m = prof[c.dataIndex], r = m.profile.families.filter(function (x) { return x.family === c.dataset.label; })[0];
          return c.dataset.label + ': ' + c.parsed.x.toFixed(1) + '%' + (r ? ' · ' + fmt(r.ms) + ' ms · ' + r.calls + ' calls' : '');
        } } } },
      },
    });
  }

  // Kernels: achieved GFLOP/s, slowest first, against the FMA peak drawn as a dashed line.
  var peak = data.roofline.fmaGflops;
  var ks = (data.kernels || []).filter(function (k) { return typeof k.gflops === 'number'; })
    .sort(function (a, b) { return b.ms - a.ms; }).slice(0, KMAX);
  if (ks.length) {
    var peakLine = {
      id: 'peakLine',
      afterDatasetsDraw: function (chart) {
        if (!(peak > 0)) return;
        var x = chart.scales.x.getPixelForValue(peak), a = chart.chartArea, ctx = chart.ctx;
        ctx.save();
        ctx.strokeStyle = '#c92a2a'; ctx.lineWidth = 2; ctx.setLineDash([6, 4]);
        ctx.beginPath(); ctx.moveTo(x, a.top); ctx.lineTo(x, a.bottom); ctx.stroke();
        ctx.fillStyle = '#c92a2a'; ctx.textAlign = 'right'; ctx.font = '12px ' + Chart.defaults.font.family;
        ctx.fillText('FMA peak ' + fmt(peak) + ' GFLOP/s', x - 6, a.top + 12);
        ctx.restore();
      },
    };
    var top = Math.max(peak || 0, Math.max.apply(null, ks.map(function (k) { return k.gflops; }))) * 1.08;
    add('chart-kernels', {
      type: 'bar',
      data: {
        labels: ks.map(function (k) { return k.model + ' · ' + k.node; }),
        datasets: [{
          label: 'GFLOP/s', data: ks.map(function (k) { return k.gflops; }),
          backgroundColor: ks.map(function (k) { return k.bound === 'compute' ? '#1971c2' : '#74c0fc'; }),
        }],
      },
      options: {
        indexAxis: 'y', responsive: true, maintainAspectRatio: false,
        scales: { x: { min: 0, max: top, title: { display: true, text: 'achieved GFLOP/s (dark: compute-bound, light: memory-bound)' } } },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: function (c) {
            var k = ks[c.dataIndex];
            return fmt(k.gflops) + ' GFLOP/s · ' + fmt(k.ms) + ' ms × ' + k.count + ' · ' + (100 * k.fraction_of_peak).toFixed(1) + '% of ' + k.bound + ' peak';
          } } },
        },
      },
      plugins: [peakLine],
    });
  }
  document.body.setAttribute('data-charts', String(window.__charts.length));
})();
`;

function chartsHtml(b: BenchJson, kernelCount: number): { html: string; any: boolean } {
  const has = (f: 'median_ms' | 'cold_ms') => b.models.some((m) => Object.values(m.engines).some((r) => r?.status === 'ok' && typeof r[f] === 'number'));
  const prof = b.models.filter((m) => m.profile?.families.length).length;
  const figs: string[] = [];
  const fig = (id: string, caption: string, height: number) =>
    figs.push(`<figure><figcaption>${caption}</figcaption><div class="chart" style="height:${height}px"><canvas id="${id}"></canvas></div></figure>`);
  if (has('median_ms')) fig('chart-median', 'Median latency per model and batch', 320);
  if (has('cold_ms')) fig('chart-cold', 'Cold start: first result, build included', 320);
  if (prof) fig('chart-profile', "cnnlab's GPU time by kernel family", 90 + 34 * prof);
  if (kernelCount) {
    const n = Math.min(kernelCount, KERNEL_CHART_MAX);
    fig('chart-kernels', `Kernels: achieved GFLOP/s against the FMA peak${kernelCount > n ? ` (the ${n} slowest of ${kernelCount})` : ''}`, 80 + 20 * n);
  }
  return { html: figs.join('\n'), any: figs.length > 0 };
}

const CSS = `
:root { --cnnlab: ${ENGINE_COLORS.cnnlab}; --cnnlab-untuned: ${ENGINE_COLORS['cnnlab-untuned']}; --ort-webgpu: ${ENGINE_COLORS['ort-webgpu']}; --tfjs-webgpu: ${ENGINE_COLORS['tfjs-webgpu']}; --ort-wasm: ${ENGINE_COLORS['ort-wasm']}; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #212529; background: #f8f9fa; margin: 0; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 26px; margin: 0 0 2px; } h2 { font-size: 18px; margin: 28px 0 10px; } header h2 { margin: 0 0 6px; font-size: 15px; }
.sub { color: #495057; margin: 0 0 16px; } code, .mono, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 14px; }
.cards section, figure, .read, table { background: #fff; border: 1px solid #dee2e6; border-radius: 6px; }
.cards section { padding: 12px 16px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; } dt { color: #6c757d; } dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: separate; border-spacing: 0; width: 100%; font-variant-numeric: tabular-nums; overflow: hidden; }
caption { caption-side: top; text-align: left; color: #495057; padding: 0 0 8px; font-size: 13.5px; }
th, td { padding: 5px 10px; text-align: left; border-bottom: 1px solid #f1f3f5; vertical-align: top; }
thead th { background: #f1f3f5; font-weight: 600; font-size: 13px; white-space: nowrap; }
tr.first > * { border-top: 2px solid #dee2e6; }
th.model { background: #fff; } th span, td span { display: block; color: #6c757d; font-weight: normal; font-size: 12.5px; }
td.num { text-align: right; white-space: nowrap; } td.tick { text-align: center; }
td.engine { white-space: nowrap; } td.engine i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.ok { color: #2b8a3e; } .err, .bad { color: #c92a2a; font-weight: 600; } .skip { color: #868e96; }
.faster { color: #2b8a3e; font-weight: 600; } .slower { color: #c92a2a; }
td.msg pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; color: #862e2e; max-height: 8em; overflow: auto; }
td.shape { max-width: 340px; overflow-wrap: anywhere; }
.bar { display: inline-block; width: 60px; height: 8px; background: #e9ecef; margin-right: 6px; border-radius: 2px; vertical-align: middle; }
.bar b { display: block; height: 100%; background: #1971c2; border-radius: 2px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 14px; }
figure { margin: 0; padding: 12px 14px; } figure:has(#chart-kernels), figure:has(#chart-profile) { grid-column: 1 / -1; }
figcaption { font-weight: 600; margin-bottom: 6px; } .chart { position: relative; }
.read { padding: 4px 18px; } .read p { max-width: 900px; }
ul.notes li { margin: 4px 0; white-space: pre-wrap; }
`;

/** The report page: static tables and text, with charts drawn by Chart.js (inlined from `o.chartJs`). */
export function renderReport(b: BenchJson, o: { chartJs: string }): string {
  const kernels = [...(b.kernels ?? [])].sort((x, y) => y.ms - x.ms);
  const chartKernels = kernels.filter((k) => typeof k.gflops === 'number').length;
  const charts = chartsHtml(b, chartKernels);
  const sections = [
    headerHtml(b),
    b.models.length ? modelTableHtml(b) : '',
    targetChecks(b).length ? targetsHtml(targetChecks(b)) : '',
    charts.any ? `<section><h2>Charts</h2><div class="charts">\n${charts.html}\n</div></section>` : '',
    kernels.length ? `<section><h2>Kernels</h2>${kernelTableHtml(b, kernels)}</section>` : '',
    b.tune?.length ? tuneTableHtml(b.tune) : '',
    b.notes.length ? `<section><h2>Notes</h2><ul class="notes">${b.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul></section>` : '',
    howToReadHtml(b),
  ].filter(Boolean);
  const script = PAGE_SCRIPT
    .replace('__ORDER__', JSON.stringify(ENGINES))
    .replace('__COLORS__', JSON.stringify(ENGINE_COLORS))
    .replace('__KMAX__', String(KERNEL_CHART_MAX));
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cnnlab benchmark · ${escapeHtml(b.adapter.summary)} · ${escapeHtml(b.created)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${sections.join('\n')}
</main>
<script type="application/json" id="bench-data">${inlineJson(b)}</script>
${charts.any ? `<script>${inlineJs(o.chartJs)}</script>\n<script>${script}</script>` : ''}
</body>
</html>
`;
}
