/**
 * LoRA and --freeze in the training loop (fine_tune.ts), in process: 2 all-reduce ranks at batch 4
 * train llama-tiny's adapters exactly as one process at batch 8, the base never moves, and each
 * step's bytes on the wire are the adapters' (ring all-reduce of 2: one copy of the gradients per
 * rank) against the whole model's in a full run; --freeze keeps its parameters where they were and
 * leaves them off the wire; strategies that build the model themselves refuse the flags by name.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { loadDataset } from '../../../src/data/load.js';
import { loraLayers } from '../../../src/nn/lora/index.js';
import { createModel } from '../../../src/nn/models/index.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { type TrainOutcome, train } from '../../../src/train/loop/loop.js';
import { checkFineTuneFlags, refuseFineTune } from '../../../src/train/loop/fine_tune.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';
import { maxRelDiff } from '../../helpers/cluster.js';

const data = loadDataset({ name: 'synthetic_text', seed: 1, tokenTask: 'language-model', contextLength: 16 });
const config = (over: Partial<TrainConfig>): TrainConfig => ({
  ...defaultConfig('llama-tiny'), dataset: 'synthetic_text', context: 16, maxSteps: 3, evalEvery: 0, evalBatchSize: 16, ...over,
});
const LORA: Partial<TrainConfig> = { loraRank: 4, loraTargets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] };

/** Two in-process all-reduce ranks; each rank's outcome and the bytes it sent per step. */
async function twoRanks(c: TrainConfig): Promise<{ outcomes: TrainOutcome[]; bytes: number[][] }> {
  const bytes: number[][] = [[], []];
  const transports = createInProcessTransports(2, { timeoutMs: 20_000 });
  const outcomes = await Promise.all(transports.map((t, r) => train(c, data, new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 20_000 })), {
    onStep: (s) => bytes[r].push(Number(s.info?.bytes_sent)),
  })));
  return { outcomes, bytes };
}

function frozenValues(o: TrainOutcome): Float32Array[] {
  return o.model.namedParameters().filter(([, p]) => !p.requiresGrad).map(([, p]) => Float32Array.from(p.values() as Float32Array));
}

/** The same parameters of a model fresh from the run's spec and seed (what training started from). */
function untrainedValues(o: TrainOutcome): Float32Array[] {
  const fresh = new Map(createModel(o.spec, 0).namedParameters());
  return o.model.namedParameters().filter(([, p]) => !p.requiresGrad).map(([n]) => Float32Array.from(fresh.get(n)!.values() as Float32Array));
}

describe('LoRA in the training loop', () => {
  it('2 all-reduce ranks equal one process; only the adapters train and travel (bytes per step against a full run)', async () => {
    const single = await train(config({ ...LORA, batchSize: 8 }), data, new LocalStrategy());
    const { outcomes, bytes } = await twoRanks(config({ ...LORA, batchSize: 4 }));
    const adapters = single.model.arena().size;
    assert.equal(loraLayers(single.model).length, 4 * 2);
    const p = single.model.arena().params.readSync();
    for (const [r, o] of outcomes.entries()) assert.ok(maxRelDiff(o.model.arena().params.readSync(), p) < 1e-5, `rank ${r} against one process: ${maxRelDiff(o.model.arena().params.readSync(), p)}`);
    assert.deepEqual(frozenValues(outcomes[0]), frozenValues(single), 'the frozen base is the same everywhere');
    const full = await twoRanks(config({ batchSize: 4 }));
    const whole = full.outcomes[0].model.arena().size;
    for (const r of [0, 1]) {
      const [lora, all] = [bytes[r][1], full.bytes[r][1]];
      // A ring of 2 sends each rank's half and receives the other's: about 4 bytes per trained value, plus frame headers and health words.
      assert.ok(lora >= 4 * adapters && lora < 4 * adapters + 1024, `rank ${r}: ${lora} bytes for ${adapters} adapter values`);
      assert.ok(all >= 4 * whole && all < 4 * whole + 1024, `rank ${r}: ${all} bytes for ${whole} values`);
    }
  });

  it('the base model is untouched by LoRA training: frozen parameters equal the untrained model\'s', async () => {
    const trained = await train(config({ ...LORA, batchSize: 8 }), data, new LocalStrategy());
    assert.deepEqual(frozenValues(trained), untrainedValues(trained));
    const B = trained.model.namedTrainable().filter(([n]) => n.endsWith('lora_B.weight')).map(([, p]) => p.values() as Float32Array);
    assert.ok(B.every((b) => b.some((v) => v !== 0)), 'every B moved off zero');
  });

  it('--freeze: the matched parameters stay, leave the arena and the wire', async () => {
    const freeze = 'model.embed_tokens.weight,/layers\\.0\\./';
    const { outcomes, bytes } = await twoRanks(config({ freeze, batchSize: 4 }));
    const frozen = frozenValues(outcomes[0]);
    assert.equal(frozen.length, 1 + 9);
    assert.deepEqual(frozen, untrainedValues(outcomes[0]));
    const trained = outcomes[0].model.arena().size;
    assert.ok(bytes[0][1] >= 4 * trained && bytes[0][1] < 4 * trained + 1024);
  });

  it('bf16: autocast steps and a base held in bf16 train the adapters to within 1 % of float32\'s loss', async () => {
    const losses: number[] = [];
    for (const over of [{}, { precision: 'bf16' }, { precision: 'bf16', loraBaseDtype: 'bf16' }, { loraBaseDtype: 'bf16' }] as Partial<TrainConfig>[]) {
      const o = await train(config({ ...LORA, batchSize: 8, ...over }), data, new LocalStrategy());
      if (over.loraBaseDtype) assert.equal(loraLayers(o.model)[0][1].weight.dtype, 'bfloat16');
      losses.push(o.finalLoss);
    }
    for (const l of losses.slice(1)) assert.ok(Math.abs(l - losses[0]) < 0.01 * losses[0], `losses ${losses.join(', ')}`);
    assert.notEqual(losses[1], losses[0], 'bf16 ran');
  });

  it('refuses LoRA flags without LoRA, --freeze with it, and strategies that build the model themselves', () => {
    assert.throws(() => checkFineTuneFlags({ loraAlpha: 16, seed: 0 }), /--lora-alpha\): applies to LoRA training: add --lora-rank/);
    assert.throws(() => checkFineTuneFlags({ loraRank: 8, freeze: 'x', seed: 0 }), /--freeze\): LoRA already freezes/);
    assert.throws(() => refuseFineTune({ loraRank: 8, seed: 0 }, 'zero'), /--lora-rank\): the zero strategy builds and shards the model itself/);
  });
});
