import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { syntheticText } from '../../../src/data/synthetic_text.js';
import { saveModel } from '../../../src/nn/checkpoint.js';
import { saveSafetensors } from '../../../src/nn/interchange/model_io.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type TrainData, type TrainOutcome, train } from '../../../src/train/loop/loop.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { ZeroStrategy } from '../../../src/train/strategies/zero.js';
import type { StrategyContext } from '../../../src/train/strategies/strategy.js';
import { maxRelDiff } from '../../helpers/cluster.js';

const DATA: TrainData = {
  train: syntheticText({ seed: 3, samples: 64, split: 'train', task: 'language-model', contextLength: 16, vocab: 32 }),
  test: syntheticText({ seed: 3, samples: 16, split: 'test', task: 'language-model', contextLength: 16, vocab: 32 }),
};

function gptConfig(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...defaultConfig('gpt2-tiny'), layers: 2, width: 32, heads: 2, context: 16, optimizer: 'adamw', lr: 0.003, maxSteps: 2, evalBatchSize: 16, evalEvery: 0, ...over };
}

const paramsOf = (o: TrainOutcome): Float32Array => Float32Array.from(o.model.namedParameters().flatMap(([, p]) => Array.from(p.values())));

/** `n` ZeRO ranks of `stage` over in-process transports; rank 0's losses and every outcome. */
async function zeroRun(n: number, stage: 1 | 2 | 3, config: TrainConfig): Promise<{ losses: number[]; outs: TrainOutcome[] }> {
  const losses: number[] = [];
  const groups = createInProcessTransports(n, { timeoutMs: 20_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 20_000 }));
  const outs = await Promise.all(groups.map((g) => train(config, DATA, new ZeroStrategy(g, { stage }), { onStep: (r) => g.rank === 0 && losses.push(r.loss) })));
  return { losses, outs };
}

/** The model 2 ranks build from `init`, gathered on rank 0 before any step: its parameters. */
async function builtWhole(stage: 1 | 2 | 3, donor: TrainOutcome, init: string): Promise<Float32Array> {
  const groups = createInProcessTransports(2, { timeoutMs: 20_000 }).map((t) => new ProcessGroup(t, { timeoutMs: 20_000 }));
  const models = await Promise.all(groups.map(async (g) => {
    const zero = new ZeroStrategy(g, { stage });
    const model = await zero.buildModel(donor.spec, 1, 'gpt2-tiny', { init });
    await zero.wholeModel({ model } as StrategyContext);
    return model;
  }));
  return Float32Array.from(models[0].namedParameters().flatMap(([, p]) => Array.from(p.values())));
}

describe('ZeRO --init: each rank reads its own ranges of the file while the model is built', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zero-init-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('safetensors and our own model file at stages 3 and 1 start from the file\'s weights, as one process does', async () => {
    // A model unlike the run's seed would give: another seed, trained a step.
    const donor = await train(gptConfig({ seed: 99, maxSteps: 1 }), DATA, new LocalStrategy());
    const files = [join(dir, 'donor.safetensors'), join(dir, 'donor.smolmodel')];
    saveSafetensors(files[0], donor.model, donor.spec);
    await saveModel(files[1], donor.model, donor.spec);
    const fresh: number[] = [];
    await train(gptConfig({ batchSize: 8 }), DATA, new LocalStrategy(), { onStep: (r) => fresh.push(r.loss) });
    for (const init of files) {
      const losses: number[] = [];
      await train(gptConfig({ batchSize: 8, init }), DATA, new LocalStrategy(), { onStep: (r) => losses.push(r.loss) });
      assert.ok(maxRelDiff(losses, fresh) > 1e-3, 'the file changes the start');
      for (const stage of [3, 1] as const) {
        const z = await zeroRun(2, stage, gptConfig({ batchSize: 4, init }));
        assert.ok(maxRelDiff(z.losses, losses) < 1e-5, `${init} stage ${stage}: losses ${z.losses} vs ${losses}`);
        // Before any update, rank 0's gathered model is the file's, to the bit.
        assert.deepEqual(await builtWhole(stage, donor, init), paramsOf(donor), `${init} stage ${stage}`);
      }
    }
  });

  it('a file that lacks a parameter is refused by name before training', async () => {
    const other = await train(gptConfig({ layers: 1, maxSteps: 1 }), DATA, new LocalStrategy());
    const file = join(dir, 'one-layer.safetensors');
    saveSafetensors(file, other.model, other.spec);
    await assert.rejects(zeroRun(2, 3, gptConfig({ init: file })), /missing \d+ tensor\(s\) the model needs: transformer\.h\.1\./);
  });
});
