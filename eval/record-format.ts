// The record format of robustness runs (see eval/records.ts for the files): types, parsing and
// the compact set of recorded keys, without Node I/O, so the page can use them too.

import type { Preprocess } from '../models/types.js';

export interface ImageRecord {
  cond: string;
  id: string;
  label: number;
  top5: number[];
  conf: number;
  p_label: number;
  sq: number;
}

export interface UnreadableRecord {
  cond: 'unreadable';
  id: string;
  error: string;
}

export type RunRecord = ImageRecord | UnreadableRecord;

export const isUnreadable = (r: RunRecord): r is UnreadableRecord => r.cond === 'unreadable';
export const recordKey = (r: { cond: string; id: string }) => `${r.cond}\t${r.id}`;

/** How `--limit` samples (eval/data.ts `stratifiedSample`), as recorded in a run's summary. */
export const LIMIT_SAMPLING =
  'stratified over classes (largest remainder), uniform within each class, keyed by the run seed';

/**
 * Settings that define a run; a resume or merge refuses to mix runs whose settings differ.
 * Runs are keyed by content, not names: `weights_sha256` and `data_key` identify the weights
 * and the images; `weights`, `weights_path` and `data` are for humans and may differ (a moved
 * file, another mount point on another machine), as `shard` may between the shards of a merge.
 */
export interface RunSettings {
  model: string;
  /** The weights' file name, or "random (seed N)". */
  weights: string;
  /** SHA-256 (hex) of the weights file; null for seeded random weights (keyed by model + seed). */
  weights_sha256: string | null;
  /** The weights file's absolute path, for humans. */
  weights_path: string | null;
  /** The data folder's absolute path, or the synthetic set's description. */
  data: string;
  /** The images' identity: 'files-sha256:<hex>' over the folder's sorted relative paths and sizes, or 'synthetic:…'. */
  data_key: string;
  /** Where the labels come from: 'imagenet-synsets' (ImageNet-1k wnid folders), 'sorted', 'map' or 'synthetic'. */
  labels: string;
  corruptions: string[];
  severities: number[];
  sweeps: string[];
  resolutions: number[];
  limit: number | null;
  seed: number;
  /** Corrupted images went through ImageNet-C's storage step (8-bit truncation, JPEG quality 85) before the model. */
  imagenet_c_protocol: boolean;
  shard: { k: number; n: number } | null;
  /** The evaluation preprocessing, only when it is not the registered model's (a Hub config's, say). */
  preprocess?: Preprocess;
}

/** Fields that name things for humans; everything else must match for a resume or a merge. */
const DESCRIPTIVE: ReadonlySet<string> = new Set(['weights', 'weights_path', 'data', 'shard']);

/** Each identity field that differs, as 'field: there X, now Y' (empty when the runs belong together). */
export function settingsMismatch(there: RunSettings, now: RunSettings): string[] {
  const a = there as unknown as Record<string, unknown>,
    b = now as unknown as Record<string, unknown>;
  const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => !DESCRIPTIVE.has(k));
  const show = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v));
  return fields
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => `${k}: there ${show(a[k])}, now ${show(b[k])}`);
}

export class ResumeError extends Error {
  override name = 'ResumeError';
}

/** One line of results.jsonl (without its newline) → a record; `lineNo` is 1-based, for the error. */
export function parseRecordLine(line: string, file: string, lineNo: number): RunRecord {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch {
    throw new ResumeError(`${file}:${lineNo}: not JSON; the file is damaged in the middle, not just at the end`);
  }
  const o = r as { cond?: unknown; id?: unknown };
  if (!o || typeof o.cond !== 'string' || typeof o.id !== 'string') {
    throw new ResumeError(`${file}:${lineNo}: not a result record (no "cond" and "id" strings); the file is damaged`);
  }
  return r as RunRecord;
}

// Lines of code points below 128 only: their length in UTF-16 units is their length in bytes.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the range is every ASCII character, control characters included
const ASCII = /^[\x00-\x7f]*$/;
/**
 * Parse JSONL text, ignoring a torn last line (a run killed mid-write); returns the records and
 * the byte length of the complete lines. Linear: bytes are counted per line. Node code streams
 * files instead (eval/records.ts, `readRecordFile`); this is for text already in memory.
 */
export function parseRecords(text: string, file = 'results.jsonl'): { records: RunRecord[]; validBytes: number } {
  const records: RunRecord[] = [];
  const enc = new TextEncoder();
  let pos = 0;
  let validBytes = 0;
  let lineNo = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    if (nl < 0) break; // no newline: torn last line
    const line = text.slice(pos, nl);
    pos = nl + 1;
    lineNo++;
    if (line.trim()) records.push(parseRecordLine(line, file, lineNo));
    // Pure ASCII lines (the usual case) are their own byte length; others are encoded once.
    validBytes += (ASCII.test(line) ? line.length : enc.encode(line).length) + 1;
  }
  return { records, validBytes };
}

