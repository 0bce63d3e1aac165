/** generate(): its stops (length, EOS, stop strings, the callback), minNewTokens, seeded sampling, its errors and the model's mode. */
import assert from 'node:assert/strict';
import { describe, it } from '../helpers/per_backend.js';
import { generate, generateStream } from '../../src/generate/generate.js';
import { FAMILIES, randomModel } from './families.js';

const [, GPT2] = FAMILIES[0];
const decode = (ids: number[]): string => ids.map((i) => String.fromCharCode(97 + (i % 26))).join('');

describe('generate', () => {
  const model = randomModel(GPT2, 5);
  const prompt = [3, 1, 4, 1, 5];

  it('stops at maxNewTokens and streams each token to onToken', async () => {
    const streamed: number[] = [];
    const r = await generate(model, prompt, { maxNewTokens: 6, onToken: (id) => void streamed.push(id) });
    assert.equal(r.ids.length, 6);
    assert.equal(r.stopReason, 'length');
    assert.deepEqual(streamed, r.ids);
  });

  it('stops after an EOS id (kept), at a stop string (text cut before it), or when onToken returns false', async () => {
    const greedy = await generate(model, prompt, { maxNewTokens: 8, decode });
    const eos = await generate(model, prompt, { maxNewTokens: 8, eosIds: [greedy.ids[2]] });
    assert.deepEqual(eos.ids, greedy.ids.slice(0, greedy.ids.indexOf(greedy.ids[2]) + 1));
    assert.equal(eos.stopReason, 'eos');
    const stop = decode(greedy.ids.slice(3, 5));
    const byString = await generate(model, prompt, { maxNewTokens: 8, decode, stopStrings: [stop] });
    assert.equal(byString.stopReason, 'stop');
    assert.equal(byString.text, greedy.text!.slice(0, greedy.text!.indexOf(stop)));
    const byCallback = await generate(model, prompt, { maxNewTokens: 8, onToken: () => false });
    assert.deepEqual([byCallback.ids.length, byCallback.stopReason], [1, 'callback']);
  });

  it('minNewTokens (vLLM\'s min_tokens): no end id is drawn before it, the next most likely token instead; after it the end id stops as before', async () => {
    const greedy = await generate(model, prompt, { maxNewTokens: 8 });
    const end = greedy.ids[0];
    const held = await generate(model, prompt, { maxNewTokens: 8, eosIds: [end], minNewTokens: 3 });
    assert.ok(held.ids.slice(0, 3).every((id) => id !== end), `${held.ids}: no end id among the first 3`);
    assert.notEqual(held.ids[0], greedy.ids[0], 'the first token is not the greedy one, which is the end id');
    assert.equal((await generate(model, prompt, { maxNewTokens: 8, eosIds: [end] })).ids.length, 1, 'without it, the end id stops at once');
    await assert.rejects(generate(model, prompt, { minNewTokens: -1 }), /minNewTokens must be an integer >= 0, got -1/);
  });

  it('generateStream yields the tokens generate returns, and a break ends it with the model\'s mode restored', async () => {
    const all = await generate(model, prompt, { maxNewTokens: 5 });
    const streamed: number[] = [];
    const stream = generateStream(model, prompt, { maxNewTokens: 5 });
    let step = await stream.next();
    while (!step.done) {
      streamed.push(step.value);
      step = await stream.next();
    }
    assert.deepEqual(streamed, all.ids);
    assert.deepEqual(step.value, all);
    model.train();
    for await (const id of generateStream(model, prompt, { maxNewTokens: 5 })) {
      assert.equal(model.training, false);
      assert.equal(id, all.ids[0]);
      break;
    }
    assert.equal(model.training, true);
    model.eval();
  });

  it('samples the same tokens for the same seed, other tokens for another', async () => {
    const run = async (seed: number): Promise<number[]> => (await generate(model, prompt, { maxNewTokens: 12, temperature: 1.5, topK: 20, topP: 0.95, seed })).ids;
    assert.deepEqual(await run(1), await run(1));
    assert.notDeepEqual(await run(1), await run(2));
  });

  it('refuses an empty prompt, a bad maxNewTokens and stop strings without decode; restores train mode', async () => {
    await assert.rejects(generate(model, []), /the prompt needs at least one token id/);
    await assert.rejects(generate(model, prompt, { maxNewTokens: -1 }), /maxNewTokens must be an integer >= 0, got -1/);
    await assert.rejects(generate(model, prompt, { stopStrings: ['x'] }), /stopStrings need the tokenizer's decode/);
    model.train();
    await generate(model, prompt, { maxNewTokens: 2 });
    assert.equal(model.training, true);
    model.eval();
  });
});
