import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import {
  SYNTH_CLASSES,
  SYNTH_HELDOUT_CLASSES,
  SYNTH_TRAIN_CLASSES,
  proceduralSource,
  renderBackground,
  renderObject,
  siScoreSweepCount,
  siScoreSweeps,
  sweepFactors,
  type RgbImage,
  type RgbaImage,
} from '../../eval/synth.js';
import { loadCutouts, writeCutouts, writeSynthImageFolder } from '../../eval/synth-files.js';
import { fitBackground, paste, pasteGeometry } from '../../eval/synth-paste.js';

const tmpDirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cnnlab-synth-'));
  tmpDirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

const black = (n: number): RgbImage => ({ width: n, height: n, data: new Uint8Array(n * n * 3) });
function opaque(
  w: number,
  h: number,
  rgb: (x: number, y: number) => [number, number, number] = () => [255, 255, 255],
): RgbaImage {
  const data = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([...rgb(x, y), 255], (y * w + x) * 4);
  return { width: w, height: h, data };
}
/** Coverage (mean of the red channel / 255), centroid in [0,1]² and the box of pixels over half on. */
function stats(img: RgbImage, ch = 0) {
  let sum = 0,
    sx = 0,
    sy = 0,
    x0 = Infinity,
    x1 = -Infinity,
    y0 = Infinity,
    y1 = -Infinity;
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++) {
      const v = img.data[(y * img.width + x) * 3 + ch] / 255;
      sum += v;
      sx += v * (x + 0.5);
      sy += v * (y + 0.5);
      if (v > 0.5) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
  return {
    cover: sum / (img.width * img.height),
    cx: sx / sum / img.width,
    cy: sy / sum / img.height,
    boxW: x1 - x0 + 1,
    boxH: y1 - y0 + 1,
  };
}

