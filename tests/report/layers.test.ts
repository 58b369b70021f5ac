// report/ is a low layer: the page and the CLI import it, never the other way; from eval/ and
// bench/ it takes only the types of the JSON it renders (summary.json, bench.json), never code.
// And HTML and chart code live only in report/ and web/, not in strings elsewhere.

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** Every import and re-export: its specifier and whether it is type-only. */
function importsOf(src: string): { from: string; typeOnly: boolean }[] {
  return [...src.matchAll(/^(import|export)\s+(type\s+)?[^'";]*?\bfrom\s+'([^']+)'|^import\s+'([^']+)'/gm)].map(
    (m) => ({ from: m[3] ?? m[4], typeOnly: m[2] !== undefined }),
  );
}

describe('report/', () => {
  it('imports nothing from web/ or cli/, only types from eval/ and bench/, and no node: module', () => {
    const bad: string[] = [];
    for (const f of tsFiles('report')) {
      for (const i of importsOf(readFileSync(join(ROOT, f), 'utf8'))) {
        const to = i.from.startsWith('.') ? relative(ROOT, join(ROOT, f, '..', i.from)) : i.from;
        const code = !i.typeOnly;
        const outside = /^(web|cli)\//.test(to) || (/^(eval|bench)\//.test(to) && code) || to.startsWith('node:');
        const other = !i.from.startsWith('.') && i.from !== 'chart.js';
        if (outside || other) bad.push(`${f}: ${i.typeOnly ? 'import type' : 'import'} '${i.from}'`);
      }
    }
    expect(bad).toEqual([]);
  });
});

describe('HTML and chart code', () => {
  it('live in strings only under report/ and web/', () => {
    const tags = '!doctype|html|head|body|main|section|div|table|thead|tr|td|script|style|canvas|figure|dl';
    const markup = new RegExp(`['"\`]\\s*<(${tags})\\b`, 'i');
    const bad = ['engine', 'kernels', 'models', 'eval', 'bench', 'cli'].flatMap(tsFiles).filter((f) => {
      const src = readFileSync(join(ROOT, f), 'utf8');
      return markup.test(src) || /new Chart\(/.test(src);
    });
    expect(bad).toEqual([]);
  });
});
