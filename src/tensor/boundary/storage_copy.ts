/**
 * Copies between storages without a host read: values the host addresses (the cpu's own memory)
 * are written to the target's device as they are; a storage on the target's own device is copied
 * there by a kernel. What neither covers (one GPU's values onto another device) must be read with
 * await first: `canCopy` says which, so a caller refuses before it has copied anything.
 */
import { kernelsFor } from '../dispatch.js';
import { type Device, type Storage, deviceMemory } from '../storage.js';
import { mappedMemory } from './host_values.js';

/** Whether `from`'s values reach `device` synchronously: the same device, or memory the host addresses. */
export function canCopy(from: Storage<Float32Array>, device: Device): boolean {
  return from.device === device || mappedMemory(from) !== undefined;
}

/** `from`'s values into `to` at `offset` (on the same device, or from host-addressed memory). */
export function copyInto(to: Storage<Float32Array>, from: Storage<Float32Array>, offset = 0): void {
  const host = mappedMemory(from);
  if (host) return to.write(host, offset);
  if (from.device !== to.device) throw new Error(`copyInto: ${from.device} values cannot reach ${to.device} without an awaited read`);
  // x·1 + (−0) is x bit for bit (a +0 shift would turn −0 into +0).
  kernelsFor(to).affine(from.buffer, 1, -0, to.view(offset, from.size).buffer);
}

/** A new storage on `device` holding `from`'s values (the counterpart of copyInto for a whole move). */
export function copyTo(from: Storage<Float32Array>, device: Device): Storage<Float32Array> {
  const to = deviceMemory(device).alloc('float32', from.size) as Storage<Float32Array>;
  copyInto(to, from);
  return to;
}
