// The robustness report's page: header, headline numbers, charts, the ImageNet-C, resolution,
// transfer and unreadable-image tables, and how to read them, for one summary.json (and the
// transfer results of the same backbone, when there are any). eval/report.ts shapes the data
// (corruption and severity order, transfer results, chart series) into a RobustnessView; every
// string from the JSON is rendered through escapeHtml. A section appears only when the summary
// has its data; a missing number reads '—'.

import type { ConditionMetrics, Summary, TransferSummary } from '../eval/summary-schema.js';
import { ROBUSTNESS_DATA_ID, type RobustnessCharts } from './charts/robustness.js';
import { DASH, fix, isNum, numericKeys, pct } from './format.js';
import { escapeHtml } from './html.js';
import { finetuneSection } from './finetune.js';
import { type ChartScripts, dl, figure, headRow, htmlPage } from './page.js';
import { VIRIDIS } from './palette.js';

export interface RobustnessView {
  summary: Summary;
  /** The caller's transfer results, inlined as #transfer-data beside the summary. */
  transferData?: TransferSummary;
  /** The transfer results to show: well-formed (t), or in a form this report does not know (raw). */
  transfer: { t?: TransferSummary; raw?: unknown };
  /** Corruptions in table order; mce: one of the 15 that make up mCE. */
  corruptions: { name: string; mce: boolean }[];
  /** The severity columns ('1'…'5' and any others present). */
  severities: string[];
  charts: RobustnessCharts;
}

/** ' (incomplete: missing …)' for an mCE over fewer than the 15 corruptions (or other images than clean's); '' when complete. */
export function incompleteNote(m: { complete: boolean; missing: string[]; reasons?: string[] } | null): string {
  if (!m || m.complete) return '';
  if (m.missing.length) return ` (incomplete: missing ${m.missing.join(', ')})`;
  return m.reasons?.length ? ` (incomplete: ${m.reasons.join('; ')})` : ' (incomplete)';
}

/** Whether the numbers compare with published ImageNet-C ones ('yes', or 'no: why'); null for older summaries. */
export function comparableNote(s: Summary): string | null {
  if (!s.comparable) return null;
  return s.comparable.imagenet_c ? 'yes' : `no: ${s.comparable.reasons.join('; ')}`;
}

/** The heat map's colour range: the data's min and max accuracy (fractions). */
export function locationRange(v: number[]): { lo: number; hi: number } {
  return { lo: Math.min(...v), hi: Math.max(...v) };
}

// ---- static sections -------------------------------------------------------------------------

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
    ...(comparableNote(s)
      ? [['comparable with published ImageNet-C', escapeHtml(comparableNote(s))] as [string, string]]
      : []),
  ])}</section>
<section><h2>Preprocessing</h2>${
    p
      ? dl([
          ['size', `${escapeHtml(p.size)}×${escapeHtml(p.size)}`],
          [
            'resize',
            p.resizeMode === 'squash'
              ? 'squash both sides to the size, no crop'
              : `short side to ⌊size / cropPct⌋${isNum(p.size) && isNum(p.cropPct) && p.cropPct > 0 ? ` = ${Math.floor(p.size / p.cropPct)}` : ''}, then centre crop`,
          ],
          ['resizeMode', escapeHtml(p.resizeMode)],
          ['cropPct', escapeHtml(p.cropPct)],
          ['interpolation', escapeHtml(p.interpolation)],
          ['mean', escapeHtml(list(p.mean))],
          ['std', escapeHtml(list(p.std))],
        ])
      : `<p>${DASH}</p>`
  }</section>
