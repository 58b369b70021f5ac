// Bad tuning files at the CLI: named, and nothing runs.

import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.js';
import { readTuningFile } from '../../cli/tune.js';
import { TUNING_VERSION, parseTuningFile } from '../../engine/tuning.js';

const FIXTURES = path.join('tests', 'fixtures', 'tuning');

async function run(args: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const spy = vi.spyOn(console, 'error').mockImplementation((...a) => {
    err.push(a.join(' '));
  });
  try {
    return { code: await main(args), err: err.join('\n') };
  } finally {
    spy.mockRestore();
  }
}

describe('tuning files at the CLI', () => {
  afterEach(() => vi.restoreAllMocks());
  const dir = mkdtempSync(path.join(tmpdir(), 'cnnlab-tune-cli-'));
  it('bench --tuning with a missing file says so', async () => {
    const r = await run([
      'bench',
      '--out',
      path.join(dir, 'b'),
      '--peers',
      'none',
      '--tuning',
      path.join(dir, 'nope.json'),
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--tuning .*nope\.json: no such file/);
  });
  it('bench and tune name a malformed tuning file', async () => {
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, '{"version": 1, "adapters": {"a": {}}}');
    const b = await run(['bench', '--out', path.join(dir, 'b'), '--peers', 'none', '--tuning', bad]);
    expect(b.code).toBe(1);
    expect(b.err).toMatch(/bad\.json: adapter "a" has no "layers" object/);
    const t = await run(['tune', '--runtime', 'node', '--models', 'resnet18', '--table', bad]);
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/bad\.json: adapter "a"/);
  });
  it('every tuning fixture reads through the one variant parser; version 1 is converted to version 2', () => {
    const names = readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
    expect(names.sort()).toEqual(['v1.json', 'v2.json']);
    const v2 = parseTuningFile(readFileSync(path.join(FIXTURES, 'v2.json'), 'utf8'), 'v2.json');
    expect(v2.version).toBe(TUNING_VERSION);
    expect(parseTuningFile(readFileSync(path.join(FIXTURES, 'v1.json'), 'utf8'), 'v1.json')).toEqual(v2);
  });
  it('a version 1 tuning file is converted once and written back', () => {
    const p = path.join(dir, 'old.json');
    copyFileSync(path.join(FIXTURES, 'v1.json'), p);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const f = readTuningFile(p);
    expect(warn.mock.calls.map((c) => c.join(' '))).toEqual([`${p}: converted from tuning file version 1 to 2`]);
    const want = JSON.parse(readFileSync(path.join(FIXTURES, 'v2.json'), 'utf8'));
    expect(f).toEqual(want);
    expect(JSON.parse(readFileSync(p, 'utf8'))).toEqual(want);
    warn.mockClear();
    readTuningFile(p);
    expect(warn).not.toHaveBeenCalled();
  });
  it('tune refuses a version 1 file it cannot convert, saying how to regenerate it', async () => {
    const p = path.join(dir, 'stale.json');
    writeFileSync(
      p,
      JSON.stringify({
        version: 1,
        adapters: {
          a: { updated: 'x', layers: { k: { family: 'matmul', prefer: 'reg4x4-splitk', ms: 1, heuristicMs: 1 } } },
        },
      }),
    );
    const t = await run(['tune', '--runtime', 'node', '--models', 'resnet18', '--table', p]);
    expect(t.code).toBe(1);
    expect(t.err).toMatch(
      /stale\.json: adapter "a", layer k: version 1 choice cannot be converted: .*npx cnnlab tune --force regenerates it/,
    );
  });
});
