import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Dataset,
  batches,
  buildIndex,
  clearPreprocessPlans,
  datasetFromIndex,
  itemLocation,
  loadBatch,
  preprocessOnGpu,
  preprocessPlanCount,
  scanImageFolder,
  selectItems,
  stratifiedSample,
} from '../../eval/data.js';
import { decodeImageFile } from '../../eval/decode-node.js';
import { IMAGENET_SYNSETS, imagenetClassIndex } from '../../eval/imagenet-synsets.js';
import { imagePreprocessOp } from '../../kernels/image.js';
import type { RgbImage } from '../../models/preprocess.js';
import type { Preprocess } from '../../models/registry.js';
import { expectClose, rand, testDevice } from '../helpers.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'cnnlab-data-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A tiny image file whose pixels encode `seed`, in the format its extension names. */
async function writeImage(path: string, seed = 1, w = 4, h = 3): Promise<void> {
  const px = Buffer.from(rand(w * h * 3, seed, 0, 255).map(Math.round));
  const img = sharp(px, { raw: { width: w, height: h, channels: 3 } });
  const ext = path.split('.').pop()!.toLowerCase();
  const buf =
    ext === 'png'
      ? await img.png().toBuffer()
      : ext === 'webp'
        ? await img.webp({ lossless: true }).toBuffer()
        : await img.jpeg().toBuffer();
  await writeFile(path, buf);
}

/** Make `root` with the given files (relative paths; a trailing '/' makes an empty folder). */
async function tree(name: string, files: string[]): Promise<string> {
  const root = join(tmp, name);
  for (const f of files) {
    const p = join(root, f);
    if (f.endsWith('/')) {
      await mkdir(p, { recursive: true });
      continue;
    }
    await mkdir(join(p, '..'), { recursive: true });
    if (/\.(png|jpe?g|webp)$/i.test(f)) await writeImage(p, f.length);
    else await writeFile(p, 'not an image');
  }
  return root;
}

describe('ImageNet-1k synset table', () => {
  it('has the 1000 wnids in the standard (sorted) order', () => {
    expect(IMAGENET_SYNSETS.length).toBe(1000);
    expect(new Set(IMAGENET_SYNSETS).size).toBe(1000);
    expect(IMAGENET_SYNSETS.every((w) => /^n\d{8}$/.test(w))).toBe(true);
    expect([...IMAGENET_SYNSETS].sort()).toEqual([...IMAGENET_SYNSETS]);
    expect(IMAGENET_SYNSETS[0]).toBe('n01440764'); // tench
    expect(IMAGENET_SYNSETS[999]).toBe('n15075141'); // toilet tissue
    // Known indices: goldfish, golden retriever, tabby, both "crane"s, both "maillot"s, Granny Smith.
    expect([1, 207, 281, 134, 517, 638, 639, 948].map((i) => IMAGENET_SYNSETS[i])).toEqual([
      'n01443537',
      'n02099601',
      'n02123045',
      'n02012849',
      'n03126707',
      'n03710637',
      'n03710721',
      'n07742313',
    ]);
    expect(imagenetClassIndex('n02099601')).toBe(207);
    expect(imagenetClassIndex('n99999999')).toBeUndefined();
  });
});

