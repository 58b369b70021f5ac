import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Served, serve } from '../../cli/serve.js';

let s: Served;
let dir: string;

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
  s = await serve({ '/': path.join(dir, 'root'), '/data/': path.join(dir, 'data') });
});
afterAll(() => s.close());

const get = async (p: string) => {
  // fetch() normalises '..' in URLs; send the raw path with node:http instead.
  const http = await import('node:http');
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: new URL(s.url).port, path: p }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
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
    for (const p of ['/../secret.txt', '/sub/../../secret.txt', '/%2e%2e/secret.txt', '/%2E%2E%2Fsecret.txt', '/data/..%2fsecret.txt',
      '/data/%2e%2e/root/index.html', '/..%5csecret.txt', '/link.txt', '/updir/secret.txt', '/%c0%ae%c0%ae/secret.txt', '/a%00b']) {
      const r = await get(p);
      expect(r.status, p).toBe(403);
      expect(r.body).not.toBe('secret');
    }
  });
});
