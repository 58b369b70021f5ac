// Tuned kernel choices: which variant (a ctx.prefer value of one kernel family) runs a layer of
// a given op, attrs and input shapes on a given adapter. bench/tune.ts measures them; compile()
// looks each node up here and falls back to the kernel's heuristic for shapes not in the table.
//
// On disk (Node: a JSON file, `npx cnnlab tune --table`) and in IndexedDB (the page) the same
// TuningFile holds one table per adapter:
//
//   { "version": 1,
//     "adapters": { "<adapter key>": { "updated": ISO date, "layers": { "<layer key>": TuneChoice } } } }
//
// A layer key is op + canonical attrs + input shapes; an adapter key is runtime/vendor/
// architecture/description (the browser's and Node's Dawn differ, so runtime is part of it).

import type { DeviceInfo } from './device.js';
import { type Shape, canonicalJson, fmtShape } from '../kernels/kernel.js';

export const TUNING_VERSION = 1;

export interface TuneChoice {
  /** The ctx.prefer key and value; '' means the heuristic won (the layer was tuned, nothing overrides it). */
  family: string;
  prefer: string;
  /** Measured GPU ms of the choice and of the heuristic, on this adapter. */
  ms: number;
  heuristicMs: number;
}

export interface AdapterTable {
  updated: string;
  layers: Record<string, TuneChoice>;
}

export interface TuningFile {
  version: typeof TUNING_VERSION;
  adapters: Record<string, AdapterTable>;
}

export class TuningFileError extends Error {
  override name = 'TuningFileError';
}

export function adapterKey(info: Pick<DeviceInfo, 'runtime' | 'vendor' | 'architecture' | 'description'>): string {
  return [info.runtime, info.vendor, info.architecture, info.description].map((s) => s || '?').join('/');
}

export function layerKey(op: string, attrs: object, inputs: readonly Shape[]): string {
  return `${op}${canonicalJson(attrs)}${inputs.map(fmtShape).join('')}`;
}

/** One adapter's choices, as compile() reads them. */
export class TuningTable {
  constructor(
    readonly adapter: string,
    readonly layers: Record<string, TuneChoice> = {},
  ) {}

  get size(): number {
    return Object.keys(this.layers).length;
  }

  get(key: string): TuneChoice | undefined {
    return Object.prototype.hasOwnProperty.call(this.layers, key) ? this.layers[key] : undefined;
  }

  set(key: string, c: TuneChoice): void {
    this.layers[key] = c;
  }
}

export function emptyTuningFile(): TuningFile {
  return { version: TUNING_VERSION, adapters: {} };
}

/** The table for `adapter` in `file` (an empty one when the adapter was never tuned). */
export function tableFor(file: TuningFile, adapter: string): TuningTable {
  return new TuningTable(adapter, { ...(file.adapters[adapter]?.layers ?? {}) });
}

/** `file` with `table`'s layers merged over its adapter's (newer measurements win). */
export function mergeTable(file: TuningFile, table: TuningTable): TuningFile {
  const old = file.adapters[table.adapter]?.layers ?? {};
  return {
    version: TUNING_VERSION,
    adapters: { ...file.adapters, [table.adapter]: { updated: new Date().toISOString(), layers: { ...old, ...table.layers } } },
  };
}

/** Parse and check a tuning file; `source` names it in errors. */
export function parseTuningFile(text: string, source: string): TuningFile {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new TuningFileError(`${source}: not JSON (${(e as Error).message})`);
  }
  const o = j as Partial<TuningFile>;
  if (!o || typeof o !== 'object' || o.version !== TUNING_VERSION) {
    throw new TuningFileError(`${source}: expected a cnnlab tuning file with "version": ${TUNING_VERSION}`);
  }
  if (!o.adapters || typeof o.adapters !== 'object') throw new TuningFileError(`${source}: "adapters" must be an object`);
  for (const [a, t] of Object.entries(o.adapters)) {
    if (!t || typeof t.layers !== 'object') throw new TuningFileError(`${source}: adapter "${a}" has no "layers" object`);
    for (const [k, c] of Object.entries(t.layers)) {
      if (!c || typeof c.family !== 'string' || typeof c.prefer !== 'string' || typeof c.ms !== 'number') {
        throw new TuningFileError(`${source}: adapter "${a}", layer ${k}: expected { family, prefer, ms, heuristicMs }`);
      }
    }
  }
  return o as TuningFile;
}
