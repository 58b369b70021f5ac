import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { transferCmd } from '../../cli/transfer.js';

describe('cnnlab transfer', () => {
  it('extracts and caches features, runs few-shot transfer and writes the summary and report', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cnnlab-transfer-'));
    const out = path.join(dir, 'out'),
      cache = path.join(dir, 'cache');
    const args = [
      '--weights',
      'builtin',
      '--per-class',
      '5',
      '--shots',
      '1,5',
      '--seeds',
      '2',
      '--cache',
      cache,
      '--out',
      out,
    ];
    const lines: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => void lines.push(a.join(' '));
    try {
      expect(await transferCmd(args)).toBe(0);
      const first = lines.join('\n');
      expect(first).toMatch(/train: 40 × 1280 features/);
      lines.length = 0;
      expect(await transferCmd(args)).toBe(0);
      expect(lines.join('\n')).toMatch(/train: 40 cached features/);
    } finally {
      console.log = log;
    }
    const t = JSON.parse(readFileSync(path.join(out, 'transfer.json'), 'utf8'));
    expect(Object.keys(t.fewshot)).toEqual(['1', '5']);
    expect(t.fewshot['5'].per_seed.length).toBe(2);
    // The built-in model's features separate the 8 held-out classes far better than chance (12.5%).
    expect(t.fewshot['5'].mean).toBeGreaterThan(0.4);
    const s = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(s.transfer.fewshot['1'].mean).toBe(t.fewshot['1'].mean);
    expect(existsSync(path.join(out, 'report.html'))).toBe(true);
    await expect(transferCmd([...args, '--shots', '1,50'])).rejects.toThrow(/fewer than k = 50/);
  }, 300_000);
});
