/**
 * --activation-checkpointing in the training loop: a run with it trains exactly the parameters a
 * run without does (gpt2-tiny with dropout, Adam, three steps), on one process and on two
 * all-reduce ranks (it composes with data parallelism: only the backward's inside changes).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProcessGroup } from '../../../src/comm/process_group.js';
import { createInProcessTransports } from '../../../src/comm/inproc.js';
import { loadDataset } from '../../../src/data/load.js';
import { train } from '../../../src/train/loop/loop.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { AllReduceStrategy } from '../../../src/train/strategies/allreduce.js';
import { LocalStrategy } from '../../../src/train/strategies/local.js';

const data = loadDataset({ name: 'synthetic_text', seed: 1, tokenTask: 'language-model', contextLength: 16 });
const config = (over: Partial<TrainConfig>): TrainConfig => ({
  ...defaultConfig('gpt2-tiny'), dataset: 'synthetic_text', context: 16, dropout: 0.1, batchSize: 4, maxSteps: 3, evalEvery: 0, evalBatchSize: 16, ...over,
});

describe('activation checkpointing in training', () => {
  it('one process: the same parameters after three steps, bit for bit', async () => {
    const plain = await train(config({}), data, new LocalStrategy());
    const checkpointed = await train(config({ activationCheckpointing: true }), data, new LocalStrategy());
    assert.deepEqual(checkpointed.model.arena().params.readSync(), plain.model.arena().params.readSync());
    assert.equal(checkpointed.finalLoss, plain.finalLoss);
    // The flag took effect: the model's forward is the checkpointed one, not its class's.
    assert.notEqual(checkpointed.model.forward, Object.getPrototypeOf(checkpointed.model).forward);
    assert.equal(plain.model.forward, Object.getPrototypeOf(plain.model).forward);
  });

  it('two all-reduce ranks: the same parameters as two ranks without it', async () => {
    const runTwo = (over: Partial<TrainConfig>) => {
      const transports = createInProcessTransports(2, { timeoutMs: 10_000 });
      return Promise.all(transports.map((t) => train(config({ batchSize: 2, ...over }), data, new AllReduceStrategy(new ProcessGroup(t, { timeoutMs: 10_000 })))));
    };
    const plain = await runTwo({});
    const checkpointed = await runTwo({ activationCheckpointing: true });
    for (let r = 0; r < 2; r++) assert.deepEqual(checkpointed[r].model.arena().params.readSync(), plain[r].model.arena().params.readSync());
  });
});
