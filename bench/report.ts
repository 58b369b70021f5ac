// bench.json → the benchmark report: a terminal table, the performance targets, and the data
// the self-contained HTML page (report/bench.ts) renders.
//
// The page needs no network: the Chart.js UMD build is inlined (the CLI reads it from
// node_modules/chart.js/dist/chart.umd.js; the package's "exports" do not list that path, so
// resolve the package root and join it), and so are the BenchJson, in a
// <script type="application/json">, and the report chart module, which draws from it.

export { escapeHtml, inlineJson } from '../report/html.js';
export type { TargetCheck } from '../report/bench.js';

import { type TargetCheck, type TrainView, benchHtml } from '../report/bench.js';
import { chartsBundle } from '../report/charts-bundle.js';
import { DASH, fmtBytes, fmtMs, fmtNum, tick } from '../report/format.js';
import {
  ENGINES,
  type BenchJson,
  type EngineName,
  type EngineResult,
  type ModelBench,
  type TrainEngineName,
  type TrainSection,
} from './schema.js';
import { TRAIN_HEAD, trainCells } from './train.js';

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
  const c = m.engines.cnnlab,
    p = m.engines[peer];
  if (c?.status !== 'ok' || p?.status !== 'ok' || !c.median_ms || p.median_ms === undefined) return undefined;
  return p.median_ms / c.median_ms;
}

const isSwiftShader = (b: BenchJson) =>
  /swiftshader/i.test([b.adapter.vendor, b.adapter.architecture, b.adapter.description, b.adapter.summary].join(' '));

// ---- terminal table ------------------------------------------------------------------------

function engineCell(r: EngineResult | undefined): string {
  if (!r) return DASH;
  if (r.status !== 'ok') return r.status;
  const t = r.median_ms === undefined ? DASH : `${fmtMs(r.median_ms)} ms`;
  return `${t} ${tick(r.logits_match)}`;
}

/** load / export / cold ms per engine and model ('!' marks a cold start that was not cold). */
function formatClocks(b: BenchJson, engines: EngineName[]): string[] {
  const head = ['model', 'batch', ...engines];
  const cell = (r: EngineResult | undefined) => {
    if (r?.load_ms === undefined) return r ? r.status : DASH;
    const ms = (x: number | undefined) => (x === undefined ? DASH : fmtMs(x));
    return `${ms(r.load_ms)} / ${ms(r.export_ms)} / ${ms(r.cold_ms)}${r.cold_invalid ? '!' : ''}`;
  };
  const rows = b.models.map((m) => [m.model, String(m.batch), ...engines.map((e) => cell(m.engines[e]))]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [
    line(head),
    ...rows.map(line),
    '',
    'load / export / cold ms (bench/harness.ts); ! : not a cold start (page or device had compiled before)',
  ];
}

/** One row per model+batch: median per engine with its logits check, then cnnlab's speed-up over each peer. */
export function formatBenchTable(b: BenchJson): string {
  const engines = enginesOf(b);
  const peers = engines.filter((e) => e !== 'cnnlab');
  const head = ['model', 'batch', ...engines, ...peers.map((p) => `vs ${p}`)];
  const rows = b.models.map((m) => [
    m.model,
    String(m.batch),
    ...engines.map((e) => engineCell(m.engines[e])),
    ...peers.map((p) => {
      const s = speedupOf(m, p);
      return s === undefined ? DASH : `×${s.toFixed(s >= 10 ? 0 : 1)}`;
    }),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const r = b.roofline;
  const out = [
    `adapter: ${b.adapter.summary}  ·  roofline: FMA ${fmtNum(r.fmaGflops)} GFLOP/s, copy ${fmtNum(r.copyGBps)} GB/s` +
      `${r.loadGBps ? `, divergent vec4 loads ${fmtNum(r.loadGBps)} GB/s (one ≈ ${fmtNum(loadCostInFmas(r), 1)} vec4 FMAs)` : ''} (${r.timing})`,
    line(head),
    ...rows.map(line),
  ];
  const problems = b.models.flatMap((m) =>
    engines.flatMap((e) => {
      const x = m.engines[e];
      if (!x || x.status === 'ok' || !x.error) return [];
      const msg = x.error.split('\n')[0];
      return [`  ${e} on ${m.model} b=${m.batch}: ${x.status}: ${msg.length > 140 ? `${msg.slice(0, 137)}...` : msg}`];
    }),
  );
  if (problems.length) out.push('', ...problems);
  out.push(
    '',
    'median ms (✓/✗: logits match cnnlab); ×N: cnnlab is N times faster than that peer (peer median / cnnlab median)',
  );
  out.push('', ...formatClocks(b, engines));
  return out.join('\n');
}

// ---- performance targets ---------------------------------------------------------------------

const WEBGPU_PEERS: EngineName[] = ['ort-webgpu', 'tfjs-webgpu', 'litert-webgpu'];

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
      out.push({
        what: `${label}: steady state vs the faster WebGPU peer (${fe})`,
        value: `×${x.toFixed(2)}`,
        target: '≥ ×5',
        met: x >= 5,
      });
      // Only real cold starts compare (bench/harness.ts flags one taken on a warmed page or device).
      const cold = peers.filter(([, r]) => r!.cold_ms !== undefined && !r!.cold_invalid);
      if (cold.length && ours.cold_ms !== undefined && !ours.cold_invalid) {
        const [ce, cr] = cold.reduce((a, p) => (p[1]!.cold_ms! < a[1]!.cold_ms! ? p : a));
        const c = cr!.cold_ms! / ours.cold_ms;
        out.push({
          what: `${label}: cold start vs the faster WebGPU peer (${ce})`,
          value: `×${c.toFixed(2)}`,
          target: '≥ ×3',
          met: c >= 3,
        });
      }
    }
    const wasm = m.engines['ort-wasm'];
    if (m.model === 'resnet50' && wasm?.status === 'ok') {
      const r = ours.median_ms! / wasm.median_ms!;
      const threads = wasm.settings?.threads;
      out.push({
        what: `${label}: cnnlab time ÷ ORT-WASM (CPU${threads === undefined ? '' : `, ${threads} threads`}) time`,
        value: `${r.toFixed(2)}`,
        target: '≤ 10',
        met: r <= 10,
      });
    }
    if (
      m.model === 'resnet50' &&
      ours.peak_memory_bytes !== undefined &&
      ours.weight_bytes !== undefined &&
      ours.largest_activation_bytes !== undefined
    ) {
      const limit = ours.weight_bytes + 3 * ours.largest_activation_bytes;
      out.push({
        what: `${label}: peak GPU memory`,
        value: fmtBytes(ours.peak_memory_bytes),
        target: `≤ ${fmtBytes(limit)} (weights + 3 × ${fmtBytes(ours.largest_activation_bytes)})`,
        met: ours.peak_memory_bytes <= limit,
      });
    }
  }
  return out;
}

