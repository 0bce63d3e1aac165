/** Builders for small IDX files in a temporary directory (never inside the repository). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** IDX bytes: header with the given type byte and dims, then `body` (default: zeros of the declared size). */
export function idxBytes(dims: number[], body?: Uint8Array, typeByte = 0x08): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  const data = body ?? new Uint8Array(count);
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  out[2] = typeByte;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

export function gzip(bytes: Uint8Array): Uint8Array {
  return gzipSync(bytes);
}

/** A fresh temp dir; call the returned cleanup when done. */
export function tempDir(): { dir: string; file: (name: string, bytes: Uint8Array) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'smolcluster-data-'));
  return {
    dir,
    file: (name, bytes) => {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
