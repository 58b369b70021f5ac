// The study report: static table and notes with every run, each chart's left-out runs named
// under it, strings escaped; in headless Chromium every chart with data is drawn, with the
// points the study holds. CNNLAB_STUDY_SCREENSHOT=file.png also writes a full-page screenshot.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { launchChromium } from '../../cli/chromium.js';
import { buildStudy } from '../../eval/study.js';
import { chartsBundle } from '../../report/charts-bundle.js';
import { STUDY_CHART_IDS } from '../../report/charts/study.js';
import { studyHtml } from '../../report/study.js';
import { chartJsSource, haveChromium, openReport } from '../report-harness.js';
import { fourRuns, summary } from '../study-fixtures.js';

describe('study report', () => {
  const st = buildStudy(fourRuns(), [{ dir: 'runs/broken', error: 'runs/broken: summary.json is damaged' }], 'T');
  const html = studyHtml(st, { chartJs: chartJsSource(), charts: chartsBundle() });

  it('has every run in the table, the left-out runs under each chart, notes and skipped folders', () => {
    for (const r of st.runs) expect(html).toContain(`${r.id}<span class="mono">${r.dir}</span>`);
    expect(html).toContain('left out: <b>transfer-only</b>: no clean accuracy');
    expect(html).toContain('left out: <b>r18-random</b>: no transfer results');
    expect(html).toContain('skipped: runs/broken: summary.json is damaged');
    expect(html).toMatch(/not comparable with published ImageNet-C numbers/);
    expect(html).toContain('id="study-data"');
  });

  it('escapes what comes from the summaries, and says so when no run has what a chart needs', () => {
    const s = buildStudy([{ dir: 'runs/<b>x</b>', summary: summary({ model: '<img src=x>' }) }]);
    const h = studyHtml(s, { chartJs: 'C', charts: 'D' });
    expect(h).not.toContain('<img src=x>');
    expect(h).toContain('&lt;img src=x&gt;');
    expect(h.match(/No run has what this chart needs/g)).toHaveLength(7);
    expect(h).not.toContain('<canvas');
  });

  it.skipIf(!haveChromium)("draws every chart in headless Chromium with the study's points", async () => {
    const { errors, requests, result } = await openReport(html, () =>
      window.__charts.map((c) => ({
        id: c.canvas.id,
        sets: c.data.datasets.map((d) => ({ label: d.label, n: d.data.length })),
        drawn: c.canvas.width > 0 && c.chartArea.width > 0,
      })),
    );
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    const byId = Object.fromEntries(result.map((c) => [c.id, c]));
    expect(Object.keys(byId).sort()).toEqual(
      [
        STUDY_CHART_IDS.accuracyMce,
        STUDY_CHART_IDS.calibration,
        STUDY_CHART_IDS.mceTransfer,
        STUDY_CHART_IDS.resolution,
        STUDY_CHART_IDS.sweep('location'),
        STUDY_CHART_IDS.sweep('rotation'),
        STUDY_CHART_IDS.sweep('size'),
      ].sort(),
    );
    expect(result.every((c) => c.drawn)).toBe(true);
    expect(byId[STUDY_CHART_IDS.accuracyMce].sets.map((s) => s.label)).toEqual([
      'mnv2-builtin',
      'mnv2-random',
      'r18-random',
    ]);
    expect(byId[STUDY_CHART_IDS.mceTransfer].sets).toEqual([
      { label: '1-shot', n: 1 },
      { label: '5-shot', n: 2 },
      { label: 'linear probe', n: 1 },
      { label: 'fine-tune', n: 1 },
    ]);
    expect(byId[STUDY_CHART_IDS.resolution].sets).toEqual([
      { label: 'mnv2-builtin', n: 3 },
      { label: 'r18-random', n: 2 },
    ]);
    expect(byId[STUDY_CHART_IDS.sweep('size')].sets.map((s) => s.label)).toEqual(['mnv2-builtin', 'mnv2-random']);
  });

  it.skipIf(!haveChromium || !process.env.CNNLAB_STUDY_SCREENSHOT)('writes a screenshot when asked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cnnlab-study-'));
    writeFileSync(join(dir, 'report.html'), html);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(pathToFileURL(join(dir, 'report.html')).href);
      await page.waitForFunction(() => document.body.hasAttribute('data-charts'));
      await page.screenshot({ path: process.env.CNNLAB_STUDY_SCREENSHOT!, fullPage: true });
    } finally {
      await browser.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
