// Bad tuning files at the CLI: named, and nothing runs.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.js';

async function run(args: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const spy = vi.spyOn(console, 'error').mockImplementation((...a) => { err.push(a.join(' ')); });
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
    const r = await run(['bench', '--out', path.join(dir, 'b'), '--peers', 'none', '--tuning', path.join(dir, 'nope.json')]);
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
});
