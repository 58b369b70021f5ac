// Run bookkeeping: streamed reading (torn and damaged lines, read errors), resume that counts
// duplicates once, the folder lock, provenance by content, and the honest mCE.

import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { featureCacheKey } from '../../eval/features.js';
import { IMAGENET_C_CORRUPTIONS } from '../../eval/metrics.js';
import { folderKey, randomWeightsKey, runProvenance, sha256File } from '../../eval/provenance.js';
import {
  DirLock,
  type ImageRecord,
  KeySet,
  LockError,
  lockFile,
  parseRecords,
  readAllRecords,
  readRecordFile,
  readRuns,
  RecordLog,
  type RunRecord,
  type RunSettings,
  settingsMismatch,
} from '../../eval/records.js';
import {
  ExactSum,
  IMAGENET_VAL_IMAGES,
  imagenetCComparability,
  SummaryAccumulator,
  summarizeRun,
} from '../../eval/summary.js';
import { getModel } from '../../models/registry.js';
import { IMAGENET_C_CONDITIONS, syntheticSettings, writeSyntheticRun } from '../../bench/records.js';
import { mergeCmd } from '../../cli/robustness.js';
import type { Summary } from '../../eval/summary-schema.js';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'cnnlab-records-'));
const P = getModel('mobilenet_v2_synth').preprocess;

const rec = (cond: string, id: string, right = true, conf = 0.7): ImageRecord => ({
  cond,
  id,
  label: 1,
  top5: right ? [1, 2] : [2, 1],
  conf,
  p_label: right ? conf : 0.1,
  sq: 0.2,
});
const line = (r: RunRecord) => `${JSON.stringify(r)}\n`;

/** A run folder with run.json and the given results.jsonl text. */
function runDir(text: string, settings: RunSettings = syntheticSettings()): string {
  const dir = tmp();
  writeFileSync(path.join(dir, 'run.json'), JSON.stringify(settings));
  writeFileSync(RecordLog.file(dir), text);
  return dir;
}

