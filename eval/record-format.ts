// The record format of robustness runs (see eval/records.ts for the files): types and parsing,
// without Node I/O, so the page can use them too.

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

/** Settings that define a run; a resume or merge refuses to mix runs whose settings differ. */
export interface RunSettings {
  model: string;
  weights: string;
  data: string;
  corruptions: string[];
  severities: number[];
  sweeps: string[];
  resolutions: number[];
  limit: number | null;
  seed: number;
  shard: { k: number; n: number } | null;
  /** Corrupted images went through ImageNet-C's storage step (8-bit truncation, JPEG quality 85). */
  imagenet_c_protocol: boolean;
}

export class ResumeError extends Error {
  override name = 'ResumeError';
}

/** Parse JSONL, ignoring a torn last line (a run killed mid-write); returns records and valid byte length. */
export function parseRecords(text: string, file = 'results.jsonl'): { records: RunRecord[]; validBytes: number } {
  const records: RunRecord[] = [];
  let pos = 0;
  let validBytes = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    if (nl < 0) break; // no newline: torn last line
    const line = text.slice(pos, nl);
    pos = nl + 1;
    if (line.trim()) {
      try {
        records.push(JSON.parse(line) as RunRecord);
      } catch {
        throw new ResumeError(`${file}: line ${records.length + 1} is not JSON; the file is damaged in the middle, not just at the end`);
      }
    }
    validBytes = new TextEncoder().encode(text.slice(0, pos)).length;
  }
  return { records, validBytes };
}
