/**
 * Storages replaced whole by values that arrive on the host (a server's welcome, a resync, an
 * elastic hand-over, a resharded checkpoint). On the cpu the values are received straight into the
 * storages' own memory, so receiving them installs them; on a device they are received into fresh
 * host arrays and written there afterwards.
 */
import { CPU, type Storage } from './storage.js';

/** Host arrays to receive each storage's whole value into: a cpu storage's own memory, a fresh array for a device's. */
export function arraysToOverwrite(storages: readonly Storage<Float32Array>[]): Float32Array[] {
  return storages.map((s) => (s.device === CPU ? s.readSync() : new Float32Array(s.size)));
}

/** Writes what arraysToOverwrite handed out to the storages on a device (the cpu's hold it already). */
export function writeOverwritten(storages: readonly Storage<Float32Array>[], received: readonly Float32Array[]): void {
  storages.forEach((s, i) => {
    if (s.device !== CPU) s.write(received[i]);
  });
}
