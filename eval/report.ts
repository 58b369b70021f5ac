// summary.json → a self-contained HTML report and a terminal table, for a robustness run (and
// the transfer results of the same backbone, when there are any).
//
// Built as bench/report.ts is: no network (the caller passes the Chart.js UMD source, which is
// inlined), the Summary inlined verbatim as <script type="application/json" id="summary-data">,
// every table and number rendered here as static HTML (each string from the JSON through
// escapeHtml), and a small page script that draws the charts into window.__charts. The chart
// series are derived here, in typed code, with the same key parsing and ordering the tables use,
// and inlined beside the summary as id="chart-data"; the page script only styles and draws.
//
// summary.json comes through JSON, so every number may be null (a NaN written out) and every
// map may be empty: each section is rendered only when it has data, and missing numbers read '—'.

import { chartScriptPrelude, escapeHtml, inlineJs, inlineJson } from '../web/html.js';
import { IMAGENET_C_CORRUPTIONS } from './metrics.js';
import type { ConditionMetrics, Summary } from './summary-schema.js';

/** Transfer results of the same backbone (eval/transfer writes them; `s.transfer` may hold one). */
export interface TransferSummary {
  /** Few-shot linear (ridge) accuracy per shots per class ('1', '5', '10', '25'): mean ± std over seeds. */
  fewshot?: Record<string, { mean: number; std: number; per_seed: number[] }>;
  /** Linear probe on the full training split. */
  probe?: { accuracy: number; l2: number };
  vtab1k?: { accuracy: number; l2?: number };
  /** Which features were used (e.g. 'pre-logits'). */
  features?: string;
}

const DASH = '—';

// ---- numbers and keys ----------------------------------------------------------------------

type Num = number | null | undefined;
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** A fraction as a percentage ('76.1%'); '—' when missing. */
function pct(x: Num, digits = 1): string {
  return isNum(x) ? `${(100 * x).toFixed(digits)}%` : DASH;
}

function fix(x: Num, digits: number): string {
  return isNum(x) ? x.toFixed(digits) : DASH;
}

/** For chart data: a fraction → percent, null when missing (Chart.js leaves a gap). */
const toPct = (x: Num): number | null => (isNum(x) ? 100 * x : null);

/** Keys that are numbers ('224', '0.37', '10') in numeric order, then any others as strings. */
function numericKeys(keys: Iterable<string>): string[] {
  const all = [...keys];
  const num = all.filter((k) => Number.isFinite(Number(k))).sort((a, b) => Number(a) - Number(b));
  return [...num, ...all.filter((k) => !Number.isFinite(Number(k))).sort()];
}

/** The 15 mCE corruptions in ImageNet-C order, then the extras alphabetically. */
function corruptionOrder(names: Iterable<string>): string[] {
  const set = new Set(names);
  const known: string[] = IMAGENET_C_CORRUPTIONS.filter((c) => set.has(c));
  return [...known, ...[...set].filter((c) => !known.includes(c)).sort()];
}
const isMceCorruption = (c: string) => (IMAGENET_C_CORRUPTIONS as readonly string[]).includes(c);

/** Severities across all corruptions: 1..5 always, plus any others present. */
function severitiesOf(s: Summary): string[] {
  const set = new Set(['1', '2', '3', '4', '5']);
  for (const bySev of Object.values(s.corruptions)) for (const k of Object.keys(bySev)) set.add(k);
  return numericKeys(set);
}

/** Rotation keys are 'area@angle' ('0.50@21'); location keys 'cx,cy' ('0.25,0.50'). */
function parsePair(key: string, sep: string): [number, number] | undefined {
  const parts = key.split(sep);
  if (parts.length !== 2) return undefined;
  const [a, b] = parts.map((p) => Number(p.trim()));
  return Number.isFinite(a) && Number.isFinite(b) ? [a, b] : undefined;
}

function incompleteNote(m: { complete: boolean; missing: string[] } | null): string {
  if (!m || m.complete) return '';
  return m.missing.length ? ` (incomplete: missing ${m.missing.join(', ')})` : ' (incomplete)';
}

/** The transfer results to show: the caller's, else a recognisable `s.transfer`, keeping only well-formed fields. */
function transferOf(s: Summary, given: TransferSummary | undefined): { t?: TransferSummary; raw?: unknown } {
  const v = given ?? s.transfer;
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object') return { raw: v };
  const o = v as Record<string, unknown>;
  const t: TransferSummary = {};
  if (o.fewshot && typeof o.fewshot === 'object') {
    const fs: NonNullable<TransferSummary['fewshot']> = {};
    for (const [k, r] of Object.entries(o.fewshot as Record<string, unknown>)) {
      const e = r as { mean?: unknown; std?: unknown; per_seed?: unknown } | null;
      if (e && isNum(e.mean)) {
        fs[k] = { mean: e.mean, std: isNum(e.std) ? e.std : NaN, per_seed: Array.isArray(e.per_seed) ? e.per_seed.filter(isNum) : [] };
      }
    }
    if (Object.keys(fs).length) t.fewshot = fs;
  }
  const p = o.probe as { accuracy?: unknown; l2?: unknown } | undefined;
  if (p && isNum(p.accuracy)) t.probe = { accuracy: p.accuracy, l2: isNum(p.l2) ? p.l2 : NaN };
  const v1 = o.vtab1k as { accuracy?: unknown; l2?: unknown } | undefined;
  if (v1 && isNum(v1.accuracy)) t.vtab1k = { accuracy: v1.accuracy, ...(isNum(v1.l2) ? { l2: v1.l2 } : {}) };
  if (typeof o.features === 'string') t.features = o.features;
  return t.fewshot || t.probe || t.vtab1k ? { t } : { raw: v };
}

// ---- terminal table ------------------------------------------------------------------------

