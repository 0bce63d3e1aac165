/**
 * The fp32 peak probe of bench:gpu-models runs on the webgpu backend (SwiftShader without a GPU):
 * it returns a positive rate and checks each invocation's result, so a probe whose arithmetic is
 * not what the host expects is refused. Skipped when webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FMA_PROBE, FLOPS_PER_TURN, measureFp32Peak } from '../../../bench/lib/fma_peak.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

let load: WebGpuLoad;

describe('bench/lib/fma_peak: the measured fp32 peak', () => {
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
  });
  after(() => closeWebGpu());

  it('runs the probe over partial workgroups and checks what the invocations wrote', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const p = await measureFp32Peak(load.backend.stream, { invocations: 300, turns: 2, reps: 1 });
    assert.equal(p.invocations, 512, 'whole workgroups of 256');
    assert.ok(p.gflops > 0 && Number.isFinite(p.gflops), `a rate: ${p.gflops}`);
    assert.equal(FLOPS_PER_TURN, 256);
  });

  it('refuses a probe whose invocations wrote something else', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const body = FMA_PROBE.body;
    // The addend 1 in place of the uniform 0: every chain drifts by one per FMA.
    (FMA_PROBE as { body: string }).body = body.replace('vec4<f32>(P_add())', 'vec4<f32>(P_add() + 1.0)');
    (FMA_PROBE as { name: string }).name = 'fmaPeakProbeBroken';
    try {
      await assert.rejects(measureFp32Peak(load.backend.stream, { invocations: 256, turns: 1, reps: 1 }), /fp32 peak probe: invocation 0 wrote/);
    } finally {
      (FMA_PROBE as { body: string }).body = body;
      (FMA_PROBE as { name: string }).name = 'fmaPeakProbe';
    }
  });
});
