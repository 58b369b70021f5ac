// The report chart module as the reports inline it: read from build.mjs's bundle in Node, named
// by the command that builds it when missing, and taken as given when the caller (the page)
// passes its text.

import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../bench/report.js';
import type { BenchJson } from '../../bench/schema.js';
import { renderRobustnessReport } from '../../eval/report.js';
import type { Summary } from '../../eval/summary-schema.js';
import { CHARTS_BUNDLE_PATHS, chartsBundle } from '../../report/charts-bundle.js';
import { reportChartsBuild } from '../../report/charts/build-options.mjs';

describe('chartsBundle', () => {
  it('reads the bundle build.mjs wrote: one classic script that draws either report', () => {
    const src = chartsBundle();
    expect(src).not.toMatch(/^\s*(import|export)\b/m);
    for (const id of ['chart-data', 'bench-data', 'chart-severity', 'chart-kernels', 'data-charts']) {
      expect(src).toContain(id);
    }
    expect(CHARTS_BUNDLE_PATHS.some((p) => p.pathname.endsWith('/dist/web/report-charts.js'))).toBe(true);
  });

  it('is the current one: report/charts/ bundled now gives the same script', async () => {
    const now = await build({ ...reportChartsBuild, write: false });
    expect(now.outputFiles).toHaveLength(1);
    const current = chartsBundle() === now.outputFiles[0].text;
    expect(current, 'dist/web/report-charts.js is stale: run `node build.mjs`').toBe(true);
  });

  it('names the command to run when the bundle is missing', () => {
    const nowhere = [new URL('file:///nonexistent/cnnlab/dist/web/report-charts.js')];
    expect(() => chartsBundle(nowhere)).toThrow(
      /not built \(no \/nonexistent\/cnnlab\/dist\/web\/report-charts\.js\): run `node build\.mjs`/,
    );
  });
});

describe('reports with the chart module given', () => {
  const charts = 'window.FAKE_REPORT_CHARTS_4b2d = 1;';
  it('inline the given text after Chart.js, as the page renders a report', () => {
    const s = {
      version: 1,
      model: 'm',
      weights: 'w',
      data: 'd',
      preprocessing: {
        size: 32,
        resizeMode: 'squash',
        cropPct: 1,
        interpolation: 'bilinear',
        mean: [0, 0, 0],
        std: [1, 1, 1],
      },
      created: 'today',
      shards: null,
      clean: null,
      corruptions: {},
      mce: null,
      relative_mce: null,
      sweeps: {},
      resolutions: { '24': { n: 1, top1: 0.5, top5: 1 }, '32': { n: 1, top1: 0.75, top5: 1 } },
      unreadable: [],
    } as Summary;
    const html = renderRobustnessReport(s, { chartJs: 'CHART_JS_UMD', charts });
    expect(html).toContain(`<script>CHART_JS_UMD</script>\n<script>${charts}</script>`);
    expect(html).toContain('id="chart-resolution"');
  });

  it('leave the scripts out when there is nothing to draw', () => {
    const b = {
      version: 1,
      created: 'now',
      command: 'x',
      notes: [],
      models: [],
      settings: { models: [], batches: [], peers: [], iters: 1, warmup: 0, quick: true, size: 8 },
      adapter: { runtime: 'node', vendor: 'v', architecture: 'a', description: 'd', features: [], summary: 's' },
      roofline: { fmaGflops: 1, copyGBps: 1, timing: 'wall' },
    } as unknown as BenchJson;
    const html = renderReport(b, { chartJs: 'CHART_JS_UMD', charts });
    expect(html).not.toContain('CHART_JS_UMD');
    expect(html).not.toContain(charts);
    expect(html.match(/<script\b/g)).toHaveLength(1);
  });
});