/** Clean metrics, one row per corruption (top-1 per severity, CE, relative CE), mCE, sweeps, resolutions, unreadable. */
export function formatRobustnessTable(s: Summary): string {
  const out = [`${s.model} · weights ${s.weights} · data ${s.data} · ${s.created}${s.shards ? ` · shards ${s.shards.merged.join(',')} of ${s.shards.of}` : ''}`];
  const c = s.clean;
  out.push(c
    ? `clean (n=${c.n}): top-1 ${pct(c.top1, 2)}  top-5 ${pct(c.top5, 2)}  ECE (100 adaptive bins) ${fix(c.ece?.adaptive_100, 4)}  ` +
      `ECE (15 equal-width bins) ${fix(c.ece?.equal_width_15, 4)}  NLL ${fix(c.nll, 3)}  Brier ${fix(c.brier, 4)}`
    : 'clean: not run');
  const names = corruptionOrder(Object.keys(s.corruptions));
  if (names.length) {
    const sevs = severitiesOf(s);
    const head = ['corruption', ...sevs.map((k) => `s${k}`), 'CE', 'rel CE'];
    const rows = names.map((n) => [
      isMceCorruption(n) ? n : `${n}*`,
      ...sevs.map((k) => pct(s.corruptions[n][k]?.top1)),
      pct(s.mce?.per_corruption[n]),
      pct(s.relative_mce?.per_corruption[n]),
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (r: string[]) => r.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
    out.push(line(head), ...rows.map(line));
    if (names.some((n) => !isMceCorruption(n))) out.push('* extra corruption, not part of mCE');
  }
  if (s.mce || s.relative_mce) {
    out.push(`mCE ${pct(s.mce?.value)}${incompleteNote(s.mce)} · relative mCE ${pct(s.relative_mce?.value)}${incompleteNote(s.relative_mce)}`);
  }
  const sweeps = (['size', 'location', 'rotation'] as const).filter((k) => s.sweeps[k]);
  if (sweeps.length) out.push(`SI-Score sweep means: ${sweeps.map((k) => `${k} ${pct(s.sweeps[k]!.mean)}`).join(' · ')}`);
  const res = numericKeys(Object.keys(s.resolutions));
  if (res.length) out.push(`top-1 by test resolution: ${res.map((r) => `${r} ${pct(s.resolutions[r].top1)}`).join(' · ')}`);
  const { t } = transferOf(s, undefined);
  if (t) {
    const parts = [
      ...numericKeys(Object.keys(t.fewshot ?? {})).map((k) => `${k}-shot ${pct(t.fewshot![k].mean)}`),
      ...(t.probe ? [`linear probe ${pct(t.probe.accuracy)}`] : []),
      ...(t.vtab1k ? [`VTAB-1k ${pct(t.vtab1k.accuracy)}`] : []),
    ];
    out.push(`transfer: ${parts.join(' · ')}`);
  }
  out.push(`unreadable images: ${s.unreadable.length}`);
  return out.join('\n');
}

// ---- chart series (computed here, drawn by the page) ---------------------------------------

interface XY { x: number; y: number | null }

interface ChartData {
  severity?: { labels: string[]; series: { label: string; data: (number | null)[] }[] };
  ce?: { labels: string[]; ce: (number | null)[]; rel?: (number | null)[]; mce: number | null };
  reliability?: { labels: string[]; acc: (number | null)[]; conf: (number | null)[]; count: number[]; diag: number[] };
  size?: XY[];
  rotation?: { label: string; data: XY[] }[];
  location?: { cells: { x: number; y: number; v: number; c: string }[]; xs: number[]; ys: number[]; dx: number; dy: number; xr: [number, number]; yr: [number, number] };
  resolution?: { top1: XY[]; top5: XY[]; native: number };
  fewshot?: { mean: XY[]; seeds: XY[]; log: boolean };
}

/** Viridis stops: the heat map's colours in the page and the gradient of its static legend. */
const VIRIDIS = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];

function viridis(t: number): string {
  const u = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(u));
  const rgb = (h: string) => [1, 3, 5].map((o) => parseInt(h.slice(o, o + 2), 16));
  const a = rgb(VIRIDIS[i]), b = rgb(VIRIDIS[i + 1]);
  return `rgb(${a.map((v, k) => Math.round(v + (b[k] - v) * (u - i))).join(',')})`;
}

/** Smallest gap between sorted distinct values (the grid step), 1 for a single value. */
function step(vals: number[]): number {
  let d = Infinity;
  for (let i = 1; i < vals.length; i++) d = Math.min(d, vals[i] - vals[i - 1]);
  return Number.isFinite(d) && d > 0 ? d : 1;
}

