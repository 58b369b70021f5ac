// Weights by name from the Hugging Face Hub, the part that needs no I/O: parsing
// `hf:ORG/REPO[@REVISION][/FILE]`, the Hub's URL layout, what its response headers say about a
// file (size, SHA-256 or git blob SHA-1), and turning a timm `config.json` into one of our models
// with its preprocessing. The download and the cache are Node's (cli/hub.ts); this file stays
// importable by the page. Protocol and config fields: docs/hub.md.

import { getModel, listModels } from './registry.js';
import type { ModelDef, Preprocess } from './types.js';

/** The Hub's default address; HF_ENDPOINT replaces it (a mirror). */
export const HF_DEFAULT_ENDPOINT = 'https://huggingface.co';
export const HUB_PREFIX = 'hf:';
export const DEFAULT_WEIGHTS_FILE = 'model.safetensors';
export const CONFIG_FILE = 'config.json';
export const DEFAULT_REVISION = 'main';

/** One file of a model repository at a revision. */
export interface HubRef {
  /** 'ORG/REPO'. */
  repo: string;
  /** Branch, tag or commit; 'main' by default. */
  revision: string;
  /** Path inside the repository, '/'-separated. */
  file: string;
}

/** A `--weights` value that names a Hub repository. */
export const isHubSpec = (s: string) => s.startsWith(HUB_PREFIX);

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * `hf:ORG/REPO[@REVISION][/FILE]` → its parts. The revision is one path segment (a branch, a tag
 * or a commit hash); FILE may have folders and defaults to model.safetensors.
 */
export function parseHubSpec(spec: string): HubRef {
  const usage = 'expected hf:ORG/REPO[@REVISION][/FILE], e.g. hf:timm/resnet50.a1_in1k';
  if (!isHubSpec(spec)) throw new Error(`"${spec}" is not a Hub name: ${usage}`);
  const m = /^([^/@]+)\/([^/@]+)(?:@([^/]+))?(?:\/(.+))?$/.exec(spec.slice(HUB_PREFIX.length));
  if (!m) throw new Error(`"${spec}": ${usage}`);
  const [, org, name, revision, file] = m;
  for (const [what, v] of [
    ['organisation', org],
    ['repository', name],
  ] as const) {
    if (!NAME.test(v) || v.includes('..') || v.includes('--')) {
      throw new Error(`"${spec}": "${v}" is not a valid ${what} name (letters, digits, '.', '_', '-')`);
    }
  }
  if (revision !== undefined && !revision) throw new Error(`"${spec}": empty revision after '@'`);
  const path = file ?? DEFAULT_WEIGHTS_FILE;
  if (path.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`"${spec}": "${path}" is not a file path inside the repository`);
  }
  return { repo: `${org}/${name}`, revision: revision ?? DEFAULT_REVISION, file: path };
}

/** 'ORG/REPO@REV/FILE', for messages. */
export const formatHubRef = (r: HubRef) => `${r.repo}@${r.revision}/${r.file}`;

