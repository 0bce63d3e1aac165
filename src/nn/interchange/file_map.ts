/**
 * A model file mapped read-only (src/native/file_map.cc): frozen weights bound to views of it hold
 * no copy in the process's heap, and the processes of one host that map the same file share its
 * pages (the page cache's). Null where the addon cannot map (not Linux, no addon, the pure-TS
 * backend): the reader then copies the bytes. Only weights that never change may be bound to it:
 * the memory is read-only, and a write is a fault.
 */
import { nativeAddonExports } from '../../tensor/backends/native.js';

type MapFile = (path: string) => ArrayBuffer;

/** The whole file's bytes, mapped read-only and shared, or null where mapping is not available. */
export function mapFileReadOnly(path: string): Uint8Array | null {
  const map = nativeAddonExports()?.mapFileReadOnly as MapFile | undefined;
  if (typeof map !== 'function') return null;
  return new Uint8Array(map(path));
}