function chartData(s: Summary, t: TransferSummary | undefined): ChartData {
  const d: ChartData = {};
  const names = corruptionOrder(Object.keys(s.corruptions));
  if (names.length) {
    const sevs = severitiesOf(s).filter((k) => names.some((n) => s.corruptions[n][k]));
    d.severity = {
      labels: ['clean', ...sevs],
      series: names.map((n) => ({ label: n, data: [toPct(s.clean?.top1), ...sevs.map((k) => toPct(s.corruptions[n][k]?.top1))] })),
    };
  }
  const ceNames = corruptionOrder(Object.keys(s.mce?.per_corruption ?? {}));
  if (s.mce && ceNames.length) {
    const rel = s.relative_mce;
    d.ce = {
      labels: ceNames,
      ce: ceNames.map((n) => toPct(s.mce!.per_corruption[n])),
      ...(rel && Object.keys(rel.per_corruption).length ? { rel: ceNames.map((n) => toPct(rel.per_corruption[n])) } : {}),
      mce: toPct(s.mce.value),
    };
  }
  const bins = s.clean?.reliability ?? [];
  if (bins.some((b) => b.count > 0)) {
    const m = bins.length;
    d.reliability = {
      labels: bins.map((_, i) => `${(i / m).toFixed(2)}–${((i + 1) / m).toFixed(2)}`),
      acc: bins.map((b) => (b.count > 0 ? toPct(b.acc) : null)),
      conf: bins.map((b) => (b.count > 0 ? toPct(b.conf) : null)),
      count: bins.map((b) => b.count),
      diag: bins.map((_, i) => (100 * (i + 0.5)) / m),
    };
  }
  const size = s.sweeps.size?.accuracy;
  if (size && Object.keys(size).length) {
    d.size = numericKeys(Object.keys(size)).filter((k) => isNum(Number(k))).map((k) => ({ x: 100 * Number(k), y: toPct(size[k]) }));
  }
  const rot = s.sweeps.rotation?.accuracy;
  if (rot && Object.keys(rot).length) {
    const byArea = new Map<number, XY[]>();
    for (const [k, v] of Object.entries(rot)) {
      const p = parsePair(k, '@');
      if (!p) continue;
      if (!byArea.has(p[0])) byArea.set(p[0], []);
      byArea.get(p[0])!.push({ x: p[1], y: toPct(v) });
    }
    d.rotation = [...byArea.keys()].sort((a, b) => a - b).map((a) => ({
      label: `area ${(100 * a).toFixed(0)}%`, data: byArea.get(a)!.sort((p, q) => p.x - q.x),
    }));
  }
  const loc = s.sweeps.location?.accuracy;
  if (loc && Object.keys(loc).length) {
    const cells = Object.entries(loc).flatMap(([k, v]) => {
      const p = parsePair(k, ',');
      return p && isNum(v) ? [{ x: p[0], y: p[1], v: 100 * v, c: '' }] : [];
    });
    if (cells.length) {
      const xs = [...new Set(cells.map((c) => c.x))].sort((a, b) => a - b);
      const ys = [...new Set(cells.map((c) => c.y))].sort((a, b) => a - b);
      const dx = step(xs), dy = step(ys);
      const { lo, hi } = locationRange(cells.map((c) => c.v / 100));
      for (const c of cells) c.c = viridis(hi > lo ? (c.v / 100 - lo) / (hi - lo) : 0.5);
      d.location = { cells, xs, ys, dx, dy, xr: [xs[0] - dx / 2, xs[xs.length - 1] + dx / 2], yr: [ys[0] - dy / 2, ys[ys.length - 1] + dy / 2] };
    }
  }
  const res = numericKeys(Object.keys(s.resolutions)).filter((k) => isNum(Number(k)));
  if (res.length >= 2) {
    d.resolution = {
      top1: res.map((k) => ({ x: Number(k), y: toPct(s.resolutions[k].top1) })),
      top5: res.map((k) => ({ x: Number(k), y: toPct(s.resolutions[k].top5) })),
      native: s.preprocessing?.size,
    };
  }
  const fs = t?.fewshot;
  const shots = numericKeys(Object.keys(fs ?? {})).filter((k) => Number(k) > 0);
  if (fs && shots.length) {
    d.fewshot = {
      mean: shots.map((k) => ({ x: Number(k), y: toPct(fs[k].mean) })),
      seeds: shots.flatMap((k) => fs[k].per_seed.map((a) => ({ x: Number(k), y: toPct(a) }))),
      log: Number(shots[shots.length - 1]) / Number(shots[0]) > 4,
    };
  }
  return d;
}

/** The heat map's colour range: the data's min and max accuracy (fractions). */
function locationRange(v: number[]): { lo: number; hi: number } {
  return { lo: Math.min(...v), hi: Math.max(...v) };
}

// ---- HTML: static sections -----------------------------------------------------------------

const dl = (rows: [string, string][]) => `<dl>${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;

/** Which shards were merged, as HTML; shards that never arrived in red. */
function shardsHtml(s: Summary): string {
  if (!s.shards) return 'single run';
  const { merged, of } = s.shards;
  const missing = Array.from({ length: of }, (_, i) => i).filter((i) => !merged.includes(i));
  return `${escapeHtml(merged.join(', '))} of ${escapeHtml(of)} (0-based)${missing.length ? `; <b class="bad">missing ${missing.join(', ')}</b>` : ''}`;
}

function headerHtml(s: Summary): string {
  const p = s.preprocessing;
  const list = (v: unknown) => (Array.isArray(v) ? v.map((x) => (isNum(x) ? String(x) : DASH)).join(', ') : DASH);
  return `<header>
<h1>cnnlab robustness · ${escapeHtml(s.model)}</h1>
<p class="sub">${escapeHtml(s.created)}</p>
<div class="cards">
<section><h2>Run</h2>${dl([
    ['model', escapeHtml(s.model)],
    ['weights', `<code>${escapeHtml(s.weights)}</code>`],
    ['data', `<code>${escapeHtml(s.data)}</code>`],
    ['created', escapeHtml(s.created)],
    ['shards merged', shardsHtml(s)],
  ])}</section>
<section><h2>Preprocessing</h2>${p ? dl([
    ['size', `${escapeHtml(p.size)}×${escapeHtml(p.size)}`],
    ['resize', p.resizeMode === 'squash' ? 'squash both sides to the size, no crop'
      : `short side to ⌊size / cropPct⌋${isNum(p.size) && isNum(p.cropPct) && p.cropPct > 0 ? ` = ${Math.floor(p.size / p.cropPct)}` : ''}, then centre crop`],
    ['resizeMode', escapeHtml(p.resizeMode)],
    ['cropPct', escapeHtml(p.cropPct)],
    ['interpolation', escapeHtml(p.interpolation)],
    ['mean', escapeHtml(list(p.mean))],
    ['std', escapeHtml(list(p.std))],
  ]) : `<p>${DASH}</p>`}</section>