</div>
</header>`;
}

const tile = (label: string, value: string, note = '', warn = false) =>
  `<div class="tile"><span>${escapeHtml(label)}</span><b>${escapeHtml(value)}</b>${note ? `<small${warn ? ' class="bad"' : ''}>${escapeHtml(note)}</small>` : ''}</div>`;

function headlineHtml(s: Summary, t: TransferSummary | undefined): string {
  const groups: string[] = [];
  const group = (title: string, tiles: string[]) =>
    groups.push(`<div class="group"><h3>${title}</h3><div class="tiles">${tiles.join('')}</div></div>`);
  const c = s.clean;
  if (c) {
    group(`Clean · ${escapeHtml(c.n)} images`, [
      tile('top-1', pct(c.top1, 2)),
      tile('top-5', pct(c.top5, 2)),
      tile('ECE (100 adaptive bins)', fix(c.ece?.adaptive_100, 4)),
      tile('ECE (15 equal-width bins)', fix(c.ece?.equal_width_15, 4)),
      tile('NLL', fix(c.nll, 3)),
      tile('Brier', fix(c.brier, 4)),
    ]);
  }
  if (s.mce || s.relative_mce) {
    group('ImageNet-C', [
      ...(s.mce ? [tile('mCE', pct(s.mce.value), incompleteNote(s.mce).trim(), true)] : []),
      ...(s.relative_mce
        ? [tile('relative mCE', pct(s.relative_mce.value), incompleteNote(s.relative_mce).trim(), true)]
        : []),
    ]);
  }
  const sweeps = (['size', 'location', 'rotation'] as const).filter((k) => s.sweeps[k]);
  if (sweeps.length) {
    group(
      'SI-Score sweep means',
      sweeps.map((k) => tile(k, pct(s.sweeps[k]!.mean), `${Object.keys(s.sweeps[k]!.accuracy).length} factor values`)),
    );
  }
  if (t) {
    group('Transfer (same backbone)', [
      ...numericKeys(Object.keys(t.fewshot ?? {})).map((k) =>
        tile(
          `${k}-shot linear`,
          pct(t.fewshot![k].mean),
          isNum(t.fewshot![k].std) ? `± ${pct(t.fewshot![k].std)}` : '',
        ),
      ),
      ...(t.probe ? [tile('linear probe', pct(t.probe.accuracy))] : []),
      ...(t.vtab1k ? [tile('VTAB-1k', pct(t.vtab1k.accuracy))] : []),
    ]);
  }
  group('Data', [tile('unreadable images', String(s.unreadable.length))]);
  return `<section class="headline"><h2>Headline numbers</h2>${groups.join('\n')}</section>`;
}

function corruptionTableHtml(v: RobustnessView): string {
  const s = v.summary,
    sevs = v.severities;
  const head = ['corruption', ...sevs.map((k) => `severity ${k}`), 'mean', 'CE', 'relative CE'];
  const cell = (m: ConditionMetrics | undefined) =>
    `<td class="num"${m ? ` title="n = ${escapeHtml(m.n)} · top-5 ${pct(m.top5)}"` : ''}>${pct(m?.top1)}</td>`;
  const rows = v.corruptions.map(({ name: n, mce }) => {
    const ms = sevs.map((k) => s.corruptions[n][k]);
    const present = ms.filter((m): m is ConditionMetrics => !!m && isNum(m.top1));
    const mean = present.length ? present.reduce((a, m) => a + m.top1, 0) / present.length : undefined;
    return (
      `<tr><td>${escapeHtml(n)}${mce ? '' : '<span>extra: not in mCE</span>'}</td>${ms.map(cell).join('')}` +
      `<td class="num">${pct(mean)}</td><td class="num">${pct(s.mce?.per_corruption[n])}</td><td class="num">${pct(s.relative_mce?.per_corruption[n])}</td></tr>`
    );
  });
  const foot =
    s.mce || s.relative_mce
      ? `<tfoot><tr><th colspan="${sevs.length + 2}">mean over the 15 ImageNet-C corruptions</th><td class="num">${pct(s.mce?.value)}</td><td class="num">${pct(s.relative_mce?.value)}</td></tr></tfoot>`
      : '';
  const missing =
    s.mce && !s.mce.complete
      ? ` mCE is incomplete: ${
          !s.mce.missing.length && s.mce.reasons?.length
            ? escapeHtml(s.mce.reasons.join('; '))
            : `missing ${escapeHtml(s.mce.missing.join(', ') || 'some severities')}`
        }.`
      : '';
  return `<section><h2>ImageNet-C</h2>
