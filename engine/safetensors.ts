// Safetensors reader and F32 writer. The header is parsed and checked in full before any
// tensor is read; tensors are then read one at a time through a ByteSource, so a 1 GB
// checkpoint never sits in memory next to its own decoded copy.
//
// Layout: u64 LE header length N | N bytes of UTF-8 JSON | data. Each JSON entry is
// {dtype, shape, data_offsets: [begin, end]} with offsets relative to the start of the data.

import type { HostTensor } from '../kernels/kernel.js';

/** A weight or array file that cannot be read as it is; the message names the file, the tensor and the fault. */
export class WeightFileError extends Error {
  override name = 'WeightFileError';
}

/** Random access to the bytes of a file, a Blob or a buffer. */
export interface ByteSource {
  readonly size: number;
  /** Shown in error messages (a path or a File's name). */
  readonly name?: string;
  /** Exactly `length` bytes from `offset`, in a fresh array the caller may keep. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export function bufferSource(buf: ArrayBuffer | Uint8Array, name?: string): ByteSource {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  return {
    size: bytes.byteLength,
    name,
    read: async (offset, length) => {
      checkRange(offset, length, bytes.byteLength, name);
      return bytes.slice(offset, offset + length);
    },
  };
}

export function blobSource(blob: Blob, name?: string): ByteSource {
  const label = name ?? (typeof File !== 'undefined' && blob instanceof File ? blob.name : undefined);
  return {
    size: blob.size,
    name: label,
    read: async (offset, length) => {
      checkRange(offset, length, blob.size, label);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/**
 * A file on disk (Node). Each read opens the file afresh: tensors are few and large, and a
 * source with no handle to close cannot leak one.
 */
export async function fileSource(path: string): Promise<ByteSource> {
  const fs = await import('node:fs/promises');
  const { size } = await fs.stat(path);
  return {
    size,
    name: path,
    read: async (offset, length) => {
      checkRange(offset, length, size, path);
      const out = new Uint8Array(length);
      const fh = await fs.open(path, 'r');
      try {
        let done = 0;
        while (done < length) {
          const { bytesRead } = await fh.read(out, done, length - done, offset + done);
          if (bytesRead === 0)
            throw new WeightFileError(
              `${path}: file ended at byte ${offset + done}, expected ${offset + length} (was it truncated while open?)`,
            );
          done += bytesRead;
        }
      } finally {
        await fh.close();
      }
      return out;
    },
  };
}

function checkRange(offset: number, length: number, size: number, name: string | undefined): void {
  if (
    !(
      Number.isSafeInteger(offset) &&
      Number.isSafeInteger(length) &&
      offset >= 0 &&
      length >= 0 &&
      offset + length <= size
    )
  ) {
    throw new WeightFileError(`${name ?? 'buffer'}: read of ${length} bytes at ${offset} is outside its ${size} bytes`);
  }
}

/** Bytes per element of every dtype the safetensors format defines. */
const DTYPE_SIZE: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};
/** The dtypes read() converts to f32. Others are listed in `tensors` but refuse to load. */
const READABLE = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32'];
const MAX_HEADER = 100_000_000;

export interface TensorInfo {
  dtype: string;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  readonly name?: string;
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  /** Absolute offset of the data section (8 + header length). */
  readonly dataStart: number;
  /** One tensor, converted to f32. */
  read(name: string): Promise<HostTensor>;
}

export async function openSafetensorsPath(path: string): Promise<SafetensorsFile> {
  return openSafetensors(await fileSource(path));
}

