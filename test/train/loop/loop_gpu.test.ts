/**
 * The training loop on the GPU does not wait for a step's loss (Strategy.sendsNothing, loop.ts
 * UnsettledStep): one process reads each step's loss and gradient health one step later, while the
 * device runs the next step, and still records every step's measured loss. Counted by the stream:
 * the same reads per step as a loop that awaits them, none of which finds the queue drained. On
 * SwiftShader here; skipped when webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { deviceMemory } from '../../../src/tensor/storage.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type StepRecord, type TrainData, train } from '../../../src/train/loop/loop.js';
import { MonitorError, RunMonitors } from '../../../src/train/loop/monitors.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { assertClose } from '../../helpers/tensors.js';
import { splitTrainTest } from '../../helpers/split.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

const DATA: TrainData = splitTrainTest(syntheticClassification({ seed: 3, samples: 120, inputShape: [1, 8, 8], numClasses: 4, noise: 2 }), 100);
const STEPS = 5;

function config(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...defaultConfig('mlp'), hidden: [16], batchSize: 8, maxSteps: STEPS, evalBatchSize: 20, evalEvery: 0, seed: 4, ...over };
}

/** The local strategy with the loop's awaited reads (as every strategy that sends something). */
class AwaitingLocal extends LocalStrategy {
  override readonly sendsNothing = false;
}

interface GpuRun {
  steps: StepRecord[];
  finalLoss: number;
  /** The stream's reads and drained reads from the start to the last step's record. */
  reads: number;
  drained: number;
}

let load: WebGpuLoad;

async function run(c: TrainConfig, strategy: LocalStrategy): Promise<GpuRun> {
  const stream = load.backend!.stream;
  const steps: StepRecord[] = [];
  let start = { reads: 0, drained: 0 };
  let end = start;
  const outcome = await train(c, DATA, strategy, {
    onStart: () => { start = { reads: stream.reads, drained: stream.drainedReads }; },
    onStep: (r) => {
      steps.push(r);
      if (steps.length === STEPS) end = { reads: stream.reads, drained: stream.drainedReads };
    },
  });
  return { steps, finalLoss: outcome.finalLoss, reads: end.reads - start.reads, drained: end.drained - start.drained };
}

describe('training loop on the GPU: a step does not wait for its loss', () => {
  before(async () => {
    load = await loadWebGpuForTests();
    if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
  });
  after(() => closeWebGpu());

  it('every step records its measured loss (the cpu\'s within fp32 tolerance), read with the next step already on the device', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const cpu = await run(config({ device: 'cpu' }), new LocalStrategy());
    const gpu = await run(config({ device: 'webgpu' }), new LocalStrategy());
    const awaited = await run(config({ device: 'webgpu' }), new AwaitingLocal());
    assert.deepEqual(gpu.steps.map((s) => s.step), [0, 1, 2, 3, 4]);
    assert.ok(gpu.steps.every((s) => Number.isFinite(s.loss)), 'no step is recorded without its loss');
    assertClose(gpu.steps.map((s) => s.loss), cpu.steps.map((s) => s.loss), { rtol: 1e-5, atol: 1e-6, msg: 'GPU losses against the cpu\'s' });
    assert.deepEqual(gpu.steps.map((s) => s.loss), awaited.steps.map((s) => s.loss), 'deferred and awaited reads give the same bits');
    assert.equal(gpu.finalLoss, gpu.steps[STEPS - 1].loss);
    // Two reads a step (the loss, the gradients' sum of squares) either way; awaited, each finds
    // the queue drained; deferred, none does (the next step was submitted before the wait).
    assert.equal(gpu.reads, 2 * STEPS);
    assert.equal(awaited.reads, 2 * STEPS);
    assert.equal(gpu.drained, 0, `deferred: ${gpu.drained} of ${gpu.reads} reads found the queue drained`);
    assert.ok(awaited.drained >= STEPS, `awaited: ${awaited.drained} of ${awaited.reads} reads drained the queue`);
    // The time the host waited on the device is in the steps' compute time: the records still add up.
    assert.ok(gpu.steps.every((s) => s.computeMs > 0));
  });

  it('a non-finite gradient stops the run with the error naming its step, as on the cpu (found one step later)', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const diverging = (device: string): TrainConfig => config({ device, lr: 1e30, optimizer: 'sgd', momentum: 0 });
    const failure = async (device: string): Promise<MonitorError> => {
      try {
        await run(diverging(device), new LocalStrategy());
      } catch (e) {
        assert.ok(e instanceof MonitorError, String(e));
        return e;
      }
      assert.fail(`${device}: the diverging run did not stop`);
    };
    const [cpu, gpu] = [await failure('cpu'), await failure('webgpu')];
    assert.equal(gpu.rule, cpu.rule);
    assert.equal(gpu.step, cpu.step);
    assert.match(gpu.message, new RegExp(`non-finite gradient on rank 0 at step ${cpu.step} .*stopped one step later`));
  });

  it('healthLater reads the sum of squares on the device and rejects on NaN or Inf, naming the step', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const monitors = new RunMonitors(0, 1, null, false);
    const grads = (values: number[]) => deviceMemory('webgpu').fromHost(Float32Array.from(values));
    await monitors.healthLater(2, grads([1, 2, 3]));
    await assert.rejects(monitors.healthLater(7, grads([1, NaN, 3])), /non-finite gradient on rank 0 at step 7 \(its sum of squares is NaN\)/);
    await assert.rejects(monitors.healthLater(8, grads([Infinity, 0])), (e: unknown) => e instanceof MonitorError && e.step === 8);
  });
});
