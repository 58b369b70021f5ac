import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ByteSource,
  WeightFileError,
  bf16ToF32,
  blobSource,
  bufferSource,
  encodeSafetensors,
  f16ToF32,
  openSafetensors,
  openSafetensorsPath,
  toFloat32,
} from '../../engine/safetensors.js';
import { rand } from '../helpers.js';

/** A file from a raw header object and data section, with no checks (for malformed cases). */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

function u16Bytes(values: number[]): Uint8Array {
  const b = new Uint8Array(2 * values.length);
  values.forEach((v, i) => new DataView(b.buffer).setUint16(2 * i, v, true));
  return b;
}

async function openError(bytes: Uint8Array, name = 'bad.safetensors'): Promise<WeightFileError> {
  try {
    await openSafetensors(bufferSource(bytes, name));
  } catch (e) {
    expect(e).toBeInstanceOf(WeightFileError);
    return e as WeightFileError;
  }
  throw new Error('expected openSafetensors to fail');
}

/** Counts the bytes read through a source. */
function counting(src: ByteSource): ByteSource & { bytesRead: number } {
  const c = {
    size: src.size,
    name: src.name,
    bytesRead: 0,
    read: async (offset: number, length: number) => {
      c.bytesRead += length;
      return src.read(offset, length);
    },
  };
  return c;
}

describe('safetensors round trip', () => {
  const tensors = {
    'conv1.weight': { shape: [4, 3, 3, 3], data: rand(108, 1) },
    'bn1.bias': { shape: [3], data: new Float32Array([1, -0, Infinity]) },
    scalar: { shape: [], data: new Float32Array([42]) },
    empty: { shape: [0, 5], data: new Float32Array(0) },
  };

  it('reads back what it wrote, with metadata, from a buffer', async () => {
    const bytes = encodeSafetensors(tensors, { format: 'pt', note: 'héllo' });
    const f = await openSafetensors(bufferSource(bytes));
    expect([...f.tensors.keys()].sort()).toEqual(Object.keys(tensors).sort());
    expect(f.metadata).toEqual({ format: 'pt', note: 'héllo' });
    for (const [name, t] of Object.entries(tensors)) {
      const got = await f.read(name);
      expect(got.shape).toEqual(t.shape);
      expect(got.data).toEqual(t.data);
      expect(f.tensors.get(name)?.dtype).toBe('F32');
    }
  });

  it('pads the header with spaces to a multiple of 8, as the reference writer does', () => {
    for (const name of ['a', 'ab', 'abc', 'abcd', 'abcde']) {
      const bytes = encodeSafetensors({ [name]: { shape: [1], data: new Float32Array([1]) } });
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(n % 8).toBe(0);
      const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      expect(text).toMatch(/^\{.*\} *$/);
      expect(bytes.byteLength).toBe(8 + n + 4);
    }
  });

  it('encodes views of larger buffers and rejects mismatched data', () => {
    const big = rand(10, 2);
    const f = encodeSafetensors({ v: { shape: [2, 2], data: big.subarray(3, 7) } });
    return openSafetensors(bufferSource(f)).then(async (file) => {
      expect((await file.read('v')).data).toEqual(big.subarray(3, 7));
      expect(() => encodeSafetensors({ v: { shape: [3], data: new Float32Array(2) } })).toThrow(
        /shape \[3\].*3 elements.*2 values/,
      );
      expect(() => encodeSafetensors({ __metadata__: { shape: [0], data: new Float32Array(0) } })).toThrow(/reserved/);
    });
  });

  it('reads from a Blob', async () => {
    const bytes = encodeSafetensors(tensors);
    const f = await openSafetensors(blobSource(new Blob([bytes])));
    expect((await f.read('conv1.weight')).data).toEqual(tensors['conv1.weight'].data);
  });

  describe('from a file on disk', () => {
    let dir = '';
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'cnnlab-st-'));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('reads tensors through fileSource', async () => {
      const path = join(dir, 'w.safetensors');
      await writeFile(path, encodeSafetensors(tensors));
      const f = await openSafetensorsPath(path);
      expect(f.name).toBe(path);
      expect(await f.read('bn1.bias')).toEqual({ shape: [3], data: tensors['bn1.bias'].data });
      expect(await f.read('scalar')).toEqual({ shape: [], data: new Float32Array([42]) });
    });

    it('names the path in errors', async () => {
      const path = join(dir, 'short.safetensors');
      await writeFile(path, new Uint8Array(5));
      await expect(openSafetensorsPath(path)).rejects.toThrow(
        new RegExp(`${path.replace(/[.]/g, '\\.')}: 5 bytes is too short`),
      );
    });
  });

  it('reads one tensor without reading the others', async () => {
    const a = rand(1000, 3);
    const b = rand(5000, 4);
    const src = counting(
      bufferSource(encodeSafetensors({ a: { shape: [1000], data: a }, b: { shape: [5000], data: b } })),
    );
    const f = await openSafetensors(src);
    const afterHeader = src.bytesRead;
    expect(afterHeader).toBeLessThan(200); // 8 + the JSON header only
    expect((await f.read('a')).data).toEqual(a);
    expect(src.bytesRead - afterHeader).toBe(4000);
    expect(src.bytesRead).toBe(src.size - 5000 * 4); // everything but b
  });

  it('reports a missing tensor with the names it has', async () => {
    const f = await openSafetensors(bufferSource(encodeSafetensors(tensors), 'w.safetensors'));
    await expect(f.read('fc.weight')).rejects.toThrow(
      /w\.safetensors: no tensor 'fc\.weight' \(the file has 4: conv1\.weight/,
    );
  });
});

