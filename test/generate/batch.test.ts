/**
 * Batched decoding of sequences of different lengths (generate/batch.ts, per-row positions in
 * kv_cache.ts): each row's logits equal the full forward of that row's sequence within 1e-5, a row
 * joins mid-way and another leaves, and greedy generateBatch gives each prompt the tokens generate()
 * gives it alone — for GPT-2 and each Llama variant, on every cpu backend.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../helpers/per_backend.js';
import { DecodeBatch, generateBatch } from '../../src/generate/batch.js';
import { generate } from '../../src/generate/generate.js';
import { KvCache, SequenceCache } from '../../src/generate/kv_cache.js';
import { Sequence } from '../../src/generate/sequence.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { FAMILIES, randomModel } from './families.js';

function maxDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}

/** The full causal forward's logits at the last position of `ids`. */
function fullLast(model: ReturnType<typeof randomModel>, ids: number[]): Float32Array {
  const all = noGrad(() => model.forward(Tensor.from(ids, [1, ids.length]))).values() as Float32Array;
  const V = all.length / ids.length;
  return all.slice(all.length - V);
}

const PROMPTS = [[5, 9, 2], [7, 1, 4, 4, 8, 3, 6], [11], [2, 6, 10, 1, 9]];

describe('batched decode of different lengths', () => {
  for (const [name, spec] of FAMILIES) {
    it(`${name}: each row's logits equal its own full forward; rows join and leave`, () => {
      const model = randomModel(spec, 13);
      const seqs = PROMPTS.map((p) => [...p]);
      const caches = seqs.map(() => new SequenceCache());
      const prefill = (i: number): void => {
        const cache = new KvCache([caches[i]]);
        noGrad(() => model.forward(Tensor.from(seqs[i], [1, seqs[i].length], 'int32'), cache));
        cache.advance(seqs[i].length);
      };
      [0, 1, 2].forEach(prefill);
      let active = [0, 1, 2];
      for (let step = 0; step < 5; step++) {
        if (step === 2) {
          prefill(3); // joins between steps
          active = [1, 3, 0, 2];
        }
        if (step === 4) active = active.filter((i) => i !== 1); // leaves
        const next = active.map((i) => (seqs[i].length * 7 + i) % 61);
        active.forEach((i, r) => seqs[i].push(next[r]));
        const cache = new KvCache(active.map((i) => caches[i]));
        const logits = noGrad(() => model.forward(Tensor.from(next, [active.length, 1], 'int32'), cache)).values() as Float32Array;
        cache.advance(1);
        const V = logits.length / active.length;
        active.forEach((i, r) => {
          const d = maxDiff(logits.subarray(r * V, (r + 1) * V), fullLast(model, seqs[i]));
          assert.ok(d <= 1e-5, `step ${step} row ${i} (length ${seqs[i].length}): ${d}`);
        });
      }
    });

    it(`${name}: greedy generateBatch equals generate() of each prompt alone`, async () => {
      const model = randomModel(spec, 17);
      const batched = await generateBatch(model, PROMPTS, { maxNewTokens: 6 });
      for (const [i, p] of PROMPTS.entries()) {
        const alone = await generate(model, p, { maxNewTokens: 6 });
        assert.deepEqual(batched[i].ids, alone.ids, `prompt ${i}`);
      }
    });
  }

  it('prompts of one length join in one forward, each getting the tokens it gets alone; mixed lengths are refused', async () => {
    for (const [name, spec] of [FAMILIES[0], FAMILIES[2]]) {
      const model = randomModel(spec, 19);
      const prompts = [[5, 9, 2], [7, 1, 4], [2, 6, 10, 1, 9], [11, 3, 3]];
      const shapes: number[][] = [];
      const forward = model.forward.bind(model);
      model.forward = ((ids: Tensor, cache?: never) => {
        shapes.push([...ids.shape]);
        return forward(ids, cache);
      }) as typeof model.forward;
      const batched = await generateBatch(model, prompts, { maxNewTokens: 5 });
      assert.deepEqual(shapes.slice(0, 2), [[3, 3], [1, 5]], `${name}: one prefill per prompt length`);
      model.forward = forward;
      for (const [i, p] of prompts.entries()) assert.deepEqual(batched[i].ids, (await generate(model, p, { maxNewTokens: 5 })).ids, `${name} prompt ${i}`);
    }
    const batch = new DecodeBatch(randomModel(FAMILIES[0][1], 2));
    await assert.rejects(batch.joinAll([new Sequence([1, 2]), new Sequence([3])]), /prompts joining together must be of one length, got 2, 1/);
    assert.equal(batch.size, 0);
  });

  it('rows stop on their own (EOS, max tokens) while the others go on; seeded sampling per row', async () => {
    const [, spec] = FAMILIES[1];
    const model = randomModel(spec, 3);
    const alone = await generate(model, PROMPTS[1], { maxNewTokens: 8 });
    const eos = alone.ids[2];
    const [a, b] = await generateBatch(model, [PROMPTS[0], PROMPTS[1]], { maxNewTokens: 8, eosIds: [eos] });
    assert.deepEqual(b.ids, alone.ids.slice(0, alone.ids.indexOf(eos) + 1));
    assert.equal(b.stopReason, 'eos');
    assert.deepEqual(a.ids, (await generate(model, PROMPTS[0], { maxNewTokens: 8, eosIds: [eos] })).ids);
    const sampled = { maxNewTokens: 5, temperature: 0.8, topP: 0.9, seed: 4 };
    const [s] = await generateBatch(model, [PROMPTS[3], PROMPTS[2]], sampled);
    assert.deepEqual(s.ids, (await generate(model, PROMPTS[3], sampled)).ids);
  });

  it('choices over one prompt array share its prefill (one forward, the cache copied), each as generate() alone with its seed', async () => {
    for (const [name, spec] of [FAMILIES[0], FAMILIES[1]]) {
      const model = randomModel(spec, 23);
      const shapes: number[][] = [];
      const forward = model.forward.bind(model);
      model.forward = ((ids: Tensor, cache?: never) => {
        shapes.push([...ids.shape]);
        return forward(ids, cache);
      }) as typeof model.forward;
      const prompt = [4, 8, 15, 16, 23];
      const other = [42, 4, 8, 15, 16];
      const options = (seed: number) => ({ maxNewTokens: 6, temperature: 1.2, seed });
      const choices = [1, 2, 3].map((seed) => new Sequence(prompt, options(seed)));
      const alsoJoining = new Sequence(other, options(9));
      const batch = new DecodeBatch(model);
      await batch.joinAll([choices[0], alsoJoining, choices[1], choices[2]]);
      assert.deepEqual(shapes, [[2, 5]], `${name}: one prefill row for the shared prompt, one for the other`);
      while (batch.size > 0) for (const { sequence } of await batch.step()) if (sequence.stopped()) batch.leave(sequence);
      assert.deepEqual(shapes.slice(1).map((s) => s[0]), [4, 4, 4, 4, 4], 'then every choice is a row of its own');
      model.forward = forward;
      for (const [i, c] of choices.entries()) assert.deepEqual(c.ids, (await generate(model, prompt, options(i + 1))).ids, `${name} choice ${i}`);
      assert.deepEqual(alsoJoining.ids, (await generate(model, other, options(9))).ids);
      assert.notDeepEqual(choices[0].ids, choices[1].ids, 'each choice draws from its own seed');
    }
  });

  it('prompt logprobs from the prefill equal log_softmax of the full forward; scoreAll keeps no row', async () => {
    const [, spec] = FAMILIES[1];
    const model = randomModel(spec, 29);
    const prompt = [3, 1, 4, 1, 5, 9, 2, 6];
    const all = noGrad(() => model.forward(Tensor.from(prompt, [1, prompt.length]))).values() as Float32Array;
    const V = all.length / prompt.length;
    const logSoftmax = (t: number, id: number): number => {
      const row = all.subarray(t * V, (t + 1) * V);
      const max = Math.max(...row);
      return row[id] - max - Math.log(row.reduce((sum, x) => sum + Math.exp(x - max), 0));
    };
    const batch = new DecodeBatch(model);
    const joined = new Sequence(prompt, { maxNewTokens: 2, promptLogprobs: 2, logprobs: 1 });
    const scored = new Sequence(prompt, { maxNewTokens: 0, promptLogprobs: 0 });
    await batch.joinAll([joined]);
    await batch.scoreAll([scored]);
    assert.equal(batch.size, 1);
    for (const s of [joined, scored]) {
      assert.equal(s.promptLogprobs!.length, prompt.length - 1);
      s.promptLogprobs!.forEach((p, t) => assert.ok(Math.abs(p.logprob - logSoftmax(t, prompt[t + 1])) < 1e-5, `position ${t + 1}: ${p.logprob}`));
    }
    assert.deepEqual(joined.promptLogprobs![0].top.map((t) => t.id), [...Array(V).keys()].sort((a, b) => logSoftmax(0, b) - logSoftmax(0, a)).slice(0, 2));
    // generate() alone records the same.
    const alone = await generate(model, prompt, { maxNewTokens: 2, promptLogprobs: 2, logprobs: 1 });
    assert.deepEqual(alone.promptLogprobs!.map((p) => [p.id, p.top.map((t) => t.id)]), joined.promptLogprobs!.map((p) => [p.id, p.top.map((t) => t.id)]));
    alone.promptLogprobs!.forEach((p, t) => assert.ok(Math.abs(p.logprob - joined.promptLogprobs![t].logprob) < 1e-5));
    assert.equal(alone.ids[0], joined.ids[0]);
    // The chosen (greedy) token's logprob is the last position's largest.
    assert.ok(Math.abs(joined.logprobs[0].logprob - logSoftmax(prompt.length - 1, joined.ids[0])) < 1e-5);
    assert.equal(joined.logprobs[0].top[0].id, joined.ids[0]);
  });

  it('a batch step with no rows does nothing; leave frees a row', async () => {
    const [, spec] = FAMILIES[0];
    const model = randomModel(spec, 2);
    const batch = new DecodeBatch(model);
    assert.deepEqual(await batch.step(), []);
    const s = new Sequence([1, 2, 3], { maxNewTokens: 4 });
    await batch.join(s);
    assert.equal(batch.size, 1);
    batch.leave(s);
    assert.equal(batch.size, 0);
  });
});
