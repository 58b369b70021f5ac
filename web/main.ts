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
      log: (s) => { out.textContent += `${s}\n`; },
    });
    out.textContent = api.formatDemo(r);
  } catch (e) {
    out.textContent += `\nerror: ${(e as Error).message}`;
  } finally {
    button.disabled = false;
  }
}

window.cnnlab = api;
$('demo-run').addEventListener('click', () => void runDemoFromPage());
void showDevice();
