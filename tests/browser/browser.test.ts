// The same graph through navigator.gpu in headless Chromium (page served from localhost) and
// through Dawn in Node gives the same outputs.

import { execFileSync } from 'node:child_process';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PageSession, WEB_ROOT, startPage } from '../../cli/common.js';
import { compile } from '../../engine/executor.js';
import { Graph, graphToJSON } from '../../engine/graph.js';
import { expectClose, rand, testDevice } from '../helpers.js';

let session: PageSession;
let page: Page;
const pageLog: string[] = [];

beforeAll(async () => {
  execFileSync(process.execPath, ['build.mjs']);
  session = await startPage({ '/': WEB_ROOT }, (s) => pageLog.push(s));
  page = session.page;
}, 120_000);

afterAll(async () => {
  await session?.close();
});

function smallGraph(): Graph {
  const g = new Graph();
  g.input('x', [2, 5, 7, 3]);
  const c = g.constant('c', [3], rand(3, 11));
  const a = g.op('add', ['x', c], { act: 'relu' });
  const s = g.op('activation', [a], { act: 'gelu' });
  g.markOutputs(g.op('add', [s, 'x'], { act: 'silu' }));
  return g;
}

describe('browser', () => {
  it('has a WebGPU adapter on a page served from localhost', async () => {
    const info = await page.evaluate(async () => (await window.cnnlab.getDevice()).info);
    expect(info.runtime).toBe('browser');
  });

  it('runs a small graph through navigator.gpu and matches the Node result', async () => {
    const g = smallGraph();
    const x = rand(2 * 5 * 7 * 3, 12, -3, 3);
    const inBrowser = await page.evaluate(({ j, xs }) => window.cnnlab.runGraphJSON(j, { x: xs }), {
      j: graphToJSON(g),
      xs: [...x],
    });
    const plan = await compile(await testDevice(), g);
    const { outputs } = await plan.run({ x });
    plan.dispose();
    const o = g.outputs[0];
    const b = { shape: inBrowser[o].shape, data: new Float32Array(inBrowser[o].data) };
    // Same WGSL on the same SwiftShader: expect agreement to float rounding.
    expectClose(b, outputs[o], { atol: 1e-6, rtol: 1e-6 }, 'browser vs node');
    expect(pageLog.filter((l) => l.includes('error'))).toEqual([]);
  });
});
