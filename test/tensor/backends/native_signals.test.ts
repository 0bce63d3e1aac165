/**
 * oneDNN 2.6.3's dnnl_sgemm kernels point rsp into a heap workspace while they run, so a signal
 * arriving mid-call wrote its frame over malloc's headers and a later free() aborted (the bert-mini
 * crash under `node --cpu-prof` that reverted a8bce1d). The addon now blocks signals around those
 * calls (src/native/signal_guard.h). This runs dnnl_sgemm GEMMs, each on fresh buffers, for two
 * seconds under the V8 profiler sampling every 50 µs: without the guard the child aborted within a
 * second in every run (glibc "corrupted size vs. prev_size").
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadNativeBackend, nativeInternals } from '../../../src/tensor/backends/native.js';

const nativeUrl = new URL('../../../src/tensor/backends/native.js', import.meta.url).href;

function hasDnnlSgemm(): boolean {
  if (!loadNativeBackend().backend) return false;
  const internals = nativeInternals()!;
  try {
    internals.setGemmEngine('dnnl_sgemm');
    return true;
  } catch {
    return false;
  } finally {
    internals.setGemmEngine('auto');
  }
}

const child = `
import { loadNativeBackend, nativeInternals } from ${JSON.stringify(nativeUrl)};
const n = loadNativeBackend().backend;
n.setThreads(Number(process.argv[1]));
nativeInternals().setGemmEngine('dnnl_sgemm');
const M = 256, N = 384, K = 512;
const t0 = performance.now();
let calls = 0;
while (performance.now() - t0 < 2000) {
  const A = new Float32Array(M * K).fill(1), B = new Float32Array(K * N).fill(1), C = new Float32Array(M * N);
  n.gemm(false, false, M, N, K, 1, A, 0, B, 0, 1, C, 0, 1);
  if (C[M * N - 1] !== K) throw new Error('wrong product ' + C[M * N - 1]);
  calls++;
}
console.log('calls', calls);
`;

for (const threads of [1, 2]) {
  test(`dnnl_sgemm survives the CPU profiler's signals (${threads} thread(s))`, (t) => {
    if (!hasDnnlSgemm()) {
      t.skip('addon built without oneDNN');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'sc-sig-'));
    try {
      const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '50', '--input-type=module', '-e', child, String(threads)], {
        encoding: 'utf8', timeout: 60_000,
      });
      assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /calls \d+/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