<table class="corruptions"><caption>Top-1 accuracy per corruption and severity (clean top-1 ${pct(s.clean?.top1)}); CE and relative CE are AlexNet-normalised errors, lower is better.${missing}</caption>
${headRow(head)}
<tbody>
${rows.join('\n')}
</tbody>${foot}</table></section>`;
}

function resolutionTableHtml(s: Summary): string {
  const native = s.preprocessing?.size;
  const rows = numericKeys(Object.keys(s.resolutions)).map((k) => {
    const m = s.resolutions[k];
    const d = s.clean && isNum(s.clean.top1) && isNum(m.top1) ? 100 * (m.top1 - s.clean.top1) : undefined;
    return (
      `<tr${Number(k) === native ? ' class="native"' : ''}><td>${escapeHtml(k)}×${escapeHtml(k)}${Number(k) === native ? "<span>the model's own size</span>" : ''}</td>` +
      `<td class="num">${escapeHtml(m.n)}</td><td class="num">${pct(m.top1)}</td><td class="num">${pct(m.top5)}</td>` +
      `<td class="num">${d === undefined ? DASH : `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(1)}`}</td></tr>`
    );
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
${shots
  .map((k) => {
    const r = t.fewshot![k];
    return `<tr><td>${escapeHtml(k)}</td><td class="num">${pct(r.mean)}</td><td class="num">${pct(r.std)}</td><td class="num">${r.per_seed.map((a) => pct(a)).join(', ') || DASH}</td></tr>`;
  })
  .join('\n')}
</tbody></table>`
    : '';
  const rows: [string, string][] = [];
  if (t.features) rows.push(['features', escapeHtml(t.features)]);
  if (t.probe)
    rows.push(['linear probe', `${pct(t.probe.accuracy)} (L2 ${escapeHtml(isNum(t.probe.l2) ? t.probe.l2 : DASH)})`]);
  if (t.vtab1k)
    rows.push([
      'VTAB-1k',
      `${pct(t.vtab1k.accuracy)}${t.vtab1k.l2 === undefined ? '' : ` (L2 ${escapeHtml(t.vtab1k.l2)})`}`,
    ]);
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
    ps.push(
      `<p><b>Test resolution</b> runs the clean set at other input sizes with the same preprocessing (the resize target scales with the size); the model's own size is ${size}×${size}.</p>`,
    );
  }
  if (transfer) {
    ps.push(`<p><b>Transfer</b> fits a linear classifier on the frozen features of the same backbone: few-shot is closed-form ridge regression (big_vision's <code>fewshot_lsr</code>, λ = 2¹⁰, targets ±1)
on k images per class, mean ± std over seeds. Reading it beside mCE, ECE and the sweeps shows whether the representation that transfers well is also the robust one.</p>`);
  }
  if (s.unreadable.length)
    ps.push("<p>Unreadable images are left out of every metric; the table lists them with the decoder's error.</p>");
  return `<section class="read"><h2>How to read this</h2>\n${ps.join('\n')}\n</section>`;
}

// ---- charts (drawn in the page by report/charts/robustness.ts) ----------------------------

