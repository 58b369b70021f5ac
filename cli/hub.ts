// `--weights hf:ORG/REPO[@REVISION][/FILE]` in Node: the download from the Hub (or the mirror in
// HF_ENDPOINT) into a partial file that a rerun resumes with a Range request, the check of the
// size and hash the Hub reports (hashed while streaming, never buffered whole), and the cache
// under ~/.cache/cnnlab/hub. Parsing, headers and the config mapping are models/hub.ts; the
// protocol, the cache layout and the variables are in docs/hub.md.

import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { openSafetensorsPath } from '../engine/safetensors.js';
import {
  CONFIG_FILE,
  formatHubRef,
  HF_DEFAULT_ENDPOINT,
  type HubFileMeta,
  type HubModel,
  type HubRef,
  hubFileMeta,
  hubUrl,
  isHubSpec,
  modelFromHubConfig,
  parseHubSpec,
} from '../models/hub.js';

/** Where and how the Hub is reached, from the environment (docs/hub.md). */
export interface HubSettings {
  endpoint: string;
  /** HF_HUB_OFFLINE: the cache only, no request. */
  offline: boolean;
  /** HF_TOKEN, sent as `Authorization: Bearer`. */
  token: string | undefined;
  /** The hub folder of cnnlab's cache: $CNNLAB_CACHE/hub, else $XDG_CACHE_HOME/cnnlab/hub, else ~/.cache/cnnlab/hub. */
  cacheDir: string;
}

/** True as the Hub's own clients read a boolean variable: 1, true, yes or on, in any case. */
const truthy = (v: string | undefined) => ['1', 'TRUE', 'YES', 'ON'].includes((v ?? '').trim().toUpperCase());

export function hubSettings(env: Readonly<Record<string, string | undefined>> = process.env): HubSettings {
  const cacheRoot = env.CNNLAB_CACHE || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'cnnlab');
  return {
    endpoint: (env.HF_ENDPOINT || HF_DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    offline: truthy(env.HF_HUB_OFFLINE),
    token: env.HF_TOKEN || undefined,
    cacheDir: path.join(cacheRoot, 'hub'),
  };
}

/** Bytes so far and the file's size, during a download. */
export type ProgressFn = (done: number, total: number) => void;

export interface HubFetchOptions {
  settings?: HubSettings;
  /** A callback, or false for none; default a progress bar on stderr. */
  progress?: ProgressFn | false;
}

/** A revision that is itself a full commit hash needs no ref to find its snapshot. */
const isCommit = (rev: string) => /^[0-9a-f]{40}$/.test(rev);

/** The folders of one repository in the cache (the Hub's own clients use the same shape). */
function repoPaths(s: HubSettings, r: HubRef) {
  const root = path.join(s.cacheDir, `models--${r.repo.replace('/', '--')}`);
  const snapshot = (commit: string) => path.join(root, 'snapshots', encodeURIComponent(commit), ...r.file.split('/'));
  return {
    root,
    ref: path.join(root, 'refs', encodeURIComponent(r.revision)),
    blob: (etag: string) => path.join(root, 'blobs', etag),
    snapshot,
  };
}

/** A verified local copy of a Hub file and the commit it came from. */
export interface HubLocalFile {
  file: string;
  commit: string;
}

/** The cached file for `r`, or null: a ref (revision → commit) and a snapshot file are written only after a verified download. */
async function cachedFile(s: HubSettings, r: HubRef): Promise<HubLocalFile | null> {
  const p = repoPaths(s, r);
  let commit = r.revision;
  if (!isCommit(r.revision)) {
    try {
      commit = (await fs.readFile(p.ref, 'utf8')).trim();
    } catch {
      return null;
    }
  }
  const file = p.snapshot(commit);
  return existsSync(file) ? { file, commit } : null;
}

function authHeaders(s: HubSettings, url: string): Record<string, string> {
  // The token goes to the endpoint only, never to the storage a redirect points at.
  const h: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'cnnlab' };
  if (s.token && new URL(url).origin === new URL(s.endpoint).origin) h.authorization = `Bearer ${s.token}`;
  return h;
}

async function request(url: string, init: RequestInit, what: string): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
    throw new Error(
      `${what}: cannot reach ${new URL(url).origin}${cause}. Set HF_ENDPOINT to a reachable mirror, ` +
        'or HF_HUB_OFFLINE=1 to use only what is cached',
    );
  }
}

/** An HTTP error from the Hub, said in words (the Hub names the fault in X-Error-Code). */
function httpError(res: Response, what: string, s: HubSettings): Error {
  const code = res.headers.get('x-error-code');
  const hint =
    res.status === 401 || res.status === 403
      ? s.token
        ? ' (HF_TOKEN is set but not allowed: is the repository gated, and have you accepted its terms?)'
        : ' (a private or gated repository: set HF_TOKEN)'
      : res.status === 404
        ? ' (check the repository name, the revision and the file)'
        : '';
  return new Error(`${what}: HTTP ${res.status} ${res.statusText}${code ? ` [${code}]` : ''}${hint}`);
}

