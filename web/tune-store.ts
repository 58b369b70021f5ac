// The page's tuning file (engine/tuning.ts) in IndexedDB, so an interactive page keeps what
// it tuned across visits. The CLI's headless runs start from a fresh profile and pass the
// JSON file's contents instead.

import { type TuningFile, emptyTuningFile, readTuningText } from '../engine/tuning.js';

const DB = 'cnnlab';
const STORE = 'tuning';
const KEY = 'file';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(new Error(`IndexedDB "${DB}": ${r.error?.message ?? 'cannot open'}`));
  });
}

/**
 * The stored tuning file, or an empty one (also when IndexedDB is unavailable or the entry is
 * unreadable). A version 1 entry is converted and stored back in the current version, once.
 */
export async function loadStoredTuning(): Promise<TuningFile> {
  if (typeof indexedDB === 'undefined') return emptyTuningFile();
  try {
    const db = await open();
    const text = await new Promise<unknown>((resolve, reject) => {
      const r = db.transaction(STORE).objectStore(STORE).get(KEY);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    db.close();
    if (typeof text !== 'string') return emptyTuningFile();
    const { file, convertedFrom } = readTuningText(text, 'IndexedDB cnnlab/tuning');
    if (convertedFrom !== undefined) await storeTuning(file);
    return file;
  } catch (e) {
    console.warn(`cnnlab: ignoring the stored tuning table: ${(e as Error).message}`);
    return emptyTuningFile();
  }
}

export async function storeTuning(f: TuningFile): Promise<void> {
  if (typeof indexedDB === 'undefined') return;
  const db = await open();
  await new Promise<void>((resolve, reject) => {
    const t = db.transaction(STORE, 'readwrite');
    t.objectStore(STORE).put(JSON.stringify(f), KEY);
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
  });
  db.close();
}
