// Run bookkeeping: per-image results appended to <out>/results.jsonl as they are computed, so
// a run killed at any moment loses at most the batch in flight and resumes where it stopped;
// <out>/run.json holds the settings a resume or a merge must agree with (by content: weights
// SHA-256 and data key, see eval/record-format.ts); <out>/run.lock holds the folder for the
// one process writing it.
//
// One line per (condition, image):
//   {"cond":"clean","id":"n01440364/a.jpg","label":0,"top5":[0,3,…],"conf":0.91,"p_label":0.91,"sq":0.02}
//   {"cond":"unreadable","id":"n01440364/b.jpg","error":"cannot decode …"}
// Conditions: 'clean', 'c/<corruption>/<severity>', 'res/<size>', 'si/<sweep>/<factor>'.
//
// Files are streamed line by line (a full ImageNet-C run is ~0.9 GB, past Node's string limit),
// in time linear in their size, and never held as records: the done keys and the summary are
// kept incrementally (SummaryAccumulator). A torn last line (a kill mid-write) is dropped, and
// cut off on resume; a damaged line before it is an error with its file and line number.

import { randomUUID } from 'node:crypto';
import { createReadStream, promises as fs, readFileSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseRecordLine, ResumeError, type RunRecord, type RunSettings, settingsMismatch } from './record-format.js';
import { SummaryAccumulator } from './summary.js';

export * from './record-format.js';

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** A line longer than this is not a record: the file is something else. */
const MAX_LINE_BYTES = 16 << 20;

export interface ReadStats {
  /** Lines read (complete ones, blank included) and records among them. */
  lines: number;
  records: number;
  /** Bytes of complete lines; bytes of a torn last line after them. */
  validBytes: number;
  tornBytes: number;
}

/**
 * Stream the records of a results.jsonl to `onRecord`, in file order. Null when the file does not
 * exist (no records yet); any other read error is an error.
 */
export async function readRecordFile(file: string, onRecord: (r: RunRecord) => void): Promise<ReadStats | null> {
  const st: ReadStats = { lines: 0, records: 0, validBytes: 0, tornBytes: 0 };
  let carry: Buffer | null = null;
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
      const buf: Buffer = carry ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
      let pos = 0;
      for (let nl = buf.indexOf(10, pos); nl >= 0; nl = buf.indexOf(10, pos)) {
        st.lines++;
        let a = pos,
          b = nl;
        while (a < b && (buf[a] === 32 || buf[a] === 9 || buf[a] === 13)) a++;
        while (b > a && (buf[b - 1] === 32 || buf[b - 1] === 9 || buf[b - 1] === 13)) b--;
        if (a < b) {
          onRecord(parseRecordLine(buf.toString('utf8', a, b), file, st.lines));
          st.records++;
        }
        st.validBytes += nl + 1 - pos;
        pos = nl + 1;
      }
      carry = pos < buf.length ? buf.subarray(pos) : null;
      if (carry && carry.length > MAX_LINE_BYTES) {
        throw new ResumeError(`${file}:${st.lines + 1}: a line over ${MAX_LINE_BYTES >> 20} MiB; not a results file`);
      }
    }
  } catch (e) {
    if (errno(e) === 'ENOENT' && st.lines === 0 && !carry) return null;
    if (e instanceof ResumeError) throw e;
    throw new ResumeError(`${file}: cannot read: ${(e as Error).message}`);
  }
  st.tornBytes = carry?.length ?? 0;
  return st;
}

// ---- the folder lock ---------------------------------------------------------------------------

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  token: string;
}

export class LockError extends ResumeError {
  override name = 'LockError';
}

export const lockFile = (dir: string) => path.join(dir, 'run.lock');

/** The lock on `dir`, if any: its holder and whether that process is alive (null: another host, or unreadable). */
export async function readLock(dir: string): Promise<{ info: LockInfo | null; alive: boolean | null } | null> {
  const text = await fs.readFile(lockFile(dir), 'utf8').catch((e) => {
    if (errno(e) === 'ENOENT') return null;
    throw e;
  });
  if (text === null) return null;
  let info: LockInfo | null = null;
  try {
    const o = JSON.parse(text) as LockInfo;
    if (Number.isInteger(o.pid) && typeof o.host === 'string') info = o;
  } catch {
    /* a lock file torn mid-write: holder unknown */
  }
  if (!info || info.host !== os.hostname()) return { info, alive: null };
  try {
    process.kill(info.pid, 0);
    return { info, alive: true };
  } catch (e) {
    return { info, alive: errno(e) === 'EPERM' };
  }
}

