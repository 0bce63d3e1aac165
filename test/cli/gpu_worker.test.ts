/**
 * A GPU worker beside cpu workers, in real processes on 127.0.0.1 (the GPU is SwiftShader on a
 * machine without one): each `smolcluster worker` takes its own --device. Under allreduce a GPU
 * rank 0 and a cpu rank 1 compute the same model as one process at the same global batch (within
 * float32 tolerance: the two devices sum in different orders); every other strategy runs a couple
 * of steps with a GPU worker and says so in result.json (ps --ps-reply gradients checked against
 * the all-cpu run); ZeRO-3 with a GPU rank equals one process too. Skipped when no WebGPU adapter
 * is found, except under CI=true.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TEST_TOKEN, errorLines, freePort, largestParamDifference, runAll, runCliProcess, stepRecords, tempDir } from '../helpers/cluster.js';
import { WEBGPU_CHILD_ENV, webGpuMissingInChild } from '../helpers/webgpu.js';

let dir = '';
let reason: string | null = null;
before(async () => {
  dir = tempDir('gpu-worker');
  reason = await webGpuMissingInChild();
  if (reason && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${reason}`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const ENV = { ...WEBGPU_CHILD_ENV, SMOLCLUSTER_TOKEN: TEST_TOKEN };
const RUN = ['--model', 'mlp', '--dataset', 'synthetic-regression', '--threads', '1', '--seed', '3', '--timeout', '60'];

/** The processes of one cluster: rank r on devices[r], each with its own --device. */
async function cluster(name: string, devices: string[], ...extra: string[]): Promise<{ result: Record<string, unknown> & { per_rank: { device: string }[] }; stderr: string[] }> {
  const master = `127.0.0.1:${await freePort()}`;
  const runs = devices.map((device, rank) => ({
    args: ['worker', ...RUN, ...extra, '--rank', String(rank), '--world-size', String(devices.length), '--master', master, '--device', device, '--experiments-dir', dir, '--name', name],
    env: ENV,
  }));
  const exited = await runAll(runs, 150_000);
  exited.forEach((e, r) => assert.equal(e.code, 0, `rank ${r} (${devices[r]}): ${e.stderr}`));
  return { result: JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8')), stderr: exited.map((e) => e.stderr) };
}

describe('a GPU worker in a cluster', { timeout: 600_000 }, () => {
  it('allreduce: GPU rank 0 + cpu rank 1 equal one process (losses, test loss, saved parameters)', async (t) => {
    if (reason) return t.skip(reason);
    const steps = ['--max-steps', '4', '--optimizer', 'adamw', '--lr', '0.01'];
    const mixed = await cluster('mixed', ['gpu', 'cpu'], ...steps, '--batch-size', '8', '--checksum-every', '2', '--save', join(dir, 'mixed.model'));
    const one = await runCliProcess(['train', ...RUN, ...steps, '--batch-size', '16', '--experiments-dir', dir, '--name', 'one', '--save', join(dir, 'one.model')], { env: ENV, timeoutMs: 60_000 });
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual(mixed.result.per_rank.map((r) => r.device), ['webgpu', 'cpu']);
    assert.equal(mixed.result.device, 'webgpu');
    const got = stepRecords(join(dir, 'mixed', 'metrics.jsonl'), 0).map((r) => r.loss ?? NaN);
    const want = stepRecords(join(dir, 'one', 'metrics.jsonl')).map((r) => r.loss ?? NaN);
    assert.equal(got.length, want.length);
    got.forEach((l, s) => assert.ok(Math.abs(l - want[s]) <= 1e-5 * Math.max(1, Math.abs(want[s])), `step ${s}: ${l} against ${want[s]}`));
    const oneResult = JSON.parse(readFileSync(join(dir, 'one', 'result.json'), 'utf8')) as { test_loss: number };
    assert.ok(Math.abs((mixed.result.test_loss as number) - oneResult.test_loss) <= 1e-5 * Math.max(1, oneResult.test_loss));
    const worst = largestParamDifference(join(dir, 'mixed.model'), join(dir, 'one.model'));
    assert.ok(worst <= 1e-4, `parameters differ by up to ${worst}`);
  });

  const accepting: Array<{ strategy: string; devices: string[]; extra: string[]; gpuRanks: number[] }> = [
    // The server (rank 0) only aggregates: it stays on the cpu whatever its flag says.
    { strategy: 'ps', devices: ['gpu', 'gpu', 'cpu'], extra: [], gpuRanks: [1] },
    { strategy: 'async-ps', devices: ['cpu', 'gpu', 'cpu'], extra: ['--push-every', '1'], gpuRanks: [1] },
    { strategy: 'local-sgd', devices: ['cpu', 'gpu'], extra: ['--inner-steps', '2'], gpuRanks: [1] },
    { strategy: 'diloco', devices: ['gpu', 'cpu'], extra: ['--inner-steps', '2'], gpuRanks: [0] },
  ];
  for (const c of accepting) {
    it(`${c.strategy} accepts a GPU worker`, async (t) => {
      if (reason) return t.skip(reason);
      const run = await cluster(c.strategy, c.devices, '--strategy', c.strategy, '--max-steps', '3', '--batch-size', '8', ...c.extra);
      const gpu = run.result.per_rank.flatMap((r, i) => (r.device === 'webgpu' ? [i] : []));
      assert.deepEqual(gpu, c.gpuRanks, JSON.stringify(run.result.per_rank));
      assert.ok(Number.isFinite(run.result.final_loss as number), String(run.result.final_loss));
      if (c.strategy === 'ps') assert.match(run.stderr[0], /rank 0 \(ps\) stays on the cpu/);
    });
  }

  it('load balancing shares a GPU and a cpu worker\'s batch by their measured speed', async (t) => {
    if (reason) return t.skip(reason);
    await cluster('balanced', ['cpu', 'gpu'], '--hidden', '256', '--batch-size', '32', '--max-steps', '12', '--checksum-every', '0',
      '--enable-load-balancing', '--load-balance-policy', 'dynamic', '--rebalance-interval', '5');
    const events = readFileSync(join(dir, 'balanced', 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const decisions = events.filter((e) => e.kind === 'rebalance') as Array<{ shares: number[]; ms_per_sample: number[] }>;
    assert.ok(decisions.length > 0, 'no rebalance decision');
    // Whichever device measured faster per sample (on SwiftShader the cpu; on a real GPU perhaps the GPU) takes the larger share.
    const first = decisions[0];
    const faster = first.ms_per_sample[0] < first.ms_per_sample[1] ? 0 : 1;
    assert.ok(first.shares[faster] > 0.5, JSON.stringify(first));
    const r1 = stepRecords(join(dir, 'balanced', 'metrics.jsonl'), 1);
    const r0 = stepRecords(join(dir, 'balanced', 'metrics.jsonl'), 0);
    assert.ok(r0.every((r, s) => r.samples + r1[s].samples === 64), 'every step covers the global batch');
  });

  it('ps --ps-reply gradients: a GPU worker holds the server\'s weights bit for bit (checksums every version) and the run equals the all-cpu one', async (t) => {
    if (reason) return t.skip(reason);
    // AdamW: optimizer state on every worker, the case a GPU optimizer could not keep bit-equal.
    const args = ['--strategy', 'ps', '--ps-reply', 'gradients', '--checksum-every', '1', '--optimizer', 'adamw', '--lr', '0.01', '--max-steps', '3', '--batch-size', '8'];
    const mixed = await cluster('ps-gradients', ['cpu', 'gpu', 'cpu'], ...args, '--save', join(dir, 'ps-gradients.model'));
    const cpu = await cluster('ps-gradients-cpu', ['cpu', 'cpu', 'cpu'], ...args, '--save', join(dir, 'ps-gradients-cpu.model'));
    assert.deepEqual(mixed.result.per_rank.map((r) => r.device), ['cpu', 'webgpu', 'cpu']);
    const got = stepRecords(join(dir, 'ps-gradients', 'metrics.jsonl'), 0).map((r) => r.loss ?? NaN);
    const want = stepRecords(join(dir, 'ps-gradients-cpu', 'metrics.jsonl'), 0).map((r) => r.loss ?? NaN);
    assert.equal(got.length, 3);
    got.forEach((l, s) => assert.ok(Math.abs(l - want[s]) <= 1e-5 * Math.max(1, Math.abs(want[s])), `step ${s}: ${l} against ${want[s]}`));
    const worst = largestParamDifference(join(dir, 'ps-gradients.model'), join(dir, 'ps-gradients-cpu.model'));
    t.diagnostic(`largest parameter difference from the all-cpu run: ${worst}`);
    assert.ok(worst <= 1e-4, `parameters differ by up to ${worst}`);
  });

  it('allreduce --zero 3: GPU rank 0 + cpu rank 1 equal one process (losses, test loss, saved parameters)', async (t) => {
    if (reason) return t.skip(reason);
    const steps = ['--max-steps', '3', '--optimizer', 'adamw', '--lr', '0.01'];
    const zero = await cluster('zero3', ['gpu', 'cpu'], ...steps, '--zero', '3', '--batch-size', '8', '--save', join(dir, 'zero3.model'));
    const one = await runCliProcess(['train', ...RUN, ...steps, '--batch-size', '16', '--experiments-dir', dir, '--name', 'zero3-one', '--save', join(dir, 'zero3-one.model')], { env: ENV, timeoutMs: 60_000 });
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual(zero.result.per_rank.map((r) => r.device), ['webgpu', 'cpu']);
    const got = stepRecords(join(dir, 'zero3', 'metrics.jsonl'), 0).map((r) => r.loss ?? NaN);
    const want = stepRecords(join(dir, 'zero3-one', 'metrics.jsonl')).map((r) => r.loss ?? NaN);
    assert.equal(got.length, 3);
    got.forEach((l, s) => assert.ok(Math.abs(l - want[s]) <= 1e-5 * Math.max(1, Math.abs(want[s])), `step ${s}: ${l} against ${want[s]}`));
    const oneResult = JSON.parse(readFileSync(join(dir, 'zero3-one', 'result.json'), 'utf8')) as { test_loss: number };
    assert.ok(Math.abs((zero.result.test_loss as number) - oneResult.test_loss) <= 1e-5 * Math.max(1, oneResult.test_loss));
    const worst = largestParamDifference(join(dir, 'zero3.model'), join(dir, 'zero3-one.model'));
    assert.ok(worst <= 1e-4, `parameters differ by up to ${worst}`);
  });
});
