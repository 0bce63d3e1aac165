/**
 * Training checkpoints of a model on the GPU (webgpu on SwiftShader here): written from values
 * read back (awaited), uploaded on resume. A GPU run that checkpoints, stops and resumes ends
 * where the uninterrupted run does, alone and as ZeRO ranks (sharded checkpoints, resharded too).
 * Skipped when webgpu cannot load, except under CI=true.
 */
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { loadCheckpoint, readTrainingState, saveCheckpoint } from '../../../src/nn/checkpoint.js';
import { createModel, defaultSpec } from '../../../src/nn/models/index.js';
import { makeOptimizer } from '../../../src/nn/optim/index.js';
import { closeWebGpu, type WebGpuLoad } from '../../../src/tensor/backends/webgpu/index.js';
import { CPU } from '../../../src/tensor/storage.js';
import { Checkpointer } from '../../../src/train/run/checkpoints.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type TrainData, type TrainOutcome, train } from '../../../src/train/loop/loop.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { ZeroStrategy } from '../../../src/train/strategies/zero.js';
import { maxRelDiff, tempDir } from '../../helpers/cluster.js';
import { loadWebGpuForTests } from '../../helpers/webgpu.js';

const all = syntheticClassification({ seed: 5, samples: 96 + 32, inputShape: [20], numClasses: 4, noise: 2 });
const DATA: TrainData = {
  train: { ...all, size: 96, inputs: all.inputs.subarray(0, 96 * 20), labels: all.labels.subarray(0, 96) },
  test: { ...all, size: 32, inputs: all.inputs.subarray(96 * 20), labels: all.labels.subarray(96) },
};
const GLOBAL_BATCH = 12;
const config = (workers: number, device: string): TrainConfig => ({
  ...defaultConfig('mlp'), hidden: [16, 12], optimizer: 'adam', lr: 0.01, batchSize: GLOBAL_BATCH / workers, maxSteps: 4, evalBatchSize: 32, evalEvery: 0, device,
});

let load: WebGpuLoad;
let dir = '';
before(async () => {
  dir = tempDir('gpu-ckpt');
  load = await loadWebGpuForTests();
  if (!load.backend && process.env.CI === 'true') throw new Error(`CI=true but webgpu is unavailable: ${load.reason}`);
});
after(() => {
  closeWebGpu();
  rmSync(dir, { recursive: true, force: true });
});

const hostParams = async (o: TrainOutcome): Promise<Float32Array> => {
  const p = o.model.arena().params;
  return p.device === CPU ? p.readSync() : p.read();
};

/** Leaves only the step-2 checkpoints (in `folder` and its rank folders), as if the run had stopped after step 3. */
function dropLatest(folder: string): void {
  rmSync(join(folder, 'ckpt-00000004.smolckpt'), { force: true });
  for (const r of readdirSync(folder).filter((n) => n.startsWith('rank-'))) rmSync(join(folder, r, 'ckpt-00000004.smolckpt'), { force: true });
}

/** ZeRO ranks on `devices`, checkpointing every 2 steps into `folder` (resuming from it when asked). */
async function zeroRun(devices: string[], stage: 1 | 3, folder: string, resume: boolean): Promise<Array<{ outcome: TrainOutcome; losses: number[] }>> {
  const groups = createInProcessTransports(devices.length, { timeoutMs: 60_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 60_000 }));
  return Promise.all(groups.map(async (g) => {
    const strategy = new ZeroStrategy(g, { stage });
    const run = 'mlp zero, global batch 12';
    const checkpoints = new Checkpointer({ dir: folder, every: 2, keep: 5, ...(resume ? { resume: folder } : {}) }, `mlp zero x${devices.length}`, g.rank === 0, {}, undefined, {
      rank: g.rank, buffers: () => strategy.checkpointBuffers(), manifest: (d) => strategy.checkpointManifest(d, run), reshard: (d, m, a, o, _run, n) => strategy.restoreResharded(d, m, a, o, run, n),
    }, devices.length);
    const losses: number[] = [];
    const outcome = await train(config(devices.length, devices[g.rank]), DATA, strategy, { onStep: (r) => losses.push(r.loss) }, { checkpoints });
    return { outcome, losses };
  }));
}