</div>
</header>`;
}

const tile = (label: string, value: string, note = '', warn = false) =>
  `<div class="tile"><span>${escapeHtml(label)}</span><b>${escapeHtml(value)}</b>${note ? `<small${warn ? ' class="bad"' : ''}>${escapeHtml(note)}</small>` : ''}</div>`;

function headlineHtml(s: Summary, t: TransferSummary | undefined): string {
  const groups: string[] = [];
  const group = (title: string, tiles: string[]) => groups.push(`<div class="group"><h3>${title}</h3><div class="tiles">${tiles.join('')}</div></div>`);
  const c = s.clean;
  if (c) {
    group(`Clean · ${escapeHtml(c.n)} images`, [
      tile('top-1', pct(c.top1, 2)), tile('top-5', pct(c.top5, 2)),
      tile('ECE (100 adaptive bins)', fix(c.ece?.adaptive_100, 4)), tile('ECE (15 equal-width bins)', fix(c.ece?.equal_width_15, 4)),
      tile('NLL', fix(c.nll, 3)), tile('Brier', fix(c.brier, 4)),
    ]);
  }
  if (s.mce || s.relative_mce) {
    group('ImageNet-C', [
      ...(s.mce ? [tile('mCE', pct(s.mce.value), incompleteNote(s.mce).trim(), true)] : []),
      ...(s.relative_mce ? [tile('relative mCE', pct(s.relative_mce.value), incompleteNote(s.relative_mce).trim(), true)] : []),
    ]);
  }
  const sweeps = (['size', 'location', 'rotation'] as const).filter((k) => s.sweeps[k]);
  if (sweeps.length) {
    group('SI-Score sweep means', sweeps.map((k) => tile(k, pct(s.sweeps[k]!.mean), `${Object.keys(s.sweeps[k]!.accuracy).length} factor values`)));
  }
  if (t) {
    group('Transfer (same backbone)', [
      ...numericKeys(Object.keys(t.fewshot ?? {})).map((k) => tile(`${k}-shot linear`, pct(t.fewshot![k].mean), isNum(t.fewshot![k].std) ? `± ${pct(t.fewshot![k].std)}` : '')),
      ...(t.probe ? [tile('linear probe', pct(t.probe.accuracy))] : []),
      ...(t.vtab1k ? [tile('VTAB-1k', pct(t.vtab1k.accuracy))] : []),
    ]);
  }
  group('Data', [tile('unreadable images', String(s.unreadable.length))]);
  return `<section class="headline"><h2>Headline numbers</h2>${groups.join('\n')}</section>`;
}

function corruptionTableHtml(s: Summary): string {
  const names = corruptionOrder(Object.keys(s.corruptions));
  const sevs = severitiesOf(s);
  const head = ['corruption', ...sevs.map((k) => `severity ${k}`), 'mean', 'CE', 'relative CE'];
  const cell = (m: ConditionMetrics | undefined) =>
    `<td class="num"${m ? ` title="n = ${escapeHtml(m.n)} · top-5 ${pct(m.top5)}"` : ''}>${pct(m?.top1)}</td>`;
  const rows = names.map((n) => {
    const ms = sevs.map((k) => s.corruptions[n][k]);
    const present = ms.filter((m): m is ConditionMetrics => !!m && isNum(m.top1));
    const mean = present.length ? present.reduce((a, m) => a + m.top1, 0) / present.length : undefined;
    return `<tr><td>${escapeHtml(n)}${isMceCorruption(n) ? '' : '<span>extra: not in mCE</span>'}</td>${ms.map(cell).join('')}` +
      `<td class="num">${pct(mean)}</td><td class="num">${pct(s.mce?.per_corruption[n])}</td><td class="num">${pct(s.relative_mce?.per_corruption[n])}</td></tr>`;
  });
  const foot = s.mce || s.relative_mce
    ? `<tfoot><tr><th colspan="${sevs.length + 2}">mean over the 15 ImageNet-C corruptions</th><td class="num">${pct(s.mce?.value)}</td><td class="num">${pct(s.relative_mce?.value)}</td></tr></tfoot>`
    : '';
  const missing = s.mce && !s.mce.complete ? ` mCE is incomplete: missing ${escapeHtml(s.mce.missing.join(', ') || 'some severities')}.` : '';
  return `<section><h2>ImageNet-C</h2>
<table class="corruptions"><caption>Top-1 accuracy per corruption and severity (clean top-1 ${pct(s.clean?.top1)}); CE and relative CE are AlexNet-normalised errors, lower is better.${missing}</caption>
<thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody>${foot}</table></section>`;
}

function resolutionTableHtml(s: Summary): string {
  const native = s.preprocessing?.size;
  const rows = numericKeys(Object.keys(s.resolutions)).map((k) => {
    const m = s.resolutions[k];
    const d = s.clean && isNum(s.clean.top1) && isNum(m.top1) ? 100 * (m.top1 - s.clean.top1) : undefined;
    return `<tr${Number(k) === native ? ' class="native"' : ''}><td>${escapeHtml(k)}×${escapeHtml(k)}${Number(k) === native ? '<span>the model\'s own size</span>' : ''}</td>` +
      `<td class="num">${escapeHtml(m.n)}</td><td class="num">${pct(m.top1)}</td><td class="num">${pct(m.top5)}</td>` +
      `<td class="num">${d === undefined ? DASH : `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(1)}`}</td></tr>`;
  });
  return `<section><h2>Test resolution</h2>
<table class="resolutions"><caption>The same preprocessing at other input sizes (the resize target scales with the size).</caption>
<thead><tr><th>input</th><th>images</th><th>top-1</th><th>top-5</th><th>Δ top-1 vs clean (points)</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

function unreadableHtml(s: Summary): string {
  return `<section><h2>Unreadable images</h2>
<table class="unreadable"><caption>${s.unreadable.length} image${s.unreadable.length === 1 ? '' : 's'} could not be decoded and were left out of every metric.</caption>
<thead><tr><th>id</th><th>error</th></tr></thead>
<tbody>
${s.unreadable.map((u) => `<tr><td class="mono">${escapeHtml(u.id)}</td><td class="msg"><pre>${escapeHtml(u.error)}</pre></td></tr>`).join('\n')}
</tbody></table></section>`;
}

