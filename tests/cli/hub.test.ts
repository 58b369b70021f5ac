// `--weights hf:…` against a local server on 127.0.0.1 that answers as the Hub does (docs/hub.md):
// resolve URLs, HEAD with X-Linked-Etag / X-Linked-Size on a redirect to LFS storage for the
// checkpoint, plain ETag (git blob SHA-1) for config.json, Range requests. Faults are injected per
// test: a connection cut mid-body, a wrong hash, a wrong size.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type HubSettings, hubFile, hubSettings, resolveHubWeights } from '../../cli/hub.js';
import { main } from '../../cli/main.js';
import { decodeNpy, encodeNpy } from '../../engine/npy.js';
import { runReference } from '../../engine/graph.js';
import { bufferSource, encodeSafetensors, openSafetensors } from '../../engine/safetensors.js';
import { loadModel, randomCheckpoint } from '../../models/registry.js';
import { expectClose, rand } from '../helpers.js';

interface RepoFile {
  body: Buffer;
  /** LFS: HEAD answers 302 to the storage with X-Linked-*; else 200 with the git blob SHA-1 as ETag. */
  lfs: boolean;
}
interface Fault {
  /** Send this many bytes of the body, then cut the connection (once). */
  cutAfter?: number;
  /** Report this SHA-256 instead of the real one. */
  sha256?: string;
  /** Report this size instead of the real one. */
  size?: number;
  /** Answer Range requests with the whole file (200), as a server without range support does. */
  ignoreRange?: boolean;
}
interface Req {
  method: string;
  url: string;
  range?: string;
  auth?: string;
}

const COMMIT = 'c0ffee0000000000000000000000000000000001';
const COMMIT_V2 = 'c0ffee0000000000000000000000000000000002';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

/** repo@commit/file → file; refs name commits. */
const files = new Map<string, RepoFile>();
const refs = new Map<string, string>(); // 'repo@rev' → commit
const faults = new Map<string, Fault>(); // 'repo/file' → fault
const requests: Req[] = [];
let server: http.Server;
let storageServer: http.Server;
let endpoint: string;
/** Where LFS redirects point: another origin, as the Hub's CDN is. */
let storage: string;
let dir: string;
let cacheN = 0;

function put(repo: string, commit: string, file: string, body: Buffer | string, lfs = file.endsWith('.safetensors')) {
  files.set(`${repo}@${commit}/${file}`, { body: Buffer.from(body), lfs });
}

function handler(req: http.IncomingMessage, res: http.ServerResponse) {
  const url = new URL(req.url!, endpoint);
  requests.push({ method: req.method!, url: url.pathname, range: req.headers.range, auth: req.headers.authorization });
  const send = (f: RepoFile, key: string) => {
    const fault = faults.get(key) ?? {};
    const m = fault.ignoreRange ? null : /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    if (start >= f.body.length) {
      res.writeHead(416).end();
      return;
    }
    const body = f.body.subarray(start);
    res.writeHead(m ? 206 : 200, {
      'content-length': body.length,
      'accept-ranges': 'bytes',
      ...(m ? { 'content-range': `bytes ${start}-${f.body.length - 1}/${f.body.length}` } : {}),
    });
    if (req.method === 'HEAD') return void res.end();
    if (fault.cutAfter !== undefined) {
      const n = fault.cutAfter;
      delete fault.cutAfter;
      // Give the client time to take the bytes in before the connection drops (a stream that
      // errors discards what its reader has not read yet).
      res.write(body.subarray(0, n), () => setTimeout(() => res.socket?.destroy(), 300));
      return;
    }
    res.end(body);
  };
  const lfs = /^\/lfs\/(.+)$/.exec(url.pathname);
  if (lfs) {
    const key = decodeURIComponent(lfs[1]); // repo@commit/file
    const f = files.get(key);
    if (!f) return void res.writeHead(404).end();
    const at = key.indexOf('@');
    return send(f, `${key.slice(0, at)}/${key.slice(key.indexOf('/', at) + 1)}`);
  }
  const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
  if (!m) return void res.writeHead(404, { 'x-error-code': 'RepoNotFound' }).end();
  const [, repo, revEnc, fileEnc] = m;
  const rev = decodeURIComponent(revEnc);
  const file = fileEnc.split('/').map(decodeURIComponent).join('/');
  const commit = /^[0-9a-f]{40}$/.test(rev) ? rev : refs.get(`${repo}@${rev}`);
  if (!commit) return void res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end();
  const f = files.get(`${repo}@${commit}/${file}`);
  if (!f) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end();
  const fault = faults.get(`${repo}/${file}`) ?? {};
  if (f.lfs) {
    // As the Hub: 302 to the storage, with the file's size and SHA-256 on the redirect itself.
    const key = `${repo}@${commit}/${file}`;
    res
      .writeHead(302, {
        location: `${storage}/lfs/${encodeURIComponent(key)}`,
        'x-repo-commit': commit,
        'x-linked-etag': `"${fault.sha256 ?? sha256(f.body)}"`,
        'x-linked-size': String(fault.size ?? f.body.length),
        etag: '"0000000000000000000000000000000000000000"',
      })
      .end();
    return;
  }
  res.setHeader('x-repo-commit', commit);
  res.setHeader('etag', `"${gitSha1(f.body)}"`);
  send(f, `${repo}/${file}`);
}

