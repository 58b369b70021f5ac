// One way to get a GPUDevice, in the browser (navigator.gpu) and in Node (npm `webgpu`, i.e. Dawn).
// We ask for the adapter's maximum limits: conv weights and activations of large models need
// more than the 128 MiB default binding size. Optional features are requested when the adapter
// has them: `timestamp-query` (profiles), `subgroups` (subgroup-shared kernel variants) and
// `shader-f16` (the full-f16 kernel variants); what each adapter reports is in docs/swiftshader.md
// and docs/kernels-gpu.md.

import type { LowerContext, Limits } from '../kernels/kernel.js';

export interface DeviceInfo {
  runtime: 'browser' | 'node';
  vendor: string;
  architecture: string;
  description: string;
  features: string[];
  /**
   * The subgroup size when the device has the 'subgroups' feature and the adapter reports one
   * fixed size (SwiftShader: 4); kernels may then use subgroup broadcasts. Otherwise 0.
   */
  subgroupSize: number;
  /**
   * The range of subgroup sizes the adapter reports (adapter.info.subgroupMinSize..MaxSize) when
   * the device has 'subgroups', else 0 and 0. Kernels that must be right for any size in the
   * range read these (kernels/matmul.ts, kernels/conv2d.ts `sg`). Absent in records written
   * before they were recorded.
   */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  /** Whether the device has 'shader-f16' (WGSL `enable f16;`: the full-f16 kernel variants). */
  shaderF16?: boolean;
  /** The limits the kernels read (the kernel contract's Limits), as granted to the device. */
  limits: Limits;
}

export interface Device {
  gpu: GPUDevice;
  info: DeviceInfo;
  hasTimestamps: boolean;
  /** Set once the device is lost; every later use throws DeviceLostError. */
  lost: { reason: string; message: string } | null;
  destroy(): void;
}

export class NoAdapterError extends Error {
  override name = 'NoAdapterError';
}