describe('scanImageFolder', () => {
  it('labels ImageNet wnid folders by the ImageNet-1k index, finds nested files, skips the rest', async () => {
    const root = await tree('synsets', [
      'n15075141/b.png',
      'n15075141/a.JPEG',
      'n01440764/x/deep.webp',
      'n01440764/c.Jpg',
      'n02099601/z.png',
      'n02099601/notes.txt',
      'n02099601/.hidden.png',
      'README.md',
    ]);
    const ds = await scanImageFolder(root, { classes: 1000 });
    expect(ds.labelSource).toBe('imagenet-synsets');
    expect(ds.classes).toEqual(['n01440764', 'n02099601', 'n15075141']);
    expect(ds.items).toEqual([
      { path: 'n01440764/c.Jpg', label: 0, classFolder: 'n01440764' },
      { path: 'n01440764/x/deep.webp', label: 0, classFolder: 'n01440764' },
      { path: 'n02099601/z.png', label: 207, classFolder: 'n02099601' },
      { path: 'n15075141/a.JPEG', label: 999, classFolder: 'n15075141' },
      { path: 'n15075141/b.png', label: 999, classFolder: 'n15075141' },
    ]);
    // A head trained on these folders in sorted order.
    const sorted = await scanImageFolder(root, { labels: 'sorted', classes: 3 });
    expect(sorted.labelSource).toBe('sorted');
    expect(sorted.items.map((i) => i.label)).toEqual([0, 0, 1, 2, 2]);
    await expect(scanImageFolder(root, { classes: 10 })).rejects.toThrow(
      /mislabelled dataset: folder n02099601 maps to label 207 but the model has 10 classes \(1 more folder\(s\) too: n15075141\).*labels: 'sorted'/,
    );
  });

  it('sorts other folder names as Python does, or follows a label map', async () => {
    const root = await tree('named', ['dog/1.png', 'cat/1.png', 'cat/0.png', 'Zebra/1.png']);
    const ds = await scanImageFolder(root);
    expect(ds.labelSource).toBe('sorted');
    expect(ds.classes).toEqual(['Zebra', 'cat', 'dog']); // upper case sorts first, as sorted() does
    expect(ds.items.map((i) => [i.path, i.label])).toEqual([
      ['Zebra/1.png', 0],
      ['cat/0.png', 1],
      ['cat/1.png', 1],
      ['dog/1.png', 2],
    ]);

    const mapped = await scanImageFolder(root, { labelMap: { cat: 281, dog: 207, Zebra: 340 }, classes: 1000 });
    expect(mapped.labelSource).toBe('map');
    expect(mapped.items.map((i) => i.label)).toEqual([340, 281, 281, 207]);
    await expect(scanImageFolder(root, { labelMap: { cat: 1 } })).rejects.toThrow(
      /label map has no label for 2 class folder\(s\): Zebra, dog/,
    );
    await expect(scanImageFolder(root, { labelMap: { cat: 1, dog: -1, Zebra: 0.5 } })).rejects.toThrow(/Zebra, dog/);
    await expect(scanImageFolder(root, { classes: 2 })).rejects.toThrow(
      /mislabelled dataset: folder dog maps to label 2 but the model has 2 classes/,
    );
  });

  it('reports a missing folder, no class folders, and every class folder without images', async () => {
    await expect(scanImageFolder(join(tmp, 'nope'))).rejects.toThrow(/dataset folder .*nope does not exist/);
    const flat = await tree('flat', ['a.png', 'b.png']);
    await expect(scanImageFolder(flat)).rejects.toThrow(/has no class folders/);
    await expect(scanImageFolder(join(flat, 'a.png'))).rejects.toThrow(/is not a folder/);
    const empty = await tree('empty', ['a/1.png', 'b/', 'c/readme.txt', 'd/2.jpeg']);
    await expect(scanImageFolder(empty)).rejects.toThrow(
      /2 class folder\(s\) in .* have no images \(jpg, jpeg, png, webp\): b, c$/,
    );
  });
});

/** An in-memory dataset of n items over 3 classes (no files needed to batch). */
function fake(n: number): Dataset {
  const items = Array.from({ length: n }, (_, i) => ({
    path: `c${i % 3}/img ${String(i).padStart(3, '0')}.png`,
    label: i % 3,
  }));
  return datasetFromIndex({ classes: ['c0', 'c1', 'c2'], items }, { root: '/data' });
}

async function collect(ds: Dataset, o: Parameters<typeof batches>[1]) {
  const out: { id: string; index: number }[][] = [];
  for await (const b of batches(ds, o)) out.push(b.items.map(({ id, index }) => ({ id, index })));
  return out;
}

