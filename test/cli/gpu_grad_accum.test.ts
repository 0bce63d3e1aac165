/**
 * Gradient accumulation on GPU workers, in real processes on 127.0.0.1 (SwiftShader on a machine
 * without a GPU): `--strategy ps --grad-accum 2 --device gpu` keeps the server on the cpu (it only
 * aggregates, in host memory) while its workers accumulate on the GPU, and trains like the same run
 * on the cpu. The accumulating wrapper once forwarded the strategy's members by hand and dropped
 * `hostOnly`, so the server's model went to the GPU and its synchronous reads failed. Skipped when
 * no WebGPU adapter is found, except under CI=true.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TEST_TOKEN, freePort, largestParamDifference, runAll, stepRecords, tempDir } from '../helpers/cluster.js';
import { WEBGPU_CHILD_ENV, webGpuMissingInChild } from '../helpers/webgpu.js';

let dir = '';
let reason: string | null = null;
before(async () => {
  dir = tempDir('gpu-grad-accum');
  reason = await webGpuMissingInChild();
  if (reason && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${reason}`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const ENV = { ...WEBGPU_CHILD_ENV, SMOLCLUSTER_TOKEN: TEST_TOKEN };
const RUN = [
  '--model', 'mlp', '--dataset', 'synthetic-regression', '--threads', '1', '--seed', '3', '--timeout', '60',
  '--strategy', 'ps', '--grad-accum', '2', '--batch-size', '4', '--max-steps', '3', '--optimizer', 'adamw', '--lr', '0.01',
];

/** One ps cluster, rank r on devices[r]; its result.json and its saved model. */
async function cluster(name: string, devices: string[]): Promise<{ result: { per_rank: { device: string }[]; final_loss: number }; stderr: string[]; model: string }> {
  const master = `127.0.0.1:${await freePort()}`;
  const model = join(dir, `${name}.model`);
  const runs = devices.map((device, rank) => ({
    args: ['worker', ...RUN, '--rank', String(rank), '--world-size', String(devices.length), '--master', master, '--device', device, '--experiments-dir', dir, '--name', name, '--save', model],
    env: ENV,
  }));
  const exited = await runAll(runs, 150_000);
  exited.forEach((e, r) => assert.equal(e.code, 0, `rank ${r} (${devices[r]}): ${e.stderr}`));
  return { result: JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8')), stderr: exited.map((e) => e.stderr), model };
}

describe('--strategy ps --grad-accum 2 --device gpu', { timeout: 400_000 }, () => {
  it('the server stays on the cpu, the GPU workers accumulate, and the run equals the all-cpu one', async (t) => {
    if (reason) return t.skip(reason);
    const gpu = await cluster('ps-accum-gpu', ['gpu', 'gpu', 'gpu']);
    const cpu = await cluster('ps-accum-cpu', ['cpu', 'cpu', 'cpu']);
    assert.deepEqual(gpu.result.per_rank.map((r) => r.device), ['cpu', 'webgpu', 'webgpu']);
    assert.match(gpu.stderr[0], /rank 0 \(ps\) stays on the cpu/);
    for (const rank of [1, 2]) {
      const got = stepRecords(join(dir, 'ps-accum-gpu', 'metrics.jsonl'), rank);
      const want = stepRecords(join(dir, 'ps-accum-cpu', 'metrics.jsonl'), rank);
      assert.equal(got.length, 3, `rank ${rank} steps`);
      assert.deepEqual(got.map((r) => r.samples), [8, 8, 8], 'each worker step is 2 micro-batches of 4');
      got.forEach((r, s) => assert.ok(Math.abs(r.loss! - want[s].loss!) <= 1e-5 * Math.max(1, Math.abs(want[s].loss!)), `rank ${rank} step ${s}: ${r.loss} against ${want[s].loss}`));
    }
    const worst = largestParamDifference(gpu.model, cpu.model);
    t.diagnostic(`largest parameter difference from the all-cpu run: ${worst}`);
    assert.ok(worst <= 1e-4, `parameters differ by up to ${worst}`);
  });
});
