/**
 * A model that holds its bf16 casts (model_casts.ts) casts each weight once for its life: a second
 * generation (generate, or a DecodeBatch) makes no cast, the tokens are those of casting per
 * generation (each step recycling the last one's buffers: the casts are made outside a step's
 * recycler), and a write to a weight makes the casts again from the new values.
 */
import assert from 'node:assert/strict';
import { describe, it } from '../helpers/per_backend.js';
import { generateBatch } from '../../src/generate/batch.js';
import { generate } from '../../src/generate/generate.js';
import { stepRecycler, weightCasts } from '../../src/generate/inference_forward.js';
import { heldBf16Casts, holdBf16Casts, releaseBf16Casts } from '../../src/generate/model_casts.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { backendFor } from '../../src/tensor/dispatch.js';
import { BufferRecycler } from '../../src/tensor/recycler.js';
import { isPacked } from '../../src/tensor/ops/packed_weights.js';
import { toBf16 } from '../../src/tensor/ops/cast.js';
import { FAMILIES, randomModel } from './families.js';

const [, LLAMA] = FAMILIES.find(([name]) => name.startsWith('llama'))!;
const PROMPT = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
const greedy = { maxNewTokens: 6, precision: 'bf16' as const };
/** The matrix weights a forward casts (biases, norms and the embedding table stay float32). */
const matrices = (model: ReturnType<typeof randomModel>): number => model.parameters().filter((p) => p.ndim === 2).length;

describe('held bf16 casts', () => {
  it('a second generation casts nothing, and the tokens equal casting per generation', async () => {
    const model = randomModel(LLAMA, 11);
    const perGeneration = (await generate(model, PROMPT, greedy)).ids;
    const casts = holdBf16Casts(model);
    assert.equal(holdBf16Casts(model), casts, 'one cache per model');
    assert.equal(weightCasts(model, 'bf16'), casts, 'generation uses the held casts');
    assert.equal(weightCasts(model, 'fp32'), null);
    assert.ok(stepRecycler(model, 'bf16'), "held casts outlive a step: a bf16 step recycles the last one's buffers");
    assert.deepEqual((await generate(model, PROMPT, greedy)).ids, perGeneration);
    const made = casts.castsMade;
    assert.ok(made > 0 && made <= matrices(model), `the first generation cast each weight once (${made})`);
    // Where the backend packs bf16 weights (native, where oneDNN has a bf16 GEMM for the CPU's level), the
    // first prompt (10 rows: more than THIN_ROWS) packed the layers' weights for the later ones.
    const layerWeight = casts.castOf(model.parameters().find((p) => p.ndim === 2 && p.shape[0] !== 61)!)!; // 61: the vocabulary (not the embedding or head)
    const packing = backendFor({ device: 'cpu', dtype: 'float32' }).bfloat16;
    const packs = packing?.packWeight?.(layerWeight.buffer, layerWeight.shape[0], layerWeight.shape[1], true, PROMPT.length) != null;
    assert.equal(isPacked(layerWeight), packs);
    assert.deepEqual((await generate(model, PROMPT, greedy)).ids, perGeneration);
    assert.deepEqual((await generateBatch(model, [PROMPT, [2, 7, 1, 8, 2]], greedy))[0].ids, perGeneration);
    assert.equal(casts.castsMade, made, 'later generations and a batch make no cast');
    releaseBf16Casts(model);
    assert.equal(heldBf16Casts(model), undefined);
    assert.notEqual(weightCasts(model, 'bf16'), casts, 'released: a cache per generation again');
  });

  it('lays its casts out in huge-page blocks where the backend advises huge pages, each the weight rounded to bf16', () => {
    const model = randomModel(LLAMA, 14);
    const casts = holdBf16Casts(model);
    const weights = model.parameters().filter((p) => p.ndim === 2);
    const made = noGrad(() => weights.map((w) => casts.castOf(w)!));
    made.forEach((c, i) => assert.deepEqual(c.values(), toBf16(weights[i]).values(), `cast ${i}`));
    const blocks = new Set(made.map((c) => (c.buffer as unknown as Uint16Array).buffer));
    const advises = backendFor({ device: 'cpu', dtype: 'float32' }).adviseHugePages !== undefined;
    assert.equal(blocks.size, advises ? 1 : made.length, advises ? 'one block holds every cast of a small model' : 'a cast of its own each');
  });

  it("makes its casts outside a step's recycler, so they outlive the step", () => {
    const model = randomModel(LLAMA, 13);
    const casts = holdBf16Casts(model);
    const recycler = new BufferRecycler();
    const weight = model.parameters().find((p) => p.ndim === 2)!;
    const cast = recycler.run(() => noGrad(() => casts.castOf(weight)));
    assert.equal(cast?.dtype, 'bfloat16');
    assert.equal(recycler.bytesTaken, 0, 'no buffer of the step held a cast');
  });

  it('a write to a weight casts again from the new values', async () => {
    const model = randomModel(LLAMA, 12);
    const casts = holdBf16Casts(model);
    const before = (await generate(model, PROMPT, greedy)).ids;
    const made = casts.castsMade;
    // The output head: a reload (serve --follow, loadStateDict) writes through the storage.
    const head = model.parameters().filter((p) => p.ndim === 2).at(-1)!;
    head.storage.write(Float32Array.from(head.values() as Float32Array, (v, i) => (i % 7) * 0.5 - v));
    const written = (await generate(model, PROMPT, greedy)).ids;
    assert.ok(casts.castsMade > made, 'the write dropped the casts');
    const fresh = randomModel(LLAMA, 12);
    const freshHead = fresh.parameters().filter((p) => p.ndim === 2).at(-1)!;
    freshHead.storage.write(head.values() as Float32Array);
    assert.deepEqual(written, (await generate(fresh, PROMPT, greedy)).ids, 'the tokens of the new weights');
    assert.notDeepEqual(written, before, 'the new head changed the tokens');
    const afterWrite = casts.castsMade;
    await generate(model, PROMPT, greedy);
    assert.equal(casts.castsMade, afterWrite, 'and held again after');
  });
});
