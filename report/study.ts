// The study report's page: one table of the runs and the seed study's comparisons as charts
// (report/charts/study.ts draws them from the inlined study.json), each with the runs it leaves
// out and why, then what to keep in mind when reading them. eval/study.ts shapes the data; every
// string from the JSON goes through escapeHtml; a missing number reads '—'.

import type { LeftOut, StudyJson, StudyRun, SweepKind } from '../eval/study.js';
import { STUDY_CHART_IDS, STUDY_DATA_ID } from './charts/study.js';
import { DASH, fix, pct } from './format.js';
import { escapeHtml } from './html.js';
import { type ChartScripts, figure, headRow, htmlPage } from './page.js';
import { PALETTE } from './palette.js';

const CSS = `
table.runs { font-size: 13.5px; } table.runs td { padding: 5px 8px; }
table.runs thead th { white-space: normal; vertical-align: bottom; }
td.run { min-width: 150px; } td.run span { overflow-wrap: anywhere; } td.run i { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; }
td span, td small { display: block; color: #6c757d; font-size: 12px; overflow-wrap: anywhere; }
td.missing { color: #862e2e; font-size: 13px; }
figure .left { margin: 6px 0 0; font-size: 12.5px; color: #862e2e; } figure .left li { margin: 0; }
figure .empty { color: #6c757d; margin: 8px 0; }
.notes li { margin: 4px 0; } .bad { color: #c92a2a; } .read p { max-width: 940px; }
.scroll { overflow-x: auto; }
`;

const colorOf = (i: number) => PALETTE[i % PALETTE.length];

function leftOutHtml(lo: LeftOut[]): string {
  if (!lo.length) return '';
  return `<ul class="left">${lo.map((l) => `<li>left out: <b>${escapeHtml(l.run)}</b>: ${escapeHtml(l.why)}</li>`).join('')}</ul>`;
}

/** A chart's figure, or, when no run has the quantity, the caption with a note instead of an empty canvas. */
function chartFigure(id: string, caption: string, has: boolean, lo: LeftOut[], height = 340): string {
  if (!has) {
    return `<figure><figcaption>${caption}</figcaption><p class="empty">No run has what this chart needs.</p>${leftOutHtml(lo)}</figure>`;
  }
  return figure(id, caption, height, { extra: leftOutHtml(lo) });
}

function weightsHtml(r: StudyRun): string {
  const sha = r.weights_sha256
    ? `<span title="${escapeHtml(r.weights_sha256)}">sha256 ${escapeHtml(r.weights_sha256.slice(0, 12))}…</span>`
    : '';
  return `<span class="mono">${escapeHtml(r.weights)}</span>${sha}`;
}

function settingsHtml(r: StudyRun): string {
  const s = r.settings;
  if (!s) return DASH;
  const parts: string[] = [];
  if (s.corruptions) parts.push(`${s.corruptions.length} corruption${s.corruptions.length === 1 ? '' : 's'}`);
  if (s.severities?.length) parts.push(`severities ${s.severities.join(',')}`);
  if (s.limit !== undefined && s.limit !== null) parts.push(`limit ${s.limit}`);
  if (s.seed !== undefined) parts.push(`seed ${s.seed}`);
  if (s.imagenet_c_protocol) parts.push('ImageNet-C protocol');
  if (s.shards) parts.push(`shards ${s.shards.merged.length} of ${s.shards.of}`);
  return escapeHtml(parts.join(' · ') || DASH);
}

function tableHtml(st: StudyJson): string {
  const head = [
    'run',
    'model and weights',
    'data and settings',
    'clean n',
    'top-1',
    'ECE',
    'mCE',
    'sweeps: size / location / rotation',
    'top-1 by resolution',
    'transfer',
    'missing',
  ];
  const rows = st.runs.map((r, i) => {
    const mce =
      r.mce === null
        ? DASH
        : `${pct(r.mce)}${r.mce_complete === false ? '<small>incomplete</small>' : ''}` +
          (r.relative_mce === null ? '' : `<small>relative ${pct(r.relative_mce)}</small>`);
    const sweeps = (['size', 'location', 'rotation'] as const).map((k) => pct(r.sweeps[k])).join(' / ');
    const res = r.resolutions.map((q) => `${q.size}: ${pct(q.top1)}`).join('<br>') || DASH;
    const tr =
      Object.entries(r.transfer)
        .map(([k, v]) => `${escapeHtml(k)} ${pct(v)}`)
        .join('<br>') || DASH;
    return (
      `<tr><td class="run"><i style="background:${colorOf(i)}"></i>${escapeHtml(r.id)}<span class="mono">${escapeHtml(r.dir)}</span></td>` +
      `<td>${escapeHtml(r.model)}${r.size === null ? '' : ` <small>${r.size}×${r.size}</small>`}${weightsHtml(r)}</td>` +
      `<td>${escapeHtml(r.settings?.data ?? r.data)}<span>${settingsHtml(r)}</span></td>` +
      `<td class="num">${r.n ?? DASH}</td><td class="num">${pct(r.top1)}</td><td class="num">${fix(r.ece, 3)}</td>` +
      `<td class="num">${mce}</td><td class="num">${sweeps}</td>` +
      `<td class="num">${res}</td><td class="num">${tr}</td><td class="missing">${escapeHtml(r.missing.join(', '))}</td></tr>`
    );
  });
  return `<section><h2>Runs</h2><div class="scroll"><table class="runs">
<caption>One row per run folder; a dash is a quantity the run does not have (the "missing" column says which), and such a run is left out of that chart only.</caption>
${headRow(head)}
<tbody>
${rows.join('\n')}
</tbody></table></div></section>`;
}

