/**
 * A range of a model file mapped read-only (src/native/file_map.cc; one tensor's bytes, since an
 * ArrayBuffer holds at most 4 GiB and an 8B model's file is more): frozen weights bound to it hold
 * no copy in the process's heap, and the processes of one host that map the same file share its
 * pages (the page cache's). Null where the addon cannot map (not Linux, no addon, the pure-TS
 * backend): the reader then copies the bytes. Only weights that never change may be bound to it:
 * the memory is read-only, and a write is a fault.
 */
import { nativeAddonExports } from '../../tensor/backends/native.js';

/** The mapping of the pages that hold [offset, offset + length): it starts at the page holding `offset`. */
type MapFile = (path: string, offset: number, length: number) => ArrayBuffer;

/** Bytes [offset, offset + length) of the file, mapped read-only and shared, or null where mapping is not available. */
export function mapFileReadOnly(path: string, offset: number, length: number): Uint8Array | null {
  const map = nativeAddonExports()?.mapFileReadOnly as MapFile | undefined;
  if (typeof map !== 'function') return null;
  const pages = map(path, offset, length);
  return new Uint8Array(pages, pages.byteLength - length, length);
}
