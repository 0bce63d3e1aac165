import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticClassification } from '../../../src/data/synthetic.js';
import { Checkpointer } from '../../../src/train/run/checkpoints.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type TrainData, type TrainOutcome, train } from '../../../src/train/loop/loop.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { ZeroStrategy } from '../../../src/train/strategies/zero.js';
import { MANIFEST } from '../../../src/train/run/zero_checkpoints.js';
import { maxRelDiff, tempDir } from '../../helpers/cluster.js';

const all = syntheticClassification({ seed: 5, samples: 640 + 64, inputShape: [20], numClasses: 4, noise: 2 });
const DATA: TrainData = {
  train: { ...all, size: 640, inputs: all.inputs.subarray(0, 640 * 20), labels: all.labels.subarray(0, 640) },
  test: { ...all, size: 64, inputs: all.inputs.subarray(640 * 20), labels: all.labels.subarray(640) },
};
const GLOBAL_BATCH = 12;

function config(workers: number): TrainConfig {
  return { ...defaultConfig('mlp'), hidden: [16, 12], optimizer: 'adam', lr: 0.01, batchSize: GLOBAL_BATCH / workers, maxSteps: 4, evalBatchSize: 64, evalEvery: 0 };
}

let dir = '';
before(() => {
  dir = tempDir('zero-ckpt');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** `workers` ranks of ZeRO `stage`, checkpointing every 2 steps into `folder`, resuming from it when asked. */
async function run(workers: number, stage: 1 | 2 | 3, folder: string, resume: boolean): Promise<Array<{ outcome: TrainOutcome; strategy: ZeroStrategy }>> {
  const groups = createInProcessTransports(workers, { timeoutMs: 20_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 20_000 }));
  return Promise.all(groups.map(async (g) => {
    const strategy = new ZeroStrategy(g, { stage });
    const checkpoints = new Checkpointer({ dir: folder, every: 2, keep: 5, ...(resume ? { resume: folder } : {}) }, `mlp zero x${workers}`, g.rank === 0, {}, undefined, {
      rank: g.rank, buffers: () => strategy.checkpointBuffers(), manifest: (d) => strategy.checkpointManifest(d, 'mlp zero, global batch 12'), reshard: (d, m, a, o, _run, n) => strategy.restoreResharded(d, m, a, o, 'mlp zero, global batch 12', n),
    }, workers);
    return { outcome: await train(config(workers), DATA, strategy, {}, { checkpoints }), strategy };
  }));
}

/** Rank 0's whole model after the run (ZeRO gathers it there). */
const whole = (o: TrainOutcome): Float32Array => Float32Array.from(o.model.namedParameters().flatMap(([, p]) => Array.from(p.values())));

/** Leaves only the step-2 checkpoints, as if the run had stopped after step 3. */
function dropLatest(folder: string): void {
  for (const r of readdirSync(folder).filter((n) => n.startsWith('rank-'))) rmSync(join(folder, r, 'ckpt-00000004.smolckpt'), { force: true });
}

describe('ZeRO sharded checkpoints', () => {
  it('every rank writes its shard, rank 0 a manifest; a resume on the same world size ends where the uninterrupted run does', async () => {
    const reference = whole((await train(config(1), DATA, new LocalStrategy())));
    const folder = join(dir, 'same');
    const first = await run(4, 3, folder, false);
    assert.ok(maxRelDiff(whole(first[0].outcome), reference) < 1e-5);
    const manifest = JSON.parse(readFileSync(join(folder, MANIFEST), 'utf8'));
    assert.equal(manifest.world, 4);
    assert.deepEqual(manifest.ranges, first[0].strategy.shardRange() && first.map((r) => [...r.strategy.shardRange()]));
    for (let r = 0; r < 4; r++) assert.ok(existsSync(join(folder, `rank-${r}`, 'ckpt-00000002.smolckpt')), `rank ${r}'s shard`);
    dropLatest(folder);
    const resumed = await run(4, 3, folder, true);
    for (const r of resumed) assert.equal(r.outcome.steps, 2, 'resumed after step 2: two steps left');
    const d = maxRelDiff(whole(resumed[0].outcome), reference);
    assert.ok(d < 1e-5, `resumed at 4 ranks: ${d}`);
  });

  for (const [from, to] of [[4, 2], [2, 4], [4, 3]] as const) {
    it(`a checkpoint of ${from} ranks is resharded for ${to} (stages 1 and 3) and ends where the uninterrupted run does`, async () => {
      const reference = whole((await train(config(1), DATA, new LocalStrategy())));
      for (const stage of [1, 3] as const) {
        const folder = join(dir, `reshard-${from}-${to}-${stage}`);
        await run(from, stage, folder, false);
        dropLatest(folder);
        const resumed = await run(to, stage, folder, true);
        for (const r of resumed) assert.equal(r.outcome.steps, 2, 'resumed after step 2: two steps left');
        const d = maxRelDiff(whole(resumed[0].outcome), reference);
        assert.ok(d < 1e-5, `stage ${stage}, ${from} → ${to} ranks: ${d}`);
        assert.equal(JSON.parse(readFileSync(join(folder, MANIFEST), 'utf8')).world, to, 'the resumed run\'s own manifest');
      }
    });
  }
});
