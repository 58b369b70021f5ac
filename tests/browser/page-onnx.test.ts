// The page's model picker takes an ONNX file: it is parsed and checked in the page and joins the
// model list under its file name (models/onnx-import.ts); a file that is not ONNX is refused with
// the importer's message. Every torchvision fixture (tests/fixtures/make_onnx.py) gives PyTorch's
// logits in the page too, as it does in Node (tests/models/onnx-import.test.ts).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PageSession, startPage } from '../../cli/common.js';
import { pageMounts } from '../../cli/serve-page.js';
import { readNpyPath } from '../../engine/npy.js';

let session: PageSession;

beforeAll(async () => {
  if (!existsSync('dist/web/index.html')) execFileSync(process.execPath, ['build.mjs']);
  session = await startPage({ ...pageMounts(), '/onnx/': path.resolve('tests/fixtures/onnx') });
  await session.page.waitForFunction(() => document.querySelector('#rob-model option'));
}, 60_000);

const FIXTURES = ['efficientnet_b0', 'convnext_tiny', 'regnety_400mf', 'resnext50', 'mobilenet_v3', 'vit_b16'];

afterAll(async () => {
  await session?.close();
});

describe('the page takes an ONNX model', () => {
  it('adds a picked .onnx file to the model list and selects it', async () => {
    const { page } = session;
    await page.setInputFiles('#rob-onnx', 'tests/fixtures/onnx/mobilenet_v3.onnx');
    await page.waitForFunction(() => /opset|error/.test(document.getElementById('rob-progress')!.textContent!));
    expect(await page.textContent('#rob-progress')).toBe('mobilenet_v3.onnx: ONNX opset 14, input [?,3,64,64]');
    expect(await page.$eval('#rob-model', (s) => (s as HTMLSelectElement).value)).toBe('mobilenet_v3.onnx');
    const listed = await page.evaluate(() => window.cnnlab.listModels().find((m) => m.name === 'mobilenet_v3.onnx'));
    expect(listed?.family).toBe('onnx');
    expect(listed?.preprocess.size).toBe(64);
  });

  it('refuses a file that is not ONNX, with the reason', async () => {
    const { page } = session;
    const bad = path.join(mkdtempSync(path.join(tmpdir(), 'cnnlab-onnx-page-')), 'bad.onnx');
    writeFileSync(bad, 'not a protobuf at all');
    await page.setInputFiles('#rob-onnx', bad);
    await page.waitForFunction(() => /bad\.onnx/.test(document.getElementById('rob-progress')!.textContent!));
    expect(await page.textContent('#rob-progress')).toMatch(/^error: bad\.onnx is not an ONNX model/);
  });

  it.each(FIXTURES)(
    "%s: PyTorch's logits in the page, within 1e-3·max|ref|",
    async (name) => {
      const { page } = session;
      const r = await page.evaluate(async (n) => {
        await window.cnnlab.registerOnnx({ name: `${n}.onnx`, url: `/onnx/${n}.onnx` });
        return window.cnnlab.inferFromUrls({ model: `${n}.onnx`, inputUrl: `/onnx/${n}.input.npy` });
      }, name);
      const ref = await readNpyPath(`tests/fixtures/onnx/${name}.logits.npy`);
      expect(r.logits.shape).toEqual(ref.shape);
      const maxRef = Math.max(...ref.data.map(Math.abs));
      const diff = Math.max(...r.logits.data.map((v, i) => Math.abs(v - ref.data[i])));
      expect(diff, `max|Δ| ${diff}, max|ref| ${maxRef}`).toBeLessThanOrEqual(1e-3 * maxRef);
    },
    300_000,
  );
});
