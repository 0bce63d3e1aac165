/**
 * `smolcluster train --device gpu` trains in one process on the webgpu backend (SwiftShader on a
 * machine without a GPU; a GPU where VK_ICD_FILENAMES names its driver) and computes what the cpu computes: the same losses, test loss and
 * accuracy within float32 tolerance, with result.json (and `run`'s run.json) saying where it trained. Skipped when the
 * webgpu backend cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { TEST_ADAPTER, WEBGPU_CHILD_ENV, webGpuMissingInChild } from '../helpers/webgpu.js';

let dir = '';
let reason: string | null = null;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'smolcluster-train-gpu-'));
  reason = await webGpuMissingInChild();
  if (reason && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${reason}`);
});
after(() => rmSync(dir, { recursive: true, force: true }));


interface Result {
  device: string;
  final_loss: number;
  test_loss: number;
  test_accuracy: number | null;
  per_rank: { device: string }[];
}

async function train(name: string, args: string[]): Promise<{ result: Result; stderr: string; losses: number[] }> {
  const run = await runCli(['train', ...args, '--experiments-dir', dir, '--name', name], { env: WEBGPU_CHILD_ENV, timeoutMs: 120_000 });
  assert.equal(run.code, 0, run.stderr);
  const losses = readFileSync(join(dir, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss?: number; step?: number })
    .filter((r) => r.step !== undefined && r.loss !== undefined).map((r) => r.loss!);
  return { result: JSON.parse(readFileSync(join(dir, name, 'result.json'), 'utf8')) as Result, stderr: run.stderr, losses };
}

function close(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `${what}: gpu ${a}, cpu ${b}`);
}

describe('train --device gpu (one process)', () => {
  const cases = [
    { name: 'an image MLP (SGD with momentum, test accuracy)', args: ['--model', 'mlp', '--dataset', 'synthetic_image', '--hidden', '32', '--max-steps', '4', '--batch-size', '16'] },
    { name: 'a regression MLP (mse targets uploaded, AdamW, clipping)', args: ['--model', 'mlp', '--dataset', 'synthetic-regression', '--max-steps', '4', '--optimizer', 'adamw', '--lr', '0.01', '--clip-grad-norm', '0.5'] },
  ];
  for (const [i, c] of cases.entries()) {
    it(`${c.name}: same losses and evaluation as the cpu; result.json says webgpu`, async (t) => {
      if (reason) return t.skip(reason);
      const gpu = await train(`gpu${i}`, [...c.args, '--device', 'gpu']);
      const cpu = await train(`cpu${i}`, c.args);
      assert.match(gpu.stderr, new RegExp(`--device gpu: training on .*${TEST_ADAPTER.source}`, 'i'));
      assert.equal(gpu.result.device, 'webgpu');
      assert.deepEqual(gpu.result.per_rank.map((r) => r.device), ['webgpu']);
      assert.equal(cpu.result.device, 'cpu');
      assert.equal(gpu.losses.length, cpu.losses.length);
      gpu.losses.forEach((l, s) => close(l, cpu.losses[s], `step ${s} loss`));
      close(gpu.result.test_loss, cpu.result.test_loss, 'test loss');
      if (cpu.result.test_accuracy !== null) close(gpu.result.test_accuracy!, cpu.result.test_accuracy, 'test accuracy');
    });
  }

  it('--checkpoint-every and --resume auto: a GPU run stopped after its step-2 checkpoint and resumed takes the uninterrupted run\'s steps', async (t) => {
    if (reason) return t.skip(reason);
    const args = ['--model', 'mlp', '--dataset', 'synthetic-regression', '--max-steps', '4', '--optimizer', 'adamw', '--lr', '0.01', '--device', 'gpu', '--checkpoint-every', '2'];
    // The uninterrupted run; then, as if it had died after step 3, only its step-2 checkpoint is left.
    const full = await train('ckpt-cut', args);
    rmSync(join(dir, 'ckpt-cut', 'checkpoints', 'ckpt-00000004.smolckpt'));
    const resumed = await train('ckpt-cut', [...args, '--resume', 'auto']);
    assert.match(readFileSync(join(dir, 'ckpt-cut', 'events.jsonl'), 'utf8'), /"kind":"resumed","rank":0,"file":"[^"]*ckpt-00000002\.smolckpt","step":2/);
    assert.deepEqual(resumed.losses, full.losses, 'the same device takes the same steps, bit for bit');
    assert.equal(resumed.result.test_loss, full.result.test_loss);
  });

  it('smolcluster run --device gpu writes run.json whose environment.devices says webgpu', async (t) => {
    if (reason) return t.skip(reason);
    const out = join(dir, 'run.json');
    const run = await runCli(['run', '--device', 'gpu', '--steps', '2', '--experiments-dir', dir, '--output', out], { env: WEBGPU_CHILD_ENV, timeoutMs: 120_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((JSON.parse(readFileSync(out, 'utf8')) as { environment: { devices: string[] } }).environment.devices, ['webgpu']);
  });
});
