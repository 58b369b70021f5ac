// A static file server for the page and the user's data, bound to 127.0.0.1 only (navigator.gpu
// needs a secure context, and localhost is one). Its rules:
// - It serves only the mounts it is given: a folder under a prefix ending in '/', or one file
//   under one exact URL (the weights: never the folder around them).
// - Every file it serves, a folder's index.html included, is resolved with realpath and must lie
//   under its folder's real path; a path that escapes ('..', encoded variants, symlinks pointing
//   out) is refused with 403. Only regular files are served.
// - A request whose Host header is not the bound address (127.0.0.1:PORT or localhost:PORT) is
//   refused with 403, so a web page whose DNS name is rebound to 127.0.0.1 cannot read it.

import { createReadStream, promises as fs } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.onnx': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.map': 'application/json',
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

/** The URL under which the CLI mounts a weights file: one file, under its own (encoded) name. */
export const weightsUrl = (file: string) => `/weights/${encodeURIComponent(path.basename(file))}`;

const decode = (p: string) => {
  try {
    return decodeURIComponent(p);
  } catch {
    return null;
  }
};

/**
 * Serve `mounts`, e.g. { '/': 'dist/web', '/data/': '/home/me/images', '/weights/m.safetensors': '/x/m.safetensors' }.
 * A prefix ending in '/' mounts a folder (longest prefix wins); any other key mounts exactly one
 * file under exactly that URL (compared after percent-decoding), which must exist when serve()
 * starts. Port 0 picks a free port.
 */
export async function serve(mounts: Record<string, string>, port = 0): Promise<Served> {
  const entries = Object.entries(mounts)
    .filter(([prefix]) => prefix.endsWith('/'))
    .sort((a, b) => b[0].length - a[0].length);
  const files = new Map<string, string>();
  for (const [url, file] of Object.entries(mounts)) {
    if (url.endsWith('/')) continue;
    const key = decode(url);
    if (!url.startsWith('/') || key === null) throw new Error(`serve: mount "${url}" is not a URL path`);
    // The user named this file: a symlink to it (a model hub's cache) is followed once, here.
    const real = await fs.realpath(file);
    if (!(await fs.stat(real)).isFile()) throw new Error(`serve: ${file} (mounted at ${url}) is not a file`);
    files.set(key, real);
  }
  let hosts = new Set<string>();
  const server = createServer(async (req, res) => {
    const fail = (code: number, msg: string) => {
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(msg);
    };
    if (!hosts.has((req.headers.host ?? '').toLowerCase())) return fail(403, 'forbidden: unexpected Host header');
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed');
    const rawPath = (req.url ?? '/').split('?')[0];
    const decoded = decode(rawPath);
    let file: string | null | undefined = decoded === null ? undefined : files.get(decoded);
    if (file === undefined) {
      const mount = entries.find(([prefix]) => rawPath.startsWith(prefix));
      if (!mount) return fail(404, 'not found');
      const rest = rawPath.slice(mount[0].length);
      file = await resolveSafe(mount[1], rest);
      if (
        file &&
        (await fs.stat(file).then(
          (st) => st.isDirectory(),
          () => false,
        ))
      ) {
        // A folder's index.html goes through the same check: it may be a symlink pointing out.
        file = await resolveSafe(mount[1], `${rest.replace(/\/?$/, '/')}index.html`);
      }
    }
    if (!file) return fail(403, 'forbidden');
    try {
      const st = await fs.stat(file);
      if (!st.isFile()) return fail(404, 'not found');
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
  hosts = new Set([`127.0.0.1:${actual}`, `localhost:${actual}`]);
  return {
    server,
    url: `http://localhost:${actual}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