function transferHtml(tr: { t?: TransferSummary; raw?: unknown }, fig: string): string {
  const t = tr.t;
  if (!t) {
    return `<section><h2>Transfer</h2><p>Transfer results in a form this report does not know:</p><pre class="raw">${escapeHtml(JSON.stringify(tr.raw, null, 2))}</pre></section>`;
  }
  const shots = numericKeys(Object.keys(t.fewshot ?? {}));
  const table = shots.length
    ? `<table class="fewshot"><caption>Few-shot linear transfer on frozen features: accuracy per shots per class, mean ± std over seeds.</caption>
<thead><tr><th>shots per class</th><th>mean</th><th>std</th><th>per seed</th></tr></thead>
<tbody>
${shots.map((k) => { const r = t.fewshot![k]; return `<tr><td>${escapeHtml(k)}</td><td class="num">${pct(r.mean)}</td><td class="num">${pct(r.std)}</td><td class="num">${r.per_seed.map((a) => pct(a)).join(', ') || DASH}</td></tr>`; }).join('\n')}
</tbody></table>`
    : '';
  const rows: [string, string][] = [];
  if (t.features) rows.push(['features', escapeHtml(t.features)]);
  if (t.probe) rows.push(['linear probe', `${pct(t.probe.accuracy)} (L2 ${escapeHtml(isNum(t.probe.l2) ? t.probe.l2 : DASH)})`]);
  if (t.vtab1k) rows.push(['VTAB-1k', `${pct(t.vtab1k.accuracy)}${t.vtab1k.l2 === undefined ? '' : ` (L2 ${escapeHtml(t.vtab1k.l2)})`}`]);
  return `<section><h2>Transfer</h2>
<div class="transfer">${rows.length ? `<div class="cards"><section>${dl(rows)}</section></div>` : ''}${fig ? `<div class="charts">${fig}</div>` : ''}${table}</div>
</section>`;
}

/** What the numbers mean: one paragraph per kind of result the summary holds. */
function howToReadHtml(s: Summary, transfer: boolean): string {
  const ps: string[] = [];
  if (Object.keys(s.corruptions).length || s.mce || s.relative_mce) {
    ps.push(`<p><b>mCE</b> (ImageNet-C, Hendrycks &amp; Dietterich 2019): for each of the 15 corruptions, the corruption error CE is the model's top-1 error summed over severities 1–5
divided by AlexNet's on the same corruption; mCE is the mean CE. It is AlexNet-normalised: 100% means as fragile as AlexNet, <b>lower is better</b>.
<b>Relative mCE</b> does the same with the clean error subtracted from both sides, Σ<sub>s</sub>(E<sub>s,c</sub> − E<sub>clean</sub>) ÷ Σ<sub>s</sub>(E<sup>AlexNet</sup><sub>s,c</sub> − E<sup>AlexNet</sup><sub>clean</sub>):
how much accuracy the corruptions take away compared with how much they take from AlexNet (lower is better; it can exceed 100% for an accurate model that degrades steeply).
An mCE marked incomplete is the mean over the corruptions that ran, so it is not comparable with published numbers. Corruptions outside the 15 (marked extra) have no CE.</p>
<p>The corruptions are <b>GPU ports of ImageNet-C</b> (<code>hendrycks/robustness</code>, <code>corruptions.py</code>) with the reference parameters per severity, applied on the fly
to the preprocessed images; the reference leans on scipy, scikit-image, OpenCV and ImageMagick, so the port matches closely but not bit for bit,
and <b>frost blends a generated frost texture</b> instead of the reference's photographs of frost.</p>`);
  }
  if (s.clean) {
    ps.push(`<p><b>Calibration</b> uses the top-label confidence and the L1 gap between accuracy and confidence per bin, weighted by the bin's share of images.
<b>ECE (100 adaptive bins)</b> uses 100 equal-mass bins (Minderer et al. 2021, the standard in robustness_metrics);
<b>ECE (15 equal-width bins)</b> uses bins [0, 1/15), [1/15, 2/15), … (Guo et al. 2017, the common alternative); the reliability diagram shows the 15 equal-width bins:
bars below the diagonal are over-confident. NLL is the mean −log p(true label); Brier is the mean Σ<sub>k</sub>(p<sub>k</sub> − y<sub>k</sub>)² (0 is perfect).</p>`);
  }
  if (Object.keys(s.sweeps).length) {
    ps.push(`<p><b>SI-Score</b> (Djolonga et al. 2021) pastes segmented objects on uncluttered backgrounds and varies one factor at a time:
<b>size</b> (object area 1–100% of the image, centred), <b>location</b> (area 20%, centre on a grid over the image; the heat map has x to the right and y down, as in the image)
and <b>rotation</b> (angles 1°, 21°, …, 341° at several object areas). A sweep mean is the plain mean of the per-value accuracies, whatever their image counts.</p>`);
  }
  if (Object.keys(s.resolutions).length) {
    const size = escapeHtml(s.preprocessing?.size ?? DASH);
    ps.push(`<p><b>Test resolution</b> runs the clean set at other input sizes with the same preprocessing (the resize target scales with the size); the model's own size is ${size}×${size}.</p>`);
  }
  if (transfer) {
    ps.push(`<p><b>Transfer</b> fits a linear classifier on the frozen features of the same backbone: few-shot is closed-form ridge regression (big_vision's <code>fewshot_lsr</code>, λ = 2¹⁰, targets ±1)
on k images per class, mean ± std over seeds. Reading it beside mCE, ECE and the sweeps shows whether the representation that transfers well is also the robust one.</p>`);
  }
  if (s.unreadable.length) ps.push('<p>Unreadable images are left out of every metric; the table lists them with the decoder\'s error.</p>');
  return `<section class="read"><h2>How to read this</h2>\n${ps.join('\n')}\n</section>`;
}