export async function openSafetensors(src: ByteSource): Promise<SafetensorsFile> {
  const file = src.name ?? 'safetensors';
  const fail = (msg: string): never => {
    throw new WeightFileError(`${file}: ${msg}`);
  };
  if (src.size < 8) fail(`${src.size} bytes is too short for a safetensors file (the header length alone is 8 bytes)`);
  const lenBytes = await src.read(0, 8);
  const n64 = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER))
    fail(`header length ${n64} is absurd (limit ${MAX_HEADER} bytes); is this a safetensors file?`);
  const n = Number(n64);
  if (8 + n > src.size)
    fail(
      `header length ${n} runs past the end of the file (${src.size} bytes); the file is truncated or not safetensors`,
    );

  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await src.read(8, n));
  } catch (e) {
    if (e instanceof WeightFileError) throw e;
    fail('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) fail(`header must be a JSON object, found ${describe(json)}`);
  const header = json as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const meta = header.__metadata__;
  if (meta !== undefined) {
    if (!isObject(meta)) fail(`__metadata__ must be an object of strings, found ${describe(meta)}`);
    for (const [k, v] of Object.entries(meta as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(`__metadata__ value '${k}' must be a string, found ${describe(v)}`);
      metadata[k] = v as string;
    }
  }

  const dataSize = src.size - 8 - n;
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    tensors.set(name, parseEntry(name, entry, dataSize, fail));
  }
  const byBegin = [...tensors].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  for (let i = 1; i < byBegin.length; i++) {
    const [pn, p] = byBegin[i - 1];
    const [cn, c] = byBegin[i];
    if (c.begin < p.end) fail(`tensors '${pn}' [${p.begin}, ${p.end}) and '${cn}' [${c.begin}, ${c.end}) overlap`);
  }

  const dataStart = 8 + n;
  return {
    name: src.name,
    tensors,
    metadata,
    dataStart,
    async read(name: string): Promise<HostTensor> {
      const t = tensors.get(name);
      if (!t) {
        const some = [...tensors.keys()].slice(0, 8).join(', ');
        fail(`no tensor '${name}' (the file has ${tensors.size}: ${some}${tensors.size > 8 ? ', ...' : ''})`);
      }
      const info = t as TensorInfo;
      if (!READABLE.includes(info.dtype))
        fail(`tensor '${name}' has dtype ${info.dtype}; cnnlab reads ${READABLE.join(', ')}`);
      const bytes = await src.read(dataStart + info.begin, info.end - info.begin);
      if (bytes.byteLength !== info.end - info.begin)
        fail(`tensor '${name}': read ${bytes.byteLength} bytes, expected ${info.end - info.begin}`);
      return { shape: [...info.shape], data: toFloat32(bytes, info.dtype) };
    },
  };
}

function parseEntry(name: string, entry: unknown, dataSize: number, fail: (msg: string) => never): TensorInfo {
  const where = `tensor '${name}'`;
  if (!isObject(entry))
    fail(`${where}: entry must be an object with dtype, shape and data_offsets, found ${describe(entry)}`);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (dtype === undefined) fail(`${where}: missing 'dtype'`);
  if (shape === undefined) fail(`${where}: missing 'shape'`);
  if (offsets === undefined) fail(`${where}: missing 'data_offsets'`);
  if (typeof dtype !== 'string') fail(`${where}: dtype must be a string, found ${describe(dtype)}`);
  const size = DTYPE_SIZE[dtype as string];
  if (size === undefined)
    fail(`${where}: unknown dtype '${dtype}' (safetensors dtypes: ${Object.keys(DTYPE_SIZE).join(', ')})`);
  if (!Array.isArray(shape)) fail(`${where}: shape must be an array of integers, found ${describe(shape)}`);
  for (const d of shape as unknown[]) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
      fail(
        `${where}: shape [${(shape as unknown[]).join(', ')}] has dimension ${describe(d)}; dimensions must be non-negative integers`,
      );
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
  ) {
    fail(`${where}: data_offsets must be [begin, end] with non-negative integers, found ${describe(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`${where}: data_offsets [${begin}, ${end}] has begin > end`);
  if (end > dataSize)
    fail(
      `${where}: data_offsets end ${end} is past the end of the data section (${dataSize} bytes); the file is truncated`,
    );
  const dims = shape as number[];
  const bytes = dims.reduce((a, d) => a * d, 1) * size;
  if (bytes !== end - begin)
    fail(
      `${where}: shape [${dims.join(', ')}] of ${dtype} needs ${bytes} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
    );
  return { dtype: dtype as string, shape: [...dims], begin, end };
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `array ${JSON.stringify(v).slice(0, 60)}`;
  if (typeof v === 'object') return 'object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Little-endian `bytes` of `dtype` to f32 (F64 and integers round to the nearest f32). For F32
 * bytes that fill their own buffer the result is a view of that buffer, not a copy.
 */
export function toFloat32(bytes: Uint8Array, dtype: string): Float32Array {
  const size = DTYPE_SIZE[dtype];
  const n = bytes.byteLength / size;
  // Typed-array views need aligned offsets and a little-endian host; else go through DataView.
  const view = HOST_LE && bytes.byteOffset % size === 0;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32' && view && bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength) {
    // read() hands over a fresh array: take its buffer rather than copy a large tensor.
    return new Float32Array(bytes.buffer, 0, n);
  }
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      if (view) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n));
      else for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    case 'F16': {
      const table = f16Table();
      if (view) {
        const u = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
        for (let i = 0; i < n; i++) out[i] = table[u[i]];
      } else for (let i = 0; i < n; i++) out[i] = table[dv.getUint16(2 * i, true)];
      return out;
    }
    case 'BF16': {
      // bf16 is the top half of an f32: shifting the bits up is exact, NaN and subnormals included.
      const u32 = new Uint32Array(out.buffer);
      if (view) {
        const u = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
        for (let i = 0; i < n; i++) u32[i] = u[i] << 16;
      } else for (let i = 0; i < n; i++) u32[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    case 'I64':
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(8 * i, true));
      return out;
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    default:
      throw new WeightFileError(`dtype ${dtype} cannot be converted to f32; cnnlab reads ${READABLE.join(', ')}`);
  }
}

/** IEEE half (1 sign, 5 exponent, 10 mantissa bits) to a number. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero and subnormals: mant * 2^-14 / 2^10
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** bfloat16 (the top 16 bits of an f32) to a number. */
export function bf16ToF32(b: number): number {
  const u = new Uint32Array([(b & 0xffff) << 16]);
  return new Float32Array(u.buffer)[0];
}

let f16Cache: Float32Array | undefined;
function f16Table(): Float32Array {
  if (!f16Cache) {
    f16Cache = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Cache[h] = f16ToF32(h);
  }
  return f16Cache;
}

/** An F32 safetensors file; the header is padded with spaces to a multiple of 8, as the reference writer does. */
export function encodeSafetensors(
  tensors: Record<string, HostTensor>,
  metadata?: Record<string, string>,
): Uint8Array<ArrayBuffer> {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const entries = Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name === '__metadata__')
      throw new Error(`encodeSafetensors: '__metadata__' is reserved and cannot name a tensor`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new Error(`encodeSafetensors: tensor '${name}' has invalid shape [${t.shape.join(', ')}]`);
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (numel !== t.data.length)
      throw new Error(
        `encodeSafetensors: tensor '${name}' has shape [${t.shape.join(', ')}] (${numel} elements) but ${t.data.length} values`,
      );
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + 4 * numel] };
    offset += 4 * numel;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + padded);
  let at = 8 + padded;
  for (const [, t] of entries) {
    if (HOST_LE) out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    else for (let i = 0; i < t.data.length; i++) dv.setFloat32(at + 4 * i, t.data[i], true);
    at += t.data.byteLength;
  }
  return out;
}
