// The CLI checks its arguments in the order a user reads them: the command, then the model, then
// the rest; each error names the bad value and the valid ones. And a run's stderr carries no
// noise from Dawn or Chromium (libwayland's XDG_RUNTIME_DIR complaint).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.js';
import { listModels } from '../../models/registry.js';

let out: string[] = [];
let err: string[] = [];
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cnnlab-args-test-'));
});

async function run(...args: string[]): Promise<number> {
  out = [];
  err = [];
  vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
  try {
    return await main(args);
  } finally {
    vi.restoreAllMocks();
  }
}

afterEach(() => vi.restoreAllMocks());

const known = () => listModels().map((m) => m.name);

/** The one error line, which must name every value in `names`. */
function expectError(names: string[]): string {
  expect(err).toHaveLength(1);
  for (const n of names) expect(err[0]).toContain(n);
  return err[0];
}

describe('argument order and messages', () => {
  it('an unknown command comes first, and the commands are listed', async () => {
    expect(await run('infr', '--model', 'resnet51')).toBe(2);
    const e = expectError(['"infr"', 'infer', 'robustness', 'transfer', 'help']);
    expect(e).not.toMatch(/resnet51/);
  });

  it('then an unknown model, with the known ones, before any other complaint', async () => {
    const cases: string[][] = [
      // would be "exactly one of --input, --image"
      ['infer', '--model', 'resnet51', '--input', 'x.npy', '--image', 'y.png'],
      ['infer', '--weights', 'random', '--model', 'resnet51'], // would be "give exactly one of …"
      ['infer', '--model', 'resnet51', '--no-such-option'], // would be parseArgs's unknown option
      ['infer', '--model=resnet51', '--runtime', 'gpu'],
      ['robustness', '--model', 'resnet51'], // would be "--out DIR is required"
      ['transfer', '--model', 'resnet51', '--train', 'a'], // would be "--out" or "--train and --test"
      ['random-weights', '--model', 'resnet51'],
      ['bench', '--models', 'resnet50, resnet51', '--peers', 'nope'], // would be the peer, or --out
      ['tune', '--models', 'resnet51', '--size', '0'],
    ];
    for (const c of cases) {
      expect(await run(...c), c.join(' ')).toBe(1);
      const e = expectError(['"resnet51"', ...known()]);
      expect(e, c.join(' ')).toMatch(/^error: unknown model "resnet51"; known: /);
    }
  });

  it('then the rest, each naming the bad value and the valid ones', async () => {
    const missing = path.join(dir, 'missing.npy');
    const cases: [string[], RegExp][] = [
      [['infer', '--model', 'resnet18', '--input', missing], /--weights is required: a \.safetensors file or "random"/],
      [
        ['infer', '--model', 'resnet18', '--weights', 'random', '--input', missing, '--image', missing],
        /exactly one of --input x\.npy or --image/,
      ],
      // The runtime is checked before the input is read (the file does not exist).
      [
        ['infer', '--model', 'resnet18', '--weights', 'random', '--input', missing, '--runtime', 'gpu'],
        /--runtime must be node or chrome, got gpu/,
      ],
      [
        ['infer', '--model', 'resnet18', '--weights', 'random', '--input', missing, '--bogus'],
        /Unknown option '--bogus'/,
      ],
      [['engine-demo', '--size', '0'], /--size must be a positive integer, got 0/],
      [['engine-demo', '--runtime', 'gpu'], /--runtime must be chrome or node, got gpu/],
      [
        ['bench', '--models', 'resnet18', '--peers', 'ort-webgpu,onnx'],
        /unknown peer "onnx"; known: ort-webgpu, tfjs-webgpu, litert-webgpu, litert-wasm, ort-wasm, ort-wasm-1t/,
      ],
      [
        ['robustness', '--out', dir, '--corruptions', 'fog,smoke'],
        /unknown corruption "smoke"; known: .*gaussian_noise.*fog/,
      ],
      [['robustness', '--out', dir, '--severities', '2-7'], /--severities: 2-7 is outside 1-5/],
      [['robustness', '--out', dir, '--shard', '3/2'], /--shard 3\/2: need 0 ≤ k < n/],
      [['robustness', '--out', dir, '--runtime', 'gpu'], /--runtime must be chrome or node, got gpu/],
      [['transfer', '--out', dir, '--protocol', 'fewshot,knn'], /--protocol: unknown "knn" \(fewshot, probe, vtab1k\)/],
      [['synth', '--out', dir, '--classes', 'some'], /--classes must be train, heldout, all, got some/],
      [['synth', '--out', dir, '--split', 'dev'], /--split must be train, val, test, got dev/],
      [['corrupt', '--input', missing, '--out', dir, '--corruption', 'smoke'], /unknown corruption "smoke"; known: /],
    ];
    for (const [args, re] of cases) {
      expect(await run(...args), args.join(' ')).toBe(1);
      expect(err.join('\n'), args.join(' ')).toMatch(re);
    }
  });
});

describe('help', () => {
  it("`<command> --help` prints that command's part of it, whatever else is on the line", async () => {
    // Every command, as the unknown-command error lists them.
    await run('nope');
    const commands = /commands: ([^(]+) \(/
      .exec(err[0])![1]
      .split(', ')
      .filter((c) => c !== 'help');
    expect(commands).toContain('bench');
    for (const c of commands) {
      for (const flag of ['--help', '-h']) {
        expect(await run(c, '--models', 'resnet51', flag), `${c} ${flag}`).toBe(0);
        expect(err, `${c} ${flag}`).toEqual([]);
        const lines = out.join('\n').split('\n');
        expect(lines[0], `${c} ${flag}`).toMatch(new RegExp(`^  ${c} `));
        // Only this command's lines: every one after the first is indented under it.
        for (const l of lines.slice(1)) expect(l, `${c} ${flag}`).toMatch(/^ {3}/);
      }
    }
  });

  it('`bench --help` gives each option a line of its own', async () => {
    expect(await run('bench', '--help')).toBe(0);
    const text = out.join('\n');
    const options =
      'models preprocess batch size iters warmup quick peers kernels tuning tune out train lr records sizes dir';
    for (const o of options.split(' ')) expect(text).toMatch(new RegExp(`^ +--${o} +\\S`, 'm'));
  });
});

describe('a quiet terminal', () => {
  // The CLI as bin/cnnlab.mjs runs it (bundled, in a process of its own: Dawn writes to the real
  // stderr), built apart from dist/ so a page another test serves from dist/web is never rewritten.
  const outDir = path.join('dist', `test-args-${process.pid}`);
  beforeAll(async () => {
    const { build } = await import('esbuild');
    await build({
      stdin: {
        contents: "import { main } from './cli/main.ts'; process.exitCode = await main(process.argv.slice(2));",
        resolveDir: process.cwd(),
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'es2022',
      packages: 'external',
      logLevel: 'warning',
      outfile: path.join(outDir, 'cli.mjs'),
    });
  }, 120_000);
  afterAll(() => rmSync(outDir, { recursive: true, force: true }));

  it('a run that starts Dawn prints nothing on stderr (no XDG_RUNTIME_DIR complaint)', () => {
    const env = { ...process.env };
    delete env.XDG_RUNTIME_DIR;
    const r = spawnSync(process.execPath, [path.join(outDir, 'cli.mjs'), 'info'], {
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/"runtime": "node"/);
    expect(r.stderr).not.toMatch(/XDG_RUNTIME_DIR/);
    expect(r.stderr).toBe('');
  }, 120_000);
});