// ---- HTML: charts (drawn in the page) ------------------------------------------------------

// Plain ES5-ish JS without template literals, so it can sit inside this TS template string.
const PAGE_SCRIPT = `
(function () {
  ${chartScriptPrelude('D', 'chart-data')}
  Chart.defaults.animation = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = '#343a40';

  function color(i) { return PALETTE[i % PALETTE.length]; }
  // Past the palette, lines repeat colours with a dash and another marker, so 19 corruptions stay apart.
  function dash(i) { return i < PALETTE.length ? [] : [6, 3]; }
  function marker(i) { return i < PALETTE.length ? 'circle' : 'rectRot'; }
  var lineLegend = { labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8 } };
  function pct(v) { return v === null || v === undefined ? '—' : v.toFixed(1) + '%'; }
  // Ticks exactly at the given values (grid centres, resolutions, shot counts), at most about 8 labelled.
  function ticksAt(values) {
    var every = Math.ceil(values.length / 8);
    return {
      afterBuildTicks: function (ax) { ax.ticks = values.filter(function (v, i) { return i % every === 0; }).map(function (v) { return { value: v }; }); },
      ticks: { autoSkip: false, callback: function (v) { return String(Math.round(v * 1000) / 1000); } },
    };
  }
  function merge(a, b) { for (var k in b) a[k] = b[k]; return a; }
  function axis(text, extra) {
    var a = { title: { display: true, text: text } };
    for (var k in extra || {}) a[k] = extra[k];
    return a;
  }
  function add(id, config) {
    var el = document.getElementById(id);
    if (!el) return;
    config.options = config.options || {};
    config.options.responsive = true;
    config.options.maintainAspectRatio = false;
    try { window.__charts.push(new Chart(el, config)); }
    catch (err) { console.error('chart ' + id + ': ' + err); el.parentNode.textContent = 'Could not draw this chart: ' + err; }
  }
  function line(label, data, i, extra) {
    var d = { label: label, data: data, borderColor: color(i), backgroundColor: color(i), borderDash: dash(i), pointStyle: marker(i), pointRadius: 2.5, borderWidth: 2, spanGaps: true };
    for (var k in extra || {}) d[k] = extra[k];
    return d;
  }
  var pctTip = { callbacks: { label: function (c) { return c.dataset.label + ': ' + pct(c.parsed.y); } } };
  // Horizontal reference lines (value on the y scale, label, colour) drawn over the datasets.
  function hlines(lines) {
    return {
      id: 'hlines',
      afterDatasetsDraw: function (chart) {
        var a = chart.chartArea, ctx = chart.ctx;
        lines.forEach(function (l) {
          if (l.y === null || l.y === undefined) return;
          var y = chart.scales.y.getPixelForValue(l.y);
          if (y < a.top || y > a.bottom) return;
          ctx.save();
          ctx.strokeStyle = l.color; ctx.lineWidth = 2; ctx.setLineDash(l.dash || [6, 4]);
          ctx.beginPath(); ctx.moveTo(a.left, y); ctx.lineTo(a.right, y); ctx.stroke();
          ctx.font = '12px ' + Chart.defaults.font.family; ctx.textAlign = 'right';
          var w = ctx.measureText(l.label).width;
          ctx.fillStyle = 'rgba(255,255,255,0.85)'; ctx.fillRect(a.right - w - 10, y - 18, w + 8, 15);
          ctx.fillStyle = l.color; ctx.fillText(l.label, a.right - 6, y - 6);
          ctx.restore();
        });
      },
    };
  }

  if (D.severity) {
    add('chart-severity', {
      type: 'line',
      data: { labels: D.severity.labels, datasets: D.severity.series.map(function (s, i) { return line(s.label, s.data, i); }) },
      options: {
        scales: { x: axis('severity (left: clean)'), y: axis('top-1 accuracy %', { min: 0, max: 100 }) },
        plugins: { legend: merge({ position: 'right' }, lineLegend), tooltip: pctTip },
      },
    });
  }

  if (D.ce) {
    var ceSets = [{ label: 'CE', data: D.ce.ce, backgroundColor: '#1971c2' }];
    if (D.ce.rel) ceSets.push({ label: 'relative CE', data: D.ce.rel, backgroundColor: '#74c0fc' });
    add('chart-ce', {
      type: 'bar',
      data: { labels: D.ce.labels, datasets: ceSets },
      options: { scales: { y: axis('% of AlexNet (lower is better)', { beginAtZero: true }) }, plugins: { tooltip: pctTip } },
      plugins: [hlines([
        { y: 100, label: 'AlexNet = 100%', color: '#c92a2a' },
        { y: D.ce.mce, label: 'mCE ' + pct(D.ce.mce), color: '#1971c2', dash: [2, 3] },
      ])],
    });
  }

  if (D.reliability) {
    var R = D.reliability;
    add('chart-reliability', {
      type: 'bar',
      data: {
        labels: R.labels,
        datasets: [
          { type: 'line', label: 'perfect calibration', data: R.diag, borderColor: '#c92a2a', borderDash: [6, 4], borderWidth: 2, pointRadius: 0, order: 0 },
          { type: 'line', label: 'mean confidence', data: R.conf, showLine: false, borderColor: '#212529', backgroundColor: '#212529', pointRadius: 3, order: 1 },
          { label: 'accuracy', data: R.acc, backgroundColor: '#74c0fc', borderColor: '#1971c2', borderWidth: 1, barPercentage: 1, categoryPercentage: 0.96, order: 2 },
        ],
      },
      options: {
        scales: { x: axis('confidence bin (15 equal-width)'), y: axis('%', { min: 0, max: 100 }) },
        plugins: { tooltip: { callbacks: { label: function (c) {
          return c.dataset.label + ': ' + pct(c.parsed.y) + (c.dataset.label === 'accuracy' ? ' (' + R.count[c.dataIndex] + ' images)' : '');
        } } } },
      },
    });
  }

  if (D.size) {
    add('chart-size', {
      type: 'line',
      data: { datasets: [line('top-1', D.size, 0, { pointRadius: 1 })] },
      options: {
        scales: { x: axis('object area, % of the image', { type: 'linear', min: 0, max: 100 }), y: axis('top-1 accuracy %', { min: 0, max: 100 }) },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (c) { return 'area ' + c.parsed.x.toFixed(0) + '%: ' + pct(c.parsed.y); } } } },
      },
    });
  }

  if (D.rotation) {
    add('chart-rotation', {
      type: 'line',
      data: { datasets: D.rotation.map(function (s, i) { return line(s.label, s.data, i); }) },
      options: {
        scales: { x: axis('rotation angle, degrees', { type: 'linear', min: 0, max: 360, ticks: { stepSize: 45 } }), y: axis('top-1 accuracy %', { min: 0, max: 100 }) },
        plugins: { legend: lineLegend, tooltip: { callbacks: { label: function (c) { return c.dataset.label + ', ' + c.parsed.x + '°: ' + pct(c.parsed.y); } } } },
      },
    });
  }

  if (D.location) {
    var L = D.location;
    // One rectangle per grid cell, exactly tiling the grid in data units; the dataset's own
    // points are invisible and only give the tooltips something to hit.
    var cellsPlugin = {
      id: 'cells',
      beforeDatasetsDraw: function (chart) {
        var xs = chart.scales.x, ys = chart.scales.y, ctx = chart.ctx;
        ctx.save();
        L.cells.forEach(function (c) {
          var x0 = xs.getPixelForValue(c.x - L.dx / 2), x1 = xs.getPixelForValue(c.x + L.dx / 2);
          var y0 = ys.getPixelForValue(c.y - L.dy / 2), y1 = ys.getPixelForValue(c.y + L.dy / 2);
          ctx.fillStyle = c.c;
          ctx.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0) + 0.5, Math.abs(y1 - y0) + 0.5);
        });
        ctx.restore();
      },
    };
    add('chart-location', {
      type: 'scatter',
      data: { datasets: [{ label: 'top-1', data: L.cells.map(function (c) { return { x: c.x, y: c.y }; }), pointRadius: 0,
        pointHitRadius: function (ctx) {
          var a = ctx.chart.chartArea, xs = ctx.chart.scales.x;
          return a && xs ? Math.max(2, Math.abs(xs.getPixelForValue(L.dx) - xs.getPixelForValue(0)) / 2) : 4;
        } }] },
      options: {
        scales: {
          x: axis('object centre x', merge({ type: 'linear', min: L.xr[0], max: L.xr[1], grid: { display: false } }, ticksAt(L.xs))),
          y: axis('object centre y (down, as in the image)', merge({ type: 'linear', min: L.yr[0], max: L.yr[1], reverse: true, grid: { display: false } }, ticksAt(L.ys))),
        },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (c) {
          var cell = L.cells[c.dataIndex];
          return '(' + cell.x + ', ' + cell.y + '): ' + pct(cell.v);
        } } } },
      },
      plugins: [cellsPlugin],
    });
  }

  if (D.resolution) {
    var rx = D.resolution.top1.map(function (p) { return p.x; }), pad = 0.06 * (rx[rx.length - 1] - rx[0]);
    add('chart-resolution', {
      type: 'line',
      data: { datasets: [line('top-1', D.resolution.top1, 0, { pointRadius: 4 }), line('top-5', D.resolution.top5, 1, { pointRadius: 4 })] },
      options: {
        scales: {
          x: axis('test resolution, px (model built for ' + D.resolution.native + ')', merge({ type: 'linear', min: rx[0] - pad, max: rx[rx.length - 1] + pad }, ticksAt(rx))),
          y: axis('accuracy %', { grace: '5%' }),
        },
        plugins: { tooltip: { callbacks: { label: function (c) { return c.dataset.label + ' at ' + c.parsed.x + ' px: ' + pct(c.parsed.y); } } } },
      },
    });
  }

  if (D.fewshot) {
    add('chart-fewshot', {
      type: 'line',
      data: { datasets: [
        line('mean over seeds', D.fewshot.mean, 0, { pointRadius: 4 }),
        { type: 'scatter', label: 'each seed', data: D.fewshot.seeds, backgroundColor: 'rgba(134,142,150,0.7)', pointRadius: 3 },
      ] },
      options: {
        scales: {
          // Some room either side so the end points are not cut in half.
          x: axis('examples per class' + (D.fewshot.log ? ' (log scale)' : ''), merge({
            type: D.fewshot.log ? 'logarithmic' : 'linear',
            min: D.fewshot.log ? D.fewshot.mean[0].x / 1.25 : 0,
            max: D.fewshot.mean[D.fewshot.mean.length - 1].x * (D.fewshot.log ? 1.25 : 1.05),
          }, ticksAt(D.fewshot.mean.map(function (p) { return p.x; })))),
          y: axis('accuracy %', { beginAtZero: true }),
        },
        plugins: { tooltip: { callbacks: { label: function (c) { return c.dataset.label + ', ' + c.parsed.x + '-shot: ' + pct(c.parsed.y); } } } },
      },
    });
  }
  document.body.setAttribute('data-charts', String(window.__charts.length));
})();
`;