describe('dtype conversion', () => {
  it('decodes f16 bit patterns', () => {
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0xc000)).toBe(-2);
    expect(f16ToF32(0x3555)).toBeCloseTo(0.333251953125, 12);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(f16ToF32(0xfc00)).toBe(-Infinity);
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(f16ToF32(0x7c01)).toBeNaN();
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16ToF32(0x0400)).toBe(2 ** -14);
    expect(f16ToF32(0x0000)).toBe(0);
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
    expect(f16ToF32(0x8001)).toBe(-(2 ** -24));
  });

  it('decodes bf16 bit patterns', () => {
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(bf16ToF32(0xc000)).toBe(-2);
    expect(bf16ToF32(0x4049)).toBe(3.140625);
    expect(bf16ToF32(0x7f80)).toBe(Infinity);
    expect(bf16ToF32(0xff80)).toBe(-Infinity);
    expect(bf16ToF32(0x7fc0)).toBeNaN();
    expect(bf16ToF32(0x0001)).toBe(2 ** -133); // smallest subnormal
    expect(Object.is(bf16ToF32(0x8000), -0)).toBe(true);
  });

  it('reads F16, BF16, F64, I64, I32 tensors as f32, aligned or not', async () => {
    const f16 = u16Bytes([0x3c00, 0xc000, 0x7c00, 0x0001, 0x7e00]);
    const bf16 = u16Bytes([0x3f80, 0xc000, 0xff80]);
    const f64 = new Uint8Array(new Float64Array([0.1, -1e300]).buffer);
    const i64 = new Uint8Array(new BigInt64Array([-3n, 12345678901n]).buffer);
    const i32 = new Uint8Array(new Int32Array([7, -8]).buffer);
    // An odd-length F16 tensor first puts the BF16 data at an odd offset.
    const parts = [f16, bf16, f64, i64, i32];
    const data = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
    const offsets: number[][] = [];
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      offsets.push([at, at + p.byteLength]);
      at += p.byteLength;
    }
    const bytes = rawFile(
      {
        h: { dtype: 'F16', shape: [5], data_offsets: offsets[0] },
        b: { dtype: 'BF16', shape: [3], data_offsets: offsets[1] },
        d: { dtype: 'F64', shape: [2], data_offsets: offsets[2] },
        l: { dtype: 'I64', shape: [2], data_offsets: offsets[3] },
        i: { dtype: 'I32', shape: [1, 2], data_offsets: offsets[4] },
      },
      data,
    );
    const f = await openSafetensors(bufferSource(bytes));
    const h = (await f.read('h')).data;
    expect([...h.subarray(0, 4)]).toEqual([1, -2, Infinity, 2 ** -24]);
    expect(h[4]).toBeNaN();
    expect([...(await f.read('b')).data]).toEqual([1, -2, -Infinity]);
    expect([...(await f.read('d')).data]).toEqual([Math.fround(0.1), -Infinity]);
    expect([...(await f.read('l')).data]).toEqual([-3, Math.fround(12345678901)]);
    expect(await f.read('i')).toEqual({ shape: [1, 2], data: new Float32Array([7, -8]) });
  });

  it('converts unaligned F32 and F16 views through DataView', () => {
    const buf = new Uint8Array(11);
    new DataView(buf.buffer).setFloat32(1, 2.5, true);
    new DataView(buf.buffer).setFloat32(5, -1, true);
    expect([...toFloat32(buf.subarray(1, 9), 'F32')]).toEqual([2.5, -1]);
    const h = new Uint8Array(5);
    h.set(u16Bytes([0x3c00, 0xc000]), 1);
    expect([...toFloat32(h.subarray(1), 'F16')]).toEqual([1, -2]);
  });

  it('lists tensors of other safetensors dtypes but refuses to read them', async () => {
    const f = await openSafetensors(
      bufferSource(
        rawFile({ m: { dtype: 'BOOL', shape: [3], data_offsets: [0, 3] } }, new Uint8Array(3)),
        'm.safetensors',
      ),
    );
    expect(f.tensors.get('m')).toEqual({ dtype: 'BOOL', shape: [3], begin: 0, end: 3 });
    await expect(f.read('m')).rejects.toThrow(WeightFileError);
    await expect(f.read('m')).rejects.toThrow(/m\.safetensors: tensor 'm' has dtype BOOL; cnnlab reads F32, F16, BF16/);
  });
});