describe('batches', () => {
  it('shards 0/3, 1/3, 2/3 partition the dataset exactly (item i → shard i mod 3)', async () => {
    const ds = fake(20);
    const all = ds.items.map((i) => i.path);
    const shards = await Promise.all([0, 1, 2].map((k) => collect(ds, { batchSize: 4, shard: { k, n: 3 } })));
    const ids = shards.map((s) => s.flat().map((x) => x.id));
    expect(ids.map((s) => s.length)).toEqual([7, 7, 6]);
    expect(ids.flat().sort()).toEqual([...all].sort());
    shards.forEach((s, k) => s.flat().forEach(({ index }) => expect(index % 3).toBe(k)));
    expect(shards[0].map((b) => b.length)).toEqual([4, 3]);
  });

  it('applies limit before sharding, so shards of a limited run still partition the same N', async () => {
    const ds = fake(20);
    const ids = (
      await Promise.all([0, 1, 2].map((k) => collect(ds, { batchSize: 2, limit: 7, seed: 3, shard: { k, n: 3 } })))
    ).map((s) => s.flat().map((x) => x.id));
    expect(ids.map((s) => s.length)).toEqual([3, 2, 2]);
    expect(ids.flat().sort()).toEqual(
      selectItems(ds, { limit: 7, seed: 3 })
        .map((i) => i.id)
        .sort(),
    );
    expect((await collect(ds, { batchSize: 100, limit: 0, seed: 3 })).length).toBe(0);
  });

  it('limit samples stratified over classes with the seed: proportional, reproducible, seed-dependent', () => {
    // Class-folder order, unequal classes (as a scanned ImageFolder): 40, 30, 20, 10 items.
    const sizes = [40, 30, 20, 10];
    const items = sizes.flatMap((m, c) =>
      Array.from({ length: m }, (_, j) => ({ path: `c${c}/${String(j).padStart(3, '0')}.png`, label: c })),
    );
    const ds = datasetFromIndex({ classes: ['c0', 'c1', 'c2', 'c3'], items }, { root: '/data' });
    const count = (sel: { label: number }[]) => sizes.map((_, c) => sel.filter((i) => i.label === c).length);
    const a = selectItems(ds, { limit: 10, seed: 1 });
    expect(count(a)).toEqual([4, 3, 2, 1]); // exactly proportional
    expect(a.map((i) => i.index)).toEqual([...a.map((i) => i.index)].sort((x, y) => x - y)); // dataset order
    a.forEach((i) => expect(ds.items[i.index].path).toBe(i.id));
    expect(selectItems(ds, { limit: 10, seed: 1 })).toEqual(a);
    const b = selectItems(ds, { limit: 10, seed: 2 });
    expect(count(b)).toEqual([4, 3, 2, 1]);
    expect(b.map((i) => i.id)).not.toEqual(a.map((i) => i.id));
    // Not the first N of the first class (the old behaviour), and leftovers go to the largest remainders.
    expect(a.every((i) => i.label === 0)).toBe(false);
    const r = count(selectItems(ds, { limit: 7, seed: 5 })); // quotas 2.8, 2.1, 1.4, 0.7 → 3, 2, 1, 1
    expect(r).toEqual([3, 2, 1, 1]);
    // Within a class the sample spreads over the whole class, not its first files (seeds 0..19, class 0).
    const firstHalf = Array.from(
      { length: 20 },
      (_, s) => selectItems(ds, { limit: 50, seed: s }).filter((i) => i.label === 0 && i.index < 20).length,
    );
    expect(Math.min(...firstHalf)).toBeGreaterThan(4);
    expect(Math.max(...firstHalf)).toBeLessThan(16);
    expect(stratifiedSample([0, 0, 1], 5, 0)).toEqual([0, 1, 2]);
    expect(() => selectItems(ds, { limit: 3 })).toThrow(/seed/);
  });

  it('skips ids already done (resume) without moving items between shards', async () => {
    const ds = fake(20);
    const full = selectItems(ds, { shard: { k: 1, n: 3 } });
    const done = new Set(full.slice(0, 4).map((i) => i.id));
    const rest = (await collect(ds, { batchSize: 3, shard: { k: 1, n: 3 }, skip: done })).flat();
    expect(rest.map((r) => r.id)).toEqual(full.slice(4).map((i) => i.id));
    expect(rest.map((r) => r.index)).toEqual(full.slice(4).map((i) => i.index));
  });

  it('validates its options and says k is 0-based', async () => {
    const ds = fake(5);
    await expect(collect(ds, { batchSize: 2, shard: { k: 3, n: 3 } })).rejects.toThrow(/0-based.*0 ≤ k < n = 3/);
    await expect(collect(ds, { batchSize: 0 })).rejects.toThrow(/batchSize/);
    await expect(collect(ds, { batchSize: 1, limit: -1, seed: 0 })).rejects.toThrow(/limit/);
  });
});