const figure = (id: string, caption: string, height: number, extra = '', cls = '') =>
  `<figure${cls ? ` class="${cls}"` : ''}><figcaption>${caption}</figcaption><div class="chart" style="height:${height}px"><canvas id="${id}"></canvas></div>${extra}</figure>`;

function robustnessFigures(d: ChartData): string[] {
  const figs: string[] = [];
  if (d.severity) figs.push(figure('chart-severity', 'Top-1 accuracy vs corruption severity', 360, '', 'wide'));
  if (d.ce) figs.push(figure('chart-ce', 'Corruption error per corruption (AlexNet = 100%)', 320, '', 'wide'));
  if (d.reliability) figs.push(figure('chart-reliability', 'Reliability diagram, clean (15 equal-width bins)', 320));
  if (d.size) figs.push(figure('chart-size', 'SI-Score size: accuracy vs object area', 320));
  if (d.rotation) figs.push(figure('chart-rotation', 'SI-Score rotation: accuracy vs angle, per object area', 320));
  if (d.location) {
    const { lo, hi } = locationRange(d.location.cells.map((c) => c.v / 100));
    const legend = `<div class="scale"><span>${pct(lo)}</span><i style="background:linear-gradient(to right, ${VIRIDIS.join(', ')})"></i><span>${pct(hi)}</span></div>`;
    const xs = new Set(d.location.cells.map((c) => c.x)).size, ys = new Set(d.location.cells.map((c) => c.y)).size;
    figs.push(figure('chart-location', `SI-Score location: accuracy by object centre (${xs}×${ys} grid)`, 380, legend));
  }
  if (d.resolution) figs.push(figure('chart-resolution', 'Clean accuracy vs test resolution', 320));
  return figs;
}

