/** Small files in CIFAR-10's binary format (3073-byte records), written by the tests that need them. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Record k of file f: label (f + k) % 10, pixel i of the 3072 = (f·31 + k·7 + i) mod 256. */
export function cifarRecord(f: number, k: number): Uint8Array {
  const r = new Uint8Array(3073);
  r[0] = (f + k) % 10;
  for (let i = 0; i < 3072; i++) r[1 + i] = (f * 31 + k * 7 + i) % 256;
  return r;
}

/** data_batch_1..5.bin with `perFile` records each and test_batch.bin (file index 5) with `testRecords`. */
export function writeCifarDir(dir: string, perFile = 3, testRecords = 2): string {
  mkdirSync(dir, { recursive: true });
  const file = (f: number, n: number): Buffer => Buffer.concat(Array.from({ length: n }, (_, k) => cifarRecord(f, k)));
  for (let f = 0; f < 5; f++) writeFileSync(join(dir, `data_batch_${f + 1}.bin`), file(f, perFile));
  writeFileSync(join(dir, 'test_batch.bin'), file(5, testRecords));
  return dir;
}