function robustnessFigures(d: RobustnessCharts): string[] {
  const figs: string[] = [];
  if (d.severity) figs.push(figure('chart-severity', 'Top-1 accuracy vs corruption severity', 360, { cls: 'wide' }));
  if (d.ce) figs.push(figure('chart-ce', 'Corruption error per corruption (AlexNet = 100%)', 320, { cls: 'wide' }));
  if (d.reliability) figs.push(figure('chart-reliability', 'Reliability diagram, clean (15 equal-width bins)', 320));
  if (d.size) figs.push(figure('chart-size', 'SI-Score size: accuracy vs object area', 320));
  if (d.rotation) figs.push(figure('chart-rotation', 'SI-Score rotation: accuracy vs angle, per object area', 320));
  if (d.location) {
    const { lo, hi } = locationRange(d.location.cells.map((c) => c.v / 100));
    const legend = `<div class="scale"><span>${pct(lo)}</span><i style="background:linear-gradient(to right, ${VIRIDIS.join(', ')})"></i><span>${pct(hi)}</span></div>`;
    const xs = new Set(d.location.cells.map((c) => c.x)).size,
      ys = new Set(d.location.cells.map((c) => c.y)).size;
    figs.push(
      figure('chart-location', `SI-Score location: accuracy by object centre (${xs}×${ys} grid)`, 380, {
        extra: legend,
      }),
    );
  }
  if (d.resolution) figs.push(figure('chart-resolution', 'Clean accuracy vs test resolution', 320));
  return figs;
}

// ---- the page --------------------------------------------------------------------------------

/** Rules beyond the shell's BASE_CSS: headline tiles, the corruption table's footer, the heat map's legend. */
const CSS = `
h3 { font-size: 14px; margin: 12px 0 6px; color: #495057; font-weight: 600; }
.cards, table, .charts { margin-bottom: 14px; }
.tile, pre.raw { background: #fff; border: 1px solid #dee2e6; border-radius: 6px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
.tile { padding: 8px 12px; } .tile span { display: block; color: #6c757d; font-size: 13px; }
.tile b { display: block; font-size: 22px; font-variant-numeric: tabular-nums; } .tile small { display: block; color: #6c757d; font-size: 12px; overflow-wrap: anywhere; } .tile small.bad { color: #c92a2a; font-weight: normal; }
tfoot th, tfoot td { border-top: 2px solid #dee2e6; font-weight: 600; }
td span { display: block; color: #6c757d; font-weight: normal; font-size: 12.5px; }
tr.native td { background: #f3f9ff; }
.bad { color: #c92a2a; font-weight: 600; }
pre.raw { padding: 10px 14px; overflow: auto; max-height: 20em; }
figure.wide { grid-column: 1 / -1; }
.scale { display: flex; align-items: center; gap: 8px; font-size: 12.5px; color: #495057; margin-top: 6px; }
.scale i { display: block; flex: 0 1 240px; height: 10px; border-radius: 2px; }
.read p { max-width: 940px; }
`;

/** The report page: static tables and text; charts drawn by the chart module when there is a series to draw. */
export function robustnessHtml(v: RobustnessView, scripts: ChartScripts): string {
  const s = v.summary,
    d = v.charts,
    tr = v.transfer;
  const figs = robustnessFigures(d);
  const fewshotFig = d.fewshot
    ? figure('chart-fewshot', 'Few-shot linear transfer: accuracy vs examples per class', 300)
    : '';
  const ft = finetuneSection(s.finetune, tr.t);
  const anyChart = figs.length > 0 || fewshotFig !== '' || ft?.data !== undefined;
  const hasTransfer = tr.t !== undefined || tr.raw !== undefined;
  return htmlPage({
    title: `cnnlab robustness · ${s.model} · ${s.created}`,
    css: CSS,
    sections: [
      headerHtml(s),
      headlineHtml(s, tr.t),
      figs.length ? `<section><h2>Charts</h2><div class="charts">\n${figs.join('\n')}\n</div></section>` : '',
      v.corruptions.length ? corruptionTableHtml(v) : '',
      Object.keys(s.resolutions).length ? resolutionTableHtml(s) : '',
      hasTransfer ? transferHtml(tr, fewshotFig) : '',
      ft?.html ?? '',
      s.unreadable.length ? unreadableHtml(s) : '',
      howToReadHtml(s, hasTransfer),
    ],
    data: [
      { id: 'summary-data', value: s },
      ...(v.transferData ? [{ id: 'transfer-data', value: v.transferData }] : []),
      ...(anyChart ? [{ id: ROBUSTNESS_DATA_ID, value: d }] : []),
      ...(ft?.data ? [ft.data] : []),
    ],
    charts: anyChart ? scripts : undefined,
  });
}
