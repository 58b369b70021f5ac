// Tuned kernel choices: which variant (a ctx.prefer value of one kernel family) runs a layer of
// a given op, attrs and input shapes on a given adapter. bench/tune.ts measures them; compile()
// looks each node up here and falls back to the kernel's heuristic for shapes not in the table.
//
// On disk (Node: a JSON file, `npx cnnlab tune --table`) and in IndexedDB (the page) the same
// TuningFile holds one table per adapter:
//
//   { "version": 2,
//     "adapters": { "<adapter key>": { "updated": ISO date, "layers": { "<layer key>": TuneChoice } } } }
//
// A layer key is op + canonical attrs + input shapes (layerKey, also what bench/kernels.ts
// deduplicates layers by); an adapter key is runtime/vendor/architecture/description (the
// browser's and Node's Dawn differ, so runtime is part of it). A choice is the family's variant
// in its canonical string form (kernels/variant.ts), checked by that family's parser on read.
// Version 1 files spelt variants in the old per-family grammars ('gemm:4x16:sg',
// 'sg-8x16-wg1x8-pk'): they are converted on read (engine/tuning-v1.ts), and the callers that
// own the storage (cli/tune.ts, web/tune-store.ts) write the converted file back once.

import type { DeviceInfo } from './device.js';
import { type Shape, canonicalJson, fmtShape } from '../kernels/kernel.js';
import { variantFamily } from '../kernels/variant-families.js';
import { convertV1 } from './tuning-v1.js';

export const TUNING_VERSION = 2;

/** How to make a new tuning file, for messages. */
export const REGENERATE_HINT = 'npx cnnlab tune --force regenerates it';

export interface TuneChoice {
  /**
   * The ctx.prefer key and value, the variant's canonical string; '' means the heuristic won (the
   * layer was tuned, nothing overrides it).
   */
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

/** A file of another version that cannot be read as this one (`npx cnnlab tune --force` replaces it). */
export class TuningVersionError extends TuningFileError {
  override name = 'TuningVersionError';
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
    return Object.hasOwn(this.layers, key) ? this.layers[key] : undefined;
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
    adapters: {
      ...file.adapters,
      [table.adapter]: { updated: new Date().toISOString(), layers: { ...old, ...table.layers } },
    },
  };
}

/** Parse and check a tuning file; `source` names it in errors. A version 1 file comes back converted. */
export function parseTuningFile(text: string, source: string): TuningFile {
  return readTuningText(text, source).file;
}

/**
 * parseTuningFile, saying whether the file was converted from version 1 (so that the caller can
 * write the converted file back once).
 */
export function readTuningText(text: string, source: string): { file: TuningFile; convertedFrom?: number } {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new TuningFileError(`${source}: not JSON (${(e as Error).message})`);
  }
  const o = j as Partial<Omit<TuningFile, 'version'>> & { version?: unknown };
  if (!o || typeof o !== 'object' || (o.version !== TUNING_VERSION && o.version !== 1)) {
    throw new TuningVersionError(
      `${source}: expected a cnnlab tuning file with "version": ${TUNING_VERSION} (or 1, which is converted); ${REGENERATE_HINT}`,
    );
  }
  if (!o.adapters || typeof o.adapters !== 'object')
    throw new TuningFileError(`${source}: "adapters" must be an object`);
  for (const [a, t] of Object.entries(o.adapters)) {
    if (!t || typeof t.layers !== 'object')
      throw new TuningFileError(`${source}: adapter "${a}" has no "layers" object`);
    for (const [k, c] of Object.entries(t.layers)) {
      if (!c || typeof c.family !== 'string' || typeof c.prefer !== 'string' || typeof c.ms !== 'number') {
        throw new TuningFileError(
          `${source}: adapter "${a}", layer ${k}: expected { family, prefer, ms, heuristicMs }`,
        );
      }
    }
  }
  const v1 = o.version === 1;
  const file: TuningFile = { version: TUNING_VERSION, adapters: {} };
  for (const [a, t] of Object.entries(o.adapters)) {
    const layers: Record<string, TuneChoice> = {};
    for (const [k, c] of Object.entries(t.layers)) {
      const where = `${source}: adapter "${a}", layer ${k}`;
      let prefer: string;
      try {
        if (v1) prefer = c.prefer === '' ? '' : variantFamily(c.family).format(convertV1(c.family, c.prefer));
        else prefer = canonicalChoice(c.family, c.prefer);
      } catch (e) {
        const Err = v1 ? TuningVersionError : TuningFileError;
        const what = v1 ? 'version 1 choice cannot be converted: ' : '';
        throw new Err(`${where}: ${what}${(e as Error).message}; ${REGENERATE_HINT}`);
      }
      layers[k] = { ...c, prefer };
    }
    file.adapters[a] = { ...t, layers };
  }
  return v1 ? { file, convertedFrom: 1 } : { file };
}

/** A stored choice checked by its family's parser: '' or the variant's canonical string (else a VariantError). */
export function canonicalChoice(family: string, prefer: string): string {
  if (prefer === '') return '';
  const s = variantFamily(family);
  const canonical = s.format(s.parse(prefer));
  if (canonical !== prefer) throw new Error(`${family} variant "${prefer}" is not in canonical form ("${canonical}")`);
  return prefer;
}