describe('index for the browser', () => {
  it('round-trips through JSON and batches identically; URLs are encoded per segment', async () => {
    const root = await tree('indexed', ['b b/1.png', 'b b/2.png', 'a#/x.png', 'a#/y.png', 'a#/z.png']);
    const ds = await scanImageFolder(root);
    const web = datasetFromIndex(JSON.parse(JSON.stringify(buildIndex(ds))), { root: '/data/', classes: 2 });
    expect(web.items).toEqual(ds.items);
    expect(web.labelSource).toBe('sorted');
    const o = { shard: { k: 1, n: 2 }, limit: 4, seed: 0 };
    expect(selectItems(web, o).map((i) => [i.id, i.label, i.index])).toEqual(
      selectItems(ds, o).map((i) => [i.id, i.label, i.index]),
    );
    expect(itemLocation(web, 'b b/1.png')).toBe('/data/b%20b/1.png');
    expect(itemLocation(web, 'a#/x.png')).toBe('/data/a%23/x.png');
    expect(itemLocation(ds, 'b b/1.png')).toBe(`${root}/b b/1.png`);
    expect(() => datasetFromIndex({ classes: ['a'], items: [{ path: '../etc/passwd', label: 0 }] })).toThrow(
      /not a relative path/,
    );
    expect(() => datasetFromIndex({ classes: ['a'], items: [{ path: 'a/1.png', label: 5 }] }, { classes: 3 })).toThrow(
      /mislabelled/,
    );
  });
});

describe('loadBatch', () => {
  it('decodes in order and lists unreadable files instead of failing', async () => {
    const root = await tree('broken', ['a/1.png', 'a/2.jpg', 'b/3.webp']);
    await writeFile(join(root, 'a', 'garbage.jpg'), Buffer.from('this is not a JPEG at all'));
    const ds = await scanImageFolder(root);
    const [batch] = await collect(ds, { batchSize: 10 });
    expect(batch.length).toBe(4);
    const items = selectItems(ds);
    const loaded = await loadBatch(ds, items, decodeImageFile);
    expect(loaded.items.map((i) => i.id)).toEqual(['a/1.png', 'a/2.jpg', 'b/3.webp']);
    expect(loaded.images.map((im) => [im.width, im.height])).toEqual([
      [4, 3],
      [4, 3],
      [4, 3],
    ]);
    expect(loaded.unreadable.length).toBe(1);
    expect(loaded.unreadable[0].id).toBe('a/garbage.jpg');
    expect(loaded.unreadable[0].error).toMatch(/cannot decode/);
    // Lossless formats come back exactly.
    expect([...loaded.images[0].data]).toEqual([...rand(36, 'a/1.png'.length, 0, 255).map(Math.round)]);
  });
});

describe('preprocessOnGpu', () => {
  const img = (w: number, h: number, seed: number): RgbImage => ({
    width: w,
    height: h,
    data: Uint8Array.from(rand(w * h * 3, seed, 0, 255).map(Math.round)),
  });
  const p: Preprocess = {
    size: 16,
    resizeMode: 'short',
    cropPct: 0.875,
    interpolation: 'bicubic',
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  };
  const ref = (im: RgbImage, normalize: boolean) =>
    imagePreprocessOp.ref({ ...p, normalize }, [
      { shape: [im.height, im.width, 3], data: Float32Array.from(im.data) },
    ])[0].data;

  it('batches images of different sizes into [N,S,S,3], caching one plan per size (LRU)', async () => {
    const dev = await testDevice();
    const images = [img(31, 23, 1), img(20, 40, 2), img(31, 23, 3)];
    for (const normalize of [true, false]) {
      const got = await preprocessOnGpu(dev, images, p, { normalize, cacheSize: 4 });
      const want = new Float32Array(3 * 16 * 16 * 3);
      images.forEach((im, i) => want.set(ref(im, normalize), i * 768));
      expectClose(
        { shape: [3, 16, 16, 3], data: got },
        { shape: [3, 16, 16, 3], data: want },
        { atol: 1e-4, rtol: 0 },
        `normalize ${normalize}`,
      );
    }
    expect(preprocessPlanCount(dev)).toBe(4); // 2 sizes × normalise or not
    // A smaller cache evicts the least recently used plans once the batch is done.
    await preprocessOnGpu(dev, [img(9, 12, 4)], p, { normalize: true, cacheSize: 2 });
    expect(preprocessPlanCount(dev)).toBe(2);
    clearPreprocessPlans(dev);
    expect(preprocessPlanCount(dev)).toBe(0);
  });
});