/** A PID that is certainly not running: a child that has exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

describe('reading results.jsonl', () => {
  it('streams records, drops a torn last line and counts bytes', async () => {
    const text = `${line(rec('clean', 'a/é.jpg')) + line(rec('clean', 'b'))}{"cond":"clean","id":"c","lab`;
    const dir = runDir(text);
    const got: RunRecord[] = [];
    const st = await readRecordFile(RecordLog.file(dir), (r) => got.push(r));
    expect(got.map((r) => r.id)).toEqual(['a/é.jpg', 'b']);
    const valid = Buffer.byteLength(line(rec('clean', 'a/é.jpg')) + line(rec('clean', 'b')));
    expect(st).toMatchObject({ lines: 2, records: 2, validBytes: valid, tornBytes: Buffer.byteLength(text) - valid });
    // The in-memory parser agrees, in bytes too (UTF-8, not UTF-16 units).
    expect(parseRecords(text).validBytes).toBe(valid);
  });

  it('a damaged middle line is an error with its file and line number', async () => {
    const dir = runDir(`${line(rec('clean', 'a'))}\n{"cond":"clean",\n${line(rec('clean', 'b'))}`);
    const f = RecordLog.file(dir);
    await expect(readRecordFile(f, () => {})).rejects.toThrow(`${f}:3: not JSON`);
    expect(() => parseRecords(readFileSync(f, 'utf8'), f)).toThrow(`${f}:3: not JSON`);
    await expect(RecordLog.open(dir, syntheticSettings(), { resume: true })).rejects.toThrow(/:3: not JSON/);
    // A JSON line that is not a record is damage too.
    writeFileSync(f, '[1,2]\n');
    await expect(readRecordFile(f, () => {})).rejects.toThrow(/:1: not a result record/);
  });

  it('a missing file is no records; any other read error is an error (resume and merge)', async () => {
    expect(await readRecordFile(path.join(tmp(), 'results.jsonl'), () => {})).toBeNull();
    // results.jsonl that cannot be read (here a folder: EISDIR) must not read as "no records".
    const dir = tmp();
    writeFileSync(path.join(dir, 'run.json'), JSON.stringify(syntheticSettings()));
    mkdirSync(RecordLog.file(dir));
    await expect(readRecordFile(RecordLog.file(dir), () => {})).rejects.toThrow(/cannot read/);
    await expect(RecordLog.open(dir, syntheticSettings(), { resume: true })).rejects.toThrow(/cannot read/);
    await expect(readRuns([dir])).rejects.toThrow(/cannot read/);
    expect(existsSync(lockFile(dir))).toBe(false); // a failed open releases the folder
  });
});

describe('resume', () => {
  it('counts duplicate lines once, cuts a torn tail and appends only new keys', async () => {
    const dir = runDir(`${line(rec('clean', 'a')) + line(rec('clean', 'a', false)) + line(rec('clean', 'b'))}{"co`);
    const notes: string[] = [];
    const log = await RecordLog.open(dir, syntheticSettings(), { resume: true, log: (s) => notes.push(s) });
    try {
      expect(log.done.size).toBe(2);
      expect(log.summary.duplicates).toBe(1);
      expect(notes.join('\n')).toMatch(/1 duplicate records, counted once/);
      expect(notes.join('\n')).toMatch(/torn last line \(4 bytes\)/);
      await log.append([rec('clean', 'a'), rec('clean', 'c'), rec('clean', 'c')]);
      const s = log.summary.result(syntheticSettings(), P);
      // a (first, right), b, c: the duplicate 'a' (wrong) does not count.
      expect(s.clean!.n).toBe(3);
      expect(s.clean!.top1).toBe(1);
    } finally {
      await log.close();
    }
    const lines = readFileSync(RecordLog.file(dir), 'utf8').split('\n');
    expect(lines.length).toBe(5); // 3 read (one a duplicate) + c, and the final ''
    expect(lines[3]).toContain('"id":"c"');
  });

  it('refuses without --resume and with other settings, naming both values', async () => {
    const dir = runDir('');
    await expect(RecordLog.open(dir, syntheticSettings(), { resume: false })).rejects.toThrow(/--resume/);
    const other = { ...syntheticSettings(), weights_sha256: 'f'.repeat(64) };
    await expect(RecordLog.open(dir, other, { resume: true })).rejects.toThrow(
      `weights_sha256: there "${'0'.repeat(64)}", now "${'f'.repeat(64)}"`,
    );
    // Names for humans may differ: a moved weights file or data folder resumes.
    const moved = {
      ...syntheticSettings(),
      weights: 'renamed.safetensors',
      weights_path: '/elsewhere/renamed.safetensors',
      data: '/mnt/other',
    };
    const log = await RecordLog.open(dir, moved, { resume: true });
    await log.close();
  });
});

describe('the folder lock', () => {
  it('a second writer is refused while the first holds the folder; released on close', async () => {
    const dir = runDir('');
    const a = await RecordLog.open(dir, syntheticSettings(), { resume: true });
    const held = JSON.parse(readFileSync(lockFile(dir), 'utf8'));
    expect(held).toMatchObject({ pid: process.pid, host: hostname() });
    expect(Date.parse(held.started)).toBeGreaterThan(0);
    const err = await RecordLog.open(dir, syntheticSettings(), { resume: true, forceUnlock: true }).catch((e) => e);
    expect(err).toBeInstanceOf(LockError);
    expect(err.message).toContain(`locked by running process pid ${process.pid} on ${hostname()}`);
    await a.close();
    expect(existsSync(lockFile(dir))).toBe(false);
    const b = await RecordLog.open(dir, syntheticSettings(), { resume: true });
    await b.close();
  });

  it('a stale lock is reported; --force-unlock takes it over', async () => {
    const dir = tmp();
    const pid = deadPid();
    writeFileSync(
      lockFile(dir),
      JSON.stringify({ pid, host: hostname(), started: '2026-01-01T00:00:00Z', token: 'x' }),
    );
    await expect(DirLock.acquire(dir)).rejects.toThrow(
      new RegExp(`stale lock: pid ${pid} on .*process is gone.*--force-unlock`),
    );
    const notes: string[] = [];
    const lock = await DirLock.acquire(dir, { forceUnlock: true, log: (s) => notes.push(s) });
    expect(notes[0]).toMatch(/stale lock.*taking it over/);
    expect(JSON.parse(readFileSync(lockFile(dir), 'utf8')).pid).toBe(process.pid);
    lock.release();
    expect(existsSync(lockFile(dir))).toBe(false);
  });

  it("another host's lock cannot be checked: refused unless --force-unlock", async () => {
    const dir = tmp();
    writeFileSync(
      lockFile(dir),
      JSON.stringify({ pid: 1, host: 'node-17.cluster', started: '2026-01-01T00:00:00Z', token: 'y' }),
    );
    await expect(DirLock.acquire(dir)).rejects.toThrow(/pid 1 on node-17\.cluster.*cannot be checked/);
    (await DirLock.acquire(dir, { forceUnlock: true })).release();
  });

  it('release leaves a lock taken over by someone else in place', async () => {
    const dir = tmp();
    const lock = await DirLock.acquire(dir);
    writeFileSync(lockFile(dir), JSON.stringify({ pid: 1, host: 'other', started: 'x', token: 'other' }));
    lock.release();
    expect(existsSync(lockFile(dir))).toBe(true);
  });
});

describe('provenance by content', () => {
  it('two different files of the same name do not resume, merge or share features; the same content does', async () => {
    const [d1, d2, d3] = [tmp(), tmp(), tmp()];
    writeFileSync(path.join(d1, 'model.safetensors'), 'weights one');
    writeFileSync(path.join(d2, 'model.safetensors'), 'weights two');
    writeFileSync(path.join(d3, 'model.safetensors'), 'weights one');
    const prov = (d: string) =>
      runProvenance({ weightsPath: path.join(d, 'model.safetensors'), data: null, perClass: 2 });
    const [p1, p2, p3] = await Promise.all([prov(d1), prov(d2), prov(d3)]);
    expect(p1.weights_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(p1.weights_sha256).not.toBe(p2.weights_sha256);
    expect(p1.weights_sha256).toBe(p3.weights_sha256);
    const base = syntheticSettings();
    const s1 = { ...base, ...p1, weights: 'model.safetensors' },
      s2 = { ...base, ...p2, weights: 'model.safetensors' };
    const s3 = { ...base, ...p3, weights: 'model.safetensors' };

    const run = runDir(line(rec('clean', 'a')), s1);
    await expect(RecordLog.open(run, s2, { resume: true })).rejects.toThrow(
      `weights_sha256: there "${p1.weights_sha256}", now "${p2.weights_sha256}"`,
    );
    await (await RecordLog.open(run, s3, { resume: true })).close();

    const a = runDir(line(rec('clean', 'a')), { ...s1, shard: { k: 0, n: 2 } });
    const b = runDir(line(rec('clean', 'b')), { ...s2, shard: { k: 1, n: 2 } });
    await expect(readRuns([a, b])).rejects.toThrow(/weights_sha256: there "[0-9a-f]{64}", now "[0-9a-f]{64}"/);

    const key = (weightsKey: string) =>
      featureCacheKey({ model: 'mobilenet_v2_synth', weightsKey, datasetKey: 'd' }, P, 10);
    expect(key(`sha256:${p1.weights_sha256}`)).not.toBe(key(`sha256:${p2.weights_sha256}`));
    expect(key(`sha256:${p1.weights_sha256}`)).toBe(key(`sha256:${p3.weights_sha256}`));
    expect(key(randomWeightsKey('mobilenet_v2_synth', 0))).not.toBe(key(randomWeightsKey('mobilenet_v2_synth', 1)));
  });

  it('hashes files streamed, and a data folder by its sorted paths and sizes', async () => {
    const d = tmp();
    writeFileSync(path.join(d, 'f'), 'abc');
    expect(await sha256File(path.join(d, 'f'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    const folder = (files: Record<string, string>) => {
      const root = tmp();
      for (const [p, text] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
        writeFileSync(path.join(root, p), text);
      }
      return root;
    };
    const k1 = await folderKey(folder({ 'n01440764/a.jpg': 'xx', 'n01443537/b.png': 'yyy' }));
    expect(k1).toMatchObject({ images: 2, bytes: 5, labels: 'imagenet-synsets' });
    expect(k1.key).toMatch(/^files-sha256:[0-9a-f]{64}$/);
    // The same list elsewhere: the same key; one size or one name different: another key.
    expect(
      (await folderKey(folder({ 'n01443537/b.png': 'yyy', 'n01440764/a.jpg': 'xx', 'n01440764/.hidden': '' }))).key,
    ).toBe(k1.key);
    expect((await folderKey(folder({ 'n01440764/a.jpg': 'xxx', 'n01443537/b.png': 'yyy' }))).key).not.toBe(k1.key);
    expect((await folderKey(folder({ 'n01440764/c.jpg': 'xx', 'n01443537/b.png': 'yyy' }))).key).not.toBe(k1.key);
    expect((await folderKey(folder({ 'cat/a.jpg': 'x' }))).labels).toBe('sorted');
  });

  it('settingsMismatch ignores names for humans and the shard, names every other difference', () => {
    const s = syntheticSettings();
    expect(settingsMismatch(s, { ...s, weights: 'x', weights_path: '/x', data: '/y', shard: { k: 1, n: 2 } })).toEqual(
      [],
    );
    expect(settingsMismatch(s, { ...s, data_key: 'files-sha256:1', limit: 5 })).toEqual([
      'data_key: there "synthetic:bench", now "files-sha256:1"',
      'limit: there null, now 5',
    ]);
    const { imagenet_c_protocol: _, ...old } = s;
    expect(settingsMismatch(old as RunSettings, s)).toEqual(['imagenet_c_protocol: there (absent), now false']);
  });
});

describe('summary accumulator', () => {
  it('exact sums do not depend on order', () => {
    const xs = [1e16, 1, -1e16, 0.1, 0.2, 0.3, 1e-300, 3.3e5, -7.25];
    const sum = (v: number[]) => {
      const s = new ExactSum();
      v.forEach((x) => s.add(x));
      return s.value();
    };
    expect(sum(xs)).toBe(sum([...xs].reverse()));
    expect(sum(xs)).toBe(sum([...xs].sort()));
    expect(sum([0.1, 0.2, 0.3])).toBe(0.6); // correctly rounded (plain 0.1 + 0.2 + 0.3 is 0.6000000000000001)
    expect(sum([1e16, 1, -1e16])).toBe(1);
    expect(sum([])).toBe(0);
  });

  it('KeySet holds keys compactly and answers in recordKey form', () => {
    const k = new KeySet();
    expect(k.add('clean', 'a')).toBe(true);
    expect(k.add('clean', 'a')).toBe(false);
    expect(k.add('c/fog/1', 'b\tc')).toBe(true);
    expect(k.size).toBe(2);
    expect(k.has('clean\ta')).toBe(true);
    expect(k.has('c/fog/1\tb\tc')).toBe(true);
    expect(k.has('c/fog/1\ta')).toBe(false);
    expect([...k].sort()).toEqual(['c/fog/1\tb\tc', 'clean\ta']);
    for (let i = 0; i < 5000; i++) k.add('c/fog/2', `img${i}`);
    expect(k.images('c/fog/2')!.count).toBe(5000);
  });

  it('KeySet packs for the page by images, not records, and unpacks to the same keys', () => {
    const k = new KeySet();
    const conds = ['clean', ...[1, 2, 3, 4, 5].map((v) => `c/fog/${v}`)];
    for (let i = 0; i < 1000; i++) for (const c of conds) if ((i + c.length) % 7 !== 0) k.add(c, `n0/img${i}.jpg`);
    k.add('unreadable', 'n1/bad.jpg');
    const p = JSON.parse(JSON.stringify(k.pack()));
    expect(p.ids.length).toBe(1001); // one string per image, however many conditions hold it
    for (const words of Object.values(p.conds) as number[][]) expect(words.length).toBeLessThanOrEqual(32);
    const u = KeySet.unpack(p);
    expect(u.size).toBe(k.size);
    expect([...u].sort()).toEqual([...k].sort());
    expect(u.has('c/fog/3\tn0/img5.jpg')).toBe(k.has('c/fog/3\tn0/img5.jpg'));
    expect(u.has('c/fog/9\tn0/img5.jpg')).toBe(false);
    expect(KeySet.unpack(new KeySet().pack()).size).toBe(0);
  });

  it('summarizes as before: a merge in any order equals one run', () => {
    const recs: RunRecord[] = [];
    for (let i = 0; i < 300; i++) {
      recs.push(rec('clean', `i${i}`, i % 3 !== 0, ((i * 7919) % 1000) / 1000));
      recs.push(rec('c/fog/2', `i${i}`, i % 2 === 0, 0.5));
      if (i < 10) recs.push(rec('si/size/0.5', `s${i}`, i % 4 === 0));
    }
    recs.push({ cond: 'unreadable', id: 'z', error: 'bad' }, { cond: 'unreadable', id: 'y', error: 'bad' });
    const s = summarizeRun(syntheticSettings(), P, recs);
    const shuffled = summarizeRun(syntheticSettings(), P, [...recs].reverse());
    expect({ ...shuffled, created: null }).toEqual({ ...s, created: null });
    expect(s.clean!.n).toBe(300);
    expect(s.clean!.top1).toBeCloseTo(2 / 3, 12);
    expect(s.corruptions.fog['2']).toEqual({ n: 300, top1: 0.5, top5: 1 });
    expect(s.sweeps.size!.n['0.5']).toBe(10);
    expect(s.unreadable.map((u) => u.id)).toEqual(['y', 'z']);
    expect(s.clean!.reliability.reduce((a, b) => a + b.count, 0)).toBe(300);
    // The accumulator fed one record at a time gives the same.
    const acc = new SummaryAccumulator();
    recs.forEach((r) => acc.add(r));
    expect({ ...acc.result(syntheticSettings(), P), created: null }).toEqual({ ...s, created: null });
  });
});

describe('honest mCE', () => {
  const all = (ids: string[], drop?: { cond: string; id: string }) => {
    const out: RunRecord[] = ids.map((id) => rec('clean', id));
    for (const c of IMAGENET_C_CORRUPTIONS) {
      for (let s = 1; s <= 5; s++)
        for (const id of ids)
          if (!(drop?.cond === `c/${c}/${s}` && drop.id === id)) out.push(rec(`c/${c}/${s}`, id, id !== 'i0'));
    }
    return out;
  };
  const ids = Array.from({ length: 20 }, (_, i) => `i${i}`);

  it('is complete only when every corruption × severity covers exactly clean images', () => {
    const full = summarizeRun(syntheticSettings(), P, all(ids));
    expect(full.mce!.complete).toBe(true);
    expect(full.mce!.reasons).toEqual([]);
    // A killed shard: contrast severity 4 lacks one image. Same counts elsewhere, all 15 × 5 present.
    const killed = summarizeRun(syntheticSettings(), P, all(ids, { cond: 'c/contrast/4', id: 'i7' }));
    expect(killed.mce!.complete).toBe(false);
    expect(killed.relative_mce!.complete).toBe(false);
    expect(killed.mce!.missing).toEqual([]);
    expect(killed.mce!.reasons).toEqual([
      "contrast severity 4 covers 19 images, clean 20 (1 of clean's missing, 0 not in clean)",
    ]);
    // Same count, other images: still not complete.
    const swapped = all(ids, { cond: 'c/fog/1', id: 'i3' });
    swapped.push(rec('c/fog/1', 'other'));
    const sw = summarizeRun(syntheticSettings(), P, swapped);
    expect(sw.corruptions.fog['1'].n).toBe(20);
    expect(sw.mce!.complete).toBe(false);
    expect(sw.mce!.reasons![0]).toMatch(
      /fog severity 1 covers 20 images, clean 20 \(1 of clean's missing, 1 not in clean\)/,
    );
  });

  it('says whether the numbers compare with published ImageNet-C, and why not', () => {
    const s = summarizeRun(syntheticSettings(), P, all(ids));
    expect(s.comparable!.imagenet_c).toBe(false);
    expect(s.comparable!.reasons).toEqual([
      `20 clean images, not the full ${IMAGENET_VAL_IMAGES.toLocaleString('en')}-image validation set`,
      'corrupted images are not stored as 8-bit JPEG (quality 85) as in the released ImageNet-C (--imagenet-c-protocol)',
    ]);
    const synth = summarizeRun(
      { ...syntheticSettings(), labels: 'synthetic', weights_sha256: null, limit: 20, imagenet_c_protocol: true },
      P,
      all(ids, { cond: 'c/fog/5', id: 'i1' }),
    );
    expect(synth.comparable!.reasons).toEqual([
      'the data is the built-in synthetic set, not ImageNet',
      'random weights',
      expect.stringMatching(/^mCE is incomplete \(fog severity 5 covers 19 images/),
      '--limit 20: a subset of the images',
      '20 clean images, not the full 50,000-image validation set',
    ]);
    // What a comparable run looks like: 50,000 clean images, a complete mCE, ImageNet labels, the storage protocol.
    const clean = { ...s.clean!, n: IMAGENET_VAL_IMAGES };
    const settings = { ...syntheticSettings(), imagenet_c_protocol: true };
    expect(imagenetCComparability(settings, clean, s.mce, 0)).toEqual({ imagenet_c: true, reasons: [] });
    expect(imagenetCComparability({ ...settings, labels: 'sorted' }, clean, s.mce, 1).reasons).toEqual([
      "the labels are not ImageNet-1k's (class folders labelled by sorted)",
      '1 unreadable images',
    ]);
    const ok = summarizeRun(settings, P, all(ids));
    expect(ok.settings!.weights_sha256).toBe('0'.repeat(64));
  });
});

describe('records appended while a run goes', () => {
  it('readAllRecords reads back what append wrote', async () => {
    const dir = tmp();
    const log = await RecordLog.open(dir, syntheticSettings(), { resume: false });
    await log.append([rec('clean', 'a'), { cond: 'unreadable', id: 'b', error: 'x' }]);
    await log.close();
    appendFileSync(RecordLog.file(dir), '');
    expect((await readAllRecords(RecordLog.file(dir))).map((r) => r.id)).toEqual(['a', 'b']);
  });
});

describe('npx cnnlab merge', () => {
  it('shards give the summary of the whole run; a killed shard gives an incomplete mCE', async () => {
    const [whole, a, b, out, out2] = [tmp(), tmp(), tmp(), tmp(), tmp()];
    await writeSyntheticRun(whole, { conds: IMAGENET_C_CONDITIONS, images: 30 });
    await writeSyntheticRun(a, { conds: IMAGENET_C_CONDITIONS, images: 30, shard: { k: 0, n: 2 } });
    await writeSyntheticRun(b, { conds: IMAGENET_C_CONDITIONS, images: 30, shard: { k: 1, n: 2 } });
    const one = summarizeRun(syntheticSettings(), P, await readAllRecords(RecordLog.file(whole)));
    const log = console.log;
    console.log = () => {};
    try {
      expect(await mergeCmd([b, a, '--out', out])).toBe(0);
      const m = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as Summary;
      expect(m.shards).toEqual({ merged: [0, 1], of: 2 });
      expect({ ...m, created: null, shards: null }).toEqual(
        JSON.parse(JSON.stringify({ ...one, created: null, shards: null })),
      );
      expect(m.mce!.complete).toBe(true);
      expect(existsSync(lockFile(out))).toBe(false);
      // The merged folder is a run folder again: each record once, and merging it gives the same summary.
      const mergedLines = readFileSync(RecordLog.file(out), 'utf8').trim().split('\n');
      const shardLines = [a, b].flatMap((d) => readFileSync(RecordLog.file(d), 'utf8').trim().split('\n'));
      expect(mergedLines.length).toBe(shardLines.length);
      expect(new Set(mergedLines)).toEqual(new Set(shardLines));
      expect(existsSync(`${RecordLog.file(out)}.partial`)).toBe(false);
      const again = path.join(tmp(), 'again');
      expect(await mergeCmd([out, '--out', again])).toBe(0);
      const m2 = JSON.parse(readFileSync(path.join(again, 'summary.json'), 'utf8')) as Summary;
      expect({ ...m2, created: null, shards: null }).toEqual({ ...m, created: null, shards: null });
      await expect(mergeCmd([a, out, '--out', out])).rejects.toThrow(/is one of the runs being merged/);
      // Shard 1 killed part-way through its last corruption: counts differ from clean's only there.
      const text = readFileSync(RecordLog.file(b), 'utf8').split('\n');
      writeFileSync(RecordLog.file(b), `${text.slice(0, text.length - 4).join('\n')}\n`);
      expect(await mergeCmd([a, b, '--out', out2])).toBe(0);
      const k = JSON.parse(readFileSync(path.join(out2, 'summary.json'), 'utf8')) as Summary;
      expect(k.mce!.complete).toBe(false);
      expect(k.mce!.reasons).toEqual([
        "jpeg_compression severity 5 covers 27 images, clean 30 (3 of clean's missing, 0 not in clean)",
      ]);
      expect(readFileSync(path.join(out2, 'report.html'), 'utf8')).toContain(
        'jpeg_compression severity 5 covers 27 images',
      );
    } finally {
      console.log = log;
    }
  });
});
