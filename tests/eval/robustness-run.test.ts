// Robustness runs end to end: a run killed mid-way resumes with nothing lost and nothing
// counted twice; shards merged give the summary one run gives.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeCmd, robustnessCmd } from '../../cli/robustness.js';
import { parseRecords, recordKey } from '../../eval/records.js';
import type { Summary } from '../../eval/summary-schema.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'cnnlab-rob-'));
// A small run: random weights on the built-in model, 1 image per class, 2 corruptions, 1 sweep.
const ARGS = [
  '--runtime',
  'node',
  '--weights',
  'random',
  '--per-class',
  '1',
  '--corruptions',
  'gaussian_noise,contrast',
  '--severities',
  '1,3',
  '--sweeps',
  'size',
  '--resolutions',
  '96',
  '--batch',
  '8',
];

const records = (dir: string) => parseRecords(readFileSync(path.join(dir, 'results.jsonl'), 'utf8')).records;
const summary = (dir: string) => JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8')) as Summary;
const comparable = (s: Summary) => ({ ...s, created: null, shards: null });

async function quiet<T>(f: () => Promise<T>): Promise<T> {
  const log = console.log;
  console.log = () => {};
  try {
    return await f();
  } finally {
    console.log = log;
  }
}

describe('robustness runs', () => {
  let full: string;

  it('runs, writes results.jsonl, summary.json and report.html', async () => {
    full = tmp();
    expect(await quiet(() => robustnessCmd([...ARGS, '--out', full]))).toBe(0);
    const recs = records(full);
    // clean, 2 corruptions × 2 severities, res/96: 6 conditions × 10 images; + size sweep (quick: 10 factors × 10 classes).
    expect(recs.length).toBe(6 * 10 + 10 * 10);
    expect(new Set(recs.map(recordKey)).size).toBe(recs.length);
    const s = summary(full);
    expect(s.clean!.n).toBe(10);
    expect(Object.keys(s.corruptions).sort()).toEqual(['contrast', 'gaussian_noise']);
    expect(s.corruptions.gaussian_noise['3'].n).toBe(10);
    expect(Object.keys(s.sweeps.size!.accuracy).length).toBe(10);
    expect(s.resolutions['96'].n).toBe(10);
    expect(s.mce).toBeNull(); // no corruption has all five severities
    expect(s.settings).toMatchObject({
      weights_sha256: null,
      labels: 'synthetic',
      data_key: 'synthetic:test:per-class=1',
      imagenet_c_protocol: false,
    });
    expect(s.comparable!.imagenet_c).toBe(false);
    expect(s.comparable!.reasons.slice(0, 3)).toEqual([
      'the data is the built-in synthetic set, not ImageNet',
      'random weights',
      'no mCE: no ImageNet-C corruption has all 5 severities',
    ]);
    expect(readFileSync(path.join(full, 'report.html'), 'utf8')).toContain('comparable with published ImageNet-C');
    expect(existsSync(path.join(full, 'run.lock'))).toBe(false); // released when the run ends
    expect(readFileSync(path.join(full, 'report.html'), 'utf8')).toMatch(/mobilenet_v2_synth/);
  });

  it('runs the same in the page in headless Chromium (the default runtime)', async () => {
    const dir = tmp();
    expect(await quiet(() => robustnessCmd([...ARGS.slice(2), '--out', dir]))).toBe(0);
    const a = summary(dir),
      b = summary(full);
    expect(records(dir).length).toBe(160);
    // Same WGSL on the same SwiftShader adapter: the same predictions.
    expect(a.clean!.top1).toBe(b.clean!.top1);
    expect(a.corruptions).toEqual(b.corruptions);
    expect(a.sweeps).toEqual(b.sweeps);
    expect(a.clean!.nll).toBeCloseTo(b.clean!.nll, 4);
  }, 300_000);

  it('refuses to overwrite a run without --resume', async () => {
    const err = console.error;
    await expect(quiet(() => robustnessCmd([...ARGS, '--out', full]))).rejects.toThrow(/--resume/);
    console.error = err;
  });

  it('a killed run resumes with nothing lost and nothing counted twice', async () => {
    const dir = tmp();
    const cli = path.resolve('bin/cnnlab.mjs');
    expect(existsSync('dist/cli.mjs')).toBe(true);
    // Kill the process as soon as some results are on disk.
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [cli, 'robustness', ...ARGS, '--out', dir], { stdio: 'ignore' });
      const timer = setInterval(() => {
        const f = path.join(dir, 'results.jsonl');
        if (existsSync(f) && readFileSync(f, 'utf8').split('\n').length > 20) {
          clearInterval(timer);
          child.kill('SIGKILL');
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        resolve();
      });
      child.on('error', reject);
    });
    const partial = records(dir).length;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(160);
    // The killed process left its lock: reported as stale, taken over with --force-unlock.
    await expect(quiet(() => robustnessCmd([...ARGS, '--out', dir, '--resume']))).rejects.toThrow(
      /stale lock: pid \d+ .*--force-unlock/,
    );
    expect(await quiet(() => robustnessCmd([...ARGS, '--out', dir, '--resume', '--force-unlock']))).toBe(0);
    const recs = records(dir);
    expect(recs.length).toBe(160);
    expect(new Set(recs.map(recordKey)).size).toBe(160);
    expect(comparable(summary(dir))).toEqual(comparable(summary(full)));
  }, 300_000);

  it('a run stopped by SIGTERM releases its folder; a running one holds it', async () => {
    const dir = tmp();
    const child = spawn(process.execPath, [path.resolve('bin/cnnlab.mjs'), 'robustness', ...ARGS, '--out', dir], {
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    const lock = path.join(dir, 'run.lock');
    while (!existsSync(lock) || !readFileSync(lock, 'utf8').endsWith('\n')) await new Promise((r) => setTimeout(r, 20));
    expect(JSON.parse(readFileSync(lock, 'utf8')).pid).toBe(child.pid);
    await expect(quiet(() => robustnessCmd([...ARGS, '--out', dir, '--resume', '--force-unlock']))).rejects.toThrow(
      new RegExp(`locked by running process pid ${child.pid}`),
    );
    child.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
    expect(existsSync(lock)).toBe(false);
  }, 120_000);

  it('shards merge into the summary of a single run', async () => {
    const a = tmp(),
      b = tmp(),
      out = tmp();
    expect(await quiet(() => robustnessCmd([...ARGS, '--shard', '0/2', '--out', a]))).toBe(0);
    expect(await quiet(() => robustnessCmd([...ARGS, '--shard', '1/2', '--out', b]))).toBe(0);
    expect(records(a).length + records(b).length).toBe(160);
    expect(await quiet(() => mergeCmd([a, b, '--out', out]))).toBe(0);
    const m = summary(out);
    expect(m.shards).toEqual({ merged: [0, 1], of: 2 });
    expect(comparable(m)).toEqual(comparable(summary(full)));
  }, 300_000);
});