describe('malformed files', () => {
  const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const data8 = new Uint8Array(8);

  it('file shorter than 8 bytes', async () => {
    expect((await openError(new Uint8Array(3))).message).toMatch(/^bad\.safetensors: 3 bytes is too short/);
    expect((await openError(new Uint8Array(0))).message).toMatch(/0 bytes is too short/);
  });

  it('header length past the end or absurd', async () => {
    const b = rawFile({ w: ok }, data8);
    new DataView(b.buffer).setBigUint64(0, BigInt(b.byteLength), true);
    expect((await openError(b)).message).toMatch(/header length \d+ runs past the end of the file/);
    new DataView(b.buffer).setBigUint64(0, 2n ** 63n + 5n, true);
    expect((await openError(b)).message).toMatch(/header length 9223372036854775813 is absurd/);
    new DataView(b.buffer).setBigUint64(0, 200_000_000n, true);
    expect((await openError(b)).message).toMatch(/absurd/);
  });

  it('header not UTF-8, not JSON, not an object', async () => {
    const bad = rawFile(null, data8, 'xx');
    bad.set([0xff, 0xfe], 8);
    expect((await openError(bad)).message).toMatch(/header is not valid UTF-8/);
    expect((await openError(rawFile(null, data8, '{"w": {'))).message).toMatch(/header is not valid JSON/);
    expect((await openError(rawFile([1, 2]))).message).toMatch(/header must be a JSON object, found array/);
    expect((await openError(rawFile(null))).message).toMatch(/header must be a JSON object, found null/);
    expect((await openError(rawFile(null, data8, '7'))).message).toMatch(
      /header must be a JSON object, found number 7/,
    );
  });

  it('bad __metadata__', async () => {
    expect((await openError(rawFile({ __metadata__: { a: 1 } }))).message).toMatch(
      /__metadata__ value 'a' must be a string, found number 1/,
    );
    expect((await openError(rawFile({ __metadata__: 'x' }))).message).toMatch(/__metadata__ must be an object/);
  });

  it('entries missing fields or with wrong types', async () => {
    const cases: [unknown, RegExp][] = [
      [5, /tensor 'w': entry must be an object/],
      [{ shape: [2], data_offsets: [0, 8] }, /tensor 'w': missing 'dtype'/],
      [{ dtype: 'F32', data_offsets: [0, 8] }, /tensor 'w': missing 'shape'/],
      [{ dtype: 'F32', shape: [2] }, /tensor 'w': missing 'data_offsets'/],
      [{ dtype: 32, shape: [2], data_offsets: [0, 8] }, /tensor 'w': dtype must be a string, found number 32/],
      [{ dtype: 'F32', shape: 2, data_offsets: [0, 8] }, /tensor 'w': shape must be an array/],
      [{ dtype: 'F32', shape: [2], data_offsets: [0] }, /tensor 'w': data_offsets must be \[begin, end\]/],
      [{ dtype: 'F32', shape: [2], data_offsets: '0-8' }, /tensor 'w': data_offsets must be \[begin, end\]/],
      [{ dtype: 'F32', shape: [2], data_offsets: [0, '8'] }, /tensor 'w': data_offsets must be/],
      [{ dtype: 'F32', shape: [2], data_offsets: [-4, 4] }, /tensor 'w': data_offsets must be .*non-negative/],
    ];
    for (const [entry, re] of cases) expect((await openError(rawFile({ w: entry }, data8))).message).toMatch(re);
  });

  it('negative or non-integer dimensions', async () => {
    for (const d of [-1, 1.5, '2', null]) {
      const e = await openError(rawFile({ w: { dtype: 'F32', shape: [d], data_offsets: [0, 8] } }, data8));
      expect(e.message).toMatch(/tensor 'w': shape \[.*\] has dimension .*; dimensions must be non-negative integers/);
    }
  });

  it('offsets reversed, past the data, or of the wrong length', async () => {
    expect((await openError(rawFile({ w: { ...ok, data_offsets: [8, 0] } }, data8))).message).toMatch(
      /tensor 'w': data_offsets \[8, 0\] has begin > end/,
    );
    expect((await openError(rawFile({ w: { ...ok, shape: [3], data_offsets: [0, 12] } }, data8))).message).toMatch(
      /tensor 'w': data_offsets end 12 is past the end of the data section \(8 bytes\)/,
    );
    expect((await openError(rawFile({ w: { ...ok, shape: [3] } }, data8))).message).toMatch(
      /tensor 'w': shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] hold 8/,
    );
    expect((await openError(rawFile({ w: { ...ok, dtype: 'F16' } }, data8))).message).toMatch(
      /shape \[2\] of F16 needs 4 bytes/,
    );
  });

  it('overlapping tensors', async () => {
    const e = await openError(
      rawFile(
        {
          c: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        },
        new Uint8Array(12),
      ),
    );
    expect(e.message).toMatch(/tensors 'a' \[0, 8\) and 'b' \[4, 12\) overlap/);
    // An empty tensor inside another one's bytes counts too.
    const e2 = await openError(
      rawFile(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          z: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
        },
        data8,
      ),
    );
    expect(e2.message).toMatch(/'a' \[0, 8\) and 'z' \[4, 4\) overlap/);
  });

  it('unknown dtype', async () => {
    const e = await openError(rawFile({ w: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, data8));
    expect(e.message).toMatch(/tensor 'w': unknown dtype 'Q4' \(safetensors dtypes: BOOL,/);
  });

  it('truncated file: data shorter than the header says', async () => {
    const full = encodeSafetensors({
      a: { shape: [4], data: new Float32Array(4) },
      b: { shape: [4], data: new Float32Array(4) },
    });
    const e = await openError(full.subarray(0, full.byteLength - 3));
    expect(e.message).toMatch(
      /tensor 'b': data_offsets end 32 is past the end of the data section \(29 bytes\); the file is truncated/,
    );
  });

  it('uses a generic label when the source has no name', async () => {
    await expect(openSafetensors(bufferSource(new Uint8Array(2)))).rejects.toThrow(/^safetensors: 2 bytes/);
  });
});