/** `{endpoint}/{repo}/resolve/{revision}/{file}`, each part URL-encoded as the Hub's clients do. */
export function hubUrl(endpoint: string, r: HubRef): string {
  const file = r.file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint.replace(/\/+$/, '')}/${r.repo}/resolve/${encodeURIComponent(r.revision)}/${file}`;
}

/** An ETag without the weak-validator prefix and the quotes: `W/"abc"` → `abc`. */
export function normalizeEtag(etag: string): string {
  return etag
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}

/** How a downloaded file is checked: the SHA-256 of its bytes (LFS) or git's blob SHA-1 (plain git files). */
export type HubDigest = { kind: 'sha256' | 'git-sha1'; hex: string };

/** What the Hub says about a file before it is downloaded. */
export interface HubFileMeta {
  /** Normalised ETag: the SHA-256 of an LFS file, the git blob SHA-1 of a plain one. */
  etag: string;
  size: number;
  /** The commit the revision points at (X-Repo-Commit), when the server sends it. */
  commit: string | null;
  digest: HubDigest;
}

/**
 * A file's metadata from the headers of the Hub's answer to HEAD on its resolve URL (the answer
 * itself for a plain git file; the redirect to the LFS storage for a large one): X-Linked-Etag and
 * X-Linked-Size for LFS files, else ETag and Content-Length; X-Repo-Commit for the commit.
 */
export function hubFileMeta(header: (name: string) => string | null, what: string): HubFileMeta {
  const rawEtag = header('x-linked-etag') ?? header('etag');
  if (!rawEtag) throw new Error(`${what}: the server sent no ETag or X-Linked-Etag, so the file cannot be verified`);
  const rawSize = header('x-linked-size') ?? header('content-length');
  const size = Number(rawSize);
  if (rawSize === null || !/^\d+$/.test(rawSize.trim()) || !Number.isSafeInteger(size)) {
    throw new Error(`${what}: the server sent no usable size (X-Linked-Size / Content-Length: ${rawSize})`);
  }
  const etag = normalizeEtag(rawEtag).toLowerCase();
  let digest: HubDigest;
  if (/^[0-9a-f]{64}$/.test(etag)) digest = { kind: 'sha256', hex: etag };
  else if (/^[0-9a-f]{40}$/.test(etag)) digest = { kind: 'git-sha1', hex: etag };
  else {
    throw new Error(
      `${what}: the ETag "${rawEtag}" is neither a SHA-256 (an LFS file) nor a git blob SHA-1, so the file cannot be verified`,
    );
  }
  const commit = header('x-repo-commit');
  return { etag, size, commit: commit ? commit.trim() : null, digest };
}

/** The subset of timm's pretrained_cfg we read. */
interface TimmPretrainedCfg {
  input_size?: unknown;
  interpolation?: unknown;
  crop_pct?: unknown;
  crop_mode?: unknown;
  mean?: unknown;
  std?: unknown;
  num_classes?: unknown;
}

/** A model repository's config.json turned into one of our models. */
export interface HubModel {
  /** The registered model with the config's preprocessing in place of the builder's. */
  def: ModelDef;
  /** timm's `architecture`. */
  architecture: string;
  /** num_classes from the config, checked against the checkpoint's head when it loads. */
  numClasses: number | null;
}

const triple = (v: unknown): v is [number, number, number] =>
  Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));

/**
 * The preprocessing timm's pretrained_cfg describes, over the builder's `base` for fields it
 * leaves out: input_size [3,S,S] → size, interpolation, crop_pct, crop_mode ('center' → resize
 * the short side to ⌊S / crop_pct⌋ and centre-crop; 'squash' → resize both sides to S), mean, std.
 */
export function preprocessFromTimm(cfg: TimmPretrainedCfg, base: Preprocess, what: string): Preprocess {
  const p: Preprocess = { ...base };
  if (cfg.input_size !== undefined) {
    const s = cfg.input_size;
    if (!triple(s) || s[0] !== 3 || s[1] !== s[2] || !Number.isInteger(s[1]) || s[1] < 1) {
      throw new Error(`${what}: input_size ${JSON.stringify(s)} is not [3, S, S] (cnnlab evaluates square RGB inputs)`);
    }
    p.size = s[1];
  }
  if (cfg.interpolation !== undefined) {
    if (cfg.interpolation !== 'bilinear' && cfg.interpolation !== 'bicubic') {
      throw new Error(`${what}: interpolation "${cfg.interpolation}" is not supported (bilinear or bicubic)`);
    }
    p.interpolation = cfg.interpolation;
  }
  if (cfg.crop_pct !== undefined) {
    const c = cfg.crop_pct;
    if (typeof c !== 'number' || !(c > 0 && c <= 1)) throw new Error(`${what}: crop_pct ${c} is not in (0, 1]`);
    p.cropPct = c;
  }
  if (cfg.crop_mode !== undefined) {
    if (cfg.crop_mode === 'center') p.resizeMode = 'short';
    else if (cfg.crop_mode === 'squash') p.resizeMode = 'squash';
    else throw new Error(`${what}: crop_mode "${cfg.crop_mode}" is not supported (center or squash)`);
  } else if (cfg.crop_pct !== undefined) {
    p.resizeMode = 'short'; // timm's default crop_mode
  }
  if (p.resizeMode === 'squash') p.cropPct = 1;
  for (const k of ['mean', 'std'] as const) {
    const v = cfg[k];
    if (v === undefined) continue;
    if (!triple(v)) throw new Error(`${what}: ${k} ${JSON.stringify(v)} is not three numbers`);
    if (k === 'std' && v.some((x) => x <= 0)) throw new Error(`${what}: std ${JSON.stringify(v)} has a value ≤ 0`);
    p[k] = [v[0], v[1], v[2]];
  }
  return p;
}

/** The error for an architecture we have no builder for: what we have, and the ONNX way in. */
export function unknownArchitectureMessage(architecture: string, what: string): string {
  return (
    `${what}: architecture "${architecture}" has no cnnlab builder. Supported: ${listModels()
      .map((m) => m.name)
      .join(', ')}. ` +
    'Export it to ONNX (e.g. torch.onnx.export of the timm model) and pass --model path/to/model.onnx instead.'
  );
}

/**
 * A timm config.json (`architecture`, `num_classes`, `pretrained_cfg` with the preprocessing;
 * older files keep it under `default_cfg` or at the top level) → our model. The architecture must
 * be one of our registered names; timm's ResNets, ViTs and BiT ResNet-v2s use the same names and
 * checkpoint keys as our builders. `model` (from --model) stands in for a missing architecture
 * and must agree with a present one.
 */
export function modelFromHubConfig(config: unknown, what: string, model?: string): HubModel {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new Error(`${what}: config.json is not a JSON object`);
  }
  const c = config as Record<string, unknown>;
  const architecture = c.architecture ?? model;
  if (typeof architecture !== 'string' || !architecture) {
    throw new Error(
      `${what}: config.json has no "architecture" (is it a timm model repository?); ` +
        'give the model with --model NAME, or export it to ONNX and pass --model path/to/model.onnx',
    );
  }
  if (model !== undefined && model !== architecture) {
    throw new Error(`${what}: --model ${model}, but its config.json says the architecture is "${architecture}"`);
  }
  if (!listModels().some((m) => m.name === architecture)) {
    throw new Error(unknownArchitectureMessage(architecture, what));
  }
  const args = c.model_args;
  if (args !== undefined && (typeof args !== 'object' || args === null || Object.keys(args).length > 0)) {
    throw new Error(
      `${what}: config.json changes "${architecture}" through model_args ${JSON.stringify(args)}, which our builder does not take; ` +
        'export it to ONNX and pass --model path/to/model.onnx',
    );
  }
  const nested = c.pretrained_cfg ?? c.default_cfg;
  const cfg = (typeof nested === 'object' && nested !== null ? nested : c) as TimmPretrainedCfg;
  const def = getModel(architecture);
  const preprocess = preprocessFromTimm(cfg, def.preprocess, `${what} (config.json)`);
  const n = c.num_classes ?? cfg.num_classes;
  if (n !== undefined && (typeof n !== 'number' || !Number.isInteger(n) || n < 1)) {
    throw new Error(
      `${what}: num_classes ${JSON.stringify(n)} is not a positive integer (cnnlab needs the classifier head)`,
    );
  }
  return { def: { ...def, preprocess }, architecture, numClasses: n ?? null };
}
