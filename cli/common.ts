// What every command shares: where the repository and the built page are, the option parsers,
// and one way to run the page in headless Chromium (withPage). Command files import this; it
// imports no command file.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import { defaultOnnxPreprocess, OnnxNet, onnxModelDef, parsePreprocess } from '../models/onnx-import.js';
import { getModel, listModels, type ModelDef, registerModel } from '../models/registry.js';
import { launchChromium, openPage } from './chromium.js';
import { serve } from './serve.js';

/** The repository (or installed package) root: one level above cli/ in the sources and above dist/cli.mjs. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The built page: dist/web beside the CLI bundle (dist/cli.mjs), or from source (cli/*.ts in tests). */
export const WEB_ROOT =
  [new URL('./web/', import.meta.url), new URL('../dist/web/', import.meta.url)]
    .map((u) => fileURLToPath(u))
    .find((p) => existsSync(path.join(p, 'index.html'))) ?? fileURLToPath(new URL('../dist/web/', import.meta.url));

/** A file of an installed package: package exports hide these from resolve(), so look beside its main file. */
export const resolveDist = (pkg: string, file: string) =>
  path.join(path.dirname(createRequire(import.meta.url).resolve(pkg)), file);

/** Chart.js's UMD build, which the HTML reports inline. */
export const readChartJs = () => readFileSync(resolveDist('chart.js', 'chart.umd.js'), 'utf8');