/** A growable set of small non-negative integers (one bit each). */
export class Bitset {
  private words = new Uint32Array(64);
  count = 0;

  has(i: number): boolean {
    const w = i >>> 5;
    return w < this.words.length && (this.words[w] & (1 << (i & 31))) !== 0;
  }

  /** Adds i; false when it was already there. */
  add(i: number): boolean {
    const w = i >>> 5;
    if (w >= this.words.length) {
      const grown = new Uint32Array(Math.max(this.words.length * 2, w + 1));
      grown.set(this.words);
      this.words = grown;
    }
    const bit = 1 << (i & 31);
    if (this.words[w] & bit) return false;
    this.words[w] |= bit;
    this.count++;
    return true;
  }

  /** How many members of this set `other` lacks. */
  missingFrom(other: Bitset): number {
    let n = 0;
    for (let w = 0; w < this.words.length; w++) {
      const x = this.words[w] & ~(w < other.words.length ? other.words[w] : 0);
      if (x) n += popcount(x);
    }
    return n;
  }

  /** The bits as 32-bit words up to the last one in use (for passing a set between processes). */
  toWords(): number[] {
    let n = this.words.length;
    while (n > 0 && this.words[n - 1] === 0) n--;
    return Array.from(this.words.subarray(0, n));
  }

  static fromWords(words: readonly number[]): Bitset {
    const b = new Bitset();
    b.words = new Uint32Array(Math.max(64, words.length));
    b.words.set(words);
    for (const w of b.words) if (w) b.count += popcount(w);
    return b;
  }

  equals(other: Bitset): boolean {
    return this.count === other.count && this.missingFrom(other) === 0;
  }

  *[Symbol.iterator](): IterableIterator<number> {
    for (let w = 0; w < this.words.length; w++) {
      for (let x = this.words[w], b = 0; x; x >>>= 1, b++) if (x & 1) yield w * 32 + b;
    }
  }
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * The (condition, image) keys recorded so far, compactly: each image id is stored once (as an
 * index), each condition keeps one bit per image. A full ImageNet-C run (3.75 M records over
 * 50,000 images and 76 conditions) takes about 0.5 MB of bits plus the 50,000 id strings,
 * instead of 3.75 M key strings.
 */
/** A KeySet as plain data (KeySet.pack / KeySet.unpack). */
export interface PackedKeys {
  ids: string[];
  conds: Record<string, number[]>;
}

export class KeySet {
  private readonly ids = new Map<string, number>();
  private readonly conds = new Map<string, Bitset>();
  size = 0;

  contains(cond: string, id: string): boolean {
    const i = this.ids.get(id);
    return i !== undefined && (this.conds.get(cond)?.has(i) ?? false);
  }

  /** Adds the key; false when it was already there (a duplicate). */
  add(cond: string, id: string): boolean {
    let i = this.ids.get(id);
    if (i === undefined) this.ids.set(id, (i = this.ids.size));
    let b = this.conds.get(cond);
    if (!b) this.conds.set(cond, (b = new Bitset()));
    if (!b.add(i)) return false;
    this.size++;
    return true;
  }

  /** In `recordKey` form ('cond\tid'), as a Set of keys is asked (RunSink.done). */
  has(key: string): boolean {
    const t = key.indexOf('\t');
    return t >= 0 && this.contains(key.slice(0, t), key.slice(t + 1));
  }

  /** The images recorded under `cond` (undefined when none). */
  images(cond: string): Bitset | undefined {
    return this.conds.get(cond);
  }

  conditions(): string[] {
    return [...this.conds.keys()];
  }

  /**
   * The set in a form that JSON (or a page's evaluate) carries: the image ids once each and one
   * word array of bits per condition, so its size grows with images, not with records.
   */
  pack(): PackedKeys {
    const ids: string[] = new Array(this.ids.size);
    for (const [id, i] of this.ids) ids[i] = id;
    const conds: Record<string, number[]> = {};
    for (const [cond, b] of this.conds) conds[cond] = b.toWords();
    return { ids, conds };
  }

  static unpack(p: PackedKeys): KeySet {
    const s = new KeySet();
    p.ids.forEach((id, i) => s.ids.set(id, i));
    for (const [cond, words] of Object.entries(p.conds)) {
      const b = Bitset.fromWords(words);
      s.conds.set(cond, b);
      s.size += b.count;
    }
    return s;
  }

  /** Every key in `recordKey` form. */
  *[Symbol.iterator](): IterableIterator<string> {
    const names: string[] = new Array(this.ids.size);
    for (const [id, i] of this.ids) names[i] = id;
    for (const [cond, b] of this.conds) for (const i of b) yield `${cond}\t${names[i]}`;
  }
}
