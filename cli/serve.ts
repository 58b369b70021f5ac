// A static file server for the page and the user's data, bound to 127.0.0.1 only (navigator.gpu
// needs a secure context, and localhost is one). It serves only the roots it is given; a path
// that escapes its root ('..', encoded variants, symlinks pointing out) is refused with 403.

import { createReadStream, promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.svg': 'image/svg+xml', '.onnx': 'application/octet-stream',
  '.safetensors': 'application/octet-stream', '.map': 'application/json',
};

export interface Served {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Resolve `urlPath` (still percent-encoded) under `root`, or null if it is not allowed. */
export async function resolveSafe(root: string, urlPath: string): Promise<string | null> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const parts = decoded.split('/').filter((p) => p.length > 0);
  if (parts.some((p) => p === '..' || p === '.')) return null;
  const realRoot = await fs.realpath(root);
  const candidate = path.join(realRoot, ...parts);
  let real: string;
  try {
    real = await fs.realpath(candidate);
  } catch {
    return candidate; // does not exist: the caller answers 404
  }
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return null;
  return real;
}

/**
 * Serve `mounts` (URL prefix → folder), e.g. { '/': 'dist/web', '/data/': '/home/me/images' }.
 * Longest prefix wins. Port 0 picks a free port.
 */
export async function serve(mounts: Record<string, string>, port = 0): Promise<Served> {
  const entries = Object.entries(mounts).sort((a, b) => b[0].length - a[0].length);
  const server = createServer(async (req, res) => {
    const fail = (code: number, msg: string) => {
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(msg);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed');
    const rawPath = (req.url ?? '/').split('?')[0];
    const mount = entries.find(([prefix]) => rawPath.startsWith(prefix));
    if (!mount) return fail(404, 'not found');
    let file = await resolveSafe(mount[1], rawPath.slice(mount[0].length));
    if (!file) return fail(403, 'forbidden');
    try {
      let st = await fs.stat(file);
      if (st.isDirectory()) {
        file = path.join(file, 'index.html');
        st = await fs.stat(file);
      }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
        'content-length': st.size,
        'cache-control': 'no-store',
        // Cross-origin isolation lets peers (ORT-web threads) use SharedArrayBuffer.
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      });
      if (req.method === 'HEAD') return res.end();
      createReadStream(file).pipe(res);
    } catch {
      fail(404, 'not found');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return {
    server,
    url: `http://localhost:${actual}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
