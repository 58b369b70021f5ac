// Loading a checkpoint into a builder. The builder asks for tensors by its own names in our
// layouts (HWIO convs, [in,out] linears); a WeightMapping turns those into the checkpoint's
// names and PyTorch layouts. A load first records every request with a dry build, compares
// the whole list against the file, and reports every missing, unexpected and mis-shaped tensor
// at once; only then does it read anything.

import { type SafetensorsFile, WeightFileError } from '../engine/safetensors.js';
import { fmtShape, numel } from '../kernels/kernel.js';
import type { ParamKind, WeightSource } from './layers.js';

export interface ParamRequest {
  name: string;
  shape: number[];
  kind: ParamKind;
}

/** Records what a build asks for and hands back zeros (untouched pages cost no memory). */
export class RecordingWeights implements WeightSource {
  readonly requests: ParamRequest[] = [];
  get(name: string, shape: number[], kind: ParamKind): Float32Array {
    this.requests.push({ name, shape: [...shape], kind });
    return new Float32Array(numel(shape));
  }
}

/** Weights already in memory, by builder name. */
export class MapWeights implements WeightSource {
  constructor(readonly tensors: Map<string, Float32Array>) {}
  get(name: string, shape: number[]): Float32Array {
    const t = this.tensors.get(name);
    if (!t) throw new WeightFileError(`no weight "${name}" ${fmtShape(shape)} was loaded`);
    if (t.length !== numel(shape))
      throw new WeightFileError(`weight "${name}" has ${t.length} values, the model needs ${fmtShape(shape)}`);
    return t;
  }
}

export interface WeightMapping {
  /** Checkpoint name for a builder name; identity when absent. */
  fileName?(name: string): string;
  /** Checkpoint tensors nobody asks for that are fine to skip (e.g. BN's num_batches_tracked). */
  ignore?: RegExp;
}

/** The shape a tensor has in a PyTorch checkpoint, from the shape the builder asks for. */
export function torchShape(r: ParamRequest): number[] {
  if (r.kind === 'conv' && r.shape.length === 4) {
    const [kh, kw, i, o] = r.shape;
    return [o, i, kh, kw];
  }
  if (r.kind === 'linear' && r.shape.length === 2) return [r.shape[1], r.shape[0]];
  return r.shape;
}

/**
 * Move data between PyTorch's layout and ours: OIHW ↔ HWIO for convs, [out,in] ↔ [in,out] for
 * linears, anything else as is. `toOurs` says which way.
 */
function relayout(r: ParamRequest, data: Float32Array, toOurs: boolean): Float32Array {
  const conv = r.kind === 'conv' && r.shape.length === 4;
  if (!conv && !(r.kind === 'linear' && r.shape.length === 2)) return data;
  // Both cases are [.., ci, co] (ours) vs [co, ci, ..] (torch) with `taps` spatial positions.
  const [taps, ci, co] = conv ? [r.shape[0] * r.shape[1], r.shape[2], r.shape[3]] : [1, r.shape[0], r.shape[1]];
  const out = new Float32Array(data.length);
  for (let o = 0; o < co; o++)
    for (let i = 0; i < ci; i++)
      for (let t = 0; t < taps; t++) {
        const ours = (t * ci + i) * co + o,
          torch = (o * ci + i) * taps + t;
        if (toOurs) out[ours] = data[torch];
        else out[torch] = data[ours];
      }
  return out;
}

/** PyTorch layout → ours (OIHW → HWIO, [out,in] → [in,out]). */
export const fromTorch = (r: ParamRequest, data: Float32Array): Float32Array => relayout(r, data, true);

/** Our layout → PyTorch's (for writing checkpoints, e.g. random weights as a file). */
export const toTorch = (r: ParamRequest, data: Float32Array): Float32Array => relayout(r, data, false);

export class WeightMismatchError extends WeightFileError {
  override name = 'WeightMismatchError';
  constructor(
    readonly file: string,
    readonly model: string,
    readonly missing: { name: string; shape: number[] }[],
    readonly unexpected: { name: string; shape: number[] }[],
    readonly misshaped: { name: string; expected: number[]; found: number[] }[],
  ) {
    const lines = [
      `${file} does not fit ${model}: ${missing.length} missing, ${unexpected.length} unexpected, ${misshaped.length} mis-shaped tensors`,
    ];
    const list = <T>(title: string, xs: T[], f: (x: T) => string) => {
      if (!xs.length) return;
      lines.push(`${title}:`);
      for (const x of xs.slice(0, 40)) lines.push(`  ${f(x)}`);
      if (xs.length > 40) lines.push(`  … and ${xs.length - 40} more`);
    };
    list('missing (the model needs them, the file lacks them)', missing, (m) => `${m.name} ${fmtShape(m.shape)}`);
    list(
      'mis-shaped',
      misshaped,
      (m) => `${m.name}: file has ${fmtShape(m.found)}, model needs ${fmtShape(m.expected)}`,
    );
    list('unexpected (in the file, unused by the model)', unexpected, (m) => `${m.name} ${fmtShape(m.shape)}`);
    super(lines.join('\n'));
  }
}

/** Check `requests` against `file` in full, then read and convert every tensor. */
export async function loadWeights(
  file: SafetensorsFile,
  requests: ParamRequest[],
  mapping: WeightMapping,
  model: string,
): Promise<MapWeights> {
  const fileName = (n: string) => mapping.fileName?.(n) ?? n;
  const missing: { name: string; shape: number[] }[] = [];
  const misshaped: { name: string; expected: number[]; found: number[] }[] = [];
  const used = new Set<string>();
  for (const r of requests) {
    const fname = fileName(r.name);
    const info = file.tensors.get(fname);
    const expected = torchShape(r);
    if (!info) {
      missing.push({ name: fname, shape: expected });
      continue;
    }
    used.add(fname);
    if (fmtShape(info.shape) !== fmtShape(expected)) misshaped.push({ name: fname, expected, found: info.shape });
  }
  const unexpected = [...file.tensors.entries()]
    .filter(([n]) => !used.has(n) && !(mapping.ignore?.test(n) ?? false))
    .map(([name, t]) => ({ name, shape: t.shape }));
  if (missing.length || unexpected.length || misshaped.length) {
    throw new WeightMismatchError(file.name ?? 'weight file', model, missing, unexpected, misshaped);
  }
  const tensors = new Map<string, Float32Array>();
  for (const r of requests) {
    if (tensors.has(r.name)) continue;
    const t = await file.read(fileName(r.name));
    tensors.set(r.name, fromTorch(r, t.data));
  }
  return new MapWeights(tensors);
}