function chartsHtml(st: StudyJson): string {
  const p = st.plots;
  const sweep = (k: SweepKind, caption: string) =>
    chartFigure(STUDY_CHART_IDS.sweep(k), caption, p.sweeps[k].series.length > 0, p.sweeps[k].left_out, 300);
  return `<section><h2>Robustness against accuracy</h2><div class="charts">
${chartFigure(STUDY_CHART_IDS.accuracyMce, 'Clean accuracy vs mCE, one point per run (hollow: incomplete mCE)', p.accuracy_mce.points.length > 0, p.accuracy_mce.left_out)}
${chartFigure(STUDY_CHART_IDS.mceTransfer, 'mCE vs transfer accuracy (few-shot, probe, fine-tune), points labelled by run', p.mce_transfer.series.length > 0, p.mce_transfer.left_out)}
${chartFigure(STUDY_CHART_IDS.resolution, 'Clean top-1 vs test resolution, one line per run', p.resolution.series.length > 0, p.resolution.left_out)}
${chartFigure(STUDY_CHART_IDS.calibration, 'Calibration (ECE) vs clean accuracy, one point per run', p.calibration.points.length > 0, p.calibration.left_out)}
</div></section>
<section><h2>SI-Score sweeps side by side</h2><div class="charts">
${sweep('size', 'Object size: top-1 vs object area')}
${sweep('location', 'Object location: top-1 vs distance from the centre (mean over positions at that distance)')}
${sweep('rotation', 'Object rotation: top-1 vs angle (mean over object areas)')}
</div></section>`;
}

function notesHtml(st: StudyJson): string {
  const items = [
    ...st.notes.map((n) => `<li>${escapeHtml(n)}</li>`),
    ...st.skipped.map((s) => `<li class="bad">skipped: ${escapeHtml(s.error)}</li>`),
  ];
  return items.length ? `<section class="notes"><h2>Notes</h2><ul>${items.join('')}</ul></section>` : '';
}

function howToReadHtml(): string {
  return `<section class="read"><h2>How to read this</h2>
<p>The comparisons are those of Djolonga et al., <i>On Robustness and Transferability of Convolutional Neural Networks</i> (CVPR 2021):
whether the models that are more accurate are also more robust (<b>accuracy vs mCE</b>: better models sit at the bottom right),
whether the representations that transfer well are the robust ones (<b>mCE vs transfer</b>: top left is robust and transferable),
how much a simple preprocessing change, the <b>test resolution</b>, moves accuracy per model, how each run holds up as an object
changes size, position or angle (<b>SI-Score</b>), and whether accuracy comes with honest confidence (<b>ECE vs accuracy</b>).</p>
<p><b>mCE</b> is the mean over the ImageNet-C corruptions of the top-1 error summed over severities 1–5, divided by AlexNet's
(100% = as fragile as AlexNet, lower is better); an incomplete mCE averages only the corruptions that ran, and data other than the
ImageNet validation set makes it a number to compare between these runs, not with published ones. <b>ECE</b> uses 100 equal-mass
bins of the top-label confidence. Transfer accuracies are linear classifiers on frozen features (few-shot: k images per class,
mean over seeds). Each run's own report.html, in its folder, has the details behind its row.</p>
</section>`;
}

/** The study page: the runs' table, the charts (drawn by the chart module from the inlined study.json), notes. */
export function studyHtml(st: StudyJson, scripts: ChartScripts): string {
  const models = new Set(st.runs.map((r) => r.model));
  return htmlPage({
    title: `cnnlab study · ${st.runs.length} runs · ${st.created}`,
    css: CSS,
    sections: [
      `<header><h1>cnnlab study · ${st.runs.length} run${st.runs.length === 1 ? '' : 's'}, ${models.size} model${models.size === 1 ? '' : 's'}</h1>` +
        `<p class="sub">${escapeHtml(st.created)}</p></header>`,
      notesHtml(st),
      tableHtml(st),
      chartsHtml(st),
      howToReadHtml(),
    ],
    data: [{ id: STUDY_DATA_ID, value: st }],
    charts: scripts,
  });
}
