// Content keys for runs, shards, merges and feature caches (Node): the weights by the SHA-256 of
// their file, an image folder by a hash over its images' sorted relative paths and sizes, so two
// different files called model.safetensors never resume, merge or share cached features, and the
// same file under another path or on another machine does.

import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { scanImageFolder } from './data.js';

/** SHA-256 (hex) of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The content key of seeded random weights. */
export const randomWeightsKey = (model: string, seed: number) => `random:${model}:seed=${seed}`;

export interface FolderKey {
  /** 'files-sha256:<hex>': SHA-256 over '<relative path>\t<size>\n' of every image, sorted by path. */
  key: string;
  images: number;
  bytes: number;
  /** How the class folders are labelled (eval/data.ts): 'imagenet-synsets', 'sorted' or 'map'. */
  labels: string;
}

/** The content key of an ImageFolder (the images eval/data.ts's scan finds). */
export async function folderKey(dir: string): Promise<FolderKey> {
  const ds = await scanImageFolder(dir);
  const rel = ds.items.map((it) => it.path).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const sizes = new Float64Array(rel.length);
  // Bounded concurrency: a 50,000-image folder is 50,000 stats.
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < rel.length) {
        const i = next++;
        sizes[i] = (await fs.stat(path.join(ds.root, rel[i]))).size;
      }
    }),
  );
  const h = createHash('sha256');
  let bytes = 0;
  rel.forEach((p, i) => {
    h.update(`${p}\t${sizes[i]}\n`);
    bytes += sizes[i];
  });
  return { key: `files-sha256:${h.digest('hex')}`, images: rel.length, bytes, labels: ds.labelSource };
}

/** The content-key fields of a robustness run's settings (RunSettings). */
export async function runProvenance(o: { weightsPath: string | null; data: string | null; perClass: number }): Promise<{
  weights_sha256: string | null;
  weights_path: string | null;
  data_key: string;
  labels: string;
}> {
  const folder = o.data ? await folderKey(o.data) : null;
  return {
    weights_sha256: o.weightsPath ? await sha256File(o.weightsPath) : null,
    weights_path: o.weightsPath ? path.resolve(o.weightsPath) : null,
    data_key: folder ? folder.key : `synthetic:test:per-class=${o.perClass}`,
    labels: folder ? folder.labels : 'synthetic',
  };
}
