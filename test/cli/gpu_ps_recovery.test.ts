/**
 * A parameter server's GPU workers re-admitted after a stall (real processes on 127.0.0.1): the
 * server's welcome carries its optimizer state, which a GPU worker writes to its device (under
 * --ps-reply weights). Skipped when no WebGPU
 * adapter is found, except under CI=true.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TEST_TOKEN, runCliProcess, tempDir } from '../helpers/cluster.js';
import { WEBGPU_CHILD_ENV, webGpuMissingInChild } from '../helpers/webgpu.js';

// run-tests: apart (a stalled GPU worker is judged by its server's 6 s deadline, and SwiftShader takes
// the CPU a file beside it would need: a healthy process can be pushed past it)

let dir = '';
let reason: string | null = null;
before(async () => {
  dir = tempDir('gpu-ps-recovery');
  reason = await webGpuMissingInChild();
  if (reason && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${reason}`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

const STEPS = 24;

describe('ps: a GPU worker re-admitted after a stall', { timeout: 240_000 }, () => {
  // --ps-reply weights: its welcome writes to the GPU optimizer (the path that failed); under
  // --ps-reply gradients the welcome goes to the host replica's cpu optimizer (passed by hand, 18:05 UTC).
  it('--ps-reply weights: the stalled GPU worker takes the server\'s Adam state and trains on (checksums equal every version)', async (t) => {
    if (reason) return t.skip(reason);
    // Rank 2 stalls 12 s at step 6, past its deadline (--timeout 6 plus the straggler wait; a
    // shorter one can expire while SwiftShader compiles the first step's kernels on a loaded machine):
    // the server drops it and its reconnect is welcomed with the whole model state.
    const r = await runCliProcess(['train', '--workers', '2', '--strategy', 'ps', '--ps-reply', 'weights', '--device', 'gpu', '--model', 'mlp',
      '--dataset', 'synthetic-regression', '--optimizer', 'adam', '--lr', '0.01', '--batch-size', '16', '--max-steps', String(STEPS),
      '--checksum-every', '1', '--timeout', '6', '--threads', '1', '--experiments-dir', dir, '--name', 'weights',
      '--fault', 'slow:rank=2:step=6:steps=1:ms=12000', '--fault', 'slow:rank=0:ms=150'], { env: { ...WEBGPU_CHILD_ENV, SMOLCLUSTER_TOKEN: TEST_TOKEN }, timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /worker rank 2 dropped out/);
    assert.match(r.stderr, /ps worker 2: reconnected; going on from version \d+/);
    const result = JSON.parse(readFileSync(join(dir, 'weights', 'result.json'), 'utf8')) as { per_rank: Array<{ device: string }> };
    assert.deepEqual(result.per_rank.map((p) => p.device), ['cpu', 'webgpu', 'webgpu']);
  });
});
