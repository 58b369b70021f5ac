// TF.js on its CPU backend for a test file's reference computations (bench/peers tests): call
// useTfjsCpu() at the top level of the file.

import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, vi } from 'vitest';

export function useTfjsCpu(): void {
  beforeAll(async () => {
    // TF.js greets Node users once with an advert for tfjs-node; keep the test log clean of it.
    const warn = console.warn;
    vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
      if (!String(args[0]).includes('tfjs-node')) warn(...args);
    });
    await tf.setBackend('cpu');
    await tf.ready();
  });
  afterAll(() => {
    vi.restoreAllMocks();
  });
}
