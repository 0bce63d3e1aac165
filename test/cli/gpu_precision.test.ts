/**
 * --precision and --device checked per rank, in real processes on 127.0.0.1 (the GPU is SwiftShader
 * on a machine without one): a cpu rank 0 that can compute in bf16 beside a GPU rank 1, whose
 * device computes in fp32 only. Under `auto` rank 0 never hands the GPU rank bf16: the run trains in
 * fp32 on both and says why; under an explicit `--precision bf16` the GPU rank refuses before its
 * first step, naming itself. Skipped when no WebGPU adapter is found, except under CI=true.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MIN_SPEEDUP } from '../../src/train/engine/precision_auto.js';
import { TEST_TOKEN, freePort, runAll, tempDir } from '../helpers/cluster.js';
import { WEBGPU_CHILD_ENV, webGpuMissingInChild } from '../helpers/webgpu.js';

let dir = '';
let reason: string | null = null;
before(async () => {
  dir = tempDir('gpu-precision');
  reason = await webGpuMissingInChild();
  if (reason && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${reason}`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const ENV = { ...WEBGPU_CHILD_ENV, SMOLCLUSTER_TOKEN: TEST_TOKEN };
const RUN = ['--model', 'mlp', '--dataset', 'synthetic-regression', '--threads', '1', '--seed', '3', '--timeout', '30', '--batch-size', '8', '--max-steps', '3', '--checksum-every', '0'];

/** A cpu rank 0 and a GPU rank 1, both asking for `precision`. */
async function cpuBesideGpu(name: string, precision: string) {
  const master = `127.0.0.1:${await freePort()}`;
  return runAll(['cpu', 'gpu'].map((device, rank) => ({
    args: ['worker', ...RUN, '--precision', precision, '--rank', String(rank), '--world-size', '2', '--master', master, '--device', device, '--experiments-dir', dir, '--name', name],
    env: ENV,
  })), 150_000);
}

describe('a bf16-capable cpu rank beside a GPU rank', { timeout: 400_000 }, () => {
  it('--precision auto: both ranks compute in fp32 (the GPU rank cannot run bf16), and result.json says why', async (t) => {
    if (reason) return t.skip(reason);
    const exited = await cpuBesideGpu('auto', 'auto');
    exited.forEach((e, r) => assert.equal(e.code, 0, `rank ${r}: ${e.stderr}`));
    const result = JSON.parse(readFileSync(join(dir, 'auto', 'result.json'), 'utf8')) as { precision: string; precision_auto: { chose: string; reason: string; fp32_ms: number | null; bf16_ms: number | null }; per_rank: { device: string }[] };
    assert.deepEqual(result.per_rank.map((r) => r.device), ['cpu', 'webgpu']);
    assert.equal(result.precision, 'fp32');
    const joined = readFileSync(join(dir, 'auto', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; precision?: string }).filter((e) => e.kind === 'worker_joined');
    assert.deepEqual(joined.map((e) => e.precision), ['fp32', 'fp32']);
    const auto = result.precision_auto;
    t.diagnostic(`rank 0's choice: ${auto.chose} (${auto.reason})`);
    // Where rank 0 alone would have chosen bf16 (it measured it faster), the GPU rank is why the run is fp32.
    const rank0AloneBf16 = auto.bf16_ms !== null && auto.fp32_ms !== null && auto.bf16_ms * MIN_SPEEDUP <= auto.fp32_ms;
    if (rank0AloneBf16) assert.match(auto.reason, /^rank 1 trains on webgpu, which computes in fp32 only \(rank 0 alone would choose bf16: /);
    else assert.doesNotMatch(auto.reason, /rank 0 alone would choose bf16/);
  });

  it('--precision bf16: the GPU rank refuses before its first step, naming itself and its device', async (t) => {
    if (reason) return t.skip(reason);
    const exited = await cpuBesideGpu('bf16', 'bf16');
    assert.notEqual(exited[1].code, 0);
    assert.match(exited[1].stderr, /--precision bf16: rank 1 trains on webgpu, which cannot compute in bf16/);
    assert.doesNotMatch(exited[1].stderr, /gemmBf16|not available on the gpu device/);
    assert.notEqual(exited[0].code, 0, 'rank 0 cannot train without rank 1');
  });
});