/**
 * HEAD on the resolve URL, following only relative redirects (a renamed repository), as the Hub's
 * clients do; an absolute one points at the LFS storage, and its own headers carry the metadata.
 */
async function headFile(s: HubSettings, r: HubRef): Promise<HubFileMeta> {
  const what = `hf:${formatHubRef(r)}`;
  let url = hubUrl(s.endpoint, r);
  for (let hops = 0; hops < 5; hops++) {
    const res = await request(url, { method: 'HEAD', redirect: 'manual', headers: authHeaders(s, url) }, what);
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc && !/^[a-z][a-z0-9+.-]*:/i.test(loc)) {
      url = new URL(loc, url).href;
      continue;
    }
    if (res.status >= 400) throw httpError(res, what, s);
    return hubFileMeta((n) => res.headers.get(n), what);
  }
  throw new Error(`${what}: more than 5 redirects from ${s.endpoint}`);
}

/** GET, following redirects by hand so that the token goes to the endpoint only, never to the storage. */
async function getFollowing(s: HubSettings, url: string, extra: Record<string, string>, what: string) {
  for (let hops = 0; hops < 5; hops++) {
    const res = await request(url, { redirect: 'manual', headers: { ...authHeaders(s, url), ...extra } }, what);
    const loc = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !loc) return res;
    await res.body?.cancel();
    url = new URL(loc, url).href;
  }
  throw new Error(`${what}: more than 5 redirects from ${s.endpoint}`);
}

/** Feed a file's bytes to a hash (to resume hashing where a partial download stopped). */
async function hashFile(h: Hash, file: string): Promise<void> {
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
}

function newHash(meta: HubFileMeta): Hash {
  if (meta.digest.kind === 'sha256') return createHash('sha256');
  const h = createHash('sha1'); // git's blob id: sha1("blob <size>\0" + bytes)
  h.update(`blob ${meta.size}\0`);
  return h;
}

/** Thrown when a download stops part-way; the partial file stays for the next run to resume. */
export class HubDownloadInterrupted extends Error {
  override name = 'HubDownloadInterrupted';
}

/**
 * Download `r` into `partial` (appending from its current size with a Range request), checking the
 * size and the hash the Hub reported; on success the partial becomes `blob`. A wrong size or hash
 * removes the partial (resuming bad bytes would fail again); an interrupted transfer keeps it.
 */
async function download(s: HubSettings, r: HubRef, meta: HubFileMeta, blob: string, progress: ProgressFn | null) {
  const what = `hf:${formatHubRef(r)}`;
  const partial = `${blob}.incomplete`;
  await fs.mkdir(path.dirname(blob), { recursive: true });
  let have = existsSync(partial) ? (await fs.stat(partial)).size : 0;
  if (have > meta.size) {
    await fs.rm(partial, { force: true });
    have = 0;
  }
  const range: Record<string, string> = have > 0 && have < meta.size ? { range: `bytes=${have}-` } : {};
  const fail = async (msg: string): Promise<never> => {
    await fs.rm(partial, { force: true });
    throw new Error(`${what}: ${msg}; the partial download was removed, run again to download it afresh`);
  };
  const hash = newHash(meta);
  let written = have;
  if (have < meta.size) {
    const res = await getFollowing(s, hubUrl(s.endpoint, r), range, what);
    if (res.status === 416) return fail(`the server refused the range from byte ${have} of ${meta.size}`);
    if (res.status >= 400) throw httpError(res, what, s);
    if (res.status !== 206) written = 0; // the server sent the whole file: start over
    if (!res.body) throw new HubDownloadInterrupted(`${what}: the response has no body; run again`);
    if (written > 0) await hashFile(hash, partial);
    const fh = await fs.open(partial, written > 0 ? 'a' : 'w');
    progress?.(written, meta.size);
    let overflow = false;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (written + chunk.byteLength > meta.size) {
          overflow = true;
          break;
        }
        await fh.write(chunk);
        hash.update(chunk);
        written += chunk.byteLength;
        progress?.(written, meta.size);
      }
    } catch (e) {
      throw new HubDownloadInterrupted(
        `${what}: the download stopped at byte ${written} of ${meta.size} (${e instanceof Error ? e.message : e}); ` +
          'run again to resume it',
      );
    } finally {
      await fh.close();
    }
    if (overflow) return fail(`the server sent more than the ${meta.size} bytes the Hub reported`);
  } else {
    await hashFile(hash, partial); // a previous run got every byte but stopped before the check
  }
  if (written !== meta.size) return fail(`got ${written} bytes, but the Hub reported ${meta.size}`);
  const hex = hash.digest('hex');
  if (hex !== meta.digest.hex) {
    return fail(
      `${meta.digest.kind === 'sha256' ? 'SHA-256' : 'git blob SHA-1'} ${hex} ≠ ${meta.digest.hex} the Hub reported`,
    );
  }
  await fs.rename(partial, blob);
}

