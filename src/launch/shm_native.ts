/**
 * The native addon's shared-memory half for comm (comm/shm/native.ts), from the addon the tensor
 * engine loads: comm imports nothing of tensor/, so the launcher hands it in.
 */
import { type ShmNative, shmFrom } from '../comm/shm/native.js';
import { nativeAddonExports } from '../tensor/backends/native.js';

/** Null when the addon is missing or was built without shared memory (not Linux). */
export function shmNative(): ShmNative | null {
  return shmFrom(nativeAddonExports());
}
