/**
 * The memory a fine-tuning run will need, estimated before anything is loaded
 * (train/run/memory_estimate.ts): the base as it will be held (a GGUF file's tensor bytes, a
 * scheme's blocks, float32), what trains with its gradient and AdamW's moments, the activations
 * (checkpointing keeps each layer's input and one layer's working set), the logits; a float folder
 * quantized at load is float32 first. A run that does not fit is refused, naming the estimate.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { exportGguf } from '../../../src/nn/interchange/gguf_export.js';
import { readGgufHeader } from '../../../src/nn/interchange/gguf.js';
import { saveFolder } from '../../../src/nn/interchange/hf_folder.js';
import { type LlamaSpec, createModel } from '../../../src/nn/models/index.js';
import { quantBytes } from '../../../src/tensor/quant/formats.js';
import { type TrainConfig, defaultConfig } from '../../../src/train/run/config.js';
import { checkTrainingMemory, estimateTrainingMemory } from '../../../src/train/run/memory_estimate.js';
import { tempDir } from '../../helpers/cluster.js';

const SPEC: LlamaSpec = {
  type: 'llama', modelType: 'llama', vocabSize: 256, context: 64, layers: 2, width: 64, intermediate: 128, heads: 4, kvHeads: 2, headDim: 16,
  ropeTheta: 1e4, ropeScaling: null, rmsEps: 1e-5, tieEmbeddings: false, qkvBias: false, qkNorm: false, dropout: 0,
};
const dir = tempDir('memory-estimate');
after(() => rmSync(dir, { recursive: true, force: true }));
const [WIDTH, INTER, LAYERS, VOCAB] = [64, 128, 2, 256];
// Parameters of the model: embedding and head, and per layer q, k, v, o, the MLP's three and two norms; the final norm.
const PER_LAYER = WIDTH * WIDTH * 2 + WIDTH * 32 * 2 + 3 * WIDTH * INTER + 2 * WIDTH;
const PARAMS = 2 * VOCAB * WIDTH + LAYERS * PER_LAYER + WIDTH;

function config(o: Partial<TrainConfig>): TrainConfig {
  return { ...defaultConfig('llama-tiny'), optimizer: 'adamw', batchSize: 2, ...o };
}

describe('the memory estimate of a fine-tuning run', () => {
  it('LoRA over a GGUF file: its tensors\' bytes, the adapters with gradients and AdamW\'s moments, the activations and logits', async () => {
    const file = join(dir, 'tiny-q8_0.gguf');
    await exportGguf(file, createModel(SPEC, 1), SPEC, { quantize: 'q8_0', tokenizer: { gguf: {} } });
    const header = await readGgufHeader(file);
    const m = estimateTrainingMemory(config({ init: file, loraRank: 4, loraTargets: ['q_proj', 'v_proj'] }), SPEC, 16)!;
    const matrices = [...header.tensors.values()].filter((t) => t.type === 'q8_0').reduce((n, t) => n + t.bytes, 0);
    const norms = (2 * LAYERS + 1) * WIDTH * 4;
    assert.equal(m.weights, matrices + norms);
    assert.equal(matrices, quantBytes('q8_0', 1, WIDTH) * (PARAMS - (2 * LAYERS + 1) * WIDTH) / WIDTH);
    // q: A 4×64 + B 64×4; v: A 4×64 + B 32×4; two layers; 4 bytes value + 4 gradient + 8 moments.
    assert.equal(m.trained, 2 * (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4) * 16);
    assert.equal(m.logits, 3 * 4 * 2 * 16 * VOCAB);
    assert.equal(m.loading, 0);
    assert.equal(m.slack, 0.25 * (m.trained + m.activations + m.logits));
    assert.equal(m.total, m.weights + m.trained + m.activations + m.logits + m.slack + m.runtime);
    const checkpointed = estimateTrainingMemory(config({ init: file, loraRank: 4, activationCheckpointing: true }), SPEC, 16)!;
    assert.ok(checkpointed.activations < m.activations, 'checkpointing keeps one layer\'s working set');
  });

  it('over 2 pipeline stages of a quantized base: the largest stage\'s layers, adapters, activations and logits, nothing loaded whole', async () => {
    const file = join(dir, 'tiny-q8_0.gguf');
    const header = await readGgufHeader(file);
    const split = { stages: 2, microBatches: 1, schedule: '1f1b' } as const;
    const m = estimateTrainingMemory(config({ init: file, loraRank: 4, loraTargets: ['q_proj', 'v_proj'] }), SPEC, 16, split)!;
    // Cut by weights with the embedding free: [embedding, layer 0] and [layer 1, norm + head], the second the larger.
    assert.deepEqual(m.stage, { index: 1, of: 2 });
    const held = [...header.tensors.values()].filter((t) => t.name.startsWith('blk.1.') || t.name.startsWith('output')).reduce((n, t) => n + t.bytes, 0);
    assert.equal(m.weights, held);
    assert.equal(m.trained, (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4) * 16, 'one layer\'s adapters');
    assert.equal(m.logits, 3 * 4 * 2 * 16 * VOCAB);
    assert.equal(m.loading, 0);
    const whole = estimateTrainingMemory(config({ init: file, loraRank: 4, loraTargets: ['q_proj', 'v_proj'] }), SPEC, 16)!;
    assert.ok(m.activations < whole.activations && m.total < whole.total);
    // A float base is built whole on every stage: no split.
    assert.equal(estimateTrainingMemory(config({ loraRank: 4 }), SPEC, 16, split)!.stage, undefined);
  });

  it('a float folder with --lora-base-dtype nf4: the layers\' matrices in NF4 while training, float32 while loading', () => {
    const folder = join(dir, 'float');
    saveFolder(folder, createModel(SPEC, 1), SPEC);
    const m = estimateTrainingMemory(config({ init: folder, loraRank: 4, loraBaseDtype: 'nf4' }), SPEC, 16)!;
    const layerMatrices = LAYERS * (PER_LAYER - 2 * WIDTH);
    const adapters = 2 * (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4);
    assert.equal(m.weights, quantBytes('nf4', layerMatrices / WIDTH, WIDTH) + 4 * (PARAMS - layerMatrices));
    assert.equal(m.loading, 4 * (PARAMS + adapters) + m.runtime);
    assert.equal(m.total, Math.max(m.loading, m.weights + m.trained + m.activations + m.logits + m.slack + m.runtime));
    assert.equal(m.formats, 'float32 + nf4');
  });

  it('full fine-tuning counts every parameter with its gradient and moments, and none as frozen weights', () => {
    const m = estimateTrainingMemory(config({}), SPEC, 16)!;
    assert.equal(m.weights, 0);
    assert.equal(m.trained, PARAMS * 16);
  });

  it('refuses a run over what the machine has, naming the estimate, and shares the machine among its processes', () => {
    const c = config({ loraRank: 4 });
    const m = estimateTrainingMemory(c, SPEC, 16)!;
    assert.match(checkTrainingMemory(c, SPEC, 16, 1, undefined, m.total + 1)!, /^0\.\d\d GiB \(weights /);
    assert.throws(() => checkTrainingMemory(c, SPEC, 16, 1, undefined, m.total - 1), /--init\): the run needs an estimated 0\.\d\d GiB \(weights .*\) in this process; this machine has 0\.\d\d GiB available for it/);
    assert.throws(() => checkTrainingMemory(c, SPEC, 16, 2, undefined, 1.5 * m.total), /in each of 2 processes on this machine/);
  });
});