/** 'a, b,,c' → ['a', 'b', 'c']. */
export const list = (v: string) =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/** `v` as an integer ≥ `min`, or an error naming the option and the value. */
export function int(name: string, v: string, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name} must be ${min === 1 ? 'a positive integer' : `an integer ≥ ${min}`}, got ${v}`);
  }
  return n;
}

/** `v` if it is one of `choices`, else an error naming the option, the value and the choices. */
export function oneOf<T extends string>(name: string, v: string | undefined, choices: readonly T[]): T {
  if (v === undefined || !(choices as readonly string[]).includes(v)) {
    const alts = choices.length === 2 ? `${choices[0]} or ${choices[1]}` : choices.join(', ');
    throw new Error(`--${name} must be ${alts}, got ${v}`);
  }
  return v as T;
}

/** '1-5', '1,3,5', '2' → severities. */
export function parseSeverities(v: string, name = 'severities'): number[] {
  const out = new Set<number>();
  for (const part of list(v)) {
    const m = /^(\d)(?:-(\d))?$/.exec(part);
    if (!m) throw new Error(`--${name}: "${part}" is not a severity (1-5) or a range like 1-5`);
    const a = Number(m[1]),
      b = Number(m[2] ?? m[1]);
    if (a < 1 || b > 5 || a > b) throw new Error(`--${name}: ${part} is outside 1-5`);
    for (let s = a; s <= b; s++) out.add(s);
  }
  return [...out].sort();
}

/** The environment parseShard reads (process.env by default; tests pass their own). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Gives a Kubernetes Indexed Job's shard count to `--shard auto` (set it to the Job's completions). */
export const SHARD_COUNT_VAR = 'CNNLAB_SHARD_COUNT';

/** A variable's value as an integer ≥ 0, or an error naming it. */
function envInt(env: Env, name: string): number {
  const v = env[name];
  if (v === undefined || !/^\d+$/.test(v.trim())) {
    throw new Error(`--shard auto: $${name} must be an integer ≥ 0, got "${v}"`);
  }
  return Number(v);
}

/**
 * The shard `--shard` names, 0-based (k of n, 0 ≤ k < n), or null without one:
 * - 'k/n' as given;
 * - 'env/n': k from $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job);
 * - 'auto' or 'auto/n': from the scheduler. In a Slurm job array, k = $SLURM_ARRAY_TASK_ID −
 *   $SLURM_ARRAY_TASK_MIN and n = $SLURM_ARRAY_TASK_COUNT (the array must be one contiguous range,
 *   e.g. --array=1-8 or --array=0-99%10); in a Kubernetes Indexed Job, k = $JOB_COMPLETION_INDEX
 *   and n is the '/n' part or $CNNLAB_SHARD_COUNT. An n given both ways must agree.
 * A pure function of its arguments: `env` is only read.
 */
export function parseShard(v: string | undefined, env: Env = process.env): { k: number; n: number } | null {
  if (!v) return null;
  const check = (k: number, n: number, what: string) => {
    if (!Number.isInteger(k) || !Number.isInteger(n) || n < 1 || k < 0 || k >= n) {
      throw new Error(`--shard ${what}: need 0 ≤ k < n, got k = ${k}, n = ${n}`);
    }
    return { k, n };
  };
  const auto = /^auto(?:\/(\d+))?$/.exec(v);
  if (auto) return check(...autoShard(auto[1] === undefined ? undefined : Number(auto[1]), env), v);
  const m = /^(\w+)\/(\d+)$/.exec(v);
  if (!m) throw new Error(`--shard must look like k/n (0-based k), env/n or auto[/n], got "${v}"`);
  if (m[1] === 'env' && env.JOB_COMPLETION_INDEX === undefined) {
    throw new Error('--shard env/n needs $JOB_COMPLETION_INDEX');
  }
  const k = m[1] === 'env' ? Number(env.JOB_COMPLETION_INDEX) : Number(m[1]);
  return check(k, Number(m[2]), v);
}

/** `--shard auto[/n]`: [k, n] from a Slurm job array or a Kubernetes Indexed Job; `given` is the '/n' part. */
function autoShard(given: number | undefined, env: Env): [number, number] {
  const slurm = env.SLURM_ARRAY_TASK_ID !== undefined;
  const k8s = env.JOB_COMPLETION_INDEX !== undefined;
  if (slurm && k8s) {
    throw new Error('--shard auto: both $SLURM_ARRAY_TASK_ID and $JOB_COMPLETION_INDEX are set; give --shard k/n');
  }
  const agree = (n: number, source: string) => {
    if (given !== undefined && given !== n) throw new Error(`--shard auto/${given}: ${source} says ${n} shards`);
    return n;
  };
  if (slurm) {
    const id = envInt(env, 'SLURM_ARRAY_TASK_ID');
    if (env.SLURM_ARRAY_TASK_COUNT === undefined) {
      throw new Error('--shard auto: $SLURM_ARRAY_TASK_ID is set but $SLURM_ARRAY_TASK_COUNT is not');
    }
    const count = envInt(env, 'SLURM_ARRAY_TASK_COUNT');
    const min = env.SLURM_ARRAY_TASK_MIN === undefined ? 0 : envInt(env, 'SLURM_ARRAY_TASK_MIN');
    const max = env.SLURM_ARRAY_TASK_MAX === undefined ? min + count - 1 : envInt(env, 'SLURM_ARRAY_TASK_MAX');
    if (max - min + 1 !== count) {
      throw new Error(
        `--shard auto: the Slurm array is not one contiguous range (tasks ${min}-${max}, ` +
          `but ${count} of them); submit it as --array=FIRST-LAST`,
      );
    }
    if (id < min || id > max) throw new Error(`--shard auto: $SLURM_ARRAY_TASK_ID ${id} is outside ${min}-${max}`);
    return [id - min, agree(count, `$SLURM_ARRAY_TASK_COUNT`)];
  }
  if (k8s) {
    const k = envInt(env, 'JOB_COMPLETION_INDEX');
    const fromEnv = env[SHARD_COUNT_VAR] === undefined ? undefined : envInt(env, SHARD_COUNT_VAR);
    if (fromEnv === undefined && given === undefined) {
      throw new Error(
        '--shard auto: $JOB_COMPLETION_INDEX is set, but not the shard count: give --shard auto/N ' +
          `or set $${SHARD_COUNT_VAR} to the Job's completions`,
      );
    }
    return [k, fromEnv === undefined ? given! : agree(fromEnv, `$${SHARD_COUNT_VAR}`)];
  }
  throw new Error(
    '--shard auto: no scheduler found: expected a Slurm job array ($SLURM_ARRAY_TASK_ID, ' +
      '$SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job ($JOB_COMPLETION_INDEX); give --shard k/n otherwise',
  );
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * parseArgs for a command, with the model names checked first: after the command, the model is
 * what a user reads first, so `infer --model resnet51 …` names resnet51 and the known models
 * before it complains about anything else (an unknown option included). `--model` holds one
 * name, `--models` a comma-separated list.
 */
export function parseCommand<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  // A command that takes models also takes --preprocess, for the ONNX files among them.
  const takesModels = 'model' in options || 'models' in options;
  const opts = (takesModels ? { ...options, preprocess: { type: 'string' } } : options) as O;
  const loose = parseArgs({ args: argv, options: opts, strict: false, allowPositionals: true }).values;
  const pre = typeof loose.preprocess === 'string' ? loose.preprocess : undefined;
  const resolve = (m: string) => (isOnnxPath(m) ? registerOnnxFile(m, pre) : getModel(m));
  if (typeof loose.model === 'string') resolve(loose.model);
  if (typeof loose.models === 'string') for (const m of list(loose.models)) resolve(m);
  if (pre !== undefined && ![loose.model, ...list(String(loose.models ?? ''))].some((m) => isOnnxPath(String(m))))
    throw new Error('--preprocess applies to ONNX models (--model FILE.onnx) only; built-in models carry their own');
  return parseArgs({ args: argv, options: opts, allowPositionals });
}