describe('classes', () => {
  it('at least 16 distinct classes, 10 train and the rest held out', () => {
    expect(SYNTH_CLASSES.length).toBeGreaterThanOrEqual(16);
    expect(new Set(SYNTH_CLASSES.map((c) => c.name)).size).toBe(SYNTH_CLASSES.length);
    expect(new Set(SYNTH_CLASSES.map((c) => c.shape)).size).toBe(SYNTH_CLASSES.length);
    expect(new Set(SYNTH_CLASSES.map((c) => `${c.palette.hue}/${c.texture}`)).size).toBe(SYNTH_CLASSES.length);
    expect(SYNTH_TRAIN_CLASSES).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...SYNTH_TRAIN_CLASSES, ...SYNTH_HELDOUT_CLASSES]).toEqual(SYNTH_CLASSES.map((_, i) => i));
  });

  it('is deterministic from the seed', () => {
    const a = renderObject(3, 7, 48),
      b = renderObject(3, 7, 48),
      c = renderObject(3, 8, 48);
    expect([a.width, a.height]).toEqual([b.width, b.height]);
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    expect(Buffer.from(a.data).equals(Buffer.from(c.data))).toBe(false);
    expect(Buffer.from(renderBackground(5, 40, 30).data).equals(Buffer.from(renderBackground(5, 40, 30).data))).toBe(
      true,
    );
    expect(Buffer.from(renderBackground(5, 40, 30).data).equals(Buffer.from(renderBackground(6, 40, 30).data))).toBe(
      false,
    );
    const run = () => [
      ...siScoreSweeps({ size: 32, classes: [1], instancesPerClass: 1, seed: 3, sweeps: ['rotation'], quick: true }),
    ];
    const r1 = run(),
      r2 = run();
    expect(r1.map((x) => x.id)).toEqual(r2.map((x) => x.id));
    for (let i = 0; i < r1.length; i++)
      expect(Buffer.from(r1[i].image.data).equals(Buffer.from(r2[i].image.data))).toBe(true);
  });

  it('cut-outs are tight with antialiased edges and fill the requested size', () => {
    for (let c = 0; c < SYNTH_CLASSES.length; c++) {
      const o = renderObject(c, 1, 64);
      expect(Math.max(o.width, o.height)).toBeGreaterThan(56);
      expect(Math.max(o.width, o.height)).toBeLessThanOrEqual(64);
      let partial = 0,
        top = 0,
        left = 0;
      for (let i = 3; i < o.data.length; i += 4) if (o.data[i] > 0 && o.data[i] < 255) partial++;
      for (let x = 0; x < o.width; x++) top = Math.max(top, o.data[x * 4 + 3]);
      for (let y = 0; y < o.height; y++) left = Math.max(left, o.data[y * o.width * 4 + 3]);
      expect(partial, SYNTH_CLASSES[c].name).toBeGreaterThan(10);
      expect(top).toBeGreaterThan(0); // the first row and column hold the shape: the box is tight
      expect(left).toBeGreaterThan(0);
    }
  });

  it('classes are distinguishable by colour and shape statistics (nearest centroid)', () => {
    // Features: alpha-weighted mean RGB, colour spread (texture), fill of the box, box aspect.
    const feat = (o: RgbaImage) => {
      let a = 0,
        r = 0,
        g = 0,
        b = 0,
        r2 = 0,
        g2 = 0,
        b2 = 0;
      for (let i = 0; i < o.data.length; i += 4) {
        const w = o.data[i + 3] / 255,
          [R, G, B] = [o.data[i] / 255, o.data[i + 1] / 255, o.data[i + 2] / 255];
        a += w;
        r += w * R;
        g += w * G;
        b += w * B;
        r2 += w * R * R;
        g2 += w * G * G;
        b2 += w * B * B;
      }
      r /= a;
      g /= a;
      b /= a;
      const spread = Math.sqrt(Math.max(0, r2 / a - r * r) + Math.max(0, g2 / a - g * g) + Math.max(0, b2 / a - b * b));
      return [r, g, b, 2 * spread, a / (o.width * o.height), 0.5 * Math.log(o.width / o.height)];
    };
    const K = SYNTH_CLASSES.length,
      nTrain = 5,
      nTest = 4;
    const feats = SYNTH_CLASSES.map((_, c) =>
      Array.from({ length: nTrain + nTest }, (_, i) => feat(renderObject(c, 100 + i, 40))),
    );
    const centroids = feats.map((fs) =>
      fs.slice(0, nTrain).reduce((m, f) => m.map((v, d) => v + f[d] / nTrain), [0, 0, 0, 0, 0, 0]),
    );
    let correct = 0;
    for (let c = 0; c < K; c++)
      for (const f of feats[c].slice(nTrain)) {
        const d = centroids.map((m) => m.reduce((s, v, k) => s + (v - f[k]) ** 2, 0));
        if (d.indexOf(Math.min(...d)) === c) correct++;
      }
    expect(correct / (K * nTest)).toBeGreaterThanOrEqual(0.9);
    // Instances vary: no two instances of a class are identical.
    expect(feats[0][0]).not.toEqual(feats[0][1]);
  });
});

