/**
 * scripts/count-raw-buffer-uses.mjs (issue 19 §1, issue 29 §1): outside src/tensor/backends/, no
 * code touches a tensor's or arena's raw buffer except through the storage handle (the count stays
 * at 0); synchronous host reads and device branches may only shrink (CEILING, lowered as the
 * boundary moves into src/train/boundary/). The counter itself finds each kind where it exists.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const SCRIPT = fileURLToPath(new URL('../../../scripts/count-raw-buffer-uses.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * The one place the ceilings live: the counts of this checkout may not grow past them. Lower them
 * when a change removes reads or branches (issue 29's targets: grep A < 5, grep B < 10).
 */
// 15: the mixture-of-experts router (nn/layers/sparse_moe.ts) picks its top-k experts on the host
// inside the synchronous forward; a device top-k kernel is what would take it back to 14.
const CEILING = { syncReads: 15, deviceBranches: 0 };

interface Tally {
  total: number;
  files: Record<string, number>;
}

function count(root: string): Tally & { syncReads: Tally; deviceBranches: Tally } {
  const run = spawnSync(process.execPath, [SCRIPT, root, '--json'], { encoding: 'utf8', cwd: ROOT });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as Tally & { syncReads: Tally; deviceBranches: Tally };
}

const counted = count(ROOT);

test('no raw tensor or arena buffer use outside src/tensor/backends/', () => {
  const { total, files } = counted;
  assert.equal(total, 0, `raw buffer uses: ${JSON.stringify(files)}`);
});

test('synchronous host reads and device branches above the backends stay under their ceilings', () => {
  const { syncReads, deviceBranches } = counted;
  assert.ok(syncReads.total <= CEILING.syncReads, `synchronous host reads: ${syncReads.total} > ${CEILING.syncReads}: ${JSON.stringify(syncReads.files)}`);
  assert.ok(deviceBranches.total <= CEILING.deviceBranches, `device branches: ${deviceBranches.total} > ${CEILING.deviceBranches}: ${JSON.stringify(deviceBranches.files)}`);
});

test('the counter finds .data / .grad host arrays and DeviceBuffer casts, and ignores the backends folder', () => {
  const root = mkdtempSync(join(tmpdir(), 'smolcluster-rawbuf-'));
  const write = (rel: string, text: string): void => {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  };
  try {
    write('tsconfig.json', JSON.stringify({ compilerOptions: { strict: true, target: 'ES2022', module: 'NodeNext' } }));
    write('src/tensor.ts', [
      'export interface DeviceBuffer { readonly brand: true }',
      'export class Tensor { data = new Float32Array(2); grad: Float32Array | null = null; buffer = {} as DeviceBuffer; }',
    ].join('\n'));
    write('src/user.ts', [
      "import { Tensor } from './tensor.js';",
      'export function f(t: Tensor): number { return t.data[0] + (t.grad ? t.grad[1] : 0) + (t.buffer as unknown as Float32Array)[0]; }',
    ].join('\n'));
    write('src/tensor/backends/k.ts', "import { Tensor } from '../../tensor.js';\nexport const g = (t: Tensor): number => t.data[0];\n");
    const { total, files } = count(root);
    assert.deepEqual(files, { 'src/user.ts': 4 });
    assert.equal(total, 4);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the counter finds sync reads by any name and device branches, and exempts the boundary rooms, cli and config', () => {
  const root = mkdtempSync(join(tmpdir(), 'smolcluster-boundary-'));
  const write = (rel: string, text: string): void => {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  };
  try {
    write('tsconfig.json', JSON.stringify({ compilerOptions: { strict: true, target: 'ES2022', module: 'NodeNext' } }));
    write('src/tensor/storage.ts', [
      "export const CPU = 'cpu';",
      'export interface Storage { device: string; peek(): Float32Array; read(): Promise<Float32Array> }',
      'export class Tensor { constructor(readonly storage: Storage) {} item(): number { return 0; } shape(): string { return ""; } }',
      'export interface DeviceMemory { hostMemory?(s: Storage): Float32Array }',
    ].join('\n'));
    const user = [
      "import { CPU as HOST, Tensor, type DeviceMemory, type Storage } from '../tensor/storage.js';",
      'export async function f(s: Storage, t: Tensor, m: DeviceMemory): Promise<number> {',
      '  m.hostMemory?.(s);', // the cpu's own memory, handed out synchronously: a read
      '  const onHost = s.device === HOST;', // a branch (the renamed constant)
      "  if (onHost || s.device !== 'webgpu') return s.peek()[0] + t.item();", // a branch, a use of onHost, two sync reads
      '  t.shape();', // not a read: a string
      '  return (await s.read())[0];', // asynchronous: not counted
      '}',
    ].join('\n');
    write('src/train/user.ts', user);
    write('src/train/boundary/map.ts', user.replace("'../tensor/storage.js'", "'../../tensor/storage.js'"));
    write('src/tensor/boundary/map.ts', user.replace("'../tensor/storage.js'", "'../storage.js'"));
    write('src/cli/opts.ts', "export const isCpu = (d: string): boolean => d === 'cpu';\n");
    const { syncReads, deviceBranches } = count(root);
    assert.deepEqual(syncReads.files, { 'src/train/user.ts': 3 });
    assert.deepEqual(deviceBranches.files, { 'src/train/user.ts': 3, 'src/train/boundary/map.ts': 3, 'src/tensor/boundary/map.ts': 3 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
