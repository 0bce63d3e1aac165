/**
 * Packed windows (layers/packed_sequences.ts): a window of several sequences, each positioned from 0
 * and attending only to itself, gives the loss and the gradients of the same sequences run alone,
 * within 1e-5, for GPT-2 (learned positions) and the Llama family (rotary, grouped queries), on
 * each cpu backend; rows packed differently in one batch; bad position ids refused; the layer-list
 * paths refuse packed ids rather than attend across them.
 */
import assert from 'node:assert/strict';
import { packTokens, PackedSequences } from '../../../src/nn/layers/packed_sequences.js';
import { type ModelSpec, createModel } from '../../../src/nn/models/index.js';
import type { Module } from '../../../src/nn/module.js';
import { enableActivationCheckpointing } from '../../../src/nn/activation_checkpointing.js';
import { backward } from '../../../src/tensor/autograd.js';
import { add, affine } from '../../../src/tensor/ops/elementwise.js';
import { crossEntropy } from '../../../src/tensor/ops/loss.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import { Rng } from '../../../src/util/rng.js';
import { describe, it } from '../../helpers/per_backend.js';
import { maxRelDiff } from '../../helpers/cluster.js';

const IGNORE = -100;
const VOCAB = 37;
const MODELS: [string, ModelSpec][] = [
  ['gpt2', { type: 'gpt2', vocabSize: VOCAB, context: 32, layers: 2, width: 16, heads: 2, dropout: 0 }],
  ['llama (4 heads / 2 kv heads)', {
    type: 'llama', modelType: 'llama', vocabSize: VOCAB, context: 32, layers: 2, width: 16, intermediate: 24, heads: 4, kvHeads: 2, headDim: 4,
    ropeTheta: 10000, ropeScaling: null, rmsEps: 1e-6, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
  }],
];

/** A sequence: its ids and next-token labels (the last -100: it never predicts the next sequence's first). */
interface Seq {
  ids: number[];
  labels: number[];
}

function sequences(lengths: number[], rng: Rng): Seq[] {
  return lengths.map((n) => {
    const ids = Array.from({ length: n }, () => rng.int(VOCAB));
    // Some positions unlearned, as a prompt's are.
    const labels = ids.map((_, t) => (t + 1 < n && t % 3 !== 0 ? ids[t + 1] : IGNORE));
    return { ids, labels };
  });
}

/** Rows of T: each row its sequences one after the other, then a pad tail of its own. */
function packRows(rows: Seq[][], T: number): { ids: Int32Array; labels: Int32Array; positions: Int32Array } {
  const ids = new Int32Array(rows.length * T);
  const labels = new Int32Array(rows.length * T).fill(IGNORE);
  const positions = new Int32Array(rows.length * T);
  rows.forEach((row, r) => {
    let at = r * T;
    for (const s of row) {
      ids.set(s.ids, at);
      labels.set(s.labels, at);
      s.ids.forEach((_, t) => (positions[at + t] = t));
      at += s.ids.length;
    }
    for (let t = 0; at < (r + 1) * T; t++, at++) positions[at] = t;
  });
  return { ids, labels, positions };
}

function grads(model: Module): Float32Array {
  return Float32Array.from(model.arena().grads.readSync());
}

/** The packed batch's mean loss and gradients. */
function packedRun(model: Module, rows: Seq[][], T: number): { loss: number; grads: Float32Array } {
  model.zeroGrad();
  const p = packRows(rows, T);
  const loss = crossEntropy(model.forward(packTokens(Tensor.fromHost(p.ids, [rows.length, T]), p.positions)), p.labels);
  backward(loss);
  return { loss: loss.item(), grads: grads(model) };
}

/** The same sequences one at a time: the mean over all their scored tokens, and its gradient. */
function aloneRun(model: Module, all: Seq[]): { loss: number; grads: Float32Array } {
  model.zeroGrad();
  const scored = (s: Seq): number => s.labels.filter((l) => l !== IGNORE).length;
  const total = all.reduce((n, s) => n + scored(s), 0);
  let sum: Tensor | null = null;
  for (const s of all) {
    const logits = model.forward(Tensor.fromHost(Int32Array.from(s.ids), [1, s.ids.length]));
    const part = affine(crossEntropy(logits, Int32Array.from(s.labels)), scored(s) / total);
    sum = sum ? add(sum, part) : part;
  }
  backward(sum!);
  return { loss: sum!.item(), grads: grads(model) };
}

describe('packed windows equal their sequences run alone', () => {
  for (const [name, spec] of MODELS) {
    it(`${name}: loss and gradients within 1e-5, two rows packed differently`, () => {
      const model = createModel(spec, 3);
      const [a, b, c, d, e] = sequences([7, 4, 9, 5, 3], new Rng(11));
      const rows = [[a, b, e], [c, d]];
      const packed = packedRun(model, rows, 16);
      const alone = aloneRun(model, [a, b, e, c, d]);
      assert.ok(Math.abs(packed.loss - alone.loss) / alone.loss < 1e-5, `loss ${packed.loss} vs ${alone.loss}`);
      const diff = maxRelDiff(packed.grads, alone.grads);
      assert.ok(diff < 1e-5, `gradients differ by ${diff}`);
    });
  }

  it('without the positions the window attends across its sequences (the test can fail)', () => {
    const model = createModel(MODELS[1][1], 3);
    const [a, b] = sequences([6, 6], new Rng(2));
    const p = packRows([[a, b]], 12);
    const crossing = crossEntropy(model.forward(Tensor.fromHost(p.ids, [1, 12])), p.labels).item();
    assert.ok(Math.abs(crossing - aloneRun(model, [a, b]).loss) > 1e-4);
  });
});

describe('packed position ids', () => {
  it('spans start where the position falls back to 0; a row that does not count up is refused', () => {
    const p = new PackedSequences(Int32Array.from([0, 1, 2, 0, 0, 0, 0, 1]), 2, 4);
    assert.deepEqual(p.spans, [[[0, 3], [3, 1]], [[0, 1], [1, 1], [2, 2]]]);
    assert.ok(p.packed);
    assert.throws(() => new PackedSequences(Int32Array.from([0, 1, 3, 4]), 1, 4), /row 0 has position id 3 at 2 after 1/);
    assert.throws(() => new PackedSequences(Int32Array.from([1, 2]), 1, 2), /row 0 has position id 1 at 0 after nothing/);
    assert.throws(() => new PackedSequences(Int32Array.from([0, 1, 2]), 1, 2), /3 position ids for 1 rows of 2/);
  });

  it('a model run layer by layer (activation checkpointing) refuses packed ids', () => {
    const model = createModel(MODELS[1][1], 3);
    enableActivationCheckpointing(model);
    const ids = packTokens(Tensor.fromHost(Int32Array.from([1, 2, 3, 4]), [1, 4]), Int32Array.from([0, 1, 0, 1]));
    assert.throws(() => model.forward(ids), /--packing: this model runs the model layer by layer/);
  });
});
