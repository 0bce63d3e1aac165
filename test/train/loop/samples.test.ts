/**
 * TrainingSamples (train --sample-every): refused by flag where it cannot sample, due every N steps,
 * and a sample is the greedy continuation generate() gives for the prompt (the model's mode kept).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generate } from '../../../src/generate/generate.js';
import type { ModelSpec } from '../../../src/nn/models/index.js';
import { defaultConfig } from '../../../src/train/run/config.js';
import { TrainingSamples } from '../../../src/train/loop/samples.js';
import { randomModel } from '../../generate/families.js';

const SPEC: ModelSpec = { type: 'gpt2', vocabSize: 256, context: 24, layers: 1, width: 16, heads: 2, dropout: 0 };
const config = (o: object) => ({ ...defaultConfig('gpt2-tiny'), dataset: 'text' as const, tokenizer: 'bytes', sampleEvery: 5, ...o });

describe('TrainingSamples', () => {
  it('is null without --sample-every, and refused by flag for a model that does not write or is sharded', () => {
    assert.equal(TrainingSamples.of(config({ sampleEvery: 0 }), SPEC, false), null);
    assert.throws(() => TrainingSamples.of(config({ dataset: 'mnist' }), SPEC, false), /--sample-every.*need a text model/);
    assert.throws(() => TrainingSamples.of(config({ samplePrompt: 'x' }), SPEC, true), /--sample-every.*sharded/);
    // bytes has no end-of-document token to start an empty prompt from.
    assert.throws(() => TrainingSamples.of(config({}), SPEC, false), /--sample-prompt.*the prompt is empty/);
    assert.throws(() => TrainingSamples.of(config({ samplePrompt: 'x'.repeat(30) }), SPEC, false), /--sample-prompt.*30 tokens; the model has 24 positions/);
  });

  it('is due every N steps and writes the greedy continuation of the prompt, never past the model\'s positions', async () => {
    const samples = TrainingSamples.of(config({ samplePrompt: 'the cat', sampleTokens: 100 }), SPEC, false)!;
    assert.deepEqual([0, 3, 5, 10, 11].map((s) => samples.due(s)), [true, false, true, true, false]);
    const model = randomModel(SPEC, 2);
    model.train(true);
    const r = await samples.take(model, 10, 'fp32');
    assert.equal(model.training, true);
    const ids = [...new TextEncoder().encode('the cat')];
    const want = await generate(model, ids, { maxNewTokens: 24 - ids.length, decode: (x) => new TextDecoder().decode(Uint8Array.from(x)) });
    assert.deepEqual(r, { step: 10, prompt: 'the cat', text: want.text, temperature: 0 });
  });
});