describe('training checkpoints on the GPU', () => {
  it('a checkpoint of a GPU model holds its parameters, buffers and optimizer state, and loads back onto the GPU', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const spec = defaultSpec('resnet18', [3, 8, 8], 4, { width: 4 });
    const model = createModel(spec, 1).to('webgpu');
    const optimizer = makeOptimizer(model.arena(), { name: 'adam', lr: 0.01 });
    model.arena().grads.write(Float32Array.from({ length: model.arena().size }, (_, i) => Math.sin(i)));
    optimizer.step();
    model.writeBuffers((await model.readBuffers()).map(([, b], i) => b.map((_, j) => i + j / 8)));
    const file = join(dir, 'resnet.smolckpt');
    const saved = await readTrainingState(model, optimizer);
    saveCheckpoint(file, model, spec, optimizer, { note: 'gpu' }, [], saved);
    const fresh = createModel(spec, 2).to('webgpu');
    const freshOptimizer = makeOptimizer(fresh.arena(), { name: 'adam', lr: 0.01 });
    loadCheckpoint(file, fresh, spec, freshOptimizer);
    const loaded = await readTrainingState(fresh, freshOptimizer);
    assert.deepEqual(loaded.params, saved.params);
    assert.deepEqual(loaded.buffers, saved.buffers);
    assert.deepEqual(loaded.optimizer, saved.optimizer);
    assert.equal(freshOptimizer.steps, 1);
    assert.ok(saved.optimizer[0].some((v) => v !== 0), 'Adam state was written');
    // The file is the cpu's format: a cpu model loads it too.
    const onCpu = createModel(spec, 3);
    const cpuOptimizer = makeOptimizer(onCpu.arena(), { name: 'adam', lr: 0.01 });
    loadCheckpoint(file, onCpu, spec, cpuOptimizer);
    assert.deepEqual(onCpu.arena().params.readSync(), saved.params);
  });

  it('one GPU process that checkpoints, stops and resumes gives the uninterrupted run\'s losses and parameters', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const folder = join(dir, 'single');
    const losses: number[] = [];
    const checkpointer = (resume: boolean): Checkpointer => new Checkpointer({ dir: folder, every: 2, keep: 5, ...(resume ? { resume: folder } : {}) }, 'mlp gpu', true);
    const whole = await train(config(1, 'webgpu'), DATA, new LocalStrategy(), { onStep: (r) => losses.push(r.loss) }, { checkpoints: checkpointer(false) });
    dropLatest(folder);
    const resumedLosses: number[] = [];
    const resumed = await train(config(1, 'webgpu'), DATA, new LocalStrategy(), { onStep: (r) => resumedLosses.push(r.loss) }, { checkpoints: checkpointer(true) });
    assert.equal(resumed.steps, 2, 'resumed after step 2: two steps left');
    assert.deepEqual(resumedLosses, losses.slice(2), 'the same device computes the same values');
    assert.deepEqual(await hostParams(resumed), await hostParams(whole));
  });

  it('ZeRO with a GPU rank: sharded checkpoints resume at the same world size and resharded (stages 1 and 3)', async (t) => {
    if (!load.backend) return t.skip(load.reason ?? 'webgpu unavailable');
    const refLosses: number[] = [];
    const reference = await train(config(1, CPU), DATA, new LocalStrategy(), { onStep: (r) => refLosses.push(r.loss) });
    const ref = reference.model.arena().params.readSync();
    for (const stage of [1, 3] as const) {
      for (const resumeOn of [['webgpu', CPU], [CPU, 'webgpu', 'webgpu']]) {
        const folder = join(dir, `zero-${stage}-${resumeOn.length}`);
        await zeroRun(['webgpu', CPU], stage, folder, false);
        dropLatest(folder);
        const resumed = await zeroRun(resumeOn, stage, folder, true);
        const what = `stage ${stage}, 2 ranks → ${resumeOn.join(' + ')}`;
        for (const r of resumed) assert.equal(r.outcome.steps, 2, `${what}: resumed after step 2`);
        assert.ok(maxRelDiff(resumed[0].losses, refLosses.slice(2)) < 1e-5, `${what}: losses ${resumed[0].losses} vs ${refLosses.slice(2)}`);
        const d = maxRelDiff(await hostParams(resumed[0].outcome), ref);
        assert.ok(d < 1e-5, `${what}: parameters differ by ${d}`);
      }
    }
  });
});