describe('paste', () => {
  it('an opaque square at area 0.25 covers 25% of the image', () => {
    const s = stats(paste(black(64), opaque(20, 20), { area: 0.25, cx: 0.5, cy: 0.5 }));
    expect(s.cover).toBeCloseTo(0.25, 2);
    expect(s.boxW).toBe(32);
    const tiny = stats(paste(black(100), opaque(80, 80), { area: 0.01, cx: 0.5, cy: 0.5 })); // antialiased downscale
    expect(Math.abs(tiny.cover - 0.01)).toBeLessThan(0.0005);
  });

  it('puts the mass centroid at (cx, cy)', () => {
    const s = stats(paste(black(100), opaque(30, 30), { area: 0.04, cx: 0.25, cy: 0.75 }));
    expect(s.cx).toBeCloseTo(0.25, 3);
    expect(s.cy).toBeCloseTo(0.75, 3);
    expect(s.cover).toBeCloseTo(0.04, 3);
    const r = stats(paste(black(100), opaque(30, 10), { area: 0.03, cx: 0.4, cy: 0.6, angleDeg: 37 }));
    expect(r.cx).toBeCloseTo(0.4, 3);
    expect(r.cy).toBeCloseTo(0.6, 3);
  });

  it('rotation keeps the area; 45° expands the box by √2; the turn is counter-clockwise', () => {
    const sq = opaque(24, 24),
      o = { area: 0.16, cx: 0.5, cy: 0.5 };
    const r0 = stats(paste(black(80), sq, o)),
      r90 = stats(paste(black(80), sq, { ...o, angleDeg: 90 }));
    const r45 = stats(paste(black(80), sq, { ...o, angleDeg: 45 }));
    expect(r90.cover).toBeCloseTo(r0.cover, 3);
    expect(r45.cover).toBeCloseTo(r0.cover, 2);
    expect(r0.boxW).toBe(32);
    expect(Math.abs(r45.boxW - 32 * Math.SQRT2)).toBeLessThanOrEqual(2);
    const g = pasteGeometry(80, 80, 24, 24, { ...o, angleDeg: 45 });
    expect(g.boxW).toBeCloseTo(32 * Math.SQRT2, 6);
    expect(g.boxW * g.boxH).toBeGreaterThan(32 * 32);
    // Red right half, green left half; turned 90° counter-clockwise the red half is on top.
    const half = opaque(20, 10, (x) => (x >= 10 ? [255, 0, 0] : [0, 255, 0]));
    const img = paste(black(64), half, { area: 0.1, cx: 0.5, cy: 0.5, angleDeg: 90 });
    expect(stats(img, 0).cy).toBeLessThan(0.45);
    expect(stats(img, 1).cy).toBeGreaterThan(0.55);
    expect(Math.abs(stats(img, 0).cx - 0.5)).toBeLessThan(0.01);
  });

  it('clips at the border and reports the fraction inside as SI-Score does', () => {
    const s = stats(paste(black(50), opaque(10, 10), { area: 0.16, cx: 0, cy: 0 }));
    expect(s.cover).toBeCloseTo(0.04, 3);
    expect(pasteGeometry(50, 50, 10, 10, { area: 0.16, cx: 0, cy: 0 }).insideFrac).toBeCloseTo(0.25, 6);
    expect(pasteGeometry(50, 50, 10, 10, { area: 0.16, cx: 0.5, cy: 0.5 }).insideFrac).toBe(1);
  });

  it('fits backgrounds of any size', () => {
    const bg = fitBackground(renderBackground(1, 57, 31), 24);
    expect([bg.width, bg.height, bg.data.length]).toEqual([24, 24, 24 * 24 * 3]);
  });
});

describe('sweeps', () => {
  it('full and quick factor counts', () => {
    const n = (q: boolean) => ['size', 'location', 'rotation'].map((s) => sweepFactors(s as 'size', q).length);
    expect(n(false)).toEqual([100, 441, 72]);
    expect(n(true)).toEqual([10, 25, 12]);
    expect(siScoreSweepCount({ classes: [0, 1, 2], instancesPerClass: 2 })).toBe(3 * 2 * 613);
    expect(siScoreSweepCount({ classes: [0, 1, 2], instancesPerClass: 2, quick: true })).toBe(3 * 2 * 47);
    expect(siScoreSweepCount({ classes: [0], instancesPerClass: 1, sweeps: ['rotation'] })).toBe(72);
    const size = sweepFactors('size'),
      loc = sweepFactors('location'),
      rot = sweepFactors('rotation');
    expect([size[0].factor, size[36].factor, size[99].factor]).toEqual(['0.01', '0.37', '1.00']);
    expect(loc.map((f) => f.factor)).toContain('0.25,0.50');
    expect(loc.every((f) => f.area === 0.2 && f.angleDeg === 0)).toBe(true);
    expect(rot.map((f) => f.factor)).toContain('0.50@21');
    expect(rot.map((f) => f.angleDeg).filter((a) => a % 90 === 0)).toEqual([]);
    expect(Math.max(...rot.map((f) => f.angleDeg))).toBe(341);
  });

  it('yields every factor per class and instance, with stable unique ids', () => {
    const items = [...siScoreSweeps({ size: 24, classes: [2, 12], instancesPerClass: 1, seed: 1 })];
    expect(items.length).toBe(2 * 613);
    expect(new Set(items.map((x) => x.id)).size).toBe(items.length);
    expect(items.filter((x) => x.sweep === 'location' && x.label === 12).length).toBe(441);
    expect(items.every((x) => x.image.width === 24 && x.image.data.length === 24 * 24 * 3)).toBe(true);
    expect(items.find((x) => x.label === 12)!.className).toBe(SYNTH_CLASSES[12].name);
    // 'inside' location grid: the object's box stays in the image; corners touch the border.
    const loc = items.filter((x) => x.sweep === 'location');
    expect(loc.every((x) => x.insideFrac > 0.999)).toBe(true);
    const quick = [
      ...siScoreSweeps({ size: 24, classes: [0, 1], instancesPerClass: 2, seed: 1, quick: true, location: 'full' }),
    ];
    expect(quick.length).toBe(siScoreSweepCount({ classes: [0, 1], instancesPerClass: 2, quick: true }));
    const corner = quick.find((x) => x.sweep === 'location' && x.factor === '0.00,0.00')!;
    expect([corner.cx, corner.cy]).toEqual([0, 0]);
    expect(corner.insideFrac).toBeCloseTo(0.25, 6);
  });
});

