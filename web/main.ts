// The page: device info and the demo, in plain DOM. `window.cnnlab` exposes the engine.

import { api } from './api.js';

declare global {
  interface Window {
    cnnlab: typeof api;
    cnnlabLog?: (s: string) => void;
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

async function showDevice(): Promise<void> {
  try {
    const d = await api.getDevice();
    $('device-info').textContent = `${api.describeDevice(d)}\nfeatures: ${d.info.features.join(', ')}`;
  } catch (e) {
    $('device-info').textContent = `No WebGPU device: ${(e as Error).message}`;
  }
}

async function runDemoFromPage(): Promise<void> {
  const out = $('demo-out');
  const button = $<HTMLButtonElement>('demo-run');
  button.disabled = true;
  out.textContent = 'running…\n';
  try {
    const r = await api.runDemo(await api.getDevice(), {
      size: Number($<HTMLInputElement>('demo-size').value),
      batch: Number($<HTMLInputElement>('demo-batch').value),
      log: (s) => {
        out.textContent += `${s}\n`;
      },
    });
    out.textContent = api.formatDemo(r);
  } catch (e) {
    out.textContent += `\nerror: ${(e as Error).message}`;
  } finally {
    button.disabled = false;
  }
}

function checkboxes(id: string, names: string[], checked: (n: string) => boolean): () => string[] {
  const box = $(id);
  for (const n of names) {
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.value = n;
    input.checked = checked(n);
    label.append(input, ` ${n}`);
    box.append(label);
  }
  return () => [...box.querySelectorAll('input')].filter((i) => i.checked).map((i) => i.value);
}

const benchModels = checkboxes(
  'bench-models',
  api.listModels().map((m) => m.name),
  (n) => n === 'mobilenet_v2',
);
const benchPeers = checkboxes(
  'bench-peers',
  ['ort-webgpu', 'tfjs-webgpu', 'litert-webgpu', 'litert-wasm', 'ort-wasm', 'ort-wasm-1t'],
  () => true,
);
let lastBench: unknown;

async function runBenchFromPage(): Promise<void> {
  const log = $('bench-log');
  const button = $<HTMLButtonElement>('bench-run');
  button.disabled = true;
  log.textContent = '';
  window.cnnlabLog = (s) => {
    log.textContent += `${s}\n`;
  };
  try {
    const { formatBenchTable } = await import('../bench/report.js');
    const b = await api.bench({
      models: benchModels(),
      peers: benchPeers() as never,
      quick: false,
      batches: $<HTMLInputElement>('bench-batch').value.split(',').map(Number),
      size: Number($<HTMLInputElement>('bench-size').value),
      iters: Number($<HTMLInputElement>('bench-iters').value),
      warmup: 1,
      kernels: $<HTMLInputElement>('bench-kernels').checked,
      command: 'web page',
      ortWasmPaths: '/vendor/ort/',
      litertWasmDir: '/vendor/litert/',
      tune: $<HTMLInputElement>('bench-tune').checked,
    });
    lastBench = b;
    const { formatTuneTable } = await import('../bench/tune.js');
    $('bench-table').textContent = formatBenchTable(b) + (b.tune?.length ? `\n\n${formatTuneTable(b.tune)}` : '');
    $<HTMLButtonElement>('bench-save').disabled = false;
  } catch (e) {
    log.textContent += `\nerror: ${(e as Error).message}`;
  } finally {
    button.disabled = false;
  }
}

function saveBench(): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([JSON.stringify(lastBench, null, 1)], { type: 'application/json' }));
  a.download = 'bench.json';
  a.click();
}

window.cnnlab = api;
void import('./robustness-ui.js').then((m) => m.setupRobustnessUi(api.getDevice));
void import('./transfer-ui.js').then((m) => m.setupTransferUi(api.getDevice));
void import('./finetune-ui.js').then((m) => m.setupFinetuneUi(api.getDevice));
void import('./study-ui.js').then((m) => m.setupStudyUi());
$('bench-run').addEventListener('click', () => void runBenchFromPage());
$('bench-save').addEventListener('click', saveBench);
$('demo-run').addEventListener('click', () => void runDemoFromPage());
void showDevice();
