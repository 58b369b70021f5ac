// `npx cnnlab info`: the WebGPU adapter Node sees (Dawn).

import { createDevice, describeDevice } from '../engine/device.js';

export async function infoCmd(): Promise<number> {
  const d = await createDevice();
  console.log(describeDevice(d));
  console.log(JSON.stringify(d.info, null, 2));
  d.destroy();
  return 0;
}
