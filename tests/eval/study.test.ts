// eval/study.ts on hand-made summaries: the table rows and their order, every plot's points with
// where they came from, the runs each plot leaves out and why, sweep curves, labels, notes; and
// the plan's validation (eval/study-plan.ts), every bad field named.

import { describe, expect, it } from 'vitest';
import { parsePlan, PlanError } from '../../eval/study-plan.js';
import {
  buildStudy,
  checkSummary,
  formatStudyTable,
  parseStudyJson,
  runLabels,
  StudyInputError,
  sweepCurve,
} from '../../eval/study.js';
import { clean, fourRuns, mce, summary } from '../study-fixtures.js';

describe('buildStudy', () => {
  const st = buildStudy(fourRuns(), [], 'T');

  it('has one row per run, ordered by model then label, with provenance and what each lacks', () => {
    expect(st.runs.map((r) => r.id)).toEqual(['mnv2-builtin', 'mnv2-random', 'transfer-only', 'r18-random']);
    const [b, rnd, only, r18] = st.runs;
    expect(b).toMatchObject({
      dir: 'runs/mnv2-builtin',
      model: 'mobilenet_v2_synth',
      weights: 'mobilenet_v2_synth.safetensors',
      size: 112,
      top1: 0.9,
      ece: 0.03,
      mce: 0.6,
      mce_complete: true,
      relative_mce: 0.8,
      imagenet_c_comparable: false,
    });
    expect(b.resolutions).toEqual([
      { size: 64, top1: 0.5 },
      { size: 96, top1: 0.8 },
      { size: 112, top1: 0.9 },
    ]);
    expect(b.transfer).toEqual({ '1-shot': 0.4, '5-shot': 0.7, 'linear probe': 0.8 });
    expect(b.missing).toEqual([]);
    expect(rnd.transfer).toEqual({ '5-shot': 0.3, 'fine-tune': 0.35 });
    expect(rnd.missing).toEqual(['test resolutions']);
    expect(only.missing).toEqual(['clean accuracy', 'ECE', 'mCE', 'test resolutions', 'SI-Score sweeps']);
    expect(r18.settings).toMatchObject({
      corruptions: ['gaussian_noise'],
      severities: [1, 2, 3, 4, 5],
      limit: 4,
      seed: 0,
    });
    expect(r18.missing).toEqual(['SI-Score sweeps', 'transfer']);
  });

  it('draws accuracy vs mCE and ECE vs accuracy with every run that has both, the rest left out with the reason', () => {
    const am = st.plots.accuracy_mce;
    expect(am.points).toEqual([
      {
        run: 'mnv2-builtin',
        dir: 'runs/mnv2-builtin',
        model: 'mobilenet_v2_synth',
        weights: 'mobilenet_v2_synth.safetensors',
        x: 0.9,
        y: 0.6,
      },
      {
        run: 'mnv2-random',
        dir: 'other/mnv2-random',
        model: 'mobilenet_v2_synth',
        weights: 'random (seed 1)',
        x: 0.12,
        y: 1.1,
      },
      {
        run: 'r18-random',
        dir: 'runs/r18-random',
        model: 'resnet18',
        weights: 'random (seed 0)',
        x: 0.1,
        y: 1.2,
        incomplete: true,
      },
    ]);
    expect(am.left_out).toEqual([{ run: 'transfer-only', why: expect.stringMatching(/^no clean accuracy/) }]);
    expect(st.plots.calibration.points.map((p) => [p.run, p.x, p.y])).toEqual([
      ['mnv2-builtin', 0.9, 0.03],
      ['mnv2-random', 0.12, 0.2],
      ['r18-random', 0.1, 0.05],
    ]);
    expect(st.plots.calibration.left_out.map((l) => l.run)).toEqual(['transfer-only']);
  });

  it('draws mCE vs transfer per metric (few-shot by shots, probe, fine-tune); runs without either are left out', () => {
    const mt = st.plots.mce_transfer;
    expect(mt.series.map((s) => s.metric)).toEqual(['1-shot', '5-shot', 'linear probe', 'fine-tune']);
    expect(mt.series[1].points.map((p) => [p.run, p.x, p.y])).toEqual([
      ['mnv2-builtin', 0.6, 0.7],
      ['mnv2-random', 1.1, 0.3],
    ]);
    expect(mt.left_out).toEqual([
      { run: 'transfer-only', why: 'no mCE: no ImageNet-C corruption ran at all 5 severities' },
      { run: 'r18-random', why: expect.stringMatching(/^no transfer results/) },
    ]);
  });

  it('draws top-1 vs resolution per run in size order and the sweeps side by side', () => {
    const res = st.plots.resolution;
    expect(res.series.map((s) => [s.run, s.native, s.points])).toEqual([
      [
        'mnv2-builtin',
        112,
        [
          { x: 64, y: 0.5 },
          { x: 96, y: 0.8 },
          { x: 112, y: 0.9 },
        ],
      ],
      [
        'r18-random',
        224,
        [
          { x: 160, y: 0.1 },
          { x: 224, y: 0.1 },
        ],
      ],
    ]);
    expect(res.left_out).toEqual([
      { run: 'mnv2-random', why: 'no test resolutions' },
      { run: 'transfer-only', why: 'no test resolutions' },
    ]);
    expect(st.plots.sweeps.size.series.map((s) => [s.run, s.points])).toEqual([
      [
        'mnv2-builtin',
        [
          { x: 0.1, y: 0.4 },
          { x: 0.5, y: 0.9 },
        ],
      ],
      [
        'mnv2-random',
        [
          { x: 0.1, y: 0.1 },
          { x: 0.5, y: 0.12 },
        ],
      ],
    ]);
    expect(st.plots.sweeps.rotation.series[0].points).toEqual([
      { x: 1, y: 1 },
      { x: 21, y: 0.7 },
    ]);
    expect(st.plots.sweeps.location.series[0].points).toEqual([
      { x: 0, y: 1 },
      { x: 0.25, y: 0.7 },
    ]);
    expect(st.plots.sweeps.location.left_out.map((l) => l.run)).toEqual(['mnv2-random', 'transfer-only', 'r18-random']);
  });

  it('notes incomplete and non-comparable mCE, and the terminal table shows every run with what is missing', () => {
    expect(st.notes.join('\n')).toMatch(/fewer than the 15 .*r18-random/);
    expect(st.notes.join('\n')).toMatch(
      /not comparable with published ImageNet-C numbers .*mnv2-builtin, mnv2-random, r18-random/,
    );
    const t = formatStudyTable(st);
    for (const id of ['mnv2-builtin', 'mnv2-random', 'transfer-only', 'r18-random']) expect(t).toContain(id);
    expect(t).toMatch(/r18-random .*120\.0%\*/);
    expect(t).toMatch(/transfer-only .*clean accuracy, ECE, mCE, test resolutions, SI-Score sweeps/);
    expect(t).toMatch(/left out of plots:\n {2}accuracy vs mCE: transfer-only \(no clean accuracy/);
  });

  it('keeps a skipped folder in the study and the table', () => {
    const s = buildStudy([fourRuns()[0]], [{ dir: 'bad', error: 'bad: no summary.json' }]);
    expect(s.skipped).toEqual([{ dir: 'bad', error: 'bad: no summary.json' }]);
    expect(formatStudyTable(s)).toContain('skipped: bad: no summary.json');
  });

  it('reads back through parseStudyJson, and refuses what is not a study', () => {
    expect(parseStudyJson(JSON.stringify(st))).toEqual(st);
    expect(() => parseStudyJson('{"runs": [')).toThrow(/study\.json: not JSON/);
    expect(() => parseStudyJson(JSON.stringify(summary()), 'x.json')).toThrow(/x\.json: not a cnnlab study\.json/);
    expect(() => parseStudyJson(JSON.stringify({ ...st, version: 2 }))).toThrow(
      /version 2; this cnnlab reads version 1/,
    );
  });
});

describe('pieces', () => {
  it('labels runs by folder name, with more of the path where names collide', () => {
    expect(runLabels(['runs/a', 'runs/b/'])).toEqual(['a', 'b']);
    expect(runLabels(['x/r18', 'y/r18', 'z'])).toEqual(['x/r18', 'y/r18', 'z']);
    expect(runLabels(['a/r', 'a/r'])).toEqual(['a/r', 'a/r (2)']);
  });

  it('turns sweeps into curves: size by area, rotation by angle over areas, location by distance from the centre', () => {
    expect(sweepCurve('size', { '0.37': 0.5, '0.1': 0.25, bad: 1 })).toEqual([
      { x: 0.1, y: 0.25 },
      { x: 0.37, y: 0.5 },
    ]);
    expect(sweepCurve('rotation', { '0.2@41': 0, '0.5@41': 1, '0.2@1': 0.5 })).toEqual([
      { x: 1, y: 0.5 },
      { x: 41, y: 0.5 },
    ]);
    expect(sweepCurve('location', { '0.1,0.5': 0.25, '0.5,0.9': 0.75, '0.5,0.5': null })).toEqual([{ x: 0.4, y: 0.5 }]);
  });

  it('checks a summary for what a study needs, naming the folder', () => {
    expect(() => checkSummary('runs/x', [1])).toThrow(new StudyInputError('runs/x: summary.json is not a JSON object'));
    expect(() => checkSummary('runs/x', { weights: 'w' })).toThrow(/runs\/x: summary.json has no "model"/);
    expect(() => checkSummary('runs/x', { model: 'm', sweeps: 3 })).toThrow(
      /runs\/x: summary.json's "sweeps" is not an object/,
    );
    expect(checkSummary('d', summary()).model).toBe('resnet18');
  });

  it('reads fine-tuning per task, and says when transfer results have a form it does not read', () => {
    const st = buildStudy([
      {
        dir: 'a',
        summary: summary({
          clean: clean(0.5, 0.1),
          mce: mce(1),
          finetune: { cifar: { accuracy: 0.6 }, pets: { top1: 1 } },
        }),
      },
      { dir: 'b', summary: summary({ clean: clean(0.5, 0.1), transfer: { something: 1 } }) },
    ]);
    expect(st.runs[0].transfer).toEqual({ 'fine-tune cifar': 0.6 });
    expect(st.runs[1].missing).toContain('transfer results in a form this study does not read');
  });
});

describe('parsePlan', () => {
  const plan = (runs: unknown[], extra = {}) => parsePlan({ runs, ...extra }, '/plans');

  it("expands models × weights into named runs with the commands' arguments", () => {
    const p = plan(
      [
        {
          model: ['mobilenet_v2_synth', 'resnet18'],
          weights: ['random', 'w/r.safetensors'],
          seed: 1,
          resolutions: [64, 96],
          corruptions: ['gaussian_noise'],
          severities: '1-5',
          sweeps: 'none',
          limit: 4,
          transfer: { protocols: ['fewshot'], shots: [1, 5], seeds: 2 },
        },
      ],
      { out: 'study/' },
    );
    expect(p.out).toBe('study/');
    expect(p.runs.map((r) => r.name)).toEqual([
      'mobilenet_v2_synth-random-s1',
      'mobilenet_v2_synth-r',
      'resnet18-random-s1',
      'resnet18-r',
    ]);
    expect(p.runs[1].robustness).toEqual([
      '--model',
      'mobilenet_v2_synth',
      '--weights',
      '/plans/w/r.safetensors',
      '--runtime',
      'node',
      '--seed',
      '1',
      '--limit',
      '4',
      '--resolutions',
      '64,96',
      '--corruptions',
      'gaussian_noise',
      '--sweeps',
      'none',
      '--severities',
      '1-5',
    ]);
    expect(p.runs[0].transfer).toEqual([
      '--model',
      'mobilenet_v2_synth',
      '--weights',
      'random',
      '--protocol',
      'fewshot',
      '--shots',
      '1,5',
      '--seeds',
      '2',
      '--seed',
      '1',
    ]);
    expect(p.runs[0].protocols).toEqual(['fewshot']);
    expect(plan([{ model: 'mobilenet_v2_synth', transfer: 'fewshot,probe' }]).runs[0]).toMatchObject({
      name: 'mobilenet_v2_synth-builtin',
      weights: 'builtin',
      protocols: ['fewshot', 'probe'],
    });
    expect(plan([{ model: 'resnet18' }]).runs[0]).toMatchObject({ name: 'resnet18-random-s0', transfer: null });
  });

  it('names every bad field at once', () => {
    let msg = '';
    try {
      plan(
        [
          {
            model: 'resnet51',
            resolutions: [64, 'x'],
            corruptions: ['fog', 'smog'],
            severities: '0-9',
            weights: 'builtin',
          },
          {
            model: 'resnet18',
            weights: 'builtin',
            transfer: { protocols: ['finetune'], shots: [0] },
            resolution: [64],
          },
          'resnet18',
        ],
        { output: 'x' },
      );
    } catch (e) {
      expect(e).toBeInstanceOf(PlanError);
      msg = (e as Error).message;
    }
    const lines = msg
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
    expect(lines).toEqual([
      'output: unknown field (known: out, runtime, runs)',
      'runs[0].model: unknown model "resnet51" (npx cnnlab models lists them)',
      'runs[0].resolutions[1]: must be an integer ≥ 16 (px), got "x"',
      expect.stringMatching(/^runs\[0\]\.corruptions\[1\]: unknown "smog" \(known: /),
      'runs[0].severities: must be like "1-5", "1,3" or [1, 3] (1 to 5), got "0-9"',
      expect.stringMatching(/^runs\[1\]\.resolution: unknown field \(known: name, model, /),
      'runs[1].transfer: protocols must be among fewshot, probe, vtab1k, got ["finetune"]',
      'runs[1].transfer.shots: must be a list of positive integers, got [0]',
      'runs[1].weights: resnet18 has no built-in weights (use "random" or a file)',
      'runs[2]: must be an object with at least "model"',
    ]);
  });

  it('refuses runs that would share a folder, and an empty plan', () => {
    expect(() => plan([{ model: 'resnet18' }, { model: 'resnet18', resolutions: [64] }])).toThrow(
      /runs: 2 runs would share the folder "resnet18-random-s0": give them distinct "name"s/,
    );
    expect(() => plan([])).toThrow(/runs: must be a non-empty list of runs/);
    expect(() => parsePlan([], '/')).toThrow(/not a JSON object/);
  });
});
