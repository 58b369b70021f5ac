// `cnnlab study` on three tiny real runs: two made by a --plan (the built-in model with its own
// and with random weights, one extra test resolution, one corruption at 5 severities, 1 image) and a
// random-weight ResNet-18 made by `cnnlab robustness` and given as a folder. It writes study.json
// and report.html, whose charts headless Chromium draws; bad folders are errors naming them (or,
// with --skip-bad, listed warnings); a second plan run skips what is complete and resumes what is
// partial; and the page's study section renders the same report from the study.json it opens.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type PageSession, startPage } from '../../cli/common.js';
import { robustnessCmd } from '../../cli/robustness.js';
import { pageMounts } from '../../cli/serve-page.js';
import { collectStudy, studyCmd } from '../../cli/study.js';
import { synthCmd } from '../../cli/synth.js';
import type { StudyJson } from '../../eval/study.js';
import { haveChromium, openReport } from '../report-harness.js';

const root = mkdtempSync(path.join(tmpdir(), 'cnnlab-study-'));
const out = path.join(root, 'study');
const TINY = {
  runtime: 'node',
  per_class: 1,
  limit: 1,
  corruptions: ['gaussian_noise'],
  severities: '1-5',
  sweeps: 'none',
  batch: 8,
};
const plan = {
  out: 'study',
  runs: [
    { name: 'mnv2', model: 'mobilenet_v2_synth', weights: ['builtin', 'random'], seed: 1, resolutions: [64], ...TINY },
  ],
};
const planFile = path.join(root, 'plan.json');
const r18 = path.join(root, 'r18');
let session: PageSession | undefined;

/** Runs `f` with console.log and console.warn captured. */
async function captured(f: () => Promise<number>): Promise<{ rc: number; text: string }> {
  const lines: string[] = [];
  const { log, warn } = console;
  console.log = console.warn = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    return { rc: await f(), text: lines.join('\n') };
  } finally {
    Object.assign(console, { log, warn });
  }
}

const readStudy = () => JSON.parse(readFileSync(path.join(out, 'study.json'), 'utf8')) as StudyJson;

