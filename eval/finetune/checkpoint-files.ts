// Fine-tuning checkpoints as files in a folder (Node): the CheckpointStore finetuneLoop uses for
// its `dir` (checkpoint.ts says what the files hold); each write is atomic (writeAtomic).

import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { openSafetensorsPath } from '../../engine/safetensors.js';
import { type CheckpointStore, writeAtomic } from './checkpoint.js';

/** The files of `dir` (created when missing). */
export function folderStore(dir: string): CheckpointStore {
  mkdirSync(dir, { recursive: true });
  const where = (name: string) => path.join(dir, name);
  return {
    where,
    exists: async (name) => existsSync(where(name)),
    open: (name) => openSafetensorsPath(where(name)),
    write: (name, bytes) => writeAtomic(where(name), bytes),
  };
}
