/**
 * The device under test, for specs run on every backend (every_backend.ts): tensors are made on the
 * selected backend's device, and values come back with await (at once on the cpu, by a copy from a
 * GPU). A spec written in float64 runs in float64 where the backend computes it (js) and in
 * float32 elsewhere (native, webgpu): there its values are held to the parity bound (tolerance.ts).
 */
import assert from 'node:assert/strict';
import { backend } from '../../src/tensor/dispatch.js';
import { CPU, deviceMemory, type DType, type Device, type Storage } from '../../src/tensor/storage.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { Gradient } from '../../src/tensor/autograd.js';
import { assertClose, type CloseOptions } from './tensors.js';
import { atLeastParity } from './tolerance.js';

/** The device the backend under test runs on. */
export function testDevice(): Device {
  return backend().device;
}

/** Whether the backend under test computes float64 itself (else a float64 spec runs in float32 on it). */
export function computesFloat64(): boolean {
  return backend().dtypes.includes('float64');
}

/** The dtype a spec written in `dtype` runs in on the backend under test. */
export function dtypeUnderTest(dtype: DType = 'float64'): DType {
  return dtype === 'float64' && !computesFloat64() ? 'float32' : dtype;
}

/** These values as a tensor on the device under test. */
export function tensor(values: ArrayLike<number>, shape: readonly number[], dtype: DType = 'float64'): Tensor {
  return Tensor.from(values, shape, dtypeUnderTest(dtype), testDevice());
}

/** A zeroed tensor on the device under test. */
export function zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return Tensor.zeros(shape, dtypeUnderTest(dtype), testDevice());
}

/** A tensor of one value (the fill kernel) on the device under test. */
export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  return Tensor.full(shape, value, dtypeUnderTest(dtype), testDevice());
}

/** A copy of a host tensor on the device under test (data only), optionally a leaf that requires grad. */
export function onDevice(t: Tensor, requiresGrad = false): Tensor {
  const c = tensor(t.values(), t.shape, t.dtype);
  c.requiresGrad = requiresGrad;
  return c;
}

/** A storage of these values on the device under test (batch-norm's running statistics). */
export function storage(values: ArrayLike<number>, dtype: DType = 'float64'): Storage {
  const d = dtypeUnderTest(dtype);
  const host = d === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
  return deviceMemory(testDevice()).fromHost(host);
}

/** The values of a tensor or storage, read with await. */
export async function valuesOf(t: Tensor | Storage): Promise<number[]> {
  return Array.from(await t.read());
}

/** The value of a one-element tensor, read with await. */
export async function itemOf(t: Tensor): Promise<number> {
  assert.equal(t.size, 1, `itemOf: ${t.size} elements`);
  return (await t.read())[0];
}

/** A tensor's gradient values, read with await (it must have one). */
export async function gradOf(t: Tensor): Promise<number[]> {
  assert.ok(t.grad, `${t} has no gradient`);
  return Array.from(await t.grad.read());
}

/** An output gradient for backward(y, …): host values in y's dtype on the cpu, a storage on another device. */
export function seedFor(y: Tensor, values: ArrayLike<number>): Gradient {
  const host = y.dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
  return y.device === CPU ? host : deviceMemory(y.device).fromHost(host);
}

/**
 * Values from the backend under test against expected ones: as the spec states it where the
 * backend computes the spec's dtype (deepEqual without options, assertClose with them); held to
 * the parity bound, at least, where a float64 spec ran in float32 or the device is not the cpu.
 */
export function assertValues(actual: readonly number[], expected: readonly number[], opts?: CloseOptions, specDtype: DType = 'float64'): void {
  // A float32 spec on the cpu keeps its exact comparison (native computes float32 as written).
  const asWritten = testDevice() === CPU && dtypeUnderTest(specDtype) === specDtype;
  if (asWritten && !opts) assert.deepEqual(actual, expected);
  else if (asWritten) assertClose(actual, expected, opts);
  else assertClose(actual, expected, atLeastParity(expected, opts));
}