/** A `--model` value that names an ONNX file rather than a built-in model. */
export const isOnnxPath = (m: string): boolean => /\.onnx$/i.test(m);

/** JSON from inline text (starting with `{`) or a file; errors name where it came from. */
function readJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${where} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Parse an ONNX file and register it as a model under its path, so every command reads it like a
 * built-in name. Preprocessing: `preprocess` (inline JSON or a JSON file), else a sidecar
 * `<name>.json` beside `<name>.onnx`, else ImageNet defaults at the file's input size (fields
 * left out of either JSON keep those defaults; see docs/onnx-import.md).
 */
export function registerOnnxFile(file: string, preprocess?: string): ModelDef {
  if (!existsSync(file)) throw new Error(`--model ${file}: no such file`);
  const net = OnnxNet.parse(readFileSync(file), file);
  const base = defaultOnnxPreprocess(net.size ?? 224);
  const sidecar = file.replace(/\.onnx$/i, '.json');
  let p = base;
  if (preprocess !== undefined) {
    const inline = preprocess.trim().startsWith('{');
    if (!inline && !existsSync(preprocess))
      throw new Error(`--preprocess ${preprocess}: no such file (or give inline JSON)`);
    const where = inline ? '--preprocess' : `--preprocess ${preprocess}`;
    p = parsePreprocess(readJson(inline ? preprocess : readFileSync(preprocess, 'utf8'), where), base, where);
  } else if (existsSync(sidecar)) {
    p = parsePreprocess(readJson(readFileSync(sidecar, 'utf8'), sidecar), base, sidecar);
  }
  const def = onnxModelDef(file, net, p);
  registerModel(def);
  return def;
}

/** A page served from localhost in headless Chromium; close() shuts both down. */
export interface PageSession {
  page: Page;
  /** The server's origin, e.g. http://localhost:41234. */
  url: string;
  close(): Promise<void>;
}

/** A server and headless Chromium, on which pages are opened one at a time, each in a browser context of its own. */
export interface BrowserSession {
  /** The server's origin, e.g. http://localhost:41234. */
  url: string;
  /** A new page at '/' in a fresh browser context (no cache, storage or GPU device shared with any other page). */
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/**
 * Serve `mounts` (URL prefix → folder, e.g. { '/': WEB_ROOT, '/job/': dir }) on localhost and
 * start headless Chromium; pages open through newPage(), waiting for `window.cnnlab`, their
 * errors and `cnnlabLog` going to `log`. Whatever fails on the way, nothing is left running.
 */
export async function startBrowser(
  mounts: Record<string, string>,
  log: (s: string) => void = () => {},
): Promise<BrowserSession> {
  // ONNX models named on the command line: the page fetches and registers each under its path.
  const onnx = listModels()
    .filter((m) => m.family === 'onnx')
    .map((m, k) => ({ name: m.name, url: `/onnx-models/${k}/model.onnx`, preprocess: m.preprocess }));
  for (const m of onnx) mounts = { ...mounts, [m.url]: path.resolve(m.name) };
  const server = await serve(mounts);
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  const close = async () => {
    try {
      await browser?.close();
    } finally {
      await server.close();
    }
  };
  try {
    browser = await launchChromium();
  } catch (e) {
    await close();
    throw e;
  }
  const b = browser;
  const newPage = async () => {
    const page = await openPage(b, `${server.url}/`, log);
    for (const m of onnx) await page.evaluate((o) => window.cnnlab.registerOnnx(o), m);
    return page;
  };
  return { url: server.url, newPage, close };
}

/**
 * Serve `mounts` on localhost, start headless Chromium and open the page at '/' (see
 * startBrowser). Whatever fails on the way, nothing is left running.
 */
export async function startPage(
  mounts: Record<string, string>,
  log: (s: string) => void = () => {},
): Promise<PageSession> {
  const session = await startBrowser(mounts, log);
  try {
    return { page: await session.newPage(), url: session.url, close: session.close };
  } catch (e) {
    await session.close();
    throw e;
  }
}

/** Run `fn` on the page served with `mounts` (see startPage), then always close Chromium and the server. */
export async function withPage<T>(
  mounts: Record<string, string>,
  fn: (page: Page, url: string) => Promise<T>,
  log: (s: string) => void = (s) => console.log(s),
): Promise<T> {
  const session = await startPage(mounts, log);
  try {
    return await fn(session.page, session.url);
  } finally {
    await session.close();
  }
}

/** A --weights value that names a file: "builtin" is the model's shipped checkpoint, anything else a path. */
export function resolveWeights(def: ModelDef, w: string): string {
  if (w === 'builtin') {
    if (!def.builtinWeights) throw new Error(`${def.name} has no built-in weights; pass --weights FILE or random`);
    return path.join(REPO_ROOT, def.builtinWeights);
  }
  return w;
}
