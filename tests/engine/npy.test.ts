import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy, parsePyLiteral, readNpyPath } from '../../engine/npy.js';
import { WeightFileError } from '../../engine/safetensors.js';
import { rand } from '../helpers.js';

// Made by tests/fixtures/make_npy.py with NumPy 1.24.
const FIXTURES = fileURLToPath(new URL('../fixtures/npy', import.meta.url));

/** A .npy file from a raw header text (padded as numpy does) and raw data bytes. */
function rawNpy(header: string, data: Uint8Array, version = 1): Uint8Array {
  const prefix = version === 1 ? 10 : 12;
  let text = header;
  while ((prefix + text.length + 1) % 64) text += ' ';
  const h = new TextEncoder().encode(`${text}\n`);
  const out = new Uint8Array(prefix + h.byteLength + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, h.byteLength, true);
  else dv.setUint32(8, h.byteLength, true);
  out.set(h, prefix);
  out.set(data, prefix + h.byteLength);
  return out;
}

const f4 = (shape: string) => `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
const floats = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);

async function npyError(bytes: Uint8Array, name = 'x.npy'): Promise<string> {
  try {
    await decodeNpy(bytes, name);
  } catch (e) {
    expect(e).toBeInstanceOf(WeightFileError);
    return (e as Error).message;
  }
  throw new Error('expected decodeNpy to fail');
}

describe('npy round trip', () => {
  it.each([
    ['scalar ()', []],
    ['empty (0,)', [0]],
    ['(5,)', [5]],
    ['(2,3,4)', [2, 3, 4]],
    ['(0,3)', [0, 3]],
  ])('shape %s', async (_, shape) => {
    const n = shape.reduce((a, d) => a * d, 1);
    const t = { shape, data: rand(n, 7) };
    const bytes = encodeNpy(t);
    expect(bytes[6]).toBe(1);
    const dataStart = 10 + new DataView(bytes.buffer).getUint16(8, true);
    expect(dataStart % 64).toBe(0);
    expect(bytes[dataStart - 1]).toBe(0x0a);
    expect(await decodeNpy(bytes)).toEqual(t);
  });

  it('keeps NaN, infinities and -0', async () => {
    const data = new Float32Array([NaN, Infinity, -Infinity, -0, 1e-45]);
    const got = await decodeNpy(encodeNpy({ shape: [5], data }));
    expect(got.data[0]).toBeNaN();
    expect([...got.data.subarray(1, 4)]).toEqual([Infinity, -Infinity, -0]);
    expect(Object.is(got.data[3], -0)).toBe(true);
    expect(got.data[4]).toBe(Math.fround(1e-45));
  });

  it('rejects data that does not match the shape', () => {
    expect(() => encodeNpy({ shape: [2, 2], data: new Float32Array(3) })).toThrow(/4 elements but data has 3/);
  });

  describe('on disk', () => {
    let dir = '';
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'cnnlab-npy-'));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('reads a written file by path and names the path in errors', async () => {
      const path = join(dir, 'a.npy');
      const t = { shape: [3, 2], data: rand(6, 1) };
      await writeFile(path, encodeNpy(t));
      expect(await readNpyPath(path)).toEqual(t);
      const bad = join(dir, 'b.npy');
      await writeFile(bad, rawNpy(f4('(2,)'), floats(1)));
      await expect(readNpyPath(bad)).rejects.toThrow(new RegExp(`${bad.replace(/\./g, '\\.')}: truncated`));
    });
  });
});

describe('files written by numpy', () => {
  const fixture = (name: string) => readNpyPath(join(FIXTURES, name));

  it('version 1.0, shape (2,3,4)', async () => {
    const t = await fixture('f4-2x3x4.npy');
    expect(t.shape).toEqual([2, 3, 4]);
    expect([...t.data]).toEqual(Array.from({ length: 24 }, (_, i) => i * 0.5 - 3));
  });

  it('scalar and empty', async () => {
    expect(await fixture('f4-scalar.npy')).toEqual({ shape: [], data: new Float32Array([-1.5]) });
    expect(await fixture('f4-empty.npy')).toEqual({ shape: [0], data: new Float32Array(0) });
  });

  it('version 2.0 and 3.0 headers', async () => {
    expect(await fixture('f4-v2.npy')).toEqual({ shape: [3], data: new Float32Array([1, -2, 0.25]) });
    expect(await fixture('f4-v3.npy')).toEqual({ shape: [2, 1], data: new Float32Array([3.5, 1e-45]) });
  });

  it('encodeNpy writes the same bytes as np.save', async () => {
    for (const name of ['f4-2x3x4.npy', 'f4-scalar.npy', 'f4-empty.npy']) {
      const bytes = new Uint8Array(await readFile(join(FIXTURES, name)));
      expect(encodeNpy(await decodeNpy(bytes))).toEqual(bytes);
    }
  });

  it('refuses float64 and Fortran order', async () => {
    await expect(fixture('f8.npy')).rejects.toThrow(
      /f8\.npy: dtype '<f8' \(float64\); cnnlab needs float32 \('<f4'\): convert with x\.astype\(np\.float32\)/,
    );
    await expect(fixture('fortran.npy')).rejects.toThrow(
      /fortran\.npy: fortran_order is True \(column-major\); cnnlab needs C order: save np\.ascontiguousarray\(x\)/,
    );
  });
});

describe('headers', () => {
  it('reads version 2 headers and Python 2 long ints', async () => {
    expect(await decodeNpy(rawNpy(f4('(2, 1)'), floats(1, 2), 2))).toEqual({
      shape: [2, 1],
      data: new Float32Array([1, 2]),
    });
    expect((await decodeNpy(rawNpy(f4('(2L, 1L)'), floats(1, 2)))).shape).toEqual([2, 1]);
    expect((await decodeNpy(rawNpy(`{"shape":(1,),"fortran_order":False,"descr":"<f4"}`, floats(3)))).data).toEqual(
      new Float32Array([3]),
    );
  });

  it('parses the Python literals numpy writes', () => {
    const d = parsePyLiteral(
      "{'descr': [('a', '<f4'), ('b', '<i8')], 'x': (), 'y': (3,), 'z': (4), 't': True, 'n': None, }",
    );
    expect(d).toBeInstanceOf(Map);
    const m = d as Map<string, unknown>;
    expect(m.get('z')).toBe(4);
    expect(m.get('t')).toBe(true);
    expect(m.get('n')).toBe(null);
    expect(() => parsePyLiteral("{'a': 1")).toThrow(/expected ',' or '}'/);
    expect(() => parsePyLiteral("{'a': 1} x")).toThrow(/unexpected text/);
    expect(() => parsePyLiteral("{'a': __import__('os')}")).toThrow(/unexpected '_'/);
  });
});

describe('refusals', () => {
  const cases: [string, string, Uint8Array, RegExp][] = [
    [
      'float64',
      "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }",
      new Uint8Array(8),
      /x\.npy: dtype '<f8' \(float64\); cnnlab needs float32 \('<f4'\): convert with x\.astype\(np\.float32\)/,
    ],
    [
      'float16',
      "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }",
      new Uint8Array(4),
      /dtype '<f2' \(float16\)/,
    ],
    [
      'int64',
      "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }",
      new Uint8Array(8),
      /dtype '<i8' \(int64\); cnnlab needs float32/,
    ],
    ['uint8', "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", new Uint8Array(4), /dtype '\|u1' \(uint8\)/],
    ['bool', "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }", new Uint8Array(4), /dtype '\|b1' \(bool\)/],
    ['object', "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8), /dtype '\|O' \(object\)/],
    [
      'big-endian',
      "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
      floats(1),
      /dtype '>f4' \(big-endian float32\); cnnlab needs little-endian float32 \('<f4'\): convert with x\.astype\('<f4'\)/,
    ],
    [
      'structured',
      "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
      floats(1),
      /structured dtype \[\('a', '<f4'\)\]; cnnlab needs a plain float32 array/,
    ],
    [
      'fortran order',
      "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
      floats(1, 2, 3, 4),
      /fortran_order is True \(column-major\); cnnlab needs C order: save np\.ascontiguousarray\(x\)/,
    ],
    [
      'fortran_order not a bool',
      "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }",
      floats(1),
      /fortran_order is 0, not True or False/,
    ],
    [
      'shape not a tuple',
      "{'descr': '<f4', 'fortran_order': False, 'shape': [1], }",
      floats(1),
      /shape \[1\] is not a tuple of non-negative integers/,
    ],
    [
      'negative dimension',
      "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
      floats(1),
      /shape \(-1,\) is not a tuple of non-negative integers/,
    ],
    [
      'missing key',
      "{'descr': '<f4', 'shape': (1,), }",
      floats(1),
      /header keys are \[descr, shape\]; expected descr, fortran_order, shape/,
    ],
    [
      'extra key',
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
      floats(1),
      /header keys are \[descr, fortran_order, shape, x\]/,
    ],
    [
      'unparseable header',
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,",
      floats(1),
      /x\.npy: header is not a Python dict literal/,
    ],
    ['header not a dict', '(1, 2)', floats(1), /header is not a dict/],
    [
      'truncated data',
      f4('(2, 3)'),
      floats(1, 2, 3, 4, 5),
      /x\.npy: truncated: shape \(2, 3\) float32 needs 24 bytes of data, the file has 20/,
    ],
    [
      'extra data',
      f4('(1,)'),
      floats(1, 2),
      /shape \(1,\) float32 needs 4 bytes of data but the file has 8 \(4 extra\)/,
    ],
  ];
  it.each(cases)('%s', async (_, header, data, re) => {
    expect(await npyError(rawNpy(header, data))).toMatch(re);
  });

  it('bad magic, bad version, short files, header past the end', async () => {
    expect(await npyError(new TextEncoder().encode('PK\x03\x04 this is a zip file'))).toMatch(
      /x\.npy: not a \.npy file \(bad magic: expected \\x93NUMPY, found 50 4b 03 04/,
    );
    const v = rawNpy(f4('(1,)'), floats(1));
    v[6] = 4;
    expect(await npyError(v)).toMatch(/\.npy format version 4\.0 is not one of 1\.0, 2\.0, 3\.0/);
    expect(await npyError(new Uint8Array([0x93, 0x4e, 0x55]))).toMatch(/x\.npy: 3 bytes is too short for a \.npy file/);
    expect(await npyError(rawNpy(f4('(1,)'), floats(1)).subarray(0, 50))).toMatch(
      /header length 118 runs past the end of the file \(50 bytes\)/,
    );
    const v3 = rawNpy(f4('(1,)'), floats(1), 3);
    v3.set([0xc3, 0x28], 20);
    expect(await npyError(v3)).toMatch(/header is not valid UTF-8/);
  });
});
