/**
 * A storage's values in host memory, for code that must hand them to the host (the wire, a file,
 * a host optimizer). The one place that knows whether a device's memory is the host's own: where
 * it is (the cpu), the storage's memory itself is handed out, so sending reads nothing and
 * receiving installs the values; elsewhere (a GPU) a copy is read, or a fresh array received into
 * and written to the device by `install`. Callers never ask which device they are on.
 */
import { type Device, type DeviceMemory, deviceMemory, type HostArray, type Storage } from '../storage.js';

/**
 * The storage's own memory when the host addresses its device directly (the cpu), else undefined
 * (a GPU, or a device this process has not registered: nothing it could map).
 */
export function mappedMemory<H extends HostArray>(storage: Storage<H>): H | undefined {
  return registeredMemory(storage.device)?.hostMemory?.(storage);
}

function registeredMemory(device: Device): DeviceMemory | undefined {
  try {
    return deviceMemory(device);
  } catch {
    return undefined;
  }
}

/**
 * The values to read or send: the storage's own memory where mapped (nothing copied; do not
 * change it unless you mean to change the storage), else a copy read from the device.
 */
export function valuesToSend(storage: Storage<Float32Array>): Float32Array | Promise<Float32Array> {
  return mappedMemory(storage) ?? storage.read();
}

/** `valuesToSend` for several storages, awaited together. */
export function allValuesToSend(storages: readonly Storage<Float32Array>[]): Promise<Float32Array[]> {
  return Promise.all(storages.map(valuesToSend));
}

/**
 * Host memory to receive a storage's whole new value into: its own memory where mapped (receiving
 * is installing), else a fresh zeroed array that `install` writes to the device.
 */
export function valuesToReceive(storage: Storage<Float32Array>): Float32Array {
  return mappedMemory(storage) ?? new Float32Array(storage.size);
}

/** Makes `values` the storage's value: nothing to do when they are its own memory, else written to it. */
export function install(storage: Storage<Float32Array>, values: Float32Array): void {
  if (values !== mappedMemory(storage)) storage.write(values);
}

/** `install` for storages and the arrays `valuesToReceive` / `valuesToSend` gave for them, in order. */
export function installAll(storages: readonly Storage<Float32Array>[], values: readonly Float32Array[]): void {
  storages.forEach((s, i) => install(s, values[i]));
}

/**
 * The storage's own memory, for synchronous host code that runs only where the host maps it (a
 * host-resident server, a test); refused by name on a device it cannot map (read that with await).
 */
export function mappedOrRefuse<H extends HostArray>(storage: Storage<H>, what: string): H {
  const own = mappedMemory(storage);
  if (!own) throw new Error(`${what} lives on ${storage.device}, which the host cannot read synchronously: read it with await`);
  return own;
}
