// The house's shape, checked: no import cycles among the non-test sources (type-only and dynamic
// imports count: a cycle of types still ties the files together), layers that only point down,
// and registries that work from any entry point (no import needed for its side effect).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it, vi } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every non-test .ts source, relative to the root with '/' separators (declaration files excluded). */
function sources(): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(ROOT, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!e.name.startsWith('.') && !['node_modules', 'dist', 'tests', 'out'].includes(e.name)) walk(p);
      } else if (rel && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        out.push(p);
      }
    }
  };
  walk('');
  return out.sort();
}

interface ImportGraph {
  edges: Map<string, string[]>;
  /** Relative imports that resolve to no file: 'from → specifier'. */
  unresolved: string[];
}

/** Relative imports of each file, static, type-only, re-exports and dynamic import() alike, resolved to files. */
function importGraph(files: string[]): ImportGraph {
  const edges = new Map<string, string[]>();
  const unresolved: string[] = [];
  for (const f of files) {
    const info = ts.preProcessFile(readFileSync(path.join(ROOT, f), 'utf8'), true, true);
    const deps = new Set<string>();
    for (const { fileName: spec } of info.importedFiles) {
      if (!spec.startsWith('.')) continue; // packages and node: builtins
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(f), spec));
      if (target.endsWith('.json')) continue;
      const asTs = target.replace(/\.js$/, '.ts');
      const found = [asTs, `${target}.ts`, `${target}/index.ts`].find((c) => existsSync(path.join(ROOT, c)));
      if (found) deps.add(found);
      else unresolved.push(`${f} → ${spec}`);
    }
    edges.set(f, [...deps].sort());
  }
  return { edges, unresolved };
}

/** Strongly connected components of more than one file (or a file importing itself), each with one cycle through it. */
function cycles(edges: Map<string, string[]>): { files: string[]; cycle: string[] }[] {
  let next = 0;
  const index = new Map<string, number>(),
    low = new Map<string, number>();
  const stack: string[] = [],
    onStack = new Set<string>();
  const sccs: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || edges.get(v)?.includes(v)) sccs.push(scc.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  // One concrete cycle per component: breadth-first from its first file back to itself, inside the component.
  return sccs.map((files) => {
    const inScc = new Set(files),
      start = files[0];
    const prev = new Map<string, string>();
    const queue = [start];
    let last: string | undefined;
    while (queue.length && !last) {
      const v = queue.shift()!;
      for (const w of edges.get(v) ?? []) {
        if (w === start) {
          last = v;
          break;
        }
        if (inScc.has(w) && !prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    const cycle = [start];
    for (let v = last!; v !== start; v = prev.get(v)!) cycle.splice(1, 0, v);
    cycle.push(start);
    return { files, cycle };
  });
}

/** What each folder may not import: data flows from kernels up to cli; nothing points back down-to-up. */
const FORBIDDEN: Record<string, string[]> = {
  kernels: ['engine', 'models', 'eval', 'bench', 'web', 'cli', 'report'],
  engine: ['models', 'eval', 'bench', 'web', 'cli', 'report'],
  models: ['eval', 'bench', 'web', 'cli', 'report'],
  // report/ is the layer under eval/ and bench/ for their HTML reports; they may import it.
  eval: ['bench', 'web', 'cli'],
  bench: ['web', 'cli'],
  web: ['cli'],
  // report/ takes only types from eval/ and bench/ (tests/report/layers.test.ts checks that).
  report: ['web', 'cli'],
};

const files = sources();
const graph = importGraph(files);

describe('the import graph', () => {
  it('covers every folder, and every relative import resolves to a source file', () => {
    for (const folder of ['kernels', 'engine', 'models', 'eval', 'bench', 'report', 'web', 'cli']) {
      expect(
        files.some((f) => f.startsWith(`${folder}/`)),
        folder,
      ).toBe(true);
    }
    expect(graph.unresolved).toEqual([]);
  });

  it('has no import cycles', () => {
    const found = cycles(graph.edges);
    expect(found.map((c) => `${c.cycle.join(' → ')} (component: ${c.files.join(', ')})`)).toEqual([]);
  });

  it('points only down the layers', () => {
    const violations: string[] = [];
    for (const [from, deps] of graph.edges) {
      const forbidden = FORBIDDEN[from.split('/')[0]] ?? [];
      for (const to of deps) if (forbidden.includes(to.split('/')[0])) violations.push(`${from} → ${to}`);
    }
    expect(violations).toEqual([]);
  });

  it('finds a cycle when there is one (the checker itself)', () => {
    const g = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts', 'd.ts']],
      ['d.ts', []],
      ['e.ts', ['e.ts']],
    ]);
    expect(cycles(g)).toEqual([
      { files: ['a.ts', 'b.ts', 'c.ts'], cycle: ['a.ts', 'b.ts', 'c.ts', 'a.ts'] },
      { files: ['e.ts'], cycle: ['e.ts', 'e.ts'] },
    ]);
  });
});

describe('registries from any entry point', () => {
  // Each entry is imported into a fresh module graph, alone: whatever it needs registered must
  // come with it, not from an import elsewhere that happened to run first.
  const entries: Record<string, () => Promise<unknown>> = {
    'eval/robustness.ts': () => import('../eval/robustness.js'),
    'eval/features.ts': () => import('../eval/features.js'),
    'bench/models.ts': () => import('../bench/models.js'),
  };
  for (const [name, load] of Object.entries(entries)) {
    it(`${name} finds every model family`, async () => {
      vi.resetModules();
      await load();
      const { listModels, getModel } = await import('../models/registry.js');
      expect(new Set(listModels().map((m) => m.family))).toEqual(new Set(['resnet', 'resnetv2', 'mobilenetv2', 'vit']));
      for (const m of ['resnet50', 'resnetv2_50x1_bit', 'mobilenet_v2', 'mobilenet_v2_synth', 'vit_base_patch16_224']) {
        expect(getModel(m).name).toBe(m);
      }
    });
  }

  it('bench/roofline.ts builds graphs of its ops without being imported elsewhere first', async () => {
    vi.resetModules();
    const { rooflineGraph } = await import('../bench/roofline.js');
    const g = rooflineGraph('roofline_copy', {}, 64);
    expect(g.nodes.map((n) => n.op)).toEqual(['roofline_copy']);
    const { OPS } = await import('../kernels/index.js');
    expect(['roofline_fma', 'roofline_copy', 'roofline_load'].filter((op) => !OPS.has(op))).toEqual([]);
  });
});
