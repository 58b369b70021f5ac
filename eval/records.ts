// Run bookkeeping: per-image results appended to <out>/results.jsonl as they are computed, so
// a run killed at any moment loses at most the batch in flight and resumes where it stopped;
// <out>/run.json holds the settings a resume or a merge must agree with.
//
// One line per (condition, image):
//   {"cond":"clean","id":"n01440364/a.jpg","label":0,"top5":[0,3,…],"conf":0.91,"p_label":0.91,"sq":0.02}
//   {"cond":"unreadable","id":"n01440364/b.jpg","error":"cannot decode …"}
// Conditions: 'clean', 'c/<corruption>/<severity>', 'res/<size>', 'si/<sweep>/<factor>'.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseRecords, recordKey, ResumeError, type RunRecord, type RunSettings } from './record-format.js';

export * from './record-format.js';

export class RecordLog {
  private constructor(readonly dir: string, readonly done: Set<string>, readonly records: RunRecord[]) {}

  static file(dir: string): string {
    return path.join(dir, 'results.jsonl');
  }

  /**
   * Open `dir` for a run with `settings`. With `resume`, existing results are kept (a torn last
   * line is cut off) and their keys returned as done; without it, an existing run is an error.
   */
  static async open(dir: string, settings: RunSettings, resume: boolean): Promise<RecordLog> {
    await fs.mkdir(dir, { recursive: true });
    const runFile = path.join(dir, 'run.json');
    const file = RecordLog.file(dir);
    const existing = await fs.readFile(runFile, 'utf8').then((t) => JSON.parse(t) as RunSettings, () => null);
    if (existing && !resume) {
      throw new ResumeError(`${dir} already holds a run of ${existing.model}: pass --resume to continue it, or choose another --out`);
    }
    if (existing && JSON.stringify(existing) !== JSON.stringify(settings)) {
      throw new ResumeError(`${dir} holds a run with other settings; resume needs the same ones.\n  there: ${JSON.stringify(existing)}\n  now:   ${JSON.stringify(settings)}`);
    }
    await fs.writeFile(runFile, JSON.stringify(settings, null, 1));
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    const { records, validBytes } = parseRecords(text, file);
    if (validBytes < Buffer.byteLength(text)) await fs.truncate(file, validBytes);
    return new RecordLog(dir, new Set(records.map(recordKey)), records);
  }

  /** Append a batch's records in one write; already-recorded keys are dropped, never doubled. */
  async append(recs: RunRecord[]): Promise<void> {
    const fresh = recs.filter((r) => !this.done.has(recordKey(r)));
    if (!fresh.length) return;
    await fs.appendFile(RecordLog.file(this.dir), fresh.map((r) => `${JSON.stringify(r)}\n`).join(''));
    for (const r of fresh) {
      this.done.add(recordKey(r));
      this.records.push(r);
    }
  }
}

/** Read and combine the records of several run folders (shards), checking they belong together. */
export async function readRuns(dirs: string[]): Promise<{ settings: RunSettings; records: RunRecord[]; shards: number[] }> {
  let base: RunSettings | null = null;
  const shards: number[] = [];
  const byKey = new Map<string, RunRecord>();
  for (const dir of dirs) {
    const s = JSON.parse(await fs.readFile(path.join(dir, 'run.json'), 'utf8').catch(() => {
      throw new ResumeError(`${dir}: no run.json: not a cnnlab robustness output folder`);
    })) as RunSettings;
    const { shard, ...rest } = s;
    if (base) {
      const { shard: _s, ...baseRest } = base;
      if (JSON.stringify(rest) !== JSON.stringify(baseRest)) throw new ResumeError(`${dir}: its run settings differ from ${dirs[0]}'s; only shards of one run merge`);
      if (shard?.n !== base.shard?.n) throw new ResumeError(`${dir}: shard count ${shard?.n ?? 1} differs from ${base.shard?.n ?? 1}`);
    } else {
      base = s;
    }
    const k = shard?.k ?? 0;
    if (shards.includes(k)) throw new ResumeError(`${dir}: shard ${k} given twice`);
    shards.push(k);
    const text = await fs.readFile(RecordLog.file(dir), 'utf8').catch(() => '');
    for (const r of parseRecords(text, path.join(dir, 'results.jsonl')).records) byKey.set(recordKey(r), r);
  }
  if (!base) throw new ResumeError('no run folders given');
  return { settings: { ...base, shard: null }, records: [...byKey.values()], shards: shards.sort((a, b) => a - b) };
}