export function formatTargets(checks: TargetCheck[]): string {
  const w = Math.max(...checks.map((c) => c.what.length), 4);
  return checks
    .map((c) => `${c.met ? 'met   ' : 'MISSED'}  ${c.what.padEnd(w)}  ${c.value.padStart(8)}  (${c.target})`)
    .join('\n');
}

/** How many vec4 FMAs (8 flops) take as long as one lane-divergent vec4 load (16 bytes). */
export function loadCostInFmas(r: BenchJson['roofline']): number {
  return r.loadGBps ? r.fmaGflops / 8 / (r.loadGBps / 16) : NaN;
}

// ---- the page --------------------------------------------------------------------------------

/**
 * The report page (report/bench.ts): static tables and text, with charts drawn by Chart.js
 * (inlined from `o.chartJs`) and the report chart module (`o.charts`; read from its bundle in
 * dist/ when not given).
 */
export function renderReport(b: BenchJson, o: { chartJs: string; charts?: string }): string {
  const engines = enginesOf(b);
  return benchHtml(
    {
      bench: b,
      engines,
      speedups: b.models.map((m) =>
        Object.fromEntries(
          engines.flatMap((e) => {
            const s = speedupOf(m, e);
            return s === undefined ? [] : [[e, s]];
          }),
        ),
      ),
      kernels: [...(b.kernels ?? [])].sort((x, y) => y.ms - x.ms),
      targets: targetChecks(b),
      loadCostInFmas: loadCostInFmas(b.roofline),
      swiftShader: isSwiftShader(b),
      train: b.train ? trainView(b.train) : undefined,
    },
    { chartJs: o.chartJs, charts: o.charts ?? chartsBundle() },
  );
}

// ---- the training bench's table -----------------------------------------------------------------

/** The training bench as the report's rows (report/bench.ts renders them): one per model, batch and engine. */
export function trainView(t: TrainSection): TrainView {
  const rows = t.models.flatMap((m) => {
    const engines = Object.keys(m.engines) as TrainEngineName[];
    return engines.map((e, i) => {
      const r = m.engines[e]!;
      const speed =
        e === 'cnnlab' || m.speedup === undefined
          ? DASH
          : `×${m.speedup.toFixed(2)}${m.cold_speedup === undefined ? '' : ` (cold ×${m.cold_speedup.toFixed(2)})`}`;
      return {
        group: i === 0 ? { label: m.model, sub: `batch ${m.batch} · ${m.size}px`, span: engines.length } : undefined,
        engine: e,
        ok: r.status === 'ok',
        cells: [...trainCells(r), speed],
        title: [r.memory_what, r.error].filter(Boolean).join(' · '),
      };
    });
  });
  const s = t.settings;
  const memory = t.models
    .flatMap((m) => Object.entries(m.engines))
    .filter(([, r]) => r?.memory_what)
    .reduce((a, [e, r]) => a.set(e, r!.memory_what!), new Map<string, string>());
  return {
    head: [TRAIN_HEAD[0], ...TRAIN_HEAD.slice(2)],
    rows,
    notes: [
      `Both engines: ${s.optimizer}, lr ${s.lr}, momentum ${s.momentum}; ${s.loss}; labels ${s.labels}; BatchNorm ${s.batchnorm}; trained: ${s.trainable}.`,
      ...[...memory].map(([e, w]) => `peak memory, ${e}: ${w}`),
    ],
  };
}