/** A progress bar on stderr, for one file. */
function progressBar(label: string): { update: ProgressFn; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} {bar} {percentage}% | {value_mib}/{total_mib} MiB | ETA {eta_formatted}`,
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 10_000,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  return {
    update: (done, total) => {
      if (!started) bar.start(total, done, { value_mib: mib(done), total_mib: mib(total) });
      started = true;
      bar.update(done, { value_mib: mib(done), total_mib: mib(total) });
    },
    stop: () => started && bar.stop(),
  };
}

/**
 * The local path of a verified copy of `r`: from the cache without any request when it is there,
 * else downloaded (resuming a partial one), checked and cached. HF_HUB_OFFLINE=1 makes a file that
 * is not cached an error.
 */
export async function hubFile(r: HubRef, o: HubFetchOptions = {}): Promise<HubLocalFile> {
  const s = o.settings ?? hubSettings();
  const cached = await cachedFile(s, r);
  if (cached) return cached;
  if (s.offline) {
    throw new Error(
      `hf:${formatHubRef(r)} is not in the cache (${s.cacheDir}) and HF_HUB_OFFLINE is set: ` +
        'run once with the Hub reachable, or unset HF_HUB_OFFLINE',
    );
  }
  const meta = await headFile(s, r);
  const p = repoPaths(s, r);
  const blob = p.blob(meta.etag);
  if (!existsSync(blob)) {
    const bar = o.progress === undefined ? progressBar(r.file) : null;
    try {
      await download(s, r, meta, blob, bar ? bar.update : o.progress || null);
    } finally {
      bar?.stop();
    }
  }
  const commit = meta.commit ?? r.revision;
  const file = p.snapshot(commit);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.rm(file, { force: true });
  await fs.link(blob, file).catch(() => fs.copyFile(blob, file));
  if (!isCommit(r.revision) || commit !== r.revision) {
    await fs.mkdir(path.dirname(p.ref), { recursive: true });
    await fs.writeFile(p.ref, commit);
  }
  return { file, commit };
}

/** Weights and model from a Hub name: the checkpoint's local path and the model its config.json describes. */
export interface HubWeights extends HubModel {
  ref: HubRef;
  /** The commit the files came from. */
  commit: string;
  weightsPath: string;
  configPath: string;
  /** 'hf:ORG/REPO@COMMIT/FILE', what run records name as the weights. */
  weightsName: string;
}

/**
 * `hf:ORG/REPO[@REVISION][/FILE]` → the cached checkpoint and the model from the repository's
 * config.json (`model`, from --model, fills in a config without an architecture and must agree
 * with one that has it). The config comes first, so an architecture we cannot build fails before
 * the checkpoint downloads; its num_classes must match the checkpoint's head.
 */
export async function resolveHubWeights(spec: string, model?: string, o: HubFetchOptions = {}): Promise<HubWeights> {
  const ref = parseHubSpec(spec);
  const configRef = { ...ref, file: CONFIG_FILE };
  const cfg = await hubFile(configRef, o);
  let config: unknown;
  try {
    config = JSON.parse(await fs.readFile(cfg.file, 'utf8'));
  } catch (e) {
    throw new Error(`hf:${formatHubRef(configRef)}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  const what = `hf:${ref.repo}@${ref.revision}`;
  const m = modelFromHubConfig(config, what, model);
  const w = await hubFile(ref, o);
  const head = (await openSafetensorsPath(w.file)).tensors.get(m.def.headWeight);
  if (head && m.numClasses !== null && head.shape[0] !== m.numClasses) {
    throw new Error(
      `${what}: config.json says num_classes ${m.numClasses}, but ${ref.file}'s ${m.def.headWeight} has ${head.shape[0]} rows`,
    );
  }
  return {
    ...m,
    ref,
    commit: w.commit,
    weightsPath: w.file,
    configPath: cfg.file,
    weightsName: `hf:${ref.repo}@${w.commit}/${ref.file}`,
  };
}

/**
 * `--weights` of infer, robustness and transfer when it names the Hub (else null): the model and
 * its preprocessing come from the repository's config.json, and `--model` may be left out.
 */
export async function hubWeightsOption(
  weights: string | undefined,
  model: string | undefined,
  o: HubFetchOptions = {},
): Promise<HubWeights | null> {
  if (!weights || !isHubSpec(weights)) return null;
  const hub = await resolveHubWeights(weights, model, o);
  const p = hub.def.preprocess;
  console.log(
    `${hub.weightsName}: ${hub.architecture}, ${p.size}×${p.size}, ${p.interpolation}, crop_pct ${p.cropPct}, ` +
      `mean ${p.mean.join('/')}, std ${p.std.join('/')} (${hub.weightsPath})`,
  );
  return hub;
}
