// Errors the engine raises. Each names what is wrong: the node, the kernel, the tensor, the limit.

export { ShapeError } from '../kernels/kernel.js';
export { DeviceLostError, NoAdapterError } from './device.js';

/** A tensor needs a buffer larger than the device can bind. */
export class TensorTooLargeError extends Error {
  override name = 'TensorTooLargeError';
}

/** WGSL compilation, pipeline creation or a WebGPU validation error, tied to the kernel that caused it. */
export class KernelError extends Error {
  override name = 'KernelError';
}

/** Inputs handed to a plan that do not match its graph. */
export class InputError extends Error {
  override name = 'InputError';
}

export { WeightFileError } from './safetensors.js';