// ---- the page --------------------------------------------------------------------------------

const CSS = `
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #212529; background: #f8f9fa; margin: 0; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 26px; margin: 0 0 2px; } h2 { font-size: 18px; margin: 28px 0 10px; } header h2 { margin: 0 0 6px; font-size: 15px; }
h3 { font-size: 14px; margin: 12px 0 6px; color: #495057; font-weight: 600; }
.sub { color: #495057; margin: 0 0 16px; } code, .mono, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 14px; margin-bottom: 14px; }
.cards section, figure, .read, table, .tile, pre.raw { background: #fff; border: 1px solid #dee2e6; border-radius: 6px; }
.cards section { padding: 12px 16px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; } dt { color: #6c757d; } dd { margin: 0; overflow-wrap: anywhere; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
.tile { padding: 8px 12px; } .tile span { display: block; color: #6c757d; font-size: 13px; }
.tile b { display: block; font-size: 22px; font-variant-numeric: tabular-nums; } .tile small { display: block; color: #6c757d; font-size: 12px; overflow-wrap: anywhere; } .tile small.bad { color: #c92a2a; font-weight: normal; }
table { border-collapse: separate; border-spacing: 0; width: 100%; font-variant-numeric: tabular-nums; overflow: hidden; margin-bottom: 14px; }
caption { caption-side: top; text-align: left; color: #495057; padding: 0 0 8px; font-size: 13.5px; }
th, td { padding: 5px 10px; text-align: left; border-bottom: 1px solid #f1f3f5; vertical-align: top; }
thead th { background: #f1f3f5; font-weight: 600; font-size: 13px; white-space: nowrap; }
tfoot th, tfoot td { border-top: 2px solid #dee2e6; font-weight: 600; }
td span { display: block; color: #6c757d; font-weight: normal; font-size: 12.5px; }
td.num { text-align: right; white-space: nowrap; } tr.native td { background: #f3f9ff; }
.bad { color: #c92a2a; font-weight: 600; }
td.msg pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; color: #862e2e; max-height: 8em; overflow: auto; }
pre.raw { padding: 10px 14px; overflow: auto; max-height: 20em; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 14px; margin-bottom: 14px; }
figure { margin: 0; padding: 12px 14px; } figure.wide { grid-column: 1 / -1; }
figcaption { font-weight: 600; margin-bottom: 6px; } .chart { position: relative; }
.scale { display: flex; align-items: center; gap: 8px; font-size: 12.5px; color: #495057; margin-top: 6px; }
.scale i { display: block; flex: 0 1 240px; height: 10px; border-radius: 2px; }
.read { padding: 4px 18px; } .read p { max-width: 940px; }
`;

/** The report page: static tables and text, with charts drawn by Chart.js (inlined from `o.chartJs`). */
export function renderRobustnessReport(s: Summary, o: { chartJs: string; transfer?: TransferSummary }): string {
  const tr = transferOf(s, o.transfer);
  const d = chartData(s, tr.t);
  const figs = robustnessFigures(d);
  const fewshotFig = d.fewshot ? figure('chart-fewshot', 'Few-shot linear transfer: accuracy vs examples per class', 300) : '';
  const anyChart = figs.length > 0 || fewshotFig !== '';
  const hasTransfer = tr.t !== undefined || tr.raw !== undefined;
  const sections = [
    headerHtml(s),
    headlineHtml(s, tr.t),
    figs.length ? `<section><h2>Charts</h2><div class="charts">\n${figs.join('\n')}\n</div></section>` : '',
    Object.keys(s.corruptions).length ? corruptionTableHtml(s) : '',
    Object.keys(s.resolutions).length ? resolutionTableHtml(s) : '',
    hasTransfer ? transferHtml(tr, fewshotFig) : '',
    s.unreadable.length ? unreadableHtml(s) : '',
    howToReadHtml(s, hasTransfer),
  ].filter(Boolean);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cnnlab robustness · ${escapeHtml(s.model)} · ${escapeHtml(s.created)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${sections.join('\n')}
</main>
<script type="application/json" id="summary-data">${inlineJson(s)}</script>
${o.transfer ? `<script type="application/json" id="transfer-data">${inlineJson(o.transfer)}</script>\n` : ''}${anyChart ? `<script type="application/json" id="chart-data">${inlineJson(d)}</script>
<script>${inlineJs(o.chartJs)}</script>
<script>${PAGE_SCRIPT}</script>` : ''}
</body>
</html>
`;
}
