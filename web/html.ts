// Helpers for the self-contained HTML reports (bench/report.ts, eval/report.ts): text and data
// that come from JSON must never become markup or end a <script> early.

export function escapeHtml(s: unknown): string {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** JSON that cannot end its <script> tag early: no raw '<' (so no '</script>' and no '<!--'). */
export function inlineJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c');
}

/** JS source for an inline <script>: '</script' becomes '<\/script', the same text to the JS parser. */
export function inlineJs(src: string): string {
  return src.replace(/<\/(script)/gi, '<\\/$1');
}

/**
 * The start of a report's chart script (plain ES5 inside an IIFE): parse the inlined JSON from
 * <script id=dataId> into `varName`, reset window.__charts, give up politely without Chart.js,
 * and define the shared PALETTE.
 */
export function chartScriptPrelude(varName: string, dataId: string): string {
  return `'use strict';
  var ${varName} = JSON.parse(document.getElementById('${dataId}').textContent);
  window.__charts = [];
  if (typeof Chart === 'undefined') {
    document.querySelectorAll('.chart').forEach(function (el) { el.textContent = 'Chart.js was not inlined: no charts.'; });
    return;
  }
  var PALETTE = ['#1971c2', '#e8590c', '#2f9e44', '#9c36b5', '#f08c00', '#0c8599', '#c2255c', '#5c940d', '#6741d9', '#868e96', '#a61e4d', '#087f5b'];`;
}
