// What every report's charts share in the page: Chart.js from the inlined UMD build (the global
// `Chart`), the report data from an inlined JSON element, the house defaults, and `add`, which
// draws one chart into its canvas and keeps it in window.__charts (the tests read them there).

import type { Chart as ChartJs, ChartConfiguration, ChartType, DefaultDataPoint } from 'chart.js';
import { PALETTE } from '../palette.js';

declare global {
  interface Window {
    __charts: ChartJs[];
  }
}

export type ChartClass = typeof ChartJs;

/** Draws one chart into <canvas id=id> (skipped when the page has no such canvas). */
export type AddChart = <T extends ChartType, D = DefaultDataPoint<T>>(
  id: string,
  config: ChartConfiguration<T, D, unknown>,
) => void;

/** The JSON inlined as <script type="application/json" id=id>. */
export function readJson<T>(id: string): T {
  const el = document.getElementById(id);
  if (!el?.textContent) throw new Error(`report charts: no data in #${id}`);
  return JSON.parse(el.textContent) as T;
}

/**
 * Reset window.__charts, give up politely when Chart.js was not inlined, set the defaults, let
 * `draw` add the charts, and mark <body data-charts=N> when done.
 */
export function drawCharts(draw: (add: AddChart, Chart: ChartClass) => void): void {
  window.__charts = [];
  const Chart = (globalThis as { Chart?: ChartClass }).Chart;
  if (!Chart) {
    document.querySelectorAll('.chart').forEach((el) => {
      el.textContent = 'Chart.js was not inlined: no charts.';
    });
    return;
  }
  Chart.defaults.animation = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = '#343a40';
  const add: AddChart = (id, config) => {
    const el = document.getElementById(id) as HTMLCanvasElement | null;
    if (!el) return;
    const c = config as ChartConfiguration;
    c.options = { ...c.options, responsive: true, maintainAspectRatio: false };
    try {
      window.__charts.push(new Chart(el, c) as ChartJs);
    } catch (err) {
      console.error(`chart ${id}: ${err}`);
      el.parentNode!.textContent = `Could not draw this chart: ${err}`;
    }
  };
  draw(add, Chart);
  document.body.setAttribute('data-charts', String(window.__charts.length));
}

export const color = (i: number) => PALETTE[i % PALETTE.length];