export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
}

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export interface CreateDeviceOptions {
  powerPreference?: GPUPowerPreference;
  /** Request timestamp queries when the adapter has them (default true). */
  timestamps?: boolean;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

// Dawn's Node instance must outlive every device made from it: if it is garbage-collected,
// the process aborts in native code. So it is created once and kept here.
let nodeInstance: GPU | undefined;

async function nodeGpu(): Promise<{ gpu: GPU; hint: string }> {
  const fs = await import('node:fs');
  let hint = '';
  if (!process.env.VK_ICD_FILENAMES) {
    if (fs.existsSync(SWIFTSHADER_ICD)) {
      process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    } else {
      hint =
        `VK_ICD_FILENAMES is unset and ${SWIFTSHADER_ICD} does not exist: install Debian's chromium ` +
        `(apt-get update && apt-get install -y chromium libvulkan1) for the SwiftShader adapter, ` +
        `or point VK_ICD_FILENAMES at your GPU's Vulkan ICD.`;
    }
  } else {
    hint = `VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES}.`;
  }
  if (
    !fs.existsSync('/usr/lib/x86_64-linux-gnu/libvulkan.so.1') &&
    !fs.existsSync('/usr/lib/aarch64-linux-gnu/libvulkan.so.1') &&
    process.platform === 'linux'
  ) {
    hint += ' The Vulkan loader libvulkan.so.1 was not found: apt-get install -y libvulkan1.';
  }
  let mod: typeof import('webgpu');
  try {
    mod = await import('webgpu');
  } catch (e) {
    throw new NoAdapterError(
      `cannot load the npm package 'webgpu' (Dawn for Node): ${(e as Error).message}. Run npm ci.`,
    );
  }
  Object.assign(globalThis, mod.globals);
  nodeInstance ??= mod.create([]) as GPU;
  return { gpu: nodeInstance, hint };
}

export async function createDevice(opts: CreateDeviceOptions = {}): Promise<Device> {
  let gpu: GPU | undefined;
  let hint = '';
  if (isNode) {
    ({ gpu, hint } = await nodeGpu());
  } else {
    gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) {
      const secure = (globalThis as { isSecureContext?: boolean }).isSecureContext;
      throw new NoAdapterError(
        secure === false
          ? 'navigator.gpu is missing because this page is not a secure context: serve it from http://localhost or https.'
          : 'navigator.gpu is missing: this browser has no WebGPU (Chromium needs --enable-unsafe-webgpu on Linux).',
      );
    }
  }
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference });
  if (!adapter)
    throw new NoAdapterError(`requestAdapter() returned null: no WebGPU adapter is available. ${hint}`.trim());

  const wantTs = opts.timestamps !== false && adapter.features.has('timestamp-query');
  const requiredLimits: Record<string, number> = {};
  for (const k of [
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeWorkgroupsPerDimension',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupSizeZ',
    'maxComputeWorkgroupStorageSize',
    'maxStorageBuffersPerShaderStage',
  ] as const) {
    requiredLimits[k] = adapter.limits[k];
  }
  const ai = adapter.info ?? ({} as GPUAdapterInfo);
  const sgInfo = ai as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const hasSg = adapter.features.has('subgroups') && !!sgInfo.subgroupMinSize && !!sgInfo.subgroupMaxSize;
  const sgMin = hasSg ? sgInfo.subgroupMinSize! : 0;
  const sgMax = hasSg ? sgInfo.subgroupMaxSize! : 0;
  const sgSize = hasSg && sgMin === sgMax ? sgMin : 0;
  const f16 = adapter.features.has('shader-f16');
  const requiredFeatures: GPUFeatureName[] = [];
  if (wantTs) requiredFeatures.push('timestamp-query');
  if (hasSg) requiredFeatures.push('subgroups' as GPUFeatureName);
  if (f16) requiredFeatures.push('shader-f16');
  const gpuDevice = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits,
  });
  const l = gpuDevice.limits;
  const device: Device = {
    gpu: gpuDevice,
    hasTimestamps: wantTs,
    lost: null,
    info: {
      runtime: isNode ? 'node' : 'browser',
      vendor: ai.vendor ?? '',
      architecture: ai.architecture ?? '',
      description: ai.description ?? '',
      features: [...adapter.features].sort(),
      subgroupSize: sgSize,
      subgroupMinSize: sgMin,
      subgroupMaxSize: sgMax,
      shaderF16: f16,
      limits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      },
    },
    destroy: () => gpuDevice.destroy(),
  };
  gpuDevice.lost.then((info) => {
    device.lost = { reason: String(info.reason), message: info.message };
  });
  return device;
}

/** What kernels read of a device when they lower (LowerContext less the per-node fields). */
export function kernelContext(info: DeviceInfo): Omit<LowerContext, 'prefer' | 'constInputs'> {
  return {
    limits: info.limits,
    subgroupSize: info.subgroupSize,
    subgroupMinSize: info.subgroupMinSize ?? info.subgroupSize,
    subgroupMaxSize: info.subgroupMaxSize ?? info.subgroupSize,
    shaderF16: info.shaderF16 ?? false,
    cpuAdapter: isCpuAdapter(info),
  };
}

/** SwiftShader (and Mesa's llvmpipe/lavapipe): a Vulkan on the CPU, by what the adapter reports. */
export function isCpuAdapter(info: Pick<DeviceInfo, 'architecture' | 'description'>): boolean {
  return /swiftshader|llvmpipe|lavapipe/i.test(`${info.architecture} ${info.description}`);
}

export function describeDevice(d: Device): string {
  const i = d.info;
  const name = [i.vendor, i.architecture, i.description].filter(Boolean).join(' / ') || 'unknown adapter';
  return `${name} (${i.runtime}; timestamps ${d.hasTimestamps ? 'yes' : 'no'}; max binding ${(i.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB)`;
}

export function assertAlive(d: Device, what: string): void {
  if (d.lost) throw new DeviceLostError(`${what}: the GPU device was lost (${d.lost.reason}): ${d.lost.message}`);
}