const describe = (i: LockInfo | null) =>
  i ? `pid ${i.pid} on ${i.host} since ${i.started}` : 'an unknown process (unreadable lock file)';

/**
 * Exclusive use of an output folder by this process: run.lock, created atomically, holds the
 * PID, host and start time, and is removed on release, on exit and on SIGINT/SIGTERM. A lock
 * of a live process is an error; a stale one (same host, process gone), another host's (whose
 * process cannot be checked) or an unreadable one is an error unless `forceUnlock`, which
 * reports it and takes it over.
 */
export class DirLock {
  private released = false;
  private readonly onExit = () => this.release();
  private readonly onSignal = (sig: NodeJS.Signals) => {
    this.release();
    process.kill(process.pid, sig); // our handlers are gone now: the default action ends the process
  };

  private constructor(
    readonly file: string,
    readonly info: LockInfo,
  ) {
    process.on('exit', this.onExit);
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  static async acquire(dir: string, o: { forceUnlock?: boolean; log?: (s: string) => void } = {}): Promise<DirLock> {
    const file = lockFile(dir);
    const info: LockInfo = {
      pid: process.pid,
      host: os.hostname(),
      started: new Date().toISOString(),
      token: randomUUID(),
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await fs.writeFile(file, `${JSON.stringify(info)}\n`, { flag: 'wx' });
        return new DirLock(file, info);
      } catch (e) {
        if (errno(e) !== 'EEXIST') throw e;
      }
      const held = await readLock(dir);
      if (!held) continue; // released meanwhile
      const who = describe(held.info);
      if (held.alive) throw new LockError(`${dir} is in use: locked by running process ${who} (${file})`);
      const why =
        held.alive === false
          ? `a stale lock: ${who}, and that process is gone`
          : held.info
            ? `locked by ${who}, which cannot be checked from ${os.hostname()}`
            : `locked by ${who}`;
      if (!o.forceUnlock)
        throw new LockError(
          `${dir}: ${why} (${file}); if no process writes there any more, pass --force-unlock to take it over`,
        );
      o.log?.(`${dir}: ${why}; taking it over (--force-unlock)`);
      // Remove only the lock we judged, not one another process took meanwhile.
      const again = await readLock(dir);
      if (again && JSON.stringify(again.info) === JSON.stringify(held.info)) await fs.rm(file, { force: true });
    }
    throw new LockError(`${dir}: could not take ${file}; another process keeps taking it`);
  }

  /** Remove the lock file if it is still ours (synchronous: also runs on exit). */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    try {
      if ((JSON.parse(readFileSync(this.file, 'utf8')) as LockInfo).token === this.info.token) unlinkSync(this.file);
    } catch {
      /* gone or replaced (--force-unlock by another process): not ours to remove */
    }
  }
}

// ---- one run's log -----------------------------------------------------------------------------

export interface OpenOptions {
  resume: boolean;
  /** Take over a stale lock (see DirLock). */
  forceUnlock?: boolean;
  log?: (s: string) => void;
}

export class RecordLog {
  private constructor(
    readonly dir: string,
    readonly settings: RunSettings,
    /** Everything recorded (read on resume, and appended since), summarised as it comes. */
    readonly summary: SummaryAccumulator,
    private readonly out: fs.FileHandle,
    private readonly lock: DirLock,
  ) {}

  static file(dir: string): string {
    return path.join(dir, 'results.jsonl');
  }

  /** The (condition, image) keys recorded (RunSink.done). */
  get done() {
    return this.summary.keys;
  }

