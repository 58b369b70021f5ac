// The one page shell of every cnnlab report: a self-contained HTML file (no network) with static
// sections rendered in Node or the page, the report's data inlined as JSON, and, when the report
// has charts, Chart.js (UMD build) and the report chart module (report/charts/, bundled by
// build.mjs) inlined after it. The chart module reads the JSON and draws into window.__charts.

import { escapeHtml, inlineJs, inlineJson } from './html.js';

/** The scripts a report with charts inlines: Chart.js's UMD build and the bundled chart module. */
export interface ChartScripts {
  /** Chart.js (node_modules/chart.js/dist/chart.umd.js). */
  chartJs: string;
  /** The chart module (dist/web/report-charts.js, see report/charts-bundle.ts). */
  charts: string;
}

export interface PageOptions {
  title: string;
  /** The report's own rules, after BASE_CSS. */
  css: string;
  /** Sections of <main>, in order; empty strings are left out. */
  sections: string[];
  /** Inlined as <script type="application/json" id=…>, in order. */
  data: { id: string; value: unknown }[];
  /** Given when the page has charts to draw. */
  charts?: ChartScripts;
}

/** Rules both reports share: layout, cards, tables, charts. */
const BASE_CSS = `
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
td.num { text-align: right; white-space: nowrap; }
td.msg pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; color: #862e2e; max-height: 8em; overflow: auto; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 14px; }
figure { margin: 0; padding: 12px 14px; }
figcaption { font-weight: 600; margin-bottom: 6px; } .chart { position: relative; }
.read { padding: 4px 18px; }
`;

export function htmlPage(o: PageOptions): string {
  const data = o.data.map(
    (d) => `<script type="application/json" id="${escapeHtml(d.id)}">${inlineJson(d.value)}</script>\n`,
  );
  const scripts = o.charts
    ? `<script>${inlineJs(o.charts.chartJs)}</script>\n<script>${inlineJs(o.charts.charts)}</script>\n`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(o.title)}</title>
<style>${BASE_CSS}${o.css}</style>
</head>
<body>
<main>
${o.sections.filter(Boolean).join('\n')}
</main>
${data.join('')}${scripts}</body>
</html>
`;
}

/** A definition list; keys are escaped here, values are HTML already. */
export const dl = (rows: [string, string][]) =>
  `<dl>${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;

/** A table head row; the labels are escaped here. */
export const headRow = (labels: string[]) =>
  `<thead><tr>${labels.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>`;

/** A chart's figure: the caption (HTML), a fixed-height box with the canvas the chart module draws into, `extra`. */
export function figure(id: string, caption: string, height: number, o: { extra?: string; cls?: string } = {}): string {
  return (
    `<figure${o.cls ? ` class="${o.cls}"` : ''}><figcaption>${caption}</figcaption>` +
    `<div class="chart" style="height:${height}px"><canvas id="${id}"></canvas></div>${o.extra ?? ''}</figure>`
  );
}