/** Settings for a fresh, empty cache (or `cache` to share one). */
function settings(o: Partial<HubSettings> = {}): HubSettings {
  return { endpoint, offline: false, token: undefined, cacheDir: path.join(dir, `cache-${cacheN++}`), ...o };
}

const timmConfig = (architecture: string, pretrained: Record<string, unknown> = {}) =>
  JSON.stringify({
    architecture,
    num_classes: 10,
    num_features: 1280,
    pretrained_cfg: {
      tag: 'test',
      input_size: [3, 96, 96],
      interpolation: 'bicubic',
      crop_pct: 0.9,
      crop_mode: 'center',
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
      num_classes: 10,
      ...pretrained,
    },
  });

let weights: Buffer;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'cnnlab-hub-test-'));
  // A small built-in model's seeded checkpoint (timm/torchvision names), 10 classes.
  weights = Buffer.from(encodeSafetensors(randomCheckpoint('mobilenet_v2_synth', { seed: 7, classes: 10 })));
  put('test/synth', COMMIT, 'model.safetensors', weights);
  put('test/synth', COMMIT, 'config.json', timmConfig('mobilenet_v2_synth'));
  refs.set('test/synth@main', COMMIT);
  // A second revision with another checkpoint, and a file in a folder.
  const w2 = Buffer.from(encodeSafetensors(randomCheckpoint('mobilenet_v2_synth', { seed: 8, classes: 10 })));
  put('test/synth', COMMIT_V2, 'model.safetensors', w2);
  put('test/synth', COMMIT_V2, 'config.json', timmConfig('mobilenet_v2_synth'));
  put('test/synth', COMMIT_V2, 'sub/other.safetensors', weights);
  refs.set('test/synth@v2', COMMIT_V2);
  put('test/convnext', COMMIT, 'config.json', timmConfig('convnext_tiny'));
  put('test/convnext', COMMIT, 'model.safetensors', weights);
  refs.set('test/convnext@main', COMMIT);
  // Repositories whose checkpoint the tests break (same bytes, their own faults).
  for (const r of ['test/cut', 'test/norange', 'test/badhash', 'test/badsize', 'test/longsize']) {
    put(r, COMMIT, 'config.json', timmConfig('mobilenet_v2_synth'));
    put(r, COMMIT, 'model.safetensors', weights);
    refs.set(`${r}@main`, COMMIT);
  }
  server = http.createServer(handler);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  storageServer = http.createServer(handler);
  await new Promise<void>((ok) => storageServer.listen(0, '127.0.0.1', ok));
  storage = `http://127.0.0.1:${(storageServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((ok) => server?.close(ok));
  await new Promise((ok) => storageServer?.close(ok));
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  requests.length = 0;
  vi.restoreAllMocks();
});

/** Every file under `root`, relative. */
function listTree(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(root, path.join(d.parentPath, d.name)))
    .sort();
}

describe('hub settings', () => {
  it('reads HF_ENDPOINT, HF_HUB_OFFLINE, HF_TOKEN and the cache folders', () => {
    const s = hubSettings({ HF_ENDPOINT: 'http://mirror:8080/', HF_HUB_OFFLINE: 'yes', HF_TOKEN: 't', HOME: '/h' });
    expect(s).toMatchObject({ endpoint: 'http://mirror:8080', offline: true, token: 't' });
    expect(hubSettings({ XDG_CACHE_HOME: '/x' }).cacheDir).toBe('/x/cnnlab/hub');
    expect(hubSettings({ XDG_CACHE_HOME: '/x', CNNLAB_CACHE: '/c' }).cacheDir).toBe('/c/hub');
    expect(hubSettings({}).endpoint).toBe('https://huggingface.co');
    expect(hubSettings({ HF_HUB_OFFLINE: '0' }).offline).toBe(false);
  });
});

describe('hub download', () => {
  it('downloads, verifies and caches; a second call makes no request', async () => {
    const s = settings({ token: 'secret' });
    const seen: number[] = [];
    const hw = await resolveHubWeights('hf:test/synth', undefined, { settings: s, progress: (d) => seen.push(d) });
    expect(hw.architecture).toBe('mobilenet_v2_synth');
    expect(hw.def.name).toBe('mobilenet_v2_synth');
    expect(hw.def.preprocess).toEqual({
      size: 96,
      resizeMode: 'short',
      cropPct: 0.9,
      interpolation: 'bicubic',
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
    });
    expect(hw.numClasses).toBe(10);
    expect(hw.commit).toBe(COMMIT);
    expect(hw.weightsName).toBe(`hf:test/synth@${COMMIT}/model.safetensors`);
    expect(readFileSync(hw.weightsPath).equals(weights)).toBe(true);
    expect(seen.at(-1)).toBe(weights.length);
    // HEAD + GET for each of config.json and the checkpoint; the token went to the endpoint.
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'HEAD /test/synth/resolve/main/config.json',
      'GET /test/synth/resolve/main/config.json',
      'HEAD /test/synth/resolve/main/model.safetensors',
      'GET /test/synth/resolve/main/model.safetensors',
      `GET /lfs/${encodeURIComponent(`test/synth@${COMMIT}/model.safetensors`)}`,
    ]);
    // The token goes to the endpoint, not to the storage the redirect names.
    expect(requests.map((r) => r.auth)).toEqual([
      'Bearer secret',
      'Bearer secret',
      'Bearer secret',
      'Bearer secret',
      undefined,
    ]);
    expect(listTree(s.cacheDir)).toEqual(
      [
        `models--test--synth/blobs/${gitSha1(Buffer.from(timmConfig('mobilenet_v2_synth')))}`,
        `models--test--synth/blobs/${sha256(weights)}`,
        'models--test--synth/refs/main',
        `models--test--synth/snapshots/${COMMIT}/config.json`,
        `models--test--synth/snapshots/${COMMIT}/model.safetensors`,
      ].sort(),
    );
    requests.length = 0;
    const again = await resolveHubWeights('hf:test/synth', undefined, { settings: s, progress: false });
    expect(again.weightsPath).toBe(hw.weightsPath);
    expect(requests).toEqual([]);
  });

  it('resumes an interrupted download with a Range request', async () => {
    const s = settings();
    faults.set('test/cut/model.safetensors', { cutAfter: 50_000 });
    await expect(resolveHubWeights('hf:test/cut', undefined, { settings: s, progress: false })).rejects.toThrow(
      new RegExp(`stopped at byte \\d+ of ${weights.length}.*run again to resume`),
    );
    const partial = path.join(s.cacheDir, 'models--test--cut', 'blobs', `${sha256(weights)}.incomplete`);
    const kept = readFileSync(partial).length; // 50 000 unless the drop overtook the last chunk
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(50_000);
    requests.length = 0;
    const hw = await resolveHubWeights('hf:test/cut', undefined, { settings: s, progress: false });
    expect(readFileSync(hw.weightsPath).equals(weights)).toBe(true);
    expect(requests.filter((r) => r.method === 'GET' && r.url.startsWith('/lfs/')).map((r) => r.range)).toEqual([
      `bytes=${kept}-`,
    ]);
    expect(existsSync(partial)).toBe(false);
  });

  it('starts over when the server ignores the range, and checks a complete partial file without a GET', async () => {
    const blobs = (s: HubSettings) => path.join(s.cacheDir, 'models--test--norange', 'blobs');
    const s = settings();
    faults.set('test/norange/model.safetensors', { ignoreRange: true });
    mkdirSync(blobs(s), { recursive: true });
    writeFileSync(path.join(blobs(s), `${sha256(weights)}.incomplete`), Buffer.alloc(1000, 7)); // junk
    const hw = await resolveHubWeights('hf:test/norange', undefined, { settings: s, progress: false });
    expect(readFileSync(hw.weightsPath).equals(weights)).toBe(true);
    expect(requests.filter((r) => r.url.startsWith('/lfs/')).map((r) => r.range)).toEqual(['bytes=1000-']);
    // Every byte arrived before an earlier run stopped: only the check remains.
    const s2 = settings();
    mkdirSync(blobs(s2), { recursive: true });
    writeFileSync(path.join(blobs(s2), `${sha256(weights)}.incomplete`), weights);
    requests.length = 0;
    const hw2 = await resolveHubWeights('hf:test/norange', undefined, { settings: s2, progress: false });
    expect(readFileSync(hw2.weightsPath).equals(weights)).toBe(true);
    expect(requests.filter((r) => r.method === 'GET' && r.url.includes('model.safetensors'))).toEqual([]);
  });

  it('rejects a wrong SHA-256 and leaves nothing in the cache', async () => {
    const s = settings();
    faults.set('test/badhash/model.safetensors', { sha256: 'ab'.repeat(32) });
    await expect(resolveHubWeights('hf:test/badhash', undefined, { settings: s, progress: false })).rejects.toThrow(
      new RegExp(`SHA-256 ${sha256(weights)} ≠ ${'ab'.repeat(32)}.*partial download was removed`),
    );
    const tree = listTree(path.join(s.cacheDir, 'models--test--badhash'));
    expect(tree.filter((f) => !f.includes('config.json') && !f.includes('refs/'))).toEqual([
      `blobs/${gitSha1(Buffer.from(timmConfig('mobilenet_v2_synth')))}`,
    ]);
  });

  it('rejects a size that differs from the reported one, shorter or longer', async () => {
    faults.set('test/badsize/model.safetensors', { size: weights.length + 10 });
    await expect(
      resolveHubWeights('hf:test/badsize', undefined, { settings: settings(), progress: false }),
    ).rejects.toThrow(new RegExp(`got ${weights.length} bytes, but the Hub reported ${weights.length + 10}`));
    faults.set('test/longsize/model.safetensors', { size: weights.length - 10 });
    const s = settings();
    await expect(resolveHubWeights('hf:test/longsize', undefined, { settings: s, progress: false })).rejects.toThrow(
      new RegExp(`more than the ${weights.length - 10} bytes the Hub reported`),
    );
    expect(
      readdirSync(path.join(s.cacheDir, 'models--test--longsize', 'blobs')).some((f) => f.endsWith('.incomplete')),
    ).toBe(false);
  });

  it('offline: serves the cache without a request, and says clearly what is missing', async () => {
    const s = settings();
    await expect(
      hubFile(
        { repo: 'test/synth', revision: 'main', file: 'model.safetensors' },
        { settings: { ...s, offline: true } },
      ),
    ).rejects.toThrow(/hf:test\/synth@main\/model.safetensors is not in the cache .* HF_HUB_OFFLINE is set/);
    expect(requests).toEqual([]);
    await resolveHubWeights('hf:test/synth', undefined, { settings: s, progress: false });
    requests.length = 0;
    const hw = await resolveHubWeights('hf:test/synth', undefined, {
      settings: { ...s, offline: true },
      progress: false,
    });
    expect(readFileSync(hw.weightsPath).equals(weights)).toBe(true);
    expect(requests).toEqual([]);
    await expect(
      resolveHubWeights('hf:test/synth@v2', undefined, { settings: { ...s, offline: true }, progress: false }),
    ).rejects.toThrow(/test\/synth@v2\/config.json is not in the cache/);
  });

  it('names an unknown architecture, what we support, and the ONNX way in, before downloading weights', async () => {
    const err = resolveHubWeights('hf:test/convnext', undefined, { settings: settings(), progress: false });
    await expect(err).rejects.toThrow(/architecture "convnext_tiny" has no cnnlab builder/);
    await expect(err).rejects.toThrow(/Supported: .*vit_base_patch16_224.*resnet50/);
    await expect(err).rejects.toThrow(/--model path\/to\/model.onnx/);
    expect(requests.some((r) => r.url.includes('model.safetensors'))).toBe(false);
  });

  it('takes a revision and a file path, and --model must agree with the config', async () => {
    const s = settings();
    const v2 = await resolveHubWeights('hf:test/synth@v2', undefined, { settings: s, progress: false });
    expect(v2.commit).toBe(COMMIT_V2);
    expect(readFileSync(v2.weightsPath).equals(weights)).toBe(false);
    const sub = await resolveHubWeights('hf:test/synth@v2/sub/other.safetensors', 'mobilenet_v2_synth', {
      settings: s,
      progress: false,
    });
    expect(sub.weightsPath).toBe(
      path.join(s.cacheDir, 'models--test--synth', 'snapshots', COMMIT_V2, 'sub', 'other.safetensors'),
    );
    expect(readFileSync(sub.weightsPath).equals(weights)).toBe(true);
    // A commit hash as the revision is found in the cache without a ref.
    requests.length = 0;
    await resolveHubWeights(`hf:test/synth@${COMMIT_V2}`, undefined, { settings: s, progress: false });
    expect(requests).toEqual([]);
    await expect(resolveHubWeights('hf:test/synth', 'resnet50', { settings: s, progress: false })).rejects.toThrow(
      /--model resnet50, but its config.json says the architecture is "mobilenet_v2_synth"/,
    );
    await expect(resolveHubWeights('hf:test/synth@nope', undefined, { settings: s, progress: false })).rejects.toThrow(
      /HTTP 404.*\[RevisionNotFound\]/,
    );
    await expect(
      resolveHubWeights('hf:test/synth/missing.safetensors', undefined, { settings: s, progress: false }),
    ).rejects.toThrow(/HTTP 404.*\[EntryNotFound\]/);
  });
});

describe('infer, robustness and transfer with --weights hf:', () => {
  let out: string[] = [];
  let err: string[] = [];
  const env = { ...process.env };
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
  afterEach(() => {
    process.env = { ...env };
  });

  it('infer downloads through HF_ENDPOINT, takes the model from config.json, and matches the reference', async () => {
    process.env.HF_ENDPOINT = endpoint;
    process.env.CNNLAB_CACHE = path.join(dir, 'cli-cache');
    delete process.env.HF_HUB_OFFLINE;
    const x = path.join(dir, 'x.npy');
    writeFileSync(x, encodeNpy({ shape: [2, 3, 96, 96], data: rand(2 * 3 * 96 * 96, 3) }));
    const yHub = path.join(dir, 'y-hub.npy');
    expect(await run('infer', '--weights', 'hf:test/synth', '--input', x, '--output', yHub)).toBe(0);
    expect(out.join('\n')).toMatch(/hf:test\/synth@c0ffee0+1\/model.safetensors: mobilenet_v2_synth, 96×96, bicubic/);
    expect(out.join('\n')).toMatch(/logits \[2,10\]/);
    // The same checkpoint, opened from memory and run by the CPU reference.
    const m = await loadModel('mobilenet_v2_synth', {
      weights: await openSafetensors(bufferSource(weights, 'w.safetensors')),
      batch: 2,
      size: 96,
    });
    const ref = runReference(m.graph, { image: (await decodeNpy(readFileSync(x))).data }, [m.logits])[m.logits];
    expectClose(await decodeNpy(readFileSync(yHub)), ref, { atol: 1e-4, rtol: 1e-3 }, 'hub (GPU) vs reference');
    // Offline, from the same cache (what infer resolves before it builds anything).
    process.env.HF_HUB_OFFLINE = '1';
    requests.length = 0;
    const hub = await resolveHubWeights('hf:test/synth', undefined, { progress: false }); // settings from process.env
    expect(hub?.weightsPath).toMatch(/cli-cache\/hub\/models--test--synth\/snapshots\/c0ffee0+1\/model.safetensors$/);
    expect(requests).toEqual([]);
    expect(await run('infer', '--weights', 'hf:test/synth@v2', '--input', x)).toBe(1);
    expect(err.join('\n')).toMatch(/hf:test\/synth@v2\/config.json is not in the cache .* HF_HUB_OFFLINE is set/);
  }, 400_000);

  it('robustness evaluates with the config’s preprocessing and records the weights by commit', async () => {
    process.env.HF_ENDPOINT = endpoint;
    process.env.CNNLAB_CACHE = path.join(dir, 'cli-cache-rob');
    delete process.env.HF_HUB_OFFLINE;
    const runDir = path.join(dir, 'rob');
    const args = ['--corruptions', 'none', '--sweeps', 'none', '--resolutions', '96', '--limit', '4', '--batch', '4'];
    expect(
      await run('robustness', '--weights', 'hf:test/synth', ...args, '--runtime', 'node', '--out', runDir),
      err.join('\n'),
    ).toBe(0);
    const summary = JSON.parse(readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
    expect(summary.settings.model).toBe('mobilenet_v2_synth');
    expect(summary.settings.weights).toBe(`hf:test/synth@${COMMIT}/model.safetensors`);
    expect(summary.preprocessing).toMatchObject({
      size: 96,
      interpolation: 'bicubic',
      cropPct: 0.9,
      std: [0.25, 0.25, 0.25],
    });
    expect(Object.keys(summary.resolutions)).toEqual(['96']);
    // The config's preprocessing is part of the run: a merge summarises with it, not the builder's.
    const merged = path.join(dir, 'rob-merged');
    expect(await run('merge', runDir, '--out', merged), err.join('\n')).toBe(0);
    expect(JSON.parse(readFileSync(path.join(merged, 'summary.json'), 'utf8')).preprocessing).toEqual(
      summary.preprocessing,
    );
    // The page takes the same preprocessing: its records match Node's (it would otherwise run the
    // registered model's 112×112 squash, and name the condition res/96 instead of clean).
    const pageDir = path.join(dir, 'rob-page');
    expect(
      await run('robustness', '--weights', 'hf:test/synth', ...args, '--runtime', 'chrome', '--out', pageDir),
      err.join('\n'),
    ).toBe(0);
    const records = (d: string) =>
      readFileSync(path.join(d, 'results.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{') && l.includes('"cond"'))
        .map((l) => JSON.parse(l) as { cond: string; id: string; conf: number; top5: number[] })
        .sort((a, b) => a.id.localeCompare(b.id));
    const node = records(runDir),
      page = records(pageDir);
    expect(node.length).toBe(4);
    expect(page.map((r) => [r.cond, r.id, r.top5])).toEqual(node.map((r) => [r.cond, r.id, r.top5]));
    for (let i = 0; i < node.length; i++) expect(page[i].conf).toBeCloseTo(node[i].conf, 4);
  }, 600_000);

  it('transfer extracts features with the config’s preprocessing', async () => {
    process.env.HF_ENDPOINT = endpoint;
    process.env.CNNLAB_CACHE = path.join(dir, 'cli-cache-transfer');
    delete process.env.HF_HUB_OFFLINE;
    const out = path.join(dir, 'transfer');
    const args = ['--per-class', '2', '--shots', '1', '--seeds', '1', '--cache', path.join(dir, 'features')];
    expect(await run('transfer', '--weights', 'hf:test/synth', ...args, '--out', out), err.join('\n')).toBe(0);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.model).toBe('mobilenet_v2_synth');
    expect(summary.weights).toBe(`hf:test/synth@${COMMIT}/model.safetensors`);
    expect(summary.preprocessing).toMatchObject({ size: 96, interpolation: 'bicubic', cropPct: 0.9 });
    expect(summary.transfer.fewshot['1']).toBeDefined();
  }, 400_000);
});