  /**
   * Open `dir` for a run with `settings`, locking it. With `resume`, existing results are kept (a
   * torn last line is cut off, duplicates counted once) and their keys are done; without it, an
   * existing run is an error, as a run with other settings (content keys) is.
   */
  static async open(dir: string, settings: RunSettings, o: OpenOptions): Promise<RecordLog> {
    await fs.mkdir(dir, { recursive: true });
    const lock = await DirLock.acquire(dir, o);
    try {
      const runFile = path.join(dir, 'run.json');
      const file = RecordLog.file(dir);
      const existing = await readSettings(dir, false);
      if (existing && !o.resume) {
        throw new ResumeError(
          `${dir} already holds a run of ${existing.model}: pass --resume to continue it, or choose another --out`,
        );
      }
      const diff = existing ? settingsMismatch(existing, settings) : [];
      if (diff.length)
        throw new ResumeError(
          `${dir} holds a run with other settings; resume needs the same ones:\n  ${diff.join('\n  ')}`,
        );
      await fs.writeFile(runFile, JSON.stringify(settings, null, 1));
      const acc = new SummaryAccumulator();
      const st = await readRecordFile(file, (r) => acc.add(r));
      if (st?.tornBytes) {
        await fs.truncate(file, st.validBytes);
        o.log?.(`${file}: cut off a torn last line (${st.tornBytes} bytes)`);
      }
      if (acc.duplicates) o.log?.(`${file}: ${acc.duplicates} duplicate records, counted once`);
      return new RecordLog(dir, settings, acc, await fs.open(file, 'a'), lock);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** Append a batch's records in one write; already-recorded keys are dropped, never doubled. */
  async append(recs: RunRecord[]): Promise<void> {
    let text = '';
    for (const r of recs) if (this.summary.add(r)) text += `${JSON.stringify(r)}\n`;
    if (text) await this.out.write(text);
  }

  /** Close the file and release the folder. */
  async close(): Promise<void> {
    try {
      await this.out.close();
    } finally {
      this.lock.release();
    }
  }
}

/** `dir`/run.json, or null when absent (and `required` is false); unreadable or damaged is an error. */
export async function readSettings(dir: string, required: boolean): Promise<RunSettings | null> {
  const f = path.join(dir, 'run.json');
  let text: string;
  try {
    text = await fs.readFile(f, 'utf8');
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw new ResumeError(`${f}: cannot read: ${(e as Error).message}`);
    if (required) throw new ResumeError(`${dir}: no run.json: not a cnnlab robustness output folder`);
    return null;
  }
  try {
    return JSON.parse(text) as RunSettings;
  } catch {
    throw new ResumeError(`${f}: not JSON; the run's settings are damaged`);
  }
}

export interface MergedRuns {
  settings: RunSettings;
  summary: SummaryAccumulator;
  shards: number[];
  /** Shard count of the run (1 for an unsharded one). */
  of: number;
}

/**
 * Stream the records of several run folders (shards) into one summary accumulator, checking they
 * belong together (same content keys and settings, same shard count, no shard twice).
 * Duplicates across shards count once; `onUnique` sees each distinct record once, in reading order
 * (merge writes them to the merged folder's results.jsonl). A folder still locked by a live
 * process is reported.
 */
export async function readRuns(
  dirs: string[],
  log?: (s: string) => void,
  onUnique?: (r: RunRecord) => void,
): Promise<MergedRuns> {
  let base: RunSettings | null = null;
  const shards: number[] = [];
  const acc = new SummaryAccumulator();
  for (const dir of dirs) {
    const s = (await readSettings(dir, true))!;
    if (base) {
      const diff = settingsMismatch(base, s);
      if (diff.length)
        throw new ResumeError(
          `${dir}: its run settings differ from ${dirs[0]}'s; only shards of one run merge:\n  ${diff.join('\n  ')}`,
        );
      if (s.shard?.n !== base.shard?.n)
        throw new ResumeError(`${dir}: shard count ${s.shard?.n ?? 1} differs from ${base.shard?.n ?? 1}`);
    } else {
      base = s;
    }
    const k = s.shard?.k ?? 0;
    if (shards.includes(k)) throw new ResumeError(`${dir}: shard ${k} given twice`);
    shards.push(k);
    const held = await readLock(dir);
    if (held?.alive)
      log?.(`warning: ${dir} is locked by running process ${describe(held.info)}: merging what it has written so far`);
    await readRecordFile(RecordLog.file(dir), (r) => {
      if (acc.add(r)) onUnique?.(r);
    });
  }
  if (!base) throw new ResumeError('no run folders given');
  return {
    settings: { ...base, shard: null },
    summary: acc,
    shards: shards.sort((a, b) => a - b),
    of: base.shard?.n ?? 1,
  };
}

/** Every record of a results.jsonl, in memory: for tests and small files only. */
export async function readAllRecords(file: string): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  await readRecordFile(file, (r) => out.push(r));
  return out;
}
