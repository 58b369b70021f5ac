import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../cli/common.js';
import { type Served, serve, weightsUrl } from '../../cli/serve.js';
import { pageMounts } from '../../cli/serve-page.js';

let s: Served;
let dir: string;
let weights: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'cnnlab-serve-'));
  mkdirSync(path.join(dir, 'root/sub'), { recursive: true });
  mkdirSync(path.join(dir, 'data'));
  writeFileSync(path.join(dir, 'root/index.html'), '<p>hi</p>');
  writeFileSync(path.join(dir, 'root/sub/a b.json'), '{}');
  writeFileSync(path.join(dir, 'secret.txt'), 'secret');
  writeFileSync(path.join(dir, 'data/img.png'), 'png');
  symlinkSync(path.join(dir, 'secret.txt'), path.join(dir, 'root/link.txt'));
  symlinkSync(dir, path.join(dir, 'root/updir'));
  // A folder whose index.html is a symlink pointing out of the root.
  mkdirSync(path.join(dir, 'root/trap'));
  symlinkSync(path.join(dir, 'secret.txt'), path.join(dir, 'root/trap/index.html'));
  // Weights beside a file that must not be served; the weights reached through a symlink, as in a model hub's cache.
  mkdirSync(path.join(dir, 'models/blobs'), { recursive: true });
  writeFileSync(path.join(dir, 'models/blobs/sha'), 'weights');
  writeFileSync(path.join(dir, 'models/notes.txt'), 'private notes');
  symlinkSync(path.join(dir, 'models/blobs/sha'), path.join(dir, 'models/my model.safetensors'));
  weights = path.join(dir, 'models/my model.safetensors');
  s = await serve({ '/': path.join(dir, 'root'), '/data/': path.join(dir, 'data'), [weightsUrl(weights)]: weights });
});
afterAll(() => s.close());

const get = async (p: string, headers: Record<string, string> = {}) => {
  // fetch() normalises '..' in URLs; send the raw path with node:http instead.
  const http = await import('node:http');
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: new URL(s.url).port, path: p, headers }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
};

describe('serve', () => {
  it('binds to 127.0.0.1 only', () => {
    const addr = s.server.address();
    expect(typeof addr === 'object' && addr?.address).toBe('127.0.0.1');
  });

  it('serves files under its roots', async () => {
    expect(await get('/')).toMatchObject({ status: 200, body: '<p>hi</p>' });
    expect(await get('/sub/a%20b.json')).toMatchObject({ status: 200 });
    expect(await get('/data/img.png')).toMatchObject({ status: 200, body: 'png' });
    expect((await get('/nope.html')).status).toBe(404);
  });

  it('refuses paths that escape a root', async () => {
    for (const p of [
      '/../secret.txt',
      '/sub/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2E%2E%2Fsecret.txt',
      '/data/..%2fsecret.txt',
      '/data/%2e%2e/root/index.html',
      '/..%5csecret.txt',
      '/link.txt',
      '/updir/secret.txt',
      '/%c0%ae%c0%ae/secret.txt',
      '/a%00b',
    ]) {
      const r = await get(p);
      expect(r.status, p).toBe(403);
      expect(r.body).not.toBe('secret');
    }
  });

  it('refuses a folder whose index.html is a symlink pointing out', async () => {
    for (const p of ['/trap/', '/trap']) {
      const r = await get(p);
      expect(r.status, p).toBe(403);
      expect(r.body).not.toBe('secret');
    }
  });

  it('serves exactly the mounted weights file, not its folder', async () => {
    const url = weightsUrl(weights);
    expect(url).toBe('/weights/my%20model.safetensors');
    expect(await get(url)).toMatchObject({ status: 200, body: 'weights' });
    const others = ['/weights/notes.txt', '/weights/', '/weights/blobs/sha', `${url}/`, `${url}/x`, `${url}/..`];
    for (const p of others) {
      const r = await get(p);
      expect(r.status, p).toBeGreaterThanOrEqual(403);
      expect(r.body).not.toMatch(/weights|private/);
    }
  });

  it('refuses a mount of a folder under a file URL', async () => {
    await expect(serve({ '/weights/w.safetensors': dir })).rejects.toThrow(/not a file/);
  });

  it('answers only requests addressed to its own host and port (DNS rebinding)', async () => {
    const port = new URL(s.url).port;
    expect((await get('/', { host: `localhost:${port}` })).status).toBe(200);
    expect((await get('/', { host: `127.0.0.1:${port}` })).status).toBe(200);
    const forged = [
      `evil.example:${port}`,
      'evil.example',
      `localhost:${Number(port) + 1}`,
      'localhost',
      `127.0.0.1.nip.io:${port}`,
    ];
    for (const host of forged) {
      const r = await get('/', { host });
      expect(r.status, host).toBe(403);
      expect(r.body).not.toBe('<p>hi</p>');
    }
  });

  it('`npx cnnlab serve` mounts each built-in weights file, not the weights folder', () => {
    const weightMounts = Object.entries(pageMounts()).filter(([url]) => url.startsWith('/models/'));
    expect(weightMounts).toEqual([
      [
        '/models/weights/mobilenet_v2_synth.safetensors',
        path.join(REPO_ROOT, 'models/weights/mobilenet_v2_synth.safetensors'),
      ],
    ]);
  });
});
