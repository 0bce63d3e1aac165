/**
 * scripts/count-raw-buffer-uses.mjs (issue 19 §1): outside src/tensor/backends/, no code touches a
 * tensor's or arena's raw buffer except through the storage handle. The count stays at 0, and the
 * counter itself finds such uses where they exist.
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

function count(root: string): { total: number; files: Record<string, number> } {
  const run = spawnSync(process.execPath, [SCRIPT, root, '--json'], { encoding: 'utf8', cwd: ROOT });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as { total: number; files: Record<string, number> };
}

test('no raw tensor or arena buffer use outside src/tensor/backends/', () => {
  const { total, files } = count(ROOT);
  assert.equal(total, 0, `raw buffer uses: ${JSON.stringify(files)}`);
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