describe('files', () => {
  it('writes a readable ImageFolder with class-name folders', async () => {
    const dir = await tmp();
    const files = await writeSynthImageFolder(dir, { classes: [0, 3], perClass: 2, size: 32, seed: 9 });
    expect(files.map((f) => relative(dir, f).split(sep).join('/'))).toEqual([
      'circle/train-00000.png',
      'circle/train-00001.png',
      'star/train-00000.png',
      'star/train-00001.png',
    ]);
    for (const f of files) {
      const m = await sharp(f).metadata();
      expect([m.format, m.width, m.height, m.channels]).toEqual(['png', 32, 32, 3]);
    }
    const again = await writeSynthImageFolder(await tmp(), { classes: [0, 3], perClass: 2, size: 32, seed: 9 });
    expect((await readFile(again[3])).equals(await readFile(files[3]))).toBe(true);
    const val = await writeSynthImageFolder(await tmp(), {
      classes: [0],
      perClass: 1,
      size: 32,
      seed: 9,
      split: 'val',
    });
    expect(val[0].endsWith('val-00000.png')).toBe(true);
    expect((await readFile(val[0])).equals(await readFile(files[0]))).toBe(false);
    const dflt = await writeSynthImageFolder(await tmp(), { perClass: 1, size: 16, seed: 1 });
    expect(dflt.length).toBe(SYNTH_TRAIN_CLASSES.length);
  });

  it('loadCutouts reads back what writeCutouts wrote, and sweeps run on it', async () => {
    const dir = await tmp();
    const w = await writeCutouts(dir, { classes: [4, 1], perClass: 2, size: 40, seed: 5, backgrounds: 3 });
    expect([w.foregrounds.length, w.backgrounds.length]).toEqual([4, 3]);
    await sharp({ create: { width: 50, height: 30, channels: 3, background: '#336699' } })
      .jpeg()
      .toFile(join(dir, 'backgrounds', 'zz-photo.jpg'));
    const src = await loadCutouts(dir);
    expect(src.classNames).toEqual(['ring', 'square']); // sorted, as SI-Score
    const proc = proceduralSource(5, 40);
    for (const [k, c] of [
      [0, 4],
      [1, 1],
    ])
      for (let i = 0; i < 2; i++) {
        const a = src.objects(k, i),
          b = proc.objects(c, i);
        expect([a.width, a.height]).toEqual([b.width, b.height]);
        expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
      }
    expect(src.backgrounds.length).toBe(4);
    for (let i = 0; i < 3; i++)
      expect(Buffer.from(src.backgrounds[i].data).equals(Buffer.from(proc.background(i).data))).toBe(true);
    expect([src.backgrounds[3].width, src.backgrounds[3].height]).toEqual([50, 30]);
    const items = [
      ...siScoreSweeps({
        size: 32,
        classes: [0, 1],
        instancesPerClass: 3,
        seed: 2,
        quick: true,
        sweeps: ['size'],
        source: src,
      }),
    ];
    expect(items.length).toBe(2 * 3 * 10);
    expect(items[0].className).toBe('ring');
    expect(items.every((x) => x.image.width === 32)).toBe(true);
  });
});