afterAll(async () => {
  await session?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('cnnlab study', () => {
  it('names each folder it cannot read and why, all at once; --skip-bad lists them and goes on', () => {
    const dirs = ['damaged', 'partial', 'not-json-object', 'good'].map((d) => path.join(root, 'bad', d));
    for (const d of dirs) mkdirSync(d, { recursive: true });
    writeFileSync(path.join(dirs[0], 'summary.json'), '{"model": "resnet18", "clean": {');
    writeFileSync(path.join(dirs[1], 'run.json'), '{}');
    writeFileSync(path.join(dirs[2], 'summary.json'), '[1]');
    writeFileSync(path.join(dirs[3], 'summary.json'), JSON.stringify({ model: 'resnet18', weights: 'w', clean: null }));
    const missing = path.join(root, 'bad', 'missing');
    let msg = '';
    try {
      collectStudy([...dirs, missing]);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg.split('\n')).toEqual([
      '4 run folders cannot be read (--skip-bad leaves them out with a warning):',
      expect.stringMatching(new RegExp(`^  ${dirs[0]}: summary.json is damaged: not JSON \\(`)),
      `  ${dirs[1]}: no summary.json: the run did not finish (resume it: npx cnnlab robustness … --resume --out DIR)`,
      `  ${dirs[2]}: summary.json is not a JSON object`,
      `  ${missing}: not a folder`,
    ]);
    const warnings: string[] = [];
    const st = collectStudy([...dirs, missing], { skipBad: true, warn: (w) => warnings.push(w) });
    expect(st.runs.map((r) => r.dir)).toEqual([dirs[3]]);
    expect(st.skipped.map((s) => s.dir)).toEqual([dirs[0], dirs[1], dirs[2], missing]);
    expect(warnings).toHaveLength(4);
    expect(() => collectStudy([dirs[0]], { skipBad: true })).toThrow('no run folders to study');
  });

  it("makes the plan's runs, adds a folder, and writes the table, study.json and report.html", async () => {
    writeFileSync(planFile, JSON.stringify(plan));
    // ResNet-18 knows no synthetic class names: it reads them as a labelled ImageFolder.
    const data = path.join(root, 'synth');
    expect(
      (await captured(() => synthCmd(['--out', data, '--per-class', '1', '--size', '64', '--split', 'test']))).rc,
    ).toBe(0);
    const made = await captured(() =>
      robustnessCmd([
        '--model',
        'resnet18',
        '--weights',
        'random',
        '--runtime',
        'node',
        '--data',
        data,
        '--limit',
        '1',
        '--corruptions',
        'gaussian_noise',
        '--severities',
        '3',
        '--sweeps',
        'none',
        '--resolutions',
        '64',
        '--out',
        r18,
      ]),
    );
    expect(made.rc).toBe(0);
    const bad = path.join(root, 'empty');
    mkdirSync(bad);
    await expect(captured(() => studyCmd(['--plan', planFile, r18, bad]))).rejects.toThrow(
      `${bad}: no summary.json: not a cnnlab run folder`,
    );

    const { rc, text } = await captured(() => studyCmd(['--plan', planFile, r18, bad, '--skip-bad']));
    expect(rc).toBe(0);
    expect(text).toContain(`warning: skipped ${bad}: no summary.json`);
    expect(text).toMatch(
      /\nmnv2-mobilenet_v2_synth-builtin +mobilenet_v2_synth +mobilenet_v2_synth\.safetensors [0-9a-f]{8} +1 /,
    );
    expect(text).toMatch(/\nr18 +resnet18 +random \(seed 0\) +1 .*mCE, SI-Score sweeps, transfer/);

    const st = readStudy();
    expect(st.runs.map((r) => [r.id, r.model, r.weights])).toEqual([
      ['mnv2-mobilenet_v2_synth-builtin', 'mobilenet_v2_synth', 'mobilenet_v2_synth.safetensors'],
      ['mnv2-mobilenet_v2_synth-random-s1', 'mobilenet_v2_synth', 'random (seed 1)'],
      ['r18', 'resnet18', 'random (seed 0)'],
    ]);
    expect(st.runs[0].dir).toBe(path.join(out, 'runs', 'mnv2-mobilenet_v2_synth-builtin'));
    expect(st.runs[0].settings).toMatchObject({
      corruptions: ['gaussian_noise'],
      severities: [1, 2, 3, 4, 5],
      resolutions: [64],
      limit: 1,
    });
    expect(st.runs[0].resolutions.map((q) => q.size)).toEqual([64, 112]);
    expect(st.skipped).toEqual([{ dir: bad, error: `${bad}: no summary.json: not a cnnlab run folder` }]);
    const am = st.plots.accuracy_mce;
    expect(am.points.map((p) => [p.run, p.incomplete])).toEqual([
      ['mnv2-mobilenet_v2_synth-builtin', true],
      ['mnv2-mobilenet_v2_synth-random-s1', true],
    ]);
    expect(am.left_out).toEqual([{ run: 'r18', why: 'no mCE: no ImageNet-C corruption ran at all 5 severities' }]);
    expect(st.plots.resolution.series.map((s) => [s.run, s.points.map((p) => p.x)])).toEqual([
      ['mnv2-mobilenet_v2_synth-builtin', [64, 112]],
      ['mnv2-mobilenet_v2_synth-random-s1', [64, 112]],
      ['r18', [64, 224]],
    ]);
    expect(st.plots.calibration.points).toHaveLength(3);
    expect(st.plots.mce_transfer.left_out).toHaveLength(3);
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain('left out: <b>r18</b>: no mCE');
    expect(html.match(/No run has what this chart needs/g)).toHaveLength(4); // mCE vs transfer and the three sweeps

    if (!haveChromium) return;
    const { errors, requests, result } = await openReport(html, () => window.__charts.map((c) => c.canvas.id).sort());
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    expect(result).toEqual(['chart-accuracy-mce', 'chart-calibration', 'chart-study-resolution']);
  }, 600_000);

  it('skips complete runs and resumes partial ones when the plan runs again', async () => {
    const dir = path.join(out, 'runs', 'mnv2-mobilenet_v2_synth-builtin');
    const before = readStudy().runs[0];
    rmSync(path.join(dir, 'summary.json'));
    const { rc, text } = await captured(() => studyCmd(['--plan', planFile, r18]));
    expect(rc).toBe(0);
    expect(text).toContain(`study: ${dir}: resuming robustness`);
    expect(text).toContain(
      `study: ${path.join(out, 'runs', 'mnv2-mobilenet_v2_synth-random-s1')}: robustness complete, skipped`,
    );
    expect(text).toMatch(/ 0 image evaluations to do \(\d+ already recorded\)/);
    const after = readStudy().runs[0];
    expect([after.top1, after.mce, after.resolutions]).toEqual([before.top1, before.mce, before.resolutions]);

    const changed = { ...plan, runs: [{ ...plan.runs[0], resolutions: [96] }] };
    writeFileSync(planFile, JSON.stringify(changed));
    await expect(captured(() => studyCmd(['--plan', planFile]))).rejects.toThrow(/was made with other settings/);
  }, 300_000);

  it.skipIf(!haveChromium)(
    'renders the same report in the page from the study.json it opens',
    async () => {
      if (!existsSync('dist/web/index.html')) throw new Error('run `node build.mjs` first');
      session = await startPage(pageMounts());
      const page = session.page;
      await page.setInputFiles('#study-file', path.join(out, 'study.json'));
      await page.waitForFunction(
        () => {
          const f = document.getElementById('study-report') as HTMLIFrameElement;
          return (
            f.contentDocument?.body?.hasAttribute('data-charts') ||
            /error/.test(document.getElementById('study-out')!.textContent!)
          );
        },
        null,
        { timeout: 60_000 },
      );
      expect(await page.textContent('#study-out')).toMatch(/^study\.json: 3 runs/);
      const charts = await page.$eval('#study-report', (f) =>
        (f as HTMLIFrameElement).contentDocument!.body.getAttribute('data-charts'),
      );
      expect(charts).toBe('3');
      const bad = path.join(root, 'not-a-study.json');
      writeFileSync(bad, '{"model": "x"}');
      await page.setInputFiles('#study-file', bad);
      await page.waitForFunction(() => /error/.test(document.getElementById('study-out')!.textContent!));
      expect(await page.textContent('#study-out')).toBe(
        'error: not-a-study.json: not a cnnlab study.json (no "kind": "cnnlab-study")',
      );
    },
    120_000,
  );
});
